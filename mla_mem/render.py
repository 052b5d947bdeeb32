"""One data structure, several views: Rich tables, JSON, CSV and Markdown.

JSON goes straight to stdout through `json.dumps` (never through Rich, which wraps long lines). CSV carries
exact raw values; table and Markdown carry the human text. Rich is imported only for the table view.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("table", "json", "csv", "markdown")


@dataclass
class Column:
    key: str
    header: str
    numeric: bool = False
    display: Callable[[Any], str] | None = None


@dataclass
class TableData:
    """Rows of raw values; `Column.display` turns a raw value into the text a human reads."""

    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    caption: str = ""

    def text(self, column: Column, row: dict[str, Any]) -> str:
        value = row.get(column.key)
        if value is None:
            return ""
        if column.display is not None:
            return column.display(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def emit(fmt: str, table: TableData, payload: Any) -> None:
    """Print `table` as table/csv/markdown, or `payload` as JSON."""
    if fmt == "json":
        write(json.dumps(payload, indent=2) + "\n")
    elif fmt == "csv":
        write(to_csv(table))
    elif fmt == "markdown":
        write(to_markdown(table))
    else:
        print_table(table)


def to_csv(table: TableData) -> str:
    """Raw values, one column per key (a key shown twice in the table, as human text and exact bytes, once)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = list(dict.fromkeys(c.key for c in table.columns))
    writer.writerow(keys)
    for row in table.rows:
        writer.writerow(["" if row.get(key) is None else row.get(key) for key in keys])
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


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def print_table(table: TableData) -> None:
    """A Rich table; when stdout is not a terminal it is printed at its natural width (never folded)."""
    import textwrap

    from rich import box
    from rich.table import Table

    out = Table(title=table.title or None, box=box.SIMPLE_HEAVY, title_justify="left", pad_edge=False)
    for column in table.columns:
        out.add_column(column.header, justify="right" if column.numeric else "left", no_wrap=column.numeric)
    for row in table.rows:
        out.add_row(*(table.text(c, row) for c in table.columns))
    screen = console()
    if not screen.is_terminal:
        natural = screen.measure(out, options=screen.options.update_width(1000)).maximum
        screen.width = max(80, min(natural, 1000))
    screen.print(out)
    if table.caption:
        width = min(screen.width, 110)
        sys.stdout.write("\n".join(textwrap.wrap(table.caption, width=width)) + "\n")
