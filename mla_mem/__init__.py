"""mla-mem: exact KV-cache memory for MLA, GQA, sliding-window, linear-attention and state-space models.

>>> import mla_mem
>>> model = mla_mem.load_model("deepseek-v3")
>>> mla_mem.estimate(model, context=131072).total_bytes
9210691584

Every function that sizes a cache takes the same deployment options, as keywords or as one `Deployment`
(`mla_mem.deployment(runtime="vllm", tp=8)`): runtime ("vllm@0.33", "transformers@4.57", ...), kv_dtype, v_dtype,
indexer_dtype, state_dtype, tp, pp, dp, dcp, pp_layers, ep, mtp, block_size, max_batched_tokens, hybrid_allocator.
A model is a ModelSpec, a built-in name or alias, a YAML file, a config.json (or its directory) or a params.json.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ConfigError, MlaMemError, UsageError, api_wording

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .cache import ComponentEstimate, Estimate, Plan, size
    from .comparison import Comparison, Diff
    from .configs import builtin_models, builtin_names
    from .hardware import GPU, FitResult
    from .models import load_model
    from .options import Deployment, DeploymentOptions, OptionError, RuntimeRef, deployment
    from .params import ParamCount, WeightBytes
    from .plots import PlotData
    from .spec import ModelSpec
    from .variants import equivalent_gqa_groups

# Imported on first use (PEP 562), so that `mla-mem --version` and the command line start at the floor of their
# own dependencies: name -> module that defines it.
_LAZY = {
    "ComponentEstimate": "cache", "Estimate": "cache", "Plan": "cache", "size": "cache",
    "builtin_models": "configs", "builtin_names": "configs", "load_model": "models",
    "Deployment": "options", "OptionError": "options", "RuntimeRef": "options", "deployment": "options",
    "ModelSpec": "spec", "equivalent_gqa_groups": "variants",
}  # fmt: skip


F = TypeVar("F", bound=Callable[..., Any])


def _api(function: F) -> F:
    """The Python API's errors: the same exception, its message naming keyword arguments instead of the command
    line's flags (errors.api_wording)."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        try:
            return function(*args, **kwargs)
        except MlaMemError as exc:
            exc.args = (api_wording(str(exc)), *exc.args[1:])
            raise

    return call  # type: ignore[return-value]


