"""What one runtime at one version stores: the typed rules every runtime profile fills in, and the small helpers
they share. The lowering (lowering.py) applies the same rules to every layer kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING, Literal

from ..options import OptionError, RuntimeRef
from ..records import record
from ..units import DType, parse_dtype

if TYPE_CHECKING:
    from ..options import Deployment
    from ..spec import LayerKind, ModelSpec, State

# How K/V heads are split over tensor-parallel ranks.
#   ceil      ceil(kv_heads / tp): every rank keeps at least one head (ideal, TensorRT-LLM)
#   divides   max(1, kv_heads // tp), and tp must divide the heads or be a multiple of them (vLLM, SGLang)
#   none      no tensor parallelism: every KV head on the one device (transformers, llama.cpp)
HeadSplit = Literal["ceil", "divides", "none"]
# How an MLA layer is stored.
#   latent    the latent and rope key, (R + r) x dt
#   latent+v  K = the latent, V = a copy of its first R values (llama.cpp April 2025 to January 2026)
#   expanded  keys and values of every head, H x (nope + r + v) x dt (transformers < 5.15, llama.cpp 2024)
MLALayout = Literal["latent", "latent+v", "expanded"]
# What a sliding-window layer keeps at context n.
#   window    min(n, W)
#   window-1  min(n, W - 1) (transformers' DynamicSlidingWindowLayer)
#   vllm      ceil(min(W - 1 + max_num_batched_tokens, n) / block) + 1 blocks (SlidingWindowSpec)
#   llama.cpp pad256(min(n, W + n_ubatch)) cells
#   full      as full attention (vLLM with the hybrid allocator off)
WindowRule = Literal["window", "window-1", "vllm", "vllm-chunk", "llama.cpp", "full"]
# How Mamba-2's B/C groups are split over tensor-parallel ranks.
#   ceil  ceil(groups / tp) per rank (groups padded to a multiple of tp: ideal, SGLang)
#   vllm  groups + (0 if groups % tp == 0 else tp - groups), then / tp (vLLM extra_groups_for_head_shards)
GroupSplit = Literal["ceil", "vllm"]
ConvColumns = Literal["k-1", "k"]

# vLLM's default max_num_batched_tokens for `vllm serve` on a GPU with >= 70 GiB other than A100
# (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults: OPENAI_API_SERVER 8192; 2048 on smaller GPUs).
VLLM_MAX_BATCHED_TOKENS = 8192
# llama.cpp: n_ubatch default 512 (common/common.h), cells padded to 256 (src/llama-kv-cache.cpp).
LLAMA_CPP_UBATCH = 512
LLAMA_CPP_PAD = 256


@record
class StateRule:
    """How a runtime keeps one kind of constant state: conv columns, dtypes, tensor-parallel split.
    `declared_dtype`: the dtype the model's config names for the recurrent state (the state's recurrent_dtype)
    wins over `recurrent_dtype` unless the user gave --state-dtype."""

    conv_columns: ConvColumns
    conv_dtype: DType
    recurrent_dtype: DType
    split_tp: bool = True
    declared_dtype: bool = False
    groups: GroupSplit = "ceil"
    floor_heads: bool = False  # heads // tp without requiring divisibility (vLLM's lightning attention)
    extra_pages: int = 0  # state pages a request holds beyond its one state (vLLM prefix caching: checkpoints)
    extra_text: str = ""  # why
    source: str = ""


@record
class CompressedRules:
    """How a runtime stores DeepSeek-V4's caches compressed along the sequence."""

    record: int  # bytes of one window token or compressed entry
    record_formula: str
    indexer: int  # bytes of one indexer key
    indexer_formula: str
    rings: bool = False  # vLLM: fp32 compressor rings per layer and request
    window_block: int = 1  # tokens per window page
    page_tokens: int = 1  # tokens covered by one compressed page
    page_align: int = 0  # pages padded to a multiple of this many bytes (0: none)
    indexer_align: int = 0  # indexer-key pages padded to a multiple of this many bytes (vLLM: 576 / 512; 0: none)
    in_progress: bool = False  # transformers: W - 1 windows, buffered tokens and overlap state
    window_extra: int = 0  # tokens a window holds beyond sliding_window (llama.cpp: n_ubatch)
    window_extra_text: str = ""
    entry_block: int = 0  # entries per compressed page whatever the ratio (llama.cpp: 256 cells); 0: page_tokens / r
    ceil_entries: bool = False  # a started group of r tokens takes a compressed entry (llama.cpp)
    ring_per_window_page: bool = False  # SGLang: ratio-4 compressor rows addressed per window page, not per request
    ring_scale: int = 1  # SGLang: rings twice as long with speculative decoding
    # the compression ratios these rules were read for: DeepSeek-V4's 4 and 128 (V4.1's ratios 1 and 2, with caches
    # shared across layers, have other records, blocks and states in every engine); () for any (ideal)
    ratios: tuple[int, ...] = (4, 128)
    v41: str = ""  # what this runtime (at this version) does with DeepSeek-V4.1, for the refusal of ratios 1 and 2
    compressed_record: int = 0  # bytes of one compressed entry when not `record` (vLLM's V4.1 NVFP4: 288)
    compressed_formula: str = ""
    ring_rows: int = 0  # V4.1 (vLLM CircularBufferSpec): rows of 2 x head_dim fp32 per ratio > 1 source; 0: V4's rings

    def page(self, entries: int, entry_bytes: int, align: int | None = None) -> int:
        """Bytes of a page of `entries`, padded to `align` (default: page_align; 0: none)."""
        raw, grain = entries * entry_bytes, self.page_align if align is None else align
        return -(-raw // grain) * grain if grain else raw


@record
class Rules:
    """What one runtime at one version stores for one model."""

    runtime: RuntimeRef
    kv: DType
    v: DType
    kv_label: str
    mla_layout: MLALayout = "latent"
    mla_record: int | None = None  # packed record bytes (vLLM fp8_ds_mla 656, nvfp4_ds_mla 352)
    indexer_bytes: int | None = None  # None: the runtime keeps no indexer cache
    indexer_formula: str = ""
    head_split: HeadSplit = "ceil"
    block: int = 1
    indexer_block: int = 1
    window_rule: WindowRule = "window"
    chunk_rule: WindowRule | None = None  # None: chunked attention refused on this runtime
    states: dict[str, StateRule] = field(default_factory=dict)  # state kind -> rule; absent: refused
    state_page_align: bool = False  # vLLM: attention page >= state page, state page padded
    cell_pad: int = 0  # llama.cpp: cells per sequence padded to this
    max_batched_tokens: int = VLLM_MAX_BATCHED_TOKENS
    in_flight_batches: int = 1  # vLLM 0.26+: windows keep the tokens of every batch in flight (async scheduling)
    state_align: int = 16  # vLLM: the attention block of hybrid models is a multiple of this
    k_eq_v_shared: bool = False  # keys that equal values stored once (ideal); engines keep K and V apart

    supports_tp: bool = True
    supports_pp: bool = True
    supports_dcp: bool = False
    mtp_note: str = ""
    notes: tuple[str, ...] = ()
    compressed: CompressedRules | None = None
    refuse_compressed: str = ""  # why this runtime has no DeepSeek-V4 rules

    def heads_per_rank(self, heads: int, tp: int) -> int:
        if self.head_split == "none":
            return heads
        if self.head_split == "divides":
            if heads % tp and tp % heads:
                raise OptionError(
                    "tp",
                    f"{self.runtime.name}: tp {tp} must divide the {heads} KV heads or be a multiple of them",
                )
            return max(1, heads // tp)
        return -(-heads // tp)

    @property
    def heads_rule(self) -> str:
        return {"ceil": "ceil(kv_heads / tp)", "divides": "max(1, kv_heads // tp)", "none": "kv_heads"}[self.head_split]

    def state_rule(self, state: State, kind: LayerKind) -> StateRule:
        rule = self.states.get(state.kind)
        if rule is None:
            from ..errors import UsageError

            raise UsageError(
                f"{self.runtime}: mla-mem has no rules for {state.kind} layers (kind {kind.name!r}) on this "
                "runtime; use --runtime ideal, or a runtime whose rules for them are known (docs/runtimes.md)"
            )
        return rule


RulesFunction = Callable[["ModelSpec", "Deployment"], Rules]


def model_dtype(text: str | None, model: ModelSpec) -> DType:
    """The cache dtype asked for, or the model's own when none (or 'auto') is given: the checkpoint's cache format
    (cache_dtype, from a kv_cache_scheme) or else the model dtype."""
    if text is None or str(text).lower() == "auto":
        return parse_dtype(model.cache_dtype or model.dtype)
    try:
        return parse_dtype(text)
    except Exception as exc:  # UsageError: unknown name
        raise OptionError("kv_dtype", str(exc)) from None


def state_dtype(deployment: Deployment, default: str) -> DType:
    try:
        return parse_dtype(deployment.state_dtype or default)
    except Exception as exc:
        raise OptionError("state_dtype", str(exc)) from None


def has_sparse_mla(model: ModelSpec) -> bool:
    """MLA with DSA indexer keys (DeepSeek-V3.2, GLM-5): the models of the packed fp8_ds_mla layout."""
    from ..spec import MLA

    return any(isinstance(k.attention, MLA) and k.indexer is not None for k in model.used_kinds())


def has_kind(model: ModelSpec, test: Callable[[LayerKind], bool]) -> bool:
    return any(test(kind) for kind in model.used_kinds())


def compute_major(deployment: Deployment, why: str, served: tuple[int, ...], served_text: str) -> int:
    """The GPU's compute capability major, where what a runtime stores depends on it: refused when it was not given
    (`why` says what depends on it) or when the rules were not read for it (`served_text`)."""
    major = deployment.sm_major
    if major is None:
        raise OptionError("compute_capability", f"{deployment.runtime}: {why}; give --compute-capability (10.0 for "
                          "B200, 9.0 for H100 and H200; fit also takes --gpu)")  # fmt: skip
    if major not in served:
        raise OptionError("compute_capability", f"{deployment.runtime}: {served_text}, not "
                          f"{deployment.compute_capability}")  # fmt: skip
    return major
