"""Hugging Face `config.json` and Mistral `params.json` -> the model description (and a reviewed YAML).

The families' readers are in families.py; this module reads the file, unwraps multimodal wrappers, picks the cache
dtype, adds the weights section for `fit`, and writes the result in the YAML schema (the short form when every
layer shares one attention, layer kinds otherwise). The traps it avoids (../shared/reference/MODELS.md):

- an MLA config's `num_key_value_heads` equals its query heads and is NOT a cached head count;
- GLM-5's (and DeepSeek-V3.2's) `head_dim: 64` is the rope dim, not the attention head size;
- Kimi Linear's `head_dim: 72` is a legacy field; the KDA head dim is `linear_attn_config.head_dim`;
- `quantization_config` describes the weights; only `kv_cache_scheme` changes the cache dtype;
- a `sliding_window` of an unknown family says nothing about which layers slide: the import stops, naming it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from .configs import check_weights, parse_model
from .errors import ConfigError
from .families import (
    FAMILIES,
    WRAPPERS,
    Config,
    Draft,
    family_from_architectures,
    indexer_section,
    normalise_spelling,
    read_family,
)
from .spec import ModelSpec

MAX_JSON_BYTES = 4 << 20  # the largest real config here (GLM-5 FP8 with its module lists) is 36 KB


class AssumptionWarning(UserWarning):
    """An assumption the importer made; the CLI prints it on stderr."""


def read_json(path: Path) -> dict[str, Any]:
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
    """A config's JSON text -> the object. Infinity and NaN are read as Python's json and transformers read them
    (NVIDIA configs carry them in keys that do not reach the cache); in a dimension they are refused by name."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(name, "", f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    except RecursionError:
        raise ConfigError(name, "", "invalid JSON: nesting is too deep") from None
    except ValueError as exc:
        raise ConfigError(name, "", f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(name, "", f"expected a JSON object, got {type(value).__name__}")
    return value


def find_config(path: Path) -> Path:
    """A directory holding config.json (or params.json), or the file itself."""
    if path.is_dir():
        for name in ("config.json", "params.json"):
            if (path / name).is_file():
                return path / name
        raise ConfigError(str(path), "", "directory has no config.json or params.json")
    return path


# ---------------------------------------------------------------------------------------------------------
# Reading


def _dtype_of(data: dict[str, Any], outer: dict[str, Any], file: str, notes: list[str]) -> tuple[str, str | None]:
    """(model dtype, the checkpoint's cache dtype from quantization_config.kv_cache_scheme, or None)."""
    raw = data.get("torch_dtype") or data.get("dtype") or outer.get("torch_dtype") or outer.get("dtype")
    mapping = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}
    dtype = mapping.get(str(raw).lower()) if raw is not None else None
    if dtype is None:
        notes.append(f"model dtype {raw!r} is not a cache dtype; assumed bf16" if raw is not None
                     else "no torch_dtype / dtype in the config; assumed bf16")  # fmt: skip
        dtype = "bf16"
    quant = data.get("quantization_config") or outer.get("quantization_config")
    cache = None
    if isinstance(quant, dict) and isinstance(quant.get("kv_cache_scheme"), dict):
        scheme = quant["kv_cache_scheme"]
        bits, kind = scheme.get("num_bits"), str(scheme.get("type", "float")).lower()
        if bits == 8:
            cache = "fp8" if kind == "float" else "int8"
            notes.append(f"cache dtype {cache} from quantization_config.kv_cache_scheme (states stay {dtype})")
        elif bits is not None:
            raise ConfigError(file, "quantization_config.kv_cache_scheme.num_bits", f"unsupported value {bits!r}")
    return dtype, cache


def _dtypes(out: dict[str, Any], data: dict[str, Any], outer: dict[str, Any], file: str, notes: list[str]) -> None:
    dtype, cache = _dtype_of(data, outer, file, notes)
    out["dtype"] = dtype
    if cache:
        out["cache_dtype"] = cache


KNOWN_TYPES = ("deepseek_v4", "deepseek_v41", "deepseek_v41_text")


