"""Every output format: one data structure (TableData: raw values + how a human reads them), several views.

- table: a terminal table (Rich when stdout is a terminal), human text: sizes in GiB/GB, exact numbers with
  thousands separators, fractions as exact decimals;
- csv: raw values only, one column per key: integers as digits, fractions as exact decimals (never "88183/16"),
  never a unit inside a number;
- markdown: the table's human text;
- json: the result's own `as_dict()`, through json.dumps (never through Rich, which would wrap lines).

The functions at the end turn each result type (estimates, a comparison, a diff, a fit, budget verdicts) into
TableData, so the command line only chooses the view.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .records import record
from .units import exact_decimal, format_bytes, format_number, format_tokens, json_number

if TYPE_CHECKING:
    from .budgets import Verdict
    from .cache import Estimate
    from .comparison import Comparison, Diff
    from .hardware import GPU, FitResult
    from .spec import ModelSpec

FORMATS = ("table", "json", "csv", "markdown")


@record(frozen=False)
class Column:
    """A column of a table: its key in the rows, header, alignment and how a value is displayed."""

    key: str
    header: str
    numeric: bool = False
    display: Callable[[Any], str] | None = None


@record(frozen=False)
class TableData:
    """Rows of raw values; `Column.display` turns a raw value into the text a human reads."""

    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    caption: str = ""
    csv_keys: list[str] | None = None  # CSV columns when they differ from the table's (raw values and units)

    def text(self, column: Column, row: dict[str, Any]) -> str:
        value = row.get(column.key)
        if value is None:
            return ""
        if column.display is not None:
            return column.display(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        if isinstance(value, Fraction):
            return format_number(value)
        return str(value)


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def emit(fmt: str, table: TableData, payload: Any) -> None:
    """Print `table` as table/csv/markdown, or `payload` as JSON (a callable payload is built only for JSON)."""
    if fmt == "json":
        import json  # only for JSON output: 1 ms of start-up otherwise

        write(json.dumps(payload() if callable(payload) else payload, indent=2) + "\n")
    elif fmt == "csv":
        write(to_csv(table))
    elif fmt == "markdown":
        write(to_markdown(table))
    else:
        print_table(table)


def csv_value(value: Any) -> Any:
    """A raw CSV cell: exact decimals for fractions, digits for integers, '' for nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return value.numerator
        return exact_decimal(value) or repr(float(value))
    return value


