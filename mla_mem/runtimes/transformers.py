"""Hugging Face transformers 4.40 to 5.x (DynamicCache). Sources: src/transformers/cache_utils.py (DynamicLayer,
DynamicSlidingWindowLayer keeps the last W - 1 tokens), models/deepseek_v3/modeling_deepseek_v3.py (keys and values
expanded per head before 5.15, the latent from 5.15), models/deepseek_v4/modeling_deepseek_v4.py (5.24). Measured
byte for byte by tests/crosscheck."""

from __future__ import annotations

from ..options import Deployment, OptionError
from ..spec import MLA, Compressed, ModelSpec
from . import Profile
from .ideal import first_indexer_dim
from .rules import CompressedRules, Rules, StateRule, has_kind, model_dtype, state_dtype


def rules(model: ModelSpec, deployment: Deployment) -> Rules:
    version = deployment.runtime.numbers
    kv = model_dtype(deployment.kv_dtype, model)
    if deployment.block_size not in (None, 1):
        raise OptionError("block_size", "transformers does not page its cache (DynamicCache)")
    index_dim = first_indexer_dim(model)
    if has_kind(model, lambda k: isinstance(k.attention, Compressed)):
        if version < (5, 24):
            raise OptionError(
                "runtime",
                "transformers: mla-mem's DeepSeek-V4 rules were read from transformers 5.24; earlier versions are "
                "not described (use transformers@5.24)",
            )
        attention = next(k.attention for k in model.used_kinds() if isinstance(k.attention, Compressed))
        assert isinstance(attention, Compressed)
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
            ),
        )  # fmt: skip
    if kv.is_block_quantized or kv.name in ("fp8_ds_mla", "nvfp4_ds_mla") or kv.bits not in (8, 16, 32):
        raise OptionError(
            "kv_dtype",
            f"transformers: unsupported cache dtype {kv.name}; DynamicCache holds torch dtypes (bf16, fp16, fp32, fp8)",
        )
    latent = version >= (5, 15)
    notes = [
        "transformers: DynamicCache, no paging; sliding layers keep the last W - 1 tokens "
        "(cache_utils.py DynamicSlidingWindowLayer)"
    ]
    if has_kind(model, lambda k: isinstance(k.attention, MLA)) and not latent:
        notes.append("transformers < 5.15 caches MLA keys and values expanded to every head")
    conv = state_dtype(deployment, model.dtype)
    recurrent = state_dtype(deployment, "fp32")
    return Rules(
        runtime=deployment.runtime, kv=kv, v=kv, kv_label=kv.name, mla_layout="latent" if latent else "expanded",
        indexer_bytes=kv.row_bytes(index_dim) if index_dim and latent else None,
        indexer_formula=f"index_head_dim {index_dim} x {kv.name}" if index_dim else "",
        head_split="none", window_rule="window-1",
        states={"gated_deltanet": StateRule("k", conv, recurrent), "kda": StateRule("k", conv, recurrent)},
        supports_tp=False, supports_pp=False, notes=tuple(notes),
    )  # fmt: skip


PROFILE = Profile(
    name="transformers", default_version="5.24", low=(4, 40), high=(5, 99), described="4.40 to 5.x",
    rules=rules, aliases=("hf",), order=3,
    sources=("src/transformers/cache_utils.py", "models/deepseek_v3/modeling_deepseek_v3.py"),
)  # fmt: skip
