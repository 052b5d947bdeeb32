"""llama.cpp, by era of the GGUF conversion: 2024 (MLA expanded per head, GGUFs converted before April 2025), 2025
(K latent + V of kv_lora_rank, April 2025 to January 2026), 2026 (K-only latent). Sources: src/llama-kv-cache.cpp
(cells padded to 256; SWA layers hold min(n, n_swa + n_ubatch) cells), conversion/deepseek.py,
ggml/src/ggml-common.h (block quant sizes), src/llama-memory-recurrent.cpp (fp32 recurrent state)."""

from __future__ import annotations

from ..errors import UsageError
from ..options import Deployment, OptionError, RuntimeRef
from ..spec import MLA, STATE_KINDS, Compressed, ModelSpec
from ..units import DType, parse_dtype
from . import Profile
from .ideal import first_indexer_dim
from .rules import LLAMA_CPP_PAD, LLAMA_CPP_UBATCH, CompressedRules, Rules, StateRule, has_kind

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
# The first build that runs DeepSeek-V4 (PR #24162 "DeepSeek V4", merged 2026-06-29 as b9840; b9838 has no
# deepseek4 architecture in libllama, llama-cpp-python 0.3.33 vendors it).
LLAMA_CPP_V4_BUILD = 9840


def rules(model: ModelSpec, deployment: Deployment) -> Rules:
    k = cache_type(deployment.kv_dtype)
    v = cache_type(deployment.v_dtype or deployment.kv_dtype, "v_dtype")
    numbers = deployment.runtime.numbers
    era = numbers[0]
    build = numbers[1] if len(numbers) > 1 else None  # None: the newest (an era)
    if has_kind(model, lambda kind: isinstance(kind.attention, Compressed)):
        return _rules_v4(model, deployment, k, v, era, build)
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
    )  # fmt: skip


def _rules_v4(model: ModelSpec, deployment: Deployment, k: DType, v: DType, era: int, build: int | None) -> Rules:
    """DeepSeek-V4 in llama.cpp (src/llama-kv-cache-dsv4.cpp, llama-cpp-python 0.3.33-0.3.36's vendored tree): every
    cache is K-only rows of type_k and per sequence whatever --kv-unified says (dsv4.cpp:1241-1244, 1287): an iSWA
    window of pad256(min(n, sliding_window + n_ubatch)) cells on every layer (llama-kv-cache-iswa.cpp:69-79), the
    compressed caches of pad256(ceil(n / r)) cells on layers of ratio 4 and 128 (dsv4.cpp:28-30, 1272-1303), indexer
    keys of index_head_dim x type_k with the ratio-4 cells (1263-1270, 1305-1311), and three f32 compressor states
    per sequence, kv and score tensors of 2 x 512 x 8 (ratio 4), 512 x 128 (ratio 128) and 2 x 128 x 8 (indexer)
    (1313-1330), n_rs_seq 0 without speculative decoding. Checked against ggml-org/llama.cpp#27680's log."""
    if era < 2026 or (build is not None and build < LLAMA_CPP_V4_BUILD):
        ran = f"b{build}" if build is not None else str(era)
        raise OptionError("runtime", f"llama.cpp {ran} does not run DeepSeek-V4 (architecture deepseek4); "
                                     f"b{LLAMA_CPP_V4_BUILD} (PR #24162) and later do: use llama.cpp@b{LLAMA_CPP_V4_BUILD} "
                                     "or llama.cpp")  # fmt: skip
    if k.name != v.name:
        raise OptionError("v_dtype", "llama.cpp: DeepSeek-V4's caches are K-only and type_v must equal type_k "
                                     "(llama-context.cpp)")  # fmt: skip
    if deployment.mtp:
        raise OptionError("mtp", "llama.cpp: DeepSeek-V4's MTP layer runs in a draft context of its own, not modelled; "
                                 "drop mtp")  # fmt: skip
    head = next(kind.attention.head_dim for kind in model.used_kinds() if isinstance(kind.attention, Compressed))
    index_dim = first_indexer_dim(model)
    record = k.row_bytes(head)
    indexer = k.row_bytes(index_dim) if index_dim else 0
    block = deployment.block_size or 1
    if block != 1:
        raise OptionError("block_size", "llama.cpp: caches are cells padded to 256, not blocks; drop block_size")
    notes = (
        f"llama.cpp DeepSeek-V4: K-only {k.name} rows; every cache per sequence (llama-server's automatic -np 4 with a "
        "unified cache allocates 4 sequences of the whole context); the window is iSWA (not --swa-full, which "
        "llama-cpp-python turns on: then the window holds the whole context)",
    )
    return Rules(
        runtime=RuntimeRef("llama.cpp", deployment.runtime.version), kv=k, v=v, kv_label=k.name,
        head_split="none", block=1, cell_pad=LLAMA_CPP_PAD, supports_tp=False, notes=notes,
        compressed=CompressedRules(
            record=record, record_formula=f"head_dim {head} x {k.name} = {record:,} B",
            indexer=indexer, indexer_formula=f"index_head_dim {index_dim} x {k.name} = {indexer:,} B",
            rings=True, window_block=LLAMA_CPP_PAD, window_extra=LLAMA_CPP_UBATCH,
            window_extra_text=f"n_ubatch {LLAMA_CPP_UBATCH}", entry_block=LLAMA_CPP_PAD, ceil_entries=True,
            v41="llama.cpp has no DeepSeek-V4.1 architecture (not in the sources read, commit 0c1e57098; "
                "ik_llama.cpp#2455 is a fork)",
        ),
    )  # fmt: skip


PROFILE = Profile(
    name="llama.cpp", default_version="2026", low=(2024,), high=(2026,),
    described="2024 (GGUFs converted before April 2025), 2025, 2026, or a build from b8054 (e.g. b9444)", rules=rules,
    order=4,
    aliases=("llamacpp", "llama-cpp"), sources=("src/llama-kv-cache.cpp", "ggml/src/ggml-common.h"),
)  # fmt: skip
