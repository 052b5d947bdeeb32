"""Budget files -> verdicts: the CI gate (`mla-mem check`) and the pull-request comparison (`mla-mem diff`).

A budget names a model and a scenario and sets limits; each limit becomes a verdict with the measured value, the
limit and the headroom (negative: overshoot) in bytes (or tokens, requests) and in percent of the limit, computed
from exact integers. Passing at the limit exactly passes; one unit over fails.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .configs import Section, load_model, load_yaml, read_text
from .errors import ConfigError, MlaMemError, UsageError
from .units import format_bytes, format_number, parse_count, parse_size, parse_tokens

LIMITS = {
    # key: (what is measured, unit, direction)
    "max_bytes_per_token": ("cache bytes per token (per GPU)", "bytes", "max"),
    "max_cache_per_gpu": ("cache per GPU", "bytes", "max"),
    "max_total_cache": ("cache on all GPUs", "bytes", "max"),
    "min_context_that_fits": ("longest context that fits", "tokens", "min"),
    "min_concurrency": ("requests that fit", "requests", "min"),
}
SCENARIO_KEYS = (
    "model",
    "context",
    "batch",
    "runtime",
    "kv_dtype",
    "tp",
    "pp",
    "dp",
    "dcp",
    "mtp",
    "block_size",
    "gpu",
    "gpus",
    "memory",
    "weight_dtype",
    "gpu_memory_utilization",
    "reserve",
)
BUDGET_KEYS = ("name",) + SCENARIO_KEYS + tuple(LIMITS)
MAX_BUDGET_FILE = 1 << 20


@dataclass(frozen=True)
class Verdict:
    budget: str
    limit_key: str
    what: str
    unit: str
    measured: int
    limit: int
    passed: bool
    headroom: int  # limit - measured for max limits, measured - limit for min limits (negative: overshoot)
    percent: Fraction  # headroom / limit x 100
    file: str
    line: int | None
    model: str

    def measured_text(self, units: str = "binary") -> str:
        return _value_text(self.measured, self.unit, units)

    def limit_text(self, units: str = "binary") -> str:
        return _value_text(self.limit, self.unit, units)

    def headroom_text(self, units: str = "binary") -> str:
        word = "headroom" if self.headroom >= 0 else "over by"
        return f"{word} {_value_text(abs(self.headroom), self.unit, units)} ({float(abs(self.percent)):.2f}%)"

    def message(self, units: str = "binary") -> str:
        sign = "<=" if self.unit == "bytes" or self.limit_key.startswith("max") else ">="
        if not self.passed:
            sign = ">" if self.limit_key.startswith("max") else "<"
        return (
            f"{self.budget}: {self.what} {self.measured_text(units)} {sign} {self.limit_text(units)} "
            f"({self.headroom_text(units)})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "model": self.model, "limit": self.limit_key, "what": self.what,
                "unit": self.unit, "measured": self.measured, "limit_value": self.limit, "passed": self.passed,
                "headroom": self.headroom, "headroom_percent": float(self.percent), "file": self.file,
                "line": self.line}  # fmt: skip


def _value_text(value: int, unit: str, units: str, sign: str = "") -> str:
    if unit == "bytes":
        if value >= 1024:
            return f"{sign}{format_bytes(value, units)} ({sign}{format_number(value)} B)"
        return f"{sign}{value:,} B"
    return f"{sign}{value:,} {unit}"


def _line_of(entry: Any) -> int | None:
    lines = getattr(entry, "lines", None) or {}
    return min(lines.values()) if lines else None


def load_budgets(path: str) -> tuple[str, list[tuple[str, dict[str, Any], int | None]]]:
    """(file, [(budget name, merged settings, line)]) with strict validation."""
    file = str(path)
    data = load_yaml(read_text(Path(path), MAX_BUDGET_FILE), file)
    if data is None:
        raise ConfigError(file, "", "the file is empty; expected `budgets:` (a list)")
    top = Section(data, file)
    top.expect(("defaults", "budgets"))
    defaults: dict[str, Any] = {}
    defaults_section = top.section("defaults", required=False)
    if defaults_section is not None:
        defaults_section.expect(SCENARIO_KEYS + tuple(LIMITS))
        defaults = dict(defaults_section.data)
    entries = top.get_list("budgets")
    if not entries:
        raise ConfigError(file, "budgets", "is required: a non-empty list of budgets", top.line("budgets"))
    out = []
    names = set()
    for index, entry in enumerate(entries):
        key = f"budgets[{index}]"
        section = Section(entry, file, key, top.line("budgets"))
        section.expect(BUDGET_KEYS)
        name = section.get_str("name", required=True)
        assert name is not None
        if name in names:
            raise section.error("name", f"duplicate budget name {name!r}")
        names.add(name)
        merged = {**defaults, **{k: v for k, v in section.data.items() if k != "name"}}
        if "model" not in merged:
            raise ConfigError(
                file,
                f"{key}.model",
                "is required (a built-in name, YAML path or config.json)",
                _line_of(entry),
            )
        if not any(k in merged for k in LIMITS):
            raise ConfigError(
                file, key, f"sets no limit; expected one of {', '.join(LIMITS)}", _line_of(entry)
            )
        merged["_lines"] = getattr(entry, "lines", {})
        merged["_key"] = key
        out.append((name, merged, _line_of(entry)))
    return file, out


def _int_option(
    settings: dict[str, Any], key: str, file: str, where: str, default: int, maximum: int = 4096
) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ConfigError(
            file,
            f"{where}.{key}",
            f"expected an integer from 1 to {maximum:,}, got {value!r}",
            settings["_lines"].get(key),
        )
    return value


def evaluate(file: str, name: str, settings: dict[str, Any], line: int | None) -> list[Verdict]:
    from .cache import size
    from .hardware import find_gpu, fit, memory_gpu, parse_fraction
    from .runtimes import Options, lower

    where = settings["_key"]
    lines = settings["_lines"]

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(file, f"{where}.{key}", message, lines.get(key, line))

    model_ref = settings["model"]
    if not isinstance(model_ref, str):
        raise fail("model", f"expected a model name or path, got {model_ref!r}")
    base = Path(file).parent
    candidate = base / model_ref
    try:
        model = load_model(
            str(candidate)
            if (os.sep in model_ref or model_ref.endswith((".yaml", ".yml", ".json")))
            else model_ref
        )
    except MlaMemError as exc:
        raise fail("model", str(exc)) from None

    def parse(key: str, parser: Any, *args: Any) -> Any:
        try:
            return parser(settings[key], *args)
        except UsageError as exc:
            raise fail(key, str(exc).split(": ", 1)[-1]) from None

    context = parse("context", parse_tokens, f"{where}.context") if "context" in settings else None
    batch = parse("batch", parse_count, f"{where}.batch") if "batch" in settings else 1
    mtp = settings.get("mtp", False)
    if not isinstance(mtp, bool):
        raise fail("mtp", f"expected true or false, got {mtp!r}")
    options = Options(
        runtime=str(settings.get("runtime", "ideal")), kv_dtype=settings.get("kv_dtype"),
        tp=_int_option(settings, "tp", file, where, 1), pp=_int_option(settings, "pp", file, where, 1),
        dp=_int_option(settings, "dp", file, where, 1), dcp=_int_option(settings, "dcp", file, where, 1), mtp=mtp,
        block_size=settings.get("block_size"),
    )  # fmt: skip
    try:
        plan = lower(model, options)
    except UsageError as exc:
        raise fail("runtime", str(exc)) from None
    verdicts = []

    def verdict(key: str, measured: int, limit: int) -> None:
        what, unit, direction = LIMITS[key]
        headroom = limit - measured if direction == "max" else measured - limit
        percent = Fraction(headroom * 100, limit) if limit else Fraction(0)
        verdicts.append(
            Verdict(
                name,
                key,
                what,
                unit,
                measured,
                limit,
                headroom >= 0,
                headroom,
                percent,
                file,
                lines.get(key, line),
                model.name,
            )
        )

    needs_context = ("max_cache_per_gpu", "max_total_cache", "min_concurrency")
    for key in LIMITS:
        if key not in settings:
            continue
        if key in needs_context and context is None:
            raise fail(key, "needs `context` in the budget (or its defaults)")
        if (
            key in ("min_context_that_fits", "min_concurrency")
            and "gpu" not in settings
            and "memory" not in settings
        ):
            raise fail(key, "needs `gpu` (a GPU from the catalogue) or `memory` in the budget")
    for key in ("max_bytes_per_token",):
        if key in settings:
            limit = parse(key, parse_size, f"{where}.{key}")
            estimate = size(plan, context or 1, batch)
            measured = estimate.bytes_per_token
            verdict(key, int(-(-measured.numerator // measured.denominator)), limit)
    if context is not None and ("max_cache_per_gpu" in settings or "max_total_cache" in settings):
        estimate = size(plan, context, batch)
        if "max_cache_per_gpu" in settings:
            verdict("max_cache_per_gpu", estimate.total_bytes, parse("max_cache_per_gpu", parse_size, where))
        if "max_total_cache" in settings:
            verdict("max_total_cache", estimate.deployment_bytes, parse("max_total_cache", parse_size, where))
    if "min_context_that_fits" in settings or "min_concurrency" in settings:
        try:
            device = (
                find_gpu(str(settings["gpu"])) if "gpu" in settings else memory_gpu(str(settings["memory"]))
            )
        except UsageError as exc:
            raise fail("gpu" if "gpu" in settings else "memory", str(exc)) from None
        gpus = settings.get("gpus")
        if gpus is not None and gpus != options.tp * options.pp * options.dp:
            raise fail("gpus", f"{gpus} GPUs but tp x pp x dp = {options.tp * options.pp * options.dp}")
        kwargs: dict[str, Any] = {}
        if "gpu_memory_utilization" in settings:
            kwargs["gpu_memory_utilization"] = parse("gpu_memory_utilization", parse_fraction, where)
        if "reserve" in settings:
            kwargs["reserve"] = parse("reserve", parse_size, where)
        try:
            result = fit(
                model,
                device,
                weight_dtype=settings.get("weight_dtype"),
                context=context,
                batch=batch,
                **asdict(options),
                **kwargs,
            )
        except UsageError as exc:
            raise fail("gpu", str(exc)) from None
        if "min_context_that_fits" in settings:
            limit = parse("min_context_that_fits", parse_tokens, f"{where}.min_context_that_fits")
            verdict("min_context_that_fits", result.longest_context or 0, limit)
        if "min_concurrency" in settings:
            limit = parse("min_concurrency", parse_count, f"{where}.min_concurrency", 1 << 40)
            verdict("min_concurrency", result.max_concurrency or 0, limit)
    return verdicts


def check(paths: list[str]) -> list[Verdict]:
    verdicts = []
    for path in paths:
        file, budgets = load_budgets(path)
        for name, settings, line in budgets:
            verdicts.extend(evaluate(file, name, settings, line))
    return verdicts


# ---------------------------------------------------------------------------------------------------------
# Output formats


def as_junit(verdicts: list[Verdict], units: str = "binary") -> str:
    """JUnit XML: one testsuite per budget file, one testcase per budget (failing if any of its limits fails)."""
    from xml.sax.saxutils import quoteattr

    by_file: dict[str, dict[str, list[Verdict]]] = {}
    for v in verdicts:
        by_file.setdefault(v.file, {}).setdefault(v.budget, []).append(v)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    total = sum(len(b) for b in by_file.values())
    failed = sum(1 for b in by_file.values() for vs in b.values() if not all(v.passed for v in vs))
    lines.append(f'<testsuites name="mla-mem check" tests="{total}" failures="{failed}" errors="0">')
    for file, budgets in by_file.items():
        suite_failed = sum(1 for vs in budgets.values() if not all(v.passed for v in vs))
        lines.append(
            f'  <testsuite name={quoteattr(file)} tests="{len(budgets)}" failures="{suite_failed}" '
            'errors="0" skipped="0">'
        )
        for budget, vs in budgets.items():
            lines.append(f"    <testcase classname={quoteattr(file)} name={quoteattr(budget)}>")
            for v in vs:
                if not v.passed:
                    lines.append(
                        f"      <failure type={quoteattr(v.limit_key)} message={quoteattr(v.message(units))}/>"
                    )
            out = "\n".join(v.message(units) for v in vs)
            from xml.sax.saxutils import escape

            lines.append(f"      <system-out>{escape(out)}</system-out>")
            lines.append("    </testcase>")
        lines.append("  </testsuite>")
    lines.append("</testsuites>")
    return "\n".join(lines) + "\n"


def _gh_escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def as_github(verdicts: list[Verdict], units: str = "binary") -> str:
    """GitHub Actions workflow commands: ::error for failures, ::notice for passes, at the budget's line."""
    lines = []
    for v in verdicts:
        level = "notice" if v.passed else "error"
        props = f"file={_gh_escape(v.file, True)}"
        if v.line:
            props += f",line={v.line}"
        props += f",title={_gh_escape('mla-mem ' + ('PASS' if v.passed else 'FAIL') + ' ' + v.budget, True)}"
        lines.append(f"::{level} {props}::{_gh_escape(v.message(units))}")
    return "\n".join(lines) + "\n"