def __getattr__(name: str) -> Any:  # noqa: ANN401
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mla_mem' has no attribute {name!r}")
    import importlib
    import inspect

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    if inspect.isfunction(value):
        value = _api(value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.4.0"


@_api
def plan(model: ModelSpec | str, deployment: Deployment | None = None, **options: Unpack[DeploymentOptions]) -> Plan:
    """Lower a model for a runtime and deployment: the cache streams one GPU of each pipeline stage holds."""
    from .models import load_model
    from .options import resolve
    from .runtimes import lower

    return lower(load_model(model), resolve(deployment, dict(options)))


@_api
def estimate(
    model: ModelSpec | str,
    context: int,
    batch: int = 1,
    deployment: Deployment | None = None,
    **options: Unpack[DeploymentOptions],
) -> Estimate:
    """Exact KV-cache bytes of `model` at `context` tokens for `batch` sequences, per GPU (see Estimate)."""
    from .cache import size

    return size(plan(model, deployment, **options), context, batch)


@_api
def curve(
    model: ModelSpec | str,
    contexts: Sequence[int] | Any,
    batch: int = 1,
    deployment: Deployment | None = None,
    **options: Unpack[DeploymentOptions],
) -> dict[str, Any]:
    """Allocated bytes per GPU for many contexts at once (numpy arrays), equal to `estimate` at each."""
    from .cache import curve as run

    return run(plan(model, deployment, **options), contexts, batch)


@_api
def variant(model: ModelSpec | str, what: str) -> ModelSpec:
    """The model re-imagined as 'mha', 'gqa:8', 'mqa' or 'mla:256'."""
    from .models import load_model
    from .variants import make_variant

    return make_variant(load_model(model), what)


@_api
def compare(
    models: ModelSpec | str | Sequence[ModelSpec | str],
    variants: Sequence[str] = ("mha", "gqa:8"),
    contexts: Sequence[int] = (4096, 32768, 131072, 1 << 20),
    batch: int = 1,
    deployment: Deployment | None = None,
    **options: Unpack[DeploymentOptions],
) -> Comparison:
    """Each model (one, or several) as built against its what-if variants, at several contexts (see
    comparison.Comparison)."""
    from .comparison import compare as run
    from .options import resolve

    if isinstance(models, str) or not isinstance(models, Sequence):
        models = [models]
    return run(models, variants, contexts, batch, resolve(deployment, dict(options)))


@_api
def diff(
    old: ModelSpec | str,
    new: ModelSpec | str,
    contexts: Sequence[int] = (131072,),
    batch: int = 1,
    deployment: Deployment | None = None,
    max_growth_percent: float | None = None,
    **options: Unpack[DeploymentOptions],
) -> Diff:
    """Two models component by component (see comparison.Diff); `passed` is false when the cache grows more than
    `max_growth_percent`."""
    from .comparison import diff as run
    from .options import resolve

    return run(old, new, contexts, batch, resolve(deployment, dict(options)), max_growth_percent)


@_api
def fit(
    model: ModelSpec | str,
    gpu: GPU | str | None = None,
    *,
    memory: int | str | None = None,
    gpus: int | None = None,
    context: int | None = None,
    batch: int = 1,
    weight_dtype: str | None = None,
    gpu_memory_utilization: float | str | None = None,
    reserve: int | str | None = None,
    kv_cache_memory: int | str | None = None,
    num_gpu_blocks_override: int | None = None,
    offload: str | None = None,
    offload_chunk_blocks: int = 1,
    shared_prefix: int | str | None = None,
    deployment: Deployment | None = None,
    **options: Unpack[DeploymentOptions],
) -> FitResult:
    """Does `model` fit on these GPUs: weights, cache memory, the engine's token capacity and log lines, concurrency,
    longest context. `gpu` is a catalogue name ("H200") or a hardware.GPU, or `memory` the memory of a GPU not in
    the catalogue ("80GiB"); the runtime defaults to vLLM. `gpus` without tp/pp/dp tries every layout and keeps the
    one that holds the most, as the command line does. Sizes are bytes (int) or text with a unit ("5.44GiB");
    `kv_cache_memory` is the engine's own cache budget per GPU. `offload` ("cpu:1TiB") prices host tiers and
    `shared_prefix` requests that share a prefix, by the engine's rules (docs/tiers.md)."""
    from .hardware import fit_model, memory_gpu, unspecified_gpu

    if gpu is None:
        if memory is None and kv_cache_memory is None:
            raise UsageError("give gpu (a catalogue name, see gpu_catalogue()) or memory (e.g. '80GiB')")
        gpu = memory_gpu(memory, "memory") if memory is not None else unspecified_gpu()
    elif memory is not None:
        raise UsageError("give gpu or memory, not both")
    return fit_model(
        model, gpu, gpus=gpus, context=context, batch=batch, weight_dtype=weight_dtype,
        gpu_memory_utilization=gpu_memory_utilization, reserve=reserve, kv_cache_memory=kv_cache_memory,
        num_gpu_blocks_override=num_gpu_blocks_override, deployment=deployment, options=dict(options),
        offload=offload, offload_chunk_blocks=offload_chunk_blocks, shared_prefix=shared_prefix,
    )  # fmt: skip


@_api
def plot(models: ModelSpec | str | Sequence[ModelSpec | str], **kwargs: Any) -> tuple[Any, PlotData]:  # noqa: ANN401
    """(matplotlib Figure, plotted data) of KV cache against context for one model or several; see plots.build for
    the options (variants, min_context, max_context, batch, gpu or memory, gpus, cache_memory, breakdown, log_y,
    units and the deployment options)."""
    from .plots import plot as run

    if isinstance(models, str) or not isinstance(models, Sequence):
        models = [models]
    return run(list(models), **kwargs)  # type: ignore[arg-type]


@_api
def gpu_catalogue() -> list[GPU]:
    """The GPUs mla-mem knows, with their memory as the device reports it."""
    from .hardware import gpu_catalogue as run

    return run()


@_api
def find_gpu(name: str) -> GPU:
    """A GPU of the catalogue by name or alias ("H200", "h100-sxm")."""
    from .hardware import find_gpu as run

    return run(name)


@_api
def count_params(model: ModelSpec | str) -> ParamCount:
    """Total and active parameters counted from the model's dims (its `weights` section)."""
    from .models import load_model
    from .params import count_params as run

    return run(load_model(model))


@_api
def weight_bytes(model: ModelSpec | str, dtype: str | None = None, mtp: bool = False) -> WeightBytes:
    """Weight memory in the checkpoint's format (or `dtype`), experts and the rest apart."""
    from .models import load_model
    from .params import weight_bytes as run

    return run(load_model(model), dtype, mtp)


@_api
def check_budgets(paths: Sequence[str]) -> list[Any]:
    """Verdicts of budget files (docs/budgets.md), one per limit; bad entries give error verdicts."""
    from .budgets import check

    return check(list(paths))


__all__ = [
    "ComponentEstimate",
    "ConfigError",
    "Deployment",
    "Estimate",
    "MlaMemError",
    "ModelSpec",
    "OptionError",
    "Plan",
    "RuntimeRef",
    "UsageError",
    "builtin_models",
    "builtin_names",
    "check_budgets",
    "compare",
    "count_params",
    "curve",
    "deployment",
    "diff",
    "equivalent_gqa_groups",
    "estimate",
    "find_gpu",
    "fit",
    "gpu_catalogue",
    "load_model",
    "plan",
    "plot",
    "size",
    "variant",
    "weight_bytes",
]
