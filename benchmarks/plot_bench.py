"""`mla-mem plot` for three models against the floor: matplotlib drawing and saving a one-point figure.

    uv run python benchmarks/plot_bench.py [--runs 7]

Both run alternately as whole processes (cold start included), after the environment is byte-compiled; prints
min / median / max of both and of their ratio, pair by pair. Target (issue 3): median ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _timing import compile_environment, pairs  # noqa: E402

BASELINE = (
    "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as p; p.plot([1],[1]); p.savefig('x.png')"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "mla-mem"
    tool = [str(script), "plot", "deepseek-v3", "kimi-k2", "glm-5", "-o", "plot.png", "--force"]
    compile_environment()
    with tempfile.TemporaryDirectory() as folder:
        pair = pairs(tool, [sys.executable, "-c", BASELINE], args.runs, cwd=folder)
    print(f"{args.runs} A/B pairs, min / median / max; baseline: matplotlib saving a one-point figure")
    print(pair.line("plot deepseek-v3 kimi-k2 glm-5"))


if __name__ == "__main__":
    main()
