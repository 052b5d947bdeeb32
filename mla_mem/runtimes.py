"""Lowering: ModelSpec + runtime + parallel layout -> the cache streams each GPU holds (cache.Plan).

One set of rules per runtime and version (`_rules_*`), all applied by one builder to the same spec. The rules and
their sources (runtime files, read at the versions named) are in docs/runtimes.md and
../shared/reference/RUNTIMES.md. In short, bytes per token per layer on one GPU:

  runtime         K/V layer                 MLA layer                         DSA indexer   linear state
  ideal           2 x ceil(Hkv/tp) x D x dt (R + r) x dt                      128 x dt      (k-1) cols, model dtype
  vllm            2 x max(1, Hkv//tp) x D   (R + r) x dt; fp8_ds_mla 656 B    132 B (fp8)   (k-1), GDN bf16 / KDA fp32
  sglang          2 x max(1, Hkv//tp) x D   (R + r) x dt; sparse fp8 656 B    132 B         (k-1), recurrent fp32
  transformers    2 x Hkv x D (no TP)       < 5.15: H x (nope + r + v) x dt   none / 128 x dt   k cols, recurrent fp32
                                            >= 5.15: (R + r) x dt
  llama.cpp       Hkv x (Dk x sz_k + Dv x sz_v)   2026: (R + r) x sz_k (K only)     128 x sz_k    fp32
                                            2025: K (R + r) + V R; 2024: expanded
  trtllm          2 x ceil(Hkv/tp) x D      (R + r) x dt; nvfp4 ceil/2 + ceil/16  132 B     (k-1), model dtype

The MLA latent and the indexer keys are one "head": every tensor-parallel rank holds all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .cache import CacheStream, Plan
from .errors import UsageError
from .spec import CompressedAttention, KVAttention, MLAttention, ModelSpec
from .units import DType, parse_dtype

# vLLM's default max_num_batched_tokens for `vllm serve` on a GPU with >= 70 GiB other than A100
# (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults: OPENAI_API_SERVER 8192; 2048 on smaller GPUs).
VLLM_MAX_BATCHED_TOKENS = 8192
# llama.cpp: n_ubatch default 512 (common/common.h), cells padded to 256 (src/llama-kv-cache.cpp).
LLAMA_CPP_UBATCH = 512
LLAMA_CPP_PAD = 256


@dataclass(frozen=True)
class Options:
    """How a model is served: runtime, cache dtype, parallel layout, MTP."""

    runtime: str = "ideal"
    kv_dtype: str | None = None
    tp: int = 1
    pp: int = 1
    dp: int = 1
    dcp: int = 1
    mtp: bool = False
    block_size: int | None = None
    state_dtype: str | None = None
    max_batched_tokens: int | None = None
    hybrid_allocator: bool = True
    v_dtype: str | None = None
    indexer_dtype: str | None = None


@dataclass(frozen=True)
class CompressedRules:
    """How a runtime stores DeepSeek-V4's caches compressed along the sequence."""

    record: int  # bytes of one window token or compressed entry
    record_formula: str
    indexer: int  # bytes of one indexer key
    indexer_formula: str
    rings: tuple[
        tuple[int, int], ...
    ] = ()  # (ratio, constant bytes per layer per sequence): compressor state
    window_block: int = 1  # tokens per window page
    page_tokens: int = 1  # tokens covered by one compressed page
    page_align: int = 0  # pages padded to a multiple of this many bytes (0: none)
    in_progress: bool = (
        False  # transformers: W - 1 windows, buffered tokens and overlap state (see _build_compressed)
    )

    def page(self, entries: int, entry_bytes: int) -> int:
        raw = entries * entry_bytes
        return -(-raw // self.page_align) * self.page_align if self.page_align else raw


@dataclass
class Rules:
    """What one runtime at one version stores for one model."""

    runtime: str
    version: str
    kv: DType
    v: DType
    kv_label: str
    mla_layout: str = "latent"  # latent | latent+v | expanded
    mla_record: int | None = None  # packed record bytes (vLLM fp8_ds_mla 656, nvfp4_ds_mla 352)
    indexer_bytes: int | None = None  # None: the runtime keeps no indexer cache
    indexer_formula: str = ""
    heads_per_rank: Callable[[int, int], int] = lambda heads, tp: -(-heads // tp)
    heads_rule: str = "ceil(kv_heads / tp)"
    block: int = 1
    indexer_block: int = 1
    sliding: str = "window"  # window | window-1 | vllm | llama.cpp | full
    conv_columns: str = "k-1"  # k-1 | k
    conv_dtype: DType | None = None
    recurrent_dtype: DType | None = None
    recurrent_dtype_kda: DType | None = None
    state_page_align: bool = False  # vLLM: attention page >= mamba page, mamba page padded
    cell_pad: int = 0  # llama.cpp: cells per sequence padded to this
    max_batched_tokens: int = VLLM_MAX_BATCHED_TOKENS
    supports_tp: bool = True
    supports_pp: bool = True
    supports_dcp: bool = False
    mtp_note: str = ""
    notes: list[str] = field(default_factory=list)
    compressed: CompressedRules | None = None


RUNTIMES = ("ideal", "vllm", "sglang", "transformers", "llama.cpp", "trtllm")
_RUNTIME_ALIASES = {
    "llamacpp": "llama.cpp",
    "llama-cpp": "llama.cpp",
    "tensorrt-llm": "trtllm",
    "tensorrt_llm": "trtllm",
    "trt-llm": "trtllm",
    "hf": "transformers",
}
# The versions each profile describes (RUNTIMES.md, "Versions these rules were read from").
DEFAULT_VERSIONS = {
    "ideal": "",
    "vllm": "0.33",
    "sglang": "0.5",
    "transformers": "5.24",
    "llama.cpp": "2026",
    "trtllm": "1.2",
}
VERSION_RANGES = {
    "vllm": ((0, 11), (0, 33), "0.11 to 0.33 (v1 engine)"),
    "sglang": ((0, 5), (0, 5, 99), "0.5.x"),
    "transformers": ((4, 40), (5, 99), "4.40 to 5.x"),
    "llama.cpp": ((2024,), (2026,), "2024 (GGUFs converted before April 2025), 2025, 2026"),
    "trtllm": ((1, 0), (1, 99), "1.x (PyTorch backend)"),
}


def _fmt(n: int) -> str:
    return f"{n:,}"


def parse_runtime(text: str) -> tuple[str, str, tuple[int, ...]]:
    """'vllm@0.11' -> ('vllm', '0.11', (0, 11)); the version defaults to the newest the profile describes."""
    raw = str(text).strip()
    name, _, version = raw.partition("@")
    key = name.strip().lower()
    key = _RUNTIME_ALIASES.get(key, key)
    if key not in RUNTIMES:
        import difflib

        close = difflib.get_close_matches(key, RUNTIMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"--runtime: unknown runtime {raw!r}{hint}; expected one of: {', '.join(RUNTIMES)}")
    if key == "ideal":
        if version:
            raise UsageError("--runtime: the ideal runtime has no versions")
        return key, "", ()
    version = version.strip().lstrip("v") or DEFAULT_VERSIONS[key]
    if not re.fullmatch(r"\d+(\.\d+){0,2}", version):
        raise UsageError(f"--runtime: {raw!r}: expected a version such as {key}@{DEFAULT_VERSIONS[key]}")
    numbers = tuple(int(part) for part in version.split("."))
    low, high, described = VERSION_RANGES[key]
    if not low <= numbers <= high + (999,):
        raise UsageError(f"--runtime: mla-mem describes {key} {described}; {version} is outside that range")
    return key, version, numbers


def _check_parallel(options: Options, model: ModelSpec) -> None:
    for name in ("tp", "pp", "dp", "dcp"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"--{name}: expected a positive integer, got {value!r}")
        if value > 4096:
            raise UsageError(f"--{name}: {value:,} is beyond any real deployment (at most 4,096)")
    if options.tp % options.dcp:
        raise UsageError(
            f"--dcp {options.dcp} must divide --tp {options.tp} (decode context parallel runs inside TP)"
        )
    total_layers = model.layers + (model.mtp_layers if options.mtp else 0)
    if options.pp > total_layers:
        raise UsageError(f"--pp {options.pp} is more than the model's {total_layers} layers")
    if options.block_size is not None and not 1 <= options.block_size <= 1 << 20:
        raise UsageError(f"--block-size: expected 1 to {1 << 20:,} tokens, got {options.block_size}")
    if options.max_batched_tokens is not None and not 1 <= options.max_batched_tokens <= 1 << 30:
        raise UsageError(
            f"--max-batched-tokens: expected a positive token count, got {options.max_batched_tokens}"
        )


def pipeline_stages(layers: int, pp: int) -> tuple[tuple[int, int], ...]:
    """Layer ranges per pipeline stage, as vLLM partitions them (vllm/distributed/utils.py get_pp_indices):
    L // pp layers each, the remainder given one each to the stages before the last, from the end."""
    sizes = [layers // pp] * pp
    for i in range(2, layers % pp + 2):
        sizes[-i] += 1
    stages = []
    start = 0
    for count in sizes:
        stages.append((start, start + count))
        start += count
    return tuple(stages)


def _dtype(text: str | None, model: ModelSpec) -> DType:
    if text is None or str(text).lower() == "auto":
        return parse_dtype(model.dtype)
    return parse_dtype(text)


def _is_sparse(model: ModelSpec) -> bool:
    return isinstance(model.attention, MLAttention) and model.indexer is not None


# ---------------------------------------------------------------------------------------------------------
# Per-runtime rules


def _rules_ideal(model: ModelSpec, options: Options, version: tuple[int, ...]) -> Rules:
    kv = _dtype(options.kv_dtype, model)
    if kv.name in ("fp8_ds_mla", "nvfp4_ds_mla"):
        raise UsageError(f"--kv-dtype {kv.name} is a vLLM/SGLang packed layout; use it with --runtime vllm")
    if options.block_size not in (None, 1):
        raise UsageError("--block-size: the ideal runtime does not page its cache (block 1)")
    state = parse_dtype(options.state_dtype or model.dtype)
    compressed = None
    if isinstance(model.attention, CompressedAttention):
        record = kv.row_bytes(model.attention.head_dim)
        indexer = kv.row_bytes(model.indexer.head_dim) if model.indexer else 0
        compressed = CompressedRules(
            record=record, record_formula=f"head_dim {model.attention.head_dim} x {kv.name} = {record} B",
            indexer=indexer, indexer_formula=f"index_head_dim x {kv.name} = {indexer} B",
        )  # fmt: skip
    return Rules(
        runtime="ideal", version="", kv=kv, v=kv, kv_label=kv.name, compressed=compressed,
        indexer_bytes=kv.row_bytes(model.indexer.head_dim) if model.indexer else None,
        indexer_formula=f"index_head_dim {model.indexer.head_dim} x {kv.name}" if model.indexer else "",
        conv_dtype=state, recurrent_dtype=state, supports_dcp=True,
        notes=["ideal: exactly the values the architecture needs, no paging, no runtime overhead"],
    )  # fmt: skip


def _vllm_heads(heads: int, tp: int) -> int:
    if heads % tp and tp % heads:
        raise UsageError(f"vllm: --tp {tp} must divide the {heads} KV heads or be a multiple of them")
    return max(1, heads // tp)


def _rules_vllm(model: ModelSpec, options: Options, version: tuple[int, ...]) -> Rules:
    if isinstance(model.attention, CompressedAttention):
        return _rules_vllm_v4(model, options, version)
    requested = (options.kv_dtype or "auto").lower()
    is_mla = isinstance(model.attention, MLAttention)
    sparse = _is_sparse(model)
    notes = []
    mla_record = None
    label = None
    if sparse and requested == "auto" and version <= (0, 11, 999):
        # vLLM 0.11 (PR 25988, vllm/model_executor/models/config.py DeepseekV32ForCausalLM): "auto" means
        # the packed fp8 format for DeepSeek-V3.2; later versions keep "auto" as the model dtype.
        requested = "fp8_ds_mla"
        notes.append("vllm 0.11: --kv-cache-dtype auto is fp8_ds_mla for sparse MLA (DeepSeek-V3.2)")
    if sparse and requested.startswith("fp8") and requested != "fp8_ds_mla":
        notes.append(f"vllm: --kv-cache-dtype {requested} is stored as fp8_ds_mla for sparse MLA")
        requested = "fp8_ds_mla"
    if requested in ("fp8_ds_mla", "nvfp4_ds_mla"):
        if not sparse:
            raise UsageError(
                f"vllm: --kv-dtype {requested} is the sparse-MLA layout of models with a DSA indexer "
                "(DeepSeek-V3.2, GLM-5); use fp8 for this model"
            )
        if requested == "nvfp4_ds_mla" and version < (0, 33):
            raise UsageError("vllm: nvfp4_ds_mla needs vLLM 0.33 or later (SM100)")
        # flashmla_sparse.py: 512 fp8 + 4 fp32 scales (16 B) + 64 bf16 rope (128 B) = 656 B; nvfp4 352 B
        mla_record = 656 if requested == "fp8_ds_mla" else 352
        kv = parse_dtype("fp8")
        label = requested
    else:
        kv = _dtype(requested, model)
        if kv.is_block_quantized or kv.bits not in (8, 16, 32):
            raise UsageError(
                f"vllm: unsupported --kv-dtype {kv.name}; expected auto, bf16, fp16, fp32, fp8, "
                "fp8_e5m2, fp8_ds_mla or nvfp4_ds_mla"
            )
    block = 64 if is_mla else 16  # FlashMLA (Hopper default; CUTLASS MLA on Blackwell uses 128)
    if options.block_size is not None:
        block = options.block_size
    mtp_note = "vllm: MTP layers share the main cache pool" if options.mtp and model.mtp_layers else ""
    state_dtype = parse_dtype(options.state_dtype or model.dtype)
    return Rules(
        runtime="vllm", version=".".join(map(str, version)), kv=kv, v=kv, kv_label=label or kv.name,
        mla_record=mla_record,
        # vllm/model_executor/models/deepseek_v2.py: indexer keys 128 fp8 + one fp32 scale = 132 B, always fp8
        indexer_bytes=132 if model.indexer else None,
        indexer_formula="index_head_dim 128 fp8 + one fp32 scale (vLLM indexer cache)",
        heads_per_rank=_vllm_heads, heads_rule="max(1, kv_heads // tp)",
        block=block, indexer_block=block,
        sliding="vllm" if options.hybrid_allocator else "full",
        conv_columns="k-1", conv_dtype=state_dtype,
        # mamba_ssm_cache_dtype "auto" = model dtype for Gated DeltaNet; Kimi Delta Attention keeps fp32
        recurrent_dtype=state_dtype, recurrent_dtype_kda=parse_dtype("fp32"),
        state_page_align=True,
        max_batched_tokens=options.max_batched_tokens or VLLM_MAX_BATCHED_TOKENS,
        supports_dcp=True, mtp_note=mtp_note, notes=notes,
    )  # fmt: skip


# DeepSeek-V4 in vLLM 0.33 (vllm/model_executor/models/deepseek_v4/, third_party/flashmla/flash_mla_interface.py):
# fp8 records 448 fp8 no-rope + 64 bf16 rope + 8 B UE8M0 scales = 584 B; bf16 records 512 x 2 = 1024 B; indexer keys
# 132 B fp8 (128 + fp32 scale), 68 B MXFP4, 256 B bf16; fp32 compressor rings per layer: ratio 4: 8 x 8,192 B + an
# indexer ring of 8 x 2,048 B; ratio 128: 128 x 4,096 B. Windows in 64-token blocks, compressed caches in 256-token
# pages, fp8 record pages padded to a multiple of 576 B.
V4_INDEXER_BYTES = {"fp8": 132, "fp8_e4m3": 132, "mxfp4": 68, "bf16": 256}


def _rules_vllm_v4(model: ModelSpec, options: Options, version: tuple[int, ...]) -> Rules:
    assert isinstance(model.attention, CompressedAttention)
    requested = (options.kv_dtype or "auto").lower()
    notes = []
    if requested in ("auto", "fp8", "fp8_e4m3", "fp8_ds_mla"):
        if requested == "auto":
            notes.append("vllm: --kv-cache-dtype auto is the fp8 layout for DeepSeek-V4 (FlashMLA, PR 45091)")
        record, label, align = 584, "fp8_ds_mla", 576
        record_formula = "448 fp8 nope + 64 bf16 rope + 8 B UE8M0 scales = 584 B"
    elif requested in ("bf16", "bfloat16"):
        record, label, align = 1024, "bf16", 0
        record_formula = f"head_dim {model.attention.head_dim} x bf16 = 1,024 B"
    else:
        raise UsageError(
            f"vllm: DeepSeek-V4 cache dtype {requested!r} unsupported; expected auto, fp8 or bf16"
        )
    indexer_name = (options.indexer_dtype or "fp8").lower()
    if indexer_name not in V4_INDEXER_BYTES:
        raise UsageError(f"--indexer-dtype: expected fp8, mxfp4 or bf16, got {options.indexer_dtype!r}")
    indexer = V4_INDEXER_BYTES[indexer_name]
    rates = dict(model.compress_rates)
    rings = []
    if "csa" in rates:
        rings.append((rates["csa"], 8 * 8192 + 8 * 2048))
    if "hca" in rates:
        rings.append((rates["hca"], 128 * 4096))
    kv = parse_dtype("fp8") if record == 584 else parse_dtype("bf16")
    return Rules(
        runtime="vllm", version=".".join(map(str, version)), kv=kv, v=kv, kv_label=label,
        heads_per_rank=_vllm_heads, supports_dcp=False, notes=notes,
        compressed=CompressedRules(
            record=record, record_formula=record_formula, indexer=indexer,
            indexer_formula=f"indexer key {indexer_name} = {indexer} B", rings=tuple(rings),
            window_block=options.block_size or 64, page_tokens=256, page_align=align,
        ),
    )  # fmt: skip


def _rules_sglang(model: ModelSpec, options: Options, version: tuple[int, ...]) -> Rules:
    requested = (options.kv_dtype or "auto").lower()
    sparse = _is_sparse(model)
    mla_record = None
    label = None
    if sparse and (requested.startswith("fp8")):
        # sglang memory_pool.py NSATokenToKVPool: fp8 sparse MLA rows are the 656 B packed layout
        mla_record, kv, label = 656, parse_dtype("fp8"), "fp8_e4m3 (656 B sparse layout)"
    else:
        kv = _dtype(requested, model)
        if kv.is_block_quantized or kv.bits not in (8, 16, 32):
            raise UsageError(
                f"sglang: unsupported --kv-dtype {kv.name}; expected auto, bf16, fp16, fp8_e4m3, fp8_e5m2"
            )
    block = 64 if model.indexer is not None else 1  # page size 1 by default, 64 for DSA
    if options.block_size is not None:
        block = options.block_size
    state_dtype = parse_dtype(options.state_dtype or model.dtype)
    return Rules(
        runtime="sglang", version=".".join(map(str, version)), kv=kv, v=kv, kv_label=label or kv.name,
        mla_record=mla_record,
        indexer_bytes=132 if model.indexer else None,
        indexer_formula="index_head_dim 128 fp8 + one fp32 scale (SGLang index_k_with_scale)",
        heads_per_rank=_vllm_heads, heads_rule="max(1, kv_heads // attn_tp)",
        block=block, indexer_block=64 if model.indexer else block,
        sliding="window",
        conv_columns="k-1", conv_dtype=state_dtype,
        recurrent_dtype=parse_dtype(options.state_dtype or "fp32"),
        recurrent_dtype_kda=parse_dtype(options.state_dtype or "fp32"),
        mtp_note="sglang: MTP layers get a separate draft pool of the same token count" if options.mtp else "",
        notes=["sglang: sliding layers counted as window W rounded to pages (SWA pool)"]
        if "sliding" in model.layer_kinds else [],
    )  # fmt: skip


def _rules_transformers(model: ModelSpec, options: Options, version: tuple[int, ...]) -> Rules:
    kv = _dtype(options.kv_dtype, model)
    if isinstance(model.attention, CompressedAttention):
        if version < (5, 24):
            raise UsageError(
                "transformers: mla-mem's DeepSeek-V4 rules were read from transformers 5.24; earlier "
                "versions are not described (use transformers@5.24)"
            )
        if options.block_size not in (None, 1):
            raise UsageError("--block-size: transformers does not page its cache (DynamicCache)")
        record = kv.row_bytes(model.attention.head_dim)
        indexer = kv.row_bytes(model.indexer.head_dim) if model.indexer else 0
        return Rules(
            runtime="transformers", version=".".join(map(str, version)), kv=kv, v=kv, kv_label=kv.name,
            supports_tp=False, supports_pp=False,
            notes=["transformers 5.24 (models/deepseek_v4/modeling_deepseek_v4.py): windows keep the last W - 1 "
                   "tokens, compressors buffer the tokens of the unfinished window and carry one window of overlap"],
            compressed=CompressedRules(
                record=record, record_formula=f"head_dim {model.attention.head_dim} x {kv.name} = {record} B",
                indexer=indexer, indexer_formula=f"index_head_dim x {kv.name} = {indexer} B", in_progress=True,
            ),
        )  # fmt: skip
    if kv.is_block_quantized or kv.name in ("fp8_ds_mla", "nvfp4_ds_mla") or kv.bits not in (8, 16, 32):
        raise UsageError(
            f"transformers: unsupported --kv-dtype {kv.name}; DynamicCache holds torch dtypes "
            "(bf16, fp16, fp32, fp8)"
        )
    if options.block_size not in (None, 1):
        raise UsageError("--block-size: transformers does not page its cache (DynamicCache)")
    latent = version >= (5, 15)
    notes = [
        "transformers: DynamicCache, no paging; sliding layers keep the last W - 1 tokens "
        "(cache_utils.py DynamicSlidingWindowLayer)"
    ]
    if isinstance(model.attention, MLAttention) and not latent:
        notes.append("transformers < 5.15 caches MLA keys and values expanded to every head")
    indexer_bytes: int | None = None
    if model.indexer is not None and latent:
        indexer_bytes = kv.row_bytes(model.indexer.head_dim)
    return Rules(
        runtime="transformers", version=".".join(map(str, version)), kv=kv, v=kv, kv_label=kv.name,
        mla_layout="latent" if latent else "expanded",
        indexer_bytes=indexer_bytes, indexer_formula=f"index_head_dim {model.indexer.head_dim} x {kv.name}"
        if model.indexer else "",
        heads_per_rank=lambda heads, tp: heads, heads_rule="kv_heads",
        sliding="window-1", conv_columns="k", conv_dtype=parse_dtype(options.state_dtype or model.dtype),
        recurrent_dtype=parse_dtype(options.state_dtype or "fp32"),
        recurrent_dtype_kda=parse_dtype(options.state_dtype or "fp32"),
        supports_tp=False, supports_pp=False, notes=notes,
    )  # fmt: skip


_LLAMA_TYPES = ("f16", "bf16", "f32", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl")


def _llama_type(text: str | None, default: str = "f16") -> DType:
    name = (text or default).lower()
    if name in ("auto", "fp16", "float16"):
        name = "f16"
    if name in ("fp32", "float32"):
        name = "f32"
    if name not in _LLAMA_TYPES:
        raise UsageError(
            f"llama.cpp: unsupported cache type {text!r}; expected one of {', '.join(_LLAMA_TYPES)}"
        )
    dtype = parse_dtype(name)
    return DType(name, dtype.bits, dtype.scale_block, dtype.scale_bytes, dtype.description)


def _rules_llama_cpp(model: ModelSpec, options: Options, version: tuple[int, ...]) -> Rules:
    k = _llama_type(options.kv_dtype)
    v = _llama_type(options.v_dtype or options.kv_dtype)
    era = version[0]
    layout = {2024: "expanded", 2025: "latent+v"}.get(era, "latent")
    label = k.name if k.name == v.name or layout == "latent" else f"K {k.name}, V {v.name}"
    block = options.block_size or 1
    notes = [
        f"llama.cpp: cells per sequence padded to {LLAMA_CPP_PAD}; sliding layers hold "
        f"pad{LLAMA_CPP_PAD}(min(n, window + n_ubatch {LLAMA_CPP_UBATCH})) cells"
    ]
    if isinstance(model.attention, MLAttention):
        notes.append(
            {
                "expanded": "llama.cpp 2024: GGUFs converted before April 2025 store MLA expanded per head",
                "latent+v": "llama.cpp 2025 (April 2025 to January 2026): MLA latent as K plus a V of kv_lora_rank",
                "latent": "llama.cpp 2026: MLA latent as K only",
            }[layout]
        )
    f32 = parse_dtype("fp32")
    return Rules(
        runtime="llama.cpp", version=str(era), kv=k, v=v, kv_label=label, mla_layout=layout,
        indexer_bytes=k.row_bytes(model.indexer.head_dim) if model.indexer else None,
        indexer_formula=f"index_head_dim {model.indexer.head_dim} x {k.name}" if model.indexer else "",
        heads_per_rank=lambda heads, tp: heads, heads_rule="kv_heads",
        block=block, indexer_block=block, sliding="llama.cpp", cell_pad=LLAMA_CPP_PAD,
        conv_columns="k-1", conv_dtype=f32, recurrent_dtype=f32, recurrent_dtype_kda=f32,
        supports_tp=False, notes=notes,
    )  # fmt: skip


def _rules_trtllm(model: ModelSpec, options: Options, version: tuple[int, ...]) -> Rules:
    kv = _dtype(options.kv_dtype, model)
    if kv.name not in ("bf16", "fp16", "fp32", "fp8_e4m3", "nvfp4"):
        raise UsageError(f"trtllm: unsupported --kv-dtype {kv.name}; expected auto, bf16, fp16, fp8 or nvfp4")
    block = 64 if model.indexer is not None else 32  # tokens_per_block 32; 64 for the V3.2 indexer
    if options.block_size is not None:
        block = options.block_size
    state = parse_dtype(options.state_dtype or model.dtype)
    notes = []
    if "sliding" in model.layer_kinds:
        notes.append("trtllm: sliding layers counted as the window rounded up to whole blocks")
    if "linear" in model.layer_kinds:
        notes.append(
            "trtllm: linear state assumed (k-1) conv columns and recurrent state in the model dtype "
            "(mamba_cache_manager.py; mamba_ssm_cache_dtype auto)"
        )
    return Rules(
        runtime="trtllm", version=".".join(map(str, version)), kv=kv, v=kv, kv_label=kv.name,
        indexer_bytes=132 if model.indexer else None,
        indexer_formula="index_head_dim 128 fp8 + one fp32 scale (TensorRT-LLM DSA indexer cache)",
        heads_per_rank=lambda heads, tp: -(-heads // tp), heads_rule="ceil(kv_heads / tp)",
        block=block, indexer_block=64 if model.indexer else block,
        sliding="window", conv_columns="k-1", conv_dtype=state, recurrent_dtype=state, recurrent_dtype_kda=state,
        notes=notes,
    )  # fmt: skip


_RULES = {
    "ideal": _rules_ideal,
    "vllm": _rules_vllm,
    "sglang": _rules_sglang,
    "transformers": _rules_transformers,
    "llama.cpp": _rules_llama_cpp,
    "trtllm": _rules_trtllm,
}


# ---------------------------------------------------------------------------------------------------------
# The builder: rules -> streams


def lower(model: ModelSpec, options: Options | None = None) -> Plan:
    """The streams `options.runtime` stores for `model`, per GPU."""
    options = options or Options()
    name, _, version = parse_runtime(options.runtime)
    _check_parallel(options, model)
    rules = _RULES[name](model, options, version)
    if not rules.supports_tp and options.tp > 1:
        raise UsageError(
            f"{name}: --tp is not modelled for this runtime (it keeps every KV head on each device); "
            + ("use --pp to split layers" if rules.supports_pp else "use --dp for replicas")
        )
    if not rules.supports_pp and options.pp > 1:
        raise UsageError(f"{name}: --pp is not modelled for this runtime")
    if not rules.supports_dcp and options.dcp > 1:
        raise UsageError(f"{name}: --dcp (decode context parallel) is a vLLM feature")
    return _build(model, options, rules)


def _build(model: ModelSpec, options: Options, rules: Rules) -> Plan:
    if isinstance(model.attention, CompressedAttention):
        return _build_compressed(model, options, rules)
    tp = options.tp
    attention = model.attention
    streams: list[CacheStream] = []
    mtp_layers = tuple(range(model.layers, model.layers + model.mtp_layers)) if options.mtp else ()
    block = rules.block
    pad = rules.cell_pad

    # Bytes per token per layer of the attention (full and sliding layers), and its formula.
    if isinstance(attention, MLAttention):
        latent = attention.latent_dim
        if rules.mla_record is not None:
            entry = rules.mla_record
            formula = f"{rules.kv_label} record: {entry} B per token per layer"
        elif rules.mla_layout == "expanded":
            k = rules.kv.row_bytes(
                attention.heads * (attention.qk_nope_head_dim + attention.qk_rope_head_dim)
            )
            v = rules.v.row_bytes(attention.heads * attention.v_head_dim)
            entry = k + v
            formula = (
                f"expanded per head: {attention.heads} heads x (K {attention.qk_nope_head_dim} + "
                f"{attention.qk_rope_head_dim} + V {attention.v_head_dim}) x {rules.kv_label} "
                f"= {_fmt(entry)} B per token per layer"
            )
        elif rules.mla_layout == "latent+v":
            entry = rules.kv.row_bytes(latent) + rules.v.row_bytes(attention.kv_lora_rank)
            formula = (
                f"K latent {latent} x {rules.kv.name} + V kv_lora_rank {attention.kv_lora_rank} x "
                f"{rules.v.name} = {_fmt(entry)} B per token per layer"
            )
        else:
            entry = rules.kv.row_bytes(latent)
            formula = (
                f"(kv_lora_rank {attention.kv_lora_rank} + qk_rope_head_dim {attention.qk_rope_head_dim}) x "
                f"{rules.kv.width_text()} ({rules.kv.name}) = {_fmt(entry)} B per token per layer"
            )
        if tp > 1 and rules.mla_layout != "expanded":
            formula += f", on every GPU (the latent is not split by tp {tp})"
        description = "MLA latent"
        full_name, sliding_name = "mla_latent", "sliding_mla_latent"
    else:
        assert isinstance(attention, KVAttention)
        heads = rules.heads_per_rank(attention.kv_heads, tp)
        entry = rules.kv.row_bytes(heads * attention.head_dim) + rules.v.row_bytes(
            heads * attention.v_head_dim
        )
        dims = (
            f"(K {attention.head_dim} x {rules.kv.name} + V {attention.v_head_dim} x {rules.v.name})"
            if attention.v_head_dim != attention.head_dim or rules.kv.name != rules.v.name
            else f"2 x head_dim {attention.head_dim} x {rules.kv.width_text()} ({rules.kv.name})"
        )
        split = f" [{rules.heads_rule}, tp {tp}]" if tp > 1 else ""
        formula = f"{heads} KV heads{split} x {dims} = {_fmt(entry)} B per token per layer"
        description = "keys and values"
        full_name, sliding_name = "full_kv", "sliding_kv"

    # Linear state first: vLLM's hybrid page rule may raise the attention block size.
    linear_layers = model.layers_of("linear")
    linear_stream = None
    if linear_layers:
        linear = model.linear_attention
        assert linear is not None
        split_tp = tp if rules.supports_tp else 1
        for what, heads in (("key_heads", linear.key_heads), ("value_heads", linear.value_heads)):
            if heads % split_tp:
                raise UsageError(f"--tp {tp} must divide the linear attention's {what} ({heads})")
        columns = linear.conv_kernel - 1 if rules.conv_columns == "k-1" else linear.conv_kernel
        conv_dtype = rules.conv_dtype or rules.kv
        recurrent_dtype = (
            rules.recurrent_dtype_kda
            if linear.kind == "kda" and rules.recurrent_dtype_kda
            else rules.recurrent_dtype
        ) or rules.kv
        conv_values = columns * linear.conv_dim // split_tp
        recurrent_values = linear.recurrent_elements // split_tp
        state = conv_dtype.row_bytes(conv_values) + recurrent_dtype.row_bytes(recurrent_values)
        by_tp = f" / tp {split_tp}" if split_tp > 1 else ""
        formula_state = (
            f"conv {columns} x conv_dim {_fmt(linear.conv_dim)}{by_tp} x {conv_dtype.name} + recurrent "
            f"{linear.value_heads} x {linear.key_head_dim} x {linear.value_head_dim}{by_tp} x {recurrent_dtype.name} "
            f"= {_fmt(state)} B per sequence per layer"
        )
        page = state
        if rules.state_page_align and (model.layers_of("full") or model.layers_of("sliding")):
            # vllm/model_executor/models/config.py HybridAttentionMambaModelConfig: the attention block grows
            # until one attention page holds a mamba page; the mamba page is padded to the attention page.
            align = 64 if isinstance(attention, MLAttention) else 16
            raised = align * -(-state // (align * entry))
            if options.block_size is None or options.block_size < raised:
                block = raised
            page = block * entry
            formula_state += f", page padded to attention block {block} x {_fmt(entry)} B = {_fmt(page)} B"
        linear_stream = CacheStream(
            "linear_state", linear_layers, state, tokens_per_entry=0, page_bytes=page,
            description=f"{linear.kind} state", formula=formula_state,
        )  # fmt: skip

    def attention_stream(component: str, layers: tuple[int, ...], window: int | None) -> CacheStream:
        extra = 0
        text = formula
        stream_block = block
        if window is not None:
            if rules.sliding == "full":
                window = None
                text += "; sliding layer sized as full attention (hybrid allocator off)"
            elif rules.sliding == "window-1":
                window = window - 1
                text += f", keeps the last sliding_window - 1 = {_fmt(window)} tokens"
            elif rules.sliding == "vllm":
                # vllm/v1/kv_cache_interface.py SlidingWindowSpec.max_memory_usage_bytes:
                # cdiv(min(W - 1 + max_num_batched_tokens, max_model_len), block) + 1 blocks
                window = window - 1 + rules.max_batched_tokens
                extra = 1
                text += (
                    f", holds ceil(min(W - 1 + max_num_batched_tokens {_fmt(rules.max_batched_tokens)}, n) / "
                    f"{stream_block}) + 1 blocks (never more than n needs)"
                )
            elif rules.sliding == "llama.cpp":
                window = window + LLAMA_CPP_UBATCH
                text += f", holds pad{pad}(min(n, window + n_ubatch {LLAMA_CPP_UBATCH})) cells"
            else:
                text += f", at most sliding_window {_fmt(window)} tokens"
        if pad:
            stream_block = max(pad, stream_block)
        if stream_block > 1:
            text += f"; paged in blocks of {stream_block} tokens"
        return CacheStream(
            component=component, layers=layers, entry_bytes=entry, window=window, block=stream_block,
            extra_blocks=extra, description=description + (" (sliding)" if component.startswith("sliding") else ""),
            formula=text, token_shards=options.dcp,
        )  # fmt: skip

    full = model.layers_of("full")
    sliding = model.layers_of("sliding")
    if full:
        streams.append(attention_stream(full_name, full, None))
    if sliding:
        streams.append(attention_stream(sliding_name, sliding, model.sliding_window))
    if mtp_layers:
        streams.append(attention_stream("mtp", mtp_layers, None))

    if model.indexer is not None and rules.indexer_bytes is not None:
        indexer_block = max(rules.indexer_block, pad) if pad else rules.indexer_block
        text = f"{rules.indexer_formula} = {rules.indexer_bytes} B per token per layer"
        if tp > 1:
            text += f", on every GPU (not split by tp {tp})"
        if indexer_block > 1:
            text += f"; paged in blocks of {indexer_block} tokens"
        streams.append(
            CacheStream(
                "indexer",
                model.indexer_layers,
                rules.indexer_bytes,
                block=indexer_block,
                description="DSA indexer keys",
                formula=text,
                token_shards=options.dcp,
            )
        )
        if mtp_layers:
            streams.append(
                CacheStream(
                    "mtp_indexer",
                    mtp_layers,
                    rules.indexer_bytes,
                    block=indexer_block,
                    description="DSA indexer keys (MTP)",
                    formula=text,
                    token_shards=options.dcp,
                )
            )
    if linear_stream is not None:
        streams.append(linear_stream)

    stages = pipeline_stages(model.layers + len(mtp_layers), options.pp)
    layout = f"tp {tp}, pp {options.pp}, dp {options.dp}" + (
        f", dcp {options.dcp}" if options.dcp > 1 else ""
    )
    runtime = rules.runtime + (f" {rules.version}" if rules.version else "")
    notes = list(rules.notes)
    if rules.mtp_note:
        notes.append(rules.mtp_note)
    return Plan(
        model=model, runtime=runtime, kv_dtype=rules.kv_label, block_size=max(block, pad or 1),
        streams=tuple(streams), stages=stages, tp=tp, pp=options.pp, dp=options.dp, dcp=options.dcp,
        mtp=options.mtp, notes=tuple(notes), layout=layout,
    )  # fmt: skip


def _build_compressed(model: ModelSpec, options: Options, rules: Rules) -> Plan:
    """DeepSeek-V4: per layer a window of the last W tokens, one entry per r tokens on csa/hca layers, indexer
    keys on csa layers, and (runtime-owned) compressor state; all replicated on every TP rank (one KV head)."""
    v4 = rules.compressed
    if v4 is None:
        raise UsageError(
            f"{rules.runtime}: no DeepSeek-V4 (compressed attention) rules for this runtime yet; "
            "use --runtime vllm or ideal"
        )
    attention = model.attention
    assert isinstance(attention, CompressedAttention) and model.sliding_window is not None
    window = model.sliding_window
    mtp_layers = tuple(range(model.layers, model.layers + model.mtp_layers)) if options.mtp else ()
    all_layers = tuple(range(model.layers)) + mtp_layers
    if v4.in_progress:
        if mtp_layers:
            raise UsageError(f"{rules.runtime}: builds no MTP layers for DeepSeek-V4; drop --mtp")
        streams = _in_progress_streams(model, v4, window)
    else:
        streams = [
            CacheStream(
                "window", all_layers, v4.record, window=window, block=v4.window_block,
                page_bytes=v4.page(v4.window_block, v4.record), description="window cache",
                formula=f"{v4.record_formula} per token, last sliding_window {window} tokens"
                + (f"; {v4.window_block}-token blocks" if v4.window_block > 1 else "")
                + (f" padded to {v4.page_align} B multiples" if v4.page_align else ""),
            )
        ]  # fmt: skip
    for kind in ("csa", "hca"):
        layers = model.layers_of(kind)
        if not layers or v4.in_progress:
            continue
        ratio = model.compress_rate(kind)
        per_page = max(1, v4.page_tokens // ratio)
        page = v4.page(per_page, v4.record)
        text = f"one {v4.record} B entry per {ratio} tokens ({v4.record_formula})"
        if per_page > 1 or v4.page_align:
            text += f"; pages of {per_page} entries = {page:,} B"
        streams.append(
            CacheStream(
                f"compressed_{kind}",
                layers,
                v4.record,
                tokens_per_entry=ratio,
                block=per_page,
                page_bytes=page,
                description=f"{kind} compressed entries",
                formula=text,
            )
        )
        if kind == "csa" and model.indexer is not None and v4.indexer:
            streams.append(CacheStream(
                "indexer", model.indexer_layers, v4.indexer, tokens_per_entry=ratio, block=per_page,
                description="Lightning Indexer keys", formula=f"{v4.indexer_formula} per {ratio} tokens",
            ))  # fmt: skip
    for ratio, ring in v4.rings:
        layers = tuple(
            i
            for i in range(model.layers)
            if model.layer_kinds[i] in ("csa", "hca") and model.compress_rate(model.layer_kinds[i]) == ratio
        )
        if layers:
            streams.append(CacheStream(
                f"compressor_state_r{ratio}", layers, ring, tokens_per_entry=0, description="compressor rings (fp32)",
                formula=f"{ring:,} B per sequence per layer (fp32 rings of the ratio-{ratio} compressor)",
            ))  # fmt: skip
    stages = pipeline_stages(len(all_layers), options.pp)
    layout = f"tp {options.tp}, pp {options.pp}, dp {options.dp}"
    runtime = rules.runtime + (f" {rules.version}" if rules.version else "")
    return Plan(
        model=model, runtime=runtime, kv_dtype=rules.kv_label, block_size=max(v4.window_block, 1),
        streams=tuple(streams), stages=stages, tp=options.tp, pp=options.pp, dp=options.dp, dcp=options.dcp,
        mtp=options.mtp, notes=tuple(rules.notes), layout=layout,
    )  # fmt: skip


def _in_progress_streams(model: ModelSpec, v4: CompressedRules, window: int) -> list[CacheStream]:
    """transformers 5.24's DeepSeek-V4 cache (modeling_deepseek_v4.py DeepseekV4CSACache / DeepseekV4HCACache,
    measured by tests/crosscheck): window-only layers are plain sliding layers (K and V apart, last W - 1 tokens);
    csa and hca layers keep one shared K=V window of W - 1 tokens, the compressed entries, the tokens of the
    unfinished window (kv and gate projections; csa projects two overlapping series, so twice the width, for the
    compressor and the indexer) and, once a window has closed, the previous window's overlap slice (kv in the
    cache dtype, gate in fp32)."""
    attention = model.attention
    assert isinstance(attention, CompressedAttention)
    d, record, idx = attention.head_dim, v4.record, v4.indexer
    index_dim = model.indexer.head_dim if model.indexer else 0
    dt = record // d  # bytes per element of the cache dtype
    streams = []
    window_layers = model.layers_of("window")
    if window_layers:
        streams.append(
            CacheStream(
                "window_kv",
                window_layers,
                2 * record,
                window=window - 1,
                description="window (keys and values)",
                formula=f"K and V {d} x {dt} B each = {2 * record:,} B per token, last W - 1 tokens",
            )
        )
    compressed_layers = tuple(i for i, k in enumerate(model.layer_kinds) if k in ("csa", "hca"))
    if compressed_layers:
        streams.append(
            CacheStream(
                "window",
                compressed_layers,
                record,
                window=window - 1,
                description="window (shared K=V)",
                formula=f"{v4.record_formula} per token (K and V share storage), last W - 1 tokens",
            )
        )
    for kind in ("csa", "hca"):
        layers = model.layers_of(kind)
        if not layers:
            continue
        ratio = model.compress_rate(kind)
        streams.append(
            CacheStream(
                f"compressed_{kind}",
                layers,
                record,
                tokens_per_entry=ratio,
                description=f"{kind} compressed entries",
                formula=f"one {record:,} B entry per {ratio} tokens",
            )
        )
        series = 2 if kind == "csa" else 1  # csa compresses two overlapping series (Ca, Cb)
        width = series * d + (series * index_dim if kind == "csa" else 0)
        buffer = 2 * width * dt  # kv and gate projections of each waiting token
        streams.append(
            CacheStream(
                f"buffer_{kind}",
                layers,
                buffer,
                remainder_of=ratio,
                description=f"{kind} tokens waiting for a full window",
                formula=f"(n mod {ratio}) tokens x kv + gate ({width} each) x {dt} B = "
                f"{buffer:,} B per waiting token",
            )
        )
        if kind == "csa":
            if idx:
                streams.append(
                    CacheStream(
                        "indexer",
                        model.indexer_layers,
                        idx,
                        tokens_per_entry=ratio,
                        description="Lightning Indexer keys",
                        formula=f"{v4.indexer_formula} per {ratio} tokens",
                    )
                )
            overlap = ratio * (d + index_dim) * (dt + 4)  # kv in the cache dtype, gate in fp32
            streams.append(
                CacheStream(
                    "overlap_csa",
                    layers,
                    overlap,
                    tokens_per_entry=0,
                    min_tokens=ratio,
                    description="previous window's overlap slice",
                    formula=f"{ratio} x ({d} + {index_dim}) x ({dt} B kv + 4 B fp32 gate) = "
                    f"{overlap:,} B once a window has closed",
                )
            )
    return streams
