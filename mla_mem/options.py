"""How a model is served: one typed value, built and validated here, whether it comes from the command line, a
budget entry or the Python API.

    Deployment(runtime=RuntimeRef("vllm", "0.33"), kv_dtype="fp8", tp=8, ...)
    deployment(runtime="vllm@0.33", kv_dtype="fp8", tp=8)        # from loose values, validated

Errors name the option by its field (`OptionError.field`, e.g. "tp"); the command line shows it as `--tp`, a budget
file as `budgets[2].tp` with its line, the API as `tp`. Checks that need the model (heads that must divide, layers
per stage) happen when the model is lowered (runtimes.lower).
"""

from __future__ import annotations

import re
from dataclasses import field, fields, replace
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .records import record
from .units import parse_tokens

if TYPE_CHECKING:
    from typing_extensions import TypedDict, Unpack  # noqa: F401 - re-exported for signatures

MAX_PARALLEL = 4096


class OptionError(UsageError):
    """A bad deployment option: `field` is the Deployment field, `detail` the message without it."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        self.detail = message
        super().__init__(f"{field_name}: {message}")


@record
class RuntimeRef:
    """A runtime profile and the version it describes ('' for the ideal runtime)."""

    name: str = "ideal"
    version: str = ""

    @property
    def numbers(self) -> tuple[int, ...]:
        """The version as numbers; a llama.cpp build bNNNN is (2026, NNNN): a 2026 build."""
        if self.version.startswith("b"):
            return (2026, int(self.version[1:]))
        return tuple(int(part) for part in self.version.split(".")) if self.version else ()

    def __str__(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name

    @property
    def spec(self) -> str:
        """NAME@VERSION, as the option is spelled."""
        return f"{self.name}@{self.version}" if self.version else self.name


@record
class Deployment:
    """Runtime, cache formats, parallel layout and engine settings. Every field has a meaning on every command
    that prints bytes; fields a runtime does not use give a note, not an error."""

    runtime: RuntimeRef = field(default_factory=RuntimeRef)
    kv_dtype: str | None = None  # cache dtype (None: the model's dtype, or the engine's default)
    v_dtype: str | None = None  # llama.cpp V cache type when it differs from K
    indexer_dtype: str | None = None  # DeepSeek-V4 indexer keys on vLLM: fp8, mxfp4, bf16
    state_dtype: str | None = None  # linear / SSM state dtype (vLLM mamba_ssm_cache_dtype)
    tp: int = 1
    pp: int = 1
    dp: int = 1
    dcp: int = 1
    pp_layers: tuple[int, ...] | None = None  # an explicit pipeline split (VLLM_PP_LAYER_PARTITION)
    ep: bool | None = None  # expert parallelism (None: on for MoE with dp > 1)
    mtp: bool = False
    block_size: int | None = None
    max_batched_tokens: int | None = None
    max_running_requests: int | None = None  # SGLang --max-running-requests (None: 256 for DeepSeek-V4/V4.1)
    hybrid_allocator: bool = True
    prefix_caching: bool | None = None  # None: the runtime's default (vLLM: on; for hybrid models from 0.26)
    # SGLang --enable-dp-attention: the dp attention ranks live inside the tp group (GPUs = tp x pp, attention
    # tp = tp / dp; each rank keeps its own requests' cache)
    dp_attention: bool = False
    compute_capability: str | None = None  # the GPU's, e.g. "10.0" (engines pick defaults by it)
    # speculative decoding: the method and, for EAGLE-style drafts, the draft model (any MODEL reference); the
    # draft's cache is lowered by the runtime's rule (runtimes/drafts.py)
    spec: str | None = None  # eagle | eagle3 | mtp | dspark
    draft: str | None = None

    @property
    def gpus(self) -> int:
        return self.tp * self.pp if self.dp_attention else self.tp * self.pp * self.dp

    @property
    def attention_tp(self) -> int:
        """Ranks that split one attention layer's heads (tp, or tp / dp with data-parallel attention)."""
        return self.tp // self.dp if self.dp_attention else self.tp

    @property
    def sm_major(self) -> int | None:
        return int(self.compute_capability.split(".")[0]) if self.compute_capability else None

    @property
    def layout(self) -> str:
        text = f"tp {self.tp}, pp {self.pp}, dp {self.dp}" + (" (dp attention)" if self.dp_attention else "")
        return text + (f", dcp {self.dcp}" if self.dcp > 1 else "")

    def with_(self, **changes: Any) -> Deployment:
        """A copy with some fields changed, validated like `deployment()`."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["runtime"] = self.runtime.spec
        values.update(changes)
        return deployment(**values)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["runtime"] = str(self.runtime)
        out["pp_layers"] = list(self.pp_layers) if self.pp_layers else None
        return out


if TYPE_CHECKING:

    class DeploymentOptions(TypedDict, total=False):
        """The keyword options of every API function that lowers a model (see Deployment)."""

        runtime: str | RuntimeRef
        kv_dtype: str | None
        v_dtype: str | None
        indexer_dtype: str | None
        state_dtype: str | None
        tp: int
        pp: int
        dp: int
        dcp: int
        pp_layers: str | list[int] | tuple[int, ...] | None
        ep: bool | None
        mtp: bool
        block_size: int | None
        max_batched_tokens: int | str | None
        max_running_requests: int | None
        hybrid_allocator: bool
        prefix_caching: bool | None
        dp_attention: bool
        compute_capability: str | None
        spec: str | None
        draft: str | None


FIELDS = tuple(f.name for f in fields(Deployment))


def _positive(name: str, value: Any, maximum: int = MAX_PARALLEL) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(name, f"expected a positive integer, got {value!r}")
    if value < 1:
        raise OptionError(name, f"expected a positive integer, got {value}")
    if value > maximum:
        raise OptionError(name, f"{value:,} is beyond any real deployment (at most {maximum:,})")
    return value


def _optional_name(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise OptionError(name, f"expected a name such as fp8 or bf16, got {value!r}")
    return value.strip()


def _flag(name: str, value: Any, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        raise OptionError(name, f"expected true or false, got {value!r}")
    return value


def parse_pp_layers(value: Any) -> tuple[int, ...] | None:
    """'16,32' or [16, 32] -> (16, 32): layers per pipeline stage, as VLLM_PP_LAYER_PARTITION spells it."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
        if not all(re.fullmatch(r"\d+", part) for part in parts):
            raise OptionError("pp_layers", f"expected layer counts per stage such as 16,32, got {value!r}")
        items: list[Any] = [int(part) for part in parts]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise OptionError("pp_layers", f"expected layer counts per stage such as 16,32, got {value!r}")
    counts = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise OptionError("pp_layers", f"every stage needs at least one layer, got {item!r}")
        counts.append(item)
    if not counts:
        raise OptionError("pp_layers", "expected at least one stage")
    return tuple(counts)


