"""What each model family's config.json says about its layers: one reader per family, giving layer kinds with their
own dims (in the YAML schema of configs.py) and which layer is which.

Key names, defaults and layer schedules follow the families' configuration and modeling classes in transformers
(read at 5.24.0: `models/<family>/configuration_<family>.py`) or the model's own remote code where transformers has
none; each reader names its source. transformers is not imported.

Refuse, never guess: a key that decides which layers cache what, and that the reader does not understand (an unknown
family's `sliding_window`, a renamed schedule key, a layer type nobody defined), stops the import with the key named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any

from .errors import ConfigError
from .records import record

# Words of keys that decide which layers cache what. A key containing one of them must be read by the family's
# reader (or be null / false / 0); otherwise the import stops naming it.
SCHEDULE_WORDS = (
    "layer_types", "block_type", "pattern", "layer_period", "layer_offset", "attn_type", "layer_indices", "idxs",
    "block_configs", "window", "chunk", "interval", "mamba", "ssm", "linear_attn", "linear_num", "linear_key",
    "linear_value", "linear_conv", "conv_l", "lightning", "hybrid", "shared_layers", "kv_shared", "kv_source",
    "topk_freq", "indexer_types", "compress", "cross_attention", "layer_mapping", "swa_", "global_", "no_rope",
    "recurrent", "state_size", "d_state", "memory_tokens", "use_cla", "cla_share", "linear_attention",
    "full_attention", "sliding_attention",
)  # fmt: skip
# Keys with those words that do not decide what is cached (rope settings, kernel chunk sizes, biases, MLP layout).
IGNORED_SCHEDULE_KEYS = (
    "mtp_layer_types", "mtp_layers_block_type", "mtp_hybrid_override_pattern", "mlp_layer_types", "mtp_mlp_layer_types",
    "swa_rope_theta", "rope_scaling", "global_rope_theta", "local_rope_theta", "use_bidirectional_attention",
    "sliding_window_size", "add_swa_attention_sink_bias", "add_full_attention_sink_bias", "chunk_size",
    "mamba_chunk_size", "mamba_conv_bias", "mamba_proj_bias", "mamba_dt_rank", "mamba_dt_min", "mamba_dt_max",
    "mamba_dt_init_floor", "mamba_dt_limit", "mamba_norm_before_gate", "mamba_rms_norm", "use_mamba_kernels",
    "mamba_hidden_act", "ssm_multipliers", "mamba_expand_ratio", "linear_attn_bias", "use_mem_eff_path",
    "mamba_cache_dtype",
)  # fmt: skip


def is_schedule_key(key: str) -> bool:
    lowered = key.lower()
    return lowered not in IGNORED_SCHEDULE_KEYS and any(word in lowered for word in SCHEDULE_WORDS)


def is_schedule_item(key: str, value: Any) -> bool:
    """A key (with its value) that says some layers cache something else: a schedule key, or a transformers cache
    class other than the plain ones."""
    if value in (None, False, 0, "", [], {}):
        return False
    return is_schedule_key(key) or (key == "cache_implementation" and str(value).lower() not in PLAIN_CACHES)


class Config:
    """Typed access to one JSON object with errors naming the file and key; remembers which keys were read."""

    def __init__(self, data: dict[str, Any], file: str, prefix: str = "", defaults: dict[str, Any] | None = None):
        self.data = data
        self.file = file
        self.prefix = prefix
        self.defaults = defaults or {}
        self.read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), message)

    def has(self, name: str) -> bool:
        self.read.add(name)
        return self.data.get(name) is not None

    def raw(self, name: str) -> Any:
        self.read.add(name)
        value = self.data.get(name)
        return self.defaults.get(name) if value is None else value

    def get_int(self, name: str, default: Any = ..., minimum: int = 1) -> int:
        self.read.add(name)
        value = self.data.get(name)
        if value is None:
            if name in self.defaults:
                value = self.defaults[name]
            elif default is not ...:
                return int(default)
            else:
                raise self.error(name, "is required (a positive integer) and missing")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"expected an integer, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise self.error(name, f"expected an integer, got {value!r}")
            value = int(value)
        if value < minimum:
            raise self.error(name, f"expected an integer >= {minimum}, got {value}")
        if value > 1 << 40:
            raise self.error(name, f"{value:,} is larger than any real model allows")
        return int(value)

    def opt_int(self, name: str, minimum: int = 1) -> int | None:
        self.read.add(name)
        if self.data.get(name) is None and self.defaults.get(name) is None:
            return None
        return self.get_int(name, minimum=minimum)

    def get_bool(self, name: str, default: bool = False) -> bool:
        self.read.add(name)
        value = self.data.get(name, self.defaults.get(name, default))
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {value!r}")
        return value

    def get_list(self, name: str) -> list[Any] | None:
        self.read.add(name)
        value = self.data.get(name)
        if value is None:
            value = self.defaults.get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(name, f"expected a list, got {type(value).__name__}")
        return value

    def first(self, *names: str) -> str | None:
        """The first of `names` the config has (or has a default for)."""
        for name in names:
            if self.data.get(name) is not None or name in self.defaults:
                return name
        return None


@record(frozen=False)
class Draft:
    """A model as the importer reads it: kinds in the YAML schema and the kind of every layer."""

    kinds: dict[str, dict[str, Any]]
    layers: list[str]
    notes: list[str] = field(default_factory=list)
    mtp_layers: int = 0
    mtp_kind: str | None = None

    def drop_unused(self) -> Draft:
        used = set(self.layers) | ({self.mtp_kind} if self.mtp_kind else set())
        self.kinds = {name: kind for name, kind in self.kinds.items() if name in used}
        return self


Reader = Callable[[Config], Draft]


# ---------------------------------------------------------------------------------------------------------
# Attention dims


def kv_attention(c: Config, heads_key: str = "num_attention_heads", kv_key: str = "num_key_value_heads",
                 head_dim_key: str = "head_dim", notes: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """An attention section of K/V heads: MHA, MQA or GQA by its KV head count."""
    heads = c.get_int(heads_key)
    kv_heads = c.get_int(kv_key, default=heads)
    if not c.has(kv_key) and kv_key not in c.defaults and notes is not None:
        notes.append(f"no {kv_key}: {heads} KV heads (MHA), as the family's configuration class defaults")
    if c.has(head_dim_key) or head_dim_key in c.defaults:
        head_dim = c.get_int(head_dim_key)
    else:
        hidden = c.get_int("hidden_size")
        if hidden % heads:
            raise c.error(head_dim_key, f"missing, and hidden_size {hidden} is not a multiple of {heads} heads")
        head_dim = hidden // heads
        if notes is not None:
            notes.append(f"no {head_dim_key}: hidden_size / {heads_key} = {head_dim}")
    return make_attention(heads, kv_heads, head_dim)


def make_attention(heads: int, kv_heads: int, head_dim: int, v_head_dim: int | None = None,
                   k_eq_v: bool = False) -> dict[str, Any]:  # fmt: skip
    kind = "mha" if kv_heads == heads else ("mqa" if kv_heads == 1 else "gqa")
    out: dict[str, Any] = {"kind": kind, "heads": heads}
    if kind == "gqa":
        out["kv_heads"] = kv_heads
    out["head_dim"] = head_dim
    if v_head_dim is not None and v_head_dim != head_dim:
        out["v_head_dim"] = v_head_dim
    if k_eq_v:
        out["k_eq_v"] = True
    return out


def mla_attention(c: Config, notes: list[str]) -> dict[str, Any]:
    """MLA (DeepSeek-V2 paper): num_key_value_heads is not a cached head count; head_dim may be the rope dim."""
    heads = c.get_int("num_attention_heads")
    if c.has("num_key_value_heads") and c.get_int("num_key_value_heads") != 1:
        notes.append(
            f"num_key_value_heads ({c.get_int('num_key_value_heads')}) ignored: an MLA layer caches one latent, "
            "not per-head keys"
        )
    attention: dict[str, Any] = {
        "kind": "mla", "heads": heads, "kv_lora_rank": c.get_int("kv_lora_rank"),
        "qk_rope_head_dim": c.get_int("qk_rope_head_dim"), "qk_nope_head_dim": c.get_int("qk_nope_head_dim"),
        "v_head_dim": c.get_int("v_head_dim"),
    }  # fmt: skip
    if c.has("q_lora_rank"):
        attention["q_lora_rank"] = c.get_int("q_lora_rank")
    if c.has("head_dim") and c.get_int("head_dim") == attention["qk_rope_head_dim"]:
        notes.append(f"head_dim {c.get_int('head_dim')} is the rope dim (qk_rope_head_dim), not the head size")
    return attention


def indexer_section(c: Config) -> dict[str, Any]:
    """DSA / Lightning Indexer keys: index_n_heads, index_head_dim, index_topk."""
    return {"heads": c.get_int("index_n_heads"), "head_dim": c.get_int("index_head_dim"),
            "topk": c.get_int("index_topk", default=2048)}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Layer schedules


LAYER_TYPE_NAMES = {
    "full_attention": "full", "attention": "full", "global": "full", "global_attention": "full",
    "sliding_attention": "sliding", "sliding_window": "sliding", "local": "sliding", "local_attention": "sliding",
    "sliding_window_attention": "sliding", "chunked_attention": "chunked",
    "linear_attention": "linear", "linear": "linear", "mamba": "linear", "conv": "conv", "short_conv": "conv",
}  # fmt: skip


def layer_types(c: Config, layers: int, allowed: dict[str, str], name: str = "layer_types") -> list[str] | None:
    """`layer_types` (or another per-layer list) mapped through `allowed` (value -> kind); None when absent."""
    values = c.get_list(name)
    if values is None:
        return None
    if len(values) < layers:
        raise c.error(name, f"has {len(values)} entries but the model has {layers} layers")
    out = []
    for index, item in enumerate(values[:layers]):
        kind = allowed.get(item) if isinstance(item, str) else None
        if kind is None:
            known = ", ".join(sorted(allowed))
            raise c.error(name, f"item {index}: unknown layer type {item!r} for this family; expected "
                                f"one of {known} (or describe the model in YAML with `kinds`)")  # fmt: skip
        out.append(kind)
    return out


def window(c: Config, name: str = "sliding_window") -> int:
    value = c.opt_int(name)
    if value is None:
        raise c.error(name, "is required: the config has sliding layers")
    return value


# ---------------------------------------------------------------------------------------------------------
# Families of plain attention (every layer the same, or full/sliding/chunked by a schedule)


def dense(c: Config) -> Draft:
    """Every layer full attention (Llama, GLM-4.x, MiniMax-M2, Hunyuan, ...), or as an explicit layer_types says."""
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    allowed = {"full_attention": "full", "sliding_attention": "sliding", "chunked_attention": "chunked"}
    kinds = layer_types(c, layers, allowed)
    draft = Draft({"full": {"attention": attention}}, kinds or ["full"] * layers, notes)
    if "sliding" in draft.layers:
        draft.kinds["sliding"] = {"attention": attention, "window": window(c)}
    if "chunked" in draft.layers:
        draft.kinds["chunked"] = {"attention": attention, "chunk": window(c, "attention_chunk_size")}
    return draft


def hunyuan(c: Config) -> Draft:
    """Hunyuan: full attention on every layer unless use_cla (cross-layer attention: layers share keys and values
    in groups of cla_share_factor), which mla-mem does not read (configuration_hunyuan.py, Tencent-Hunyuan)."""
    if c.get_bool("use_cla", False):
        raise c.error("use_cla", "cross-layer attention sharing (cla_share_factor) is not understood by mla-mem; "
                                 "describe the model in YAML with `kinds` (shared layers cache nothing)")  # fmt: skip
    c.read.add("cla_share_factor")
    return dense(c)


def minimax_m2(c: Config) -> Draft:
    """MiniMax-M2: every layer softmax attention; its configs keep MiniMax-M1's attn_type_list, all 1."""
    values = c.get_list("attn_type_list")
    if values is not None and any(v != 1 for v in values):
        return minimax(c)
    return dense(c)


