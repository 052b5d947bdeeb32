"""`mla-mem plot` for three models against the floor: matplotlib drawing and saving a one-point figure.

    uv run python benchmarks/plot_bench.py [--runs 7]

Both run alternately as whole processes (cold start included); prints medians and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _timing import compare  # noqa: E402

BASELINE = (
    "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as p; p.plot([1],[1]); p.savefig('x.png')"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "mla-mem"
    tool = [str(script), "plot", "deepseek-v3", "kimi-k2", "glm-5", "-o", "plot.png", "--force"]
    with tempfile.TemporaryDirectory() as folder:
        tool_median, base_median = compare(tool, [sys.executable, "-c", BASELINE], args.runs, cwd=folder)
    print(f"mla-mem plot (3 models)          : median {tool_median * 1000:7.1f} ms over {args.runs} runs")
    print(f"matplotlib one-point savefig     : median {base_median * 1000:7.1f} ms over {args.runs} runs")
    print(f"ratio                            : {tool_median / base_median:.2f}")


if __name__ == "__main__":
    main()
