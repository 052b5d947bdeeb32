"""Shared helpers of the benchmark scripts: whole-process timing, alternating runs, medians."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path


def compile_package() -> None:
    """Installed packages are byte-compiled; an editable checkout may not be (PYTHONDONTWRITEBYTECODE)."""
    import mla_mem

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(mla_mem.__file__).parent)], check=True)


def timed(command: list[str], cwd: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def compare(tool: list[str], baseline: list[str], runs: int, cwd: str | None = None) -> tuple[float, float]:
    """Median seconds of `tool` and `baseline`, run alternately `runs` times each after one warm-up."""
    compile_package()
    timed(tool, cwd), timed(baseline, cwd)
    tool_times, base_times = [], []
    for _ in range(runs):
        tool_times.append(timed(tool, cwd))
        base_times.append(timed(baseline, cwd))
    return statistics.median(tool_times), statistics.median(base_times)
