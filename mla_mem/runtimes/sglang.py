"""SGLang 0.5.x. Sources: python/sglang/srt/mem_cache/memory_pool.py (MHATokenToKVPool, MLATokenToKVPool,
NSATokenToKVPool: fp8 sparse MLA rows are the 656 B packed layout, indexer keys 128 fp8 + fp32 scale in 64-token
pages), python/sglang/srt/model_executor/model_runner.py (page sizes, Mamba pools with fp32 recurrent state)."""

from __future__ import annotations

from ..options import Deployment, OptionError
from ..spec import Compressed, ModelSpec
from ..units import parse_dtype
from . import Profile
from .rules import (
    CompressedRules,
    Rules,
    StateRule,
    WindowRule,
    compute_major,
    has_kind,
    has_sparse_mla,
    model_dtype,
    state_dtype,
)


def _dsa_default(deployment: Deployment, notes: list[str]) -> str:
    """--kv-cache-dtype auto for DeepSeek DSA models: fp8_e4m3 on compute capability 10 and above, bf16 below
    (0.5.5-0.5.19 server_args `_set_default_nsa_kv_cache_dtype`; 0.5.20+ arg_groups/overrides.py
    `_dsa_kv_cache_dtype_default`, except models with learnable sinks); 0.5.3-0.5.4 forced fp8 on 10+."""
    major = deployment.sm_major
    if major is None:
        notes.append(
            "sglang: kv cache dtype auto is bf16 for DSA models below compute capability 10 and fp8_e4m3 from 10 "
            "(Blackwell); no GPU given, bf16 assumed (--compute-capability or --kv-dtype says it)"
        )
        return "bf16"
    choice = "fp8" if major >= 10 else "bf16"
    notes.append(f"sglang: kv cache dtype auto is {'fp8_e4m3' if major >= 10 else 'bf16'} for DSA models on SM{major}")
    return choice


def rules(model: ModelSpec, deployment: Deployment) -> Rules:
    if has_kind(model, lambda k: isinstance(k.attention, Compressed) and k.compress_ratio in (1, 2)):
        return _rules_v41(model, deployment)
    if has_kind(model, lambda k: isinstance(k.attention, Compressed)):
        return _rules_v4(model, deployment)
    requested = (deployment.kv_dtype or "auto").lower()
    sparse = has_sparse_mla(model)
    mla_record = None
    label = None
    notes: list[str] = []
    version = deployment.runtime.numbers
    forced = sparse and (0, 5, 3) <= version < (0, 5, 5) and (deployment.sm_major or 0) >= 10
    if sparse and (requested == "auto" or forced):
        if forced and requested != "auto":
            notes.append("sglang 0.5.3-0.5.4 force fp8_e4m3 for DSA models on compute capability 10+")
        requested = _dsa_default(deployment, notes)
    if sparse and requested.startswith("fp8"):
        mla_record, kv, label = 656, parse_dtype("fp8"), "fp8_e4m3 (656 B sparse layout)"
    else:
        kv = model_dtype(requested, model)
        if kv.is_block_quantized or kv.bits not in (8, 16, 32):
            raise OptionError(
                "kv_dtype",
                f"sglang: unsupported cache dtype {kv.name}; expected auto, bf16, fp16, fp8_e4m3, fp8_e5m2",
            )
    indexed = has_kind(model, lambda k: k.indexer is not None)
    block = deployment.block_size or (64 if indexed else 1)  # page size 1 by default, 64 for DSA
    # MambaPool (mem_cache/memory_pool.py, configs/mamba_utils.py): conv state bf16 (SGLANG_MAMBA_CONV_DTYPE), the
    # recurrent/SSM state fp32 unless the model's config names a dtype (mamba_ssm_dtype); Mamba-2 groups padded
    # to a multiple of the attention tp
    conv = state_dtype(deployment, "bf16")
    recurrent = state_dtype(deployment, "fp32")
    windowed = has_kind(model, lambda k: k.window is not None)
    if windowed:
        notes.append("sglang: sliding layers counted as window W rounded to pages (SWA pool)")
    chunk_rule: WindowRule | None = None
    if has_kind(model, lambda k: k.chunk is not None):
        # Llama 4 (Llama4ForConditionalGeneration): from 0.5.8 the chunked layers live in the SWA pool with
        # window = attention_chunk_size (model_runner.py); before, one full pool unless --hybrid-kvcache-ratio
        chunk_rule = "window" if version >= (0, 5, 8) else "full"
        notes.append(
            "sglang: chunked layers in the sliding-window pool (window = chunk), as for Llama4ForConditionalGeneration"
            if version >= (0, 5, 8)
            else "sglang < 0.5.8: chunked layers get full-length KV (one pool)"
        )
    states = {
        "gated_deltanet": StateRule("k-1", conv, recurrent, declared_dtype=True),
        "kda": StateRule("k-1", conv, recurrent),
        "mamba2": StateRule("k-1", conv, recurrent, declared_dtype=True, groups="ceil"),
    }
    if version >= (0, 5, 9):  # LFM2 (models/lfm2.py): conv (hidden / tp, L_cache - 1) in bf16, no SSM state
        states["short_conv"] = StateRule("k-1", conv, recurrent)
    pure_mamba1 = all(k.attention is None for k in model.used_kinds())
    if version >= (0, 5, 20) and pure_mamba1:  # Mamba-1 models (not Jamba: PR 20141 was closed unmerged)
        states["mamba1"] = StateRule("k-1", conv, recurrent)
    return Rules(
        runtime=deployment.runtime, kv=kv, v=kv, kv_label=label or kv.name, mla_record=mla_record,
        indexer_bytes=132 if indexed else None,
        indexer_formula="index_head_dim 128 fp8 + one fp32 scale (SGLang index_k_with_scale)",
        head_split="divides", block=block, indexer_block=64 if indexed else block, window_rule="window",
        chunk_rule=chunk_rule, states=states,
        mtp_note="sglang: MTP layers get a separate draft pool of the same token count",
        notes=tuple(notes),
    )  # fmt: skip