def deployment(
    runtime: str | RuntimeRef = "ideal",
    kv_dtype: str | None = None,
    v_dtype: str | None = None,
    indexer_dtype: str | None = None,
    state_dtype: str | None = None,
    tp: int = 1,
    pp: int | None = None,
    dp: int = 1,
    dcp: int = 1,
    pp_layers: str | list[int] | tuple[int, ...] | None = None,
    ep: bool | None = None,
    mtp: bool = False,
    block_size: int | None = None,
    max_batched_tokens: int | str | None = None,
    max_running_requests: int | None = None,
    hybrid_allocator: bool = True,
    prefix_caching: bool | None = None,
    dp_attention: bool = False,
    compute_capability: str | None = None,
    spec: str | None = None,
    draft: str | None = None,
) -> Deployment:
    """A validated Deployment from loose values (strings as a user types them, or typed values)."""
    from .runtimes import parse_runtime

    ref = runtime if isinstance(runtime, RuntimeRef) else parse_runtime(runtime)
    stages = parse_pp_layers(pp_layers)
    pp_value = _positive("pp", pp) if pp is not None else (len(stages) if stages else 1)
    if stages is not None and len(stages) != pp_value:
        raise OptionError("pp_layers", f"gives {len(stages)} stages but pp is {pp_value}")
    batched = None
    if max_batched_tokens is not None:
        try:
            batched = parse_tokens(max_batched_tokens, "max_batched_tokens", maximum=1 << 30)
        except UsageError as exc:
            raise OptionError("max_batched_tokens", str(exc).split(": ", 1)[-1]) from None
    block = None if block_size is None else _positive("block_size", block_size, 1 << 20)
    method, draft_model, mtp = _speculative(spec, draft, mtp)
    result = Deployment(
        runtime=ref,
        kv_dtype=_optional_name("kv_dtype", kv_dtype),
        v_dtype=_optional_name("v_dtype", v_dtype),
        indexer_dtype=_optional_name("indexer_dtype", indexer_dtype),
        state_dtype=_optional_name("state_dtype", state_dtype),
        tp=_positive("tp", tp),
        pp=pp_value,
        dp=_positive("dp", dp),
        dcp=_positive("dcp", dcp),
        pp_layers=stages,
        ep=_flag("ep", ep, allow_none=True),
        mtp=_flag("mtp", mtp),
        block_size=block,
        max_batched_tokens=batched,
        max_running_requests=None
        if max_running_requests is None
        else _positive("max_running_requests", max_running_requests, 1 << 20),
        hybrid_allocator=_flag("hybrid_allocator", hybrid_allocator),
        prefix_caching=_flag("prefix_caching", prefix_caching, allow_none=True),
        dp_attention=_flag("dp_attention", dp_attention),
        compute_capability=_capability(compute_capability),
        spec=method,
        draft=draft_model,
    )
    if result.dp_attention:
        if result.runtime.name != "sglang":
            raise OptionError("dp_attention", f"is SGLang's --enable-dp-attention; {result.runtime.name} runs data "
                              "parallel attention as dp replicas (--dp, GPUs = tp x pp x dp)")  # fmt: skip
        if result.tp % result.dp:
            raise OptionError("dp", f"{result.dp} must divide tp {result.tp} with data-parallel attention")

    if result.tp % result.dcp:
        raise OptionError("dcp", f"{result.dcp} must divide tp {result.tp} (decode context parallel runs inside TP)")
    return result


