"""mla-mem: exact KV-cache memory for MLA, GQA, sliding-window and linear-attention models.

>>> import mla_mem
>>> model = mla_mem.load_model("deepseek-v3")
>>> mla_mem.estimate(model, context=131072).total_bytes
9210691584
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .cache import ComponentEstimate, Estimate, Plan, size
from .cache import curve as _curve
from .configs import builtin_models, builtin_names, load_model
from .errors import ConfigError, MlaMemError, UsageError
from .runtimes import Options, lower
from .spec import ModelSpec
from .variants import equivalent_gqa_groups, make_variant

__version__ = "0.1.0"


def plan(
    model: ModelSpec | str,
    *,
    kv_dtype: str | None = None,
    runtime: str = "ideal",
    tp: int = 1,
    pp: int = 1,
    dp: int = 1,
    dcp: int = 1,
    mtp: bool = False,
    block_size: int | None = None,
    state_dtype: str | None = None,
    max_batched_tokens: int | None = None,
    hybrid_allocator: bool = True,
    v_dtype: str | None = None,
    indexer_dtype: str | None = None,
) -> Plan:
    """Lower a model for a runtime and parallel layout: the cache streams one GPU holds."""
    spec = load_model(model)
    options = Options(
        runtime=runtime,
        kv_dtype=kv_dtype,
        tp=tp,
        pp=pp,
        dp=dp,
        dcp=dcp,
        mtp=mtp,
        block_size=block_size,
        state_dtype=state_dtype,
        max_batched_tokens=max_batched_tokens,
        hybrid_allocator=hybrid_allocator,
        v_dtype=v_dtype,
        indexer_dtype=indexer_dtype,
    )
    return lower(spec, options)


def estimate(
    model: ModelSpec | str, context: int, batch: int = 1, kv_dtype: str | None = None, **options: Any
) -> Estimate:
    """Exact KV-cache bytes of `model` at `context` tokens for `batch` sequences.

    `kv_dtype` defaults to the model's dtype; further keyword options (runtime such as "vllm@0.11", tp, pp,
    dp, dcp, mtp, block_size, state_dtype, max_batched_tokens, hybrid_allocator, v_dtype) are those of `plan`."""
    return size(plan(model, kv_dtype=kv_dtype, **options), context, batch)


def curve(
    model: ModelSpec | str,
    contexts: Sequence[int] | Any,
    batch: int = 1,
    kv_dtype: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Allocated bytes per GPU for many contexts at once (numpy arrays), equal to `estimate` at each."""
    return _curve(plan(model, kv_dtype=kv_dtype, **options), contexts, batch)


def variant(model: ModelSpec | str, what: str) -> ModelSpec:
    """The model re-imagined as 'mha', 'gqa:8', 'mqa' or 'mla:256'."""
    return make_variant(load_model(model), what)


_LAZY = {
    "plot": ("plots", "plot"),
    "fit": ("hardware", "fit"),
    "find_gpu": ("hardware", "find_gpu"),
    "gpu_catalogue": ("hardware", "gpu_catalogue"),
    "count_params": ("params", "count_params"),
    "weight_bytes": ("params", "weight_bytes"),
    "check_budgets": ("budgets", "check"),
}


def __getattr__(name: str) -> Any:
    """Heavier parts of the API (plots need matplotlib) load on first use."""
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attribute)
    raise AttributeError(f"module 'mla_mem' has no attribute {name!r}")


__all__ = [
    "ComponentEstimate",
    "ConfigError",
    "Estimate",
    "MlaMemError",
    "ModelSpec",
    "Plan",
    "UsageError",
    "builtin_models",
    "builtin_names",
    "check_budgets",
    "count_params",
    "curve",
    "equivalent_gqa_groups",
    "estimate",
    "find_gpu",
    "fit",
    "gpu_catalogue",
    "load_model",
    "plan",
    "plot",
    "variant",
    "weight_bytes",
]
