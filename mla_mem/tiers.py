"""Beyond one GPU pool: KV offload tiers in host memory and requests that share a prefix, priced by each engine's
own rules (read from the released wheels; docs/tiers.md has the file and line of each).

Offload, vLLM 0.28-0.33 native CPU offload (`--kv-offloading-size`, GiB, the total across the engine's ranks;
vllm/v1/kv_offload/cpu/spec.py, distributed/kv_transfer/kv_connector/v1/offloading/config.py): one offloaded chunk
= blocks_per_chunk GPU blocks; its host bytes = bytes of one block id on one worker x copies x blocks_per_chunk,
rounded up to the 4 KiB page; copies = the world size (vllm#47929), or 1 when the cache is replicated on every tp
rank and the engine can keep one copy (`replicated_layout`: MLA and DSA from 0.31, plain MLA only in 0.28-0.30; tp
> 1 on one node, pp = dcp = 1, CUDA, the mp executor). Only whole chunks are stored. One host region per engine.

SGLang 0.5.23 HiCache (`--hicache-size`, decimal GB per rank; mem_cache/pool_host/base.py): tokens =
size // (bytes per token on the rank), then whole pages plus one; every tp rank keeps its own pool, so an MLA
cache, the same on every rank, is stored tp times (sglang#26691); a DSA model's indexer keys get a host pool of
the same token count outside --hicache-size (pool_host/dsa.py; sglang#29263).

Shared prefixes: vLLM caches and matches whole blocks only, at most L - 1 tokens of a request of L
(v1/core/single_type_kv_cache_manager.py, kv_cache_manager.py); SGLang's radix tree whole pages
(mem_cache/radix_cache.py RadixKey.page_aligned). N requests sharing P tokens hold floor(min(P, L - 1) / B) blocks
once; the partial block and the rest are each request's own.
"""

from __future__ import annotations

from dataclasses import field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .records import record
from .units import parse_size, parse_tokens

if TYPE_CHECKING:
    from .cache import Plan
    from .capacity import EngineCapacity

PAGE = 4096  # vLLM aligns each offloaded chunk to mmap.PAGESIZE (shared_offload_region.py)
GPUS_PER_NODE = 8  # assumed: one node holds 8 GPUs (a stated assumption, in the notes)
# cpu: the engine's own host tier (vLLM native CPU offload, SGLang HiCache); disk: SGLang HiCache's L3 file backend;
# lmcache-cpu / lmcache-disk: LMCache's local CPU and disk backends under vLLM (LMCacheConnectorV1)
TIER_KINDS = ("cpu", "disk", "lmcache-cpu", "lmcache-disk")
LMCACHE_CHUNK = 256  # LMCache 0.5.6 v1/config.py:90 chunk_size; partial chunks are not saved (save_unfull_chunk)
LMCACHE_ALIGN = 4096  # memory_allocators/tensor_memory_allocator.py:87-95: allocations rounded up to 4 KiB


@record
class Tier:
    """A host tier as given on the command line: its kind and size in bytes."""

    kind: str
    size: int  # bytes as given


def parse_tiers(text: str, what: str = "--offload") -> tuple[Tier, ...]:
    """'cpu:1TiB' or 'cpu:512GiB,disk:4TiB' -> tiers (sizes need a unit: GiB for vLLM, GB for SGLang)."""
    tiers: list[Tier] = []
    for item in (part.strip() for part in str(text).split(",")):
        kind, sep, size = item.partition(":")
        kind = kind.strip().lower()
        if not sep or kind not in TIER_KINDS:
            raise UsageError(f"{what}: expected TIER:SIZE with TIER one of {', '.join(TIER_KINDS)}, e.g. cpu:512GiB, "
                             f"got {item!r}")  # fmt: skip
        if any(t.kind == kind for t in tiers):
            raise UsageError(f"{what}: the {kind} tier is given twice")
        value = parse_size(size.strip(), f"{what} {kind}")
        if value <= 0:
            raise UsageError(f"{what} {kind}: the size must be positive")
        tiers.append(Tier(kind, value))
    return tuple(tiers)


