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
    import gc

    # A run allocates a few hundred thousand objects that live until exit (Typer, Click, the model records): the
    # cyclic collector's default thresholds (700, 10, 10) scan them dozens of times, 3-5 ms of a 60 ms start. Fewer,
    # later collections keep what a long run (a 24 x 1,000 table) frees in cycles bounded all the same.
    gc.set_threshold(100_000, 50, 1_000)
    from .cli import main as run

    try:
        return run()
    finally:
        # At exit the interpreter runs the cyclic collector over everything still alive (some 25,000 objects for
        # `check`: modules, Typer's commands, the model records), 5-10 ms more than for `import typer, yaml`,
        # though each is freed by reference counting as the modules are cleared. Frozen, they are left out of it.
        # The one difference: an object in a reference cycle with a finalizer is not finalized at exit; mla-mem
        # closes its files and runs its atexit writers itself, and atexit runs before the interpreter tears down.
        gc.freeze()
