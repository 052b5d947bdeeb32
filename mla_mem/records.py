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
from types import CodeType, MemberDescriptorType
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
_USED: dict[str, set[str]] = {}  # module -> the keys this process asked for: what is written (stale code is dropped)


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

        built = _direct(target, codes) if frozen and not slots else None
        if built is not None:
            return built
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


# ---------------------------------------------------------------------------------------------------------
# The direct path. Even with its code cached, `dataclasses` spends 6-9 us a field and 30 us a class finding fields,
# building Field objects and writing six functions' text: 3.7 ms for the forty records `check` defines. For the plain
# case that is every frozen record here (no base class, no slots, no method of its own that dataclass would make,
# fields with at most a default or a default factory), `_direct` builds the same class itself: the same Field
# objects, parameters and class attributes, and the six methods from one function per shape whose code is cached
# like the rest. Anything else, or a Python whose dataclasses this was not checked against, takes the general path.
# tests/test_records.py compares every record built so with the plain dataclass of the same fields, attribute by
# attribute and in behaviour.

_DIRECT = (3, 10) <= sys.version_info[:2] <= (3, 13)
_OWN = frozenset(
    ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__match_args__", "__slots__")
)
_PARAMS: list[object] = []  # the one __dataclass_params__ of a frozen record, made on first use
_BUILT: list[type] = []  # the classes made so, for the tests


def _direct(cls: type[_T], codes: dict[str, CodeType]) -> type[_T] | None:
    """`cls` made a frozen dataclass without `dataclasses`' general machinery, or None when it needs it."""
    body = cls.__dict__
    if not _DIRECT or cls.__bases__ != (object,) or not cls.__doc__ or not body.keys().isdisjoint(_OWN):
        return None
    found = _fields(cls, body.get("__annotations__", {}))
    if found is None:
        return None
    fields, kinds = found
    for name, field in fields.items():  # the class attribute of a field(...) is its default, or none
        if isinstance(body.get(name), dataclasses.Field):
            if field.default is dataclasses.MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, field.default)
    if not _PARAMS:  # init, repr, eq, order, unsafe_hash, frozen (+ match_args, kw_only, slots, weakref_slot)
        flags = (True, True, True, False, False, True) + ((True, False, False, False) if sys.version_info >= (3, 12) else ())  # fmt: skip  # noqa: E501
        _PARAMS.append(dataclasses._DataclassParams(*flags))  # type: ignore[attr-defined]
    cls.__dataclass_params__ = _PARAMS[0]  # type: ignore[attr-defined]
    cls.__dataclass_fields__ = fields  # type: ignore[attr-defined]
    post_init = hasattr(cls, "__post_init__")
    # the shape (and this file's version) names the code: the text itself is written only when the cache lacks it
    shape = f"record {_stamp()}: " + " ".join(map(str.__add__, fields, kinds)) + " +post" * post_init
    code = _code(cls.__module__, codes, shape, lambda: _methods_text(list(fields), kinds, post_init))
    namespace: dict[str, Any] = {}
    module = sys.modules.get(cls.__module__)
    exec(code, vars(module) if module else {}, namespace)  # noqa: S102 - our own text
    values = [field.type for field in fields.values()]
    for field, kind in zip(fields.values(), kinds, strict=True):
        if kind:
            values.append(field.default if kind == "=" else field.default_factory)
    factory = dataclasses._HAS_DEFAULT_FACTORY  # type: ignore[attr-defined]
    for method in namespace["__create_record__"](cls, object, dataclasses.FrozenInstanceError, factory, *values):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        if method.__name__ == "__repr__":
            method = _recursive_repr(method)
        setattr(cls, method.__name__, method)
    setattr(cls, "__match_args__", tuple(fields))  # noqa: B010 - a special name mypy will not let be assigned
    if sys.version_info >= (3, 13):
        cls.__replace__ = dataclasses._replace  # type: ignore[attr-defined]
    _BUILT.append(cls)
    return cls


_STAMP: list[str] = []


def _stamp() -> str:
    """This file's modification time and size: code cached for a shape is used only with the text generator that
    wrote it (an edited or reinstalled records.py writes new code). Unknown (no file): a fresh key per process, so
    nothing cached is trusted."""
    if not _STAMP:
        try:
            info = os.stat(__file__)
            _STAMP.append(f"{info.st_mtime_ns}-{info.st_size}")
        except (OSError, NameError):
            _STAMP.append(f"unknown-{os.getpid()}-{id(_STAMP)}")
    return _STAMP[0]