def every_layer_window(c: Config) -> Draft:
    """Mistral, Mixtral, Phi-3, PhiMoE, Starcoder2: `sliding_window` (when set) applies to every layer
    (modeling_mistral.py: one mask for all layers)."""
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    value = c.opt_int("sliding_window")
    if value is None:
        return Draft({"full": {"attention": attention}}, ["full"] * layers, notes)
    notes.append(f"sliding_window {value} applies to every layer ({c.raw('model_type')} attends through one window)")
    return Draft({"sliding": {"attention": attention, "window": value}}, ["sliding"] * layers, notes)


def qwen2_style(c: Config) -> Draft:
    """Qwen2/2.5/3, MiMo-7B: sliding layers only with use_sliding_window, from layer max_window_layers on
    (configuration_qwen2.py: sliding_window if use_sliding_window else None; layer i >= max_window_layers)."""
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    kinds: dict[str, dict[str, Any]] = {"full": {"attention": attention}}
    explicit = layer_types(c, layers, {"full_attention": "full", "sliding_attention": "sliding"})
    use = c.get_bool("use_sliding_window", False)
    c.read.update({"sliding_window", "max_window_layers"})
    if explicit is None:
        if not use or c.data.get("sliding_window") is None:
            return Draft(kinds, ["full"] * layers, notes)
        first = c.get_int("max_window_layers", default=28, minimum=0)
        explicit = ["sliding" if i >= first else "full" for i in range(layers)]
    if "sliding" in explicit:
        kinds["sliding"] = {"attention": attention, "window": window(c)}
    return Draft(kinds, explicit, notes)


