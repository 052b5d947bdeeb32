"""Side by side: a model against its what-if variants (`compare`), and two versions of a model component by
component (`diff`). Typed results; render.py turns them into tables, CSV, Markdown and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field, fields, is_dataclass
from fractions import Fraction
from typing import Any

from .cache import Estimate, size
from .errors import UsageError
from .models import load_model, load_reference
from .options import Deployment
from .records import record
from .runtimes import lower
from .spec import ModelSpec, short_text
from .units import json_number
from .variants import equivalent_gqa_groups, make_variant, parse_variants, variant_label

GQA_CONVENTION = "DeepSeek-V2 paper, Table 1: latent / (qk_nope_head_dim + v_head_dim)"


@record
class VariantRow:
    """A model or one of its what-if variants, at every context of a comparison."""

    model: str
    variant: str  # "as built", "MHA", "GQA-8", ...
    attention: str  # what the variant caches, e.g. "MLA 512+64" or "8 x (192+128)"
    estimates: tuple[Estimate, ...]  # one per context
    ratio: Fraction  # to the model as built, at the largest context
    gqa_groups: Fraction | None = None  # MLA only: GQA groups that cache as much as the latent

    @property
    def bytes_per_token(self) -> Fraction:
        return self.estimates[0].bytes_per_token


@record
class Comparison:
    """The result of `compare`: variant rows over the same contexts, batch, runtime and cache dtype."""

    contexts: tuple[int, ...]
    batch: int
    runtime: str
    kv_dtype: str
    rows: tuple[VariantRow, ...]

    def __str__(self) -> str:
        """The table `mla-mem` prints for this result."""
        from .render import result_text

        return result_text(self)

    def _repr_html_(self) -> str:
        from .render import result_html

        return result_html(self)

    def as_dict(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for row in self.rows:
            if row.variant == "as built":
                groups = row.gqa_groups
                out.append({
                    "model": row.model, "equivalent_gqa_groups": float(groups) if groups is not None else None,
                    "equivalent_gqa_groups_convention": GQA_CONVENTION, "variants": [],
                })  # fmt: skip
            out[-1]["variants"].append({
                "variant": row.variant, "attention": row.attention, "bytes_per_token": json_number(row.bytes_per_token),
                "ratio_to_built": float(row.ratio), "estimates": [e.as_dict() for e in row.estimates],
            })  # fmt: skip
        return out


def compare(
    models: Sequence[ModelSpec | str],
    variants: Sequence[str],
    contexts: Sequence[int],
    batch: int,
    deployment: Deployment,
) -> Comparison:
    """Every model as built, then as each variant ('mha', 'gqa:8', 'mqa', 'mla:256'), at every context."""
    if not models:
        raise UsageError("compare: expected at least one model")
    if not contexts:
        raise UsageError("compare: expected at least one context")
    variant_list = parse_variants(",".join(variants)) if variants else []
    ordered = list(contexts)
    largest = max(ordered)
    rows: list[VariantRow] = []
    first: Estimate | None = None
    for reference in models:
        base = load_model(reference)
        base_plan = lower(base, deployment)
        base_total = size(base_plan, largest, batch).total_bytes
        entries = [(base, "as built")] + [(make_variant(base, v), variant_label(v)) for v in variant_list]
        for spec, label in entries:
            plan = base_plan if label == "as built" else lower(spec, deployment)
            estimates = tuple(size(plan, n, batch) for n in ordered)
            first = first or estimates[0]
            total = size(plan, largest, batch).total_bytes
            rows.append(VariantRow(
                model=base.name, variant=label, attention=short_text(spec), estimates=estimates,
                ratio=Fraction(total, base_total) if base_total else Fraction(0),
                gqa_groups=equivalent_gqa_groups(base) if label == "as built" else None,
            ))  # fmt: skip
    assert first is not None
    return Comparison(tuple(ordered), batch, first.runtime, first.kv_dtype, tuple(rows))


# ---------------------------------------------------------------------------------------------------------
# diff


@record
class DiffRow:
    """One component at one context in a `diff`: old and new bytes per token and in total."""

    context: int
    component: str
    status: str  # "same", "changed", "new", "removed" (the total row: "same" or "changed")
    old_bytes_per_token: Fraction
    new_bytes_per_token: Fraction
    old_bytes: int
    new_bytes: int

    @property
    def change_bytes(self) -> int:
        return self.new_bytes - self.old_bytes

    @property
    def change_percent(self) -> Fraction | None:
        """Growth in percent of the old bytes; None for a new component (no old bytes to compare with)."""
        if self.old_bytes:
            return Fraction(self.change_bytes * 100, self.old_bytes)
        return None if self.new_bytes else Fraction(0)


@record
class Diff:
    """The result of `diff`: two models' caches component by component, context by context."""

    old: str  # the references as given (a path, a name, REV:path)
    new: str
    old_name: str
    new_name: str
    runtime: str
    batch: int
    rows: tuple[DiffRow, ...]
    changed_keys: tuple[str, ...]  # spec fields that differ, e.g. "kinds.full.attention.kv_heads: 8 -> 4"
    max_growth: Fraction | None = None  # percent
    largest_growth: Fraction | None = None  # percent, over the totals at every context
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        if self.max_growth is None or self.largest_growth is None:
            return True
        return self.largest_growth <= self.max_growth

    def __str__(self) -> str:
        """The table `mla-mem` prints for this result."""
        from .render import result_text

        return result_text(self)

    def _repr_html_(self) -> str:
        from .render import result_html

        return result_html(self)

    def as_dict(self) -> dict[str, Any]:
        def percent(value: Fraction | None) -> float | None:
            return float(value) if value is not None else None

        return {
            "old": self.old, "new": self.new, "old_model": self.old_name, "new_model": self.new_name,
            "runtime": self.runtime, "batch": self.batch, "changed_keys": list(self.changed_keys),
            "rows": [
                {"context": r.context, "component": r.component, "status": r.status,
                 "old_bytes_per_token": json_number(r.old_bytes_per_token),
                 "new_bytes_per_token": json_number(r.new_bytes_per_token), "old_bytes": r.old_bytes,
                 "new_bytes": r.new_bytes, "change_bytes": r.change_bytes, "change_percent": percent(r.change_percent)}
                for r in self.rows
            ],
            "max_growth_percent": percent(self.max_growth), "largest_growth_percent": percent(self.largest_growth),
            "passed": self.passed, "notes": list(self.notes),

        }  # fmt: skip


