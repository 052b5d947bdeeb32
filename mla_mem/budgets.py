"""Budget files -> typed budgets -> verdicts: the CI gate (`mla-mem check`).

A budget names a model and a scenario and sets limits; each limit becomes a verdict with the measured value, the
limit and the headroom (negative: overshoot or shortfall) in bytes (or tokens, requests) and in percent of the
limit, from exact integers. Passing at the limit exactly passes; one unit over fails. A budget that states a GPU
also gets a verdict that the deployment fits there. An entry that cannot be read or checked is an ERROR verdict
for that entry; the other entries are still checked.
"""

from __future__ import annotations

import os
from dataclasses import field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import ConfigError, MlaMemError, UsageError
from .options import Deployment, OptionError
from .records import record
from .units import format_bytes, format_number, parse_count, parse_size, parse_tokens
from .yamlio import Section, load_yaml, read_text

LIMITS = {
    # key: (what is measured, unit, direction)
    "max_bytes_per_token": ("cache bytes per token (per GPU)", "bytes", "max"),
    "max_cache_per_gpu": ("cache per GPU", "bytes", "max"),
    "max_total_cache": ("cache on all GPUs", "bytes", "max"),
    "min_context_that_fits": ("longest context that fits", "tokens", "min"),
    "min_concurrency": ("requests that fit", "requests", "min"),
    "min_offload_tokens": ("distinct tokens in the offload tiers", "tokens", "min"),
    "min_shared_requests": ("requests sharing the prefix that fit", "requests", "min"),
}
DEPLOYMENT_KEYS = tuple(f.name for f in fields(Deployment))
HARDWARE_KEYS = ("gpu", "gpus", "memory", "weight_dtype", "gpu_memory_utilization", "reserve", "offload",
                 "shared_prefix")  # fmt: skip
SCENARIO_KEYS = ("model", "context", "batch") + DEPLOYMENT_KEYS + HARDWARE_KEYS
BUDGET_KEYS = ("name",) + SCENARIO_KEYS + tuple(LIMITS)
MAX_BUDGET_FILE = 1 << 20


@record
class Budget:
    """One entry of a budget file, its defaults merged, every value parsed."""

    name: str
    file: str
    key: str  # budgets[i]
    line: int | None
    lines: tuple[tuple[str, int], ...]
    model: str
    deployment: Deployment
    context: int | None = None
    batch: int = 1
    gpu: str | None = None
    gpus: int | None = None
    memory: int | None = None
    weight_dtype: str | None = None
    gpu_memory_utilization: Fraction | None = None
    reserve: int | None = None
    offload: tuple[Any, ...] = ()  # tiers.Tier
    shared_prefix: int | None = None
    limits: tuple[tuple[str, int], ...] = ()

    def line_of(self, key: str) -> int | None:
        return dict(self.lines).get(key, self.line)


