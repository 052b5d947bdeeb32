"""Hugging Face `config.json` and Mistral `params.json` -> the model description (and a reviewed YAML).

Key names and defaults follow the configuration classes of the `transformers` package (read at 5.24:
`models/<family>/configuration_<family>.py`); transformers is not imported. The traps this reader avoids
(../shared/reference/MODELS.md):

- an MLA config's `num_key_value_heads` equals its query heads and is NOT a cached head count;
- GLM-5's (and DeepSeek-V3.2's) `head_dim: 64` is the rope dim, not the attention head size;
- Kimi Linear's `head_dim: 72` is a legacy field; the KDA head dim is `linear_attn_config.head_dim`;
- `quantization_config` describes the weights; only `kv_cache_scheme` changes the cache dtype.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from .configs import parse_model
from .errors import ConfigError
from .spec import ModelSpec

MAX_JSON_BYTES = 4 << 20  # the largest real config here (GLM-5 FP8 with its module lists) is 36 KB

MLA_TYPES = ("deepseek_v2", "deepseek_v3", "kimi_k2", "deepseek_v32", "glm_moe_dsa", "mistral_large3")
GQA_TYPES = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "qwen3_moe",
    "minimax_m2",
    "glm4_moe",
    "gemma3_text",
    "gpt_oss",
    "ministral",
    "qwen3_next",
)
WRAPPERS = ("gemma3", "mistral3", "kimi_k25", "llava", "qwen2_5_vl")

# Defaults of the transformers configuration classes for keys a config may leave out.
DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {
        "head_dim": 256,
        "num_key_value_heads": 4,
        "sliding_window": 4096,
        "num_attention_heads": 8,
        "vocab_size": 262208,
        "tie_word_embeddings": True,
    },
    "gpt_oss": {"head_dim": 64, "sliding_window": 128},
    "qwen3_next": {
        "head_dim": 256,
        "linear_key_head_dim": 128,
        "linear_value_head_dim": 128,
        "linear_conv_kernel_dim": 4,
        "linear_num_key_heads": 16,
        "linear_num_value_heads": 32,
    },
    "qwen3": {"head_dim": 128},
    "minimax_m2": {"head_dim": 128},
}


class AssumptionWarning(UserWarning):
    """An assumption the importer made; the CLI prints it on stderr."""


def read_json(path: Path) -> Any:
    name = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ConfigError(name, "", "no such file") from None
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read file ({exc.strerror or exc})") from None
    if path.is_dir():
        raise ConfigError(name, "", "is a directory, expected a config.json")
    if size > MAX_JSON_BYTES:
        raise ConfigError(name, "", f"file is {size:,} bytes; config files are limited to {MAX_JSON_BYTES:,}")
    try:
        data = path.read_bytes()[: MAX_JSON_BYTES + 1]
        text = data.decode("utf-8-sig")
    except PermissionError:
        raise ConfigError(name, "", "permission denied") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(name, "", f"not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read file ({exc.strerror or exc})") from None
    return parse_json_text(text, name)


def parse_json_text(text: str, name: str) -> dict[str, Any]:
    """A config's JSON text -> the object, with errors naming the file and line."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(name, "", f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    except RecursionError:
        raise ConfigError(name, "", "invalid JSON: nesting is too deep") from None
    except ValueError as exc:
        raise ConfigError(name, "", f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(name, "", f"expected a JSON object, got {type(value).__name__}")
    return value


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number")


def find_config(path: Path) -> Path:
    """A directory holding config.json (or params.json), or the file itself."""
    if path.is_dir():
        for name in ("config.json", "params.json"):
            if (path / name).is_file():
                return path / name
        raise ConfigError(str(path), "", "directory has no config.json or params.json")
    return path


def is_config_path(text: str) -> bool:
    path = Path(text)
    if text.endswith(".json"):
        return True
    return path.is_dir() and ((path / "config.json").is_file() or (path / "params.json").is_file())


class _Reader:
    """Typed access to one JSON object with errors naming the file and key."""

    def __init__(
        self, data: dict[str, Any], file: str, prefix: str = "", defaults: dict[str, Any] | None = None
    ):
        self.data = data
        self.file = file
        self.prefix = prefix
        self.defaults = defaults or {}

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def get_int(self, name: str, *, default: Any = ..., minimum: int = 1) -> int:
        value = self.data.get(name)
        if value is None:
            if name in self.defaults:
                return int(self.defaults[name])
            if default is not ...:
                return int(default)
            raise ConfigError(self.file, self.key(name), "is required (a positive integer) and missing")
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(self.file, self.key(name), f"expected an integer, got {value!r}")
        if value < minimum:
            raise ConfigError(self.file, self.key(name), f"expected an integer >= {minimum}, got {value}")
        if value > 1 << 40:
            raise ConfigError(self.file, self.key(name), f"{value:,} is larger than any real model allows")
        return value

    def opt_int(self, name: str, minimum: int = 1) -> int | None:
        if self.data.get(name) is None and name not in self.defaults:
            return None
        return self.get_int(name, minimum=minimum)

    def get_list(self, name: str) -> list[Any] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise ConfigError(self.file, self.key(name), f"expected a list, got {type(value).__name__}")
        return value


def _dtype_of(data: dict[str, Any], outer: dict[str, Any], file: str, notes: list[str]) -> str:
    raw = data.get("torch_dtype") or data.get("dtype") or outer.get("torch_dtype") or outer.get("dtype")
    mapping = {
        "bfloat16": "bf16",
        "float16": "fp16",
        "float32": "fp32",
        "bf16": "bf16",
        "fp16": "fp16",
        "fp32": "fp32",
    }
    dtype = mapping.get(str(raw).lower()) if raw is not None else None
    if dtype is None:
        if raw is not None:
            notes.append(f"model dtype {raw!r} is not a cache dtype; assumed bf16")
        else:
            notes.append("no torch_dtype / dtype in the config; assumed bf16")
        dtype = "bf16"
    quant = data.get("quantization_config") or outer.get("quantization_config")
    if isinstance(quant, dict) and isinstance(quant.get("kv_cache_scheme"), dict):
        scheme = quant["kv_cache_scheme"]
        bits, kind = scheme.get("num_bits"), str(scheme.get("type", "float")).lower()
        if bits == 8:
            dtype = "fp8" if kind == "float" else "int8"
            notes.append(f"cache dtype {dtype} from quantization_config.kv_cache_scheme")
        elif bits is not None:
            raise ConfigError(
                file, "quantization_config.kv_cache_scheme.num_bits", f"unsupported value {bits!r}"
            )
    return dtype


def _layer_kinds_from_types(types: list[Any], layers: int, file: str, key: str) -> list[str]:
    names = {
        "full_attention": "full", "attention": "full", "global": "full", "indexed_attention": "full",
        "sliding_attention": "sliding", "sliding_window": "sliding", "local": "sliding", "chunked_attention": None,
        "linear_attention": "linear", "linear": "linear",
    }  # fmt: skip
    if len(types) != layers:
        raise ConfigError(file, key, f"has {len(types)} entries but num_hidden_layers is {layers}")
    kinds = []
    for index, item in enumerate(types):
        kind = names.get(str(item)) if isinstance(item, str) else None
        if kind is None:
            raise ConfigError(
                file,
                key,
                f"item {index}: unknown layer type {item!r}; expected full_attention, "
                "sliding_attention or linear_attention",
            )
        kinds.append(kind)
    return kinds


def _pattern_or_list(kinds: list[str]) -> dict[str, Any]:
    """The shortest repeating pattern that reproduces `kinds` (layer_pattern), else layer_types."""
    if len(set(kinds)) == 1:
        return {} if kinds[0] == "full" else {"layer_pattern": [kinds[0]]}
    for size in range(1, len(kinds) // 2 + 1):
        pattern = kinds[:size]
        if all(kinds[i] == pattern[i % size] for i in range(len(kinds))):
            return {"layer_pattern": pattern}
    return {"layer_types": kinds}


def convert(data: dict[str, Any], file: str, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A parsed config.json / params.json -> (model dict in our YAML schema, notes on what was inferred)."""
    notes: list[str] = []
    if "dim" in data and "n_layers" in data and "n_heads" in data:
        return _convert_mistral_params(data, file, name, notes), notes
    outer = data
    model_type = str(data.get("model_type", "")).lower()
    prefix = ""
    if isinstance(data.get("text_config"), dict) and (
        model_type in WRAPPERS or "num_hidden_layers" not in data
    ):
        data = data["text_config"]
        prefix = "text_config."
        model_type = str(data.get("model_type", model_type)).lower() or model_type
        if model_type == "gemma3":
            model_type = "gemma3_text"
    if model_type in ("deepseek_v41", "deepseek_v41_text"):
        raise ConfigError(
            file,
            f"{prefix}model_type",
            f"{model_type} (DeepSeek-V4.1 cross-layer cache sharing) is not supported yet",
        )
    if model_type == "deepseek_v4":
        return _convert_deepseek_v4(data, outer, file, prefix, name, notes), notes
    defaults = DEFAULTS.get(model_type, {})
    reader = _Reader(data, file, prefix, defaults)
    layers = reader.get_int("num_hidden_layers")
    if layers > 100_000:
        raise ConfigError(
            file, reader.key("num_hidden_layers"), f"{layers:,} layers is beyond any real model"
        )
    heads = reader.get_int("num_attention_heads")
    out: dict[str, Any] = {"name": name or "imported model"}
    out["dtype"] = _dtype_of(data, outer, file, notes)
    max_context = reader.opt_int("max_position_embeddings") or reader.opt_int("model_max_length")
    if max_context:
        out["max_context"] = max_context
    out["layers"] = layers
    mtp = reader.opt_int("num_nextn_predict_layers", minimum=0) or 0
    if mtp:
        out["mtp_layers"] = mtp
    known = model_type in MLA_TYPES or model_type in GQA_TYPES or model_type in ("kimi_linear", "gemma3_text")
    is_mla = reader.has("kv_lora_rank")
    if not known:
        what = "MLA (kv_lora_rank is present)" if is_mla else "grouped-query attention"
        notes.append(f"unknown model_type {model_type or '(none)'!r}: read as {what}")
    kinds = ["full"] * layers

    if is_mla:
        if reader.has("num_key_value_heads") and reader.get_int("num_key_value_heads") != 1:
            notes.append(
                f"num_key_value_heads ({reader.get_int('num_key_value_heads')}) ignored: an MLA layer caches "
                "one latent, not per-head keys"
            )
        attention: dict[str, Any] = {
            "kind": "mla",
            "heads": heads,
            "kv_lora_rank": reader.get_int("kv_lora_rank"),
            "qk_rope_head_dim": reader.get_int("qk_rope_head_dim"),
            "qk_nope_head_dim": reader.get_int("qk_nope_head_dim"),
            "v_head_dim": reader.get_int("v_head_dim"),
        }
        if reader.has("q_lora_rank"):
            attention["q_lora_rank"] = reader.get_int("q_lora_rank")
        if reader.has("head_dim") and reader.get_int("head_dim") == attention["qk_rope_head_dim"]:
            notes.append(
                f"head_dim {reader.get_int('head_dim')} is the rope dim (qk_rope_head_dim), not the head size"
            )
        out["attention"] = attention
    else:
        kv_heads = reader.get_int("num_key_value_heads", default=heads)
        if not reader.has("num_key_value_heads") and "num_key_value_heads" not in defaults:
            notes.append(f"no num_key_value_heads: assumed {heads} (MHA)")
        if reader.has("head_dim") or "head_dim" in defaults:
            head_dim = reader.get_int("head_dim")
        else:
            hidden = reader.get_int("hidden_size")
            if hidden % heads:
                raise ConfigError(
                    file,
                    reader.key("head_dim"),
                    f"missing, and hidden_size {hidden} is not a multiple of num_attention_heads {heads}",
                )
            head_dim = hidden // heads
            notes.append(f"no head_dim: hidden_size / num_attention_heads = {head_dim}")
        out["attention"] = _kv_attention(heads, kv_heads, head_dim)

    # Layer kinds: explicit layer_types first, then each family's default pattern.
    types = reader.get_list("layer_types")
    window = reader.opt_int("sliding_window")
    if model_type == "kimi_linear":
        kinds = _kimi_linear_layers(reader, layers, file, prefix)
    elif types is not None:
        kinds = _layer_kinds_from_types(types, layers, file, reader.key("layer_types"))
    elif model_type == "qwen3_next":
        interval = reader.get_int("full_attention_interval", default=4)
        kinds = ["full" if (i + 1) % interval == 0 else "linear" for i in range(layers)]
    elif model_type == "gemma3_text":
        period = reader.get_int("sliding_window_pattern", default=6)
        kinds = ["full" if (i + 1) % period == 0 else "sliding" for i in range(layers)]
        notes.append(f"no layer_types: transformers' default Gemma 3 pattern, every {period}th layer global")
    elif model_type == "gpt_oss":
        kinds = ["sliding" if i % 2 == 0 else "full" for i in range(layers)]
    elif model_type in ("qwen2", "qwen3", "qwen3_moe"):
        if data.get("use_sliding_window") and window:
            first = reader.get_int("max_window_layers", default=28, minimum=0)
            kinds = ["sliding" if i >= first else "full" for i in range(layers)]
    elif window and model_type in ("mistral", "ministral", "") or (window and not known):
        kinds = ["sliding"] * layers
        notes.append(f"sliding_window {window} applies to every layer (no layer_types)")
    if "sliding" in kinds:
        if not window:
            raise ConfigError(
                file, reader.key("sliding_window"), "is required: the config has sliding layers"
            )
        out["sliding_window"] = window
    out.update(_pattern_or_list(kinds))
    if model_type == "qwen3_next":
        out["linear_attention"] = {
            "kind": "gated_deltanet",
            "key_heads": reader.get_int("linear_num_key_heads"),
            "value_heads": reader.get_int("linear_num_value_heads"),
            "key_head_dim": reader.get_int("linear_key_head_dim"),
            "value_head_dim": reader.get_int("linear_value_head_dim"),
            "conv_kernel": reader.get_int("linear_conv_kernel_dim"),
        }
    elif model_type == "kimi_linear":
        linear = _Reader(data.get("linear_attn_config") or {}, file, f"{prefix}linear_attn_config.")
        out["linear_attention"] = {
            "kind": "kda",
            "heads": linear.get_int("num_heads", default=heads),
            "head_dim": linear.get_int("head_dim"),
            "conv_kernel": linear.get_int("short_conv_kernel_size", default=4),
        }
        if data.get("mla_use_nope"):
            notes.append("mla_use_nope: the MLA layers use no rope, but runtimes still cache the rope slot")
    elif "linear" in kinds:
        raise ConfigError(
            file,
            reader.key("layer_types"),
            f"linear_attention layers in model_type {model_type!r} "
            "are not understood; describe the model in YAML",
        )
    if reader.has("index_n_heads") or reader.has("index_head_dim"):
        out["indexer"] = _indexer(reader)
    weights = _weights(reader, data, outer, notes)
    if weights:
        out["weights"] = weights
    return out, notes


def _kv_attention(heads: int, kv_heads: int, head_dim: int) -> dict[str, Any]:
    """The attention section of a K/V model: MHA, MQA or GQA by its KV head count."""
    kind = "mha" if kv_heads == heads else ("mqa" if kv_heads == 1 else "gqa")
    attention: dict[str, Any] = {"kind": kind, "heads": heads}
    if kind == "gqa":
        attention["kv_heads"] = kv_heads
    attention["head_dim"] = head_dim
    return attention


def _indexer(reader: _Reader) -> dict[str, Any]:
    """DSA / Lightning Indexer keys: index_n_heads, index_head_dim, index_topk."""
    return {
        "heads": reader.get_int("index_n_heads"),
        "head_dim": reader.get_int("index_head_dim"),
        "topk": reader.get_int("index_topk", default=2048),
    }


def _first(reader: _Reader, *names: str) -> int | None:
    for name in names:
        if reader.has(name) or name in reader.defaults:
            return reader.get_int(name, minimum=0)
    return None


def _weights(
    reader: _Reader, data: dict[str, Any], outer: dict[str, Any], notes: list[str]
) -> dict[str, Any] | None:
    """The `weights` section (for parameter counts and `fit`), when the config has the dims. Handles HF keys and
    the native params files (dim, hidden_dim / inter_dim, moe)."""
    hidden = _first(reader, "hidden_size", "dim")
    vocab = _first(reader, "vocab_size")
    if not hidden or not vocab:
        return None
    weights: dict[str, Any] = {"hidden_size": hidden, "vocab_size": vocab}
    moe_value = data.get("moe")
    moe_block: dict[str, Any] = moe_value if isinstance(moe_value, dict) else {}
    moe_reader = _Reader(moe_block, reader.file, f"{reader.prefix}moe.")
    experts = _first(reader, "n_routed_experts", "num_experts", "num_local_experts") or _first(
        moe_reader, "num_experts"
    )
    first_dense = _first(reader, "first_k_dense_replace", "n_dense_layers") or _first(
        moe_reader, "first_k_dense_replace"
    )
    dense = _first(reader, "intermediate_size", "hidden_dim", "inter_dim")
    if dense and (not experts or first_dense):
        weights["intermediate_size"] = dense
    tied = data.get("tie_word_embeddings", reader.defaults.get("tie_word_embeddings"))
    if tied is True or data.get("tied_embeddings") is True:
        weights["tie_embeddings"] = True
    quant = data.get("quantization_config") or outer.get("quantization_config")
    if isinstance(quant, dict):
        method = str(quant.get("quant_method", "")).lower()
        if method == "fp8" or (method == "compressed-tensors" and "float" in json.dumps(quant)):
            weights["dtype"] = "fp8"
        elif method == "mxfp4":
            weights["dtype"] = "mxfp4-experts"
            notes.append("weights: quant_method mxfp4 read as MoE experts in MXFP4, the rest bf16")
    elif str(data.get("dtype", "")).lower() == "fp8":
        weights["dtype"] = "fp8"
    if experts:
        moe: dict[str, Any] = {
            "experts": experts,
            "experts_per_token": _first(
                reader,
                "num_experts_per_tok",
                "experts_per_token",
                "n_activated_experts",
                "num_experts_per_token",
            )
            or _first(moe_reader, "num_experts_per_tok")
            or 1,
        }
        shared = _first(reader, "n_shared_experts", "num_shared_experts") or _first(
            moe_reader, "num_shared_experts"
        )
        if shared is None and reader.has("shared_expert_intermediate_size"):
            shared = 1
        if shared:
            moe["shared_experts"] = shared
        inter = _first(reader, "moe_intermediate_size", "moe_inter_dim") or _first(
            moe_reader, "expert_hidden_dim"
        )
        if inter is None:
            inter = _first(reader, "intermediate_size")
        if inter is None:
            return None
        moe["intermediate_size"] = inter
        if first_dense:
            moe["first_dense_layers"] = first_dense
        weights["moe"] = moe
    return weights


V4_TYPES = {
    "sliding_attention": "window",
    "compressed_sparse_attention": "csa",
    "heavily_compressed_attention": "hca",
}


def _convert_deepseek_v4(
    data: dict[str, Any], outer: dict[str, Any], file: str, prefix: str, name: str | None, notes: list[str]
) -> dict[str, Any]:
    """DeepSeek-V4 in either spelling: `compress_ratios` (one int per layer, MTP layers after the first
    num_hidden_layers entries) or transformers' `layer_types` + `compress_rates` (configuration_deepseek_v4.py)."""
    reader = _Reader(data, file, prefix)
    layers = reader.get_int("num_hidden_layers")
    out: dict[str, Any] = {"name": name or "imported model", "dtype": _dtype_of(data, outer, file, notes)}
    context = reader.opt_int("max_position_embeddings")
    if context:
        out["max_context"] = context
    out["layers"] = layers
    mtp = reader.opt_int("num_nextn_predict_layers", minimum=0) or 0
    if mtp:
        out["mtp_layers"] = mtp
    out["attention"] = {
        "kind": "compressed",
        "heads": reader.get_int("num_attention_heads"),
        "head_dim": reader.get_int("head_dim"),
        "qk_rope_head_dim": reader.get_int("qk_rope_head_dim"),
    }
    if reader.has("num_key_value_heads") and reader.get_int("num_key_value_heads") != 1:
        raise ConfigError(
            file,
            reader.key("num_key_value_heads"),
            f"DeepSeek-V4 caches one shared key-value head; got {reader.get_int('num_key_value_heads')}",
        )
    out["sliding_window"] = reader.get_int("sliding_window")
    ratios = reader.get_list("compress_ratios")
    types = reader.get_list("layer_types")
    rates = {"csa": 4, "hca": 128}
    if types is not None:
        if len(types) < layers:
            raise ConfigError(
                file, reader.key("layer_types"), f"has {len(types)} entries, fewer than the {layers} layers"
            )
        kinds = []
        for index, item in enumerate(types[:layers]):
            if item not in V4_TYPES:
                raise ConfigError(
                    file,
                    reader.key("layer_types"),
                    f"item {index}: unknown layer type {item!r}; expected one of {', '.join(V4_TYPES)}",
                )
            kinds.append(V4_TYPES[item])
        given = data.get("compress_rates")
        if isinstance(given, dict):
            for key, value in given.items():
                if key in V4_TYPES and V4_TYPES[key] in rates:
                    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                        raise ConfigError(
                            file,
                            reader.key(f"compress_rates.{key}"),
                            f"expected a positive integer, got {value!r}",
                        )
                    rates[V4_TYPES[key]] = value
        elif given is None:
            notes.append("no compress_rates: transformers' defaults csa 4, hca 128")
    elif ratios is not None:
        if len(ratios) < layers:
            raise ConfigError(
                file,
                reader.key("compress_ratios"),
                f"has {len(ratios)} entries, fewer than the {layers} layers",
            )
        if len(ratios) > layers:
            notes.append(
                f"compress_ratios has {len(ratios)} entries: the {len(ratios) - layers} after "
                f"num_hidden_layers ({layers}) belong to MTP layers and are sliced off"
            )
        values = sorted({r for r in ratios[:layers] if r})
        if any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in ratios[:layers]):
            raise ConfigError(
                file, reader.key("compress_ratios"), "expected non-negative integers (0 = window only)"
            )
        if len(values) > 2:
            raise ConfigError(
                file, reader.key("compress_ratios"), f"more than two compression ratios {values}"
            )
        # the smaller ratio is the sparse (indexed) one, as in V4: 4 -> csa, 128 -> hca
        by_ratio = {}
        if values:
            by_ratio[values[0]] = "csa"
            rates["csa"] = values[0]
        if len(values) == 2:
            by_ratio[values[1]] = "hca"
            rates["hca"] = values[1]
        kinds = ["window" if r == 0 else by_ratio[r] for r in ratios[:layers]]
    else:
        raise ConfigError(
            file,
            reader.key("compress_ratios"),
            "DeepSeek-V4 needs compress_ratios or layer_types "
            "(mla-mem does not assume the V4-Pro default pattern, which is wrong for Flash)",
        )
    out["compress_rates"] = {k: v for k, v in rates.items() if k in kinds}
    out.update(_pattern_or_list(kinds) if set(kinds) != {"window"} else {"layer_pattern": ["window"]})
    if reader.has("index_n_heads"):
        out["indexer"] = _indexer(reader)
    return out


def _kimi_linear_layers(reader: _Reader, layers: int, file: str, prefix: str) -> list[str]:
    config = reader.data.get("linear_attn_config")
    types = reader.get_list("layer_types")
    if types is not None:
        return _layer_kinds_from_types(types, layers, file, reader.key("layer_types"))
    if not isinstance(config, dict):
        raise ConfigError(
            file, f"{prefix}linear_attn_config", "is required for kimi_linear (KDA layer positions)"
        )
    kinds: list[str | None] = [None] * layers
    for key, kind in (("full_attn_layers", "full"), ("kda_layers", "linear")):
        values = config.get(key)
        if not isinstance(values, list):
            raise ConfigError(
                file, f"{prefix}linear_attn_config.{key}", "expected a list of 1-based layer numbers"
            )
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= layers:
                raise ConfigError(
                    file,
                    f"{prefix}linear_attn_config.{key}",
                    f"layer {value!r} is not between 1 and {layers} (1-based)",
                )
            kinds[value - 1] = kind  # 1-based in the checkpoint (configuration_kimi_linear.py)
    missing = [i + 1 for i, kind in enumerate(kinds) if kind is None]
    if missing:
        raise ConfigError(
            file,
            f"{prefix}linear_attn_config",
            f"layers {missing[:5]} are in neither full_attn_layers nor kda_layers",
        )
    return [k for k in kinds if k is not None]


def _convert_mistral_params(
    data: dict[str, Any], file: str, name: str | None, notes: list[str]
) -> dict[str, Any]:
    reader = _Reader(data, file)
    layers = reader.get_int("n_layers")
    heads = reader.get_int("n_heads")
    out: dict[str, Any] = {"name": name or "imported model", "dtype": "bf16"}
    notes.append(
        "native params file (Mistral params.json / DeepSeek inference config) names no cache dtype: "
        "assumed bf16"
    )
    context = reader.opt_int("max_position_embeddings") or reader.opt_int("max_seq_len")
    if context:
        out["max_context"] = context
    out["layers"] = layers
    if reader.has("kv_lora_rank"):
        attention: dict[str, Any] = {
            "kind": "mla", "heads": heads, "kv_lora_rank": reader.get_int("kv_lora_rank"),
            "qk_rope_head_dim": reader.get_int("qk_rope_head_dim"), "qk_nope_head_dim": reader.get_int("qk_nope_head_dim"),
            "v_head_dim": reader.get_int("v_head_dim"),
        }  # fmt: skip
        if reader.has("q_lora_rank"):
            attention["q_lora_rank"] = reader.get_int("q_lora_rank")
        if reader.has("n_kv_heads"):
            notes.append(
                f"n_kv_heads ({reader.get_int('n_kv_heads')}) ignored: an MLA layer caches one latent"
            )
        out["attention"] = attention
    else:
        kv_heads = reader.get_int("n_kv_heads", default=heads)
        head_dim = reader.get_int("head_dim") if reader.has("head_dim") else reader.get_int("dim") // heads
        out["attention"] = _kv_attention(heads, kv_heads, head_dim)
        window = reader.opt_int("sliding_window")
        if window:
            out["layer_pattern"] = ["sliding"]
            out["sliding_window"] = window
    if reader.has("index_n_heads"):
        out["indexer"] = _indexer(reader)
    weights = _weights(reader, data, data, notes)
    if weights:
        out["weights"] = weights
    return out


def model_name_from_path(path: Path) -> str:
    """DeepSeek-V3/config.json -> 'DeepSeek-V3'; deepseek-v3.config.json -> 'deepseek-v3'."""
    if path.name in ("config.json", "params.json") and path.parent.name not in ("", "."):
        return path.resolve().parent.name
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    for suffix in (".config", ".params", "-config", "_config"):
        stem = stem.split(suffix)[0] if suffix in stem else stem
    return stem or "imported model"


def import_config(path_text: str, name: str | None = None) -> tuple[dict[str, Any], list[str], str]:
    """(model dict, notes, file name) for a config.json / params.json path or its directory."""
    path = find_config(Path(path_text))
    data = read_json(path)
    model, notes = convert(data, str(path), name or model_name_from_path(path))
    return model, notes, str(path)


def load_config(path_text: str, name: str | None = None) -> ModelSpec:
    """A ModelSpec straight from a config.json / params.json; assumptions are issued as warnings."""
    model, notes, file = import_config(path_text, name)
    return _spec_with_notes(model, notes, file)


def load_config_text(text: str, file: str, name: str) -> ModelSpec:
    """A ModelSpec from a config's JSON text (e.g. a file at a git revision)."""
    model, notes = convert(parse_json_text(text, file), file, name)
    return _spec_with_notes(model, notes, file)


def _spec_with_notes(model: dict[str, Any], notes: list[str], file: str) -> ModelSpec:
    for note in notes:
        warnings.warn(f"{file}: {note}", AssumptionWarning, stacklevel=2)
    return parse_model(model, file)


def to_yaml(model: dict[str, Any], notes: list[str], source: str) -> str:
    """The model as a YAML document in our format, with comments on what was inferred."""
    lines = [
        f"# Imported by mla-mem from {source}",
        "# Review before committing; inferred values are marked.",
    ]
    for note in notes:
        lines.append(f"# inferred: {note}")
    order = [
        "name",
        "source",
        "dtype",
        "max_context",
        "layers",
        "mtp_layers",
        "attention",
        "sliding_window",
        "compress_rates",
        "layer_pattern",
        "layer_types",
        "linear_attention",
        "indexer",
    ]
    model = {"source": source, **model} if "source" not in model else model
    for key in order:
        if key not in model:
            continue
        value = model[key]
        if isinstance(value, dict):
            lines.append(f"{key}:")
            for sub, item in value.items():
                if isinstance(item, dict):
                    inner = ", ".join(f"{k}: {_scalar(v)}" for k, v in item.items())
                    lines.append(f"  {sub}: {{{inner}}}")
                else:
                    lines.append(f"  {sub}: {_scalar(item)}")
        elif isinstance(value, list):
            lines.extend(_wrapped_list(key, [_scalar(v) for v in value]))
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def _wrapped_list(key: str, items: list[str], width: int = 110) -> list[str]:
    """`key: [a, b, ...]` as a YAML flow list, continued on indented lines past `width`."""
    lines = []
    current = f"{key}: ["
    indent = " " * len(current)
    for index, item in enumerate(items):
        piece = item + (", " if index < len(items) - 1 else "]")
        if len(current) + len(piece.rstrip()) > width and current.strip() not in (f"{key}: [",):
            lines.append(current.rstrip())
            current = indent
        current += piece
    lines.append(current.rstrip())
    return lines


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if (
        text
        and all(c.isalnum() or c in "-_./: " for c in text)
        and not text[0].isdigit()
        and ": " not in text
    ):
        return text
    return json.dumps(text)
