"""Cold start of `mla-mem estimate` against the floor it cannot beat: importing its own CLI dependencies.

Runs `mla-mem estimate deepseek-v3 --context 128K` and `python -c "import typer, yaml"` alternately
(so both see the same machine load), N times each, and prints the medians and their ratio.

    uv run python benchmarks/cold_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _timing import compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "mla-mem"
    tool = [str(script), "estimate", "deepseek-v3", "--context", "128K"]
    tool_median, base_median = compare(tool, [sys.executable, "-c", "import typer, yaml"], args.runs)
    print(f"mla-mem estimate deepseek-v3 --context 128K : median {tool_median * 1000:7.1f} ms over {args.runs} runs")
    print(f"python -c 'import typer, yaml'             : median {base_median * 1000:7.1f} ms over {args.runs} runs")
    print(f"ratio                                      : {tool_median / base_median:.2f}")


if __name__ == "__main__":
    main()
