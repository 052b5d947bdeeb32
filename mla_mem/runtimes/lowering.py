"""The lowering: a model's layer kinds + a runtime's rules -> the cache streams each GPU holds (cache.Plan).

One function per kind of cache, each applying the runtime's Rules (rules.py):

  lower_kv          keys and values per KV head (MHA/GQA/MQA), split over tp by the runtime's head rule
  lower_mla         the MLA latent: latent, latent + V or expanded per head; replicated on every tp rank
  bounded           what a sliding window or a chunk keeps, by the runtime's window rule
  lower_indexer     DSA indexer keys (replicated on every tp rank)
  lower_state       a constant state per sequence: conv columns + recurrent state, split over tp
  lower_compressed  DeepSeek-V4: window, entries compressed along the sequence, indexer keys, compressor state

`lower` walks the layer kinds, applies the vLLM page alignment of hybrid models, merges identical streams and
cuts the pipeline stages. Nothing else in mla-mem looks inside a layer kind.
"""

from __future__ import annotations

from dataclasses import replace

from ..cache import CacheStream, Plan
from ..errors import UsageError
from ..options import Deployment, OptionError
from ..spec import (
    MLA,
    Attention,
    Compressed,
    GatedDeltaNet,
    LayerKind,
    Lightning,
    Mamba1,
    Mamba2,
    ModelSpec,
    State,
)
from ..units import parse_dtype
from .rules import LLAMA_CPP_UBATCH, Rules, StateRule

ATTENTION, INDEXER, STATE = 0, 1, 2


def _fmt(n: int) -> str:
    return f"{n:,}"


# ---------------------------------------------------------------------------------------------------------
# Attention entries: bytes per token per layer on one rank


def kv_entry(attention: Attention, rules: Rules, tp: int) -> tuple[int, str]:
    """Keys and values of the KV heads this rank holds."""
    heads = rules.heads_per_rank(attention.kv_heads, tp)
    if attention.k_eq_v and rules.k_eq_v_shared:
        entry = rules.kv.row_bytes(heads * attention.head_dim)
        dims = f"head_dim {attention.head_dim} x {rules.kv.width_text()} ({rules.kv.name}), K = V"
    else:
        entry = rules.kv.row_bytes(heads * attention.head_dim) + rules.v.row_bytes(heads * attention.v_head_dim)
        if attention.v_head_dim != attention.head_dim or rules.kv.name != rules.v.name:
            dims = f"(K {attention.head_dim} x {rules.kv.name} + V {attention.v_head_dim} x {rules.v.name})"
        else:
            dims = f"2 x head_dim {attention.head_dim} x {rules.kv.width_text()} ({rules.kv.name})"
    split = f" [{rules.heads_rule}, tp {tp}]" if tp > 1 else ""
    return entry, f"{heads} KV heads{split} x {dims} = {_fmt(entry)} B per token per layer"


def mla_entry(attention: MLA, rules: Rules, tp: int) -> tuple[int, str]:
    """One MLA layer as the runtime stores it (DeepSeek-V2 paper: the latent is (R + r) values per token)."""
    latent = attention.latent_dim
    if rules.mla_record is not None:
        entry = rules.mla_record
        formula = f"{rules.kv_label} record: {entry} B per token per layer"
    elif rules.mla_layout == "expanded":
        k = rules.kv.row_bytes(attention.heads * (attention.qk_nope_head_dim + attention.qk_rope_head_dim))
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
    return entry, formula


def attention_entry(kind: LayerKind, rules: Rules, tp: int) -> tuple[int, str, str, str]:
    """(bytes per token per layer, formula, description, component name) of a kind's attention."""
    attention = kind.attention
    if isinstance(attention, MLA):
        entry, formula = mla_entry(attention, rules, tp)
        bounded_kind = kind.window is not None or kind.chunk is not None
        name = f"{kind.name}_mla_latent" if bounded_kind else "mla_latent"
        description = "MLA latent"
    else:
        assert isinstance(attention, Attention)
        entry, formula = kv_entry(attention, rules, tp)
        name = f"{kind.name}_kv"
        description = "keys and values"
    if kind.attention_blocks > 1:
        entry *= kind.attention_blocks
        formula = f"{kind.attention_blocks} attention blocks x {formula.replace(' per token per layer', '')} = " \
                  f"{_fmt(entry)} B per token per layer"  # fmt: skip
    return entry, formula, description, name


