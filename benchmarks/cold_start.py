"""Cold start of `mla-mem estimate` against the floor it cannot beat: importing its own CLI dependencies.

Runs `mla-mem estimate deepseek-v3 --context 128K` and `python -c "import typer, yaml"` alternately
(so both see the same machine load), N times each, and prints the medians and their ratio.

    uv run python benchmarks/cold_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def compile_package() -> None:
    """Installed packages are byte-compiled; an editable checkout may not be (PYTHONDONTWRITEBYTECODE)."""
    import mla_mem

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(mla_mem.__file__).parent)], check=True)


def main() -> None:
    compile_package()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "mla-mem"
    tool = [str(script), "estimate", "deepseek-v3", "--context", "128K"]
    baseline = [sys.executable, "-c", "import typer, yaml"]
    timed(tool), timed(baseline)  # warm the file cache
    tool_times, base_times = [], []
    for _ in range(args.runs):
        tool_times.append(timed(tool))
        base_times.append(timed(baseline))
    tool_median, base_median = statistics.median(tool_times), statistics.median(base_times)
    print(
        f"mla-mem estimate deepseek-v3 --context 128K : median {tool_median * 1000:7.1f} ms over {args.runs} runs"
    )
    print(
        f"python -c 'import typer, yaml'             : median {base_median * 1000:7.1f} ms over {args.runs} runs"
    )
    print(f"ratio                                      : {tool_median / base_median:.2f}")


if __name__ == "__main__":
    main()