# DeepSeek-V4 in SGLang 0.5.23 (srt/mem_cache/deepseek_v4_memory_pool.py, kernels/ops/attention/dsv4/kv_layout.py,
# srt/model_executor/pool_configurator.py DSV4PoolConfigurator; model overrides in
# srt/arg_groups/model_overrides/deepseek_v4.py): page_size 256, the FlashMLA "V4" layout of 448 fp8 nope + 64 bf16
# rope + 8 B of scales = 584 B per entry, a page stored as data rows then scale rows and padded to 576 B multiples.
SGLANG_V4_FIRST = (0, 5, 12)  # the first wheel with srt/models/deepseek_v4.py
SGLANG_V4_RULES = (0, 5, 23)  # the pools as read; earlier wheels sized them otherwise (unpadded records, c4 state)
SGLANG_V4_PAGE = 256
SGLANG_V4_RECORD = 584
# compute_swa_request_cap (pool_configurator.py:924-968): the window, the eviction interval (128), a page that keeps
# the eviction point page-aligned, and the next decode page: 128 + 128 + 256 + 256 = 768 tokens of window pages
SGLANG_V4_SWA_EXTRA = 128 + 256 + 256
SGLANG_EVICTION_INTERVAL = 128  # SGLANG_SWA_EVICTION_INTERVAL (srt/environ.py:730)
SGLANG_DSPARK_DRAFT_TOKENS = 6  # V4.1's dspark_block_size (5, its config) + 1: speculative_num_draft_tokens


