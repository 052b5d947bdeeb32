"""Hugging Face transformers 4.40 to 5.x (DynamicCache and the per-family caches).

Every boundary below was measured: tiny random models of each family, every release from 4.57.1 to 5.24.0, every
tensor reachable from the returned cache (and module buffers) walked after prefill and after a decode step.
Sources: src/transformers/cache_utils.py (DynamicSlidingWindowLayer keeps the last W - 1 tokens; from 5.5.0 one
linear-attention layer class whose recurrent state took the conv state's dtype, from 5.14.0 the dtype it receives),
models/deepseek_v3/modeling_deepseek_v3.py (keys and values expanded per head up to 5.14, the latent from 5.15:
5.15.0 line 461 caches kv_nope and k_rot), models/deepseek_v32 and glm_moe_dsa (expanded up to 5.17, the latent from
5.18; indexer keys [B, T, index_head_dim] in every release), models/llama4 (chunked layers are sliding-window layers
with window = attention_chunk_size), models/minimax (lightning state in the model dtype), models/lfm2 (up to 5.4
the conv buffer is also allocated on attention layers), models/deepseek_v4/modeling_deepseek_v4.py (5.24).
tests/crosscheck measures the same byte for byte."""

from __future__ import annotations

from ..options import Deployment, OptionError
from ..spec import MLA, Compressed, ModelSpec
from ..units import DType, parse_dtype
from . import Profile
from .ideal import first_indexer_dim
from .rules import (
    CompressedRules,
    Rules,
    StateRule,
    WindowRule,
    has_kind,
    has_sparse_mla,
    model_dtype,
    state_dtype,
)

Version = tuple[int, ...]


def rules(model: ModelSpec, deployment: Deployment) -> Rules:
    version = deployment.runtime.numbers
    kv = model_dtype(deployment.kv_dtype, model)
    if deployment.block_size not in (None, 1):
        raise OptionError("block_size", "transformers does not page its cache (DynamicCache)")
    if has_kind(model, lambda k: isinstance(k.attention, Compressed)):
        return _deepseek_v4(model, deployment, kv, version)
    if kv.is_block_quantized or kv.name in ("fp8_ds_mla", "nvfp4_ds_mla") or kv.bits not in (8, 16, 32):
        raise OptionError(
            "kv_dtype",
            f"transformers: unsupported cache dtype {kv.name}; DynamicCache holds torch dtypes (bf16, fp16, fp32, fp8)",
        )
    index_dim = first_indexer_dim(model)
    # DSA models (MLA + indexer: DeepSeek-V3.2, GLM-5) went latent three releases after DeepSeek-V3.
    latent_from = (5, 18) if has_sparse_mla(model) else (5, 15)
    latent = version >= latent_from
    notes = [
        "transformers: DynamicCache, no paging; sliding and chunked layers keep the last W - 1 tokens "
        "(cache_utils.py DynamicSlidingWindowLayer), but hold the whole prompt right after a prefill longer than W"
    ]
    if has_kind(model, lambda k: isinstance(k.attention, MLA)) and not latent:
        notes.append(
            f"transformers < {'.'.join(map(str, latent_from))} caches MLA keys and values expanded to every head"
        )
    if index_dim and version < (5, 11):
        notes.append("transformers < 5.11 keeps GLM-5's indexer keys on the indexer module, outside the cache object")
    _refuse_unsettled_states(model, deployment, version)
    window_rule: WindowRule = "window-1"
    if (5, 5) <= version < (5, 14) and has_kind(model, lambda k: getattr(k.attention, "k_eq_v", False)):
        # Gemma 4 31B / 26B-A4B (num_kv_shared_layers 0, attention_k_eq_v): DynamicCache(config) cut the layer list
        # to layer_types[:-0] = [] (cache_utils.py 5.13.1:1566), so every layer became a full DynamicLayer; fixed in
        # 5.14.0 (`num_kv_shared_layers > 0`). Measured by tests/crosscheck.
        window_rule = "full"
        notes.append(
            "transformers 5.5 to 5.13 keep every token on Gemma 4's sliding layers (num_kv_shared_layers 0 emptied "
            "the cache's layer list; fixed in 5.14)"
        )
    return Rules(
        runtime=deployment.runtime, kv=kv, v=kv, kv_label=kv.name, mla_layout="latent" if latent else "expanded",
        indexer_bytes=kv.row_bytes(index_dim) if index_dim else None,
        indexer_formula=f"index_head_dim {index_dim} x {kv.name}" if index_dim else "",
        head_split="none", window_rule=window_rule, chunk_rule="window-1",
        states=_states(model, deployment, version), supports_tp=False, supports_pp=False, notes=tuple(notes),
    )  # fmt: skip