def bounded(
    kind: LayerKind, rules: Rules, block: int, text: str, max_context: int | None
) -> tuple[int | None, int, str, int]:
    """(tokens kept, extra blocks, formula, block) for a sliding window or a chunk under the runtime's rule."""
    limit = kind.window if kind.window is not None else kind.chunk
    if limit is None:
        return None, 0, text, block
    what = "sliding_window" if kind.window is not None else "attention chunk"
    if max_context is not None and limit >= max_context:
        return None, 0, text + f"; {what} {_fmt(limit)} >= the model's maximum context: full attention", block
    rule = rules.window_rule if kind.window is not None else rules.chunk_rule
    if rule is None:
        raise UsageError(
            f"{rules.runtime}: mla-mem has no rules for chunked attention (kind {kind.name!r}) on this runtime; "
            "use --runtime ideal or one whose rules are known (docs/runtimes.md)"
        )
    if rule == "full":
        return None, 0, text + f"; the {what} layer is kept whole, as full attention", block
    if rule == "window-1":
        return limit - 1, 0, text + f", keeps the last {what} - 1 = {_fmt(limit - 1)} tokens", block
    in_flight = rules.max_batched_tokens * rules.in_flight_batches
    flight = f"max_num_batched_tokens {_fmt(rules.max_batched_tokens)}" + (
        f" x {rules.in_flight_batches} batches in flight" if rules.in_flight_batches > 1 else ""
    )
    if rule == "vllm":
        # vllm/v1/kv_cache_interface.py SlidingWindowSpec.max_memory_usage_bytes:
        # cdiv(min(W - 1 + in-flight tokens, max_model_len), block) + 1 blocks (in flight: max_num_batched_tokens,
        # from 0.26 max_concurrent_batches x max_num_batched_tokens)
        text += f", holds ceil(min(W - 1 + {flight}, n) / {block}) + 1 blocks (never more than n needs)"
        return limit - 1 + in_flight, 1, text, block
    if rule == "vllm-chunk":
        # vllm/v1/kv_cache_interface.py ChunkedLocalAttentionSpec.max_memory_usage_bytes:
        # cdiv(min(attention_chunk_size + in-flight tokens, max_model_len), block) blocks, no + 1
        text += f", holds ceil(min(chunk + {flight}, n) / {block}) blocks"
        return limit + in_flight, 0, text, block

    if rule == "llama.cpp":
        pad = rules.cell_pad
        return (
            limit + LLAMA_CPP_UBATCH,
            0,
            text + f", holds pad{pad}(min(n, window + n_ubatch {LLAMA_CPP_UBATCH})) cells",
            block,
        )
    return limit, 0, text + f", at most {what} {_fmt(limit)} tokens", block


def lower_attention(
    model: ModelSpec, kind: LayerKind, layers: tuple[int, ...], rules: Rules, deployment: Deployment, block: int,
    mtp: bool,
) -> CacheStream:  # fmt: skip
    entry, formula, description, name = attention_entry(kind, rules, deployment.attention_tp)
    window, extra, formula, block = bounded(kind, rules, block, formula, model.max_context)
    if rules.cell_pad:
        block = max(rules.cell_pad, block)
    if block > 1:
        formula += f"; paged in blocks of {block} tokens"
    if window is not None:
        description += " (sliding)" if kind.window is not None else " (chunked)"
    key_bytes = 0
    if isinstance(kind.attention, Attention) and not (kind.attention.k_eq_v and rules.k_eq_v_shared):
        heads = rules.heads_per_rank(kind.attention.kv_heads, deployment.attention_tp)
        key_bytes = rules.kv.row_bytes(heads * kind.attention.head_dim) * kind.attention_blocks
    return CacheStream(
        component="mtp" if mtp else name, layers=layers, entry_bytes=entry, window=window, block=block,
        extra_blocks=extra, description=description, formula=formula, token_shards=deployment.dcp,
        kind=kind.name, order=ATTENTION, key_bytes=key_bytes,
    )  # fmt: skip