def _fields(cls: type, annotations: dict[str, Any]) -> tuple[dict[str, dataclasses.Field[Any]], list[str]] | None:
    """The Field of each annotation as dataclasses makes it, and its kind: "" required, "=" a default, "()" a default
    factory. None for anything but a plain field with at most a default or a factory, and for what dataclasses
    refuses (a mutable default, a field without a default after one with), which it then says itself."""
    missing = dataclasses.MISSING
    fields: dict[str, dataclasses.Field[Any]] = {}
    kinds: list[str] = []
    defaulted = False
    for name, annotation in annotations.items():
        if type(annotation) is not str or name.startswith("__") or name == "self":
            return None
        if "ClassVar" in annotation or "InitVar" in annotation or "KW_ONLY" in annotation:
            return None
        default = getattr(cls, name, missing)
        if isinstance(default, dataclasses.Field):
            if default.metadata or default.kw_only not in (missing, False) or (
                default.init, default.repr, default.hash, default.compare) != (True, True, None, True):  # fmt: skip
                return None  # init=False, repr=False, kw_only, metadata ...: the general path
            field = default
        elif isinstance(default, MemberDescriptorType):
            return None
        else:
            field = dataclasses.field(default=default)  # type: ignore[arg-type]  # MISSING: no default, as dataclasses passes it
        value = field.default
        if value is not missing and (isinstance(value, (list, dict, set)) or type(value).__hash__ is None):
            return None  # a mutable default
        kind = "=" if value is not missing else "()" if field.default_factory is not missing else ""
        if not kind and defaulted:
            return None
        defaulted = defaulted or bool(kind)
        field.name, field.type, field.kw_only = name, annotation, False
        field._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
        fields[name] = field
        kinds.append(kind)
    for name, value in cls.__dict__.items():
        if isinstance(value, dataclasses.Field) and name not in annotations:
            return None  # a field without an annotation
    return fields, kinds


def _recursive_repr(method: Callable[..., str]) -> Callable[..., str]:
    wrap = getattr(dataclasses, "_recursive_repr", None)
    if wrap is None:  # Python 3.13: reprlib's, as dataclasses uses it
        import reprlib

        wrap = reprlib.recursive_repr()
    return wrap(method)


def _methods_text(names: list[str], kinds: list[str], post_init: bool) -> str:
    """One function returning __init__, __repr__, __eq__, __hash__, __setattr__ and __delattr__ of a frozen record
    of these fields: the bodies dataclasses writes (Lib/dataclasses.py, _init_fn, _repr_fn, _cmp_fn or 3.13's
    __eq__, _hash_fn, _frozen_get_del_attr)."""
    types = [f"__t{i}" for i in range(len(names))]
    extras = [f"__d{i}" for i, kind in enumerate(kinds) if kind]
    params = []
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        default = "" if not kind else f"=__d{i}" if kind == "=" else "=__factory"
        params.append(f"{name}:__t{i}{default}")
    lines = [f"def __create_record__({', '.join(['__cls', '__object', '__frozen', '__factory', *types, *extras])}):"]
    lines.append(f" def __init__({', '.join(['self', *params])}) -> None:")
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        value = f"__d{i}() if {name} is __factory else {name}" if kind == "()" else name
        lines.append(f"  __object.__setattr__(self, {name!r}, {value})")
    if post_init:
        lines.append("  self.__post_init__()")
    if not names and not post_init:
        lines.append("  pass")
    shown = ", ".join(f"{name}={{self.{name}!r}}" for name in names)
    lines += [" def __repr__(self):", f'  return self.__class__.__qualname__ + f"({shown})"']
    mine, theirs = _tuple("self", names), _tuple("other", names)
    lines += [" def __eq__(self, other):"]
    if sys.version_info >= (3, 13):
        terms = " and ".join(f"self.{name}==other.{name}" for name in names) or "True"
        lines += [
            "  if self is other:",
            "   return True",
            "  if other.__class__ is self.__class__:",
            f"   return {terms}",
        ]
    else:
        lines += ["  if other.__class__ is self.__class__:", f"   return {mine}=={theirs}"]
    lines += ["  return NotImplemented", " def __hash__(self):", f"  return hash({mine})"]
    listed = "(" + ",".join(repr(name) for name in names) + ",)" if names else "()"
    for verb, method, args in (("assign to", "__setattr__", "name, value"), ("delete", "__delattr__", "name")):
        lines += [
            f" def {method}(self, {args}):",
            f"  if type(self) is __cls or name in {listed}:",
            f'   raise __frozen(f"cannot {verb} field {{name!r}}")',
            f"  super(__cls, self).{method}({args})",
        ]
    lines.append(" return __init__, __repr__, __eq__, __hash__, __setattr__, __delattr__")
    return "\n".join(lines) + "\n"


def _tuple(owner: str, names: list[str]) -> str:
    return "(" + ",".join(f"{owner}.{name}" for name in names) + ",)" if names else "()"


def _code(module: str, codes: dict[str, CodeType], key: str, write: Callable[[], str] | None = None) -> CodeType:
    """The code of the text `key` (or of the text `write()` gives for `key`), from the cache or compiled."""
    _USED.setdefault(module, set()).add(key)
    code = codes.get(key)
    if code is None:
        code = compile(key if write is None else write(), "<string>", "exec", dont_inherit=True)
        codes[key] = code
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
    """Write the modules' dictionaries that gained code, with only the code this process used: what classes that
    changed since used to need is dropped (atomically; an unwritable directory means no cache)."""
    import marshal
    import tempfile

    for module in sorted(_ADDED):
        path = _path(module)
        if path is None:
            continue
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), delete=False, suffix=".tmp") as handle:
                used = _USED.get(module, set())  # every record of a module is defined as it is imported
                handle.write(marshal.dumps({key: code for key, code in _CODE[module].items() if key in used}))
            os.replace(handle.name, path)
        except OSError:
            pass
    _ADDED.clear()


__all__ = ["cache_file", "record"]
