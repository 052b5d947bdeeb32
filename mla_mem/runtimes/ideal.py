"""The ideal runtime: exactly the values the architecture needs, in the cache dtype, no paging, no runtime overhead.
States keep conv_kernel - 1 columns and everything in the model dtype (or state_dtype)."""

from __future__ import annotations

from ..options import Deployment, OptionError, RuntimeRef
from ..spec import STATE_KINDS, Compressed, ModelSpec
from . import Profile
from .rules import CompressedRules, Rules, StateRule, has_kind, model_dtype, state_dtype


def first_indexer_dim(model: ModelSpec) -> int | None:
    return next((k.indexer.head_dim for k in model.used_kinds() if k.indexer is not None), None)


def rules(model: ModelSpec, deployment: Deployment) -> Rules:
    kv = model_dtype(deployment.kv_dtype, model)
    if kv.name in ("fp8_ds_mla", "nvfp4_ds_mla"):
        raise OptionError("kv_dtype", f"{kv.name} is a vLLM/SGLang packed layout; use it with runtime vllm")
    if deployment.block_size not in (None, 1):
        raise OptionError("block_size", "the ideal runtime does not page its cache (block 1)")
    state = state_dtype(deployment, model.dtype)
    index_dim = first_indexer_dim(model)
    compressed = None
    if has_kind(model, lambda k: isinstance(k.attention, Compressed)):
        attention = next(k.attention for k in model.used_kinds() if isinstance(k.attention, Compressed))
        assert isinstance(attention, Compressed)
        record = kv.row_bytes(attention.head_dim)
        indexer = kv.row_bytes(index_dim) if index_dim else 0
        compressed = CompressedRules(
            record=record, record_formula=f"head_dim {attention.head_dim} x {kv.name} = {record} B",
            indexer=indexer, indexer_formula=f"index_head_dim x {kv.name} = {indexer} B", ratios=(),
        )  # fmt: skip
    return Rules(
        runtime=RuntimeRef("ideal"), kv=kv, v=kv, kv_label=kv.name, compressed=compressed,
        indexer_bytes=kv.row_bytes(index_dim) if index_dim else None,
        indexer_formula=f"index_head_dim {index_dim} x {kv.name}" if index_dim else "",
        head_split="ceil", window_rule="window", chunk_rule="window", k_eq_v_shared=True,
        states={kind: StateRule("k-1", state, state) for kind in STATE_KINDS},
        supports_dcp=True,
        notes=("ideal: exactly the values the architecture needs, no paging, no runtime overhead",),
    )  # fmt: skip


PROFILE = Profile(
    name="ideal", default_version="", low=(), high=(), described="(no versions)", rules=rules, order=0,
    sources=("DeepSeek-V2 paper (arXiv 2405.04434), Table 1: per-token cache of MHA, GQA, MQA and MLA",),
)  # fmt: skip
