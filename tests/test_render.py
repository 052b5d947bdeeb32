"""render.py: one table, four views; CSV carries raw values only."""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction

import mla_mem
from mla_mem.render import (
    Column,
    TableData,
    bytes_column,
    csv_value,
    emit,
    estimates_view,
    exact_column,
    to_csv,
    to_markdown,
)


def table() -> TableData:
    return TableData(
        [Column("name", "Name"), exact_column("bpt", "Bytes/token"), bytes_column("bytes", "Cache", "binary")],
        [{"name": "a|b", "bpt": Fraction(88183, 16), "bytes": 2**30}, {"name": "c", "bpt": 70272, "bytes": None}],
        title="T",
        caption="C",
    )


def test_csv_is_raw_numbers():
    rows = list(csv.reader(io.StringIO(to_csv(table()))))
    assert rows == [["name", "bpt", "bytes"], ["a|b", "5511.4375", "1073741824"], ["c", "70272", ""]]
    assert csv_value(True) == "true" and csv_value(Fraction(1, 3)) == repr(1 / 3)


def test_markdown_escapes_and_aligns():
    text = to_markdown(table())
    assert "a\\|b" in text and "|---|---:|---:|" in text and "1.00 GiB" in text and "5,511.4375" in text


def test_json_goes_through_json_dumps(capsys):
    emit("json", table(), {"x": 1})
    assert json.loads(capsys.readouterr().out) == {"x": 1}


def test_estimate_csv_has_the_deployment_columns():
    view, _ = estimates_view([mla_mem.estimate("deepseek-v4-pro", 1 << 20, runtime="vllm")], "binary")
    rows = list(csv.DictReader(io.StringIO(to_csv(view))))
    assert rows[0]["bytes_per_token"] == "5511.4375" and rows[0]["runtime"] == "vllm 0.33"
    assert "," not in rows[0]["total_bytes"]
