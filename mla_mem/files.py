"""The one way mla-mem writes a file: atomically, and never over an existing file without force.

The data goes to a temporary file in the target's directory, is flushed and fsync'ed, then renamed over the
target, so a reader sees the old file or the new one, never half of either. If producing or writing the data
fails, the temporary file is removed and the old file is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import UsageError


def check_writable(path: Path, force: bool) -> None:
    """Fail early (exit 2) when the target exists without force, or its directory is missing."""
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
    """Write `data` (or what the callable returns) to `path` atomically."""
    target = Path(path)
    check_writable(target, force)
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