def _rules_v4(model: ModelSpec, deployment: Deployment) -> Rules:
    """Per request: window pages of every layer (at most SGLang's own request cap, 3 pages of 256 tokens), the
    compressed pages of ratio-4 and ratio-128 layers and the ratio-4 indexer keys, one page per 256 tokens of the
    sequence (slot = token // ratio, 64 and 2 entries a page), the ratio-4 compressor rows beside each window page and
    the ratio-128 ring per request slot. Every tp rank holds all of it (one shared key-value head)."""
    version = deployment.runtime.numbers
    if version < SGLANG_V4_FIRST:
        raise OptionError("runtime", f"sglang {deployment.runtime.version} does not serve DeepSeek-V4; 0.5.12 and "
                                     "later do (rules read from 0.5.23: use runtime sglang@0.5.23)")  # fmt: skip
    if version < SGLANG_V4_RULES:
        raise OptionError("runtime", f"sglang {deployment.runtime.version}: DeepSeek-V4's pools were sized otherwise "
                                     "before 0.5.23 (records without page padding, another compressor-state rule); "
                                     "mla-mem has the 0.5.23 rules: use runtime sglang@0.5.23")  # fmt: skip
    requested = (deployment.kv_dtype or "auto").lower()
    if requested not in ("auto", "fp8", "fp8_e4m3", "fp8_ds_mla"):
        raise OptionError("kv_dtype", f"sglang: DeepSeek-V4 on CUDA is stored in the FlashMLA fp8 layout "
                                      f"(overrides.py resolves auto to fp8_e4m3), not {requested}; use auto or fp8")  # fmt: skip
    if deployment.block_size not in (None, SGLANG_V4_PAGE):
        raise OptionError("block_size", f"sglang: DeepSeek-V4 forces page_size {SGLANG_V4_PAGE} (model_overrides/"
                                        "deepseek_v4.py); drop block_size")  # fmt: skip
    speculative = deployment.mtp or deployment.spec is not None
    notes = [
        "sglang DeepSeek-V4: kv cache dtype auto is fp8_e4m3 (584 B FlashMLA entries); page_size 256",
        "sglang DeepSeek-V4: window pages per request at SGLang's own worst case (window 128 + eviction interval "
        "128 + 2 pages = 768 tokens); after prefill a request keeps 1 to 4 of them",
    ]
    fp8 = parse_dtype("fp8")
    return Rules(
        runtime=deployment.runtime, kv=fp8, v=fp8, kv_label="fp8_e4m3 (584 B V4 layout)", head_split="divides",
        block=SGLANG_V4_PAGE, notes=tuple(notes),
        mtp_note="sglang: the MTP draft keeps one window layer of its own",
        compressed=CompressedRules(
            record=SGLANG_V4_RECORD, record_formula="448 fp8 nope + 64 x 2 B rope + 8 B scales = 584 B",
            indexer=132, indexer_formula="indexer key 128 fp8 + fp32 scale = 132 B", rings=True,
            window_block=SGLANG_V4_PAGE, page_tokens=SGLANG_V4_PAGE, page_align=576,
            window_extra=SGLANG_V4_SWA_EXTRA, window_extra_text="eviction interval 128 + 2 pages (request cap)",
            ceil_entries=True, ring_per_window_page=True, ring_scale=2 if speculative else 1,
        ),
    )  # fmt: skip