SPEC_METHODS = ("eagle", "eagle3", "mtp", "dspark")


def _speculative(spec: Any, draft: Any, mtp: Any) -> tuple[str | None, str | None, bool]:
    """(method, draft model, mtp): a draft alone means EAGLE-3; `mtp` is the method that needs no draft model."""
    method = _optional_name("spec", spec)
    if method is not None:
        method = method.lower().replace("-", "")
        if method not in SPEC_METHODS:
            raise OptionError("spec", f"expected one of {', '.join(SPEC_METHODS)}, got {spec!r}")
    if draft is not None and (not isinstance(draft, str) or not draft.strip()):
        raise OptionError("draft", f"expected a model (a name, a file or a Hub id), got {draft!r}")
    if draft is not None and method is None:
        method = "eagle3"
    if method in ("eagle", "eagle3") and draft is None:
        raise OptionError("spec", f"{method} needs the draft model: give --draft MODEL")
    if method == "mtp":
        if draft is not None:
            raise OptionError("draft", "MTP uses the model's own MTP layers; no draft model")
        mtp = True
    if method == "dspark":
        if draft is not None:
            raise OptionError("draft", "DSpark's draft layers come with the target checkpoint; no draft model")
        mtp = True  # the draft stages are the checkpoint's MTP layers (vLLM 0.33 deepseek_v41/nvidia/dspark.py)
    return method, draft.strip() if draft is not None else None, mtp


def _capability(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not re.fullmatch(r"\d{1,2}\.\d", text):
        raise OptionError(
            "compute_capability", f"expected a CUDA compute capability such as 9.0 or 10.0, got {value!r}"
        )
    return text


def resolve(value: Deployment | None, options: dict[str, Any]) -> Deployment:
    """The Deployment an API call means: `value` (or the default) with keyword options applied."""
    unknown = [key for key in options if key not in FIELDS]
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r}; expected one of {', '.join(FIELDS)}")
    if value is None:
        return deployment(**options)
    if not isinstance(value, Deployment):
        raise UsageError(f"deployment: expected a Deployment, got {type(value).__name__}")
    return value.with_(**options) if options else value


__all__ = ["Deployment", "OptionError", "RuntimeRef", "deployment", "replace"]
