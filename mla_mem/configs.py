"""The YAML model schema -> ModelSpec, and the registry of built-in models.

Two spellings of a model (docs/config-format.md):
- layer kinds with their own dims: `kinds: {name: {attention: ..., window: ..., indexer: ..., state: ...}}` and a
  `layer_pattern` / `layer_types` of kind names;
- the short form for models whose layers share one attention: `attention`, `layer_pattern` of full / sliding /
  linear (or window / csa / hca for DeepSeek-V4), `sliding_window`, `linear_attention`, `indexer`,
  `compress_rates`. It is read into the same kinds.

Reading is strict (yamlio.py): every error names the file, the line and the key path.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, UsageError
from .spec import (
    MLA,
    WEIGHT_DTYPES,
    AnyAttention,
    Attention,
    Compressed,
    GatedDeltaNet,
    Indexer,
    LayerKind,
    Lightning,
    Mamba1,
    Mamba2,
    ModelSpec,
    Params,
    ShortConv,
    State,
    Vision,
    Weights,
)
from .units import parse_dtype, parse_params
from .yamlio import (
    MAX_CONTEXT_FIELD,
    MAX_DIM,
    MAX_LAYERS,
    Section,
    load_yaml,
    read_text,
    suggest,
    type_name,
)

MODEL_KEYS = (
    "name", "source", "aliases", "params", "dtype", "cache_dtype", "max_context", "layers", "mtp_layers", "mtp_kind", "kinds",
    "attention", "layer_pattern", "layer_types", "sliding_window", "linear_attention", "indexer", "notes",
    "compress_rates", "weights", "checkpoint", "architecture", "vision",
)  # fmt: skip
SHORT_FORM_KEYS = ("attention", "sliding_window", "linear_attention", "indexer", "compress_rates")
KIND_KEYS = (
    "attention",
    "window",
    "chunk",
    "compress_ratio",
    "attention_blocks",
    "indexer",
    "state",
    "description",
)
ATTENTION_KEYS = (
    "kind", "heads", "kv_heads", "head_dim", "v_head_dim", "k_eq_v", "kv_lora_rank", "qk_rope_head_dim",
    "qk_nope_head_dim", "q_lora_rank", "o_groups", "o_lora_rank",
)  # fmt: skip
STATE_FIELDS: dict[str, tuple[str, ...]] = {
    "gated_deltanet": ("key_heads", "value_heads", "key_head_dim", "value_head_dim", "conv_kernel"),
    "kda": ("heads", "head_dim", "conv_kernel"),
    "mamba1": ("d_inner", "d_state", "conv_kernel"),
    "mamba2": ("heads", "head_dim", "groups", "d_state", "conv_kernel"),
    "lightning": ("heads", "head_dim"),
    "short_conv": ("channels", "conv_kernel"),
}
INDEXER_KEYS = ("heads", "head_dim", "topk", "layers")
RECURRENT_DTYPE_KINDS = ("gated_deltanet", "kda", "mamba1", "mamba2")

WEIGHT_KEYS = ("hidden_size", "vocab_size", "intermediate_size", "tie_embeddings", "moe", "dtype", "hc_mult")
MOE_KEYS = ("experts", "experts_per_token", "shared_experts", "intermediate_size", "first_dense_layers")
SHORT_KINDS = ("full", "sliding", "linear")
COMPRESSED_KINDS = ("window", "csa", "hca")
KIND_NAME = re.compile(r"[a-z][a-z0-9_\-]{0,39}")


def parse_model(data: Any, file: str) -> ModelSpec:
    """Validate a parsed YAML document and build the ModelSpec."""
    if data is None:
        raise ConfigError(file, "", "the file is empty; expected a model description (name, layers, attention)")
    top = Section(data, file)
    top.expect(MODEL_KEYS)
    name = top.get_str("name", required=True)
    assert name is not None
    source = top.get_str("source")
    checkpoint = top.get_str("checkpoint")  # where measured weight sizes are read (checkpoint.py)
    top.get_str("notes")
    aliases = []
    for index, alias in enumerate(top.get_list("aliases") or []):
        if not isinstance(alias, str) or not alias.strip():
            raise top.error("aliases", f"item {index}: expected a name, got {type_name(alias)}")
        aliases.append(alias.strip())
    params = _parse_params(top.section("params", required=False))
    dtype = top.get_str("dtype", default="bf16")
    assert dtype is not None
    try:
        dtype = parse_dtype(dtype).name
    except UsageError as exc:
        raise top.error("dtype", str(exc)) from None
    cache_dtype = top.get_str("cache_dtype")
    if cache_dtype is not None:
        try:
            cache_dtype = parse_dtype(cache_dtype).name
        except UsageError as exc:
            raise top.error("cache_dtype", str(exc)) from None
    max_context = top.get_int("max_context", required=False, maximum=MAX_CONTEXT_FIELD)
    layers = top.req_int("layers", maximum=MAX_LAYERS)
    mtp_layers = top.get_int("mtp_layers", default=0, minimum=0, maximum=1000)
    assert mtp_layers is not None

    if top.has("kinds"):
        for key in SHORT_FORM_KEYS:
            if top.has(key):
                top.used.add(key)
                raise top.error(key, "give it inside a kind: with `kinds`, each kind carries its own attention")
        kinds = _parse_kinds(top)
        layer_kinds = _parse_layer_kinds(top, layers, tuple(k.name for k in kinds), default=None)
        mtp_kind = top.get_str("mtp_kind")
    else:
        kinds, layer_kinds, mtp_kind = _short_form(top, layers)
    if mtp_kind is not None and mtp_kind not in {k.name for k in kinds}:
        raise top.error("mtp_kind", f"unknown kind {mtp_kind!r}{suggest(mtp_kind, [k.name for k in kinds])}")
    weights_section = top.section("weights", required=False)
    weights = _parse_weights(weights_section, layers) if weights_section is not None else None
    architecture = top.get_str("architecture")
    vision_section = top.section("vision", required=False)
    vision = None
    if vision_section is not None:
        vision_section.expect(("layers", "hidden_size"))
        vision = Vision(vision_section.get_int("layers", required=False, maximum=MAX_LAYERS),
                        vision_section.get_int("hidden_size", required=False))  # fmt: skip
        vision_section.done()
    top.done()
    spec = ModelSpec(
        name=name, layers=layers, kinds=tuple(kinds), layer_kinds=layer_kinds, mtp_layers=mtp_layers,
        mtp_kind=mtp_kind, dtype=dtype, cache_dtype=cache_dtype, max_context=max_context, source=source, aliases=tuple(aliases),
        params=params, path=file, weights=weights, checkpoint=checkpoint, architecture=architecture, vision=vision,
    )  # fmt: skip
    if mtp_layers and spec.mtp_layer_kind is None:
        raise top.error("mtp_layers", "no layer kind with full attention for the MTP layers; set mtp_kind")
    return spec


def _parse_params(section: Section | None) -> Params:
    if section is None:
        return Params()
    section.expect(("total", "active"))
    values = {}
    for key in ("total", "active"):
        raw = section.raw(key)
        if raw is not None:
            try:
                values[key] = parse_params(raw, section.key(key))
            except UsageError as exc:
                raise section.error(key, str(exc).split(": ", 1)[-1]) from None
    section.done()
    return Params(**values)


# ---------------------------------------------------------------------------------------------------------
# Kinds


def _parse_kinds(top: Section) -> list[LayerKind]:
    section = top.section("kinds")
    assert section is not None
    if not section.data:
        raise top.error("kinds", "must name at least one kind")
    kinds = []
    for name in section.data:
        if not KIND_NAME.fullmatch(name):
            raise section.error(name, "a kind name is lower-case letters, digits, _ and - (at most 40)")
        value = section.data[name]
        if value is None:
            value = {}
        section.used.add(name)
        kinds.append(_parse_kind(Section(value, section.file, section.key(name), section.line(name)), name))
    return kinds


def _parse_kind(section: Section, name: str) -> LayerKind:
    section.expect(KIND_KEYS)
    attention_section = section.section("attention", required=False)
    attention = _parse_attention(attention_section) if attention_section is not None else None
    window = section.get_int("window", required=False, maximum=MAX_CONTEXT_FIELD)
    chunk = section.get_int("chunk", required=False, maximum=MAX_CONTEXT_FIELD)
    ratio = section.get_int("compress_ratio", default=0, minimum=0, maximum=1 << 20)
    blocks = section.get_int("attention_blocks", default=1, maximum=64)
    assert ratio is not None and blocks is not None
    for key, value in (("window", window), ("chunk", chunk), ("attention_blocks", blocks > 1 or None)):
        if value is not None and attention is None:
            raise section.error(key, "needs an `attention` in the same kind")
    if window is not None and chunk is not None:
        raise section.error("chunk", "a kind has a window or a chunk, not both")
    compressed = isinstance(attention, Compressed)
    if ratio and not compressed:
        raise section.error("compress_ratio", "only applies to attention kind compressed (DeepSeek-V4)")
    if compressed and window is None:
        raise section.error("window", "is required for attention kind compressed (every layer keeps a window)")
    indexer_section = section.section("indexer", required=False)
    indexer = None
    if indexer_section is not None:
        if attention is None:
            raise section.error("indexer", "needs an `attention` in the same kind")
        indexer = _parse_indexer(indexer_section, allow_layers=False)
    state_section = section.section("state", required=False)
    state = _parse_state(state_section) if state_section is not None else None
    description = section.get_str("description") or ""
    section.done()
    return LayerKind(
        name=name, attention=attention, window=window, chunk=chunk, compress_ratio=ratio, attention_blocks=blocks,
        indexer=indexer, state=state, description=description,
    )  # fmt: skip


def _parse_attention(section: Section) -> AnyAttention:
    section.expect(ATTENTION_KEYS)
    kind = section.choice("kind", ("mha", "gqa", "mqa", "mla", "compressed"))
    heads = section.req_int("heads")
    if kind == "compressed":
        _forbid(section, ("kv_heads", "kv_lora_rank", "qk_nope_head_dim", "v_head_dim", "k_eq_v"),
                "does not apply to kind compressed (one shared key-value vector of head_dim per entry)")  # fmt: skip
        compressed = Compressed(
            heads, section.req_int("head_dim"), section.req_int("qk_rope_head_dim"),
            q_lora_rank=section.get_int("q_lora_rank", required=False),
            o_groups=section.get_int("o_groups", required=False),
            o_lora_rank=section.get_int("o_lora_rank", required=False),
        )  # fmt: skip
        section.done()
        return compressed
    if kind == "mla":
        _forbid(section, ("kv_heads", "head_dim", "k_eq_v", "o_groups", "o_lora_rank"),
                "does not apply to MLA: an MLA layer caches one latent of kv_lora_rank + qk_rope_head_dim, "
                "not per-head keys (remove it)")  # fmt: skip
        if not section.has("kv_lora_rank"):
            raise ConfigError(
                section.file,
                section.key("kv_lora_rank"),
                "is required for kind mla (the latent width, e.g. 512)",
            )
        mla = MLA(
            heads=heads,
            kv_lora_rank=section.req_int("kv_lora_rank"),
            qk_rope_head_dim=section.req_int("qk_rope_head_dim"),
            qk_nope_head_dim=section.req_int("qk_nope_head_dim"),
            v_head_dim=section.req_int("v_head_dim"),
            q_lora_rank=section.get_int("q_lora_rank", required=False),
        )
        section.done()
        return mla
    _forbid(section, ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "q_lora_rank", "o_groups", "o_lora_rank"),
            f"only applies to kind mla (or compressed), not {kind}")  # fmt: skip
    if kind == "mha":
        kv_heads = section.get_int("kv_heads", default=heads)
        if kv_heads != heads:
            raise section.error("kv_heads", f"MHA caches every head: kv_heads must equal heads ({heads})")
    elif kind == "mqa":
        kv_heads = section.get_int("kv_heads", default=1)
        if kv_heads != 1:
            raise section.error("kv_heads", "MQA caches one head: kv_heads must be 1 (use kind gqa)")
    else:
        kv_heads = section.req_int("kv_heads")
    assert kv_heads is not None
    if kv_heads > heads:
        raise section.error("kv_heads", f"{kv_heads} KV heads is more than the {heads} query heads")
    if heads % kv_heads:
        raise section.error("kv_heads", f"query heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
    head_dim = section.req_int("head_dim")
    k_eq_v = section.get_bool("k_eq_v")
    v_head_dim = section.get_int("v_head_dim", default=head_dim)
    assert v_head_dim is not None
    if k_eq_v and v_head_dim != head_dim:
        raise section.error("v_head_dim", "with k_eq_v the value is the key: v_head_dim must equal head_dim")
    section.done()
    return Attention(heads=heads, kv_heads=kv_heads, head_dim=head_dim, v_head_dim=v_head_dim, k_eq_v=k_eq_v)


def _forbid(section: Section, keys: tuple[str, ...], message: str) -> None:
    for key in keys:
        if section.has(key):
            section.used.add(key)
            raise section.error(key, message)


def _parse_state(section: Section, kinds: tuple[str, ...] = tuple(STATE_FIELDS)) -> State:
    kind = section.choice("kind", kinds)

    assert kind is not None
    fields = STATE_FIELDS[kind]
    optional = ("recurrent_dtype",) if kind in RECURRENT_DTYPE_KINDS else ()
    section.expect(("kind",) + fields + optional)
    values: dict[str, Any] = {
        key: section.req_int(key, maximum=1024 if key == "conv_kernel" else MAX_DIM) for key in fields
    }
    if optional and section.has("recurrent_dtype"):
        text = section.get_str("recurrent_dtype")
        try:
            values["recurrent_dtype"] = parse_dtype(str(text)).name
        except UsageError as exc:
            raise section.error("recurrent_dtype", str(exc)) from None
    section.done()
    return state_from(kind, values)


def state_from(kind: str, values: dict[str, Any]) -> State:
    """A state description from its kind and the fields of STATE_FIELDS[kind]."""
    if kind == "gated_deltanet":
        return GatedDeltaNet(**values)
    if kind == "kda":
        heads, dim = values["heads"], values["head_dim"]
        return GatedDeltaNet(heads, heads, dim, dim, values["conv_kernel"], kind="kda",
                             recurrent_dtype=values.get("recurrent_dtype"))  # fmt: skip
    if kind == "mamba1":
        return Mamba1(**values)
    if kind == "mamba2":
        return Mamba2(**values)
    if kind == "lightning":
        return Lightning(**values)
    return ShortConv(**values)


def _parse_indexer(section: Section, allow_layers: bool) -> Indexer:
    section.expect(INDEXER_KEYS if allow_layers else INDEXER_KEYS[:3])
    indexer = Indexer(
        heads=section.req_int("heads"),
        head_dim=section.req_int("head_dim"),
        topk=section.req_int("topk", maximum=MAX_CONTEXT_FIELD),
    )
    if not allow_layers:
        section.done()
    return indexer


def _parse_layer_kinds(top: Section, layers: int, allowed: tuple[str, ...], default: str | None) -> tuple[str, ...]:
    pattern = top.get_list("layer_pattern")
    explicit = top.get_list("layer_types")
    if pattern is not None and explicit is not None:
        raise top.error("layer_types", "give either layer_pattern (repeated) or layer_types (one per layer)")
    items = pattern if pattern is not None else explicit
    key = "layer_pattern" if pattern is not None else "layer_types"
    if items is None:
        if default is not None:
            return (default,) * layers
        if len(allowed) == 1:
            return (allowed[0],) * layers
        raise top.error("kinds", "several kinds: give layer_pattern or layer_types to say which layer is which")
    if not items:
        raise top.error(key, "must not be empty")
    kinds = []
    lowered = {name.lower(): name for name in allowed}
    for index, item in enumerate(items):
        if not isinstance(item, str) or item.lower() not in lowered:
            hint = suggest(str(item), allowed) if isinstance(item, str) else ""
            raise top.error(key, f"item {index}: expected one of {', '.join(allowed)}, got {type_name(item)}{hint}")
        kinds.append(lowered[item.lower()])
    if explicit is not None:
        if len(kinds) != layers:
            raise top.error("layer_types", f"has {len(kinds)} entries but the model has {layers} layers")
        return tuple(kinds)
    if len(kinds) > layers:
        raise top.error("layer_pattern", f"has {len(kinds)} entries, more than the {layers} layers")
    # The pattern repeats from layer 0 and is cut at `layers` (Gemma 3: 62 = 10 x 6 + 2).
    return tuple(kinds[i % len(kinds)] for i in range(layers))


# ---------------------------------------------------------------------------------------------------------
# The short form: one attention for every layer


def _short_form(top: Section, layers: int) -> tuple[list[LayerKind], tuple[str, ...], str | None]:
    if top.has("mtp_kind"):
        top.used.add("mtp_kind")
        raise top.error("mtp_kind", "only applies with `kinds`")
    attention_section = top.section("attention")
    assert attention_section is not None
    attention = _parse_attention(attention_section)
    if isinstance(attention, Compressed):
        return _short_compressed(top, layers, attention)
    layer_kinds = _parse_layer_kinds(top, layers, SHORT_KINDS, default="full")
    if top.has("compress_rates"):
        top.used.add("compress_rates")
        raise top.error("compress_rates", "only applies to attention kind compressed (DeepSeek-V4)")
    window = top.get_int("sliding_window", required=False, maximum=MAX_CONTEXT_FIELD)
    if "sliding" in layer_kinds and window is None:
        raise ConfigError(top.file, "sliding_window", "is required: the model has sliding layers")
    if window is not None and "sliding" not in layer_kinds:
        raise top.error(
            "sliding_window",
            "is set but no layer is 'sliding'; add a layer_pattern such as [sliding, full] or remove the window",
        )
    linear_section = top.section("linear_attention", required=False)
    state = _parse_linear(linear_section) if linear_section is not None else None
    if "linear" in layer_kinds and state is None:
        raise ConfigError(top.file, "linear_attention", "is required: the model has linear layers")
    if state is not None and "linear" not in layer_kinds:
        raise top.error("linear_attention", "is set but no layer is 'linear' in layer_pattern / layer_types")
    indexer, indexer_layers = _short_indexer(top, layers, layer_kinds)
    kinds = [
        LayerKind("full", attention, indexer=indexer),
        LayerKind("sliding", attention, window=window, indexer=indexer),
    ]
    if state is not None:
        kinds.append(LayerKind("linear", state=state))
    if indexer_layers is not None:
        # indexer keys on the listed layers only; the other attention layers reuse another layer's selection
        kinds += [
            replace(kinds[0], name="shared", indexer=None),
            replace(kinds[1], name="sliding_shared", indexer=None),
        ]
        layer_kinds = tuple(
            kind if i in indexer_layers or kind == "linear" else ("shared" if kind == "full" else "sliding_shared")
            for i, kind in enumerate(layer_kinds)
        )
    present = set(layer_kinds) | {"full"}  # MTP layers are full attention layers
    return [k for k in kinds if k.name in present], layer_kinds, None


def _short_indexer(top: Section, layers: int, layer_kinds: tuple[str, ...]) -> tuple[Indexer | None, set[int] | None]:
    section = top.section("indexer", required=False)
    if section is None:
        return None, None
    indexer = _parse_indexer(section, allow_layers=True)
    raw_layers = section.get_list("layers")
    section.done()
    if raw_layers is None:
        return indexer, None
    seen = []
    for index, item in enumerate(raw_layers):
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < layers:
            raise section.error("layers", f"item {index}: expected a layer index 0..{layers - 1}, got {item!r}")
        if layer_kinds[item] == "linear":
            raise section.error("layers", f"item {index}: layer {item} is a linear layer, it has no indexer")
        seen.append(item)
    if len(set(seen)) != len(seen):
        raise section.error("layers", "lists a layer twice")
    return indexer, set(seen)


def _parse_linear(section: Section) -> State:
    return _parse_state(section, ("gated_deltanet", "kda"))


def _short_compressed(
    top: Section, layers: int, attention: Compressed
) -> tuple[list[LayerKind], tuple[str, ...], str | None]:
    layer_kinds = _parse_layer_kinds(top, layers, COMPRESSED_KINDS, default="window")
    window = top.get_int("sliding_window", required=False, maximum=MAX_CONTEXT_FIELD)
    if window is None:
        raise ConfigError(top.file, "sliding_window", "is required for kind compressed (every layer keeps a window)")
    rates = top.section("compress_rates", required=any(k in ("csa", "hca") for k in layer_kinds))
    ratio = {}
    if rates is not None:
        rates.expect(("csa", "hca"))
        for kind in ("csa", "hca"):
            value = rates.get_int(kind, required=kind in layer_kinds, maximum=1 << 20)
            if value is not None:
                ratio[kind] = value
        rates.done()
    for key in ("linear_attention",):
        if top.has(key):
            top.used.add(key)
            raise top.error(key, "does not apply to attention kind compressed")
    indexer_section = top.section("indexer", required=False)
    indexer = _parse_indexer(indexer_section, allow_layers=False) if indexer_section is not None else None
    kinds = [
        LayerKind("window", attention, window=window),
        LayerKind("csa", attention, window=window, compress_ratio=ratio.get("csa", 4), indexer=indexer),
        LayerKind("hca", attention, window=window, compress_ratio=ratio.get("hca", 128)),
    ]
    # DeepSeek-V4's MTP layer keeps the window only (its compress_ratios entry is 0)
    present = set(layer_kinds) | {"window"}
    return [k for k in kinds if k.name in present], layer_kinds, "window"


# ---------------------------------------------------------------------------------------------------------
# Weights


def check_weights(weights: dict[str, Any], file: str, layers: int) -> Weights:
    """A `weights` section as the YAML reader would read it (the importer checks what it writes)."""
    return _parse_weights(Section(weights, file, "weights"), layers)


def _parse_weights(section: Section, layers: int) -> Weights:
    section.expect(WEIGHT_KEYS)
    tie = section.raw("tie_embeddings")
    if tie is not None and not isinstance(tie, bool):
        raise section.error("tie_embeddings", f"expected true or false, got {type_name(tie)}")
    dtype = section.get_str("dtype", default="bf16")
    assert dtype is not None
    if dtype.lower() not in WEIGHT_DTYPES:
        raise section.error("dtype", f"expected one of {', '.join(WEIGHT_DTYPES)}, got {dtype!r}")
    values: dict[str, Any] = {
        "hidden_size": section.req_int("hidden_size"),
        "vocab_size": section.req_int("vocab_size", maximum=1 << 31),
        "intermediate_size": section.get_int("intermediate_size", default=0, minimum=0),
        "tie_embeddings": bool(tie),
        "dtype": dtype.lower(),
        "hc_mult": section.get_int("hc_mult", default=0, minimum=0, maximum=64),
    }
    moe = section.section("moe", required=False)
    if moe is not None:
        moe.expect(MOE_KEYS)
        values["experts"] = moe.req_int("experts", maximum=1 << 16)
        values["experts_per_token"] = moe.req_int("experts_per_token", maximum=values["experts"])
        values["shared_experts"] = moe.get_int("shared_experts", default=0, minimum=0, maximum=1024)
        values["expert_intermediate_size"] = moe.req_int("intermediate_size")
        values["first_dense_layers"] = moe.get_int("first_dense_layers", default=0, minimum=0, maximum=layers)
        moe.done()
    if values["intermediate_size"] == 0 and (moe is None or values.get("first_dense_layers")):
        raise section.error("intermediate_size", "is required: the model has dense MLP layers")
    section.done()
    return Weights(**values)


# ---------------------------------------------------------------------------------------------------------
# Files and the built-in registry

_FILE_CACHE: dict[str, tuple[int, int, ModelSpec]] = {}


def load_model_file(path: str | os.PathLike[str]) -> ModelSpec:
    """A YAML model file, parsed strictly; the result is cached by path, size and modification time."""
    file = Path(path)
    name = str(path)
    try:
        stat = file.stat()
        key = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    cached = _FILE_CACHE.get(name)
    if key is not None and cached is not None and cached[:2] == key:
        return cached[2]
    text = read_text(file)
    if not text.strip():
        raise ConfigError(name, "", "the file is empty; expected a model description (name, layers, attention)")
    data = load_yaml(text, name)
    if not isinstance(data, dict):
        raise ConfigError(name, "", f"expected a YAML mapping (name:, layers:, attention:), got {type_name(data)}")
    if "budgets" in data and "layers" not in data:
        raise ConfigError(name, "", "this is a budget file (it has `budgets:`), not a model; use mla-mem check")
    if "gpus" in data and "layers" not in data:
        raise ConfigError(name, "", "this is a GPU catalogue (it has `gpus:`), not a model")
    spec = parse_model(data, name)
    if key is not None:
        _FILE_CACHE[name] = (key[0], key[1], spec)
    return spec


@functools.lru_cache(maxsize=1)
def builtin_dir() -> Path:
    """configs/ inside an installed wheel (mla_mem/configs) or at the root of a checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "configs"
    if packaged.is_dir():
        return packaged
    return here.parent / "configs"