def to_csv(table: TableData) -> str:
    """Raw values, one column per key (a key shown twice in the table, as human text and exact bytes, once)."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = table.csv_keys or list(dict.fromkeys(c.key for c in table.columns))
    writer.writerow(keys)
    for row in table.rows:
        writer.writerow([csv_value(row.get(key)) for key in keys])
    return buffer.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: TableData) -> str:
    lines = []
    if table.title:
        lines.append(f"**{_md_escape(table.title)}**")
        lines.append("")
    lines.append("| " + " | ".join(_md_escape(c.header) for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if c.numeric else "---" for c in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_md_escape(table.text(c, row)) for c in table.columns) + " |")
    if table.caption:
        lines.append("")
        lines.append(_md_escape(table.caption))
    return "\n".join(lines) + "\n"


def to_text(table: TableData, width: int | None = None, colour: bool = False) -> str:
    """A plain-text table (textable.py) at `width` columns (None: its natural width), never cutting a number."""
    from .textable import Grid, render

    grid = Grid(
        title=table.title, headers=[c.header for c in table.columns], numeric=[c.numeric for c in table.columns],
        rows=[[table.text(c, row) for c in table.columns] for row in table.rows], caption=table.caption,
    )  # fmt: skip
    return render(grid, width, colour)


def print_table(table: TableData) -> None:
    """The table at the terminal's width, coloured where the terminal allows; at its natural width when stdout is
    not a terminal."""
    from .textable import colour_on, terminal_width

    write(to_text(table, terminal_width(), colour_on()))


def to_html(table: TableData) -> str:
    """An HTML table (for notebooks' _repr_html_): the same cells as the text table, numbers right-aligned."""
    from html import escape

    def cell(tag: str, text: str, numeric: bool) -> str:
        align = ' style="text-align:right"' if numeric else ""
        return f"<{tag}{align}>{escape(text)}</{tag}>"

    parts = ["<table>"]
    if table.title:
        parts.append(f"<caption>{escape(table.title)}</caption>")
    parts.append("<thead><tr>" + "".join(cell("th", c.header, c.numeric) for c in table.columns) + "</tr></thead>")
    parts.append("<tbody>")
    for row in table.rows:
        parts.append("<tr>" + "".join(cell("td", table.text(c, row), c.numeric) for c in table.columns) + "</tr>")
    parts.append("</tbody></table>")
    if table.caption:
        parts.append(f"<p>{escape(table.caption)}</p>")
    return "".join(parts)


def result_table(result: Any, units: str = "binary") -> TableData:
    """The table the command line prints for an API result (Estimate, FitResult, Comparison, Diff)."""
    from .cache import Estimate
    from .comparison import Comparison, Diff
    from .hardware import FitResult

    if isinstance(result, Estimate):
        return estimates_view([result], units)[0]
    if isinstance(result, FitResult):
        return fit_view(result, units)[0]
    if isinstance(result, Comparison):
        return comparison_view(result, units)[0]
    if isinstance(result, Diff):
        return diff_view(result, units)[0]
    raise TypeError(f"no table for {type(result).__name__}")


def result_text(result: Any) -> str:
    """`str()` of an API result: the command line's table at its natural width, without colour."""
    return to_text(result_table(result)).rstrip("\n")


def result_html(result: Any) -> str:
    return to_html(result_table(result))


# ---------------------------------------------------------------------------------------------------------
# Columns


def bytes_column(key: str, header: str, units: str) -> Column:
    return Column(key, header, numeric=True, display=lambda v: format_bytes(v, units))


def exact_column(key: str, header: str) -> Column:
    return Column(key, header, numeric=True, display=lambda v: format_number(Fraction(v)))


def count_column(key: str, header: str) -> Column:
    return Column(key, header, numeric=True, display=lambda v: f"{v:,}")


def summarise_notes(notes: Sequence[str]) -> list[str]:
    """Distinct notes in order, with the notes on contexts beyond a model's maximum folded into one per model."""
    import re

    out: list[str] = []
    beyond: dict[str, tuple[list[int], str]] = {}
    for note in dict.fromkeys(notes):
        found = re.fullmatch(r"context ([\d,]+) exceeds (.+)'s maximum context of ([\d,]+) tokens", note)
        if found:
            if found.group(2) not in beyond:
                out.append(found.group(2))  # a placeholder, replaced below, keeps the order
                beyond[found.group(2)] = ([], found.group(3))
            beyond[found.group(2)][0].append(int(found.group(1).replace(",", "")))
        else:
            out.append(note)
    for model, (contexts, limit) in beyond.items():
        values = sorted(set(contexts))
        what = (
            f"context {values[0]:,} exceeds"
            if len(values) == 1
            else (f"{len(values):,} contexts ({values[0]:,} to {values[-1]:,}) exceed")
        )
        out[out.index(model)] = f"{what} {model}'s maximum context of {limit} tokens"
    return out


def notes_text(notes: Sequence[str]) -> str:
    return "".join(f" Note: {note}." for note in summarise_notes(notes))


def assumptions(result: Estimate, with_context: bool = True) -> str:
    """One sentence of what an estimate assumed: runtime, version, cache dtype, block, layout, notes."""
    parts = [
        f"Runtime {result.runtime}",
        f"cache {result.kv_dtype}",
        f"block {result.block_size} tokens" if result.block_size > 1 else "no paging",
    ]
    if with_context:
        parts.append(f"context {result.context:,} tokens x batch {result.batch}")
    if result.gpus > 1:
        parts.append(f"{result.layout} = {result.gpus} GPUs, bytes per GPU")
    if result.mtp:
        parts.append("MTP layers on")
    return ", ".join(parts) + "." + notes_text(result.notes)


# ---------------------------------------------------------------------------------------------------------
# Views


def _params_text(value: int) -> str:
    if value >= 10**12:
        return f"{value / 10**12:g}T"
    return f"{value / 10**9:g}B"


def models_view(
    specs: Sequence[ModelSpec], estimates: Sequence[Estimate], units: str, at: Sequence[Sequence[tuple[int, int]]] = ()
) -> tuple[TableData, Any]:
    """The built-ins; `at` holds, per model, (context, total bytes) at the contexts of the extra columns (128K, 1M)."""
    import os

    from .spec import attention_label, layers_text

    rows = []
    for index, (spec, result) in enumerate(zip(specs, estimates, strict=True)):
        rows.append({
            "name": os.path.splitext(os.path.basename(spec.path or ""))[0], "model": spec.name,
            "attention": attention_label(spec), "layers": spec.layers, "layers_text": layers_text(spec),
            "mtp_layers": spec.mtp_layers, "bytes_per_token": result.bytes_per_token, "fixed_bytes": result.fixed_bytes,
            **{f"at_{context}": total for context, total in (at[index] if at else ())},
            "max_context": spec.max_context, "params_total": spec.params.total, "params_active": spec.params.active,
            "source": spec.source,
        })  # fmt: skip
    extra = [bytes_column(f"at_{n}", f"At {format_tokens(n)}", units) for n, _ in (at[0] if at else ())]
    table = TableData(
        [Column("name", "Name"), Column("attention", "Attention"), Column("layers_text", "Layers"),
         exact_column("bytes_per_token", "Bytes/token"), bytes_column("fixed_bytes", "Fixed/sequence", units), *extra,
         count_column("max_context", "Max context"), Column("params_total", "Params", numeric=True, display=_params_text)],
        rows,
        title="Built-in models (ideal runtime, bf16 cache, MTP off)",
        caption="Bytes/token: what each further token costs once windows are full. "
        "Fixed/sequence: linear state and full windows. At 128K / 1M: one sequence's cache at that context.",
    )  # fmt: skip
    payload = [
        {**row, "bytes_per_token": json_number(r.bytes_per_token)} for row, r in zip(rows, estimates, strict=True)
    ]
    return table, payload


def show_view(spec: ModelSpec, result: Estimate, units: str) -> tuple[TableData, Any]:
    from .spec import architecture, describe

    rows: list[dict[str, Any]] = [
        {"component": c.name, "layers": c.layers, "bytes_per_token": c.bytes_per_token, "fixed_bytes": c.fixed_bytes,
         "total_bytes": c.total_bytes, "formula": c.formula}
        for c in result.components
    ]  # fmt: skip
    rows.append({"component": "total", "layers": result.layers, "bytes_per_token": result.bytes_per_token,
                 "fixed_bytes": result.fixed_bytes, "total_bytes": result.total_bytes, "formula": ""})  # fmt: skip
    table = TableData(
        [Column("component", "Component"), Column("layers", "Layers", numeric=True),
         exact_column("bytes_per_token", "Bytes/token"), exact_column("fixed_bytes", "Fixed bytes"),
         bytes_column("total_bytes", f"At {format_tokens(result.context)} x {result.batch}", units),
         Column("formula", "Formula (per GPU)")],
        rows,
        title=f"{spec.name}: {describe(spec)}",
        caption=assumptions(result) + (f" Source: {spec.source}" if spec.source else ""),
    )  # fmt: skip
    payload = result.as_dict()
    payload["architecture"] = architecture(spec)
    return table, payload


def weights_view(report: Any, units: str) -> TableData:  # noqa: ANN401 - checkpoint.WeightsReport
    """`show --weights`: the checkpoint's bytes by component and by dtype beside the count from the dims."""
    rows: list[dict[str, Any]] = []
    read = report.checkpoint
    if read is not None:
        rows.append({"what": "checkpoint, as stored", "bytes": read.total, "params": read.params})
        rows += [{"what": f"  {name}", "bytes": size} for name, size in sorted(read.by_component.items())]
        rows += [{"what": f"  {name.lower()}", "bytes": size} for name, size in sorted(read.by_dtype.items())]
    if report.dims_bytes is not None:
        rows.append({"what": f"counted from the dims ({report.dims_dtype})", "bytes": report.dims_bytes,
                     "params": report.dims_params})  # fmt: skip
    if report.difference is not None:
        rows.append({"what": "difference", "text": f"{report.difference:+.2f}%"})
    for row in rows:
        row.setdefault("text", format_bytes(row["bytes"], units) if "bytes" in row else "")
    caption = (f"Read from the {read.source}." if read is not None else "") + notes_text(report.notes)
    return TableData(
        [Column("what", "Part"), Column("text", "Size", numeric=True), exact_column("bytes", "Bytes"),
         count_column("params", "Parameters")],
        rows, title="Weights", caption=caption.strip(),
    )  # fmt: skip


def estimates_view(
    results: Sequence[Estimate], units: str, offloaded: Sequence[Sequence[Any]] = ()
) -> tuple[TableData, Any]:
    """One row per result; with `offloaded` (tiers.RequestTier lists, one per result, `estimate --offload`) the host
    bytes of each request and the requests each tier keeps."""
    if offloaded:
        return _with_offload(estimates_view(results, units), results, offloaded, units)
    multi_gpu = any(r.gpus > 1 for r in results)
    paged = any(r.block_size > 1 for r in results)
    rows = [
        {"model": r.model, "context": r.context, "batch": r.batch, "kv_dtype": r.kv_dtype, "runtime": r.runtime,
         "block_size": r.block_size, "tp": r.tp, "pp": r.pp, "dp": r.dp, "dcp": r.dcp, "gpus": r.gpus,
         "bytes_per_token": r.bytes_per_token, "fixed_bytes": r.fixed_bytes, "total_bytes": r.total_bytes,
         "deployment_bytes": r.deployment_bytes}
        for r in results
    ]  # fmt: skip
    columns = [
        Column("model", "Model"), count_column("context", "Context"), Column("batch", "Batch", numeric=True),
        Column("kv_dtype", "Cache dtype"), exact_column("bytes_per_token", "Bytes/token"),
        bytes_column("fixed_bytes", "Fixed/seq", units),
        bytes_column("total_bytes", "KV cache per GPU" if multi_gpu else "KV cache", units),
        exact_column("total_bytes", "Bytes"),
    ]  # fmt: skip
    if multi_gpu:
        columns.append(bytes_column("deployment_bytes", "All GPUs", units))
    if paged:
        columns.insert(4, Column("block_size", "Block", numeric=True))
    caption = f"Runtime {results[0].runtime}"
    if multi_gpu:
        caption += f", {results[0].layout} = {results[0].gpus} GPUs, bytes per GPU"
    caption += "."
    for r in results:
        if len(r.stages) > 1:
            parts = [f"layers {first}-{last - 1}: {format_bytes(total, units)}" for first, last, total in r.stages]
            caption += f" {r.model} at {r.context:,} by pipeline stage: {'; '.join(parts)} (the largest is per GPU)."
    caption += notes_text([n for r in results for n in r.notes])
    # the JSON payload is built only when JSON is asked for: 24,000 rows of dicts are 35 MiB a table does not need
    return TableData(columns, rows, caption=caption, csv_keys=list(rows[0])), lambda: [r.as_dict() for r in results]


def _with_offload(
    view: tuple[TableData, Any], results: Sequence[Estimate], offloaded: Sequence[Sequence[Any]], units: str
) -> tuple[TableData, Any]:
    table, payload = view
    for row, tiers in zip(table.rows, offloaded, strict=True):
        for t in tiers:
            row[f"{t.tier}_host_bytes"], row[f"{t.tier}_requests"] = t.host_bytes, t.requests
    kinds = list(dict.fromkeys(t.tier for tiers in offloaded for t in tiers))
    for kind in kinds:
        table.columns += [bytes_column(f"{kind}_host_bytes", f"{kind.upper()}/request", units),
                          count_column(f"{kind}_requests", f"Requests in {kind}")]  # fmt: skip
        table.csv_keys = [*(table.csv_keys or []), f"{kind}_host_bytes", f"{kind}_requests"]
    table.caption += (f" Offload: {offloaded[0][0].engine} keeps whole chunks or pages of a request; /request is "
                      "its host bytes with every copy (tp ranks of a replicated cache), Requests in how many such "
                      "requests the tier holds.")  # fmt: skip

    def json_rows() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = payload()
        for row, tiers in zip(rows, offloaded, strict=True):
            row["offload"] = [t.as_dict() for t in tiers]
        return rows

    return table, json_rows


def comparison_view(comparison: Comparison, units: str) -> tuple[TableData, Any]:
    contexts = comparison.contexts
    largest = max(contexts)
    rows: list[dict[str, Any]] = []
    for row in comparison.rows:
        label = f"{row.model}: {row.attention}" if row.variant == "as built" else f"  as {row.variant}: {row.attention}"
        entry: dict[str, Any] = {
            "label": label, "model": row.model, "variant": row.variant, "attention": row.attention,
            "bytes_per_token": row.bytes_per_token, "ratio": row.ratio, "gqa_groups": row.gqa_groups,
        }  # fmt: skip
        for n, e in zip(contexts, row.estimates, strict=True):
            entry[f"ctx_{n}"] = e.total_bytes
        rows.append(entry)
    columns = [Column("label", "Model / what-if"), exact_column("bytes_per_token", "Bytes/token")]
    columns += [bytes_column(f"ctx_{n}", format_tokens(n), units) for n in contexts]
    columns.append(
        Column(
            "ratio",
            f"vs built @{format_tokens(largest)}",
            numeric=True,
            display=lambda v: f"{float(v):,.2f}x",
        )
    )
    columns.append(Column("gqa_groups", "GQA groups", numeric=True, display=lambda v: f"{float(v):.2f}"))
    caption = (
        f"KV cache for batch {comparison.batch}, {comparison.kv_dtype}, runtime {comparison.runtime}. What-ifs cache per "
        "layer KV heads x (key + value width), keeping the model's per-head widths (key = nope + rope). GQA groups: "
        "how many GQA groups cache as much as the MLA latent, DeepSeek-V2 paper convention "
        "(latent / (qk_nope_head_dim + v_head_dim))."
    )
    table = TableData(columns, rows, title="KV cache as built and as what-if attention", caption=caption)
    return table, comparison.as_dict()


def _percent_text(value: Fraction | None) -> str:
    return "new" if value is None else f"{float(value):+.2f}%"


def diff_view(result: Diff, units: str) -> tuple[TableData, Any]:
    rows = [
        {"context": r.context, "component": r.component, "status": r.status,
         "old_bytes_per_token": r.old_bytes_per_token, "new_bytes_per_token": r.new_bytes_per_token,
         "old_bytes": r.old_bytes, "new_bytes": r.new_bytes, "change_bytes": r.change_bytes,
         "change_percent": r.change_percent}
        for r in result.rows
    ]  # fmt: skip
    verdict = ""
    if result.max_growth is not None and result.largest_growth is not None:
        verdict = (
            f"{'PASS' if result.passed else 'FAIL'}: largest growth {float(result.largest_growth):+.2f}% against "
            f"--max-growth {float(result.max_growth):g}%"
        )
    changed = "; ".join(result.changed_keys) if result.changed_keys else "no architecture key changed"
    table = TableData(
        [count_column("context", "Context"), Column("component", "Component"), Column("status", "Status"),
         exact_column("old_bytes_per_token", "Old B/token"), exact_column("new_bytes_per_token", "New B/token"),
         bytes_column("old_bytes", "Old", units), bytes_column("new_bytes", "New", units),
         Column("change_bytes", "Change (B)", numeric=True, display=lambda v: f"{v:+,}"),
         Column("change_percent", "Change", numeric=True, display=_percent_text)],
        rows, title=f"{result.old} -> {result.new} ({result.old_name} -> {result.new_name})",
        caption=f"Runtime {result.runtime}, batch {result.batch}. Changed: {changed}. {verdict}".strip(),
    )  # fmt: skip
    return table, result.as_dict()


def gpus_view(gpus: Sequence[GPU], units: str) -> tuple[TableData, Any]:
    rows = [{"name": g.name, "nominal": g.nominal, "memory_bytes": g.memory_bytes, "memory_mib": g.memory_bytes // 2**20,
             "cuda_bytes": g.cuda_bytes, "compute_capability": g.compute_capability or None, "source": g.source,
             "cuda_source": g.cuda_source or None, "estimated": g.estimated} for g in gpus]  # fmt: skip
    table = TableData(
        [Column("name", "GPU"), Column("nominal", "Nominal"), count_column("memory_mib", "MiB (smi)"),
         bytes_column("memory_bytes", "Memory", units), bytes_column("cuda_bytes", "CUDA total", units),
         Column("compute_capability", "SM"), Column("source", "Source")],
        rows, title="GPU catalogue (configs/gpus.yaml)",
    )  # fmt: skip
    return table, rows


def fit_view(result: FitResult, units: str) -> tuple[TableData, Any]:
    """One deployment, a line per figure: raw value and unit for CSV, human text for tables."""
    r = result
    lines: list[dict[str, Any]] = []

    def line(what: str, value: Any, unit: str, text: str | None = None) -> None:
        lines.append({"what": what, "value": value, "unit": unit, "text": text})

    layout = f"tp {r.tp}, pp {r.pp}, dp {r.dp}" + (" with dp attention" if r.dp_attention else "")
    line("GPU", r.gpu, "", f"{r.gpu} x {r.gpus} ({layout})")
    if r.memory_bytes:
        line("memory per GPU (CUDA total)", r.memory_bytes, "bytes")
    engine = r.runtime.split(" ")[0]
    fraction_name = {"sglang": "mem_fraction_static", "trtllm": "free_gpu_memory_fraction"}.get(
        engine, "gpu_memory_utilization"
    )
    given = not r.around
    if r.fraction is not None and not given:
        line(f"{fraction_name} {float(r.fraction):.3g}", r.usable_bytes, "bytes")
    if r.params_total is not None:
        where = {"dims": "counted from the dims", "checkpoint": "checkpoint headers"}.get(
            r.params_source, r.params_source
        )
        line(f"parameters ({where})", r.params_total, "parameters", f"{r.params_total:,}")
    if r.params_active is not None:
        line("active parameters per token", r.params_active, "parameters", f"{r.params_active:,}")
    line(f"weights ({r.weight_dtype})", r.weight_bytes, "bytes")
    around = r.around or {}
    source = around.get("source", "")
    if given:
        pass
    elif source == "model":
        tokens = around.get("max_num_batched_tokens", 0)
        line(f"activations (profile run, {tokens:,} tokens)", around["activation"], "bytes")
        line("non-torch (CUDA context, NCCL)", around["non_torch"], "bytes")
        if around.get("cuda_graphs"):
            line("CUDA graphs", around["cuda_graphs"], "bytes")
    else:
        line("reserve (--reserve)", r.reserve_bytes, "bytes")
    line("KV cache memory" + (" (given)" if given else ""), r.available_bytes, "bytes")
    line("cache bytes per token", r.bytes_per_token, "bytes", format_number(r.bytes_per_token))
    what = "token capacity (engine arithmetic)" if r.capacity_kind == "engine" else "token capacity (longest sequence)"
    line(what, r.token_capacity, "tokens")
    if r.num_blocks is not None:
        line(f"blocks of {r.block_size} tokens", r.num_blocks, "blocks")
    if r.dp > 1:
        line("token capacity, all replicas", r.token_capacity * r.dp, "tokens",
             f"{r.token_capacity * r.dp:,} tokens ({r.dp} independent pools)")  # fmt: skip
    if r.context is not None:
        line(f"requests of {r.context:,} tokens", r.max_concurrency, "requests", f"{r.max_concurrency:,}")
        line(f"cache at {r.context:,} x {r.batch}", r.cache_bytes or 0, "bytes")
    if r.longest_context is not None:
        line(f"longest context at batch {r.batch or 1}", r.longest_context, "tokens")
    extra_notes = _beyond_lines(r, line)
    verdict = "FITS" if r.fits else ("WEIGHTS DO NOT FIT" if not r.weights_fit else "DOES NOT FIT")
    line("verdict", verdict, "", verdict)
    for entry in lines:
        if entry["text"] is None:
            value, unit = entry["value"], entry["unit"]
            entry["text"] = format_bytes(value, units) if unit == "bytes" else f"{value:,} {unit}"
        entry["bytes"] = entry["value"] if entry["unit"] == "bytes" else None
    caption = f"Runtime {r.runtime}, cache {r.kv_dtype}, block {r.block_size}. KV cache memory = {r.memory_rule}."
    if r.engine_lines:
        caption += f" {engine} would log: " + " / ".join(r.engine_lines).rstrip(".") + "."
    caption += notes_text(list(r.notes) + extra_notes)
    table = TableData(
        [Column("what", "Per GPU"), Column("text", "Value", numeric=True), exact_column("bytes", "Bytes")],
        lines, title=f"{r.model} on {r.gpu}", caption=caption, csv_keys=["what", "value", "unit"],
    )  # fmt: skip
    return table, r.as_dict()


def _beyond_lines(r: FitResult, line: Callable[..., None]) -> list[str]:
    """fit's lines for offload tiers and a shared prefix; returns their notes."""
    notes: list[str] = []
    for tier in r.tiers:
        per_token = Fraction(tier["chunk_bytes"], tier["chunk_tokens"])
        line(f"{tier['tier']} tier: distinct tokens", tier["unique_tokens"], "tokens")
        line(f"{tier['tier']} tier: host bytes per token, every copy", per_token, "bytes",
             f"{format_number(per_token)} B ({tier['copies']} cop{'y' if tier['copies'] == 1 else 'ies'})")  # fmt: skip
        line(f"{tier['tier']} tier: host memory per node", tier["host_bytes_per_node"], "bytes")
        notes += [f"{tier['tier']} tier: {tier['engine']}, {tier['size_bytes']:,} B"] + list(tier["notes"])
        notes += [f"instead: {tier['alternative']}"] if tier["alternative"] else []
    if r.prefix is not None:
        p = r.prefix
        line(f"requests sharing a {p['prefix_tokens']:,}-token prefix", p["requests"], "requests",
             f"{p['requests']:,} ({p['shared_blocks']:,} shared blocks + {p['request_blocks']:,} each)")  # fmt: skip
        line("requests without sharing", p["requests_unshared"], "requests")
        notes += list(p["notes"])
    return notes


def fit_search_view(results: Sequence[FitResult], units: str) -> tuple[TableData, Any]:
    rows = [
        {"choice": "best" if i == 0 else "", "gpus": r.gpus, "layout": f"tp {r.tp} x pp {r.pp} x dp {r.dp}",
         "tp": r.tp, "pp": r.pp, "dp": r.dp, "weights": r.weight_bytes, "available": r.available_bytes,
         "concurrency": r.max_concurrency, "longest": r.longest_context}
        for i, r in enumerate(results)
    ]  # fmt: skip
    first = results[0]
    table = TableData(
        [Column("choice", ""), Column("gpus", "GPUs", numeric=True), Column("layout", "Layout"),
         bytes_column("weights", "Weights/GPU", units), bytes_column("available", "Cache room/GPU", units),
         Column("concurrency", f"Requests of {first.context:,}", numeric=True),
         count_column("longest", f"Longest context x {first.batch}")],
        rows,
        title=f"{first.model} on {first.gpu}: layouts that fit {first.context:,} tokens x {first.batch}",
        caption=f"Runtime {first.runtime}, cache {first.kv_dtype}, weights {first.weight_dtype}. Ranked by GPU count, "
        "then requests held. For MLA models data-parallel attention holds more: every tensor-parallel rank keeps "
        "the whole latent.",
    )  # fmt: skip
    return table, [r.as_dict() for r in results]


# ---------------------------------------------------------------------------------------------------------
# Budget verdicts (mla-mem check)


def verdicts_json(verdicts: Sequence[Verdict]) -> str:
    passed = all(v.passed for v in verdicts)
    import json

    return json.dumps({"passed": passed, "verdicts": [v.as_dict() for v in verdicts]}, indent=2) + "\n"


def verdicts_text(verdicts: Sequence[Verdict], units: str = "binary") -> str:
    lines = [f"{v.status} {v.message(units)}" for v in verdicts]
    failed = sum(1 for v in verdicts if v.status == "FAIL")
    errors = sum(1 for v in verdicts if v.status == "ERROR")
    summary = f"{len(verdicts) - failed - errors} passed, {failed} failed"
    lines.append(summary + (f", {errors} could not be checked" if errors else ""))
    return "\n".join(lines) + "\n"


def verdicts_junit(verdicts: Sequence[Verdict], units: str = "binary") -> str:
    """JUnit XML: one testsuite per budget file, one testcase per budget (failing if a limit fails, an error if the
    budget could not be checked)."""
    from xml.sax.saxutils import escape, quoteattr

    by_file: dict[str, dict[str, list[Verdict]]] = {}
    for v in verdicts:
        by_file.setdefault(v.file, {}).setdefault(v.budget, []).append(v)

    def count(budgets: dict[str, list[Verdict]], status: str) -> int:
        return sum(1 for vs in budgets.values() if any(v.status == status for v in vs))

    total = sum(len(b) for b in by_file.values())
    failed = sum(count(b, "FAIL") for b in by_file.values())
    errors = sum(count(b, "ERROR") for b in by_file.values())
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuites name="mla-mem check" tests="{total}" failures="{failed}" errors="{errors}">']  # fmt: skip
    for file, budgets in by_file.items():
        lines.append(
            f'  <testsuite name={quoteattr(file)} tests="{len(budgets)}" failures="{count(budgets, "FAIL")}" '
            f'errors="{count(budgets, "ERROR")}" skipped="0">'
        )
        for budget, vs in budgets.items():
            lines.append(f"    <testcase classname={quoteattr(file)} name={quoteattr(budget)}>")
            for v in vs:
                tag = {"FAIL": "failure", "ERROR": "error"}.get(v.status)
                if tag:
                    lines.append(f"      <{tag} type={quoteattr(v.limit_key)} message={quoteattr(v.message(units))}/>")
            out = "\n".join(v.message(units) for v in vs)
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


def verdicts_github(verdicts: Sequence[Verdict], units: str = "binary") -> str:
    """GitHub Actions workflow commands: ::error for failures and errors, ::notice for passes, at the budget's line."""
    lines = []
    for v in verdicts:
        level = "notice" if v.passed else "error"
        props = f"file={_gh_escape(v.file, True)}"
        if v.line:
            props += f",line={v.line}"
        props += f",title={_gh_escape(f'mla-mem {v.status} {v.budget}', True)}"
        lines.append(f"::{level} {props}::{_gh_escape(v.message(units))}")
    return "\n".join(lines) + "\n"


def verdicts_markdown(verdicts: Sequence[Verdict], units: str = "binary") -> str:
    bad = sum(1 for v in verdicts if not v.passed)
    head = "### mla-mem budget check: " + ("all passed" if not bad else f"{bad} of {len(verdicts)} did not pass")
    rows = [
        "| | Budget | Model | Limit | Measured | Limit value | Headroom |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for v in verdicts:
        status = {"PASS": "PASS", "FAIL": "**FAIL**", "ERROR": "**ERROR**"}[v.status]
        cells = [
            status,
            v.budget,
            v.model,
            v.limit_key,
            v.measured_text(units),
            v.limit_text(units),
            v.headroom_cell(units),
        ]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return head + "\n\n" + "\n".join(rows) + "\n"


VERDICT_FORMATS: dict[str, Callable[..., str]] = {
    "text": verdicts_text, "junit": verdicts_junit, "github": verdicts_github, "markdown": verdicts_markdown,
}  # fmt: skip


def fold_help() -> None:
    """Typer's help tables end option names and words that do not fit their column with an ellipsis (at 80 columns:
    "--no-hybrid-allocat…", "max_num_batched_toke…"); fold them onto the next line instead, whole."""
    import typer.rich_utils as rich_utils
    from rich.text import Text

    def folding(highlight: Any) -> Any:  # noqa: ANN401
        def call(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            text = highlight(*args, **kwargs)
            if isinstance(text, Text):
                text.overflow = "fold"
            return text

        call.folds = True  # type: ignore[attr-defined]
        return call

    def folding_columns(make: Any) -> Any:  # noqa: ANN401 - an option's help: Columns of Texts (help, default, ...)
        def call(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            columns = make(*args, **kwargs)
            for item in getattr(columns, "renderables", ()):
                if isinstance(item, Text):
                    item.overflow = "fold"
            return columns

        call.folds = True  # type: ignore[attr-defined]
        return call

    # Typer's own names (read in 0.28); where a release renames them, help keeps its ellipses rather than failing
    for name, wrap in (("highlighter", folding), ("negative_highlighter", folding), ("types_highlighter", folding),
                       ("_get_parameter_help", folding_columns)):  # fmt: skip
        current = getattr(rich_utils, name, None)
        if callable(current) and not getattr(current, "folds", False):
            setattr(rich_utils, name, wrap(current))
