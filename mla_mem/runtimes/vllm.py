"""vLLM (v1 engine), 0.11 to 0.33. Sources: vllm/v1/kv_cache_interface.py (FullAttentionSpec, MLAAttentionSpec,
SlidingWindowSpec, MambaSpec), vllm/v1/core/kv_cache_utils.py, vllm/v1/attention/backends/mla/flashmla_sparse.py
(fp8_ds_mla: 512 fp8 + 4 fp32 scales + 64 bf16 rope = 656 B), vllm/model_executor/models/deepseek_v2.py (indexer
keys: 128 fp8 + one fp32 scale = 132 B), vllm/model_executor/models/config.py (hybrid page alignment),
vllm/model_executor/models/deepseek_v4/ and third_party/flashmla/flash_mla_interface.py (DeepSeek-V4 records)."""

from __future__ import annotations

from math import gcd

from ..options import Deployment, OptionError
from ..records import record
from ..spec import MLA, Compressed, ModelSpec
from ..units import parse_dtype
from . import Profile
from .rules import (
    VLLM_MAX_BATCHED_TOKENS,
    CompressedRules,
    Rules,
    StateRule,
    compute_major,
    has_kind,
    has_sparse_mla,
    model_dtype,
    state_dtype,
)

# DeepSeek-V4 indexer keys by --indexer-dtype: 132 B fp8 (128 + fp32 scale), 68 B MXFP4, 256 B bf16.
V4_INDEXER_BYTES = {"fp8": 132, "fp8_e4m3": 132, "mxfp4": 68, "bf16": 256}


def rules(model: ModelSpec, deployment: Deployment) -> Rules:
    version = deployment.runtime.numbers
    if has_kind(model, lambda k: isinstance(k.attention, Compressed) and k.compress_ratio in (1, 2)):
        return _rules_v41(model, deployment)
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


def _v41(deployment: Deployment) -> str:
    """Why vLLM does not size DeepSeek-V4.1 here (versions before vllm/models/deepseek_v41, 0.30)."""
    return (
        f"vllm {deployment.runtime.version} does not serve DeepSeek-V4.1; 0.30 and later do (vllm/models/deepseek_v41)"
    )


@record
class V41Layout:
    """How vLLM 0.30-0.33 stores DeepSeek-V4.1 on one GPU family (vllm/models/deepseek_v41/, read from the wheels)."""

    backend: str
    dtype: str  # the cache dtype string the layer resolves (fp8_ds_mla or nvfp4_ds_mla)
    window_record: int  # SWA record: 528 B MXFP8 on compute capability 10.x, 584 B elsewhere
    compressed_record: int  # 288 B with nvfp4_ds_mla, else the SWA record
    align: int  # page alignment: 512 B with the MXFP8 records, 576 B otherwise
    index_row: int  # 132 B fp8 / 68 B MXFP4 indexer keys
    block: int  # cache_config.block_size: 64 on SM90 (FlashMLA, indexer), 128 otherwise
    stride: int  # block_stride_alignment of the window caches (0.33, MXFP8 records: lcm of the two records)
    notes: tuple[str, ...] = ()


