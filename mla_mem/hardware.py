"""GPUs, weight placement and the capacity solver behind `mla-mem fit`.

Memory on one GPU:
  usable     = device memory x gpu_memory_utilization          (vLLM's default utilisation 0.9)
  weights    = dense weights / (tp x pp) + routed experts / (tp x pp x ep)   (even split; ep = dp with expert
               parallelism, as DeepSeek-style MoE is served with data-parallel attention)
  available  = usable - weights - reserve                       (reserve: activations, CUDA graphs, non-torch)
The cache must fit in `available` on every GPU; capacity is counted the way the runtime counts it (whole blocks).
"""

from __future__ import annotations

from dataclasses import field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from .cache import Plan, beyond_max_context, size, total_bytes
from .capacity import EngineCapacity, engine_capacity
from .configs import builtin_dir
from .errors import UsageError
from .options import Deployment, resolve
from .overhead import Around, default_batched_tokens, given, modelled
from .records import record
from .runtimes import lower
from .runtimes.rules import VLLM_MAX_BATCHED_TOKENS
from .spec import ModelSpec
from .units import MAX_CONTEXT, format_bytes, parse_size
from .yamlio import Section, load_yaml, read_text


@record
class GPU:
    """A GPU of the catalogue: its memory as nvidia-smi / rocm-smi and CUDA report it, with sources."""

    name: str
    memory_bytes: int  # the total nvidia-smi / rocm-smi prints (SGLang's gpu_mem)
    nominal: str = ""
    source: str = ""
    aliases: tuple[str, ...] = ()
    cuda_bytes: int | None = None  # the total CUDA reports (torch.cuda.mem_get_info()[1]); engines budget from it
    cuda_source: str = ""
    compute_capability: str = ""  # "9.0"; "" for AMD and user-given memory
    estimated: bool = False  # a nominal figure, no device reading

    @property
    def budget_bytes(self) -> int:
        """The device total engines budget from: CUDA's figure when known, else the smi total."""
        return self.cuda_bytes or self.memory_bytes

    @property
    def sm_major(self) -> int | None:
        return int(self.compute_capability.split(".")[0]) if self.compute_capability else None


def _norm(text: str) -> str:
    return text.strip().lower().replace("_", "-").replace(" ", "-")


def gpu_catalogue(path: Path | None = None) -> list[GPU]:
    """The GPUs of configs/gpus.yaml (from the disk cache when unchanged), or of another catalogue file."""
    if path is None:
        from .configs import cached

        gpus: list[GPU] = cached(builtin_dir() / "gpus.yaml", _read_catalogue, group="gpus")
        return gpus
    return _read_catalogue(path)


def _read_catalogue(path: Path) -> list[GPU]:
    data = load_yaml(read_text(path), str(path))
    top = Section(data, str(path))
    entries = top.get_list("gpus") or []
    gpus = []
    for index, entry in enumerate(entries):
        section = Section(entry, str(path), f"gpus[{index}]")
        section.expect(("name", "nominal", "aliases", "memory_mib", "source", "cuda_mib", "cuda_bytes",
                        "cuda_source", "compute_capability", "estimated"))  # fmt: skip
        name = section.get_str("name", required=True)
        assert name is not None
        aliases = tuple(str(a) for a in (section.get_list("aliases") or []))
        cuda = section.get_int("cuda_bytes", required=False, maximum=1 << 44)
        cuda_mib = section.get_int("cuda_mib", required=False, maximum=1 << 24)
        gpus.append(
            GPU(
                name=name,
                memory_bytes=section.req_int("memory_mib", maximum=1 << 24) * 2**20,
                nominal=section.get_str("nominal") or "",
                source=section.get_str("source") or "",
                aliases=aliases,
                cuda_bytes=cuda if cuda is not None else (cuda_mib * 2**20 if cuda_mib is not None else None),
                cuda_source=section.get_str("cuda_source") or "",
                compute_capability=section.get_str("compute_capability") or "",
                estimated=bool(section.get_bool("estimated")),
            )
        )
    return gpus


def find_gpu(name: str) -> GPU:
    wanted = _norm(name)
    catalogue = gpu_catalogue()
    for gpu in catalogue:
        if wanted == _norm(gpu.name) or wanted in (_norm(a) for a in gpu.aliases):
            return gpu
    import difflib

    names = [g.name for g in catalogue]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"--gpu: unknown GPU {name!r}{hint}; known: {', '.join(names)}; or give --memory 80GiB")


