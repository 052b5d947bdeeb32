"""`mla-mem plot` for three models against the floor: matplotlib drawing and saving a one-point figure.

    uv run python benchmarks/plot_bench.py [--runs 7]

Both run alternately as whole processes (cold start included); prints medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as p; p.plot([1],[1]); p.savefig('x.png')"


def timed(command: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def compile_package() -> None:
    """Installed packages are byte-compiled; an editable checkout may not be (PYTHONDONTWRITEBYTECODE)."""
    import mla_mem

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(mla_mem.__file__).parent)], check=True)


def main() -> None:
    compile_package()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "mla-mem"
    with tempfile.TemporaryDirectory() as folder:
        tool = [str(script), "plot", "deepseek-v3", "kimi-k2", "glm-5", "-o", "plot.png", "--force"]
        baseline = [sys.executable, "-c", BASELINE]
        timed(tool, folder), timed(baseline, folder)
        tool_times, base_times = [], []
        for _ in range(args.runs):
            tool_times.append(timed(tool, folder))
            base_times.append(timed(baseline, folder))
    tool_median, base_median = statistics.median(tool_times), statistics.median(base_times)
    print(f"mla-mem plot (3 models)          : median {tool_median * 1000:7.1f} ms over {args.runs} runs")
    print(f"matplotlib one-point savefig     : median {base_median * 1000:7.1f} ms over {args.runs} runs")
    print(f"ratio                            : {tool_median / base_median:.2f}")


if __name__ == "__main__":
    main()