def lower_indexer(
    kind: LayerKind, layers: tuple[int, ...], rules: Rules, deployment: Deployment, mtp: bool
) -> CacheStream | None:
    if rules.indexer_bytes is None:
        return None
    block = max(rules.indexer_block, rules.cell_pad) if rules.cell_pad else rules.indexer_block
    text = f"{rules.indexer_formula} = {rules.indexer_bytes} B per token per layer"
    if deployment.attention_tp > 1:
        text += f", on every GPU (not split by tp {deployment.attention_tp})"
    if block > 1:
        text += f"; paged in blocks of {block} tokens"
    return CacheStream(
        "mtp_indexer" if mtp else "indexer", layers, rules.indexer_bytes, block=block,
        description="DSA indexer keys" + (" (MTP)" if mtp else ""), formula=text, token_shards=deployment.dcp,
        kind=kind.name, order=INDEXER,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Constant states


def state_component(state: State) -> str:
    if isinstance(state, (Mamba1, Mamba2)):
        return "mamba_state"
    if state.kind == "short_conv":
        return "conv_state"
    return "linear_state"


def _tp_split(state: State, tp: int, kind: LayerKind, rule: StateRule) -> tuple[int, int, str]:
    """(conv channels, recurrent values) on one rank, and the formula's split text. Heads split evenly (vLLM's
    lightning attention floors); Mamba-2's B/C groups by the runtime's group rule."""
    if tp == 1:
        return state.conv_channels, state.recurrent_values, ""

    def need(what: str, count: int) -> None:
        if count % tp:
            raise OptionError("tp", f"{tp} must divide the {what} ({count}) of kind {kind.name!r}")

    if isinstance(state, GatedDeltaNet):
        need("key heads", state.key_heads)
        need("value heads", state.value_heads)
    elif isinstance(state, Mamba2):
        need("Mamba-2 heads", state.heads)
        if rule.groups == "vllm":
            # vllm/model_executor/layers/mamba/mamba_utils.py extra_groups_for_head_shards
            padded = state.groups + (0 if state.groups % tp == 0 else tp - state.groups)
            if padded < 1 or padded % tp:
                raise OptionError("tp", f"{tp} cannot split the Mamba-2 groups ({state.groups}) of kind {kind.name!r}")
            groups = padded // tp
        else:
            groups = -(-state.groups // tp)
        conv = state.d_inner // tp + 2 * groups * state.d_state
        return conv, state.recurrent_values // tp, f" / tp {tp} (groups {groups} per rank)"
    elif isinstance(state, Mamba1):
        need("Mamba d_inner", state.d_inner)
    elif isinstance(state, Lightning):
        if rule.floor_heads:
            heads = state.heads // tp
            if heads < 1:
                raise OptionError("tp", f"{tp} is more than the lightning heads ({state.heads}) of kind {kind.name!r}")
            return 0, heads * state.head_dim * state.head_dim, f" [heads // tp {tp}]"
        need("lightning heads", state.heads)
    else:
        need("short-conv channels", state.channels)
    return state.conv_channels // tp, state.recurrent_values // tp, f" / tp {tp}"


def state_bytes(state: State, kind: LayerKind, rules: Rules, deployment: Deployment) -> tuple[int, str]:
    """Bytes of one layer's state for one sequence on one rank, and the formula."""
    rule = rules.state_rule(state, kind)
    tp = deployment.attention_tp if rules.supports_tp and rule.split_tp else 1
    conv_channels, recurrent, by_tp = _tp_split(state, tp, kind, rule)
    columns = state.conv_kernel - 1 if rule.conv_columns == "k-1" else state.conv_kernel
    recurrent_dtype = rule.recurrent_dtype
    declared = getattr(state, "recurrent_dtype", None)
    if rule.declared_dtype and declared and deployment.state_dtype is None:
        recurrent_dtype = parse_dtype(declared)
    parts = []
    total = 0
    if conv_channels:
        conv = rule.conv_dtype.row_bytes(columns * conv_channels)
        total += conv
        parts.append(f"conv {columns} x conv_dim {_fmt(state.conv_channels)}{by_tp} x {rule.conv_dtype.name}")
    if recurrent:
        total += recurrent_dtype.row_bytes(recurrent)
        parts.append(f"{_recurrent_text(state)}{by_tp} x {recurrent_dtype.name}")

    return total, " + ".join(parts) + f" = {_fmt(total)} B per sequence per layer"


def _recurrent_text(state: State) -> str:
    if isinstance(state, GatedDeltaNet):
        return f"recurrent {state.value_heads} x {state.key_head_dim} x {state.value_head_dim}"
    if isinstance(state, Mamba1):
        return f"ssm {state.d_inner} x {state.d_state}"
    if isinstance(state, Mamba2):
        return f"ssm {state.heads} x {state.head_dim} x {state.d_state}"
    if isinstance(state, Lightning):
        return f"kv state {state.heads} x {state.head_dim} x {state.head_dim}"
    return "none"


def lower_state(
    kind: LayerKind, layers: tuple[int, ...], rules: Rules, deployment: Deployment, page_block: int | None,
    attention_entry_bytes: int,
) -> CacheStream:  # fmt: skip
    assert kind.state is not None
    state, formula = state_bytes(kind.state, kind, rules, deployment)
    page = state
    if page_block is not None:
        page = page_block * attention_entry_bytes
        formula += f", page padded to attention block {page_block} x {_fmt(attention_entry_bytes)} B = {_fmt(page)} B"
    rule = rules.state_rule(kind.state, kind)
    if rule.extra_pages:
        formula += f"; {1 + rule.extra_pages} pages per request ({rule.extra_text})"
    return CacheStream(
        state_component(kind.state), layers, state, tokens_per_entry=0, page_bytes=page, extra_blocks=rule.extra_pages,
        description=f"{kind.state.kind} state", formula=formula, kind=kind.name, order=STATE,
    )  # fmt: skip


def aligned_block(model: ModelSpec, rules: Rules, deployment: Deployment) -> tuple[int, int] | None:
    """vLLM's hybrid page rule: (attention block, attention bytes per token per layer) such that one attention page
    holds the largest state page (vllm/model_executor/models/config.py HybridAttentionMambaModelConfig up to 0.19,
    platforms/interface.py _align_hybrid_block_size from 0.20: block = align x ceil(state / (align x attention
    bytes per token)), align from the runtime's rules). None when the model has no state or no attention layers."""
    kinds = model.used_kinds()
    states = [k for k in kinds if k.state is not None]
    attention = [k for k in kinds if k.attention is not None and not isinstance(k.attention, Compressed)]
    if not states or not attention:
        return None
    entry = attention_entry(attention[0], rules, deployment.attention_tp)[0]
    largest = max(state_bytes(k.state, k, rules, deployment)[0] for k in states if k.state is not None)
    align = rules.state_align
    raised = align * -(-largest // (align * entry))

    block = raised if deployment.block_size is None or deployment.block_size < raised else deployment.block_size
    return block, entry


# ---------------------------------------------------------------------------------------------------------
# DeepSeek-V4: caches compressed along the sequence


def lower_compressed(kind: LayerKind, layers: tuple[int, ...], rules: Rules, mtp: bool) -> list[CacheStream]:
    """Per layer a window of the last W tokens, one entry per r tokens on compressed kinds, indexer keys where the
    kind has them, and (runtime-owned) compressor state; all replicated on every TP rank (one KV head)."""
    v4 = rules.compressed
    if v4 is None:
        raise UsageError(rules.refuse_compressed or f"{rules.runtime}: no DeepSeek-V4 (compressed attention) rules")
    attention = kind.attention
    assert isinstance(attention, Compressed) and kind.window is not None
    if v4.in_progress:
        if mtp:
            raise OptionError("mtp", f"{rules.runtime}: builds no MTP layers for DeepSeek-V4; drop mtp")
        return _in_progress_streams(kind, layers, v4.record, v4.indexer, v4.record_formula, v4.indexer_formula)
    window = kind.window + v4.window_extra
    held = f"sliding_window {kind.window} + {v4.window_extra_text}" if v4.window_extra else f"sliding_window {window}"
    streams = [
        CacheStream(
            "window", layers, v4.record, window=window, block=v4.window_block,
            page_bytes=v4.page(v4.window_block, v4.record), description="window cache",
            formula=f"{v4.record_formula} per token, last {held} tokens"
            + (f"; {v4.window_block}-token blocks" if v4.window_block > 1 else "")
            + (f" padded to {v4.page_align} B multiples" if v4.page_align else ""),
            kind=kind.name, order=ATTENTION,
        )
    ]  # fmt: skip
    ratio = kind.compress_ratio
    if not ratio:
        return streams
    per_page = v4.entry_block or max(1, v4.page_tokens // ratio)
    entry = v4.compressed_record or v4.record
    page = v4.page(per_page, entry)
    started = " (a started group counts)" if v4.ceil_entries else ""
    every = "token" if ratio == 1 else f"{ratio} tokens"
    text = f"one {entry} B entry per {every}{started} ({v4.compressed_formula or v4.record_formula})"
    if per_page > 1 or v4.page_align:
        text += f"; pages of {per_page} entries = {page:,} B"
    streams.append(CacheStream(
        f"compressed_{kind.name}", layers, entry, tokens_per_entry=ratio, block=per_page, page_bytes=page,
        description=f"{kind.name} compressed entries", formula=text, kind=kind.name, order=ATTENTION,
        ceil_entries=v4.ceil_entries,
    ))  # fmt: skip
    if kind.indexer is not None and v4.indexer:
        raw, index_page = per_page * v4.indexer, v4.page(per_page, v4.indexer, v4.indexer_align)
        pages = f"; pages of {per_page} entries" if per_page > 1 else ""
        if v4.indexer_align:
            padded = f" padded to {index_page:,} B (a multiple of {v4.indexer_align} B)" if index_page != raw else ""
            pages += f" = {raw:,} B{padded}"
        else:
            index_page = 0  # unpadded: the stream's own block x entry bytes
        streams.append(CacheStream(
            "indexer", layers, v4.indexer, tokens_per_entry=ratio, block=per_page, page_bytes=index_page,
            description="Lightning Indexer keys", formula=f"{v4.indexer_formula} per {every}{started}{pages}",
            kind=kind.name, order=ATTENTION, ceil_entries=v4.ceil_entries,
        ))  # fmt: skip
    if v4.rings and v4.ring_rows:  # V4.1: a CircularBufferSpec per source of ratio > 1, one page per request
        if ratio > 1:
            row = 2 * attention.head_dim * 4
            streams.append(CacheStream(
                f"compressor_state_r{ratio}", layers, v4.ring_rows * row, tokens_per_entry=0,
                description="compressor ring (fp32)", kind=kind.name, order=STATE,
                formula=f"{v4.ring_rows * row:,} B per sequence per layer ({v4.ring_rows} fp32 rows of kv + score, "
                        f"2 x {attention.head_dim} x 4 = {row:,} B)",
            ))  # fmt: skip
    elif v4.rings:
        ring, ring_text = _compressor_rings(kind, attention)
        ring *= v4.ring_scale
        if v4.ring_scale > 1:
            ring_text = f"{v4.ring_scale} x ({ring_text}), speculative decoding"
        if v4.ring_per_window_page and ratio == 4:
            # SGLang: the rows sit beside each window page (state_loc = swa_page x ring + swa_loc mod ring)
            streams.append(CacheStream(
                f"compressor_state_r{ratio}", layers, ring, tokens_per_entry=v4.window_block, window=window,
                ceil_entries=True, description="compressor rows (fp32) per window page",
                formula=f"{ring:,} B per window page per layer ({ring_text})", kind=kind.name, order=STATE,
            ))  # fmt: skip
        else:
            streams.append(CacheStream(
                f"compressor_state_r{ratio}", layers, ring, tokens_per_entry=0, description="compressor rings (fp32)",
                formula=f"{ring:,} B per sequence per layer ({ring_text})", kind=kind.name, order=STATE,
            ))  # fmt: skip
    return streams


def _compressor_rings(kind: LayerKind, attention: Compressed) -> tuple[int, str]:
    """vLLM 0.33's fp32 compressor state per layer (vllm/model_executor/models/deepseek_v4/): kv and gate rows of
    the unfinished windows. Overlapping (csa, with indexer keys) compressors keep 2 x ratio rows of two series
    (8 x 8,192 B at ratio 4) plus an indexer ring of 8 x 2,048 B; the others ratio rows of one series (128 x
    4,096 B at ratio 128)."""
    ratio = kind.compress_ratio
    series = 2 if kind.indexer is not None else 1
    rows = series * ratio
    row = series * attention.head_dim * 2 * 4  # kv + gate, fp32
    ring = rows * row
    text = f"{rows} fp32 rows of {row:,} B"
    if kind.indexer is not None:
        index_row = series * kind.indexer.head_dim * 2 * 4
        ring += rows * index_row
        text += f" + an indexer ring of {rows} x {index_row:,} B"
    return ring, text


def _in_progress_streams(
    kind: LayerKind, layers: tuple[int, ...], record: int, idx: int, record_formula: str, indexer_formula: str
) -> list[CacheStream]:
    """transformers 5.24's DeepSeek-V4 cache (modeling_deepseek_v4.py DeepseekV4CSACache / DeepseekV4HCACache,
    measured by tests/crosscheck): window-only layers are plain sliding layers (K and V apart, last W - 1 tokens);
    compressed layers keep one shared K=V window of W - 1 tokens, the compressed entries, the tokens of the
    unfinished window (kv and gate projections; overlapping compressors (csa) project two series, for the
    compressor and the indexer) and, once a window has closed, the previous window's overlap slice (kv in the
    cache dtype, gate in fp32)."""
    attention = kind.attention
    assert isinstance(attention, Compressed) and kind.window is not None
    d, window = attention.head_dim, kind.window
    dt = record // d  # bytes per element of the cache dtype
    if not kind.compress_ratio:
        return [CacheStream(
            "window_kv", layers, 2 * record, window=window - 1, description="window (keys and values)",
            formula=f"K and V {d} x {dt} B each = {2 * record:,} B per token, last W - 1 tokens", kind=kind.name,
        )]  # fmt: skip
    ratio = kind.compress_ratio
    overlapping = kind.indexer is not None
    index_dim = kind.indexer.head_dim if kind.indexer is not None else 0
    streams = [
        CacheStream(
            "window", layers, record, window=window - 1, description="window (shared K=V)",
            formula=f"{record_formula} per token (K and V share storage), last W - 1 tokens", kind=kind.name,
        ),
        CacheStream(
            f"compressed_{kind.name}", layers, record, tokens_per_entry=ratio,
            description=f"{kind.name} compressed entries", formula=f"one {record:,} B entry per {ratio} tokens",
            kind=kind.name,
        ),
    ]  # fmt: skip
    series = 2 if overlapping else 1
    width = series * d + series * index_dim
    buffer = 2 * width * dt  # kv and gate projections of each waiting token
    streams.append(CacheStream(
        f"buffer_{kind.name}", layers, buffer, remainder_of=ratio, description=f"{kind.name} tokens waiting for a full window",
        formula=f"(n mod {ratio}) tokens x kv + gate ({width} each) x {dt} B = {buffer:,} B per waiting token",
        kind=kind.name, order=STATE,
    ))  # fmt: skip
    if overlapping:
        if idx:
            streams.append(CacheStream(
                "indexer", layers, idx, tokens_per_entry=ratio, description="Lightning Indexer keys",
                formula=f"{indexer_formula} per {ratio} tokens", kind=kind.name, order=INDEXER,
            ))  # fmt: skip
        overlap = ratio * (d + index_dim) * (dt + 4)  # kv in the cache dtype, gate in fp32
        streams.append(CacheStream(
            f"overlap_{kind.name}", layers, overlap, tokens_per_entry=0, min_tokens=ratio,
            description="previous window's overlap slice",
            formula=f"{ratio} x ({d} + {index_dim}) x ({dt} B kv + 4 B fp32 gate) = {overlap:,} B once a window has closed",
            kind=kind.name, order=STATE,
        ))  # fmt: skip
    return streams


# ---------------------------------------------------------------------------------------------------------
# The plan


def lower_kind(
    model: ModelSpec, kind: LayerKind, layers: tuple[int, ...], rules: Rules, deployment: Deployment,
    block: int, alignment: tuple[int, int] | None, mtp: bool,
) -> list[CacheStream]:  # fmt: skip
    streams: list[CacheStream] = []
    if isinstance(kind.attention, Compressed):
        streams += lower_compressed(kind, layers, rules, mtp)
    elif kind.attention is not None:
        streams.append(lower_attention(model, kind, layers, rules, deployment, block, mtp))
        if kind.indexer is not None:
            indexer = lower_indexer(kind, layers, rules, deployment, mtp)
            if indexer is not None:
                streams.append(indexer)
    if kind.state is not None:
        page_block, entry = alignment if alignment is not None else (None, 0)
        streams.append(lower_state(kind, layers, rules, deployment, page_block, entry))
    return streams


def merge(streams: list[CacheStream]) -> list[CacheStream]:
    """One stream per component: identical streams of several kinds become one; streams that share a name but
    differ are told apart by their kind's name."""
    merged: list[CacheStream] = []
    for stream in streams:
        for index, seen in enumerate(merged):
            if seen.component == stream.component and replace(seen, layers=(), kind="") == replace(
                stream, layers=(), kind=""
            ):
                merged[index] = replace(seen, layers=tuple(sorted(seen.layers + stream.layers)))
                break
        else:
            merged.append(stream)
    names = [s.component for s in merged]
    out = []
    for stream in merged:
        if names.count(stream.component) > 1 and not stream.component.startswith(stream.kind):
            stream = replace(stream, component=f"{stream.kind}_{stream.component}")
        out.append(stream)
    return sorted(out, key=lambda s: s.order)


def pipeline_stages(layers: int, pp: int) -> tuple[tuple[int, int], ...]:
    """Layer ranges per pipeline stage, as vLLM partitions them (vllm/distributed/utils.py get_pp_indices):
    L // pp layers each, the remainder given one each to the stages before the last, from the end."""
    sizes = [layers // pp] * pp
    for i in range(2, layers % pp + 2):
        sizes[-i] += 1
    return _ranges(sizes)


def _ranges(sizes: list[int] | tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    stages = []
    start = 0
    for count in sizes:
        stages.append((start, start + count))
        start += count
    return tuple(stages)


def stages_for(model: ModelSpec, deployment: Deployment, mtp_layers: int) -> tuple[tuple[int, int], ...]:
    total = model.layers + mtp_layers
    if deployment.pp > total:
        raise OptionError("pp", f"{deployment.pp} is more than the model's {total} layers")
    if deployment.pp_layers is None:
        return pipeline_stages(total, deployment.pp)
    if sum(deployment.pp_layers) != model.layers:
        raise OptionError(
            "pp_layers", f"the stages hold {sum(deployment.pp_layers)} layers; the model has {model.layers}"
        )
    sizes = list(deployment.pp_layers)
    sizes[-1] += mtp_layers  # MTP layers run on the last stage
    return _ranges(sizes)


def check_ratios(model: ModelSpec, rules: Rules) -> None:
    """Compression ratios the runtime's rules were not read for are refused before any kind is lowered."""
    if rules.compressed is None:  # no DeepSeek-V4 rules at all: lower_compressed says why
        return
    ratios = rules.compressed.ratios
    bad = next((k for k in model.used_kinds() if k.compress_ratio and ratios and k.compress_ratio not in ratios), None)
    if bad is not None:
        v41 = rules.compressed.v41 if bad.compress_ratio in (1, 2) else ""
        if v41:
            raise UsageError(f"{rules.runtime}: DeepSeek-V4.1's compress_ratio {bad.compress_ratio} (layer kind "
                             f"{bad.name}) is not modelled for this runtime: {v41}; use runtime ideal")  # fmt: skip
        raise UsageError(f"{rules.runtime}: compress_ratio {bad.compress_ratio} (layer kind {bad.name}) is not "
                         f"modelled for this runtime, whose DeepSeek-V4 rules cover ratios "
                         f"{' and '.join(map(str, ratios))}; use runtime ideal")  # fmt: skip


def plan(model: ModelSpec, deployment: Deployment, rules: Rules) -> Plan:
    """Apply `rules` to every layer kind of `model`."""
    check_ratios(model, rules)
    mtp_layers = model.mtp_layers if deployment.mtp else 0
    alignment = aligned_block(model, rules, deployment) if rules.state_page_align else None
    block = alignment[0] if alignment is not None else rules.block
    streams: list[CacheStream] = []
    for kind in model.used_kinds():
        streams += lower_kind(model, kind, model.layers_of(kind.name), rules, deployment, block, alignment, mtp=False)
    mtp_kind = model.mtp_layer_kind if mtp_layers else None
    if mtp_kind is not None:
        layers = tuple(range(model.layers, model.layers + mtp_layers))
        streams += lower_kind(model, mtp_kind, layers, rules, deployment, block, alignment, mtp=model.mtp_kind is None)
    merged = merge(streams)
    paged = [s.block for s in merged if s.order == ATTENTION and s.tokens_per_entry == 1] or [block]
    notes = list(rules.notes)
    if rules.mtp_note and mtp_layers:
        notes.append(rules.mtp_note)
    return Plan(
        model=model, runtime=rules.runtime, deployment=deployment, kv_dtype=rules.kv_label,
        block_size=max(max(paged), rules.cell_pad or 1), streams=tuple(merged),
        stages=stages_for(model, deployment, mtp_layers), notes=tuple(notes),
    )  # fmt: skip