def _rules_v41(model: ModelSpec, deployment: Deployment) -> Rules:
    """DeepSeek-V4.1 in SGLang 0.5.23 (configs/deepseek_v41.py renames it DeepseekV4ForCausalLM, so the V4 pools and
    overrides apply): every trunk layer a window pool page (256 tokens, up to the request cap), the kv sources a
    compressed page per 256 tokens (128 ratio-2 / 256 ratio-1 entries) and their index keys (always fp4: 64 + 4 scale
    bytes = 68 B), the ratio-2 sources a 2-row fp32 ring per request slot (mem_cache/deepseek_v4_memory_pool.py:53-69,
    94-115, 174-234, 1591-1645, 1769-1804). The layout follows the attention backend SGLang picks (arg_groups/
    deepseek_v4_hook.py:45-60): flashmla_mega on compute capability 10.x at attention tp 1 with an fp8 cache stores
    V41 windows (512 fp8 + 16 ue8m0 scales = 528 B) and V41_FP4 compressed entries (256 B e2m1 + 32 e4m3 scales =
    288 B); otherwise the V4 layout (584 B, pages padded to 576 B multiples), SGLANG_DSV4_KV_LAYOUT's default."""
    ref = deployment.runtime
    if ref.numbers < SGLANG_V4_RULES:
        raise OptionError("runtime", f"sglang {ref.version}: DeepSeek-V4.1's pools were read from 0.5.23; use runtime "
                                     "sglang@0.5.23")  # fmt: skip
    cc = compute_major(deployment, "DeepSeek-V4.1's layout depends on the GPU (V41 528 B / V41_FP4 288 B records on "
                       "compute capability 10.x at attention tp 1, the V4 layout's 584 B otherwise)", (9, 10),
                       "DeepSeek-V4.1's layouts were read for compute capability 9.x and 10.x")  # fmt: skip
    if (deployment.kv_dtype or "auto").lower() not in ("auto", "fp8", "fp8_e4m3"):
        raise OptionError("kv_dtype", "sglang: DeepSeek-V4.1's pools store uint8 fp8 layouts (auto is fp8_e4m3); use "
                                      "auto or fp8")  # fmt: skip
    if (deployment.indexer_dtype or "mxfp4").lower() not in ("mxfp4", "fp4"):
        raise OptionError("indexer_dtype", "sglang: DeepSeek-V4.1's index keys are always fp4 (68 B; "
                                           "deepseek_v4_memory_pool.py force_fp4); drop indexer_dtype")  # fmt: skip
    if deployment.block_size not in (None, SGLANG_V4_PAGE):
        raise OptionError("block_size", f"sglang: DeepSeek-V4.1 forces page_size {SGLANG_V4_PAGE}; drop block_size")
    if deployment.spec not in (None, "dspark") or (deployment.mtp and deployment.spec is None):
        raise OptionError("spec", "sglang: DeepSeek-V4.1 drafts only with DSpark, its own draft stages "
                                  "(deepseek_v4_hook.py:333-353); use --spec dspark")  # fmt: skip
    drafts = SGLANG_DSPARK_DRAFT_TOKENS if deployment.mtp else 0
    if deployment.pp > 1:
        raise OptionError("pp", "sglang: DeepSeek-V4.1 rejects pipeline parallelism (deepseek_v4_hook.py)")
    # compute_swa_request_cap (pool_configurator.py:924-968): eviction interval x draft tokens + a page, then the
    # next decode's pages (a page) or, drafting with the overlap scheduler, 2 x the draft tokens
    extra = SGLANG_EVICTION_INTERVAL * max(1, drafts) + SGLANG_V4_PAGE + (2 * drafts if drafts else SGLANG_V4_PAGE)
    extra_text = (f"eviction interval 128 x {drafts} draft tokens + a page + 2 x {drafts}" if drafts
                  else "eviction interval 128 + 2 pages")  # fmt: skip
    ring = 1 << (drafts + 1).bit_length() if drafts else 2  # get_compress_state_ring_size (memory_pool.py:60-79)
    mega = cc == 10 and deployment.attention_tp == 1
    window, compressed, align = (528, 288, 512) if mega else (SGLANG_V4_RECORD, SGLANG_V4_RECORD, 576)
    layout = "V41 / V41_FP4 (flashmla_mega)" if mega else "V4 (flashmla)"
    notes = [f"sglang DeepSeek-V4.1: {layout} layout on compute capability {cc}.x at attention tp "
             f"{deployment.attention_tp}; SGLANG_DSV4_KV_LAYOUT and SGLANG_DSV4_COMPRESSED_KV_LAYOUT unset",
             f"sglang DeepSeek-V4.1: window pages per request at SGLang's own worst case (window 128 + {extra_text} "
             f"= {128 + extra} tokens)"]  # fmt: skip
    if drafts:
        notes.append(f"sglang DeepSeek-V4.1: DSpark with {drafts} draft tokens (dspark_block_size 5 + 1, "
                     "speculative_hook.py:806-839): its 3 draft stages keep windows in a pool as large as the target's, "
                     f"rings of {ring} rows")  # fmt: skip
    formulas = {528: "512 fp8 + 16 ue8m0 scales = 528 B", 288: "256 B e2m1 + 32 e4m3 scales = 288 B",
                584: "448 fp8 nope + 64 x 2 B rope + 8 B scales = 584 B"}  # fmt: skip
    fp8 = parse_dtype("fp8")
    return Rules(
        runtime=ref, kv=fp8, v=fp8, kv_label=f"fp8_e4m3 ({layout}: {window} B window / {compressed} B compressed)",
        head_split="divides", block=SGLANG_V4_PAGE, notes=tuple(notes),
        compressed=CompressedRules(
            record=window, record_formula=formulas[window], compressed_record=compressed,
            compressed_formula=formulas[compressed], indexer=68, indexer_formula="index key 64 B fp4 + 4 B scales = 68 B",
            rings=True, ring_rows=ring, window_block=SGLANG_V4_PAGE, page_tokens=SGLANG_V4_PAGE, page_align=align,
            window_extra=extra, window_extra_text=f"{extra_text} (request cap)",
            ceil_entries=True, ratios=(1, 2),
        ),
    )  # fmt: skip


PROFILE = Profile(
    name="sglang", default_version="0.5.23", low=(0, 5), high=(0, 5, 99), described="0.5.x", rules=rules, order=2,
    sources=("python/sglang/srt/mem_cache/memory_pool.py", "python/sglang/srt/model_executor/model_runner.py"),
)  # fmt: skip