@record
class TierResult:
    """What a host tier holds for a model: units stored, bytes per unit, copies and tokens of distinct content."""

    tier: str
    engine: str  # what stores it: "vllm native CPU offload", "sglang HiCache"
    size_bytes: int  # as given
    chunk_tokens: int  # tokens per stored unit (vLLM chunk, SGLang token)
    chunk_bytes: int  # host bytes of one unit, every copy included
    copies: int  # copies of the same content the host tier stores
    unique_tokens: int  # tokens of distinct content the tier holds, per engine
    host_bytes_per_engine: int
    engines_per_node: int
    host_bytes_per_node: int
    extra_bytes_per_engine: int = 0  # allocated beside the tier's size (SGLang's DSA indexer host pool)
    alternative: str = ""  # the data-parallel alternative for a replicated cache
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, notes=list(self.notes))


def content_per_token(plan: Plan) -> int:
    """Cache bytes of one token's distinct content: the model at tp 1 (every head once, the latent once)."""
    from .runtimes import lower

    d = plan.deployment
    single = lower(plan.model, d.with_(tp=1, dp=1, dcp=1, pp=1, pp_layers=None, dp_attention=False))
    return sum(s.entry_bytes * n for s, n in single.stage_streams(0) if s.tokens_per_entry == 1 and s.window is None)


def _replicated(plan: Plan, per_rank: Fraction, content: int) -> bool:
    """Every tp rank holds the whole cache (MLA latents, DSA indexer keys: max_tp_shards = 1)."""
    return plan.tp > 1 and per_rank == content


def offload(
    plan: Plan, engine: EngineCapacity | None, tiers: tuple[Tier, ...], chunk_blocks: int = 1
) -> list[TierResult]:
    if not tiers:
        return []
    if engine is None:
        raise UsageError(f"--offload: {plan.runtime.name}'s block arithmetic for this model is not modelled, so "
                         "neither is its offload tier")  # fmt: skip
    if plan.pp > 1:
        raise UsageError("--offload: offload tiers with pipeline parallelism are not modelled; give pp 1")
    if plan.model.compress_rates:
        raise UsageError(f"--offload: {plan.model.name}'s caches compressed along the sequence (window, compressed "
                         "and state pools) have host tiers of their own in each engine, not modelled; drop --offload")  # fmt: skip
    kinds = {t.kind for t in tiers}
    if "cpu" in kinds and kinds & {"lmcache-cpu", "lmcache-disk"}:
        raise UsageError("--offload: vLLM runs one KV connector, its native CPU offload (cpu) or LMCache "
                         "(lmcache-cpu, lmcache-disk), not both")  # fmt: skip
    results = []
    for tier in tiers:
        if tier.kind.startswith("lmcache-"):
            if engine.engine != "vllm":
                raise UsageError(f"--offload {tier.kind}: LMCache is modelled under vLLM (LMCacheConnectorV1); "
                                 f"{engine.engine}'s tiers are cpu and disk")  # fmt: skip
            results.append(_lmcache_tier(plan, tier))
        elif engine.engine == "vllm":
            results.append(_vllm_tier(plan, engine, tier, chunk_blocks))
        elif engine.engine == "sglang":
            results.append(_sglang_file_tier(plan, tier) if tier.kind == "disk" else _sglang_tier(plan, engine, tier))
        else:
            raise UsageError(f"--offload: {engine.engine}'s host tier is not modelled (vllm and sglang are)")
    return results