@record
class Verdict:
    """One limit of one budget held against what was measured: PASS, FAIL or ERROR."""

    budget: str
    limit_key: str
    what: str
    unit: str
    measured: int
    limit: int
    status: str  # PASS | FAIL | ERROR
    headroom: int  # limit - measured for max limits, measured - limit for min limits (negative: a miss)
    percent: Fraction  # headroom / limit x 100
    file: str
    line: int | None
    model: str
    error: str | None = field(default=None)

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    def measured_text(self, units: str = "binary") -> str:
        return "" if self.error else _value_text(self.measured, self.unit, units)

    def limit_text(self, units: str = "binary") -> str:
        return "" if self.error else _value_text(self.limit, self.unit, units)

    def headroom_text(self, units: str = "binary") -> str:
        minimum = self.limit_key.startswith("min")
        word = "headroom" if self.headroom >= 0 else ("short by" if minimum else "over by")
        return f"{word} {_value_text(abs(self.headroom), self.unit, units)} ({float(abs(self.percent)):.2f}%)"

    def headroom_cell(self, units: str = "binary") -> str:
        """Signed, for tables: '+1.00 GiB (+1,073,741,824 B) (+5.00%)' or '-...'."""
        if self.error:
            return ""
        sign = "+" if self.headroom >= 0 else "-"
        return f"{_value_text(abs(self.headroom), self.unit, units, sign)} ({float(self.percent):+.2f}%)"

    def message(self, units: str = "binary") -> str:
        if self.error:
            return f"{self.budget}: {self.error}"
        if self.limit_key == "fits":
            return f"{self.budget}: {self.what}" + ("" if self.passed else f" ({self.headroom_text(units)})")
        sign = "<=" if self.limit_key.startswith("max") else ">="
        if not self.passed:
            sign = ">" if self.limit_key.startswith("max") else "<"
        return (
            f"{self.budget}: {self.what} {self.measured_text(units)} {sign} {self.limit_text(units)} "
            f"({self.headroom_text(units)})"
        )

    def __str__(self) -> str:
        return f"{self.status} {self.message()}"

    def as_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "model": self.model, "limit": self.limit_key, "what": self.what,
                "unit": self.unit, "measured": self.measured, "limit_value": self.limit, "passed": self.passed,
                "status": self.status, "headroom": self.headroom, "headroom_percent": float(self.percent),
                "file": self.file, "line": self.line, "error": self.error}  # fmt: skip


def _value_text(value: int, unit: str, units: str, sign: str = "") -> str:
    if unit == "bytes":
        if value >= 1024:
            return f"{sign}{format_bytes(value, units)} ({sign}{format_number(value)} B)"
        return f"{sign}{value:,} B"
    return f"{sign}{value:,} {unit}"


def _line_of(entry: Any) -> int | None:
    lines = getattr(entry, "lines", None) or {}
    return min(lines.values()) if lines else None


# ---------------------------------------------------------------------------------------------------------
# Reading


@record
class BadEntry:
    """A budget entry that cannot be read: its name (or its key when it has none) and the error."""

    name: str
    error: ConfigError


def load_budgets(path: str) -> tuple[str, list[Budget | BadEntry]]:
    """(file, entries): each entry a Budget, or a BadEntry naming what is wrong with it."""
    file = str(path)
    data = load_yaml(read_text(Path(path), MAX_BUDGET_FILE), file)
    if data is None:
        raise ConfigError(file, "", "the file is empty; expected `budgets:` (a list)")
    top = Section(data, file)
    if "layers" in top.data and "budgets" not in top.data:
        raise ConfigError(file, "", "this is a model file (it has `layers:`), not a budget file")
    top.expect(("defaults", "budgets"))
    defaults: dict[str, Any] = {}
    default_lines: dict[str, int] = {}
    defaults_section = top.section("defaults", required=False)
    if defaults_section is not None:
        defaults_section.expect(SCENARIO_KEYS + tuple(LIMITS))
        defaults = dict(defaults_section.data)
        default_lines = dict(defaults_section.lines)
    entries = top.get_list("budgets")
    if not entries:
        raise ConfigError(file, "budgets", "is required: a non-empty list of budgets", top.line("budgets"))
    out: list[Budget | BadEntry] = []
    names: set[str] = set()
    for index, entry in enumerate(entries):
        key = f"budgets[{index}]"
        try:
            budget = parse_budget(entry, file, key, defaults, default_lines, top.line("budgets"))
            if budget.name in names:
                raise ConfigError(file, f"{key}.name", f"duplicate budget name {budget.name!r}", budget.line_of("name"))
            names.add(budget.name)
            out.append(budget)
        except ConfigError as exc:
            name = entry.get("name") if isinstance(entry, dict) else None
            out.append(BadEntry(name if isinstance(name, str) and name.strip() else key, exc))
    return file, out