_LISTING: tuple[Path, int, list[Path]] | None = None


def _builtin_files() -> Iterator[Path]:
    """The built-in model files in natural order; the listing is kept while the directory is unchanged."""
    global _LISTING
    directory = builtin_dir()
    try:
        stamp = directory.stat().st_mtime_ns
    except OSError:
        return
    if _LISTING is None or _LISTING[0] != directory or _LISTING[1] != stamp:
        files = sorted(
            (p for p in directory.iterdir() if p.name.endswith(".yaml") and not p.name.startswith("gpus")),
            key=lambda p: _natural(p.stem),
        )
        _LISTING = (directory, stamp, files)
    yield from _LISTING[2]


def builtin_names() -> list[str]:
    return [p.stem for p in _builtin_files()]


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """glm-5 before glm-5.2 before glm-5.10: numbers compare as numbers."""
    import re

    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


_RESOLVED: dict[str, Path | None] = {}


def resolve_builtin(name: str) -> Path | None:
    """File of a built-in model by its name (the file stem, case-insensitive) or any of its aliases (looked up once
    per name and process: the built-in files ship with the package)."""
    if name not in _RESOLVED:
        _RESOLVED[name] = _resolve_builtin(name)
    return _RESOLVED[name]


def _resolve_builtin(name: str) -> Path | None:
    wanted = normalise(name)
    if wanted and "/" not in wanted and os.sep not in wanted and not wanted.startswith("gpus"):
        direct = builtin_dir() / f"{wanted}.yaml"  # a file's own name: one stat, not the directory's listing
        if direct.is_file():
            return direct
    files = list(_builtin_files())
    for path in files:
        if path.stem == wanted:
            return path
    for path in files:
        spec = load_builtin(path)
        if wanted in {normalise(spec.name), *(normalise(a) for a in spec.aliases)}:
            return path
    return None


