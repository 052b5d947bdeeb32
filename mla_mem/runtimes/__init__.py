"""Runtime profiles: one module per runtime in this package, each defining `PROFILE` (name, aliases, the versions
it describes, its sources, and a `rules` function that says what the runtime stores for a model). Modules are
found by name, so adding a runtime means adding one module (and its tests). The lowering that applies the rules to
every layer kind is lowering.py.

  lower(model, deployment) -> Plan      the cache streams one GPU of each pipeline stage holds
  parse_runtime("vllm@0.11")            -> RuntimeRef("vllm", "0.11")
"""

from __future__ import annotations

import importlib
import re
from dataclasses import replace
from typing import Any

from ..cache import Plan
from ..options import Deployment, OptionError, RuntimeRef
from ..records import record
from ..spec import ModelSpec
from .rules import Rules, RulesFunction

_NOT_PROFILES = {"rules", "lowering", "drafts"}
# The first llama.cpp build known to cache MLA as K only (PR 19067 landed between b7831 and b8054)
LLAMA_CPP_FIRST_BUILD = 8054


@record
class Profile:
    """A runtime profile: its name, the versions it covers and the function that gives a version's rules."""

    name: str
    default_version: str
    low: tuple[int, ...]
    high: tuple[int, ...]
    described: str  # the versions in words, for errors and docs
    rules: RulesFunction
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    order: int = 100  # where it is listed (help, errors)


_PROFILES: dict[str, Profile] = {}
# Every name and alias -> the module of its profile, so that a run imports only the runtime it uses
# (tests/test_runtimes.py checks this table against the profiles' own names and aliases).
MODULES = {"ideal": "ideal", "vllm": "vllm", "sglang": "sglang", "transformers": "transformers", "hf": "transformers",
           "llama.cpp": "llamacpp", "llamacpp": "llamacpp", "llama-cpp": "llamacpp", "trtllm": "trtllm",
           "tensorrt-llm": "trtllm", "tensorrt_llm": "trtllm", "trt-llm": "trtllm"}  # fmt: skip


def profile_of(name: str) -> Profile | None:
    """The profile a name or alias means (importing only its module), or None."""
    module = MODULES.get(name)
    if module is None:
        return None
    profile: Profile = importlib.import_module(f"{__name__}.{module}").PROFILE
    return profile


def profiles() -> dict[str, Profile]:
    """Every runtime module of this package, by profile name, in listing order."""
    if not _PROFILES:
        import pkgutil

        found = []
        for info in pkgutil.iter_modules(__path__):
            if info.name not in _NOT_PROFILES:
                found.append(importlib.import_module(f"{__name__}.{info.name}").PROFILE)
        for profile in sorted(found, key=lambda p: (p.order, p.name)):
            _PROFILES[profile.name] = profile
    return _PROFILES