def parse_fraction(text: str | float | Fraction, what: str) -> Fraction:
    try:
        value = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{what}: expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value <= 1:
        raise UsageError(f"{what}: expected a number between 0 and 1, got {text!r}")
    return value


@record
class FitResult:
    """The result of `fit`: a model on a layout of GPUs, its weights, cache and what fits, per GPU."""

    model: str
    gpu: str
    gpus: int
    tp: int
    pp: int
    dp: int
    runtime: str
    kv_dtype: str
    weight_dtype: str
    memory_bytes: int
    usable_bytes: int
    weight_bytes: int
    reserve_bytes: int
    available_bytes: int
    bytes_per_token: Fraction
    block_size: int
    token_capacity: int
    capacity_kind: str  # "blocks" (runtime block arithmetic) or "single sequence" (longest context, batch 1)
    num_blocks: int | None
    context: int | None
    batch: int | None
    max_concurrency: int | None  # whole sequences of `context` tokens, whole deployment
    concurrency_per_gpu_group: Fraction | None  # vLLM's "Maximum concurrency" (blocks / blocks per request)
    longest_context: int | None  # at `batch`
    cache_bytes: int | None  # cache per GPU at context x batch
    weights_fit: bool
    fits: bool
    notes: tuple[str, ...] = field(default=())
    around: dict[str, Any] = field(default_factory=dict)  # the memory around the cache, by term (overhead.py)
    memory_rule: str = ""  # how the engine arrives at its cache memory
    fraction: Fraction | None = None  # gpu_memory_utilization / mem_fraction_static / free_gpu_memory_fraction
    engine_lines: tuple[str, ...] = ()  # what the engine logs for this deployment
    dp_attention: bool = False
    smi_bytes: int = 0  # the device total nvidia-smi prints
    tiers: tuple[dict[str, Any], ...] = ()  # offload tiers (tiers.TierResult.as_dict)
    prefix: dict[str, Any] | None = None  # requests sharing a prefix (tiers.PrefixResult.as_dict)
    params_total: int | None = None  # the main model's parameters (MTP aside)
    params_active: int | None = None  # per token
    params_source: str = ""  # "checkpoint" (its headers), "dims" (counted from the dims) or "published"

    def __str__(self) -> str:
        """The table `mla-mem` prints for this result."""
        from .render import result_text

        return result_text(self)

    def _repr_html_(self) -> str:
        from .render import result_html

        return result_html(self)

    def as_dict(self) -> dict[str, Any]:
        from .units import json_number

        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, Fraction):
                out[key] = json_number(value) if value.denominator == 1 else float(value)
            elif isinstance(value, tuple):
                out[key] = list(value)
            else:
                out[key] = value
        return out