def v41_layout(model: ModelSpec, deployment: Deployment) -> V41Layout:
    """The backend vLLM picks by default and what it stores (0.33 models/deepseek_v41/nvidia/model.py:200-258
    `_select_dsv4_attn_cls`; attention.py:137-138 `_use_v41_mxfp8_kv_record` = SM100 family, :141-175
    `_resolve_dsv4_kv_cache_dtype`, :521-531 records and alignment; sparse_mla.py:114-116, 300-302 and the indexer's
    kernel block sizes; flash_mla_mega_attn.py:152-174 `is_available_for`, 203-207 NVFP4 as its auto dtype).
    Refuses what it cannot know: the GPU family, and settings those files do not serve."""
    version, ref = deployment.runtime.numbers, deployment.runtime
    if version < (0, 30):
        raise OptionError("runtime", _v41(deployment) + ": use runtime vllm@0.30 or later")
    cc = compute_major(deployment, "DeepSeek-V4.1's cache depends on the GPU (528 B MXFP8 records on compute "
                       "capability 10.x, 584 B elsewhere; NVFP4 compressed entries by default on 10.x)", (9, 10, 12),
                       "DeepSeek-V4.1's CUDA attention backends run on compute capability 9.x (FlashMLA), 10.x "
                       "(FlashMLA, mega attention) and 12.x (FlashInfer)")  # fmt: skip
    if deployment.spec not in (None, "dspark") or (deployment.mtp and deployment.spec is None):
        raise OptionError("spec", f"vllm {ref.version}: DeepSeek-V4.1 drafts with DSpark, its own draft stages "
                          "(config/speculative.py rejects mtp for it); use --spec dspark")  # fmt: skip
    attention = next(k.attention for k in model.used_kinds() if isinstance(k.attention, Compressed))
    assert isinstance(attention, Compressed)
    mxfp8 = cc == 10
    notes = []
    if deployment.mtp:
        notes.append(f"vllm: DSpark's {model.mtp_layers} draft stages each keep a window like the target's layers, in "
                     "the same groups; num_speculative_tokens 5 (its default, dspark_block_size) assumed: up to 6 the "
                     "compressor rings keep 8 rows (max(8, pow2(n + 2))); the n slots a step looks ahead are not "
                     "counted per request")  # fmt: skip
    backend, packed = ("FlashInfer (SM120)", "fp8_ds_mla") if cc == 12 else ("FlashMLA", "fp8_ds_mla")
    if cc == 10 and version >= (0, 31):
        heads, groups, tp = attention.heads, attention.o_groups, deployment.tp
        if groups is None:
            raise OptionError("kv_dtype", f"vllm {ref.version}: on compute capability 10.x the default backend (mega "
                              "attention, NVFP4 compressed entries) depends on o_groups, which the model file does not "
                              "give; add o_groups to its attention")  # fmt: skip
        local_heads, local_groups = heads // tp, groups // tp
        if (
            not heads % tp
            and not groups % tp
            and local_groups
            and not local_heads % 8
            and local_heads // local_groups == 8
        ):
            backend, packed = "FlashMLA mega attention", "nvfp4_ds_mla"
            notes.append(f"vllm: mega attention, the SM100 default at tp {tp} (8 heads per wo_a group), assumed built "
                         "into the wheel (is_flashmla_mega_attn_supported)")  # fmt: skip
        else:
            notes.append(
                f"vllm: FlashMLA, not mega attention, at tp {tp} ({local_heads} heads in {local_groups} groups)"
            )
    requested = (deployment.kv_dtype or "auto").lower()
    if requested in ("auto", "fp8") or (version < (0, 31) and requested.startswith("fp8")):
        dtype = packed
    elif requested in ("fp8_ds_mla", "nvfp4_ds_mla"):
        dtype = requested
    else:
        raise OptionError("kv_dtype", f"vllm {ref.version}: DeepSeek-V4.1's packed layouts take auto, fp8, fp8_ds_mla "
                          f"or nvfp4_ds_mla ({backend}), not {requested}")  # fmt: skip
    if dtype == "nvfp4_ds_mla" and not (mxfp8 and version >= (0, 31)):
        raise OptionError("kv_dtype", f"vllm {ref.version}: nvfp4_ds_mla needs the V4.1 records FlashMLA decodes only "
                          "on compute capability 10.x (0.31 and later)")  # fmt: skip
    window_record = 528 if mxfp8 else 584
    compressed = 288 if dtype == "nvfp4_ds_mla" else window_record
    index_name = (deployment.indexer_dtype or "fp8").lower()
    index_row = {"fp8": 132, "auto": 132, "mxfp4": 68}.get(index_name)
    if index_row is None:
        raise OptionError("indexer_dtype", f"vllm: DeepSeek-V4.1's indexer keys are fp8 (132 B) or mxfp4 (68 B), not "
                          f"{deployment.indexer_dtype}")  # fmt: skip
    block = 64 if cc == 9 else 128
    if deployment.block_size not in (None, block):
        raise OptionError("block_size", f"vllm: DeepSeek-V4.1's {backend} and indexer kernels take blocks of {block} "
                          f"on compute capability {cc}.x; drop block_size")  # fmt: skip
    if deployment.pp > 1:
        raise OptionError("pp", "vllm: pipeline stages inside DeepSeek-V4.1's kv-sharing groups are not supported "
                          "(attention.py: 'PP splits inside a v4.1 kv-sharing group are not supported')")  # fmt: skip
    stride = window_record * compressed // gcd(window_record, compressed) if mxfp8 and version >= (0, 33) else 0
    return V41Layout(backend=backend, dtype=dtype, window_record=window_record, compressed_record=compressed,
                     align=512 if mxfp8 else 576, index_row=index_row, block=block, stride=stride, notes=tuple(notes))  # fmt: skip


