"""Exact sizing: cache streams -> bytes at a context and batch, per GPU and for the deployment.

A `CacheStream` is what a runtime stores for a group of layers (see runtimes.py, which builds them):
bytes per entry, how many entries a sequence holds at context n, and how entries are paged.

  tokens on this rank   t = ceil(n / token_shards)                (decode context parallel splits tokens)
  tokens kept           t = min(t, window)                        (sliding windows)
  entries               e = t // tokens_per_entry                 (1 per token; 1 per r tokens if compressed;
                                                                   ceil(t / r) with ceil_entries, llama.cpp)
                        e = 1                                     (tokens_per_entry 0: a constant state)
  stored bytes          e x entry_bytes                           (the records themselves)
  allocated bytes       ceil(e / block) x page_bytes              (paging; + extra_blocks for windows,
                                                                   never more than the unwindowed pages)
Two rarer shapes, for runtimes that buffer work in progress (transformers' DeepSeek-V4 compressor):
  remainder_of r        e = t mod r                               (tokens waiting for the next full window)
  min_tokens m          a constant state held only once t >= m    (state carried between windows)

Everything is a Python int (Fraction for per-token figures of compressed caches). numpy is imported only by
`curve`, which computes the same numbers for many contexts at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .records import record
from .units import MAX_BATCH, MAX_CONTEXT

if TYPE_CHECKING:
    from .options import Deployment, RuntimeRef
    from .spec import ModelSpec


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@record
class CacheStream:
    """One stream of cache entries of a lowered model: which layers store it, the bytes of an entry and how entries
    are grouped (per token or per `tokens_per_entry`, a window, blocks, pages)."""

    component: str
    layers: tuple[int, ...]
    entry_bytes: int
    tokens_per_entry: int = 1
    window: int | None = None
    block: int = 1
    page_bytes: int = 0
    extra_blocks: int = 0
    token_shards: int = 1
    description: str = ""
    formula: str = ""
    remainder_of: int = 0
    min_tokens: int = 0
    kind: str = ""  # the layer kind it was lowered from
    order: int = 0  # display order: 0 attention, 1 indexer keys, 2 constant state
    key_bytes: int = 0  # of entry_bytes, the keys when the entry is separate keys and values (0: one tensor, MLA)
    ceil_entries: bool = False  # a started group of tokens_per_entry tokens takes an entry (llama.cpp's V4 caches)

    @property
    def page(self) -> int:
        return self.page_bytes or self.block * self.entry_bytes

    @property
    def is_state(self) -> bool:
        return self.tokens_per_entry == 0

    def entries(self, context: int) -> int:
        """Entries one sequence holds on one rank at `context` tokens (before paging)."""
        tokens = _ceil_div(context, self.token_shards)
        if self.is_state:
            return 1 if tokens >= self.min_tokens else 0
        if self.remainder_of:
            return tokens % self.remainder_of
        if self.window is not None:
            tokens = min(tokens, self.window)
        if self.ceil_entries:
            return _ceil_div(tokens, self.tokens_per_entry)
        return tokens // self.tokens_per_entry

    def stored_bytes(self, context: int) -> int:
        """Record bytes per layer per sequence."""
        return self.entries(context) * self.entry_bytes

    def allocated_bytes(self, context: int) -> int:
        """Bytes per layer per sequence as allocated: whole pages."""
        pages = _ceil_div(self.entries(context), self.block)
        if self.is_state:
            return (pages + self.extra_blocks if pages else 0) * self.page  # extra: state pages kept beyond the one
        if self.window is not None and self.extra_blocks:
            unwindowed = _ceil_div(context, self.token_shards) // self.tokens_per_entry
            pages = min(pages + self.extra_blocks, _ceil_div(unwindowed, self.block))
        return pages * self.page

    @property
    def bytes_per_token(self) -> Fraction:
        """Marginal record bytes per further token, per layer (0 for windows, states and remainders)."""
        if self.is_state or self.window is not None or self.remainder_of:
            return Fraction(0)
        return Fraction(self.entry_bytes, self.tokens_per_entry * self.token_shards)

    @property
    def fixed_bytes(self) -> int:
        """Record bytes per layer per sequence that do not grow with context: states and full windows."""
        if self.is_state:
            return self.entry_bytes
        if self.remainder_of:
            return 0
        if self.window is not None:
            return (self.window // self.tokens_per_entry) * self.entry_bytes
        return 0


@record
class Plan:
    """A model lowered for one runtime and deployment: the streams every GPU of a pipeline stage holds."""

    model: ModelSpec
    runtime: RuntimeRef
    deployment: Deployment
    kv_dtype: str
    block_size: int
    streams: tuple[CacheStream, ...]
    stages: tuple[tuple[int, int], ...]  # pipeline stages as [first, last) layer ranges
    notes: tuple[str, ...] = ()

    @property
    def tp(self) -> int:
        return self.deployment.tp

    @property
    def pp(self) -> int:
        return self.deployment.pp

    @property
    def dp(self) -> int:
        return self.deployment.dp

    @property
    def dcp(self) -> int:
        return self.deployment.dcp

    @property
    def mtp(self) -> bool:
        return self.deployment.mtp

    @property
    def layout(self) -> str:
        return self.deployment.layout

    @property
    def gpus(self) -> int:
        return self.deployment.gpus

    def stage_streams(self, stage: int) -> list[tuple[CacheStream, int]]:
        """(stream, number of its layers in this stage) for the streams present in `stage`."""
        return list(self._by_stage[stage])

    @cached_property
    def stage_layers(self) -> tuple[int, ...]:
        """Distinct layers with a cache in each stage."""
        return tuple(
            len({n for s in self.streams for n in s.layers if first <= n < last}) for first, last in self.stages
        )

    @cached_property
    def _by_stage(self) -> tuple[tuple[tuple[CacheStream, int], ...], ...]:
        """Every stage's streams, counted once per plan (size() asks for them at every context it is given)."""
        out = []
        for first, last in self.stages:
            present = []
            for stream in self.streams:
                count = sum(1 for layer in stream.layers if first <= layer < last)
                if count:
                    present.append((stream, count))
            out.append(tuple(present))
        return tuple(out)