def as_markdown(verdicts: list[Verdict], units: str = "binary") -> str:
    failed = sum(1 for v in verdicts if not v.passed)
    head = "### mla-mem budget check: " + (
        "all passed" if not failed else f"{failed} of {len(verdicts)} failed"
    )
    rows = [
        "| | Budget | Model | Limit | Measured | Limit value | Headroom |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for v in verdicts:
        headroom = (
            ("" if v.headroom >= 0 else "-")
            + _value_text(abs(v.headroom), v.unit, units)
            + f" ({float(v.percent):+.2f}%)"
        )
        cells = [
            "PASS" if v.passed else "**FAIL**",
            v.budget,
            v.model,
            v.limit_key,
            v.measured_text(units),
            v.limit_text(units),
            headroom,
        ]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return head + "\n\n" + "\n".join(rows) + "\n"


def as_text(verdicts: list[Verdict], units: str = "binary") -> str:
    lines = [("PASS " if v.passed else "FAIL ") + v.message(units) for v in verdicts]
    failed = sum(1 for v in verdicts if not v.passed)
    lines.append(f"{len(verdicts) - failed} passed, {failed} failed")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# diff


def resolve_revision(ref: str) -> tuple[str, str | None]:
    """'REV:path' -> (temporary file holding that revision's content, label); a plain path -> (path, None)."""
    if os.path.exists(ref) or ":" not in ref or (len(ref) > 1 and ref[1] == ":" and ref[0].isalpha()):
        return ref, None
    revision, _, path = ref.partition(":")
    if not revision or not path:
        raise UsageError(f"{ref}: expected REV:path, e.g. HEAD~1:configs/model.yaml")
    try:
        result = subprocess.run(
            ["git", "show", f"{revision}:{path}"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"{ref}: cannot run git ({exc})") from None
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"{ref}: git show failed: {reason[-1] if reason else 'unknown error'}")
    if len(result.stdout) > MAX_BUDGET_FILE * 4:
        raise UsageError(f"{ref}: file is too large")
    suffix = Path(path).suffix or ".yaml"
    handle = tempfile.NamedTemporaryFile("wb", suffix=suffix, delete=False)
    with handle:
        handle.write(result.stdout)
    return handle.name, ref
