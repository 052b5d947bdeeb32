"""Regenerate the command outputs embedded in README.md and docs/config-format.md from the real commands.

Each block looks like

    <!-- mla-mem: compare -->
    ```
    ...output...
    ```
    <!-- /mla-mem -->

and is replaced by what `mla-mem compare` prints now (markdown-format blocks are embedded without a fence).
`<!-- include: configs/jamba-v0.1.yaml -->` blocks hold a file of the repository, fenced as YAML;
`<!-- script: memory_report -->` blocks hold what scripts/memory_report.py's render() prints.

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
DOCUMENTS = tuple(ROOT / name for name in ("README.md", "docs/config-format.md", "docs/memory.md", "docs/capacity.md"))
BLOCK = re.compile(
    r"(<!-- (?P<verb>mla-mem|include|script): (?P<args>.*?) -->\n)(?P<body>.*?)(<!-- /(?P=verb) -->)", re.S
)


def run(args: list[str]) -> str:
    import os

    from mla_mem.cli import main

    os.environ.pop("COLUMNS", None)  # the documents show natural-width tables (pytest-xdist's workers set 80)
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
        if match.group("verb") == "script":  # a table printed by scripts/<name>.py render()
            import importlib.util

            path = ROOT / "scripts" / f"{match.group('args').strip()}.py"
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return f"{match.group(1)}{module.render()}{match.group(5)}"
        if match.group("verb") == "include":
            content = (ROOT / match.group("args").strip()).read_text()
            return f"{match.group(1)}```yaml\n{content}```\n{match.group(5)}"
        args = shlex.split(match.group("args"))
        output = run(args)
        if "markdown" in args:
            body = output
        else:
            body = f"```\n$ mla-mem {match.group('args')}\n{output}```\n"
        return f"{match.group(1)}{body}{match.group(5)}"

    return BLOCK.sub(replace, text)


def main() -> int:
    stale = []
    for document in DOCUMENTS:
        current = document.read_text()
        fresh = render(current)
        if fresh != current:
            stale.append(document.relative_to(ROOT).as_posix())
            if "--check" not in sys.argv:
                document.write_text(fresh)
    if stale and "--check" in sys.argv:
        print(f"{', '.join(stale)} out of date: run uv run python scripts/update_readme.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