@record(slots=True)
class ComponentEstimate:
    """One component's share of an estimate: bytes per token, fixed bytes, bytes stored and the total."""

    name: str
    layers: int
    bytes_per_token: Fraction
    fixed_bytes: int
    stored_bytes: int
    total_bytes: int
    description: str = ""
    formula: str = ""
    entry_bytes: int = 0
    block: int = 1

    @property
    def paging_bytes(self) -> int:
        return self.total_bytes - self.stored_bytes


@record(slots=True)
class Estimate:
    """Exact bytes of one model at one context and batch. All byte figures are for ONE GPU (the most loaded
    one); `deployment_bytes` adds up every GPU. bytes_per_token and fixed_bytes are per sequence."""

    model: str
    context: int
    batch: int
    kv_dtype: str
    runtime: str
    bytes_per_token: Fraction
    fixed_bytes: int
    stored_bytes: int
    total_bytes: int
    components: tuple[ComponentEstimate, ...]
    sequences_per_gpu: int = 1
    gpus: int = 1
    deployment_bytes: int = 0
    stage: int = 0
    block_size: int = 1
    tp: int = 1
    pp: int = 1
    dp: int = 1
    dcp: int = 1
    mtp: bool = False
    layout: str = ""
    notes: tuple[str, ...] = field(default=())
    layers: int = 0
    # every pipeline stage: (first layer, last layer + 1, bytes per GPU of that stage at context x batch)
    stages: tuple[tuple[int, int, int], ...] = ()

    def __str__(self) -> str:
        """The table `mla-mem` prints for this result."""
        from .render import result_text

        return result_text(self)

    def _repr_html_(self) -> str:
        from .render import result_html

        return result_html(self)

    @property
    def paging_bytes(self) -> int:
        return self.total_bytes - self.stored_bytes

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON shape (docs/json.md): exact integers, fractions only when needed."""
        from .units import json_number

        return {
            "model": self.model,
            "context": self.context,
            "batch": self.batch,
            "kv_dtype": self.kv_dtype,
            "runtime": self.runtime,
            "block_size": self.block_size,
            "parallel": {"tp": self.tp, "pp": self.pp, "dp": self.dp, "dcp": self.dcp, "gpus": self.gpus},
            "mtp": self.mtp,
            "layers": self.layers,
            "per_gpu": True,
            "sequences_per_gpu": self.sequences_per_gpu,
            "bytes_per_token": json_number(self.bytes_per_token),
            "fixed_bytes": self.fixed_bytes,
            "stored_bytes": self.stored_bytes,
            "paging_bytes": self.paging_bytes,
            "total_bytes": self.total_bytes,
            "deployment_bytes": self.deployment_bytes,
            "components": [
                {
                    "name": c.name,
                    "layers": c.layers,
                    "bytes_per_token": json_number(c.bytes_per_token),
                    "fixed_bytes": c.fixed_bytes,
                    "stored_bytes": c.stored_bytes,
                    "paging_bytes": c.paging_bytes,
                    "total_bytes": c.total_bytes,
                    "entry_bytes": c.entry_bytes,
                    "formula": c.formula,
                }
                for c in self.components
            ],
            "stages": [{"layers": [first, last], "total_bytes": total} for first, last, total in self.stages],
            "notes": list(self.notes),
        }


def check_scenario(context: int, batch: int) -> None:
    for what, value, top in (("context", context, MAX_CONTEXT), ("batch", batch, MAX_BATCH)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{what}: expected an integer, got {value!r}")
        if value < 1:
            raise UsageError(f"{what}: must be at least 1, got {value:,}")
        if value > top:
            raise UsageError(f"{what}: {value:,} is beyond the largest supported value {top:,}")


def _stage_sizes(plan: Plan, context: int) -> list[tuple[int, int]]:
    """(allocated, stored) bytes per sequence for each pipeline stage."""
    sizes = []
    for stage in range(len(plan.stages)):
        allocated = stored = 0
        for stream, count in plan.stage_streams(stage):
            allocated += count * stream.allocated_bytes(context)
            stored += count * stream.stored_bytes(context)
        sizes.append((allocated, stored))
    return sizes


def total_bytes(plan: Plan, context: int, batch: int = 1) -> int:
    """size(plan, context, batch).total_bytes without the rest of the estimate (searches call it many times)."""
    check_scenario(context, batch)
    return max(allocated for allocated, _ in _stage_sizes(plan, context)) * _ceil_div(batch, plan.dp)


def size(plan: Plan, context: int, batch: int = 1) -> Estimate:
    """Exact bytes of `plan` at `context` tokens for `batch` sequences (spread evenly over dp replicas)."""
    check_scenario(context, batch)
    sequences = _ceil_div(batch, plan.dp)
    stage_sizes = _stage_sizes(plan, context)
    # The GPU that decides whether it fits: the stage holding the most.
    stage = max(range(len(stage_sizes)), key=lambda s: (stage_sizes[s][0], -s))
    components = []
    for stream, count in plan.stage_streams(stage):
        components.append(
            ComponentEstimate(
                name=stream.component,
                layers=count,
                bytes_per_token=stream.bytes_per_token * count,
                fixed_bytes=stream.fixed_bytes * count,
                stored_bytes=stream.stored_bytes(context) * count * sequences,
                total_bytes=stream.allocated_bytes(context) * count * sequences,
                description=stream.description,
                formula=stream.formula,
                entry_bytes=stream.entry_bytes,
                block=stream.block,
            )
        )
    per_sequence_all_stages = sum(allocated for allocated, _ in stage_sizes)
    first, last = plan.stages[stage]
    return Estimate(
        model=plan.model.name,
        context=context,
        batch=batch,
        kv_dtype=plan.kv_dtype,
        runtime=str(plan.runtime),
        bytes_per_token=sum((c.bytes_per_token for c in components), Fraction(0)),
        fixed_bytes=sum(c.fixed_bytes for c in components),
        stored_bytes=sum(c.stored_bytes for c in components),
        total_bytes=sum(c.total_bytes for c in components),
        components=tuple(components),
        sequences_per_gpu=sequences,
        gpus=plan.gpus,
        # every rank of a TP group holds its share (or, for replicated streams, a full copy)
        deployment_bytes=plan.deployment.attention_tp * per_sequence_all_stages * batch,
        stage=stage,
        block_size=plan.block_size,
        tp=plan.tp,
        pp=plan.pp,
        dp=plan.dp,
        dcp=plan.dcp,
        mtp=plan.mtp,
        layout=plan.layout,
        notes=plan.notes + beyond_max_context(plan.model, context),
        layers=plan.stage_layers[stage],
        stages=tuple((first, last, stage_sizes[i][0] * sequences) for i, (first, last) in enumerate(plan.stages)),
    )


def _whole(value: Any) -> int:  # noqa: ANN401
    """An int from an int-like value; a fraction or anything else is refused."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(value)