def smollm3(c: Config) -> Draft:
    """SmolLM3: full attention unless use_sliding_window, then the NoPE layers (no_rope_layers[i] == 0, or every
    no_rope_layer_interval-th) slide (configuration_smollm3.py)."""
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    c.read.update({"no_rope_layers", "no_rope_layer_interval", "sliding_window", "max_window_layers"})
    kinds = layer_types(c, layers, {"full_attention": "full", "sliding_attention": "sliding"})
    if kinds is None:
        if not c.get_bool("use_sliding_window", False) or c.data.get("sliding_window") is None:
            return Draft({"full": {"attention": attention}}, ["full"] * layers, notes)
        rope = c.get_list("no_rope_layers")
        if rope is None:
            every = c.get_int("no_rope_layer_interval", default=4)
            rope = [int((i + 1) % every != 0) for i in range(layers)]
        kinds = ["full" if flag else "sliding" for flag in rope[:layers]]
    draft = Draft({"full": {"attention": attention}}, kinds, notes)
    if "sliding" in kinds:
        draft.kinds["sliding"] = {"attention": attention, "window": window(c)}
    return draft


def pattern_every(period_key: str, period: int, first_full: bool = False) -> Reader:
    """Families whose default is `period - 1` sliding layers then one full one (Gemma 3 every 6th, Cohere 2 every
    4th, OLMo 3 every 4th); an explicit `layer_types` wins."""

    def read(c: Config) -> Draft:
        notes: list[str] = []
        attention = kv_attention(c, notes=notes)
        layers = c.get_int("num_hidden_layers")
        kinds = layer_types(c, layers, {"full_attention": "full", "sliding_attention": "sliding"})
        if kinds is None:
            every = c.get_int(period_key, default=period) if period_key else period
            kinds = ["full" if (i + 1) % every == 0 or (first_full and i == 0) else "sliding" for i in range(layers)]
            notes.append(f"no layer_types: the family's default pattern, every {every}th layer full attention")
        draft = Draft({"full": {"attention": attention}}, kinds, notes)
        if "sliding" in kinds:
            draft.kinds["sliding"] = {"attention": attention, "window": window(c)}
        return draft

    return read


def gemma2(c: Config) -> Draft:
    """Gemma 2: sliding on even layers, full on odd (configuration_gemma2.py: sliding if (i + 1) % 2)."""
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    kinds = layer_types(c, layers, {"full_attention": "full", "sliding_attention": "sliding"})
    if kinds is None:
        kinds = ["sliding" if (i + 1) % 2 else "full" for i in range(layers)]
        notes.append("no layer_types: Gemma 2 alternates, sliding on even layers (0-based)")
    return Draft(
        {"full": {"attention": attention}, "sliding": {"attention": attention, "window": window(c)}}, kinds, notes
    )


def gpt_oss(c: Config) -> Draft:
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    kinds = layer_types(c, layers, {"full_attention": "full", "sliding_attention": "sliding"})
    kinds = kinds or ["sliding" if i % 2 == 0 else "full" for i in range(layers)]
    return Draft(
        {"full": {"attention": attention}, "sliding": {"attention": attention, "window": window(c)}}, kinds, notes
    )


def exaone4(c: Config) -> Draft:
    """EXAONE 4: layer_types, or sliding_window_pattern (an int period or a string like 'LLLG')."""
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    kinds = layer_types(c, layers, {"full_attention": "full", "sliding_attention": "sliding"})
    if kinds is None:
        pattern = c.raw("sliding_window_pattern")
        if c.data.get("sliding_window") is None or pattern in (None, 0):
            kinds = ["full"] * layers
        elif isinstance(pattern, str) and set(pattern) <= {"L", "G"}:
            kinds = ["sliding" if pattern[i % len(pattern)] == "L" else "full" for i in range(layers)]
        elif isinstance(pattern, int) and not isinstance(pattern, bool):
            kinds = ["sliding" if (i + 1) % pattern else "full" for i in range(layers)]
        else:
            raise c.error("sliding_window_pattern", f"expected an integer or a string of L and G, got {pattern!r}")
    c.read.add("sliding_window")
    draft = Draft({"full": {"attention": attention}}, kinds, notes)
    if "sliding" in kinds:
        draft.kinds["sliding"] = {"attention": attention, "window": window(c)}
    return draft


def llama4(c: Config) -> Draft:
    """Llama 4: layers with rope are chunked (attention_chunk_size), NoPE layers (every no_rope_layer_interval-th)
    attend globally (configuration_llama4.py no_rope_layers; modeling_llama4.py use_rope -> chunked mask)."""
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    kinds = layer_types(c, layers, {"full_attention": "full", "chunked_attention": "chunked"})
    if kinds is None:
        rope = c.get_list("no_rope_layers")
        if rope:
            if len(rope) != layers or any(v not in (0, 1) for v in rope):
                raise c.error("no_rope_layers", f"expected {layers} entries of 0 or 1")
            kinds = ["chunked" if v else "full" for v in rope]
        else:
            every = c.get_int("no_rope_layer_interval", default=4)
            kinds = ["full" if (i + 1) % every == 0 else "chunked" for i in range(layers)]
            notes.append(f"no no_rope_layers: every {every}th layer is NoPE and global, the others chunked")
    draft = Draft({"full": {"attention": attention}}, kinds, notes)
    if "chunked" in kinds:
        chunk = c.opt_int("attention_chunk_size")
        if chunk is None:
            raise c.error("attention_chunk_size", "is required: the config has chunked layers")
        draft.kinds["chunked"] = {"attention": attention, "chunk": chunk}
    return draft


def gemma4(c: Config) -> Draft:
    """Gemma 4: sliding layers with head_dim and num_key_value_heads; full layers with global_head_dim and
    num_global_key_value_heads, keys = values when attention_k_eq_v; the last num_kv_shared_layers layers reuse
    earlier caches (configuration_gemma4.py per_layer_config, kv_sharing_modes)."""
    notes: list[str] = []
    layers = c.get_int("num_hidden_layers")
    heads = c.get_int("num_attention_heads")
    local = make_attention(heads, c.get_int("num_key_value_heads"), c.get_int("head_dim"))
    k_eq_v = c.get_bool("attention_k_eq_v", False)
    global_kv = c.get_int("num_global_key_value_heads") if k_eq_v and c.has("num_global_key_value_heads") else None
    global_attention = make_attention(heads, global_kv or c.get_int("num_key_value_heads"),
                                      c.get_int("global_head_dim", default=512), k_eq_v=k_eq_v)  # fmt: skip
    kinds = layer_types(c, layers, {"full_attention": "full", "sliding_attention": "sliding"})
    if kinds is None:
        kinds = ["full" if (i + 1) % 6 == 0 else "sliding" for i in range(layers)]
        notes.append("no layer_types: Gemma 4's default, every 6th layer global")
    if kinds[-1] != "full":
        kinds[-1] = "full"
        notes.append("the last layer is global (transformers forces it)")
    shared = c.get_int("num_kv_shared_layers", default=0, minimum=0)
    draft = Draft({"full": {"attention": global_attention}, "sliding": {"attention": local, "window": window(c)},
                   "shared": {"description": "reuses an earlier layer's keys and values"}}, kinds, notes)  # fmt: skip
    if shared:
        first = layers - shared
        draft.layers = kinds[:first] + ["shared"] * shared
        notes.append(f"num_kv_shared_layers {shared}: layers {first} to {layers - 1} reuse earlier caches")
    return draft


