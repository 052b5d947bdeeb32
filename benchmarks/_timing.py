"""Shared helpers of the benchmark scripts: whole-process timing, A B A B pairs, min / median / max."""

from __future__ import annotations

import statistics
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass


def compile_environment() -> None:
    """Byte-compile the whole environment (mla-mem and its dependencies): an uncompiled venv, as `uv sync` leaves it
    when bytecode writing is off, doubles every cold start and would measure the disk, not the tool."""
    for key in ("purelib", "platlib"):
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", sysconfig.get_paths()[key]],
                       check=False, stdout=subprocess.DEVNULL)  # fmt: skip
    import mla_mem

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(mla_mem.__path__[0])], check=True)


def timed(command: list[str], cwd: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=False, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Pair:
    tool: list[float]
    base: list[float]

    @property
    def ratios(self) -> list[float]:
        return [t / b for t, b in zip(self.tool, self.base, strict=True)]

    def line(self, label: str) -> str:
        def spread(values: list[float]) -> str:
            ms = [v * 1000 for v in values]
            return f"{min(ms):6.1f} /{statistics.median(ms):6.1f} /{max(ms):6.1f} ms"

        r = self.ratios
        return (f"{label:<34} {spread(self.tool)}   baseline {spread(self.base)}   "
                f"ratio {min(r):.2f} / {statistics.median(r):.2f} / {max(r):.2f}")  # fmt: skip


def pairs(tool: list[str], baseline: list[str], runs: int, cwd: str | None = None) -> Pair:
    """`tool` and `baseline` run alternately (A B A B ...) `runs` times each after one warm-up of each."""
    timed(tool, cwd), timed(baseline, cwd)
    tool_times, base_times = [], []
    for _ in range(runs):
        tool_times.append(timed(tool, cwd))
        base_times.append(timed(baseline, cwd))
    return Pair(tool_times, base_times)