def weights_per_gpu(total_dense: int, total_expert: int, tp: int, pp: int, ep: int) -> int:
    return -(-total_dense // (tp * pp)) + -(-total_expert // (tp * pp * ep))


def _uniform_blocks(plan: Plan) -> tuple[int, int] | None:
    """(block tokens, bytes of one block across the worst stage's layers) when every stream grows one entry per
    token with the same block: the case where vLLM's block arithmetic is a single division."""
    blocks = set()
    for stream in plan.streams:
        if stream.is_state or stream.window is not None or stream.tokens_per_entry != 1 or stream.token_shards != 1:
            return None
        blocks.add(stream.block)
    if len(blocks) != 1:
        return None
    block = blocks.pop()
    worst = 0
    for stage in range(len(plan.stages)):
        worst = max(worst, sum(count * stream.page for stream, count in plan.stage_streams(stage)))
    return block, worst


def longest_context(plan: Plan, batch: int, available: int, limit: int = MAX_CONTEXT) -> int:
    """The largest n with size(plan, n, batch) <= available (0 if not even one token fits)."""
    if total_bytes(plan, 1, batch) > available:
        return 0
    low, high = 1, 2
    while high <= limit and total_bytes(plan, high, batch) <= available:
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        mid = (low + high) // 2
        if total_bytes(plan, mid, batch) <= available:
            low = mid
        else:
            high = mid
    return low


def _checkpoint_weights(model: ModelSpec, plan: Plan, weight_dtype: str | None, notes: list[str]) -> Any:  # noqa: ANN401
    """The checkpoint's own weight bytes (safetensors headers, GGUF tensor table) as params.WeightBytes, when the
    model has a checkpoint and no --weight-dtype overrides it; a Hub checkpoint that cannot be reached falls back to
    the dims with a note, a malformed local file is an error."""
    if model.checkpoint is None:
        return None
    if (weight_dtype or "auto").lower() != "auto":
        notes.append(f"weights: --weight-dtype {weight_dtype} counts the dims instead of the checkpoint's headers")
        return None
    from .checkpoint import measured
    from .params import WeightBytes

    try:
        read = measured(model.checkpoint, model.layers, model.path)
    except UsageError as exc:
        if not model.checkpoint.startswith("hf:"):
            raise
        notes.append(f"weights: the checkpoint's headers were not read ({exc}); counted from the dims")
        return None
    dense, expert = read.dense(plan.mtp), read.routed(plan.mtp)
    notes.append(f"weights: {read.total:,} B as stored, from the {read.source}"
                 + ("" if plan.mtp or not read.mtp else f" ({read.mtp:,} B of MTP layers left out: --mtp counts them)"))  # fmt: skip
    return WeightBytes(
        total=dense + expert, expert=expert, dense=dense, dtype=read.dtype_text, attention=read.attention
    )


def model_params(model: ModelSpec) -> tuple[int | None, int | None, str]:
    """(total, active, where from) of the main model (MTP layers aside): the checkpoint's headers when it has a
    readable local one (active: routed experts scaled by experts_per_token / experts), else the dims, else the
    published counts."""
    counted = None
    if model.weights is not None:
        from .params import count_params

        try:
            counted = count_params(model)
        except UsageError:
            counted = None
    if model.checkpoint is not None and not model.checkpoint.startswith("hf:"):
        from .checkpoint import measured

        read = measured(model.checkpoint, model.layers, model.path)
        total = read.params - read.mtp_params
        active = None
        w = model.weights
        if w is not None and w.experts:
            active = total - read.expert_params + read.expert_params * w.experts_per_token // w.experts
        return total, active, "checkpoint"
    if counted is not None:
        return counted.total, counted.active, "dims"
    return model.params.total, model.params.active, "published"


def _weights_per_gpu(model: ModelSpec, plan: Plan, weight_dtype: str | None, notes: list[str]) -> tuple[int, str]:
    """(weight bytes on the most loaded GPU, weight format), the draft model's weights included."""
    per_gpu, dtype = _own_weights_per_gpu(model, plan, weight_dtype, notes)
    if plan.deployment.draft is None:
        return per_gpu, dtype
    from .models import load_model

    draft = load_model(plan.deployment.draft)
    try:
        extra, _ = _own_weights_per_gpu(draft, lower(draft, plan.deployment.with_(spec=None, draft=None)), None, [])
    except UsageError as exc:
        notes.append(f"draft weights not counted: {exc}")
        return per_gpu, dtype
    notes.append(f"draft {draft.name}: {extra:,} B of weights per GPU (split like the target's)")
    return per_gpu + extra, dtype


def _own_weights_per_gpu(model: ModelSpec, plan: Plan, weight_dtype: str | None, notes: list[str]) -> tuple[int, str]:
    """(weight bytes on the most loaded GPU, weight format): dense weights split over tp x pp, routed experts also
    over dp when experts are sharded (expert parallelism)."""
    from .params import weight_bytes

    tp, pp, dp = plan.tp, plan.pp, plan.dp
    counted = _checkpoint_weights(model, plan, weight_dtype, notes)
    if counted is None and model.weights is not None:
        try:
            counted = weight_bytes(model, weight_dtype, mtp=plan.mtp)
        except UsageError as exc:
            if "not modelled" not in str(exc):
                raise
            notes.append(f"weights: {exc}; used the published parameter count")
        if counted is not None and model.vision is not None:
            notes.append("weights: the language model's, from its dims; the vision tower's are not counted (an engine "
                         "serving the model as multimodal loads them too; a checkpoint's headers count them)")  # fmt: skip
    if counted is not None:
        if plan.deployment.dp_attention:
            # SGLang data-parallel attention: attention weights whole on every rank of the tp group (attention tp =
            # tp / dp), the rest (MLP, experts, embeddings) split over the tp group
            group = tp * pp
            attention_tp = plan.deployment.attention_tp
            notes.append(f"dp attention: attention weights split over {attention_tp}, the rest over the {group} GPUs")
            return (-(-counted.attention // (attention_tp * pp)) + -(-(counted.dense - counted.attention) // group)
                    + -(-counted.expert // group), counted.dtype)  # fmt: skip
        use_ep = plan.deployment.ep if plan.deployment.ep is not None else (dp > 1 and counted.expert > 0)
        if use_ep:
            notes.append(f"routed experts sharded over tp x pp x dp = {tp * pp * dp} GPUs (expert parallel)")
        return weights_per_gpu(counted.dense, counted.expert, tp, pp, dp if use_ep else 1), counted.dtype
    # no per-tensor count: the published total at the given width
    if model.params.total is None:
        raise UsageError(f"{model.name}: no `weights` section and no published params.total; cannot size weights")
    name = (weight_dtype or "auto").lower()
    widths = {"bf16": Fraction(2), "fp16": Fraction(2), "auto": Fraction(1), "fp8": Fraction(1)}
    if name not in widths:
        raise UsageError(f"weight_dtype: only bf16 or fp8 when weights come from params.total, got {weight_dtype!r}")
    width = widths[name]
    notes.append(f"weights from the published parameter count {model.params.total:,} x {width} B per parameter")
    return int(-(-model.params.total * width // (tp * pp))), ("fp8" if width == 1 else "bf16")


@record
class _Budget:
    """The bytes an engine gives its cache on one GPU, what it may use, the fraction and the rule applied."""

    cache: int
    usable: int
    fraction: Fraction
    rule: str


def _engine_budget(plan: Plan, gpu: GPU, fraction: Fraction | None, weights: int, around: Around,
                   notes: list[str], cache_given: bool = False) -> _Budget:  # fmt: skip
    """The bytes the engine gives its cache per GPU, by its own rule (`cache_given`: the engine's cache memory is
    known, so a default this cannot compute only bounds the weights by the device)."""
    device = gpu.budget_bytes
    name = plan.runtime.name
    if name == "sglang":
        if not gpu.memory_bytes:  # no GPU, only the engine's own cache memory (--kv-cache-memory): no fraction
            return _Budget(0, 0, fraction or Fraction(0), "no GPU given")
        from .sglang_memory import mem_fraction, multimodal_reserve

        if fraction is None:
            try:
                fraction = mem_fraction(gpu.memory_bytes // 2**20, plan, notes)
            except UsageError:
                if not cache_given:
                    raise
                fraction = Fraction(1)
                notes.append(f"sglang {plan.runtime.version}: its default mem_fraction_static is not modelled; the "
                             "weights are checked against the whole device")  # fmt: skip
        # model_runner profile_max_num_token: rest = free after weights - free before weights x (1 - mfs)
        before = device - around.non_torch
        usable = int(before * fraction)
        reserve = multimodal_reserve(plan)
        if reserve:
            notes.append(f"sglang: {reserve // 2**20} MiB of the cache budget kept for the multimodal feature cache")
        return _Budget(
            usable - weights - reserve,
            usable,
            fraction,
            "(device - non-torch) x mem_fraction_static - weights (activations and graphs live in the rest)",
        )
    fraction = fraction if fraction is not None else Fraction(9, 10)
    if name == "trtllm":
        # KvCacheCreator: available = (total - peak incl. weights, activations, non-torch) x free_gpu_memory_fraction
        free = device - weights - around.total
        return _Budget(
            int(free * fraction),
            device,
            fraction,
            "(device - weights - activation - non-torch) x free_gpu_memory_fraction",
        )
    # vLLM: requested = ceil(total x gpu_memory_utilization) (0.14+), then minus what the profile run measured
    usable = -(-device * fraction.numerator // fraction.denominator)
    return _Budget(
        usable - weights - around.total,
        usable,
        fraction,
        "ceil(device x gpu_memory_utilization) - weights - activation - non-torch - CUDA graphs",
    )


def _weights_unless_given(
    model: ModelSpec, plan: Plan, weight_dtype: str | None, kv_cache_memory: int | None, notes: list[str]
) -> tuple[int, str]:
    """Weights per GPU; when the model cannot say and the cache memory is given, they do not matter."""
    try:
        return _weights_per_gpu(model, plan, weight_dtype, notes)
    except UsageError as exc:
        if kv_cache_memory is None:
            raise UsageError(f"{exc}; give the model a `weights` section or params.total, or give --kv-cache-memory "
                             "(the engine's cache memory, which makes weights irrelevant)") from None  # fmt: skip
        notes.append(f"weights not counted ({exc}): the cache memory was given")
        return 0, "unknown"


@record
class Beyond:
    """What `fit` prices beyond the GPU pool: offload tiers (tiers.Tier), vLLM's blocks per offloaded chunk, and a
    prefix every request shares."""

    offload: tuple[Any, ...] = ()
    chunk_blocks: int = 1
    shared_prefix: int | None = None


def _beyond(plan: Plan, engine: Any, available: int, context: int | None, beyond: Beyond) -> dict[str, Any]:  # noqa: ANN401
    from .tiers import offload, shared_prefix

    out: dict[str, Any] = {"tiers": tuple(t.as_dict() for t in offload(plan, engine, beyond.offload,
                                                                       beyond.chunk_blocks))}  # fmt: skip
    if beyond.shared_prefix is not None:
        out["prefix"] = shared_prefix(plan, engine, available, context, beyond.shared_prefix).as_dict()
    return out


def _on_gpu(deployment: Deployment, gpu: GPU) -> tuple[Deployment, list[str]]:
    """The deployment with what the GPU decides filled in: its compute capability (SGLang's DSA cache dtype) and
    vLLM's default max_num_batched_tokens, which sizes windows and states (the tokens in flight)."""
    notes = []
    if deployment.compute_capability is None and gpu.compute_capability:
        deployment = deployment.with_(compute_capability=gpu.compute_capability)
    if deployment.runtime.name == "vllm" and deployment.max_batched_tokens is None and gpu.memory_bytes:
        tokens = default_batched_tokens(gpu.budget_bytes, gpu.name, deployment.runtime.numbers)
        if tokens != VLLM_MAX_BATCHED_TOKENS:
            deployment = deployment.with_(max_batched_tokens=tokens)
            notes.append(f"vllm: max_num_batched_tokens {tokens:,}, its default on {gpu.name} "
                         "(engine/arg_utils.py get_batch_defaults); --max-batched-tokens sets it")  # fmt: skip
    return deployment, notes


def fit(
    model: ModelSpec,
    gpu: GPU,
    deployment: Deployment,
    *,
    weight_dtype: str | None = None,
    gpu_memory_utilization: Fraction | None = None,
    reserve: int | None = None,
    kv_cache_memory: int | None = None,
    num_gpu_blocks_override: int | None = None,
    context: int | None = None,
    batch: int = 1,
    plan: Plan | None = None,
    beyond: Beyond | None = None,
) -> FitResult:
    """Does `model` fit on these GPUs, and how much cache is left for requests? `kv_cache_memory` (per GPU) is the
    engine's cache budget as its log or --kv-cache-memory states it; without it the budget follows the engine's rule
    from the device memory, the weights and the memory around the cache (overhead.py, or `reserve`). `plan` is the
    model already lowered for `deployment`, when the caller has it."""
    on_gpu, gpu_notes = _on_gpu(deployment, gpu)
    plan = lower(model, on_gpu) if plan is None or on_gpu != deployment else plan
    tp, pp, dp = plan.tp, plan.pp, plan.dp
    notes = list(plan.notes) + list(beyond_max_context(model, context or 0)) + gpu_notes
    if gpu.cuda_bytes is None and kv_cache_memory is None:
        notes.append(f"{gpu.name}: no CUDA-reported total known; nvidia-smi's total used (engines see slightly less)")
    if gpu.estimated:
        notes.append(f"{gpu.name}: memory is a nominal figure, not a device reading")
    per_gpu, dtype_name = _weights_unless_given(model, plan, weight_dtype, kv_cache_memory, notes)
    around = given(reserve) if reserve is not None else (modelled(plan, gpu.budget_bytes, gpu.name) or given(2 * 2**30))
    if around.source == "--reserve" and reserve is None:
        notes.append("memory around the cache: 2 GiB assumed (the model file has no weights section with widths)")
    budget = _engine_budget(plan, gpu, gpu_memory_utilization, per_gpu, around, notes, kv_cache_memory is not None)
    available = budget.cache
    rule = budget.rule
    if kv_cache_memory is not None:
        available = kv_cache_memory
        rule = "as given, the engine's own figure"
    weights_fit = available > 0 and (per_gpu < budget.usable or not gpu.memory_bytes)
    if not gpu.memory_bytes:  # no GPU given, only the engine's cache memory: nothing else to check
        notes.append("no GPU given: the weights and the memory around the cache are not checked")
    probe = size(plan, 1, 1)
    engine = engine_capacity(plan, max(0, available), context, num_gpu_blocks_override, gpu.memory_bytes or None)
    num_blocks = None
    if engine is not None:
        capacity, kind, num_blocks = engine.tokens, "engine", engine.blocks
        notes += engine.notes
    else:
        capacity = longest_context(plan, 1, available) if weights_fit else 0
        kind = "single sequence"
    max_concurrency = concurrency = longest = cache = None
    fits = weights_fit
    if context is not None:
        per_sequence = size(plan, context, 1).total_bytes
        per_gpu_sequences = max(0, available) // per_sequence if per_sequence else 0
        concurrency = (
            engine.concurrency if engine is not None and engine.concurrency is not None else Fraction(per_gpu_sequences)
        )
        max_concurrency = int(concurrency) * dp
        cache = size(plan, context, batch).total_bytes
        fits = weights_fit and cache <= available
    if engine is not None and engine.needed is not None:  # the engine's own start-up check
        fits = fits and engine.needed <= (engine.check if engine.check is not None else available)
    if weights_fit:
        longest = _longest(plan, engine, batch, available, notes)
    params = model_params(model)
    extras = _beyond(plan, engine, available, context, beyond) if beyond else {}
    return FitResult(
        model=model.name, gpu=gpu.name, gpus=plan.gpus, tp=tp, pp=pp, dp=dp, runtime=str(plan.runtime),
        kv_dtype=plan.kv_dtype, weight_dtype=dtype_name, memory_bytes=gpu.budget_bytes, usable_bytes=budget.usable,
        weight_bytes=per_gpu, reserve_bytes=around.total, available_bytes=available,
        bytes_per_token=probe.bytes_per_token, block_size=engine.block_size if engine else plan.block_size,
        token_capacity=capacity, capacity_kind=kind, num_blocks=num_blocks, context=context,
        batch=batch if context is not None else None, max_concurrency=max_concurrency,
        concurrency_per_gpu_group=concurrency, longest_context=longest, cache_bytes=cache, weights_fit=weights_fit,
        fits=fits, notes=tuple(notes), around=around.as_dict() if kv_cache_memory is None else {}, memory_rule=rule,
        fraction=budget.fraction, engine_lines=engine.lines if engine else (), dp_attention=plan.deployment.dp_attention,
        smi_bytes=gpu.memory_bytes, params_total=params[0], params_active=params[1], params_source=params[2],
        **extras,
    )  # fmt: skip


def _longest(plan: Plan, engine: EngineCapacity | None, batch: int, available: int, notes: list[str]) -> int:
    """The longest context `batch` requests hold in `available` bytes; where the engine draws every request's
    tokens from one pool (SGLang's DeepSeek-V4/V4.1 full pool, sized after the window pool), at most its share."""
    longest = longest_context(plan, batch, available)
    if engine is not None and engine.pool_tokens is not None:
        pooled = engine.pool_tokens // engine.block_size // batch * engine.block_size
        if pooled < longest:
            notes.append(f"longest context: {pooled:,} tokens, the engine's full pool of {engine.pool_tokens:,} tokens "
                         f"in pages of {engine.block_size} shared by {batch:,} request(s) (the bytes alone would "
                         f"allow {longest:,})")  # fmt: skip
            longest = pooled
    return longest


LAYOUT_KEYS = ("tp", "pp", "dp", "pp_layers", "dp_attention")


def layout_on(values: dict[str, Any], count: int) -> Deployment:
    """The Deployment of `count` GPUs with the layout options in `values` (tp, pp, dp, dp_attention) filled in:
    tp takes the GPUs pp and dp leave. SGLang's `--tp N --dp D` on N GPUs is its data-parallel attention (the dp
    ranks split the tp group: sglang/srt/server_args.py, enable_dp_attention)."""
    from .options import deployment

    values = {k: v for k, v in values.items() if v is not None}
    pp = values.get("pp") or 1
    sglang = str(values.get("runtime") or "").startswith("sglang")
    if sglang and values.get("dp") and values.get("tp") and values["tp"] * pp == count and values["dp"] > 1:
        values["dp_attention"] = True
    if values.get("tp") is None:
        values["tp"] = max(1, count // (pp * (1 if values.get("dp_attention") else values.get("dp") or 1)))
    if values.get("dp") is None:
        values["dp"] = 1 if values.get("dp_attention") else max(1, count // (values["tp"] * pp))
    chosen = deployment(**values)
    if chosen.gpus != count:
        raise UsageError(f"tp {chosen.tp} x pp {chosen.pp} x dp {chosen.dp} = {chosen.gpus} GPUs, not the {count} "
                         f"GPUs given; choose tp, pp and dp whose product is {count}")  # fmt: skip
    return chosen


def fit_model(
    model: ModelSpec | str,
    gpu: GPU | str,
    *,
    gpus: int | None = None,
    context: int | None = None,
    batch: int = 1,
    weight_dtype: str | None = None,
    gpu_memory_utilization: float | str | Fraction | None = None,
    reserve: int | str | None = None,
    kv_cache_memory: int | str | None = None,
    num_gpu_blocks_override: int | None = None,
    deployment: Deployment | None = None,
    options: dict[str, Any] | None = None,
    offload: str | tuple[Any, ...] | None = None,
    offload_chunk_blocks: int = 1,
    shared_prefix: int | str | None = None,
) -> FitResult:
    """`fit` as the command line and the API mean it: names for the model and the GPU, loose values for the
    settings, the runtime vLLM unless given. `gpus` without a layout tries every layout on that many GPUs and keeps
    the one that holds the most (best_layout); with tp/pp/dp the rest is filled in (layout_on)."""
    from .models import load_model

    values = {k: v for k, v in (options or {}).items() if v is not None}
    if deployment is None:
        values.setdefault("runtime", "vllm")
    spec = load_model(model)
    device = gpu if isinstance(gpu, GPU) else find_gpu(gpu)
    settings: dict[str, Any] = {
        "weight_dtype": weight_dtype,
        "gpu_memory_utilization": None if gpu_memory_utilization is None
        else parse_fraction(gpu_memory_utilization, "gpu_memory_utilization"),
        "reserve": None if reserve is None else parse_size(reserve, "reserve"),
        "kv_cache_memory": None if kv_cache_memory is None else parse_size(kv_cache_memory, "kv_cache_memory"),
        "num_gpu_blocks_override": num_gpu_blocks_override,
    }  # fmt: skip
    if offload or shared_prefix is not None:
        from .tiers import parse_tiers
        from .units import parse_tokens

        tiers = parse_tiers(offload, "offload") if isinstance(offload, str) else tuple(offload or ())
        prefix = parse_tokens(shared_prefix, "shared_prefix") if shared_prefix is not None else None
        if not 1 <= offload_chunk_blocks <= 1 << 20:
            raise UsageError(f"offload_chunk_blocks: expected a positive block count, got {offload_chunk_blocks}")
        settings["beyond"] = Beyond(tiers, offload_chunk_blocks, prefix)
    if gpus is not None and deployment is None:
        if all(not values.get(k) for k in LAYOUT_KEYS):
            return best_layout(spec, device, resolve(None, values), gpus, context=context, batch=batch, **settings)
        chosen = layout_on(values, gpus)
    else:
        chosen = resolve(deployment, values)
        if gpus is not None and chosen.gpus != gpus:
            raise UsageError(f"tp {chosen.tp} x pp {chosen.pp} x dp {chosen.dp} = {chosen.gpus} GPUs, not the {gpus} "
                             f"GPUs given")  # fmt: skip
    return fit(spec, device, chosen, context=context, batch=batch, **settings)


def search(
    model: ModelSpec,
    gpu: GPU,
    deployment: Deployment,
    *,
    context: int,
    batch: int,
    max_gpus: int = 128,
    **kwargs: Any,
) -> list[FitResult]:
    """Layouts that fit, smallest GPU count first, then by how many requests of `context` tokens they hold; the
    layouts of the next GPU count follow as runner-ups, so the trade-off is visible. When no layout could even be
    sized (the model has no weights, the runtime refuses it), the first reason is raised instead of "does not fit"."""
    refused: list[UsageError] = []
    sized = 0

    def fitting(count: int) -> list[FitResult]:
        nonlocal sized
        found = []
        for tp in (1, 2, 4, 8):
            for pp in (1, 2, 4):
                if count % (tp * pp):
                    continue
                try:
                    layout = deployment.with_(tp=tp, pp=pp, dp=count // (tp * pp), pp_layers=None)
                    result = fit(model, gpu, layout, context=context, batch=batch, **kwargs)
                except UsageError as exc:  # a layout the engine does not allow (heads that tp does not divide, ...)
                    refused.append(exc)
                    continue
                sized += 1
                if result.fits:
                    found.append(result)
        return found

    count = 1
    while count <= max_gpus:
        results = fitting(count)
        if results:
            key = lambda r: (r.gpus, -(r.max_concurrency or 0), r.pp, r.tp)  # noqa: E731
            return sorted(results, key=key) + sorted(fitting(count * 2), key=key)[:3]
        count *= 2
    if not sized and refused:
        raise refused[0]
    return []


def layouts_on(model: ModelSpec, count: int, deployment: Deployment) -> list[Deployment]:
    """Every layout the engine allows on exactly `count` GPUs: tp x pp x dp (vLLM, TRT-LLM: data-parallel replicas,
    experts sharded over all of them), and for SGLang also data-parallel attention inside the tp group."""
    found = []
    for tp in (t for t in (1, 2, 4, 8, 16, 32) if count % t == 0):
        for pp in (p for p in (1, 2, 4, 8) if count % (tp * p) == 0):
            dp = count // (tp * pp)
            try:
                found.append(deployment.with_(tp=tp, pp=pp, dp=dp, pp_layers=None, dp_attention=False))
                if deployment.runtime.name == "sglang" and tp > 1 and pp == 1:
                    for inner in (d for d in (2, 4, 8, 16, 32) if d <= tp and tp % d == 0):
                        found.append(deployment.with_(tp=tp, pp=1, dp=inner, pp_layers=None, dp_attention=True))
            except UsageError:
                continue
    return found


def best_layout(
    model: ModelSpec, gpu: GPU, deployment: Deployment, count: int, *, context: int | None, batch: int, **kwargs: Any
) -> FitResult:
    """`fit` on `count` GPUs with the layout that holds the most: requests of `context` tokens, else tokens. The
    result's notes compare it with pure tensor parallelism (every GPU in one tp group)."""
    results = []
    for layout in layouts_on(model, count, deployment):
        try:
            results.append(fit(model, gpu, layout, context=context, batch=batch, **kwargs))
        except UsageError:
            continue
    pure = next((r for r in results if r.tp == count and r.pp == 1 and not r.dp_attention), None)
    if not results:
        return fit(model, gpu, deployment.with_(tp=count), context=context, batch=batch, **kwargs)

    def held(r: FitResult) -> tuple[int, int, int]:
        requests = r.max_concurrency if r.max_concurrency is not None else 0
        tokens = r.token_capacity * (1 if r.dp_attention else r.dp) * (r.dp if r.dp_attention else 1)
        return (int(r.fits), requests if context is not None else tokens, -r.pp)

    best = max(results, key=held)
    if pure is None or best is pure:
        return replace(best, notes=best.notes + (f"layout: pure tensor parallelism (tp {count}) holds the most of "
                                                  f"the {len(results)} layouts tried",))  # fmt: skip
    what = f"requests of {context:,} tokens" if context is not None else "tokens"

    def name(r: FitResult) -> str:
        return f"tp {r.tp} x pp {r.pp} x dp {r.dp}" + (" (dp attention)" if r.dp_attention else "")

    def versus(r: FitResult) -> str:
        mine, theirs = held(r)[1], held(pure)[1]
        return f"{name(r)} holds {mine:,} {what}" + (f" ({mine / theirs:.1f}x pure tp)" if theirs else "")

    others = sorted((r for r in results if r is not best and r is not pure and r.pp == 1), key=held, reverse=True)
    text = [versus(best), f"pure tp {count} holds {held(pure)[1]:,}"] + [versus(r) for r in others[:1]]
    note = "layout: " + "; ".join(text) + f" ({len(results)} layouts tried; giving tp, pp or dp chooses one)"
    if model.first_mla() is not None:
        note += "; every tensor-parallel rank keeps the whole MLA latent, so tp adds no cache room"
    return replace(best, notes=best.notes + (note,))


UNSPECIFIED = "unspecified GPU"


def unspecified_gpu() -> GPU:
    """The GPU of a `fit` that gives the engine's cache memory and no GPU: its memory does not enter the result."""
    return GPU(name=UNSPECIFIED, memory_bytes=0, nominal="not given: the cache memory is the engine's own figure")


def memory_gpu(value: int | str, what: str = "memory") -> GPU:
    """A GPU of `--memory 80GiB` (API: memory="80GiB" or bytes) for anything not in the catalogue."""
    size = parse_size(value, what)
    name = value if isinstance(value, str) else format_bytes(size)
    return GPU(name=f"custom {name}", memory_bytes=size, nominal="user-given memory")


__all__ = ["GPU", "FitResult", "find_gpu", "fit", "fit_model", "gpu_catalogue", "search"]