def gemma3n(c: Config) -> Draft:
    """Gemma 3n: like Gemma 3 (sliding and full layers of one attention), and the last num_kv_shared_layers layers
    reuse earlier caches (configuration_gemma3n.py)."""
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    kinds = layer_types(c, layers, {"full_attention": "full", "sliding_attention": "sliding"})
    if kinds is None:
        raise c.error("layer_types", "is required for gemma3n (describe the model in YAML otherwise)")
    shared = c.get_int("num_kv_shared_layers", default=15, minimum=0)
    first = layers - shared
    draft = Draft({"full": {"attention": attention}, "sliding": {"attention": attention, "window": window(c)},
                   "shared": {"description": "reuses an earlier layer's keys and values"}},
                  kinds[:first] + ["shared"] * shared, notes)  # fmt: skip
    if shared:
        notes.append(f"num_kv_shared_layers {shared}: layers {first} to {layers - 1} reuse earlier caches")
    return draft


def mimo_v2(c: Config) -> Draft:
    """MiMo-V2-Flash: full layers (num_key_value_heads, head_dim, v_head_dim) and sliding layers (swa_* dims);
    hybrid_layer_pattern 0 = full, 1 = sliding; the window attends to sliding_window_size previous tokens plus the
    query (configuration_mimo_v2_flash.py: sliding_window = sliding_window_size + 1)."""
    notes: list[str] = []
    layers = c.get_int("num_hidden_layers")
    heads = c.get_int("num_attention_heads")
    full = make_attention(heads, c.get_int("num_key_value_heads"), c.get_int("head_dim"), c.get_int("v_head_dim"))
    swa = make_attention(c.get_int("swa_num_attention_heads", default=heads), c.get_int("swa_num_key_value_heads"),
                         c.get_int("swa_head_dim"), c.get_int("swa_v_head_dim"))  # fmt: skip
    pattern = c.get_list("hybrid_layer_pattern")
    kinds = layer_types(c, layers, {"full_attention": "full", "sliding_attention": "sliding"})
    if kinds is None and pattern is not None:
        if len(pattern) != layers or any(v not in (0, 1) for v in pattern):
            raise c.error("hybrid_layer_pattern", f"expected {layers} entries of 0 (full) or 1 (sliding)")
        kinds = ["sliding" if v else "full" for v in pattern]
    if kinds is None:
        raise c.error("hybrid_layer_pattern", "is required (which layers slide)")
    if c.has("sliding_window_size"):
        size = c.get_int("sliding_window_size") + 1
        notes.append(f"window: sliding_window_size {size - 1} previous tokens + the query = {size}")
    else:
        size = window(c)
    c.read.update({"sliding_window", "attention_chunk_size", "swa_rope_theta"})
    return Draft({"full": {"attention": full}, "sliding": {"attention": swa, "window": size}}, kinds, notes)


def step3p7(c: Config) -> Draft:
    return pattern_every("", 10**9)(c)


# ---------------------------------------------------------------------------------------------------------
# Old spellings: GPT-2, GPT-J, GPT-NeoX, BLOOM, Falcon, GPT-BigCode


