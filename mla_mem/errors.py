"""The one family of errors mla-mem raises for bad input. The CLI turns each into one line and exit 2."""

from __future__ import annotations


class MlaMemError(Exception):
    """Bad input of any kind: a message for the user, no traceback."""

    exit_code = 2


class UsageError(MlaMemError):
    """A bad option value or an impossible request (unknown dtype, context of 0, ...)."""


class ConfigError(MlaMemError):
    """An invalid model file: names the file, the key path and what was expected."""

    def __init__(self, file: str, key: str, message: str, line: int | None = None):
        self.file = file
        self.key = key
        self.line = line
        self.detail = message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