def __getattr__(name: str) -> Any:
    if name == "RUNTIMES":
        return tuple(profiles())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_runtime(text: str) -> RuntimeRef:
    """'vllm@0.11' -> RuntimeRef('vllm', '0.11'); the version defaults to the newest the profile describes."""
    raw = str(text).strip()
    name, _, version = raw.partition("@")
    key = name.strip().lower()
    found = profile_of(key)
    if found is None:
        import difflib

        known = profiles()
        close = difflib.get_close_matches(key, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise OptionError("runtime", f"unknown runtime {raw!r}{hint}; expected one of: {', '.join(known)}")
    profile = found
    key = profile.name
    if not profile.default_version:
        if version:
            raise OptionError("runtime", f"the {key} runtime has no versions")
        return RuntimeRef(key, "")
    version = version.strip().lstrip("v") or profile.default_version
    if key == "llama.cpp" and re.fullmatch(r"b\d{1,6}", version):
        if int(version[1:]) < LLAMA_CPP_FIRST_BUILD:
            raise OptionError(
                "runtime",
                f"{raw!r}: mla-mem describes llama.cpp builds from b{LLAMA_CPP_FIRST_BUILD} (K-only MLA cache); for "
                "older builds give the era, llama.cpp@2025 or llama.cpp@2024 (GGUFs converted before April 2025)",
            )
        return RuntimeRef(key, version)
    if not re.fullmatch(r"\d+(\.\d+){0,2}", version):
        raise OptionError("runtime", f"{raw!r}: expected a version such as {key}@{profile.default_version}")
    numbers = tuple(int(part) for part in version.split("."))
    if not profile.low <= numbers <= profile.high + (999,):
        raise OptionError("runtime", f"mla-mem describes {key} {profile.described}; {version} is outside that range")
    return RuntimeRef(key, version)


def rules_for(model: ModelSpec, deployment: Deployment) -> Rules:
    profile = profile_of(deployment.runtime.name)
    assert profile is not None
    rules = profile.rules(model, deployment)
    name = profile.name
    if not rules.supports_tp and deployment.tp > 1:
        raise OptionError(
            "tp",
            f"{name}: tensor parallelism is not modelled for this runtime (it keeps every KV head on each device); "
            + ("use pp to split layers" if rules.supports_pp else "use dp for replicas"),
        )
    if not rules.supports_pp and deployment.pp > 1:
        raise OptionError("pp", f"{name}: pipeline parallelism is not modelled for this runtime")
    if not rules.supports_dcp and deployment.dcp > 1:
        raise OptionError("dcp", f"{name}: decode context parallelism is a vLLM feature")
    _check_head_split(model, deployment, name)
    unused = _unused_options(model, deployment, name)
    return replace(rules, notes=rules.notes + tuple(unused)) if unused else rules


# Engines that split the query heads of every attention layer over tp and refuse a tp that does not divide them
# (vLLM ModelConfig.verify_with_parallel_config: "Total number of attention heads (128) must be divisible by tensor
# parallel size (3)"; SGLang and TensorRT-LLM assert the same).
_HEADS_DIVIDE = ("vllm", "sglang", "trtllm")


def _check_head_split(model: ModelSpec, deployment: Deployment, name: str) -> None:
    tp = deployment.attention_tp
    if name not in _HEADS_DIVIDE or tp == 1:
        return
    for kind in model.used_kinds():
        heads = getattr(kind.attention, "heads", None)
        if heads and heads % tp:
            raise OptionError(
                "tp",
                f"{name}: {heads} attention heads of kind {kind.name!r} are not divisible by tp {tp} (the engine "
                "refuses to start); choose a tp that divides them",
            )


def _unused_options(model: ModelSpec, deployment: Deployment, name: str) -> list[str]:
    """One note per option given that the runtime or the model does not use."""
    notes = []
    if deployment.v_dtype and name != "llama.cpp":
        notes.append(f"--v-dtype is a llama.cpp option; {name} ignores it")
    compressed = any(getattr(k.attention, "kind", "") == "compressed" for k in model.used_kinds())
    if deployment.indexer_dtype and not (compressed and name == "vllm"):
        notes.append("--indexer-dtype applies to DeepSeek-V4 on vLLM only; ignored here")
    v41 = bool(model.compress_ratios() & {1, 2})  # SGLang sizes V4.1's window pool by it
    if deployment.max_batched_tokens and name != "vllm" and not (name == "sglang" and v41):
        notes.append(f"--max-batched-tokens is vLLM's max_num_batched_tokens (SGLang's --chunked-prefill-size for "
                     f"DeepSeek-V4.1); {name} ignores it")  # fmt: skip
    if deployment.state_dtype and not any(k.state is not None for k in model.used_kinds()):
        notes.append(f"--state-dtype: {model.name} has no linear-attention or SSM state; ignored")
    if deployment.prefix_caching is not None and name != "vllm" and not (name == "sglang" and v41):
        notes.append(f"--prefix-caching changes vLLM's state pages (SGLang's DeepSeek-V4.1 window pool); {name} "
                     "ignores it")  # fmt: skip
    if deployment.max_running_requests is not None and not (name == "sglang" and compressed):
        notes.append(f"--max-running-requests sizes SGLang's DeepSeek-V4/V4.1 pools only; {name} ignores it for "
                     f"{model.name}")  # fmt: skip
    return notes


def lower(model: ModelSpec, deployment: Deployment | None = None) -> Plan:
    """The streams `deployment.runtime` stores for `model`, per GPU."""
    from .lowering import plan

    deployment = deployment or Deployment()
    lowered = plan(model, deployment, rules_for(model, deployment))
    if deployment.spec in (None, "mtp"):
        return lowered
    from .drafts import attach_draft

    return attach_draft(lowered)


__all__ = ["Profile", "lower", "parse_runtime", "profiles"]
