"""Run the whole test suite N times in a row, as CI would, and report every run's result and time.

    uv run python benchmarks/repeat_suite.py [--runs 20]

Exits 1 if any run fails. (The property tests are derandomized, so runs should be identical.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    failures = 0
    for run in range(1, args.runs + 1):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                                capture_output=True, text=True)  # fmt: skip
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-200:]
        failures += result.returncode != 0
        print(f"run {run:2d}: exit {result.returncode} in {time.perf_counter() - start:6.1f} s  {summary}")
    print(f"{args.runs - failures} of {args.runs} runs passed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