def _rules_v41(model: ModelSpec, deployment: Deployment) -> Rules:
    """DeepSeek-V4.1 in vLLM 0.30-0.33: every layer a window cache of 32-token blocks; kv sources a compressed cache
    of block_size-token pages and indexer keys; sources of ratio 2 a compressor ring of 8 fp32 rows per request."""
    layout = v41_layout(model, deployment)
    records = {528: "512 fp8 (rope too) + 16 ue8m0 scales = 528 B", 584: "448 fp8 nope + 64 bf16 rope + 8 B scales = 584 B",
               288: "256 B e2m1 + 32 e4m3 scales (NVFP4) = 288 B"}  # fmt: skip
    notes = (f"vllm DeepSeek-V4.1: {layout.backend}, {layout.dtype}", *layout.notes)
    return Rules(
        runtime=deployment.runtime, kv=parse_dtype("fp8"), v=parse_dtype("fp8"), head_split="divides",
        kv_label=f"{layout.dtype} (V4.1: {layout.window_record} B window / {layout.compressed_record} B compressed)",
        supports_dcp=False, notes=notes, block=layout.block,
        compressed=CompressedRules(
            record=layout.window_record, record_formula=records[layout.window_record],
            compressed_record=layout.compressed_record, compressed_formula=records[layout.compressed_record],
            indexer=layout.index_row, indexer_formula=f"indexer key {layout.index_row} B", rings=True, ring_rows=8,
            window_block=32, page_tokens=layout.block, page_align=layout.align, indexer_align=layout.align,
            ratios=(1, 2),
        ),
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
        if requested == "auto" and deployment.runtime.numbers[:2] == (0, 29):
            # _resolve_dsv4_kv_cache_dtype asserts an fp8 dtype on FlashMLA; 0.30 resolves auto to fp8
            raise OptionError(
                "kv_dtype",
                "vllm 0.29 stops on --kv-cache-dtype auto for DeepSeek-V4 (FlashMLA "
                "asserts fp8); give --kv-dtype fp8, or a runtime of 0.30 or later",
            )
        if requested == "auto":
            notes.append("vllm: --kv-cache-dtype auto is the fp8 layout for DeepSeek-V4 (FlashMLA, PR 45091)")
        record, label, align = 584, "fp8_ds_mla", 576
        record_formula = "448 fp8 nope + 64 bf16 rope + 8 B UE8M0 scales = 584 B"
    elif requested in ("bf16", "bfloat16"):
        if deployment.runtime.numbers >= (0, 29):
            notes.append("vllm: a bf16 DeepSeek-V4 cache needs --attention-backend FLASHINFER_MLA_SPARSE_DSV4 (SM10x); "
                         "FlashMLA, the default, keeps fp8 only")  # fmt: skip
        record, label, align = 1024, "bf16", 0
        record_formula = f"head_dim {attention.head_dim} x bf16 = 1,024 B"
    elif requested == "nvfp4_ds_mla":
        # upstream vLLM packs NVFP4 only for DeepSeek-V4.1's compressed caches: 256 B of e2m1 + 32 e4m3 scales (one
        # per 16) = 288 B, and raises for V4's records (vllm 0.33 models/deepseek_v41/attention.py:523-532); the
        # 360-384 B V4 NVFP4 layouts are forks and open pull requests (flashinfer#3937, sglang#38646)
        raise OptionError(
            "kv_dtype",
            "vllm: nvfp4_ds_mla is DeepSeek-V4.1's compressed-cache layout (288 B); "
            "vLLM keeps DeepSeek-V4's records as fp8_ds_mla (584 B); give fp8 or bf16",
        )
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
            # DeepseekV4IndexerCache's MLAAttentionSpec: alignment=576 if fp8_ds_mla else 512 (0.33
            # models/deepseek_v4/attention.py:922-923; the same from 0.20): 64 x 132 = 8,448 -> 8,640 B pages
            indexer_align=align or 512,
        ),
    )  # fmt: skip


