"""Public engine start-up logs (tests/engine_logs/cases, sources in each file) reproduced by mla-mem's own output.

checks.yaml says, per case, the mla-mem command a user would run and the lines the engine printed. Where the engine
printed its cache memory rounded to two decimals, the memory is searched within that rounding interval; the engine's
token count must be reached exactly there, and every other printed figure must then be mla-mem's, to the digit.
"""

from __future__ import annotations

import json
import re
import shlex
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from mla_mem.cli import main

HERE = Path(__file__).parent / "engine_logs"
CHECKS = yaml.safe_load((HERE / "checks.yaml").read_text())["checks"]
UNITS = {"GiB": 2**30, "MiB": 2**20}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    code = main([*args, "--format", "json"])
    out = capsys.readouterr().out
    assert code in (0, 1), out
    payload = json.loads(out)
    return payload[0] if isinstance(payload, list) else payload


def interval(text: str) -> tuple[int, int]:
    """The bytes a figure printed with all its digits stands for: 5.38GiB -> [5.375, 5.385) GiB."""
    number, unit = text[:-3], text[-3:]
    value = Decimal(number)
    half = Decimal(1).scaleb(value.as_tuple().exponent) / 2  # type: ignore[operator]
    return int((value - half) * UNITS[unit]), int((value + half) * UNITS[unit]) - 1


def fitted(args: list[str], memory: int, capsys: pytest.CaptureFixture[str]) -> dict:
    return run([*args, "--kv-cache-memory", f"{memory}B"], capsys)


def longest(result: dict) -> int:
    """vLLM's "estimated maximum model length" in mla-mem's error line (0 when there is none)."""
    found = [re.search(r"estimated maximum model length is (\d+)", line) for line in result["engine_lines"]]
    return next((int(m.group(1)) for m in found if m), 0)


def search(args: list[str], key: str, target: int, low: int, high: int, capsys: pytest.CaptureFixture[str]) -> dict:
    """mla-mem's fit at the smallest memory in [low, high] whose `key` (token capacity, or the longest length that
    fits) reaches `target`."""

    def value(memory: int) -> int:
        result = fitted(args, memory, capsys)
        return int(result["token_capacity"]) if key == "tokens" else longest(result)

    if value(high) < target:
        pytest.fail(f"even {high:,} B gives less than {target:,} ({key})")
    while high - low > 1:
        middle = (low + high) // 2
        if value(middle) >= target:
            high = middle
        else:
            low = middle
    return fitted(args, high, capsys)


def test_the_corpus_is_large_and_checked():
    cases = sorted(p.name for p in (HERE / "cases").glob("*.yaml"))
    checked = {c["case"] for c in CHECKS}
    assert checked <= set(cases)
    reproduced = [c for c in CHECKS if c.get("reproduced", True)]
    assert len(reproduced) >= 20
    mla = [c for c in reproduced if any(m in c["command"] for m in ("deepseek", "kimi", "glm-5"))]
    assert len(mla) >= 6
    for check in CHECKS:
        if not check.get("reproduced", True):
            assert check.get("reason"), check["case"]


@pytest.mark.parametrize("check", [c for c in CHECKS if c.get("reproduced", True)], ids=lambda c: c["case"])
def test_engine_log_is_reproduced(check, capsys):
    args = shlex.split(check["command"])
    if "total_mib" in check:
        result = run(args, capsys)
        assert f"{result['total_bytes'] / 2**20:.2f}" == check["total_mib"]
        return
    key = next((k for k in ("tokens", "longest") if k in check), None)
    if key is not None:
        low, high = interval(check["memory"]) if "memory" in check else (1, 2**44)
        if "memory_fraction" in check:
            share = Decimal(check["memory_fraction"])
            low, high = int(low * share), int(high * share)
        result = search(args, key, check[key], low, high, capsys)
        assert (result["token_capacity"] if key == "tokens" else longest(result)) == check[key]
    else:
        result = run(args, capsys)
    if "blocks" in check:
        assert result["num_blocks"] == check["blocks"]
    if "concurrency" in check:  # printed with two decimals
        assert f"{result['concurrency_per_gpu_group']:.2f}" == check["concurrency"]
    for line in check.get("expect", []):
        assert any(line in printed for printed in result["engine_lines"]), (line, result["engine_lines"])