def parse_budget(
    entry: Any, file: str, key: str, defaults: dict[str, Any], default_lines: dict[str, int], line: int | None
) -> Budget:
    section = Section(entry, file, key, line)
    section.expect(BUDGET_KEYS)
    name = section.get_str("name", required=True)
    assert name is not None
    lines = {**default_lines, **section.lines}
    merged = {**defaults, **{k: v for k, v in section.data.items() if k != "name"}}
    where = _line_of(entry) or line

    def fail(field_name: str, message: str) -> ConfigError:
        return ConfigError(file, f"{key}.{field_name}", message, lines.get(field_name, where))

    def parse(field_name: str, parser: Any, *args: Any) -> Any:
        try:
            return parser(merged[field_name], *args)
        except UsageError as exc:
            raise fail(field_name, str(exc).split(": ", 1)[-1]) from None

    model = merged.get("model")
    if not isinstance(model, str) or not model.strip():
        raise fail("model", "is required (a built-in name, YAML path or config.json)")
    limits = []
    for limit_key, (_, unit, _) in LIMITS.items():
        if limit_key in merged:
            parser = {"bytes": parse_size, "tokens": parse_tokens}.get(unit, lambda v, w: parse_count(v, w, 1 << 40))
            limits.append((limit_key, parse(limit_key, parser, f"{key}.{limit_key}")))
    values = {k: merged[k] for k in DEPLOYMENT_KEYS if k in merged}
    try:
        from .options import deployment

        chosen = deployment(**values)
    except OptionError as exc:
        raise fail(exc.field, exc.detail) from None
    budget = Budget(
        name=name, file=file, key=key, line=where, lines=tuple(lines.items()), model=model.strip(), deployment=chosen,
        context=parse("context", parse_tokens, f"{key}.context") if "context" in merged else None,
        batch=parse("batch", parse_count, f"{key}.batch") if "batch" in merged else 1,
        gpu=str(merged["gpu"]) if "gpu" in merged else None,
        gpus=parse("gpus", parse_count, f"{key}.gpus", 4096) if "gpus" in merged else None,
        memory=parse("memory", parse_size, f"{key}.memory") if "memory" in merged else None,
        weight_dtype=str(merged["weight_dtype"]) if "weight_dtype" in merged else None,
        gpu_memory_utilization=_utilization(parse, merged), limits=tuple(limits),
        reserve=parse("reserve", parse_size, f"{key}.reserve") if "reserve" in merged else None,
        offload=parse("offload", _tiers, f"{key}.offload") if "offload" in merged else (),
        shared_prefix=parse("shared_prefix", parse_tokens, f"{key}.shared_prefix") if "shared_prefix" in merged else None,
    )  # fmt: skip
    _check_budget(budget, fail)
    return budget


def _utilization(parse: Any, merged: dict[str, Any]) -> Fraction | None:
    from .hardware import parse_fraction

    if "gpu_memory_utilization" not in merged:
        return None
    return parse("gpu_memory_utilization", parse_fraction, "gpu_memory_utilization")  # type: ignore[no-any-return]


def _tiers(value: Any, what: str) -> tuple[Any, ...]:
    from .tiers import parse_tiers

    return parse_tiers(str(value), what)