def curve(plan: Plan, contexts: Sequence[int] | Any, batch: int = 1) -> dict[str, Any]:
    """Allocated bytes per GPU for many contexts at once (numpy), per component and in total.

    Returns {"context": array, "total": array, "components": {name: array}} with integer arrays equal,
    element for element, to `size(plan, n, batch).total_bytes` (int64 when it fits, exact Python ints
    in an object array when it does not).
    """
    import numpy as np

    n = np.asarray(contexts)
    if n.ndim != 1 or n.size == 0:
        raise UsageError("contexts: expected a non-empty list of token counts")
    if n.dtype.kind == "f":
        if not np.all(np.isfinite(n)) or not np.all(n == np.floor(n)):
            raise UsageError("contexts: expected whole token counts, got fractions (e.g. 1.5)")
        n = n.astype(np.int64)
    elif n.dtype.kind not in "iu":
        try:
            n = np.array([_whole(v) for v in n.tolist()], dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            raise UsageError("contexts: expected token counts (integers)") from None
    check_scenario(1, batch)
    low, high = int(n.min()), int(n.max())
    check_scenario(low, batch)
    check_scenario(high, batch)
    sequences = _ceil_div(batch, plan.dp)
    exact_needed = size(plan, high, batch).total_bytes * max(1, len(plan.stages)) >= 2**62
    dtype: Any = object if exact_needed else np.int64
    ctx = n.astype(dtype, copy=False)

    def stream_bytes(stream: CacheStream) -> Any:
        # the same steps as CacheStream.entries / allocated_bytes, each skipped when it is the identity
        tokens = -(-ctx // stream.token_shards) if stream.token_shards != 1 else ctx
        if stream.is_state:
            return (tokens >= stream.min_tokens).astype(np.int64).astype(dtype) * (
                stream.page * (1 + stream.extra_blocks)
            )

        if stream.remainder_of:
            return -(-(tokens % stream.remainder_of) // stream.block) * stream.page
        # one fresh array worked in place (a million contexts are 7.6 MiB per array): entries, pages, bytes
        pages = np.minimum(tokens, stream.window) if stream.window is not None else tokens.copy()
        _ceil_div_into(pages, stream.tokens_per_entry, ceil=stream.ceil_entries)
        _ceil_div_into(pages, stream.block)
        if stream.window is not None and stream.extra_blocks:
            unwindowed = tokens // stream.tokens_per_entry
            _ceil_div_into(unwindowed, stream.block)
            pages += stream.extra_blocks
            np.minimum(pages, unwindowed, out=pages)
            del unwindowed
        pages *= stream.page
        return pages

    stage_totals = []
    stage_parts = []
    for stage in range(len(plan.stages)):
        parts: dict[str, Any] = {}
        total: Any = None
        for stream, count in plan.stage_streams(stage):
            part = stream_bytes(stream)
            part *= count * sequences
            parts[stream.component] = parts[stream.component] + part if stream.component in parts else part
            total = part.copy() if total is None else total + part
        stage_totals.append(total if total is not None else np.zeros(ctx.shape, dtype=dtype))
        stage_parts.append(parts)
    if len(stage_totals) == 1:  # one stage: nothing to choose between
        return {"context": ctx, "total": stage_totals[0], "components": stage_parts[0]}
    # per context, the most loaded stage (ties: the first), as size() picks it
    stacked = np.stack(stage_totals)
    if dtype is object:
        best = np.array([_first_max([int(t[i]) for t in stage_totals]) for i in range(ctx.size)])
    else:
        best = np.argmax(stacked, axis=0)
    total = stacked[best, np.arange(ctx.size)]
    components: dict[str, Any] = {}
    for name in dict.fromkeys(k for parts in stage_parts for k in parts):
        rows = np.stack([np.asarray(parts.get(name, np.zeros(ctx.shape, dtype=dtype))) for parts in stage_parts])
        components[name] = rows[best, np.arange(ctx.size)]
    return {"context": ctx, "total": total, "components": components}


def _ceil_div_into(values: Any, divisor: int, ceil: bool = True) -> None:  # noqa: ANN401 - a numpy array
    """values = ceil(values / divisor) (or floor), in place; nothing to do for 1."""
    import numpy as np

    if divisor == 1:
        return
    if ceil:
        np.negative(values, out=values)
        np.floor_divide(values, divisor, out=values)
        np.negative(values, out=values)
    else:
        np.floor_divide(values, divisor, out=values)


def _first_max(values: list[int]) -> int:
    """Index of the largest value, the first one on ties (as numpy.argmax and size() choose)."""
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:
            best = index
    return best


def beyond_max_context(model: ModelSpec, context: int) -> tuple[str, ...]:
    """A note when `context` is longer than the model's maximum context (max_position_embeddings or the card's)."""
    if model.max_context is None or context <= model.max_context:
        return ()
    return (f"context {context:,} exceeds {model.name}'s maximum context of {model.max_context:,} tokens",)