PROFILE = Profile(
    name="vllm", default_version="0.33", low=(0, 11), high=(0, 33), described="0.11 to 0.33 (v1 engine)",
    rules=rules, order=1,
    sources=("vllm/v1/kv_cache_interface.py", "vllm/v1/core/kv_cache_utils.py",
             "vllm/v1/attention/backends/mla/flashmla_sparse.py", "vllm/model_executor/models/config.py"),
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# DeepSeek-V4's KV planning in vLLM 0.20-0.33. Page sizes: vllm/models/deepseek_v4/{attention,compressor}.py and
# v1/attention/backends/mla/sparse_swa.py; groups: v1/core/kv_cache_utils.py (0.33: kv_cache_planning.py)
# _get_packed_kv_cache_groups and _approximate_gcd; per-request pages: SlidingWindowSpec /
# FullAttentionSpec max_memory_usage_bytes. What changed by version (each checked by running vLLM's own planning
# code from the wheel on the V4 specs):
#   0.20-0.23  _get_kv_cache_config_deepseek_v4: bytes per block = layer tuples x the distinct full pages
#   0.24-0.26  packed planner, window/state pages padded up to a full page; bytes per block = sum over page sizes
#              of page x most slots
#   0.27-0.28  packed planner without padding; bytes per block = the widest group's pages
#   0.29-0.33  generic packed groups; "needed" = bytes per block x pages; the check keeps one null block back
#   "needed" before 0.29 is layer tuples x distinct full pages x pages; concurrency before 0.27 divides by
#   cdiv(sum of pages x group bytes, the full group's bytes), from 0.27 by the sum of pages; windows and states
#   hold max_num_batched_tokens before 0.26, max_in_flight_tokens (2 x at pp 1, async scheduling) from 0.26.
# Reproduces vllm-project/vllm#44376 (0.22) and recipes#762 / vllm#51454 (0.25, TP8: 20.43x); docs/capacity.md.


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


@record
class V4Planned:
    """vLLM's page planning for DeepSeek-V4: bytes per block and the pages a request needs, by version."""

    bytes_per_block: int
    request_pages: int  # sum over groups of the pages a request needs ("needed", 0.27+ concurrency)
    old_request_blocks: int  # cdiv(sum of pages x group bytes, the full group's bytes): concurrency 0.20.1-0.26
    needed_per_page: int  # "needed" = needed_per_page x request_pages
    null_block: bool  # 0.29+: the memory check and the estimate keep one block back
    block: int = 256  # cache_config.block_size (tokens of a full page)


@record
class _V4Spec:
    """One of vLLM's V4 KV-cache specs: full (MLA pages), window (SlidingWindowMLASpec: window and V4's compressor
    state) or ring (V4.1's CircularBufferSpec: one page per request)."""

    full: bool  # MLAAttentionSpec (block-size pages)
    block: int
    page: int
    window: int  # tokens a window-type spec keeps (0 for full and ring)
    ring: bool = False  # CircularBufferSpec (V4.1's compressor state)
    stride: int = 0  # block_stride_alignment (V4.1's window caches on SM100: lcm of its two records)


def _v4_specs(
    model: ModelSpec, deployment: Deployment, content: int, align: int, index_row: int
) -> list[_V4Spec] | None:
    """Every layer's KV cache specs in registration order, or None for a layout vLLM's V4 code does not build."""
    block = deployment.block_size or 256
    specs: list[_V4Spec] = []
    for kind in (model.kind_of(i) for i in range(model.layers)):
        attention = kind.attention if isinstance(kind.attention, Compressed) else None
        ratio = max(1, kind.compress_ratio)
        window = kind.window or 128
        if ratio not in (1, 4, 128):
            return None
        if ratio == 4:  # the indexer's keys (fp8: 128 + one fp32 scale) and its compressor state
            head = kind.indexer.head_dim if kind.indexer is not None else 128
            specs += [_V4Spec(True, block, _round_up(block // 4 * index_row, align), 0),
                      _V4Spec(False, 4, _round_up(4 * 2 * 2 * head * 4, align), 8)]  # fmt: skip
        specs.append(_V4Spec(False, 64, _round_up(64 * content, align), window))  # the window (every layer)
        if ratio > 1:  # compressed entries and the compressor state (fp32; overlapping halves at ratio 4)
            head_dim = attention.head_dim if attention is not None else 512
            overlap, state_block = (2, 4) if ratio == 4 else (1, 8)
            specs += [_V4Spec(True, block, _round_up(block // ratio * content, align), 0),
                      _V4Spec(False, state_block, _round_up(state_block * 2 * overlap * head_dim * 4, align),
                              overlap * ratio)]  # fmt: skip
    if deployment.mtp:  # an MTP layer is compress ratio 1: one more window
        window = model.kind_of(0).window or 128
        specs += [_V4Spec(False, 64, _round_up(64 * content, align), window)] * model.mtp_layers
    return specs


def _v4_groups(specs: list[_V4Spec]) -> tuple[list[list[_V4Spec]], int]:
    """_get_packed_kv_cache_groups: buckets of one spec type, block and window; balanced buckets split into groups
    of `repeats` layers per page size; state buckets (rings, and windows when nothing repeats) split to the states
    the widest group's block holds (0.30+; never the case for V4, whose buckets repeat and have no rings). Returns
    the groups and `repeats` (the layer tuples)."""
    buckets: dict[tuple[bool, bool, int, int], list[_V4Spec]] = {}
    for spec in specs:
        buckets.setdefault((spec.full, spec.ring, spec.block, spec.window), []).append(spec)
    info = []
    for bucket in buckets.values():
        by_page: dict[int, list[_V4Spec]] = {}
        for spec in bucket:
            by_page.setdefault(spec.page, []).append(spec)
        counts = [len(v) for v in by_page.values()]
        info.append((bucket, by_page, len(set(counts)) == 1, max(counts)))
    least = max([m for _, pages, balanced, m in info if balanced and len(pages) > 1], default=0)
    repeats = _approximate_gcd([m for _, _, balanced, m in info if balanced], least) if least else 0

    def split(balanced: bool, most: int) -> int:
        return -(-most // repeats) if balanced and repeats else 1

    def is_state(bucket: list[_V4Spec]) -> bool:
        return bucket[0].ring or (not repeats and not bucket[0].full)

    anchor = max(
        sum(-(-len(names) // (len(bucket) if is_state(bucket) else split(balanced, most))) * page
            for page, names in by_page.items())
        for bucket, by_page, balanced, most in info
    )  # fmt: skip
    groups: list[list[_V4Spec]] = []
    for bucket, by_page, balanced, most in info:
        n = split(balanced, most)
        if is_state(bucket):
            n = max(n, -(-len(bucket) // max(anchor // bucket[0].page, 1)))
        rows = list(zip(*by_page.values(), strict=False))
        groups += [bucket] if n == 1 else [[s for row in rows[i::n] for s in row] for i in range(n)]
    return groups, repeats or max(m for *_, m in info)


def deepseek_v4_plan(model: ModelSpec, deployment: Deployment, context: int) -> V4Planned | None:
    """vLLM's V4 block planning (0.20-0.33) for one request of `context` tokens; None where it is not modelled
    (bf16 before 0.29, bf16 indexer keys, pipeline parallelism, a layout other than DeepSeek-V4's)."""
    if has_kind(model, lambda k: isinstance(k.attention, Compressed) and k.compress_ratio in (1, 2)):
        return deepseek_v41_plan(model, deployment, context)  # DeepSeek-V4.1
    version = deployment.runtime.numbers
    dtype = (deployment.kv_dtype or "auto").lower()
    if not (0, 20) <= version or deployment.pp > 1:
        return None
    attention = next((k.attention for k in model.used_kinds() if isinstance(k.attention, Compressed)), None)
    if attention is None or (attention.head_dim, attention.qk_rope_head_dim) != (512, 64):
        return None  # the 584 B record is 448 fp8 nope + 64 bf16 rope + 8 B of scales
    if dtype in ("auto", "fp8", "fp8_e4m3", "fp8_ds_mla"):
        content, align = 584, 576  # fp8_ds_mla rows; pages padded to a multiple of 576 B
    elif dtype in ("bf16", "bfloat16") and version >= (0, 29):
        content, align = 2 * attention.head_dim, 512  # FlashInfer sparse MLA (SM10x), pages padded to 512 B
    else:
        return None
    index_row = {"fp8": 132, "fp8_e4m3": 132, "mxfp4": 68}.get((deployment.indexer_dtype or "fp8").lower())
    if index_row is None:
        return None
    specs = _v4_specs(model, deployment, content, align, index_row)
    if specs is None:
        return None
    return _planned(specs, deployment, context, deployment.block_size or 256)


def _planned(specs: list[_V4Spec], deployment: Deployment, context: int, block: int) -> V4Planned:
    """Groups, bytes per block (rounded up to the lcm of the block-stride alignments, 0.31+) and the pages one
    request of `context` tokens needs in each group."""
    version = deployment.runtime.numbers
    groups, tuples = _v4_groups(specs)
    full_pages = sorted({s.page for s in specs if s.full})
    pad = version < (0, 27)  # window and state pages padded up to the next full page (0.20-0.26)

    def page_of(spec: _V4Spec) -> int:
        if spec.full or not pad:
            return spec.page
        return min((p for p in full_pages if p >= spec.page), default=spec.page)

    tokens = deployment.max_batched_tokens or VLLM_MAX_BATCHED_TOKENS
    in_flight = tokens * (2 if version >= (0, 26) else 1)  # max_in_flight_tokens from 0.26 (async, pp 1)

    def pages(spec: _V4Spec) -> int:
        if spec.full:
            return -(-context // spec.block)
        if spec.ring:
            return 1  # CircularBufferSpec: one block per request for its lifetime
        return -(-min(spec.window - 1 + in_flight, context) // spec.block) + 1

    per_group = [max(pages(s) for s in group) for group in groups]
    group_bytes = [sum(page_of(s) for s in group) for group in groups]
    tuple_bytes = tuples * sum(full_pages)
    if version < (0, 24):
        bytes_per_block = tuple_bytes
    elif version < (0, 27):
        slots: dict[int, int] = {}
        for group in groups:
            for page in {page_of(s) for s in group}:
                slots[page] = max(slots.get(page, 0), sum(1 for s in group if page_of(s) == page))
        bytes_per_block = sum(page * count for page, count in slots.items())
    else:
        bytes_per_block = max(group_bytes)
    strides = {s.stride for s in specs if s.stride}
    if strides:  # _pool_bytes_per_block (0.33 kv_cache_planning.py:574-605): up to the lcm of the strides
        grain = 1
        for stride in strides:
            grain = grain * stride // gcd(grain, stride)
        bytes_per_block = -(-bytes_per_block // grain) * grain
    full_bytes = next(b for b, g in zip(group_bytes, groups, strict=True) if g[0].full)
    old = -(-sum(p * b for p, b in zip(per_group, group_bytes, strict=True)) // full_bytes)
    return V4Planned(
        bytes_per_block=bytes_per_block, request_pages=sum(per_group), old_request_blocks=old,
        needed_per_page=bytes_per_block if version >= (0, 29) else tuple_bytes, null_block=version >= (0, 29),
        block=block,
    )  # fmt: skip


def _v41_specs(model: ModelSpec, deployment: Deployment, layout: V41Layout) -> list[_V4Spec]:
    """Every layer's specs in vLLM 0.30-0.33's registration order (models/deepseek_v41/attention.py): the attention
    layer's compressed cache (kv sources only; MLAAttentionSpec of block_size tokens, tokens_per_state = ratio), the
    indexer's key cache (kv sources that index, :446-455, 1274-1310), the window cache (SlidingWindowMLASpec, 32-token
    blocks, :562-580) and the compressor's ring (sources of ratio > 1, compressor.py:206-240, 305-313)."""
    block, align = layout.block, layout.align
    window_page = _round_up(32 * layout.window_record, align)
    specs: list[_V4Spec] = []
    for kind in (model.kind_of(i) for i in range(model.layers)):
        ratio = kind.compress_ratio
        if ratio:
            specs.append(_V4Spec(True, block, _round_up(block // ratio * layout.compressed_record, align), 0))
            if kind.indexer is not None:
                specs.append(_V4Spec(True, block, _round_up(block // ratio * layout.index_row, align), 0))
        specs.append(_V4Spec(False, 32, window_page, kind.window or 128, stride=layout.stride))
        if ratio > 1:
            specs.append(_V4Spec(False, 8, 8 * 2 * 512 * 4, 0, ring=True))
    if deployment.mtp:  # DSpark: each draft stage a layer of compress ratio 0, its window only (attention.py:320-344)
        window = model.mtp_layer_kind.window if model.mtp_layer_kind else None
        specs += [_V4Spec(False, 32, window_page, window or 128, stride=layout.stride)] * model.mtp_layers
    return specs


def deepseek_v41_plan(model: ModelSpec, deployment: Deployment, context: int) -> V4Planned:
    """vLLM 0.30-0.33's block planning for DeepSeek-V4.1 (the generic packed groups, checked against vLLM 0.33's own
    planner run on these specs: tests/test_v4.py)."""
    layout = v41_layout(model, deployment)
    return _planned(_v41_specs(model, deployment, layout), deployment, context, layout.block)