def _check_budget(budget: Budget, fail: Any) -> None:
    keys = dict(budget.limits)
    if not keys and budget.gpu is None and budget.memory is None:
        raise fail("name", f"sets no limit; expected one of {', '.join(LIMITS)} (or a gpu to fit on)")
    for limit_key in ("max_cache_per_gpu", "max_total_cache", "min_concurrency"):
        if limit_key in keys and budget.context is None:
            raise fail(limit_key, "needs `context` in the budget (or its defaults)")
    for limit_key in ("min_context_that_fits", "min_concurrency", "min_offload_tokens", "min_shared_requests"):
        if limit_key in keys and budget.gpu is None and budget.memory is None:
            raise fail(limit_key, "needs `gpu` (a GPU from the catalogue) or `memory` in the budget")
    if "min_offload_tokens" in keys and not budget.offload:
        raise fail("min_offload_tokens", "needs `offload` (e.g. cpu:1TiB) in the budget")
    if "min_shared_requests" in keys and (budget.shared_prefix is None or budget.context is None):
        raise fail("min_shared_requests", "needs `shared_prefix` and `context` in the budget")
    if budget.gpus is not None and budget.gpus != budget.deployment.gpus:
        d = budget.deployment
        raise fail("gpus", f"{budget.gpus} GPUs but tp x pp x dp = {d.tp} x {d.pp} x {d.dp} = {d.gpus}; a budget "
                           f"promises one layout, so state tp, pp and dp whose product is {budget.gpus} (for "
                           f"example tp: {budget.gpus})")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Checking


