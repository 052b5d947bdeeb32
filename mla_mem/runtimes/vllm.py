"""vLLM (v1 engine), 0.11 to 0.33. Sources: vllm/v1/kv_cache_interface.py (FullAttentionSpec, MLAAttentionSpec,
SlidingWindowSpec, MambaSpec), vllm/v1/core/kv_cache_utils.py, vllm/v1/attention/backends/mla/flashmla_sparse.py
(fp8_ds_mla: 512 fp8 + 4 fp32 scales + 64 bf16 rope = 656 B), vllm/model_executor/models/deepseek_v2.py (indexer
keys: 128 fp8 + one fp32 scale = 132 B), vllm/model_executor/models/config.py (hybrid page alignment),
vllm/model_executor/models/deepseek_v4/ and third_party/flashmla/flash_mla_interface.py (DeepSeek-V4 records)."""

from __future__ import annotations

from dataclasses import dataclass

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
    in_flight = _in_flight_batches(model, deployment, notes)
    return Rules(
        runtime=deployment.runtime, kv=kv, v=kv, kv_label=label or kv.name, mla_record=mla_record,
        indexer_bytes=132 if has_kind(model, lambda k: k.indexer is not None) else None,
        indexer_formula="index_head_dim 128 fp8 + one fp32 scale (vLLM indexer cache)",
        head_split="divides", block=block, indexer_block=block,
        window_rule="vllm" if deployment.hybrid_allocator else "full",
        chunk_rule="vllm-chunk" if deployment.hybrid_allocator else "full",
        states=_states(model, deployment),
        state_page_align=True, state_align=_state_align(is_mla, deployment),
        max_batched_tokens=deployment.max_batched_tokens or VLLM_MAX_BATCHED_TOKENS, in_flight_batches=in_flight,
        supports_dcp=True,
        mtp_note="vllm: MTP layers share the main cache pool",
        notes=tuple(notes),
    )  # fmt: skip


def _states(model: ModelSpec, deployment: Deployment) -> dict[str, StateRule]:
    """State shapes and dtypes (vllm/model_executor/layers/mamba/mamba_utils.py MambaStateShapeCalculator and
    MambaStateDtypeCalculator): conv state of conv_kernel - 1 columns and states in the model dtype (mamba_cache_dtype
    "auto"); Kimi Delta Attention's recurrent state in fp32; the recurrent state in the dtype the model's config
    names for Nemotron-H (0.13+) and Qwen3.5's Gated DeltaNet (0.17+); Mamba-2 B/C groups padded by
    extra_groups_for_head_shards; lightning heads // tp."""
    version = deployment.runtime.numbers
    state = state_dtype(deployment, model.dtype)
    fp32 = parse_dtype("fp32")
    # prefix caching (on by default for hybrid models from 0.26; 0.15+ when asked) keeps mamba_cache_mode "align":
    # 2 state pages per request (MambaSpec.max_memory_usage_bytes), plus a prefill checkpoint page for Mamba-2
    # layers from 0.32 (mamba_mixer2.py get_kv_cache_spec)
    cached = deployment.prefix_caching if deployment.prefix_caching is not None else version >= (0, 26)
    align = 1 if cached and version >= (0, 15) else 0
    text = "prefix caching: mamba_cache_mode align"
    mamba2_extra = align + (1 if align and version >= (0, 32) else 0)
    states = {
        "gated_deltanet": StateRule("k-1", state, state, declared_dtype=version >= (0, 17), extra_pages=align,
                                    extra_text=text),
        "mamba1": StateRule("k-1", state, state, extra_pages=align, extra_text=text),
        "mamba2": StateRule("k-1", state, state, declared_dtype=version >= (0, 13), groups="vllm",
                            extra_pages=mamba2_extra, extra_text=text + (" + a prefill checkpoint" if mamba2_extra > 1 else "")),
        "lightning": StateRule("k-1", state, state, floor_heads=True, extra_pages=align, extra_text=text),
        "short_conv": StateRule("k-1", state, state, extra_pages=align, extra_text=text),
    }  # fmt: skip
    if version >= (0, 11, 1):  # Kimi Delta Attention arrived in 0.11.1
        states["kda"] = StateRule("k-1", state, fp32, extra_pages=align, extra_text=text)

    if version < (0, 20, 1) and deployment.state_dtype and parse_dtype(deployment.state_dtype).name == "fp32":
        del states["lightning"]  # "fp32 state for minimax is not yet supported" before 0.20.1
    return states


def _state_align(is_mla: bool, deployment: Deployment) -> int:
    """The grain of the attention block of attention + state models: 16 up to 0.11.0; then the backend's kernel
    block (64 FlashMLA, 16 FlashAttention); from 0.20 at least the configured block size; from 0.27 at least 128
    for MLA (TRTLLM/FlashInfer MLA decode kernels)."""
    version = deployment.runtime.numbers
    if version <= (0, 11, 0):
        return 16
    grain = 64 if is_mla else 16
    if version >= (0, 20) and deployment.block_size:
        grain = max(grain, deployment.block_size)
    if version >= (0, 27) and is_mla:
        grain = max(grain, 128)
    return grain


