"""vLLM (v1 engine), 0.11 to 0.33. Sources: vllm/v1/kv_cache_interface.py (FullAttentionSpec, MLAAttentionSpec,
SlidingWindowSpec, MambaSpec), vllm/v1/core/kv_cache_utils.py, vllm/v1/attention/backends/mla/flashmla_sparse.py
(fp8_ds_mla: 512 fp8 + 4 fp32 scales + 64 bf16 rope = 656 B), vllm/model_executor/models/deepseek_v2.py (indexer
keys: 128 fp8 + one fp32 scale = 132 B), vllm/model_executor/models/config.py (hybrid page alignment),
vllm/model_executor/models/deepseek_v4/ and third_party/flashmla/flash_mla_interface.py (DeepSeek-V4 records)."""

from __future__ import annotations

from ..options import Deployment, OptionError
from ..spec import MLA, Compressed, ModelSpec
from ..units import parse_dtype
from . import Profile
from .rules import (
    VLLM_MAX_BATCHED_TOKENS,
    CompressedRules,
    Rules,
    StateRule,
    has_kind,
    has_sparse_mla,
    model_dtype,
    state_dtype,
)

# DeepSeek-V4 indexer keys by --indexer-dtype: 132 B fp8 (128 + fp32 scale), 68 B MXFP4, 256 B bf16.
V4_INDEXER_BYTES = {"fp8": 132, "fp8_e4m3": 132, "mxfp4": 68, "bf16": 256}


def rules(model: ModelSpec, deployment: Deployment) -> Rules:
    version = deployment.runtime.numbers
    if has_kind(model, lambda k: isinstance(k.attention, Compressed)):
        return _rules_v4(model, deployment)
    requested = (deployment.kv_dtype or "auto").lower()
    sparse = has_sparse_mla(model)
    notes = []
    mla_record = None
    label = None
    if sparse and requested == "auto" and version <= (0, 11, 999):
        # vLLM 0.11 (PR 25988, vllm/model_executor/models/config.py DeepseekV32ForCausalLM): "auto" means the packed
        # fp8 format for DeepSeek-V3.2; later versions keep "auto" as the model dtype.
        requested = "fp8_ds_mla"
        notes.append("vllm 0.11: --kv-cache-dtype auto is fp8_ds_mla for sparse MLA (DeepSeek-V3.2)")
    if sparse and requested.startswith("fp8") and requested != "fp8_ds_mla":
        notes.append(f"vllm: --kv-cache-dtype {requested} is stored as fp8_ds_mla for sparse MLA")
        requested = "fp8_ds_mla"
    if requested in ("fp8_ds_mla", "nvfp4_ds_mla"):
        if not sparse:
            raise OptionError(
                "kv_dtype",
                f"vllm: {requested} is the sparse-MLA layout of models with a DSA indexer (DeepSeek-V3.2, GLM-5); "
                "use fp8 for this model",
            )
        if requested == "nvfp4_ds_mla" and version < (0, 33):
            raise OptionError("kv_dtype", "vllm: nvfp4_ds_mla needs vLLM 0.33 or later (SM100)")
        mla_record = 656 if requested == "fp8_ds_mla" else 352
        kv = parse_dtype("fp8")
        label = requested
    else:
        kv = model_dtype(requested, model)
        if kv.is_block_quantized or kv.bits not in (8, 16, 32):
            raise OptionError(
                "kv_dtype",
                f"vllm: unsupported cache dtype {kv.name}; expected auto, bf16, fp16, fp32, fp8, fp8_e5m2, "
                "fp8_ds_mla or nvfp4_ds_mla",
            )
    is_mla = has_kind(model, lambda k: isinstance(k.attention, MLA))
    block = deployment.block_size or (64 if is_mla else 16)  # FlashMLA (Hopper default; CUTLASS MLA uses 128)
    state = state_dtype(deployment, model.dtype)
    fp32 = parse_dtype("fp32")
    return Rules(
        runtime=deployment.runtime, kv=kv, v=kv, kv_label=label or kv.name, mla_record=mla_record,
        indexer_bytes=132 if has_kind(model, lambda k: k.indexer is not None) else None,
        indexer_formula="index_head_dim 128 fp8 + one fp32 scale (vLLM indexer cache)",
        head_split="divides", block=block, indexer_block=block,
        window_rule="vllm" if deployment.hybrid_allocator else "full",
        states={
            # mamba_ssm_cache_dtype "auto" = model dtype for Gated DeltaNet; Kimi Delta Attention keeps fp32
            "gated_deltanet": StateRule("k-1", state, state),
            "kda": StateRule("k-1", state, fp32),
        },
        state_page_align=True,
        max_batched_tokens=deployment.max_batched_tokens or VLLM_MAX_BATCHED_TOKENS,
        supports_dcp=True,
        mtp_note="vllm: MTP layers share the main cache pool",
        notes=tuple(notes),
    )  # fmt: skip


def _rules_v4(model: ModelSpec, deployment: Deployment) -> Rules:
    """DeepSeek-V4 in vLLM 0.33: fp8 records 448 fp8 no-rope + 64 bf16 rope + 8 B UE8M0 scales = 584 B; bf16
    records 512 x 2 = 1,024 B; windows in 64-token blocks, compressed caches in 256-token pages, fp8 record pages
    padded to a multiple of 576 B."""
    attention = next(k.attention for k in model.used_kinds() if isinstance(k.attention, Compressed))
    assert isinstance(attention, Compressed)
    requested = (deployment.kv_dtype or "auto").lower()
    notes = []
    if requested in ("auto", "fp8", "fp8_e4m3", "fp8_ds_mla"):
        if requested == "auto":
            notes.append("vllm: --kv-cache-dtype auto is the fp8 layout for DeepSeek-V4 (FlashMLA, PR 45091)")
        record, label, align = 584, "fp8_ds_mla", 576
        record_formula = "448 fp8 nope + 64 bf16 rope + 8 B UE8M0 scales = 584 B"
    elif requested in ("bf16", "bfloat16"):
        record, label, align = 1024, "bf16", 0
        record_formula = f"head_dim {attention.head_dim} x bf16 = 1,024 B"
    else:
        raise OptionError(
            "kv_dtype", f"vllm: DeepSeek-V4 cache dtype {requested!r} unsupported; expected auto, fp8 or bf16"
        )
    indexer_name = (deployment.indexer_dtype or "fp8").lower()
    if indexer_name not in V4_INDEXER_BYTES:
        raise OptionError("indexer_dtype", f"expected fp8, mxfp4 or bf16, got {deployment.indexer_dtype!r}")
    indexer = V4_INDEXER_BYTES[indexer_name]
    kv = parse_dtype("fp8") if record == 584 else parse_dtype("bf16")
    return Rules(
        runtime=deployment.runtime, kv=kv, v=kv, kv_label=label, head_split="divides", supports_dcp=False,
        notes=tuple(notes),
        compressed=CompressedRules(
            record=record, record_formula=record_formula, indexer=indexer,
            indexer_formula=f"indexer key {indexer_name} = {indexer} B", rings=True,
            window_block=deployment.block_size or 64, page_tokens=256, page_align=align,
        ),
    )  # fmt: skip


PROFILE = Profile(
    name="vllm", default_version="0.33", low=(0, 11), high=(0, 33), described="0.11 to 0.33 (v1 engine)",
    rules=rules, order=1,
    sources=("vllm/v1/kv_cache_interface.py", "vllm/v1/core/kv_cache_utils.py",
             "vllm/v1/attention/backends/mla/flashmla_sparse.py", "vllm/model_executor/models/config.py"),
)  # fmt: skip