def gpt2_style(c: Config) -> Draft:
    """GPT-2 / GPT-J / BLOOM / GPT-NeoX: n_layer, n_head, n_embd (or num_hidden_layers ...), MHA."""
    layers = c.get_int(c.first("num_hidden_layers", "n_layer", "num_layers") or "num_hidden_layers")
    heads = c.get_int(c.first("num_attention_heads", "n_head") or "num_attention_heads")
    hidden = c.get_int(c.first("hidden_size", "n_embd", "d_model") or "hidden_size")
    if hidden % heads:
        raise c.error("n_head", f"hidden size {hidden} is not a multiple of {heads} heads")
    kv = 1 if c.get_bool("multi_query", False) else heads
    return Draft({"full": {"attention": make_attention(heads, kv, hidden // heads)}}, ["full"] * layers,
                 [f"head_dim = hidden size / heads = {hidden // heads}"])  # fmt: skip


def falcon(c: Config) -> Draft:
    """Falcon (configuration_falcon.py): new_decoder_architecture -> num_kv_heads KV heads; else multi_query -> 1,
    otherwise MHA. Falcon-40B's legacy model type RefinedWeb has the same keys (its remote code)."""
    layers = c.get_int(c.first("num_hidden_layers", "n_layer") or "num_hidden_layers")
    heads = c.get_int(c.first("num_attention_heads", "n_head") or "num_attention_heads")
    hidden = c.get_int("hidden_size")
    if c.get_bool("new_decoder_architecture", False) or c.has("n_head_kv"):
        # Falcon-40B's RefinedWeb remote code groups the heads by n_head_kv, as the new decoder architecture does
        kv = c.get_int(c.first("num_kv_heads", "n_head_kv") or "num_kv_heads")
    elif c.get_bool("multi_query", True):
        kv = 1
    else:
        kv = heads
    return Draft({"full": {"attention": make_attention(heads, kv, hidden // heads)}}, ["full"] * layers,
                 [f"head_dim = hidden_size / heads = {hidden // heads}"])  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# MLA families


def mla_family(c: Config) -> Draft:
    """DeepSeek-V2/V3/V3.2, Kimi K2, Mistral Large 3, GLM-5 (+ the DSA indexer on the layers that own one)."""
    notes: list[str] = []
    attention = mla_attention(c, notes)
    layers = c.get_int("num_hidden_layers")
    draft = Draft({"full": {"attention": attention}}, ["full"] * layers, notes)
    draft.mtp_layers = c.get_int("num_nextn_predict_layers", default=0, minimum=0)
    if c.has("index_n_heads") or c.has("index_head_dim"):
        indexer = indexer_section(c)
        owners = indexer_owners(c, layers)
        draft.kinds["full"]["indexer"] = indexer
        if owners is not None:
            draft.kinds["shared"] = {"attention": attention, "description": "reuses another layer's top-k selection"}
            draft.layers = ["full" if i in owners else "shared" for i in range(layers)]
            notes.append(f"indexer keys on {len(owners)} of {layers} layers (shared indexer)")
    return draft


def indexer_owners(c: Config, layers: int) -> set[int] | None:
    """The layers that own DSA indexer keys when indexers are shared (GLM-5.2 onward, 'IndexCache'): an explicit
    `indexer_types` list, or `index_topk_freq` with `index_skip_topk_offset`: layer i owns one when
    max(i - offset + 1, 0) % freq == 0 (transformers glm_moe_dsa/configuration_glm_moe_dsa.py; vLLM
    models/deepseek_v32/attention.py; llama.cpp llama-model.cpp). None: every layer owns one."""
    types = c.get_list("indexer_types")
    c.read.update({"index_topk_freq", "index_skip_topk_offset", "index_topk_pattern"})
    pattern = c.raw("index_topk_pattern")
    if types is None and pattern is not None:
        # a string of F (full) and S (shared), or a list of the words (configuration_glm_moe_dsa.py __post_init__)
        if isinstance(pattern, str):
            letters = {"F": "full", "S": "shared"}
            if any(ch not in letters for ch in pattern):
                raise c.error("index_topk_pattern", f"expected a string of F and S, got {pattern!r}")
            types = [letters[ch] for ch in pattern]
        elif isinstance(pattern, list):
            types = pattern
        else:
            raise c.error("index_topk_pattern", f"expected a string of F and S or a list, got {pattern!r}")
    if types is not None:
        if len(types) < layers:
            raise c.error("indexer_types", f"has {len(types)} entries but the model has {layers} layers")
        values = {"full": True, "shared": False}
        owners = set()
        for index, item in enumerate(types[:layers]):
            if item not in values:
                raise c.error("indexer_types", f"item {index}: expected 'full' or 'shared', got {item!r}")
            if values[item]:
                owners.add(index)
        return owners if len(owners) < layers else None
    freq = c.opt_int("index_topk_freq")
    if freq is None or freq == 1:
        c.read.add("index_skip_topk_offset")
        return None
    offset = c.get_int("index_skip_topk_offset", default=2, minimum=0)
    return {i for i in range(layers) if max(i - offset + 1, 0) % freq == 0}


def longcat_flash(c: Config) -> Draft:
    """LongCat-Flash: num_layers layers, each with two MLA attention blocks (modeling_longcat_flash.py: self_attn
    is a list of two LongcatFlashMLA per decoder layer)."""
    notes: list[str] = []
    attention = mla_attention(c, notes)
    layers = c.get_int(c.first("num_layers", "num_hidden_layers") or "num_layers")
    notes.append("two MLA attention blocks per layer (LongCat-Flash)")
    return Draft({"full": {"attention": attention, "attention_blocks": 2}}, ["full"] * layers, notes)


# ---------------------------------------------------------------------------------------------------------
# Linear attention and state-space hybrids


def torch_dtype_name(value: Any) -> str | None:
    """'float32' / 'bfloat16' / 'float16' (as configs spell torch dtypes) -> mla-mem's name; None for anything else."""
    return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(str(value).lower()) if value else None


def gated_deltanet(c: Config) -> dict[str, Any]:
    state = {
        "kind": "gated_deltanet", "key_heads": c.get_int("linear_num_key_heads"),
        "value_heads": c.get_int("linear_num_value_heads"), "key_head_dim": c.get_int("linear_key_head_dim"),
        "value_head_dim": c.get_int("linear_value_head_dim"), "conv_kernel": c.get_int("linear_conv_kernel_dim"),
    }  # fmt: skip
    declared = torch_dtype_name(c.raw("mamba_ssm_dtype"))  # Qwen3.5: vLLM (0.17+) and SGLang keep the state in it
    if declared:
        state["recurrent_dtype"] = declared
    return state


def qwen_next(c: Config) -> Draft:
    """Qwen3-Next and Qwen3.5: Gated DeltaNet layers and every full_attention_interval-th layer full attention
    (configuration_qwen3_next.py, configuration_qwen3_5.py)."""
    notes: list[str] = []
    attention = kv_attention(c, notes=notes)
    layers = c.get_int("num_hidden_layers")
    kinds = layer_types(c, layers, {"full_attention": "full", "linear_attention": "linear"})
    every = c.get_int("full_attention_interval", default=4)
    if kinds is None:
        kinds = ["full" if (i + 1) % every == 0 else "linear" for i in range(layers)]
    draft = Draft({"full": {"attention": attention}, "linear": {"state": gated_deltanet(c)}}, kinds, notes)
    # Qwen3.5's MTP block is one full-attention decoder layer (vLLM models/qwen3_5_mtp.py: mtp_num_hidden_layers)
    draft.mtp_layers = c.get_int("mtp_num_hidden_layers", default=0, minimum=0)
    return draft


def kimi_linear(c: Config) -> Draft:
    """Kimi Linear: MLA layers and KDA layers, positions in linear_attn_config (1-based; configuration_kimi_linear.py);
    the KDA head dim is linear_attn_config.head_dim (the top-level head_dim is a legacy field)."""
    notes: list[str] = []
    attention = mla_attention(c, notes)
    layers = c.get_int("num_hidden_layers")
    config = c.data.get("linear_attn_config")
    c.read.add("linear_attn_config")
    kinds = layer_types(c, layers, {"full_attention": "full", "linear_attention": "linear"})
    if not isinstance(config, dict):
        raise c.error("linear_attn_config", "is required for kimi_linear (KDA layer positions and dims)")
    linear = Config(config, c.file, c.key("linear_attn_config."))
    if kinds is None:
        slots: list[str | None] = [None] * layers
        for key, kind in (("full_attn_layers", "full"), ("kda_layers", "linear")):
            for value in linear.get_list(key) or []:
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= layers:
                    raise linear.error(key, f"layer {value!r} is not between 1 and {layers} (1-based)")
                slots[value - 1] = kind
        missing = [i + 1 for i, kind in enumerate(slots) if kind is None]
        if missing:
            raise c.error("linear_attn_config", f"layers {missing[:5]} are in neither full_attn_layers nor kda_layers")
        kinds = [k for k in slots if k is not None]
    if c.get_bool("mla_use_nope", False):
        notes.append("mla_use_nope: the MLA layers use no rope, but runtimes still cache the rope slot")
    state = {
        "kind": "kda",
        "heads": linear.get_int("num_heads", default=c.get_int("num_attention_heads")),
        "head_dim": linear.get_int("head_dim"),
        "conv_kernel": linear.get_int("short_conv_kernel_size", default=4),
    }
    return Draft({"full": {"attention": attention}, "linear": {"state": state}}, kinds, notes)  # fmt: skip


def mamba2_state(c: Config, heads: str, head_dim: str, groups: str, d_state: str, conv: str,
                 d_inner: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A Mamba-2 state from the family's key names; head_dim 'auto' is d_inner / heads."""
    n_heads = c.get_int(heads)
    raw = c.raw(head_dim)
    c.read.update({"mamba_expand", "expand"})  # only decides the width when the head dim is "auto"

    if raw in (None, "auto"):
        inner = (
            c.get_int(d_inner)
            if d_inner and c.raw(d_inner) is not None
            else c.get_int("mamba_expand", default=2) * c.get_int("hidden_size")
        )
        if inner % n_heads:
            raise c.error(head_dim, f"auto: d_inner {inner} is not a multiple of {n_heads} heads")
        dim = inner // n_heads
    else:
        dim = c.get_int(head_dim)
    state = {"kind": "mamba2", "heads": n_heads, "head_dim": dim, "groups": c.get_int(groups),
             "d_state": c.get_int(d_state), "conv_kernel": c.get_int(conv)}  # fmt: skip
    declared = torch_dtype_name(c.raw("mamba_ssm_cache_dtype") or c.raw("mamba_ssm_dtype"))
    if declared:
        state["recurrent_dtype"] = declared
    return state


def nemotron_h(c: Config) -> Draft:
    """Nemotron-H / Nemotron 3: hybrid_override_pattern ('M' Mamba-2, '*' attention, '-' MLP, 'E' MoE) or
    layers_block_type (configuration_nemotron_h.py _pattern_to_list)."""
    notes: list[str] = []
    pattern = c.raw("hybrid_override_pattern")
    names = {"M": "mamba", "*": "attention", "-": "mlp", "E": "moe"}
    if isinstance(pattern, str) and pattern:
        if set(pattern) - set(names):
            raise c.error("hybrid_override_pattern", f"unknown characters {sorted(set(pattern) - set(names))}; "
                                                     "expected M, *, - and E")  # fmt: skip
        blocks = [names[ch] for ch in pattern]
    else:
        listed = c.get_list("layers_block_type")
        if listed is None:
            raise c.error("hybrid_override_pattern", "is required (or layers_block_type): which layers are Mamba")
        legacy = {"mamba": "mamba", "attention": "attention", "mlp": "mlp", "moe": "moe",
                  "linear_attention": "mamba", "full_attention": "attention"}  # fmt: skip
        if any(item not in legacy for item in listed):
            raise c.error("layers_block_type", f"unknown entries {sorted({i for i in listed if i not in legacy})}")
        blocks = [legacy[item] for item in listed]
    c.read.update({"num_hidden_layers", "layers_block_type"})
    kinds = {"attention": "attention", "mamba": "mamba", "mlp": "mlp", "moe": "mlp"}
    state = mamba2_state(c, "mamba_num_heads", "mamba_head_dim", c.first("n_groups", "mamba_n_groups") or "n_groups",
                         "ssm_state_size", c.first("conv_kernel", "mamba_d_conv") or "conv_kernel")  # fmt: skip
    # vLLM keeps Nemotron-H's SSM state in the config's mamba_ssm_cache_dtype, float32 when it names none
    # (vllm/model_executor/models/config.py NemotronHForCausalLMConfig, 0.13+)
    if "recurrent_dtype" not in state:
        state["recurrent_dtype"] = "fp32"

        notes.append("no mamba_ssm_cache_dtype: the SSM state is kept in fp32 (vLLM's default for Nemotron-H)")

    attention = kv_attention(c, notes=notes)
    draft = Draft({"attention": {"attention": attention}, "mamba": {"state": state},
                   "mlp": {"description": "MLP or MoE layer, no cache"}}, [kinds[b] for b in blocks], notes)  # fmt: skip
    draft.mtp_layers = c.get_int("num_nextn_predict_layers", default=0, minimum=0)
    if draft.mtp_layers:
        draft.mtp_kind = "attention"
    return draft


def jamba(c: Config) -> Draft:
    """Jamba: attention where i % attn_layer_period == attn_layer_offset, Mamba-1 elsewhere; d_inner =
    mamba_expand x hidden_size (configuration_jamba.py layers_block_type)."""
    notes: list[str] = []
    layers = c.get_int("num_hidden_layers")
    period = c.get_int("attn_layer_period", default=8)
    offset = c.get_int("attn_layer_offset", default=4, minimum=0)
    c.read.update({"expert_layer_period", "expert_layer_offset"})  # which layers are MoE: no cache of their own

    if offset >= period:
        raise c.error("attn_layer_offset", f"{offset} must be smaller than attn_layer_period {period}")
    kinds = ["attention" if i % period == offset else "mamba" for i in range(layers)]
    state = {
        "kind": "mamba1",
        "d_inner": c.get_int("mamba_expand", default=2) * c.get_int("hidden_size"),
        "d_state": c.get_int("mamba_d_state", default=16),
        "conv_kernel": c.get_int("mamba_d_conv", default=4),
    }
    return Draft({"attention": {"attention": kv_attention(c, notes=notes)}, "mamba": {"state": state}}, kinds, notes)


def bamba(c: Config) -> Draft:
    """Bamba: attention on attn_layer_indices, Mamba-2 elsewhere (configuration_bamba.py)."""
    notes: list[str] = []
    layers = c.get_int("num_hidden_layers")
    indices = c.get_list("attn_layer_indices") or []
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < layers for i in indices):
        raise c.error("attn_layer_indices", f"expected layer indices from 0 to {layers - 1}")
    state = mamba2_state(c, "mamba_n_heads", "mamba_d_head", "mamba_n_groups", "mamba_d_state", "mamba_d_conv")
    kinds = ["attention" if i in indices else "mamba" for i in range(layers)]
    return Draft({"attention": {"attention": kv_attention(c, notes=notes)}, "mamba": {"state": state}}, kinds, notes)


def granite_hybrid(c: Config) -> Draft:
    """Granite-4.0-H (granitemoehybrid): layer_types 'mamba' / 'attention' (configuration_granitemoehybrid.py)."""
    notes: list[str] = []
    layers = c.get_int("num_hidden_layers")
    kinds = layer_types(c, layers, {"mamba": "mamba", "attention": "attention", "linear_attention": "mamba",
                                    "full_attention": "attention"}, c.first("layer_types", "layers_block_type") or "layer_types")  # fmt: skip
    kinds = kinds or ["mamba"] * layers
    state = mamba2_state(c, "mamba_n_heads", "mamba_d_head", "mamba_n_groups", "mamba_d_state", "mamba_d_conv")
    return Draft({"attention": {"attention": kv_attention(c, notes=notes)}, "mamba": {"state": state}}, kinds, notes)


def falcon_h1(c: Config) -> Draft:
    """Falcon-H1: attention and Mamba-2 side by side in every layer; d_inner = mamba_d_ssm (configuration_falcon_h1)."""
    notes: list[str] = []
    state = mamba2_state(c, "mamba_n_heads", "mamba_d_head", "mamba_n_groups", "mamba_d_state", "mamba_d_conv",
                         d_inner="mamba_d_ssm")  # fmt: skip
    kind = {"attention": kv_attention(c, notes=notes), "state": state,
            "description": "attention and Mamba-2 in parallel"}  # fmt: skip
    return Draft({"hybrid": kind}, ["hybrid"] * c.get_int("num_hidden_layers"), notes)


def mamba(c: Config) -> Draft:
    """Mamba (configuration_mamba.py): every layer Mamba-1, d_inner = intermediate_size or expand x hidden."""
    inner = (
        c.get_int("intermediate_size")
        if c.has("intermediate_size")
        else c.get_int("expand", default=2) * c.get_int("hidden_size")
    )
    state = {"kind": "mamba1", "d_inner": inner, "d_state": c.get_int("state_size", default=16),
             "conv_kernel": c.get_int("conv_kernel", default=4)}  # fmt: skip
    return Draft({"mamba": {"state": state}}, ["mamba"] * c.get_int("num_hidden_layers"))


def mamba2(c: Config) -> Draft:
    """Mamba-2 (configuration_mamba2.py): every layer Mamba-2."""
    state = mamba2_state(c, "num_heads", "head_dim", "n_groups", "state_size", "conv_kernel")
    return Draft({"mamba": {"state": state}}, ["mamba"] * c.get_int("num_hidden_layers"))


def minimax(c: Config) -> Draft:
    """MiniMax-Text-01 / MiniMax-M1: attn_type_list 1 = softmax attention, 0 = lightning attention (a heads x
    head_dim x head_dim state per layer; the models' modeling code)."""
    notes: list[str] = []
    layers = c.get_int("num_hidden_layers")
    values = c.get_list("attn_type_list")
    kinds = layer_types(c, layers, {"full_attention": "full", "linear_attention": "linear"})
    if kinds is None:
        if values is None:
            raise c.error("attn_type_list", "is required: which layers are lightning (linear) attention")
        if len(values) < layers or any(v not in (0, 1) for v in values[:layers]):
            raise c.error("attn_type_list", f"expected {layers} entries of 0 (lightning) or 1 (softmax)")
        kinds = ["full" if v else "linear" for v in values[:layers]]
    attention = kv_attention(c, notes=notes)
    state = {"kind": "lightning", "heads": c.get_int("num_attention_heads"), "head_dim": attention["head_dim"]}
    c.read.update(key for key in c.data if key.startswith("layernorm_"))  # norm scales of each attention type

    c.read.add("sliding_window")  # null in the MiniMax configs; softmax layers attend to everything
    if c.data.get("sliding_window") is not None:
        raise c.error("sliding_window", "MiniMax with a sliding window is not understood; describe it in YAML")
    return Draft({"full": {"attention": attention}, "linear": {"state": state}}, kinds, notes)


def lfm2(c: Config) -> Draft:
    """LFM2: gated short-convolution layers (conv_L_cache, over hidden_size channels) and attention layers at
    full_attn_idxs or layer_types (configuration_lfm2.py)."""
    notes: list[str] = []
    layers = c.get_int("num_hidden_layers")
    kinds = layer_types(c, layers, {"full_attention": "full", "conv": "conv"})
    if kinds is None:
        idxs = c.get_list("full_attn_idxs")
        if idxs is None:
            raise c.error("full_attn_idxs", "is required (or layer_types): which layers are attention")
        kinds = ["full" if i in idxs else "conv" for i in range(layers)]
    state = {
        "kind": "short_conv",
        "channels": c.get_int("hidden_size"),
        "conv_kernel": c.get_int("conv_L_cache", default=3),
    }
    c.read.update({"conv_dim", "conv_dim_out", "conv_bias", "conv_use_xavier_init"})
    return Draft({"full": {"attention": kv_attention(c, notes=notes)}, "conv": {"state": state}}, kinds, notes)


def decilm(c: Config) -> Draft:
    """DeciLM / Llama-Nemotron (nemotron-nas): block_configs, one per layer: attention.no_op (no cache),
    n_heads_in_group (KV heads = heads / n_heads_in_group), replace_with_linear, window_length (remote code)."""
    notes: list[str] = []
    blocks = c.get_list("block_configs")
    if blocks is None:
        raise c.error("block_configs", "is required for DeciLM models")
    heads = c.get_int("num_attention_heads")
    head_dim = c.get_int("head_dim") if c.has("head_dim") else c.get_int("hidden_size") // heads
    kinds: dict[str, dict[str, Any]] = {}
    layers = []
    for index, block in enumerate(blocks):
        attention = block.get("attention") if isinstance(block, dict) else None
        if not isinstance(attention, dict):
            raise c.error("block_configs", f"item {index}: expected an attention mapping")
        where = f"block_configs[{index}].attention"
        if attention.get("no_op"):
            kinds["no_op"] = {"description": "no attention (no-op block)"}
            layers.append("no_op")
            continue
        if attention.get("replace_with_linear") or attention.get("window_length") is not None:
            key = "replace_with_linear" if attention.get("replace_with_linear") else "window_length"
            raise ConfigError(
                c.file, f"{c.prefix}{where}.{key}", "is not understood by mla-mem; describe the model in YAML"
            )
        group = attention.get("n_heads_in_group")
        if isinstance(group, bool) or not isinstance(group, int) or group < 1 or heads % group:
            raise ConfigError(
                c.file, f"{c.prefix}{where}.n_heads_in_group", f"expected a divisor of {heads}, got {group!r}"
            )
        name = f"gqa{heads // group}"
        kinds[name] = {"attention": make_attention(heads, heads // group, head_dim)}
        layers.append(name)
    c.read.add("num_hidden_layers")
    return Draft(kinds, layers, notes)


def encoder_decoder(c: Config) -> Draft:
    raise ConfigError(
        c.file, c.key("model_type"),
        f"{c.raw('model_type')} is an encoder-decoder model: its cross-attention cache depends on the encoder's "
        "input, which mla-mem does not size; describe the decoder's self-attention in YAML to size that part",
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# The family table: model_type -> (reader, defaults of its configuration class for keys a config may omit)

FAMILIES: dict[str, tuple[Reader, dict[str, Any]]] = {
    # plain attention
    "llama": (dense, {}), "granite": (dense, {}), "deepseek": (dense, {}), "internlm3": (dense, {}),
    "glm4_moe": (dense, {}), "glm4": (dense, {}), "minimax_m2": (minimax_m2, {"head_dim": 128}),
    "hunyuan": (hunyuan, {}), "hunyuan_v1_dense": (hunyuan, {}), "hunyuan_v1_moe": (hunyuan, {}),
    "ernie4_5": (dense, {}), "ernie4_5_moe": (dense, {}), "bailing_moe": (dense, {}), "seed_oss": (dense, {}),
    "apertus": (dense, {}), "olmo": (dense, {}), "olmo2": (dense, {}), "olmoe": (dense, {}), "cohere": (dense, {}),
    "gemma": (dense, {"head_dim": 256}), "phi": (dense, {}), "stablelm": (dense, {}), "dbrx": (dense, {}),
    "qwen3_vl_text": (dense, {}), "qwen3_vl_moe_text": (dense, {}), "ministral3": (dense, {}),
    "mistral": (every_layer_window, {}), "mixtral": (every_layer_window, {}), "ministral": (every_layer_window, {}),
    "phi3": (every_layer_window, {}), "phimoe": (every_layer_window, {}), "starcoder2": (every_layer_window, {}),
    "qwen2": (qwen2_style, {}), "qwen2_moe": (qwen2_style, {}), "qwen3": (qwen2_style, {"head_dim": 128}),
    "qwen3_moe": (qwen2_style, {}), "mimo": (qwen2_style, {}), "smollm3": (smollm3, {}),
    "gemma2": (gemma2, {}), "gemma3_text": (pattern_every("sliding_window_pattern", 6), {
        "head_dim": 256, "num_key_value_heads": 4, "sliding_window": 4096, "num_attention_heads": 8,
        "vocab_size": 262208, "tie_word_embeddings": True}),
    "cohere2": (pattern_every("sliding_window_pattern", 4), {}), "olmo3": (pattern_every("", 4), {}),
    "exaone4": (exaone4, {}), "gpt_oss": (gpt_oss, {"head_dim": 64, "sliding_window": 128}), "step3p7": (step3p7, {}),
    "llama4_text": (llama4, {}), "gemma4_text": (gemma4, {}), "gemma3n_text": (gemma3n, {}),
    "mimo_v2_flash": (mimo_v2, {}),
    # old spellings
    "gpt2": (gpt2_style, {}), "gptj": (gpt2_style, {}), "gpt_neox": (gpt2_style, {}), "bloom": (gpt2_style, {}),
    "gpt_bigcode": (gpt2_style, {}), "falcon": (falcon, {"max_position_embeddings": 2048}), "refinedweb": (falcon, {}), "refinedwebmodel": (falcon, {}),
    # MLA
    "deepseek_v2": (mla_family, {}), "deepseek_v3": (mla_family, {}), "kimi_k2": (mla_family, {}),
    "deepseek_v32": (mla_family, {}), "glm_moe_dsa": (mla_family, {}), "mistral_large3": (mla_family, {}),
    "longcat_flash": (longcat_flash, {}), "kimi_linear": (kimi_linear, {}),
    # linear attention and state spaces
    "qwen3_next": (qwen_next, {"head_dim": 256, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
                               "linear_conv_kernel_dim": 4, "linear_num_key_heads": 16, "linear_num_value_heads": 32}),
    "qwen3_5_text": (qwen_next, {}), "qwen3_5_moe_text": (qwen_next, {}),
    "nemotron_h": (nemotron_h, {"head_dim": 128, "ssm_state_size": 128, "mamba_num_heads": 128,
                                "mamba_head_dim": 64, "n_groups": 8, "conv_kernel": 4}),
    "jamba": (jamba, {}), "bamba": (bamba, {"max_position_embeddings": 262144, "mamba_n_heads": 128, "mamba_n_groups": 1, "mamba_d_state": 256,
                                          "mamba_d_conv": 4}),
    "granitemoehybrid": (granite_hybrid, {"mamba_n_heads": 128, "mamba_n_groups": 1, "mamba_d_state": 256,
                                          "mamba_d_conv": 4}),
    "falcon_h1": (falcon_h1, {"mamba_d_ssm": 1024, "mamba_n_heads": 128, "mamba_n_groups": 1, "mamba_d_state": 256,
                              "mamba_d_conv": 4}),
    "mamba": (mamba, {}), "falcon_mamba": (mamba, {}), "mamba2": (mamba2, {"n_groups": 8, "state_size": 128,
                                                                           "conv_kernel": 4, "head_dim": 64}),
    "minimax": (minimax, {}), "minimax_m1": (minimax, {}), "minimax_text_01": (minimax, {}),
    "lfm2": (lfm2, {}), "nemotron-nas": (decilm, {}), "deci": (decilm, {}), "decilm": (decilm, {}),
    # encoder-decoder
    **{name: (encoder_decoder, {}) for name in ("t5", "mt5", "umt5", "longt5", "bart", "mbart", "pegasus", "marian",
                                                "led", "whisper", "t5gemma", "switch_transformers", "prophetnet")},
}  # fmt: skip

# Wrappers whose language model sits under text_config (or another key), and the model_type of that part.
WRAPPERS = {
    "gemma3": ("text_config", "gemma3_text"), "gemma4": ("text_config", "gemma4_text"),
    "gemma3n": ("text_config", "gemma3n_text"), "llama4": ("text_config", "llama4_text"),
    "qwen3_5": ("text_config", "qwen3_5_text"), "qwen3_5_moe": ("text_config", "qwen3_5_moe_text"),
    "qwen3_vl": ("text_config", "qwen3_vl_text"), "qwen3_vl_moe": ("text_config", "qwen3_vl_moe_text"),
    "mistral3": ("text_config", None), "kimi_k25": ("text_config", None), "llava": ("text_config", None),
    "qwen2_5_vl": ("text_config", None), "kimi_vl": ("text_config", None),
}  # fmt: skip


def generic(c: Config) -> Draft:
    """A family mla-mem does not know: attention of every layer from the usual keys, as long as no key says that
    some layers differ (such a key stops the import, named)."""
    notes: list[str] = []
    layers = c.get_int("num_hidden_layers")
    if c.has("kv_lora_rank"):
        attention = mla_attention(c, notes)
        what = "MLA (kv_lora_rank is present)"
    else:
        attention = kv_attention(c, notes=notes)
        what = "grouped-query attention"
    explicit = layer_types(
        c, layers, {"full_attention": "full", "sliding_attention": "sliding", "chunked_attention": "chunked"}
    )
    kinds: dict[str, dict[str, Any]] = {"full": {"attention": attention}}
    if explicit is not None:
        if "sliding" in explicit:
            kinds["sliding"] = {"attention": attention, "window": window(c)}
        if "chunked" in explicit:
            kinds["chunked"] = {"attention": attention, "chunk": window(c, "attention_chunk_size")}
        return Draft(
            kinds,
            explicit,
            notes + [f"unknown model_type {c.raw('model_type')!r}: read as {what}, layer_types as given"],
        )
    if c.data.get("use_sliding_window") is False:
        c.read.update({"use_sliding_window", "sliding_window", "max_window_layers"})
    return Draft(
        kinds,
        ["full"] * layers,
        notes + [f"unknown model_type {c.raw('model_type') or '(none)'!r}: read as {what} on every layer"],
    )


# transformers' cache classes other than these say that some layers keep something else (hybrid, sliding, mamba)
PLAIN_CACHES = ("dynamic", "static", "offloaded", "offloaded_static", "quantized")


def unread_schedule_keys(c: Config) -> list[str]:
    """Keys that decide which layers cache what, set in the config and not read by its family's reader."""
    return [key for key, value in c.data.items() if key not in c.read and is_schedule_item(key, value)]


def read_family(model_type: str, c: Config) -> Draft:
    reader, defaults = FAMILIES.get(model_type, (generic, {}))
    c.defaults = defaults
    draft = reader(c)
    if model_type in FAMILIES:
        c.read.add("cache_implementation")  # a known family's reader knows which cache class it means

    unread = unread_schedule_keys(c)
    if unread:
        key = unread[0]
        family = (
            f"model_type {model_type!r}" if model_type in FAMILIES else f"unknown model_type {model_type or '(none)'!r}"
        )
        raise c.error(
            key,
            f"decides which layers cache what, and mla-mem does not read it for {family}; describe the model in YAML "
            "with `kinds` and `layer_types` (docs/config-format.md) instead of guessing",
        )
    return draft.drop_unused()


def normalise_spelling(data: dict[str, Any]) -> dict[str, Any]:
    """Old key names (GPT-2, GPT-J, BLOOM, Falcon, LongCat) as the modern ones, when the modern key is absent."""
    renames = {"n_layer": "num_hidden_layers", "n_head": "num_attention_heads", "n_embd": "hidden_size",
               "n_embed": "hidden_size",
               "n_positions": "max_position_embeddings", "seq_length": "max_position_embeddings"}  # fmt: skip
    out = dict(data)
    for old, new in renames.items():
        if old in out and new not in out:
            out[new] = out[old]
    return out


def family_from_architectures(architectures: Any) -> str | None:
    """The family of a config whose model_type mla-mem does not know, from the model class it names (vLLM picks
    its implementation by `architectures` too): 'Gemma2ForCausalLM' -> 'gemma2', 'NemotronHForCausalLM' ->
    'nemotron_h'. None when no known family matches."""
    if not isinstance(architectures, list) or not architectures or not isinstance(architectures[0], str):
        return None
    name = architectures[0]
    for suffix in ("ForCausalLM", "ForConditionalGeneration", "LMHeadModel", "Model"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    wanted = name.lower().replace("_", "")
    for family in (*FAMILIES, *WRAPPERS):
        if family.replace("_", "").replace("-", "") == wanted:
            return family
    return None