def _states(model: ModelSpec, deployment: Deployment, version: Version) -> dict[str, StateRule]:
    """Conv states keep the whole kernel (K columns) in the model dtype in every release; the recurrent / SSM state
    dtype moved twice (measured: 5.4.0 -> 5.5.0 -> 5.14.0). --state-dtype sets the recurrent / SSM state only:
    transformers never changes the conv state's dtype."""
    conv = parse_dtype(model.dtype)
    model_dt = state_dtype(deployment, model.dtype)
    fp32 = state_dtype(deployment, "fp32")
    # Gated DeltaNet (Qwen3NextDynamicCache): fp32 up to 5.4, the conv dtype 5.5-5.13, fp32 from 5.14
    gdn = fp32 if version < (5, 5) or version >= (5, 14) else model_dt
    # Mamba-1 and Mamba-2: the model dtype up to 5.13 (Jamba's own cache kept fp32 up to 5.4), fp32 from 5.14
    ssm = fp32 if version >= (5, 14) else model_dt
    return {
        "gated_deltanet": StateRule("k", conv, gdn, split_tp=False),
        "kda": StateRule("k", conv, fp32, split_tp=False),  # kimi_linear, 5.17+
        "mamba1": StateRule("k", conv, ssm, split_tp=False),
        "mamba2": StateRule("k", conv, ssm, split_tp=False),
        "lightning": StateRule("k", conv, model_dt, split_tp=False),  # MiniMaxCache: [B, H, d, d]
        "short_conv": StateRule("k", conv, model_dt, split_tp=False),  # Lfm2: [B, hidden, conv_L_cache]
    }


# First releases whose model classes cache these (measured; before them the family is absent or remote code)
FIRST_RELEASE = (
    ("DSA (MLA with indexer keys)", has_sparse_mla, (5, 2), "glm_moe_dsa arrived in 5.2.0, deepseek_v32 in 5.11.0"),
    ("KDA", lambda m: has_kind(m, lambda k: k.state is not None and k.state.kind == "kda"), (5, 17),
     "kimi_linear arrived in 5.17.0"),
    ("keys equal to values", lambda m: has_kind(m, lambda k: getattr(k.attention, "k_eq_v", False)), (5, 5),
     "gemma4 arrived in 5.5.0"),
)  # fmt: skip


def _refuse_unsettled_states(model: ModelSpec, deployment: Deployment, version: Version) -> None:
    for what, present, first, why in FIRST_RELEASE:
        if present(model) and version < first:
            raise OptionError(
                "runtime",
                f"transformers {deployment.runtime.version} has no model class with {what} ({why}); "
                f"use transformers@{first[0]}.{first[1]} or later",
            )
    kinds = {k.state.kind for k in model.used_kinds() if k.state is not None}

    if "mamba1" in kinds and version < (5, 5) and deployment.state_dtype is None:
        raise OptionError(
            "state_dtype",
            "transformers < 5.5 keeps the Mamba-1 SSM state in fp32 for Jamba (HybridMambaAttentionDynamicCache) "
            "and in the model dtype for Mamba (MambaCache); say which with --state-dtype fp32 (Jamba) or bf16 "
            "(Mamba)",
        )
    if "short_conv" in kinds and version < (5, 5):
        raise OptionError(
            "runtime",
            "transformers < 5.5 also allocates LFM2's convolution buffer on its attention layers "
            "(Lfm2HybridConvCache); mla-mem describes transformers 5.5 and later for short-convolution models",
        )


def _deepseek_v4(model: ModelSpec, deployment: Deployment, kv: DType, version: Version) -> Rules:
    if version < (5, 24):
        raise OptionError(
            "runtime",
            "transformers: mla-mem's DeepSeek-V4 rules were read from transformers 5.24; earlier versions are "
            "not described (use transformers@5.24)",
        )
    attention = next(k.attention for k in model.used_kinds() if isinstance(k.attention, Compressed))
    assert isinstance(attention, Compressed)
    index_dim = first_indexer_dim(model)
    record = kv.row_bytes(attention.head_dim)
    indexer = kv.row_bytes(index_dim) if index_dim else 0
    return Rules(
        runtime=deployment.runtime, kv=kv, v=kv, kv_label=kv.name, head_split="none",
        supports_tp=False, supports_pp=False,
        notes=("transformers 5.24 (models/deepseek_v4/modeling_deepseek_v4.py): windows keep the last W - 1 "
               "tokens, compressors buffer the tokens of the unfinished window and carry one window of overlap",),
        compressed=CompressedRules(
            record=record, record_formula=f"head_dim {attention.head_dim} x {kv.name} = {record} B",
            indexer=indexer, indexer_formula=f"index_head_dim x {kv.name} = {indexer} B", in_progress=True,
            v41="transformers has no deepseek_v41 model (5.24; huggingface/transformers#48721 was closed)",
        ),
    )  # fmt: skip


PROFILE = Profile(
    name="transformers", default_version="5.24", low=(4, 40), high=(5, 99), described="4.40 to 5.x",
    rules=rules, aliases=("hf",), order=3,
    sources=("src/transformers/cache_utils.py", "models/deepseek_v3/modeling_deepseek_v3.py",
             "models/glm_moe_dsa/modeling_glm_moe_dsa.py", "models/llama4/modeling_llama4.py"),
)  # fmt: skip