def _family_by_architecture(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """A config whose model_type mla-mem does not know, read as the family its `architectures` names."""
    model_type = str(data.get("model_type", "")).lower()
    if model_type in FAMILIES or model_type in WRAPPERS or model_type in KNOWN_TYPES:
        return data
    family = family_from_architectures(data.get("architectures"))
    if family is None:
        return data
    notes.append(f"model_type {model_type or '(none)'!r} is unknown; read as {family}, the family of "
                 f"architectures {data['architectures'][0]}")  # fmt: skip
    return {**data, "model_type": family}


def _unwrap(data: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(language-model config, its model_type, key prefix) for multimodal wrappers."""
    model_type = str(data.get("model_type", "")).lower()
    wrapper = WRAPPERS.get(model_type)
    for key in (wrapper[0],) if wrapper else ("text_config", "llm_config", "language_config"):
        inner = data.get(key)
        if isinstance(inner, dict) and (wrapper or "num_hidden_layers" not in data):
            inner_type = str(inner.get("model_type", "")).lower() or (
                wrapper[1] if wrapper and wrapper[1] else model_type
            )
            if wrapper and wrapper[1] and (inner_type in (model_type, "") or inner_type not in FAMILIES):
                inner_type = wrapper[1]  # the wrapper says what its language model is

            if inner_type == "gemma3":
                inner_type = "gemma3_text"
            return inner, inner_type, f"{key}."
    return data, model_type, ""


def convert(data: dict[str, Any], file: str, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A parsed config.json / params.json -> (model dict in our YAML schema, notes on what was inferred)."""
    notes: list[str] = []
    if "dim" in data and "n_layers" in data and "n_heads" in data:
        return _convert_mistral_params(data, file, name, notes), notes
    outer = data
    if data.get("is_encoder_decoder") is True and "text_config" not in data:
        raise ConfigError(file, "is_encoder_decoder", f"{data.get('model_type') or 'this'} is an encoder-decoder "
                          "model: its cross-attention cache depends on the encoder's input, which mla-mem does not "
                          "size; describe the decoder's self-attention in YAML to size that part")  # fmt: skip
    data = _family_by_architecture(normalise_spelling(data), notes)
    data, model_type, prefix = _unwrap(data)

    data = normalise_spelling(data)
    if model_type in ("deepseek_v41", "deepseek_v41_text"):
        return _convert_deepseek_v41(data, outer, file, prefix, name, notes), notes
    if model_type == "deepseek_v4":
        return _convert_deepseek_v4(data, outer, file, prefix, name, notes), notes
    if not model_type and "num_hidden_layers" not in data and "architectures" not in data:
        raise ConfigError(file, "", "unrecognised config: no model_type, architectures or num_hidden_layers (not a "
                          "Hugging Face config.json); describe the model in YAML")  # fmt: skip
    config = Config(data, file, prefix)
    draft = read_family(model_type, config)
    notes.extend(draft.notes)
    out: dict[str, Any] = {"name": name or "imported model"}
    _dtypes(out, data, outer, file, notes)
    context = config.opt_int("max_position_embeddings") or config.opt_int("model_max_length")
    if context:
        out["max_context"] = context
    out["layers"] = len(draft.layers)
    mtp = draft.mtp_layers or config.get_int("num_nextn_predict_layers", default=0, minimum=0)
    if mtp and _has_mtp_kind(draft):
        out["mtp_layers"] = mtp
    out.update(_layers_section(draft, context, notes))
    weights = _weights_or_note(config, data, outer, notes, out["layers"])
    if weights:
        out["weights"] = weights
    out.update(_architecture_and_vision(outer))
    return out, notes


def _architecture_and_vision(outer: dict[str, Any]) -> dict[str, Any]:
    """`architecture` (architectures[0]) and `vision` (the tower's depth and width from vision_config: num_hidden_layers
    or depth (Qwen3-VL style) or vt_num_hidden_layers (Kimi K3); hidden_size or vt_hidden_size)."""
    out: dict[str, Any] = {}
    architectures = outer.get("architectures")
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        out["architecture"] = architectures[0]
    tower = outer.get("vision_config")
    if isinstance(tower, dict):
        dims = {"layers": _first_int(tower, "num_hidden_layers", "depth", "vt_num_hidden_layers"),
                "hidden_size": _first_int(tower, "hidden_size", "vt_hidden_size")}  # fmt: skip
        out["vision"] = {key: value for key, value in dims.items() if value is not None}
    return out


def _first_int(data: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _has_mtp_kind(draft: Draft) -> bool:
    return draft.mtp_kind is not None or any(
        "attention" in kind and "window" not in kind and "chunk" not in kind for kind in draft.kinds.values()
    )


def _layers_section(draft: Draft, max_context: int | None, notes: list[str]) -> dict[str, Any]:
    """The kinds and layers in the short form when every attention layer shares one attention, else as `kinds`."""
    kinds = {name: dict(kind) for name, kind in draft.kinds.items()}
    for name, kind in kinds.items():
        for key in ("window", "chunk"):
            if max_context and kind.get(key) is not None and kind[key] >= max_context:
                notes.append(
                    f"{name} layers: {key} {kind[key]:,} >= max_position_embeddings {max_context:,}: full attention"
                )
                del kind[key]
    short = _short_form(kinds, draft)
    if short is not None:
        return short
    out: dict[str, Any] = {"kinds": kinds}
    if draft.mtp_kind:
        out["mtp_kind"] = draft.mtp_kind
    out.update(_pattern_or_list(draft.layers))
    return out


def _short_form(kinds: dict[str, dict[str, Any]], draft: Draft) -> dict[str, Any] | None:
    names = set(draft.layers)
    if not names <= {"full", "sliding", "linear"} or draft.mtp_kind is not None:
        return None
    attentions = [k["attention"] for k in kinds.values() if "attention" in k]
    indexers = [k.get("indexer") for k in kinds.values() if "attention" in k]
    if not attentions or any(a != attentions[0] for a in attentions) or any(i != indexers[0] for i in indexers):
        return None
    allowed = {"full": {"attention", "indexer"}, "sliding": {"attention", "window", "indexer"}, "linear": {"state"}}
    for name in names:
        if set(kinds[name]) - allowed[name] or (name == "sliding" and "window" not in kinds[name]):
            return None
    if "linear" in names and kinds["linear"]["state"]["kind"] not in ("gated_deltanet", "kda"):
        return None
    out: dict[str, Any] = {"attention": attentions[0]}
    if "sliding" in names:
        out["sliding_window"] = kinds["sliding"]["window"]
    if "linear" in names:
        out["linear_attention"] = kinds["linear"]["state"]
    if indexers[0]:
        out["indexer"] = indexers[0]
    out.update({} if names == {"full"} else _pattern_or_list(draft.layers))
    return out


def _pattern_or_list(kinds: list[str]) -> dict[str, Any]:
    """The shortest repeating pattern that reproduces `kinds` (layer_pattern), else layer_types."""
    if len(set(kinds)) == 1:
        return {"layer_pattern": [kinds[0]]}
    for size in range(1, len(kinds) // 2 + 1):
        pattern = kinds[:size]
        if all(kinds[i] == pattern[i % size] for i in range(len(kinds))):
            return {"layer_pattern": pattern}
    return {"layer_types": kinds}


# ---------------------------------------------------------------------------------------------------------
# Weights (for `fit`): never stop a cache estimate


def _weights_or_note(
    config: Config, data: dict[str, Any], outer: dict[str, Any], notes: list[str], layers: int
) -> dict[str, Any] | None:
    """The weights section, or None with a note: a parameter-count problem never blocks a cache estimate."""
    try:
        weights = _weights(Config(data, config.file, config.prefix, config.defaults), data, outer, notes)
        if weights is not None:
            check_weights(weights, config.file, layers)
        return weights
    except ConfigError as exc:
        notes.append(f"no weights section ({exc.key}: {exc.detail}); fit needs the checkpoint or a published "
                     "parameter count for this model")  # fmt: skip
        return None


def _first(c: Config, *names: str) -> int | None:
    for name in names:
        if c.has(name) or name in c.defaults:
            return c.get_int(name, minimum=0)
    return None


def _weights(c: Config, data: dict[str, Any], outer: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    """The `weights` section (parameter counts and `fit`), when the config has the dims. Handles HF keys and the
    native params files (dim, hidden_dim / inter_dim, moe)."""
    hidden = _first(c, "hidden_size", "dim")
    vocab = _first(c, "vocab_size")
    if not hidden or not vocab:
        return None
    weights: dict[str, Any] = {"hidden_size": hidden, "vocab_size": vocab}
    moe_block = data.get("moe") if isinstance(data.get("moe"), dict) else {}
    moe_c = Config(moe_block or {}, c.file, f"{c.prefix}moe.")
    experts = _first(c, "n_routed_experts", "num_experts", "num_local_experts") or _first(moe_c, "num_experts")
    first_dense = _first(c, "first_k_dense_replace", "n_dense_layers") or _first(moe_c, "first_k_dense_replace")
    dense = _first(c, "intermediate_size", "hidden_dim", "inter_dim")
    if dense and (not experts or first_dense):
        weights["intermediate_size"] = dense
    elif not experts or first_dense:
        raise c.error("intermediate_size", "the dense MLP width is not in the config")
    tied = data.get("tie_word_embeddings", c.defaults.get("tie_word_embeddings"))
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
        if data.get("enable_moe_block") is True or data.get("interleave_moe_layer_step", 1) != 1:
            # Gemma 4 26B-A4B: a dense MLP beside the experts in every layer; Llama 4: MoE every other layer
            raise c.error("enable_moe_block" if data.get("enable_moe_block") is True else "interleave_moe_layer_step",
                          "dense and expert MLPs mixed this way are not in the weights schema")  # fmt: skip
        per_token = _first(c, "num_experts_per_tok", "experts_per_token", "n_activated_experts",
                           "num_experts_per_token", "top_k_experts", "moe_topk") or _first(moe_c, "num_experts_per_tok")  # fmt: skip
        if per_token is None:
            raise c.error("num_experts_per_tok", "the experts a token uses are not in the config")
        moe: dict[str, Any] = {"experts": experts, "experts_per_token": per_token}
        shared = _first(c, "n_shared_experts", "num_shared_experts") or _first(moe_c, "num_shared_experts")
        if shared is None and c.has("shared_expert_intermediate_size"):
            shared = 1
        if shared:
            moe["shared_experts"] = shared
        inter = _first(c, "moe_intermediate_size", "moe_inter_dim") or _first(moe_c, "expert_hidden_dim")
        if inter is None:
            inter = _first(c, "intermediate_size")
        if inter is None:
            return None
        moe["intermediate_size"] = inter
        if first_dense:
            moe["first_dense_layers"] = first_dense
        weights["moe"] = moe
    return weights


# ---------------------------------------------------------------------------------------------------------
# DeepSeek-V4 and native params files

V4_TYPES = {"sliding_attention": "window", "compressed_sparse_attention": "csa", "heavily_compressed_attention": "hca"}


def _v4_kinds(c: Config, layers: int, notes: list[str]) -> tuple[list[str], dict[str, int]]:
    """DeepSeek-V4 layer kinds from `compress_ratios` (one int per layer, MTP layers after num_hidden_layers) or
    transformers' `layer_types` + `compress_rates` (configuration_deepseek_v4.py)."""
    rates = {"csa": 4, "hca": 128}
    types, ratios = c.get_list("layer_types"), c.get_list("compress_ratios")
    if types is not None:
        if len(types) < layers:
            raise c.error("layer_types", f"has {len(types)} entries, fewer than the {layers} layers")
        bad = next((i for i, t in enumerate(types[:layers]) if t not in V4_TYPES), None)
        if bad is not None:
            raise c.error(
                "layer_types", f"item {bad}: unknown layer type {types[bad]!r}; expected one of {', '.join(V4_TYPES)}"
            )
        given = c.raw("compress_rates")
        if isinstance(given, dict):
            for key, value in given.items():
                if key in V4_TYPES and V4_TYPES[key] in rates:
                    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                        raise c.error(f"compress_rates.{key}", f"expected a positive integer, got {value!r}")
                    rates[V4_TYPES[key]] = value
        elif given is None:
            notes.append("no compress_rates: transformers' defaults csa 4, hca 128")
        return [V4_TYPES[t] for t in types[:layers]], rates
    if ratios is None:
        raise c.error("compress_ratios", "DeepSeek-V4 needs compress_ratios or layer_types (mla-mem does not assume "
                                         "the V4-Pro default pattern, which is wrong for Flash)")  # fmt: skip
    if len(ratios) < layers:
        raise c.error("compress_ratios", f"has {len(ratios)} entries, fewer than the {layers} layers")
    if len(ratios) > layers:
        notes.append(f"compress_ratios has {len(ratios)} entries: the {len(ratios) - layers} after num_hidden_layers "
                     f"({layers}) belong to MTP layers and are sliced off")  # fmt: skip
    if any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in ratios[:layers]):
        raise c.error("compress_ratios", "expected non-negative integers (0 = window only)")
    values = sorted({r for r in ratios[:layers] if r})
    if len(values) > 2:
        raise c.error("compress_ratios", f"more than two compression ratios {values}")
    # the smaller ratio is the sparse (indexed) one, as in V4: 4 -> csa, 128 -> hca
    by_ratio = dict(zip(values, ("csa", "hca"), strict=False))
    rates.update({kind: ratio for ratio, kind in by_ratio.items()})
    return ["window" if r == 0 else by_ratio[r] for r in ratios[:layers]], rates


def _v4_common(
    data: dict[str, Any], outer: dict[str, Any], file: str, prefix: str, name: str | None, notes: list[str]
) -> tuple[Config, dict[str, Any], int]:
    """What DeepSeek-V4 and V4.1 configs share: name, dtypes, context, layers and the one shared key-value head
    (its attention section under `_attention`, for the caller to place)."""
    c = Config(data, file, prefix)
    layers = c.get_int("num_hidden_layers")
    out: dict[str, Any] = {"name": name or "imported model"}
    _dtypes(out, data, outer, file, notes)
    if c.opt_int("max_position_embeddings"):
        out["max_context"] = c.get_int("max_position_embeddings")
    out["layers"] = layers
    if c.has("num_key_value_heads") and c.get_int("num_key_value_heads") != 1:
        raise c.error("num_key_value_heads",
                      f"DeepSeek-V4 caches one shared key-value head; got {c.get_int('num_key_value_heads')}")  # fmt: skip
    out["_attention"] = {"kind": "compressed", "heads": c.get_int("num_attention_heads"),
                         "head_dim": c.get_int("head_dim"), "qk_rope_head_dim": c.get_int("qk_rope_head_dim")}  # fmt: skip
    return c, out, layers


def _convert_deepseek_v4(
    data: dict[str, Any], outer: dict[str, Any], file: str, prefix: str, name: str | None, notes: list[str]
) -> dict[str, Any]:
    c, out, layers = _v4_common(data, outer, file, prefix, name, notes)
    mtp = c.opt_int("num_nextn_predict_layers", minimum=0) or 0
    if mtp:
        out["mtp_layers"] = mtp
    out["attention"] = out.pop("_attention")
    for key in ("q_lora_rank", "o_groups", "o_lora_rank"):  # weights only
        if c.opt_int(key):
            out["attention"][key] = c.get_int(key)
    out["sliding_window"] = c.get_int("sliding_window")
    kinds, rates = _v4_kinds(c, layers, notes)
    out["compress_rates"] = {k: v for k, v in rates.items() if k in kinds}
    out.update(_pattern_or_list(kinds))
    if c.has("index_n_heads"):
        out["indexer"] = indexer_section(c)
    weights = _weights_or_note(c, data, outer, notes, layers)
    if weights:
        if c.opt_int("hc_mult"):
            weights["hc_mult"] = c.get_int("hc_mult")
        if str(data.get("expert_dtype", "")).lower() == "fp4" and weights.get("dtype") == "fp8":
            # vLLM models/deepseek_v4/quant_config.py: expert_dtype fp4 = MXFP4 experts, FP8 blocks elsewhere
            weights["dtype"] = "fp8+mxfp4-experts"
        out["weights"] = weights
    return out


def _v41_kinds(c: Config, layers: int) -> tuple[list[str], dict[str, int]]:
    """DeepSeek-V4.1 layers (vLLM 0.33 models/deepseek_v41/attention.py:311-360, 1326-1340): ratio 0 keeps a window
    only; compressed caches (one entry per 1 or 2 tokens) live on kv_source_layer_ids, and a layer of ratio > 0 that
    is no source reads the nearest source at or before it (a window of its own only); index keys belong to sources
    that are also index sources. Returns the kind of each layer and each source kind's ratio."""
    ratios = c.get_list("compress_ratios")
    if ratios is None or len(ratios) < layers:
        raise c.error("compress_ratios", f"DeepSeek-V4.1 needs one ratio per layer ({layers} at least)")
    if any(isinstance(r, bool) or r not in (0, 1, 2) for r in ratios):
        raise c.error("compress_ratios", f"expected 0, 1 or 2 for DeepSeek-V4.1, got {sorted(set(map(str, ratios)))}")
    sources, indexed = c.get_list("kv_source_layer_ids"), c.get_list("index_source_layer_ids") or []
    if sources is None:
        raise c.error("kv_source_layer_ids", "DeepSeek-V4.1 needs the layers that own compressed caches")
    if any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < layers or not ratios[s] for s in sources):
        raise c.error("kv_source_layer_ids", f"expected layers below {layers} with a compress ratio, got {sources}")
    kinds, rates = [], {}
    for i, ratio in enumerate(ratios[:layers]):
        if not ratio:
            kinds.append("window")
        elif i in sources:
            name = f"source_r{ratio}" + ("" if i in indexed else "_unindexed")
            kinds.append(name)
            rates[name] = ratio
        elif any(s <= i for s in sources):
            kinds.append("shared")
        else:
            raise c.error("kv_source_layer_ids", f"layer {i} (ratio {ratio}) has no kv source at or before it")
    if any(ratios[layers:]):
        raise c.error("compress_ratios", "the entries after num_hidden_layers (MTP/DSpark layers) must be 0 (windows)")
    return kinds, rates


def _convert_deepseek_v41(
    data: dict[str, Any], outer: dict[str, Any], file: str, prefix: str, name: str | None, notes: list[str]
) -> dict[str, Any]:
    c, out, layers = _v4_common(data, outer, file, prefix, name, notes)
    attention = out.pop("_attention")
    for key in ("q_lora_rank", "o_groups", "o_lora_rank"):  # o_groups: vLLM's attention backend depends on it
        if c.opt_int(key):
            attention[key] = c.get_int(key)
    window = c.get_int("sliding_window")
    kinds, rates = _v41_kinds(c, layers)
    sections: dict[str, Any] = {"window": {"attention": attention, "window": window}}
    for kind, ratio in rates.items():
        sections[kind] = {"attention": attention, "window": window, "compress_ratio": ratio}
        if not kind.endswith("_unindexed"):
            sections[kind]["indexer"] = indexer_section(c)
    if "shared" in kinds:
        sections["shared"] = {"attention": attention, "window": window,
                              "description": "reads the compressed cache of the kv source before it"}  # fmt: skip
    out["kinds"] = sections
    out["layer_types"] = kinds
    mtp = c.opt_int("num_nextn_predict_layers", minimum=0) or 0
    if mtp:
        out["mtp_layers"], out["mtp_kind"] = mtp, "window"  # DSpark draft stages: a window each
    notes.append("DeepSeek-V4.1: no weights section (engram tables, vision tower and DSpark experts are not counted); "
                 "its caches are sized by the ideal runtime, vLLM 0.30+ and SGLang 0.5.23 given the GPU")  # fmt: skip
    return out


def _convert_mistral_params(data: dict[str, Any], file: str, name: str | None, notes: list[str]) -> dict[str, Any]:
    c = Config(data, file)
    layers = c.get_int("n_layers")
    heads = c.get_int("n_heads")
    out: dict[str, Any] = {"name": name or "imported model", "dtype": "bf16"}
    notes.append(
        "native params file (Mistral params.json / DeepSeek inference config) names no cache dtype: assumed bf16"
    )
    context = c.opt_int("max_position_embeddings") or c.opt_int("max_seq_len")
    if context:
        out["max_context"] = context
    out["layers"] = layers
    if c.has("kv_lora_rank"):
        attention: dict[str, Any] = {
            "kind": "mla", "heads": heads, "kv_lora_rank": c.get_int("kv_lora_rank"),
            "qk_rope_head_dim": c.get_int("qk_rope_head_dim"), "qk_nope_head_dim": c.get_int("qk_nope_head_dim"),
            "v_head_dim": c.get_int("v_head_dim"),
        }  # fmt: skip
        if c.has("q_lora_rank"):
            attention["q_lora_rank"] = c.get_int("q_lora_rank")
        if c.has("n_kv_heads"):
            notes.append(f"n_kv_heads ({c.get_int('n_kv_heads')}) ignored: an MLA layer caches one latent")
        out["attention"] = attention
    else:
        from .families import make_attention

        kv_heads = c.get_int("n_kv_heads", default=heads)
        head_dim = c.get_int("head_dim") if c.has("head_dim") else c.get_int("dim") // heads
        out["attention"] = make_attention(heads, kv_heads, head_dim)
        window = c.opt_int("sliding_window")
        if window and not (context and window >= context):
            out["layer_pattern"] = ["sliding"]
            out["sliding_window"] = window
    if c.has("index_n_heads"):
        out["indexer"] = indexer_section(c)
    weights = _weights_or_note(c, data, data, notes, out["layers"])
    if weights:
        out["weights"] = weights
    return out


# ---------------------------------------------------------------------------------------------------------
# Files


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
    from .checkpoint import has_safetensors

    if has_safetensors(path.parent):  # the checkpoint itself: exact weight sizes from its headers
        model["checkpoint"] = str(path.parent)
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
        warnings.warn(f"{file}: {note}", AssumptionWarning, stacklevel=3)
    model = {"source": file, **model} if "source" not in model else model  # as `import` records it
    return parse_model(model, file)


ORDER = ("name", "source", "checkpoint", "dtype", "cache_dtype", "max_context", "layers", "mtp_layers", "mtp_kind", "attention", "sliding_window",
         "compress_rates", "layer_pattern", "layer_types", "linear_attention", "indexer", "kinds", "weights", "architecture",
         "vision")  # fmt: skip


def to_yaml(model: dict[str, Any], notes: list[str], source: str) -> str:
    """The model as a YAML document in our format, with comments on what was inferred."""
    lines = [f"# Imported by mla-mem from {source}", "# Review before committing; inferred values are marked."]
    lines += [f"# inferred: {note}" for note in notes]
    model = {"source": source, **model} if "source" not in model else model
    for key in ORDER:
        if key not in model:
            continue
        value = model[key]
        if isinstance(value, dict):
            lines.append(f"{key}:")
            for sub, item in value.items():
                lines.append(f"  {sub}: {_flow(item)}" if isinstance(item, dict) else f"  {sub}: {_scalar(item)}")
        elif isinstance(value, list):
            lines.extend(_wrapped_list(key, [_scalar(v) for v in value]))
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


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
    if text and all(c.isalnum() or c in "-_./: " for c in text) and not text[0].isdigit() and ": " not in text:
        return text
    return json.dumps(text)