def evaluate(budget: Budget) -> list[Verdict]:
    """The verdicts of one budget: one per limit, plus `fits` when the budget names a GPU."""
    from .cache import size
    from .hardware import find_gpu, fit, memory_gpu
    from .models import load_model
    from .runtimes import lower

    reference = budget.model
    if os.sep in reference or reference.endswith((".yaml", ".yml", ".json")):
        reference = str(Path(budget.file).parent / reference)
    model = load_model(reference)
    plan = lower(model, budget.deployment)
    limits = dict(budget.limits)
    estimate = size(plan, budget.context or 1, budget.batch)
    measured: dict[str, int] = {}
    if "max_bytes_per_token" in limits:
        per_token = estimate.bytes_per_token
        measured["max_bytes_per_token"] = -(-per_token.numerator // per_token.denominator)
    if "max_cache_per_gpu" in limits:
        measured["max_cache_per_gpu"] = estimate.total_bytes
    if "max_total_cache" in limits:
        measured["max_total_cache"] = estimate.deployment_bytes
    verdicts = [_verdict(budget, key, measured[key], limits[key], model.name) for key in limits if key in measured]
    if budget.gpu is not None or budget.memory is not None:
        device = find_gpu(budget.gpu) if budget.gpu is not None else memory_gpu(f"{budget.memory}B")
        settings: dict[str, Any] = {"weight_dtype": budget.weight_dtype}
        if budget.gpu_memory_utilization is not None:
            settings["gpu_memory_utilization"] = budget.gpu_memory_utilization
        if budget.reserve is not None:
            settings["reserve"] = budget.reserve
        if budget.offload or budget.shared_prefix is not None:
            from .hardware import Beyond

            settings["beyond"] = Beyond(budget.offload, 1, budget.shared_prefix)
        result = fit(
            model,
            device,
            budget.deployment,
            context=budget.context,
            batch=budget.batch,
            plan=plan,
            **settings,
        )
        if "min_context_that_fits" in limits:
            verdicts.append(_verdict(budget, "min_context_that_fits", result.longest_context or 0,
                                     limits["min_context_that_fits"], model.name))  # fmt: skip
        if "min_concurrency" in limits:
            verdicts.append(_verdict(budget, "min_concurrency", result.max_concurrency or 0, limits["min_concurrency"],
                                     model.name))  # fmt: skip
        if "min_offload_tokens" in limits:
            from .tiers import distinct_across

            verdicts.append(_verdict(budget, "min_offload_tokens", distinct_across(result.tiers),
                                     limits["min_offload_tokens"], model.name))  # fmt: skip
        if "min_shared_requests" in limits and result.prefix is not None:
            verdicts.append(_verdict(budget, "min_shared_requests", result.prefix["requests"] * result.dp,
                                     limits["min_shared_requests"], model.name))  # fmt: skip
        verdicts.append(_fits_verdict(budget, result, device.name, model.name))
    return verdicts


def _verdict(budget: Budget, key: str, measured: int, limit: int, model: str) -> Verdict:
    what, unit, direction = LIMITS[key]
    headroom = limit - measured if direction == "max" else measured - limit
    percent = Fraction(headroom * 100, limit) if limit else Fraction(0)
    status = "PASS" if headroom >= 0 else "FAIL"
    return Verdict(budget.name, key, what, unit, measured, limit, status, headroom, percent, budget.file,
                   budget.line_of(key), model)  # fmt: skip


def _fits_verdict(budget: Budget, result: Any, gpu: str, model: str) -> Verdict:
    """The deployment the budget describes fits on the GPUs it names: weights plus context x batch of cache."""
    d = budget.deployment
    scenario = f" with {budget.context:,} tokens x {budget.batch}" if budget.context else ""
    what = f"fits on {d.gpus} x {gpu} ({d.layout}){scenario}"
    need = result.weight_bytes + (result.cache_bytes or 0) + result.reserve_bytes
    headroom = result.usable_bytes - need
    status = "PASS" if result.fits else "FAIL"
    if not result.fits:
        what = f"does not fit on {d.gpus} x {gpu} ({d.layout}){scenario}"
    percent = Fraction(headroom * 100, result.usable_bytes) if result.usable_bytes else Fraction(0)
    return Verdict(budget.name, "fits", what, "bytes", need, result.usable_bytes, status, headroom, percent,
                   budget.file, budget.line_of("gpu"), model)  # fmt: skip


def _error_verdict(error: MlaMemError, file: str, budget: str, line: int | None) -> Verdict:
    return Verdict(budget, "error", "could not be checked", "", 0, 0, "ERROR", 0, Fraction(0), file, line, "",
                   error=str(error))  # fmt: skip


def _as_config_error(exc: MlaMemError, budget: Budget) -> MlaMemError:
    """An error raised while checking, named after the budget key that caused it."""
    if isinstance(exc, OptionError):
        return ConfigError(budget.file, f"{budget.key}.{exc.field}", exc.detail, budget.line_of(exc.field))
    if isinstance(exc, ConfigError):
        return exc
    return ConfigError(budget.file, f"{budget.key}.model", str(exc), budget.line_of("model"))


def check(paths: list[str]) -> list[Verdict]:
    """Every budget of every file: its verdicts, or an ERROR verdict when it cannot be read or checked."""
    verdicts = []
    for path in paths:
        try:
            file, entries = load_budgets(path)
        except MlaMemError as exc:
            verdicts.append(_error_verdict(exc, str(path), str(path), getattr(exc, "line", None)))
            continue
        for entry in entries:
            if isinstance(entry, BadEntry):
                verdicts.append(_error_verdict(entry.error, file, entry.name, entry.error.line))
                continue
            try:
                verdicts.extend(evaluate(entry))
            except MlaMemError as exc:
                verdicts.append(_error_verdict(_as_config_error(exc, entry), file, entry.name, entry.line))
    return verdicts


def validate_file(path: str) -> str:
    """What a file is, once read strictly: a model, a budget file or the GPU catalogue (raises on any error)."""
    from .models import load_model
    from .spec import attention_label

    if path.endswith((".yaml", ".yml")) and Path(path).is_file():
        data = load_yaml(read_text(Path(path), MAX_BUDGET_FILE), path)
        if isinstance(data, dict) and "budgets" in data and "layers" not in data:
            file, entries = load_budgets(path)
            for entry in entries:
                if isinstance(entry, BadEntry):
                    raise entry.error
            return f"budget file, {len(entries)} budgets"
        if isinstance(data, dict) and "gpus" in data and "layers" not in data:
            from .hardware import gpu_catalogue

            return f"GPU catalogue, {len(gpu_catalogue(Path(path)))} GPUs"
    reference = path if (os.sep in path or path.endswith((".yaml", ".yml", ".json"))) else f"./{path}"
    spec = load_model(reference)
    return f"model {spec.name}, {spec.layers} layer{'' if spec.layers == 1 else 's'}, {attention_label(spec)}"