def _in_flight_batches(model: ModelSpec, deployment: Deployment, notes: list[str]) -> int:
    """Batches whose tokens a sliding window or a chunk must still hold: from 0.26, max_concurrent_batches (async
    scheduling, on by default for generative models: 2 at pp 1; pp + 1 with the V2 model runner, the default);
    before, one (vllm/config/vllm.py max_in_flight_tokens)."""
    if deployment.runtime.numbers < (0, 26) or not has_kind(
        model, lambda k: k.window is not None or k.chunk is not None
    ):
        return 1
    if deployment.pp == 1:
        return 2
    notes.append(
        f"vllm: windows hold pp + 1 = {deployment.pp + 1} batches in flight (async scheduling, V2 model runner)"
    )
    return deployment.pp + 1


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


# ---------------------------------------------------------------------------------------------------------
# DeepSeek-V4's own KV planner, vLLM 0.20-0.28 (vllm/v1/core/kv_cache_utils.py _get_kv_cache_config_deepseek_v4,
# _get_kv_cache_groups_uniform_groups, _approximate_gcd, _max_memory_usage_bytes_from_groups; page sizes from
# vllm/models/deepseek_v4/{attention,compressor}.py). Reproduces vllm-project/vllm#44376 (docs/capacity.md).


def _round_up(value: int, grain: int) -> int:
    return -(-value // grain) * grain


def _approximate_gcd(values: list[int], lower: int) -> int:
    """The tuple count with the least padding over the groups' layer counts (ties: the larger)."""
    best, best_pad = lower, None
    for candidate in range(lower, max(values) + 1):
        pad = sum((candidate - v % candidate) % candidate for v in values)
        if best_pad is None or pad < best_pad or (pad == best_pad and candidate > best):
            best, best_pad = candidate, pad
    return best


@dataclass(frozen=True)
class V4Planned:
    bytes_per_block: int
    request_pages: int  # sum over groups of the pages a request needs (0.27+ concurrency, "needed")
    old_request_blocks: int  # cdiv(sum of max_memory_usage over groups, group 0's page) (0.20.1-0.26)


def deepseek_v4_plan(model: ModelSpec, deployment: Deployment, context: int) -> V4Planned | None:
    """vLLM 0.20-0.28's V4 groups for fp8_ds_mla (584 B records, pages aligned to 576 B); None otherwise."""
    version = deployment.runtime.numbers
    if not (0, 20) <= version < (0, 29) or (deployment.kv_dtype or "auto").lower() not in (
        "auto",
        "fp8",
        "fp8_e4m3",
        "fp8_ds_mla",
    ):
        return None
    kinds = [model.kind_of(i) for i in range(model.layers)]
    compressed = [k for k in kinds if isinstance(k.attention, Compressed)]
    if len(compressed) != len(kinds):
        return None
    attention = compressed[0].attention
    assert isinstance(attention, Compressed)
    if (attention.head_dim, attention.qk_rope_head_dim) != (512, 64):
        return None  # the 584 B record is 448 fp8 nope + 64 bf16 rope + 8 B of scales
    window = compressed[0].window or 128
    index = next((k.indexer.head_dim for k in kinds if k.indexer is not None), 128)
    c4 = sum(1 for k in kinds if 1 < k.compress_ratio < 64)
    c128 = sum(1 for k in kinds if k.compress_ratio >= 64)
    block = deployment.block_size or 256
    tokens = deployment.max_batched_tokens or VLLM_MAX_BATCHED_TOKENS  # `vllm serve`; the LLM class: 16,384
    align, record, index_row = 576, 584, index + index // 128 * 4
    full = {"c4": _round_up(block // 4 * record, align), "c128": _round_up(block // 128 * record, align),
            "index": _round_up(block // 4 * index_row, align)}  # fmt: skip
    tuple_bytes = sum(full.values())
    swa_page = _round_up(64 * record, align)
    tuples = _approximate_gcd([max(c4, c128), len(kinds), c4, c128], max(c4, c128))
    swa_groups = -(-len(kinds) // tuples)
    group_tuples = [max(c4, c128), *(len(range(len(kinds))[i::swa_groups]) for i in range(swa_groups)), c4, c128]

    def pages(limit: int | None, grain: int) -> int:
        return -(-context // grain) if limit is None else -(-min(limit - 1 + tokens, context) // grain) + 1

    need = [(pages(None, block), c4 * full["c4"] + c128 * full["c128"] + c4 * full["index"])]
    need += [(pages(window, 64), n * swa_page) for n in group_tuples[1 : 1 + swa_groups]]
    need += [(pages(2 * 4, 4), c4 * (swa_page + full["index"])), (pages(window, 8), c128 * swa_page)]
    old = -(-sum(p * page for p, page in need) // need[0][1])
    return V4Planned(max(group_tuples) * tuple_bytes, sum(p for p, _ in need), old)
