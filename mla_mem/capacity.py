"""What an engine does with the memory it gives its cache: blocks, token capacity, concurrency, and the lines it logs.

Input: a model lowered for the engine (a Plan: per-GPU streams, pipeline stages) and the bytes of cache memory per
GPU (vLLM's "Available KV cache memory", `--kv-cache-memory`; SGLang's rest memory; TensorRT-LLM's
max_gpu_total_bytes). Output: the engine's own arithmetic, to the digit it prints. Sources per engine below, with the
versions where a rule changed (docs/capacity.md has the walk-through).
"""

from __future__ import annotations

import math
from dataclasses import field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .records import record

if TYPE_CHECKING:
    from .cache import CacheStream, Plan

GIB = 2**30


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@record
class EngineCapacity:
    """What an engine makes of the cache memory it is given: its token capacity as it logs it, blocks, concurrency."""

    engine: str
    cache_memory: int  # bytes per GPU the engine gives its cache
    tokens: int  # the token capacity as the engine counts and logs it
    block_size: int
    blocks: int | None = None
    blocks_per_request: int | None = None
    concurrency: Fraction | None = None  # requests of `context` tokens one GPU group holds
    needed: int | None = None  # bytes one request of `context` tokens needs (vLLM's start-up check)
    check: int | None = None  # the memory `needed` is held against (vLLM 0.29+: one null block less)
    bytes_per_block: int | None = None  # vLLM: one block id on one worker, every layer (what offloading prices)
    cell: int | None = None  # SGLang: bytes of one token over the GPU's layers
    uniform: bool = False  # one group of full-attention layers: a request needs cdiv(L, block) blocks
    # SGLang's DeepSeek-V4/V4.1 full pool: the tokens every running request's compressed pages come out of, page by
    # page, whatever the bytes a request would take on its own (the window pool and rings are reserved first)
    pool_tokens: int | None = None
    lines: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------------------------
# vLLM (v1 engine). vllm/v1/core/kv_cache_utils.py (0.11-0.28), vllm/v1/core/kv_cache_planning.py (0.29+),
# vllm/v1/kv_cache_interface.py (max_memory_usage_bytes per spec).


@record
class _Spec:
    """One vLLM layer type on one pipeline stage: how many layers, the page of one layer, its block, and what bounds
    a request's tokens (a window or chunk of in-flight tokens included; state pages)."""

    kind: str  # full | sliding | chunked | state
    layers: int
    page: int
    block: int
    window: int | None = None
    state_pages: int = 1

    def request_blocks(self, tokens: int, context: int, block: int) -> int:
        """Blocks one request of `context` tokens (`tokens` on this rank) needs: max_memory_usage_bytes / page."""
        if self.kind == "full":
            return _cdiv(tokens, block)
        if self.kind == "sliding":  # SlidingWindowSpec: cdiv(min(W - 1 + in flight, L), block) + 1
            assert self.window is not None
            return _cdiv(min(self.window, context), block) + 1
        if self.kind == "chunked":  # ChunkedLocalAttentionSpec: cdiv(min(chunk + in flight, L), block), no + 1
            assert self.window is not None
            return _cdiv(min(self.window, context), block)
        return self.state_pages  # MambaSpec: one state page, + the pages prefix caching keeps


def _vllm_specs(plan: Plan, stage: int) -> list[_Spec] | None:
    """The stage's layers as vLLM's KV cache specs, or None for what this module does not model (DeepSeek-V4)."""
    model = plan.model
    merged: dict[tuple[str, str], list[tuple[CacheStream, int]]] = {}
    for stream, count in plan.stage_streams(stage):
        if stream.tokens_per_entry > 1 or stream.remainder_of or stream.min_tokens:
            return None  # compressed along the sequence: DeepSeek-V4's own planner
        if stream.is_state:
            kind = "state"
        elif stream.window is None:
            kind = "full"
        else:
            kind = "chunked" if model.kind(stream.kind).chunk is not None else "sliding"
        # a layer's MLA latent and its indexer keys are one UniformTypeKVCacheSpecs (pages added up)
        merged.setdefault((kind, stream.kind), []).append((stream, count))
    specs = []
    for (kind, _), streams in merged.items():
        counts = {count for _, count in streams}
        if len(counts) != 1 and kind == "full":
            # latents on every layer, indexer keys on some (GLM index_topk_pattern): still one set of token slots,
            # one UniformTypeKVCacheSpecs group whose block bytes add up over the layers
            specs += [_Spec(kind, count, stream.page, stream.block, stream.window, 1 + stream.extra_blocks)
                      for stream, count in streams]  # fmt: skip
            continue
        if len(counts) != 1:
            return None
        first = streams[0][0]
        specs.append(_Spec(kind, counts.pop(), sum(stream.page for stream, _ in streams), first.block, first.window,
                           1 + first.extra_blocks))  # fmt: skip
    return specs


