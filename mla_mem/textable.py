"""Plain-text tables that never cut a number: one layout pass, linear in rows, no Rich.

At the terminal's width (or at their natural width when stdout is not a terminal) a table is drawn as columns when
it fits; else its text columns wrap (numbers never do); else every row becomes a block of "Header  value" lines,
which fits any width down to the longest single number. Colour marks verdicts (FITS, PASS, FAIL, ...) on a colour
terminal only: never under NO_COLOR, always under FORCE_COLOR.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
from collections.abc import Sequence

from .records import record

GAP = 3  # spaces between columns
RULE = "━"
VERDICTS = {"FITS": "32", "PASS": "32", "DOES NOT FIT": "31", "WEIGHTS DO NOT FIT": "31", "FAIL": "31",
            "ERROR": "33"}  # fmt: skip


_UNIT = re.compile(r"(\d) (?=(?:[KMGT]i?B|B|tokens|requests|blocks|GPUs|layers)\b)")
NBSP = "\u00a0"


def wrap(text: str, width: int) -> list[str]:
    """textwrap.wrap that keeps a number with its unit ("256 B", "8,192 tokens") on one line."""
    kept = _UNIT.sub(lambda m: m.group(1) + NBSP, text)
    lines = textwrap.wrap(kept, width=width, break_long_words=False, break_on_hyphens=False)
    return [line.replace(NBSP, " ") for line in lines]


@record
class Grid:
    """A table ready to draw: title, headers, which columns are numeric, rows of text, caption."""

    title: str
    headers: list[str]
    numeric: list[bool]
    rows: list[list[str]]
    caption: str = ""


def terminal_width() -> int | None:
    """The width to fit: COLUMNS when set, the terminal's when stdout is one, else None (natural width)."""
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        if sys.stdout.isatty():
            return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return None
    return None


def colour_on() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb"
    except (OSError, ValueError):
        return False


def _paint(text: str, colour: bool) -> str:
    if not colour:
        return text
    for word, code in VERDICTS.items():
        if text.strip() == word:
            return f"\033[{code}m{text}\033[0m"
    return text


def _words(text: str) -> list[str]:
    """Where a header may wrap: at spaces and after a slash ("Bytes/" "token")."""
    return [w for part in text.split() for w in part.replace("/", "/ ").split()]


def _natural(grid: Grid, wrap_headers: bool = False) -> list[int]:
    widths = [max((len(w) for w in _words(h)), default=0) if wrap_headers else len(h) for h in grid.headers]
    for row in grid.rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    return widths


def _transposed(grid: Grid) -> Grid:
    """Rows become columns: the headers are the first column (few rows, many columns)."""
    rows = [[header, *(row[i] for row in grid.rows)] for i, header in enumerate(grid.headers)]
    return Grid(grid.title, ["", *("" for _ in grid.rows)], [False, *(True for _ in grid.rows)], rows, grid.caption)


def _fit_text_columns(grid: Grid, widths: list[int], width: int, gap: int = GAP) -> list[int] | None:
    """Narrow the text columns (numbers keep their width) until the table fits, or None."""
    total = sum(widths) + gap * (len(widths) - 1)
    if total <= width:
        return widths
    text = [i for i, numeric in enumerate(grid.numeric) if not numeric]
    floor = {}
    for i in text:
        words = [len(w) for cell in [grid.headers[i], *(r[i] for r in grid.rows)] for w in cell.split()] or [1]
        floor[i] = max(min(max(words), 24), 6)
    room = width - (total - sum(widths[i] for i in text))
    if room < sum(floor.values()):
        return None
    out = list(widths)
    excess = total - width
    for i in sorted(text, key=lambda i: widths[i] - floor[i], reverse=True):
        take = min(excess, widths[i] - floor[i])
        out[i] -= take
        excess -= take
    return out if excess <= 0 else None


def _cell_lines(text: str, width: int, numeric: bool) -> list[str]:
    if len(text) <= width:
        return [text]
    if numeric:  # a header over a number column: wrap it at its words, never cut
        lines: list[str] = []
        for word in _words(text):
            if lines and len(lines[-1]) + (0 if lines[-1].endswith("/") else 1) + len(word) <= width:
                lines[-1] += word if lines[-1].endswith("/") else " " + word
            else:
                lines.append(word)
        return lines
    return wrap(text, width) or [""]


def _columns(grid: Grid, widths: list[int], colour: bool, gap: int = GAP) -> list[str]:
    def line(cells: Sequence[str]) -> list[str]:
        wrapped = [_cell_lines(c, widths[i], grid.numeric[i]) for i, c in enumerate(cells)]
        out = []
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for i, lines in enumerate(wrapped):
                piece = lines[k] if k < len(lines) else ""
                padded = piece.rjust(widths[i]) if grid.numeric[i] else piece.ljust(widths[i])
                parts.append(_paint(padded, colour) if k == 0 else padded)
            out.append((" " * gap).join(parts).rstrip())
        return out

    lines = line(grid.headers)
    lines.append(RULE * (sum(widths) + gap * (len(widths) - 1)))
    for row in grid.rows:
        lines += line(row)
    return lines


def _blocks(grid: Grid, width: int, colour: bool) -> list[str]:
    """Each row as 'Header  value' lines: headers wrap, values never."""
    label = min(max(len(h) for h in grid.headers), max(12, width // 3))
    lines: list[str] = []
    for n, row in enumerate(grid.rows):
        if n:
            lines.append("")
        lines.append(RULE * min(width, 40))
        for header, cell in zip(grid.headers, row, strict=True):
            if not cell:
                continue
            heads = wrap(header, label) or [""]
            if label + 2 + len(cell) <= width:
                lines.append(f"{heads[0].ljust(label)}  {_paint(cell, colour)}")
                lines += heads[1:]
            else:
                lines += heads
                lines.append(f"  {_paint(cell, colour)}")
    return lines


def _layout(grid: Grid, limit: int, colour: bool) -> list[str]:
    """Columns with whole headers; with wrapped headers; with wrapped text; transposed; blocks: the first that fits."""
    for gap in (GAP, 2):
        for wrap_headers in (False, True):
            fitted = _fit_text_columns(grid, _natural(grid, wrap_headers), limit, gap)
            if fitted is not None:
                return _columns(grid, fitted, colour, gap)
    if len(grid.rows) <= 6 and any(grid.rows):
        turned = _transposed(grid)
        for gap in (GAP, 2):
            fitted = _fit_text_columns(turned, _natural(turned), limit, gap)
            if fitted is not None:
                return _columns(turned, fitted, colour, gap)[2:]  # the first column names each row
    return _blocks(grid, limit, colour)


def _rule_fits() -> bool:
    try:
        RULE.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def render(grid: Grid, width: int | None = None, colour: bool = False) -> str:
    widths = _natural(grid)
    limit = width if width is not None else sum(widths) + GAP * (len(widths) - 1)
    body = _layout(grid, limit, colour)
    lines = []
    if grid.title:
        lines += wrap(grid.title, max(limit, 20)) or [grid.title]
        lines.append("")
    if not _rule_fits():
        body = [line.replace(RULE, "-") for line in body]
    lines += body
    if grid.caption:
        lines.append("")
        lines += wrap(grid.caption, max(20, min(limit if width is not None else 110, 110)))
    return "\n".join(lines) + "\n"


__all__ = ["Grid", "colour_on", "render", "terminal_width"]
