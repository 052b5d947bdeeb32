"""Regenerate the command outputs embedded in README.md from the real commands.

Each block looks like

    <!-- mla-mem: compare -->
    ```
    ...output...
    ```
    <!-- /mla-mem -->

and is replaced by what `mla-mem compare` prints now (markdown-format blocks are embedded without a fence).

    uv run python scripts/update_readme.py          # rewrite README.md
    uv run python scripts/update_readme.py --check  # exit 1 if README.md is out of date (used by the tests)
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- mla-mem: (?P<args>.*?) -->\n)(?P<body>.*?)(<!-- /mla-mem -->)", re.S)


def run(args: list[str]) -> str:
    from mla_mem.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(io.StringIO()):
        code = main(args)
    if code not in (0, 1):
        raise SystemExit(f"mla-mem {' '.join(args)} exited {code}")
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    return "\n".join(lines).strip("\n") + "\n"


def render(text: str) -> str:
    import os

    os.chdir(ROOT)  # paths in the README's commands are relative to the repository

    def replace(match: re.Match[str]) -> str:
        args = shlex.split(match.group("args"))
        output = run(args)
        if "markdown" in args:
            body = output
        else:
            body = f"```\n$ mla-mem {match.group('args')}\n{output}```\n"
        return f"{match.group(1)}{body}{match.group(4)}"

    return BLOCK.sub(replace, text)


def main() -> int:
    current = README.read_text()
    fresh = render(current)
    if "--check" in sys.argv:
        if fresh != current:
            print("README.md is out of date: run uv run python scripts/update_readme.py", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        README.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