def _group_size(counts: list[int], version: tuple[int, ...]) -> int:
    """_get_kv_cache_groups_uniform_page_size: the smallest layer count, or the largest when it is within 1.25x
    (0.12-0.17) or 1.5x (0.18+) of the smallest (padding layers are cheaper than more groups)."""
    low, high = min(counts), max(counts)
    factor = Fraction(3, 2) if version >= (0, 18) else Fraction(5, 4) if version >= (0, 12) else None
    return high if factor is not None and high < low * factor else low


@record
class _Planned:
    """vLLM's block planning for one model: bytes per block, KV-cache groups and the blocks a request needs."""

    bytes_per_block: int
    groups: int
    request_blocks: int
    min_block: int
    padding_layers: int
    old_request_blocks: int = 0  # 0.20.1-0.26 concurrency divisor when it differs (pages of unequal groups)
    needed_per_page: int = 0  # bytes "needed" per page when it is not bytes_per_block (DeepSeek-V4 before 0.29)

    @property
    def needed(self) -> int:
        return (self.needed_per_page or self.bytes_per_block) * self.request_blocks


def _vllm_plan(specs: list[_Spec], version: tuple[int, ...], tokens: int, context: int) -> _Planned | None:
    kinds = {s.kind for s in specs}
    if kinds == {"full"}:  # one type (UniformTypeKVCacheSpecs when pages differ): a block holds every layer's page
        block = specs[0].block
        if any(s.block != block for s in specs):
            return None
        return _Planned(sum(s.page * s.layers for s in specs), 1, _cdiv(tokens, block), block, 0)
    page = max(s.page for s in specs)
    size = _group_size([s.layers for s in specs], version)
    groups = request = padding = 0
    blocks = []
    for spec in specs:
        block = spec.block
        if spec.kind != "state":
            if page % spec.page:
                return None  # vLLM refuses pages that do not divide (NotImplementedError)
            # unify_kv_cache_spec_page_size: a smaller attention page grows its block until the pages are equal
            block = spec.block * (page // spec.page)
            blocks.append(block)
        n = _cdiv(spec.layers, size)
        groups += n
        padding += n * size - spec.layers
        request += n * spec.request_blocks(tokens, context, block)
    return _Planned(page * size, groups, request, min(blocks), padding)


def vllm_capacity(
    plan: Plan, cache_memory: int, context: int, override_blocks: int | None = None
) -> EngineCapacity | None:
    """vLLM's num_blocks, "GPU KV cache size" and "Maximum concurrency" for `context` (= max_model_len), or None for
    layouts it plans otherwise (DeepSeek-V4 outside 0.20-0.28)."""
    version = plan.runtime.numbers

    def planned_for(length: int) -> _Planned | None:
        tokens = _cdiv(length, plan.dcp)
        worst: _Planned | None = None
        for stage in range(len(plan.stages)):
            specs = _vllm_specs(plan, stage)
            planned = _vllm_plan(specs, version, tokens, length) if specs else None
            if planned is None:
                return _v4_planned(plan, length)
            if worst is None or planned.bytes_per_block > worst.bytes_per_block:
                worst = planned  # the engine keeps the minimum blocks over ranks (get_kv_cache_configs)
        return worst

    planned = planned_for(context)
    if planned is None:
        return None
    blocks = cache_memory // planned.bytes_per_block
    notes = []
    if override_blocks is not None:
        notes.append(f"vllm: num_gpu_blocks_override {override_blocks:,} replaces {blocks:,} blocks")
        blocks = override_blocks
        if version >= (0, 20, 1):
            cache_memory = override_blocks * planned.bytes_per_block
    if planned.padding_layers:
        notes.append(f"vllm: {planned.padding_layers} padding layers in the hybrid groups take memory too")
    per_request = planned.request_blocks if version >= (0, 27) else planned.old_request_blocks or planned.request_blocks
    concurrency = Fraction(blocks, per_request)
    if version >= (0, 20, 1):
        capacity = int(concurrency * context)  # int(max_concurrency * max_model_len)
    else:
        capacity = blocks // planned.groups * planned.min_block  # num_blocks // len(groups) * min_block_size
    needed = planned.needed
    # from 0.29 the check and the estimate keep back the null block the block pool holds (get_kv_cache_configs:
    # "Reserve the null block"); the allocation itself uses the whole memory
    check = cache_memory - planned.bytes_per_block if version >= (0, 29) else cache_memory
    longest = None
    if needed > check:  # _check_enough_kv_cache_memory: the longest max_model_len that would fit
        low, high = 0, context
        while high - low > 1:
            middle = (low + high) // 2
            trial = planned_for(middle)
            if trial is not None and trial.needed <= check:
                low = middle
            else:
                high = middle
        longest = low
    lines = _vllm_lines(version, cache_memory, capacity, context, concurrency, needed, longest, check)
    return EngineCapacity(
        engine="vllm", cache_memory=cache_memory, tokens=capacity, block_size=planned.min_block, blocks=blocks,
        blocks_per_request=per_request, concurrency=concurrency, needed=needed, check=check, lines=lines,
        notes=tuple(notes), bytes_per_block=planned.bytes_per_block,
        uniform=planned.groups == 1 and planned.request_blocks == _cdiv(context, planned.min_block),
    )  # fmt: skip


def _v4_planned(plan: Plan, context: int) -> _Planned | None:
    from .runtimes.vllm import deepseek_v4_plan

    v4 = deepseek_v4_plan(plan.model, plan.deployment, context)
    if v4 is None:
        return None
    return _Planned(v4.bytes_per_block, 1, v4.request_pages, v4.block, 0, v4.old_request_blocks,
                    v4.needed_per_page)  # fmt: skip


def _vllm_lines(
    version: tuple[int, ...], memory: int, tokens: int, context: int, concurrency: Fraction, needed: int,
    longest: int | None, check: int,
) -> tuple[str, ...]:  # fmt: skip
    def gib(value: int) -> str:  # format_gib from 0.14 (vllm/utils/mem_utils.py: round to 2, "5.4"), else %.2f
        return f"{round(value / GIB, 2)}" if version >= (0, 14) else f"{value / GIB:.2f}"

    available = f"Available KV cache memory: {gib(memory)} GiB"
    size = f"GPU KV cache size: {tokens:,} tokens"
    most = f"Maximum concurrency for {context:,} tokens per request: {float(concurrency):.2f}x"
    lines = [available]
    if needed > check:
        whose = "model's" if version >= (0, 22) else "models's"  # the spelling was fixed in 0.22
        lines.append(
            f"ValueError: To serve at least one request with the {whose} max seq len ({context}), "
            f"({gib(needed)} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({gib(check)} GiB). Based on the available memory, the estimated maximum model length is "
            f"{longest}."
        )
        return tuple(lines)
    if version >= (0, 28):  # one line from 0.28 (kv_cache_utils.py:1870)
        lines.append(f"{size}, {most}")
    else:
        lines += [size, most]
    return tuple(lines)


# ---------------------------------------------------------------------------------------------------------
# SGLang 0.5.x: model_runner(_kv_cache_mixin).py profile_max_num_token, mem_cache/memory_pool.py (rows per layer =
# size + page_size; the log prints the bytes of the real tensors in GiB).

TORCH_NAMES = {"bf16": "torch.bfloat16", "fp16": "torch.float16", "fp32": "torch.float32", "fp8_e4m3": "torch.float8_e4m3fn",
               "fp8_e5m2": "torch.float8_e5m2"}  # fmt: skip


def sglang_capacity(
    plan: Plan, cache_memory: int, context: int | None = None, gpu_memory: int | None = None
) -> EngineCapacity | None:
    """SGLang's token pool for one GPU: tokens = rest // cell, floored to pages, and its "KV Cache is allocated"
    line; None for pools this module does not model (sliding-window and state pools)."""
    if plan.model.compress_rates:  # DeepSeek-V4 (ratios 4 and 128) or V4.1 (ratios 1 and 2)
        if plan.model.compress_ratios() & {1, 2}:
            return sglang_v41_capacity(plan, cache_memory, context, gpu_memory) if len(plan.stages) == 1 else None
        return sglang_v4_capacity(plan, cache_memory, context)
    streams = plan.stage_streams(0) if len(plan.stages) == 1 else None
    if streams is None or any(s.is_state or s.window is not None or s.tokens_per_entry != 1 for s, _ in streams):
        return None
    version = plan.runtime.numbers
    page = plan.block_size
    notes = []
    cell = 0
    for stream, count in streams:
        entry = stream.entry_bytes
        if entry == 656 and (0, 5, 3) <= version < (0, 5, 17):
            # the profile counted fp8 DSA rows as 576 B while the pool stores 656 (fixed in 0.5.17,
            # pool_configurator.py _compute_cell_size with calculate_mla_kv_cache_dim)
            entry = 576
            notes.append("sglang 0.5.3-0.5.16: the profile counts 576 B per fp8 DSA row, the pool stores 656")
        cell += entry * count
    tokens = cache_memory // cell // page * page
    rows = tokens + page  # rows per layer = size + page_size (the first page is padding)
    dtype = TORCH_NAMES.get(plan.kv_dtype.split(" ")[0], plan.kv_dtype)
    prefix = "KV Cache is allocated. " + (f"dtype: {dtype}, " if version >= (0, 5, 13) else "")
    attention = [(s, n) for s, n in streams if s.order == 0]
    if any(not s.key_bytes for s, _ in attention):
        # one KV size; it includes the DSA indexer buffer from 0.5.4 (NSATokenToKVPool.get_kv_size_bytes)
        counted = [(s, n) for s, n in streams if s.order == 0 or version >= (0, 5, 4)]
        size = sum(s.entry_bytes * n for s, n in counted) * rows
        line = f"{prefix}#tokens: {tokens}, KV size: {size / GIB:.2f} GB"
    else:
        k_bytes = v_bytes = 0
        for stream, count in attention:
            k_bytes += stream.key_bytes * count * rows
            v_bytes += (stream.entry_bytes - stream.key_bytes) * count * rows
        line = f"{prefix}#tokens: {tokens}, K size: {k_bytes / GIB:.2f} GB, V size: {v_bytes / GIB:.2f} GB"
    notes.append(f"sglang: cell {cell:,} B per token over the GPU's layers; pools hold tokens + page rows")
    return EngineCapacity(
        engine="sglang", cache_memory=cache_memory, tokens=tokens, block_size=page,
        concurrency=Fraction(tokens, context) if context else None, lines=(line,), notes=tuple(notes), cell=cell,
        uniform=True,
    )  # fmt: skip


# SGLang 0.5.23, DeepSeek-V4: DSV4PoolConfigurator (model_executor/pool_configurator.py:1067-1712). The pools are
# sized in "full" tokens (index space only; no full KV buffer): bytes per full token = 0.1 (swa_full_tokens_ratio,
# set by model_overrides/deepseek_v4.py) x bytes per window token + the compressed pages, index keys and, per window
# page, the ratio-4 compressor rows; the ratio-128 rings of every request slot are subtracted first. Floats as the
# engine computes them (page bytes / page tokens), so the token count matches to the page.

SGLANG_V4_MAX_RUNNING = 256  # arg_groups/deepseek_v4_hook.py: max_running_requests when none is given
SGLANG_V4_SWA_RATIO = 0.1


def sglang_v4_requests(plan: Plan) -> int:
    """requested_max_running_requests_per_worker (pool_configurator.py:1141-1145): --max-running-requests, 256 by
    default for DeepSeek-V4 (deepseek_v4_hook.py), divided over the attention-dp ranks, at least 1."""
    given = plan.deployment.max_running_requests
    return max(1, (SGLANG_V4_MAX_RUNNING if given is None else given) // _attention_dp(plan))


def _attention_dp(plan: Plan) -> int:
    """SGLang's attention-dp ranks: requests and chunked prefill are per rank."""
    return plan.dp if plan.deployment.dp_attention else 1


def _requests_said(plan: Plan) -> str:
    given = plan.deployment.max_running_requests
    return "256 by default" if given is None else f"--max-running-requests {given:,}"


def _v4_page_bytes(entries: int, record: int = 584, align: int = 576) -> int:
    """kv_layout.py page_bytes: data rows then scale rows, the page rounded up to 576 B multiples."""
    return _cdiv(entries * record, align) * align


def sglang_v4_capacity(plan: Plan, cache_memory: int, context: int | None = None) -> EngineCapacity | None:
    model = plan.model
    ratios = [model.kind(name).compress_ratio for name in model.layer_kinds]  # the target's layers, MTP aside
    if len(plan.stages) != 1 or any(r not in (0, 4, 128) for r in ratios):
        return None  # pipeline stages and ratios 1/2 (V4.1) are not modelled here
    compressed_kind = next(k for k in model.used_kinds() if k.compress_ratio)
    assert compressed_kind.attention is not None
    overlapping = [k for k in model.used_kinds() if k.compress_ratio == 4]
    if any(k.indexer is None for k in overlapping):
        return None  # SGLang's ratio-4 pools assume the Lightning indexer; without one they are not read here
    index_dim = overlapping[0].indexer.head_dim if overlapping and overlapping[0].indexer else 0
    layers, n4, n128 = len(ratios), ratios.count(4), ratios.count(128)
    deployment = plan.deployment
    speculative = deployment.mtp or deployment.spec is not None
    ring4, ring128 = (16, 256) if speculative else (8, 128)  # get_compress_state_ring_size
    page = 256
    requests = sglang_v4_requests(plan)
    d = compressed_kind.attention.values_per_token  # head_dim: nope + rope, one shared key-value vector
    swa_token = _v4_page_bytes(page) / page  # 585.0
    c4_state, c4_index_state = 2 * 2 * d * 4, 2 * 2 * index_dim * 4  # fp32 rows, kv and score, overlapping
    per_swa = swa_token * layers + (ring4 / page * (c4_state + c4_index_state) * n4)
    index_key = index_dim + index_dim // 128 * 4  # 132 B (the NVIDIA estimate keeps fp8 even with the fp4 indexer)
    compressed = {4: 1 / 4 * (_v4_page_bytes(page // 4) / (page // 4)) + 1 / 4 * index_key,
                  128: 1 / 128 * (_v4_page_bytes(page // 128) / (page // 128))}  # fmt: skip
    per_full = SGLANG_V4_SWA_RATIO * per_swa + sum(compressed[r] * n for r, n in ((4, n4), (128, n128)) if n)
    if speculative:  # the draft worker: (target + 1 draft layer) / target
        per_full *= (layers + 1) / layers
    rows = _cdiv((requests + 1) * ring128 + ring128 + 1, 128) * 128
    fixed = rows * 2 * d * 4 * n128 if n128 else 0
    full = int(max(cache_memory - fixed, 0) / per_full) // page * page
    swa = int(full * SGLANG_V4_SWA_RATIO) // page * page
    c4_rows = swa // page * ring4
    running = min(requests, full // 2)
    lines = (
        f"DSV4 SWA sizing: mode=ratio (explicit), swa_tokens={swa}, swa_full_tokens_ratio={SGLANG_V4_SWA_RATIO}",
        f"DSV4 memory calculation: unified=False, unified_fp8=False, dspark_draft_bf16=False, "
        f"bytes_per_full_token={per_full:.2f}, available_bytes={cache_memory / GIB:.2f} GB, "
        f"c128_state_fixed={fixed / GIB:.2f} GB, c2_state_fixed=0.00 GB, swa_fixed=0.00 GB, swa_ring_fixed=0.00 GB, "
        f"c4_state_fixed=0.00 GB, full_token={full}",
        f"DSV4 pool sizes: full={full}, swa={swa}, c4={full // 4}, c128={full // 128}, c4_state={c4_rows}, c128_state=0",
        # the scheduler's line, its other fields (chunked prefill, context length, free memory) left out
        f"max_total_num_tokens={full}, ..., max_running_requests={running}, ...",
    )
    notes = [
        f"sglang DeepSeek-V4: {per_full:.2f} B per full token (0.1 x {per_swa:,.2f} B per window token + compressed "
        f"pages); {fixed:,} B of ratio-128 rings for {requests} + 1 request slots taken first",
        f"sglang DeepSeek-V4: max_running_requests {running} ({_requests_said(plan)}, per attention-dp rank, at most "
        "half the tokens)",
    ]
    concurrency = None
    if context:
        pages = _cdiv(context, page)
        concurrency = min(Fraction(full // page, pages), Fraction(running))
        window_pages = swa // page
        if window_pages < 3 * concurrency:
            notes.append(f"sglang DeepSeek-V4: the window pool ({window_pages:,} pages of 256 tokens) holds the last "
                         f"pages of about {window_pages // 3:,} requests at 3 pages each; requests beyond wait for "
                         "evictions")  # fmt: skip
    if swa <= 128 + page:
        notes.append(f"sglang DeepSeek-V4: a window pool of {swa} tokens cannot hold one request; SGLang refuses to "
                     "start (validate_swa_pool_size)")  # fmt: skip
    return EngineCapacity(
        engine="sglang", cache_memory=cache_memory, tokens=full, block_size=page, concurrency=concurrency,
        pool_tokens=full, lines=lines, notes=tuple(notes),
    )  # fmt: skip


# SGLang 0.5.23, DeepSeek-V4.1: the same DSV4PoolConfigurator in cap mode (the 0.1 ratio override skips
# deepseek_v41: model_overrides/deepseek_v4.py:43-49). The window pool is a fixed number of tokens sized for the
# running requests (compute_swa_request_cap, pool_configurator.py:924-968, plus 4 prefix tails per request with the
# radix cache, :1309-1351); the ratio-2 rings of every request slot are fixed too (:1530-1543); the rest is divided
# by the bytes per full token of the compressed pages and fp4 index keys (:1390-1446), then pages are given back
# while the kv sources' reserved page and index-page rounding do not fit (:1406-1435, :1638-1701).


def sglang_chunked_prefill(plan: Plan, gpu_memory: int | None) -> int:
    """SGLang's chunked_prefill_size per attention-dp rank: --chunked-prefill-size (mla-mem's max_batched_tokens) or
    the default arg_groups/memory_hook.py:78-180 picks from nvidia-smi's total (MiB), divided over the attention-dp
    ranks (parallel_hook.py:314-336)."""
    from .options import OptionError

    given = plan.deployment.max_batched_tokens
    if given is not None:
        if given % 256:
            raise OptionError("max_batched_tokens", f"sglang: --chunked-prefill-size must be a multiple of the page "
                                                    f"size 256 (validation_hook.py), got {given:,}")  # fmt: skip
        chunk = given
    elif gpu_memory:
        mib = gpu_memory // 2**20
        chunk = 2048 if mib < 20 * 1024 else 4096 if mib < 60 * 1024 else 8192 if mib < 160 * 1024 else 16384
    else:
        raise OptionError("max_batched_tokens", "sglang: DeepSeek-V4.1's window pool follows the chunked prefill "
                          "size, which SGLang sets from the GPU's memory; give --gpu, or --max-batched-tokens (SGLang's "
                          "--chunked-prefill-size)")  # fmt: skip
    return chunk // _attention_dp(plan)


def _v41_padding(
    full: int, sources: dict[int, tuple[int, float]], index_bytes: int, page: int, index_page: int
) -> float:
    """_get_low_ratio_kv_padding_bytes (pool_configurator.py:1406-1435): per kv source, the page of compressed
    entries the pool reserves and the index slots rounded up to index pages (_num_dsv4_physical_kv_pages)."""
    padding = 0.0
    for ratio in (1, 2):
        layers, page_token = sources.get(ratio, (0, 0.0))
        if layers:
            index_slots = _cdiv((full + page) // ratio + index_page, index_page) * index_page
            padding += (page * page_token + (index_slots - full // ratio) * index_bytes) * layers
    return padding


def sglang_v41_capacity(plan: Plan, cache_memory: int, context: int | None, gpu_memory: int | None) -> EngineCapacity:
    model, deployment = plan.model, plan.deployment
    streams = dict((s.component, s) for s, _ in plan.stage_streams(0))  # fmt: skip
    window = streams["window"]
    page = window.block  # 256
    main = window.page / page  # layout.page_bytes(256) / 256: 528.0 (V41) or 585.0 (V4 layout, 576 B multiples)
    sources = {s.tokens_per_entry: (len(s.layers), s.page / s.block)
               for s in streams.values() if s.component.startswith("compressed_")}  # fmt: skip
    index_bytes = next(s.entry_bytes for s in streams.values() if s.component.endswith("_indexer"))
    kind = next(k for k in model.used_kinds() if k.compress_ratio)
    assert kind.attention is not None and kind.window is not None
    requests = sglang_v4_requests(plan)
    chunk = sglang_chunked_prefill(plan, gpu_memory)
    tails = 0 if deployment.prefix_caching is False else 4 * requests  # _resolve_swa_prefix_tails: the radix cache
    target = sum(1 for layer in window.layers if layer < model.layers)  # the draft stages' windows aside
    # a request's window tokens are compute_swa_request_cap's per-request budget (runtimes/sglang.py lowers it: 768,
    # or 1,164 with DSpark's drafts), and a ring row is kv + score, 2 x head_dim fp32 (rows by runtimes/sglang.py)
    assert window.window is not None
    request_cap = window.window * requests + 2 * chunk + page
    swa = _cdiv(request_cap + tails * (kind.window + page), page) * page
    per_swa = main * target
    per_full = sum(layers * (token + index_bytes) / ratio for ratio, (layers, token) in sources.items())
    if deployment.mtp:  # DSpark: the draft worker's share, one layer's worth whatever its stages (:1250-1257)
        inflation = (target + 1) / target
        per_swa *= inflation
        per_full *= inflation
    row = 2 * kind.attention.values_per_token * 4
    ring_stream = next((s for s in streams.values() if s.is_state), None)
    ring = ring_stream.entry_bytes // row if ring_stream else 0
    c2_layers = sources.get(2, (0, 0.0))[0]
    c2_fixed = _cdiv((requests + 1) * ring + ring + 1, 2) * 2 * row * c2_layers if ring else 0
    swa_fixed = swa * per_swa
    rest = max(cache_memory - c2_fixed - swa_fixed, 0)
    index_page = 128 if deployment.sm_major == 10 else 64  # DSV41_INDEX_PAGE_SIZE: DeepGEMM's paged kernels on 10.x
    full = int(rest / per_full) // page * page
    while full > 0 and full * per_full + _v41_padding(full, sources, index_bytes, page, index_page) > rest:
        full -= page
    if full <= 0:  # SGLang raises at start-up (pool_configurator.py:1678-1685): one page of full tokens is the least
        least = c2_fixed + swa_fixed + page * per_full + _v41_padding(page, sources, index_bytes, page, index_page)
        return EngineCapacity(
            engine="sglang", cache_memory=cache_memory, tokens=0, block_size=page, concurrency=Fraction(0),
            needed=math.ceil(least), check=cache_memory, pool_tokens=0,
            notes=(f"sglang DeepSeek-V4.1 would not start: \"The DSV4 SWA pool cap ({swa} tokens, "
                   f"{swa_fixed / GIB:.2f} GB) leaves no room for the full KV pool within the available "
                   f"{cache_memory / GIB:.2f} GB\"; it needs {math.ceil(least):,} B",),
        )  # fmt: skip
    sizes = (requests, window.window, chunk, tails, swa, per_full, c2_fixed, swa_fixed, full, index_page)
    return _v41_result(plan, cache_memory, context, sizes)


def _v41_result(plan: Plan, cache_memory: int, context: int | None, sizes: tuple[Any, ...]) -> EngineCapacity:
    """The configurator's three lines (pool_configurator.py:1479-1488, 1605-1611, 1688-1700), the scheduler's token
    count and max_running_requests (kv_cache_configurator.py:3119-3172: min(requests, full // 2)), concurrency."""
    requests, per_request, chunk, tails, swa, per_full, c2_fixed, swa_fixed, full, index_page = sizes
    page = plan.block_size
    running = min(requests, full // 2)
    lines = (
        f"DSV4 SWA sizing: mode=cap, swa_tokens={swa}, request_cap+headroom={swa}, prefix_tails={tails}",
        f"DSV4 memory calculation: unified=False, unified_fp8=False, dspark_draft_bf16=False, "
        f"bytes_per_full_token={per_full:.2f}, available_bytes={cache_memory / GIB:.2f} GB, "
        f"c128_state_fixed=0.00 GB, c2_state_fixed={c2_fixed / GIB:.2f} GB, swa_fixed={swa_fixed / GIB:.2f} GB, "
        f"swa_ring_fixed=0.00 GB, c4_state_fixed=0.00 GB, full_token={full}",
        f"DSV4 pool sizes: full={full}, swa={swa}, c4={full // 4}, c128={full // 128}, c4_state=0, c128_state=0",
        f"max_total_num_tokens={full}, ..., max_running_requests={running}, ...",
    )
    radix = (
        "no prefix tails: --no-prefix-caching, SGLang's --disable-radix-cache"
        if not tails
        else (f"{tails} prefix tails of 384 tokens for the radix cache")
    )
    notes = [
        f"sglang DeepSeek-V4.1: a window pool of {swa:,} tokens for {requests} requests ({per_request:,} tokens each, 2 chunks "
        f"of {chunk:,} in flight, {radix}), {c2_fixed:,} B of ratio-2 rings for {requests} + 1 request slots; the "
        f"rest at {per_full:.2f} B per token",
        f"sglang DeepSeek-V4.1: max_running_requests {running} ({_requests_said(plan)}, per attention-dp rank)",
    ]
    if index_page == 128:
        notes.append("sglang DeepSeek-V4.1: index pages of 128 tokens (DeepGEMM's paged sparse MQA kernels on 10.x; "
                     "64 without them, which can move the token count by a page)")  # fmt: skip
    concurrency = min(Fraction(full // page, _cdiv(context, page)), Fraction(running)) if context else None
    return EngineCapacity(
        engine="sglang", cache_memory=cache_memory, tokens=full, block_size=page, concurrency=concurrency,
        pool_tokens=full, lines=lines, notes=tuple(notes),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# TensorRT-LLM (PyTorch backend): resource_manager.py calculate_max_num_blocks / kvCacheManager.cpp:
# max_tokens = budget // bytes per token, blocks = ceilDiv(max_tokens, tokens_per_block).


def trtllm_capacity(plan: Plan, cache_memory: int, context: int | None = None) -> EngineCapacity | None:
    streams = plan.stage_streams(0) if len(plan.stages) == 1 else None
    if streams is None or any(s.is_state or s.window is not None or s.tokens_per_entry != 1 for s, _ in streams):
        return None
    per_token = sum(stream.entry_bytes * count for stream, count in streams)
    block = plan.block_size
    max_tokens = cache_memory // per_token
    blocks = _cdiv(max_tokens, block)
    allocated = blocks * block * per_token
    lines = (
        f"Number of blocks in KV cache primary pool: {blocks}",
        f"[MemUsageChange] Allocated {allocated / GIB:.2f} GiB for max tokens in paged KV cache ({blocks * block}).",
    )
    concurrency = Fraction(blocks, _cdiv(context, block)) if context else None
    return EngineCapacity(
        engine="trtllm", cache_memory=cache_memory, tokens=blocks * block, block_size=block, blocks=blocks,
        blocks_per_request=_cdiv(context, block) if context else None, concurrency=concurrency, lines=lines,
        notes=("trtllm: blocks = ceilDiv(max_tokens, tokens_per_block), so the pool may exceed the budget by a block",),
    )  # fmt: skip


def engine_capacity(
    plan: Plan,
    cache_memory: int,
    context: int | None,
    override_blocks: int | None = None,
    gpu_memory: int | None = None,
) -> EngineCapacity | None:
    """The engine's own capacity figures for `cache_memory` bytes per GPU; `gpu_memory` (nvidia-smi's total) where
    an engine's defaults depend on it (SGLang's chunked prefill size)."""
    name = plan.runtime.name
    if name == "vllm":
        length = context or plan.model.max_context
        return vllm_capacity(plan, cache_memory, length, override_blocks) if length else None
    if name == "sglang":
        return sglang_capacity(plan, cache_memory, context, gpu_memory)
    if name == "trtllm":
        return trtllm_capacity(plan, cache_memory, context)
    return None


__all__ = [
    "EngineCapacity",
    "engine_capacity",
    "sglang_capacity",
    "sglang_chunked_prefill",
    "sglang_v41_capacity",
    "trtllm_capacity",
    "vllm_capacity",
]