def diff(
    old: ModelSpec | str,
    new: ModelSpec | str,
    contexts: Sequence[int],
    batch: int,
    deployment: Deployment,
    max_growth_percent: float | Fraction | None = None,
) -> Diff:
    """Two models (paths, names, or REV:path from git) compared component by component at every context."""
    limit = None if max_growth_percent is None else Fraction(str(max_growth_percent))
    if limit is not None and not 0 <= limit <= 10**6:
        raise UsageError(f"max_growth: expected a percentage from 0 to 1,000,000, got {max_growth_percent}")
    specs = [load_reference(ref) if isinstance(ref, str) else ref for ref in (old, new)]
    plans = [lower(spec, deployment) for spec in specs]
    rows: list[DiffRow] = []
    worst: Fraction | None = None
    notes: list[str] = []
    for n in contexts:
        before, after = (size(plan, n, batch) for plan in plans)
        notes += [note for note in before.notes + after.notes if "maximum context" in note and note not in notes]
        parts_before = {c.name: c for c in before.components}
        parts_after = {c.name: c for c in after.components}
        for name in dict.fromkeys([*parts_before, *parts_after]):
            a, b = parts_before.get(name), parts_after.get(name)
            status = "new" if a is None else "removed" if b is None else "same"
            row = DiffRow(
                n, name, status, a.bytes_per_token if a else Fraction(0), b.bytes_per_token if b else Fraction(0),
                a.total_bytes if a else 0, b.total_bytes if b else 0,
            )  # fmt: skip
            if status == "same" and (
                row.old_bytes != row.new_bytes or row.old_bytes_per_token != row.new_bytes_per_token
            ):
                row = DiffRow(**{**_row_fields(row), "status": "changed"})
            rows.append(row)
        total = DiffRow(
            n, "total", "same" if before.total_bytes == after.total_bytes else "changed", before.bytes_per_token,
            after.bytes_per_token, before.total_bytes, after.total_bytes,
        )  # fmt: skip
        rows.append(total)
        growth = total.change_percent
        if growth is not None:
            worst = growth if worst is None else max(worst, growth)
    return Diff(
        old=str(old if isinstance(old, str) else old.name), new=str(new if isinstance(new, str) else new.name),
        old_name=specs[0].name, new_name=specs[1].name, runtime=str(plans[0].runtime), batch=batch,
        rows=tuple(rows), changed_keys=tuple(changed_keys(specs[0], specs[1])), max_growth=limit,
        largest_growth=worst, notes=tuple(notes),
    )  # fmt: skip


def _row_fields(row: DiffRow) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


IGNORED_KEYS = ("name", "path", "source", "aliases")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            _flatten(getattr(value, f.name), f"{prefix}.{f.name}" if prefix else f.name, out)
    elif isinstance(value, tuple) and value and all(is_dataclass(v) and hasattr(v, "name") for v in value):
        for item in value:
            _flatten(item, f"{prefix}.{item.name}", out)
    elif isinstance(value, tuple) and prefix.endswith("layer_kinds"):
        out[prefix] = "[" + ", ".join(value) + "]"
    else:
        out[prefix] = value


def changed_keys(old: ModelSpec, new: ModelSpec) -> list[str]:
    """'key: old -> new' for every field of the two specs that differs (names and sources aside)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    _flatten(old, "", before)
    _flatten(new, "", after)
    out = []
    for key in dict.fromkeys([*before, *after]):
        if key.split(".")[0] in IGNORED_KEYS or key.endswith(".name"):
            continue
        a, b = before.get(key, "(absent)"), after.get(key, "(absent)")
        if a != b:
            out.append(f"{key}: {a} -> {b}")
    return out
