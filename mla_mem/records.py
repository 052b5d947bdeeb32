"""Dataclasses that are cheap to define: `@record` is `@dataclass(frozen=True)` whose generated methods are compiled
once per Python version, not once per process.

The standard library writes each dataclass's `__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__` and
`__delattr__` as source text and compiles it with `exec` every time the class is defined: about 60 us a method and
10 ms for the thirty-odd classes a table command defines, the largest share of mla-mem's start-up above
`import typer, yaml` (issue 19). `record` lets `dataclasses` do everything it does, and only while it runs gives
the `dataclasses` module an `exec` that looks the source text up in a dictionary of code objects, one file per
defining module in mla-mem's cache directory (`cache_file`, beside the built-ins' cache), compiling and adding it
when absent. The classes are the same:
the same text compiled the same way (no inherited `__future__` flags, as `dataclasses.py` has none), which
tests/test_records.py checks method by method. A missing, stale or damaged file just means compiling;
MLA_MEM_NO_CACHE=1 turns it off.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: object) -> Callable[[Any], Any]:
        return lambda decorator: decorator


_T = TypeVar("_T")

# defining module -> {source text -> code object}, each module's file loaded on its first record
_CODE: dict[str, dict[str, CodeType]] = {}
_ADDED: set[str] = set()  # modules whose dictionaries gained code in this process, written at exit


@overload
def record(cls: type[_T], /) -> type[_T]: ...
@overload
def record(*, frozen: bool = True, slots: bool = False) -> Callable[[type[_T]], type[_T]]: ...
@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(
    cls: type[_T] | None = None, /, *, frozen: bool = True, slots: bool = False
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """`@dataclass(frozen=frozen, slots=slots)`, with the generated methods' code from the cache."""

    def wrap(target: type[_T]) -> type[_T]:
        codes = _load(target.__module__)

        def cached_exec(source: str | CodeType, globals: dict[str, Any] | None = None, locals: Any = None) -> None:  # noqa: A002, ANN401
            if isinstance(source, str):
                source = _code(target.__module__, codes, source)
            exec(source, globals, locals)  # noqa: S102 - the text dataclasses generated, run as dataclasses runs it

        module = vars(dataclasses)
        module["exec"] = cached_exec
        module["_is_type"] = _is_type
        try:
            return dataclasses.dataclass(frozen=frozen, slots=slots)(target)
        finally:
            module.pop("exec", None)
            module["_is_type"] = _IS_TYPE

    return wrap if cls is None else wrap(cls)


# dataclasses asks of every field's annotation, three times, whether it names ClassVar, InitVar or KW_ONLY, each
# time with a regular expression and a namespace lookup (1,100 calls, about 1 ms, for a table command's records).
# An annotation that spells none of the three cannot name them, unless a module binds them to another name, which
# mla-mem's modules do not: tests/test_records.py compares every record's fields with a plain dataclass's.
_IS_TYPE = dataclasses._is_type  # type: ignore[attr-defined]
_SPECIAL = ("ClassVar", "InitVar", "KW_ONLY")


def _is_type(annotation: object, *args: object) -> bool:
    if isinstance(annotation, str) and not any(word in annotation for word in _SPECIAL):
        return False
    return bool(_IS_TYPE(annotation, *args))


def _code(module: str, codes: dict[str, CodeType], text: str) -> CodeType:
    code = codes.get(text)
    if code is None:
        code = compile(text, "<string>", "exec", dont_inherit=True)
        codes[text] = code
        if not _ADDED and _path(module) is not None:
            import atexit

            atexit.register(_save)
        _ADDED.add(module)
    return code


def cache_file(name: str) -> Path | None:
    """`name` in mla-mem's cache directory ($XDG_CACHE_HOME/mla-mem or ~/.cache/mla-mem), or None when
    MLA_MEM_NO_CACHE is set."""
    if os.environ.get("MLA_MEM_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mla-mem" / name


def _path(module: str) -> str | None:
    path = cache_file(f"records-{sys.implementation.cache_tag}/{module}.marshal")
    return None if path is None else str(path)


def _load(module: str) -> dict[str, CodeType]:
    if module not in _CODE:
        _CODE[module] = {}
        path = _path(module)
        if path is not None:
            import marshal

            try:
                with open(path, "rb") as handle:  # one read: marshal.load on a file reads it piece by piece
                    loaded = marshal.loads(handle.read())
            except (OSError, EOFError, ValueError, TypeError):  # absent or damaged: compile instead
                loaded = None
            if isinstance(loaded, dict):
                _CODE[module] = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, CodeType)}
    return _CODE[module]


def _save() -> None:
    """Write the modules' dictionaries that gained code (atomically; an unwritable directory means no cache)."""
    import marshal
    import tempfile

    for module in sorted(_ADDED):
        path = _path(module)
        if path is None:
            continue
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), delete=False, suffix=".tmp") as handle:
                handle.write(marshal.dumps(_CODE[module]))
            os.replace(handle.name, path)
        except OSError:
            pass
    _ADDED.clear()


__all__ = ["cache_file", "record"]
