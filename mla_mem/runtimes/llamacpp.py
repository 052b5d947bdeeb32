"""llama.cpp, by era of the GGUF conversion: 2024 (MLA expanded per head, GGUFs converted before April 2025), 2025
(K latent + V of kv_lora_rank, April 2025 to January 2026), 2026 (K-only latent). Sources: src/llama-kv-cache.cpp
(cells padded to 256; SWA layers hold min(n, n_swa + n_ubatch) cells), conversion/deepseek.py,
ggml/src/ggml-common.h (block quant sizes), src/llama-memory-recurrent.cpp (fp32 recurrent state)."""

from __future__ import annotations

from ..errors import UsageError
from ..options import Deployment, OptionError, RuntimeRef
from ..spec import MLA, STATE_KINDS, ModelSpec
from ..units import DType, parse_dtype
from . import Profile
from .ideal import first_indexer_dim
from .rules import LLAMA_CPP_PAD, LLAMA_CPP_UBATCH, Rules, StateRule, has_kind

TYPES = ("f16", "bf16", "f32", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl")


def cache_type(text: str | None, field_name: str = "kv_dtype") -> DType:
    name = (text or "f16").lower()
    if name in ("auto", "fp16", "float16"):
        name = "f16"
    if name in ("fp32", "float32"):
        name = "f32"
    if name not in TYPES:
        raise OptionError(field_name, f"llama.cpp: unsupported cache type {text!r}; expected one of {', '.join(TYPES)}")
    try:
        dtype = parse_dtype(name)
    except UsageError as exc:  # pragma: no cover - every name of TYPES parses
        raise OptionError(field_name, str(exc)) from None
    return DType(name, dtype.bits, dtype.scale_block, dtype.scale_bytes, dtype.description)


# The first build whose KV cache holds DSA indexer keys (DeepSeek-V3.2 / GLM-5 sparse attention, llama.cpp b9445:
# llama-kv-cache.cpp "indexer KV cache"); builds before ran those models as dense MLA.
LLAMA_CPP_DSA_BUILD = 9445


def rules(model: ModelSpec, deployment: Deployment) -> Rules:
    k = cache_type(deployment.kv_dtype)
    v = cache_type(deployment.v_dtype or deployment.kv_dtype, "v_dtype")
    numbers = deployment.runtime.numbers
    era = numbers[0]
    build = numbers[1] if len(numbers) > 1 else None  # None: the newest (an era)
    layout = {2024: "expanded", 2025: "latent+v"}.get(era, "latent")
    label = k.name if k.name == v.name or layout == "latent" else f"K {k.name}, V {v.name}"
    notes = [
        f"llama.cpp: cells per sequence padded to {LLAMA_CPP_PAD}; sliding layers hold "
        f"pad{LLAMA_CPP_PAD}(min(n, window + n_ubatch {LLAMA_CPP_UBATCH})) cells"
    ]
    if has_kind(model, lambda kind: isinstance(kind.attention, MLA)):
        notes.append({
            "expanded": "llama.cpp 2024: GGUFs converted before April 2025 store MLA expanded per head",
            "latent+v": "llama.cpp 2025 (April 2025 to January 2026): MLA latent as K plus a V of kv_lora_rank",
            "latent": "llama.cpp 2026: MLA latent as K only",
        }[layout])  # fmt: skip
    index_dim = first_indexer_dim(model)
    if index_dim and build is not None and build < LLAMA_CPP_DSA_BUILD:
        # before DSA support the GGUF's indexer was not run and its keys not cached (DeepSeek-V3.2 as dense MLA)
        notes.append(f"llama.cpp b{build}: no DSA indexer cache before b{LLAMA_CPP_DSA_BUILD} (sparse attention off)")
        index_dim = None
    block = deployment.block_size or 1
    f32 = parse_dtype("fp32")
    return Rules(
        runtime=RuntimeRef("llama.cpp", deployment.runtime.version), kv=k, v=v, kv_label=label,
        mla_layout=layout,  # type: ignore[arg-type]
        indexer_bytes=k.row_bytes(index_dim) if index_dim else None,
        indexer_formula=f"index_head_dim {index_dim} x {k.name}" if index_dim else "",
        head_split="none", block=block, indexer_block=block, window_rule="llama.cpp", cell_pad=LLAMA_CPP_PAD,
        # src/llama-memory-recurrent.cpp: one f32 cell per sequence, r = (d_conv - 1) x conv channels, s = the
        # recurrent state (src/llama-hparams.cpp n_embd_r / n_embd_s), whatever the family
        states={kind: StateRule("k-1", f32, f32) for kind in STATE_KINDS},
        chunk_rule="llama.cpp",  # Llama 4's chunked layers are an iSWA cache of n_swa = 8192 (src/models/llama4.cpp)

        supports_tp=False, notes=tuple(notes),
        refuse_compressed="llama.cpp: no DeepSeek-V4 (compressed attention) rules for this runtime yet (llama.cpp "
        "runs DeepSeek-V4 from a build between b9757 and b9879, with a raw cache, compressed caches and an iSWA window; "
        "their sizes are not derived here); use runtime vllm, transformers or ideal",
    )  # fmt: skip


PROFILE = Profile(
    name="llama.cpp", default_version="2026", low=(2024,), high=(2026,),
    described="2024 (GGUFs converted before April 2025), 2025, 2026, or a build from b8054 (e.g. b9444)", rules=rules,
    order=4,
    aliases=("llamacpp", "llama-cpp"), sources=("src/llama-kv-cache.cpp", "ggml/src/ggml-common.h"),
)  # fmt: skip
