"""The `mla-mem` executable: answers --version without loading the command line, else runs it (cli.main)."""

from __future__ import annotations

import sys


def main() -> int:
    args = sys.argv[1:]
    if args in (["--version"], ["-V"]):
        from . import __version__

        try:
            sys.stdout.write(f"mla-mem {__version__}\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError) as exc:
            sys.stderr.write(f"mla-mem: error: cannot write the version: {exc.strerror or exc}\n")
            sys.exit(2)
        sys.exit(0)
    from .cli import main as run

    return run()