def builtin_models() -> list[ModelSpec]:
    return [load_builtin(path) for path in _builtin_files()]


# ---------------------------------------------------------------------------------------------------------
# Built-ins checked once: their parsed specs kept in the user's cache directory, keyed by each file's size and
# modification time and by the package version, rebuilt from the YAML when either changes (tests/test_configs.py
# proves the cached specs equal to fresh ones). MLA_MEM_NO_CACHE=1 turns it off; an unwritable directory just means
# no cache.
#
# One file per group (the GPU catalogue's apart, or every estimate would import hardware.py for its classes): a
# marshal dictionary of file name -> (mtime, size, the spec pickled on its own). A command unpickles only the models
# it names (three of 24 for `check`), where one pickle of the group would rebuild all of them.

_DISK: dict[str, dict[str, tuple[int, int, bytes]]] = {}
_LOADED: dict[tuple[str, str], tuple[int, int, Any]] = {}  # (group, file name) -> (mtime, size, value)
_MISSING = object()


def _cache_file(group: str) -> Path | None:
    from . import __version__
    from .records import cache_file

    return cache_file(f"{group}-{__version__}.marshal")


def _disk_cache(group: str) -> dict[str, tuple[int, int, bytes]]:
    if group not in _DISK:
        _DISK[group] = {}
        path = _cache_file(group)
        if path is not None:
            import marshal

            try:
                loaded = marshal.loads(path.read_bytes())
            except (OSError, EOFError, ValueError, TypeError):  # absent, stale or damaged: rebuilt, never an error
                loaded = None
            if isinstance(loaded, dict):
                _DISK[group] = {
                    name: entry
                    for name, entry in loaded.items()
                    if isinstance(name, str) and isinstance(entry, tuple) and len(entry) == 3
                    and isinstance(entry[2], bytes)
                }  # fmt: skip
    return _DISK[group]


