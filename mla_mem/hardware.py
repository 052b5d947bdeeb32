"""GPUs, weight placement and the capacity solver behind `mla-mem fit`.

Memory on one GPU:
  usable     = device memory x gpu_memory_utilization          (vLLM's default utilisation 0.9)
  weights    = dense weights / (tp x pp) + routed experts / (tp x pp x ep)   (even split; ep = dp with expert
               parallelism, as DeepSeek-style MoE is served with data-parallel attention)
  available  = usable - weights - reserve                       (reserve: activations, CUDA graphs, non-torch)
The cache must fit in `available` on every GPU; capacity is counted the way the runtime counts it (whole blocks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from .cache import Plan, beyond_max_context, size
from .configs import builtin_dir
from .errors import UsageError
from .options import Deployment, resolve
from .runtimes import lower
from .spec import ModelSpec
from .units import MAX_CONTEXT, parse_size
from .yamlio import Section, load_yaml, read_text


@dataclass(frozen=True)
class GPU:
    name: str
    memory_bytes: int
    nominal: str = ""
    source: str = ""
    aliases: tuple[str, ...] = ()


def _norm(text: str) -> str:
    return text.strip().lower().replace("_", "-").replace(" ", "-")


def gpu_catalogue(path: Path | None = None) -> list[GPU]:
    path = path or builtin_dir() / "gpus.yaml"
    data = load_yaml(read_text(path), str(path))
    top = Section(data, str(path))
    entries = top.get_list("gpus") or []
    gpus = []
    for index, entry in enumerate(entries):
        section = Section(entry, str(path), f"gpus[{index}]")
        section.expect(("name", "nominal", "aliases", "memory_mib", "source"))
        name = section.get_str("name", required=True)
        assert name is not None
        aliases = tuple(str(a) for a in (section.get_list("aliases") or []))
        gpus.append(
            GPU(
                name=name,
                memory_bytes=section.req_int("memory_mib", maximum=1 << 24) * 2**20,
                nominal=section.get_str("nominal") or "",
                source=section.get_str("source") or "",
                aliases=aliases,
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


@dataclass(frozen=True)
class FitResult:
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
        out["vllm_log"] = (
            self.vllm_lines() if self.runtime.startswith("vllm") and self.capacity_kind == "blocks" else None
        )
        return out

    def vllm_lines(self) -> list[str]:
        """The two lines vLLM logs at start-up (vllm/v1/core/kv_cache_utils.py), for this deployment."""
        lines = [f"GPU KV cache size: {self.token_capacity:,} tokens"]
        if self.context is not None and self.concurrency_per_gpu_group is not None:
            lines.append(
                f"Maximum concurrency for {self.context:,} tokens per request: "
                f"{float(self.concurrency_per_gpu_group):.2f}x"
            )
        return lines


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
    if size(plan, 1, batch).total_bytes > available:
        return 0
    low, high = 1, 2
    while high <= limit and size(plan, high, batch).total_bytes <= available:
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        mid = (low + high) // 2
        if size(plan, mid, batch).total_bytes <= available:
            low = mid
        else:
            high = mid
    return low


def _weights_per_gpu(model: ModelSpec, plan: Plan, weight_dtype: str | None, notes: list[str]) -> tuple[int, str]:
    """(weight bytes on the most loaded GPU, weight format): dense weights split over tp x pp, routed experts also
    over dp when experts are sharded (expert parallelism)."""
    from .params import weight_bytes

    tp, pp, dp = plan.tp, plan.pp, plan.dp
    counted = None
    if model.weights is not None:
        try:
            counted = weight_bytes(model, weight_dtype, mtp=plan.mtp)
        except UsageError as exc:
            if "not modelled" not in str(exc):
                raise
            notes.append(f"weights: {exc}; used the published parameter count")
    if counted is not None:
        assert model.weights is not None
        use_ep = plan.deployment.ep if plan.deployment.ep is not None else (dp > 1 and model.weights.experts > 0)
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


def fit(
    model: ModelSpec,
    gpu: GPU,
    deployment: Deployment,
    *,
    weight_dtype: str | None = None,
    gpu_memory_utilization: Fraction = Fraction(9, 10),
    reserve: int = 2 * 2**30,
    context: int | None = None,
    batch: int = 1,
    plan: Plan | None = None,
) -> FitResult:
    """Does `model` fit on tp x pp x dp GPUs of this kind, and how much cache is left for requests? `plan` is the
    model already lowered for `deployment`, when the caller has it."""
    plan = plan or lower(model, deployment)
    tp, pp, dp = plan.tp, plan.pp, plan.dp
    notes = list(plan.notes) + list(beyond_max_context(model, context or 0))

    usable = int(gpu.memory_bytes * gpu_memory_utilization)
    per_gpu, dtype_name = _weights_per_gpu(model, plan, weight_dtype, notes)
    available = usable - per_gpu - reserve
    weights_fit = available > 0
    probe = size(plan, 1, 1)
    uniform = _uniform_blocks(plan)
    num_blocks = None
    if uniform is not None:
        block, block_bytes = uniform
        num_blocks = max(0, available) // block_bytes
        capacity = num_blocks * block * plan.dcp
        kind = "blocks"
    else:
        capacity = longest_context(plan, 1, available) if weights_fit else 0
        kind = "single sequence"
    max_concurrency = concurrency = longest = cache = None
    fits = weights_fit
    if context is not None:
        per_sequence = size(plan, context, 1).total_bytes
        per_gpu_sequences = max(0, available) // per_sequence if per_sequence else 0
        max_concurrency = per_gpu_sequences * dp
        if uniform is not None and num_blocks is not None:
            blocks_per_request = -(-context // (uniform[0] * plan.dcp))
            concurrency = Fraction(num_blocks, blocks_per_request)
        else:
            concurrency = Fraction(per_gpu_sequences)
        cache = size(plan, context, batch).total_bytes
        fits = weights_fit and cache <= available
    if weights_fit:
        longest = longest_context(plan, batch, available)
    return FitResult(
        model=model.name, gpu=gpu.name, gpus=tp * pp * dp, tp=tp, pp=pp, dp=dp, runtime=str(plan.runtime),
        kv_dtype=plan.kv_dtype, weight_dtype=dtype_name, memory_bytes=gpu.memory_bytes, usable_bytes=usable,
        weight_bytes=per_gpu, reserve_bytes=reserve, available_bytes=available, bytes_per_token=probe.bytes_per_token,
        block_size=plan.block_size, token_capacity=capacity, capacity_kind=kind, num_blocks=num_blocks,
        context=context, batch=batch if context is not None else None, max_concurrency=max_concurrency,
        concurrency_per_gpu_group=concurrency, longest_context=longest, cache_bytes=cache, weights_fit=weights_fit,
        fits=fits, notes=tuple(notes),
    )  # fmt: skip


def fit_model(
    model: ModelSpec | str,
    gpu: GPU | str,
    *,
    gpus: int | None = None,
    context: int | None = None,
    batch: int = 1,
    weight_dtype: str | None = None,
    gpu_memory_utilization: float | str | Fraction = "0.9",
    reserve: int | str = "2GiB",
    deployment: Deployment | None = None,
    options: dict[str, Any] | None = None,
) -> FitResult:
    """The API form of `fit`: names for the model and the GPU, loose values for the settings; the runtime defaults
    to vLLM and tp to every GPU."""
    from .models import load_model

    values = dict(options or {})
    if deployment is None:
        values.setdefault("runtime", "vllm")
    if gpus is not None:
        pp = int(values.get("pp", 1) or 1)
        dp = int(values.get("dp", 1) or 1)
        values.setdefault("tp", max(1, gpus // (pp * dp)))
    chosen = resolve(deployment, values)
    if gpus is not None and chosen.gpus != gpus:
        raise UsageError(f"tp {chosen.tp} x pp {chosen.pp} x dp {chosen.dp} = {chosen.gpus}, not gpus {gpus}")
    device = gpu if isinstance(gpu, GPU) else find_gpu(gpu)
    return fit(
        load_model(model), device, chosen, weight_dtype=weight_dtype,
        gpu_memory_utilization=parse_fraction(gpu_memory_utilization, "gpu_memory_utilization"),
        reserve=parse_size(reserve, "reserve"), context=context, batch=batch,
    )  # fmt: skip


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
    layouts of the next GPU count follow as runner-ups, so the trade-off is visible."""

    def fitting(count: int) -> list[FitResult]:
        found = []
        for tp in (1, 2, 4, 8):
            for pp in (1, 2, 4):
                if count % (tp * pp):
                    continue
                try:
                    layout = deployment.with_(tp=tp, pp=pp, dp=count // (tp * pp), pp_layers=None)
                    result = fit(model, gpu, layout, context=context, batch=batch, **kwargs)
                except UsageError:
                    continue
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
    return []


def memory_gpu(text: str, what: str = "memory") -> GPU:
    """A GPU of `--memory 80GiB` for anything not in the catalogue."""
    return GPU(name=f"custom {text}", memory_bytes=parse_size(text, what), nominal="user-given memory")


__all__ = ["GPU", "FitResult", "find_gpu", "fit", "fit_model", "gpu_catalogue", "search"]
