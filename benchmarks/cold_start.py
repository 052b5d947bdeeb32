"""Cold start of every table command against the floor it cannot beat: `python -c "import typer, yaml"`.

Each command and the floor run alternately (A B A B ...), N times each, in a byte-compiled environment; the script
prints min / median / max of both and of their ratio, pair by pair. Target (issue 19): every median ratio <= 1.2.

    uv run python benchmarks/cold_start.py [--runs 15] [--only fit]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _timing import compile_environment, pairs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "estimate deepseek-v3 -c 128K": ["estimate", "deepseek-v3", "--context", "128K"],
    "estimate ... --format json": ["estimate", "deepseek-v3", "--context", "128K", "--format", "json"],
    "show deepseek-v3": ["show", "deepseek-v3"],
    "models": ["models"],
    "compare deepseek-v3": ["compare", "deepseek-v3"],
    "fit deepseek-v3 H200 x 8": ["fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "128K"],
    "check examples/budgets.yaml": ["check", "examples/budgets.yaml"],
    "--version": ["--version"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", default="", help="only the commands whose label contains this text")
    args = parser.parse_args()
    compile_environment()
    script = str(Path(sys.executable).parent / "mla-mem")
    floor = [sys.executable, "-c", "import typer, yaml"]
    print(f"{args.runs} A/B pairs per command, min / median / max")
    worst = 0.0
    for label, command in COMMANDS.items():
        if args.only not in label:
            continue
        result = pairs([script, *command], floor, args.runs, cwd=str(ROOT))
        print(result.line(label))
        worst = max(worst, statistics.median(result.ratios))
    print(f"largest median ratio: {worst:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