def _save_disk_cache(group: str) -> None:
    path = _cache_file(group)
    if path is None or group not in _DISK:
        return
    import marshal
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as handle:
            handle.write(marshal.dumps(_DISK[group]))
        os.replace(handle.name, path)
    except OSError:
        pass


def load_builtin(path: Path) -> ModelSpec:
    """A built-in model file, from the disk cache when the file is unchanged."""
    spec: ModelSpec = cached(path, load_model_file)
    return spec


def cached(path: Path, parse: Callable[[Path], Any], group: str = "builtins") -> Any:  # noqa: ANN401
    """`parse(path)` of a file shipped with mla-mem, from the disk cache of `group` when the file is unchanged."""
    try:
        stat = path.stat()
    except OSError:
        return parse(path)
    stamp = (stat.st_mtime_ns, stat.st_size)
    known = _LOADED.get((group, path.name))
    if known is not None and known[:2] == stamp:
        return known[2]
    entry = _disk_cache(group).get(path.name)
    value: Any = _MISSING
    if entry is not None and entry[:2] == stamp:
        try:  # the C unpickler alone: pickle.py would add 1.5 ms to every command's start-up
            from _pickle import loads
        except ImportError:  # not CPython
            from pickle import loads
        try:
            value = loads(entry[2])  # noqa: S301 - our own file of our own classes
        except Exception:  # a class that changed shape since: parsed again, never an error
            value = _MISSING
    if value is _MISSING:
        import pickle

        value = parse(path)
        _DISK[group][path.name] = (*stamp, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        _save_disk_cache(group)
    _LOADED[(group, path.name)] = (*stamp, value)
    return value


__all__ = [
    "builtin_models", "builtin_names", "cached", "check_weights", "load_builtin", "load_model_file", "parse_model", "resolve_builtin",
]  # fmt: skip
