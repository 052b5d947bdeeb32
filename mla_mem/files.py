"""The one way mla-mem writes a file: atomically, and never over an existing file without force.

The data goes to a temporary file in the target's directory, is flushed and fsync'ed, then renamed over the
target, so a reader sees the old file or the new one, never half of either. If producing or writing the data
fails, the temporary file is removed and the old file is left as it was.

`-` is standard output. An existing device, FIFO or socket (/dev/stdout, a named pipe) is written through, never
replaced. A symbolic link is followed: the file it points to is what is written (and replaced only with force).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UsageError


def _special(path: Path) -> bool:
    """An existing file that is not a regular file or a directory: a device, FIFO or socket."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def resolve_target(path: Path) -> Path:
    """The file a write goes to: a symbolic link's target (followed, never replaced)."""
    if path.is_symlink():
        if _special(path):  # /dev/stdout -> /proc/self/fd/1: write through the link
            return path
        target = Path(os.path.realpath(path))
        if not target.parent.is_dir():
            raise UsageError(f"{path}: a symbolic link to {target}, whose directory does not exist")
        return target
    return path


def check_writable(path: Path, force: bool) -> None:
    """Fail early (exit 2) when the target exists without force, or its directory is missing."""
    if str(path) == "-":
        return
    path = resolve_target(path)
    if _special(path):
        return
    if path.exists() and path.is_dir():
        raise UsageError(f"{path}: is a directory, expected a file name")
    if path.exists() and not force:
        raise UsageError(f"{path}: already exists; use --force to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{path}: directory {parent} does not exist")


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | str | Callable[[], bytes | str],
    force: bool = False,
    mode: int = 0o644,
) -> Path:
    """Write `data` (or what the callable returns) to `path` atomically (see the module's notes)."""
    if str(path) == "-":
        import sys

        payload = data() if callable(data) else data
        if isinstance(payload, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(payload)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(payload)
            sys.stdout.flush()
        return Path("-")
    target = resolve_target(Path(path))
    check_writable(target, force)
    if _special(target):
        payload = data() if callable(data) else data
        try:
            with open(target, "wb") as special:
                special.write(payload.encode() if isinstance(payload, str) else payload)
        except OSError as exc:
            raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from None
        return target
    parent = target.parent if str(target.parent) else Path(".")
    try:
        handle = tempfile.NamedTemporaryFile(dir=parent, prefix=f".{target.name}.", suffix=".tmp", delete=False)
    except OSError as exc:
        raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from None
    temp = Path(handle.name)
    try:
        with handle:
            payload = data() if callable(data) else data
            handle.write(payload.encode() if isinstance(payload, str) else payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from None
        raise
    return target


def devnull() -> Any:  # noqa: ANN401
    """A text stream to /dev/null (for a standard stream that was closed)."""
    return open(os.devnull, "w")  # noqa: SIM115 - the caller keeps it open until exit