def _lmcache_tier(plan: Plan, tier: Tier) -> TierResult:
    """LMCache 0.5.6 local CPU / disk backend under vLLM: whole 256-token chunks, one object per worker holding that
    rank's KV of its layers (kv_shape layers x 2 x chunk x heads x head_dim; an MLA latent once), allocations rounded
    up to 4 KiB and counted so against max_local_cpu_size / max_local_disk_size (GiB per worker). For MLA only the
    first rank saves (cache_engine.py:116-120 save_only_first_rank): one copy, whatever the tp."""
    from .cache import size

    if not per_token_only(plan) or any(s.component.endswith("indexer") for s, _ in plan.stage_streams(0)):
        raise UsageError(f"--offload {tier.kind}: LMCache is modelled for caches of whole tokens without DSA indexer "
                         "keys (how vLLM hands the indexer's layer group to LMCache is not read)")  # fmt: skip
    per_rank = size(plan, 1, 1).bytes_per_token  # this worker's bytes of one token, every layer of its stage
    replicated = _replicated(plan, Fraction(per_rank), content_per_token(plan))
    raw = int(per_rank * LMCACHE_CHUNK)
    chunk = -(-raw // LMCACHE_ALIGN) * LMCACHE_ALIGN
    chunks = tier.size // chunk  # per worker; with MLA only the first rank's pool stores
    where = (
        "local CPU backend (max_local_cpu_size)" if tier.kind == "lmcache-cpu" else "local disk (max_local_disk_size)"
    )
    notes = [f"lmcache: whole chunks of {LMCACHE_CHUNK} tokens, {raw:,} B of this rank's KV each, counted as "
             f"{chunk:,} B (4 KiB aligned); --offload {tier.kind} is GiB per worker"]  # fmt: skip
    if replicated:
        notes.append("lmcache: an MLA latent is saved by the first rank only (save_only_first_rank); the other "
                     "ranks' pools stay empty")  # fmt: skip
    ranks = plan.tp * plan.pp
    writers = 1 if replicated else ranks
    # the CPU pools are pinned and allocated whole by every worker; a disk tier takes what is written
    held = tier.size * ranks if tier.kind == "lmcache-cpu" else chunks * chunk * writers
    return TierResult(
        tier=tier.kind, engine=f"LMCache 0.5.6 {where} under vllm {plan.runtime.version}", size_bytes=tier.size,
        chunk_tokens=LMCACHE_CHUNK, chunk_bytes=chunk * writers, copies=1, unique_tokens=chunks * LMCACHE_CHUNK,
        host_bytes_per_engine=held, engines_per_node=_engines_per_node(plan),
        host_bytes_per_node=held * _engines_per_node(plan), notes=tuple(notes),
    )  # fmt: skip


def _sglang_file_tier(plan: Plan, tier: Tier) -> TierResult:
    """SGLang 0.5.23 HiCache L3, file backend (--hicache-storage-backend file, max_size per rank: mem_cache/storage/
    file/lru_file_evictor.py): one file per page of page_size tokens and pool, raw bytes; an MLA cache is written by
    the first tp rank only (hicache_storage.py:68-74 is_storage_writer), K and V by every rank, each within its own
    max_size. The DSA indexer's page is a file of its own, counted in the same cap."""
    streams = plan.stage_streams(0)
    if not per_token_only(plan):
        raise UsageError("--offload disk: SGLang's L3 storage for windows or states is not modelled")
    page = plan.block_size
    page_bytes = sum(s.entry_bytes * n for s, n in streams) * page  # this rank's files of one page
    replicated = _replicated(plan, Fraction(page_bytes, page), content_per_token(plan))
    pages = tier.size // page_bytes
    writers = 1 if replicated else plan.tp
    notes = [
        f"sglang: L3 file backend, one file per page of {page} tokens ({page_bytes:,} B per rank and page, DSA "
        "indexer file included); give its max_size (per rank) as the size: the backend has no cap by default"
    ]
    if replicated:
        notes.append("sglang: the MLA cache is written by the first tp rank only; the others read its files")
    return TierResult(
        tier="disk", engine=f"sglang {plan.runtime.version} HiCache L3 file backend", size_bytes=tier.size,
        chunk_tokens=page, chunk_bytes=page_bytes * writers, copies=1, unique_tokens=pages * page,
        host_bytes_per_engine=pages * page_bytes * writers, engines_per_node=1,
        host_bytes_per_node=pages * page_bytes * writers, notes=tuple(notes),
    )  # fmt: skip


def _engines_per_node(plan: Plan) -> int:
    per_engine = plan.tp * plan.pp
    return max(1, min(plan.dp, GPUS_PER_NODE // per_engine)) if per_engine <= GPUS_PER_NODE else 1


def _vllm_tier(plan: Plan, engine: EngineCapacity, tier: Tier, chunk_blocks: int) -> TierResult:
    version = plan.runtime.numbers
    if tier.kind != "cpu":
        raise UsageError("--offload disk: vLLM's native offload is host memory; a disk tier goes through a connector: "
                         "give lmcache-disk:SIZE (LMCache's local disk, GiB per worker)")  # fmt: skip
    if version < (0, 28):
        raise UsageError("--offload: vLLM's native offload is described from 0.28 (its CPUOffloadingSpec); give "
                         "--runtime vllm@0.28 or later")  # fmt: skip
    if engine.bytes_per_block is None:
        raise UsageError("--offload: vLLM's block for this model is not modelled")
    block = engine.block_size
    per_worker = engine.bytes_per_block
    content = content_per_token(plan)
    replicated = _replicated(plan, Fraction(per_worker, block), content)
    components = {s.component for s in plan.streams}
    notes = []
    if version >= (0, 31):
        eligible = replicated
    else:  # 0.28-0.30 also need one plain MLAAttentionSpec group (not a DSA model's latent + indexer)
        eligible = replicated and components <= {"mla_latent", "mtp"}
    if eligible and (plan.dcp > 1 or plan.tp > GPUS_PER_NODE):
        eligible = False
        notes.append("vllm: one copy needs dcp 1 and a single node")
    copies = 1 if eligible else plan.tp
    if eligible:
        notes.append("vllm: one copy for all tp ranks (replicated_layout; assumes CUDA and the mp executor on one "
                     "node, else tp copies)")  # fmt: skip
    elif replicated:
        notes.append(f"vllm {plan.runtime.version}: the replicated cache is priced x world size {plan.tp} "
                     + ("(a DSA model is one copy from 0.31)" if version < (0, 31) else ""))  # fmt: skip
    chunk_tokens = block * chunk_blocks
    chunk_bytes = -(-per_worker * copies * chunk_blocks // PAGE) * PAGE
    chunks = tier.size // chunk_bytes
    engines = _engines_per_node(plan)
    duplication = copies if replicated else 1
    alternative = ""
    if replicated and copies > 1:  # dp engines of tp 1: one copy each, the host memory split between them
        single = -(-per_worker * chunk_blocks // PAGE) * PAGE
        distinct = tier.size // plan.tp // single * chunk_tokens * plan.tp
        alternative = (f"{plan.tp} engines of tp 1 (dp {plan.tp}) with {tier.size // plan.tp:,} B of offload each, "
                       f"the same host memory, hold {distinct:,} distinct tokens together")  # fmt: skip
    return TierResult(
        tier="cpu", engine=f"vllm {plan.runtime.version} native CPU offload", size_bytes=tier.size,
        chunk_tokens=chunk_tokens, chunk_bytes=chunk_bytes, copies=duplication, unique_tokens=chunks * chunk_tokens,
        host_bytes_per_engine=chunks * chunk_bytes, engines_per_node=engines,
        host_bytes_per_node=chunks * chunk_bytes * engines, alternative=alternative,
        notes=tuple(notes + [f"vllm: whole chunks of {chunk_tokens:,} tokens ({chunk_blocks} block"
                             f"{'' if chunk_blocks == 1 else 's'} of {block}), "
                             f"{chunk_bytes:,} B each with every copy, 4 KiB aligned"]),
    )  # fmt: skip


def _sglang_tier(plan: Plan, engine: EngineCapacity, tier: Tier) -> TierResult:
    streams = plan.stage_streams(0)
    indexer = sum(s.entry_bytes * n for s, n in streams if s.component.endswith("indexer"))
    per_token = sum(s.entry_bytes * n for s, n in streams) - indexer  # the target's row over its layers
    page = plan.block_size
    tokens = (tier.size // per_token // page + 1) * page  # whole pages plus one padding page
    content = content_per_token(plan)
    replicated = _replicated(plan, Fraction(per_token + indexer), content)
    ranks = min(plan.deployment.gpus, GPUS_PER_NODE)
    host = tokens * per_token
    extra = tokens * indexer
    notes = ["sglang: --hicache-size is per rank, in decimal GB (pool_host/base.py); every tp rank keeps its own pool"]
    if indexer:
        notes.append(f"sglang: the DSA indexer host pool ({extra:,} B per rank) is allocated outside --hicache-size")
    alternative = ""
    if replicated:
        alternative = (f"the same content on each of the {plan.tp} ranks; with data-parallel attention (--dp "
                       f"{plan.tp} --enable-dp-attention) each rank's pool holds its own requests, "
                       f"{tokens * plan.tp:,} distinct tokens together")  # fmt: skip
    return TierResult(
        tier="cpu", engine=f"sglang {plan.runtime.version} HiCache", size_bytes=tier.size, chunk_tokens=1,
        chunk_bytes=(per_token + indexer) * ranks, copies=plan.tp if replicated else 1, unique_tokens=tokens,
        host_bytes_per_engine=host * plan.tp, engines_per_node=1, host_bytes_per_node=(host + extra) * ranks,
        extra_bytes_per_engine=extra * plan.tp, alternative=alternative, notes=tuple(notes),
    )  # fmt: skip


def distinct_across(tiers: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> int:
    """Distinct tokens all tiers keep together: the largest tier's. Every tier is written through (LMCache puts each
    chunk to every backend, storage_manager.py:412-431; SGLang backs L2 pages up to L3 after the write-through,
    unified_radix_cache.py:1803-1818) and evicts on its own, so a smaller tier holds no content a larger one lacks
    for long; their sum would count it twice."""
    return max((t["unique_tokens"] for t in tiers), default=0)


@record
class RequestTier:
    """One request of `context` tokens offloaded to a host tier: what the engine stores of it (whole chunks or pages
    only), the host bytes it takes with every copy, and how many such requests the tier holds per engine."""

    tier: str
    engine: str
    context: int
    stored_tokens: int
    host_bytes: int
    requests: int
    copies: int

    def as_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "engine": self.engine, "context": self.context, "stored_tokens": self.stored_tokens,
                "host_bytes": self.host_bytes, "requests": self.requests, "copies": self.copies}  # fmt: skip


def request_offload(plan: Plan, tiers: tuple[Tier, ...], context: int, chunk_blocks: int = 1) -> list[RequestTier]:
    """`estimate --offload`: each tier of `offload` (the same engine rules) priced for one request of `context`
    tokens. vLLM stores whole chunks of a request and SGLang's radix tree whole pages: the tokens past the last full
    one stay on the GPU only."""
    from .capacity import engine_capacity

    out = []
    for result in offload(plan, engine_capacity(plan, 0, context), tiers, chunk_blocks):
        if result.chunk_tokens > 1:  # whole chunks or pages, each of chunk_bytes with every copy
            stored = context // result.chunk_tokens * result.chunk_tokens
            host = stored // result.chunk_tokens * result.chunk_bytes
        else:  # SGLang HiCache: token slots of the per-rank pools, inserted in whole pages
            stored = context // plan.block_size * plan.block_size
            host = int(stored * Fraction(result.host_bytes_per_engine + result.extra_bytes_per_engine,
                                         result.unique_tokens))  # fmt: skip
        out.append(RequestTier(
            tier=result.tier, engine=result.engine, context=context, stored_tokens=stored, host_bytes=host,
            requests=result.unique_tokens // stored if stored else 0, copies=result.copies,
        ))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------------------
# Shared prefixes


@record
class PrefixResult:
    """A shared prefix on an engine: blocks held once, blocks of each request, and requests that fit."""

    prefix_tokens: int
    block_size: int
    shared_blocks: int  # held once
    request_blocks: int  # each request's own blocks (the partial block and the rest)
    requests: int  # requests of `context` tokens sharing the prefix that fit (per engine)
    requests_unshared: int
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, notes=list(self.notes))


def parse_prefix(text: str) -> int:
    return parse_tokens(text, "--shared-prefix")


def shared_prefix(plan: Plan, engine: EngineCapacity | None, available: int, context: int | None,
                  prefix: int) -> PrefixResult:  # fmt: skip
    if context is None:
        raise UsageError("--shared-prefix needs --context: the length of each request, prefix included")
    if prefix > context:
        raise UsageError(f"--shared-prefix {prefix:,} is longer than the requests ({context:,} tokens)")
    matched = min(prefix, context - 1)  # the last token of a request is always computed again
    if engine is not None and engine.uniform and engine.engine == "vllm" and engine.blocks is not None:
        block = engine.block_size
        total = engine.blocks - 1  # the block pool keeps one null block
        notes = ["vllm: whole blocks of the prefix are cached and matched; the null block is not usable"]
    elif engine is not None and engine.uniform and engine.engine == "sglang":
        block = engine.block_size
        total = engine.tokens // block
        notes = ["sglang: the radix tree shares whole pages"]
    elif engine is None and plan.runtime.name == "ideal" and per_token_only(plan):
        block = 1
        per_token = sum(s.entry_bytes * n for s, n in plan.stage_streams(0))
        total = available // per_token
        notes = ["ideal: token by token"]
    else:
        raise UsageError(f"--shared-prefix: {plan.runtime.name}'s sharing for this model (sliding windows, states, "
                         "several block groups) is not modelled")  # fmt: skip
    shared = matched // block
    own = -(-context // block) - shared
    requests = (total - shared) // own if total >= shared else 0
    return PrefixResult(prefix, block, shared, own, requests, total // -(-context // block), tuple(notes))


def per_token_only(plan: Plan) -> bool:
    """Every stream grows one entry per token, unwindowed: bytes are tokens x bytes per token."""
    return all(s.tokens_per_entry == 1 and s.window is None for s, _ in plan.stage_streams(0))


__all__ = [
    "PrefixResult", "RequestTier", "Tier", "TierResult", "distinct_across", "offload", "parse_prefix", "parse_tiers", "per_token_only",
    "request_offload", "shared_prefix",
]  # fmt: skip
