"""`@record` (mla_mem/records.py): the same classes as `@dataclass(frozen=True)`, method for method, whether the
generated code comes from the cache directory or is compiled; a damaged cache is compiled over, never an error."""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import mla_mem
from mla_mem import records

METHODS = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory and a records module that has loaded nothing yet (a new process)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("MLA_MEM_NO_CACHE", raising=False)
    monkeypatch.setattr(records, "_CODE", {})
    monkeypatch.setattr(records, "_ADDED", set())
    return tmp_path / "mla-mem" / f"records-{sys.implementation.cache_tag}"


def define(decorator):
    class Point:
        """A point."""

        x: int
        y: int = 2
        tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("x")

    return decorator(Point)


def assert_same_class(ours, theirs):
    for name in METHODS:
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a.__code__ == b.__code__, name  # same bytecode, constants, names, line table
        assert a.__defaults__ == b.__defaults__ and a.__kwdefaults__ == b.__kwdefaults__, name
        assert a.__annotations__ == b.__annotations__, name
    assert [f.name for f in dataclasses.fields(ours)] == [f.name for f in dataclasses.fields(theirs)]
    assert ours.__match_args__ == theirs.__match_args__ and ours.__doc__ == theirs.__doc__
    p, q = ours(1, tags=("a",)), theirs(1, tags=("a",))
    assert repr(p) == repr(q) and hash(p) == hash(q) and p == ours(1, 2, ("a",)) and p != q
    assert dataclasses.replace(p, y=5).y == 5 and dataclasses.asdict(p) == dataclasses.asdict(q)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="x"):
        ours(-1)


def test_a_record_is_a_frozen_dataclass_compiled_or_cached(cache):
    plain = define(dataclasses.dataclass(frozen=True))
    cold = define(records.record)  # compiles, keeps the code for the exit
    assert_same_class(cold, plain)
    assert records._ADDED == {__name__} and not cache.exists()
    records._save()  # what the exit does
    assert (cache / f"{__name__}.marshal").is_file()
    records._CODE.clear()  # a new process
    warm = define(records.record)
    assert_same_class(warm, plain)
    assert not records._ADDED  # nothing compiled: every method came from the file
    assert "exec" not in vars(dataclasses)  # the dataclasses module is left as it was


def test_slots_and_mutable_records(cache):
    slotted = define(records.record(slots=True))
    assert slotted.__slots__ == ("x", "y", "tags") and not hasattr(slotted(1), "__dict__")
    mutable = define(records.record(frozen=False))
    point = mutable(1)
    point.x = 4
    assert point.x == 4 and mutable.__hash__ is None  # as dataclass(eq=True) leaves a mutable class


@pytest.mark.parametrize("content", [b"", b"\x00garbage", b"\xe3" + b"\x00" * 40])
def test_a_damaged_cache_is_compiled_over(cache, content):
    cache.mkdir(parents=True)
    (cache / f"{__name__}.marshal").write_bytes(content)
    assert_same_class(define(records.record), define(dataclasses.dataclass(frozen=True)))
    assert records._ADDED == {__name__}  # compiled
    records._save()  # and the file rewritten whole
    records._CODE.clear()
    define(records.record)
    assert not records._ADDED


def test_a_file_of_other_objects_is_not_trusted(cache):
    import marshal

    cache.mkdir(parents=True)
    (cache / f"{__name__}.marshal").write_bytes(marshal.dumps({"def __create_fn__": 3, 4: compile("1", "", "eval")}))
    assert_same_class(define(records.record), define(dataclasses.dataclass(frozen=True)))


def test_the_cache_is_off_with_mla_mem_no_cache(cache, monkeypatch):
    monkeypatch.setenv("MLA_MEM_NO_CACHE", "1")
    assert_same_class(define(records.record), define(dataclasses.dataclass(frozen=True)))
    records._save()
    assert not cache.exists()


def twin(cls):
    """The class a plain @dataclass makes of the same fields (and __post_init__)."""
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    annotations = {}
    for f in dataclasses.fields(cls):
        annotations[f.name] = f.type
        namespace[f.name] = dataclasses.field(
            default=f.default, default_factory=f.default_factory, init=f.init, repr=f.repr, hash=f.hash,
            compare=f.compare, metadata=f.metadata, kw_only=f.kw_only,
        )  # fmt: skip
    namespace["__annotations__"] = annotations
    if "__post_init__" in vars(cls):
        namespace["__post_init__"] = vars(cls)["__post_init__"]
    params = cls.__dataclass_params__
    return dataclasses.dataclass(frozen=params.frozen, slots="__slots__" in vars(cls))(
        type(cls.__name__, (), namespace)
    )


def test_every_record_of_the_package_equals_its_dataclass():
    """Every class mla-mem defines with @record (its methods from this machine's cache directory, or compiled when
    that was empty) against a plain @dataclass of the same fields: the same code, method for method."""
    modules = [
        importlib.import_module(f"mla_mem.{info.name}")
        for info in pkgutil.walk_packages(mla_mem.__path__, onerror=lambda _: None)
        if not info.ispkg and info.name not in {"__main__"}
    ]
    modules += [importlib.import_module(f"mla_mem.runtimes.{n}") for n in ("rules", "vllm")]
    classes = {
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__.startswith("mla_mem.")
    }
    assert len(classes) >= 50
    for cls in classes:
        other = twin(cls)
        for name in METHODS:
            ours, theirs = vars(cls).get(name), vars(other).get(name)
            assert (ours is None) == (theirs is None), (cls, name)
            if ours is not None and ours.__code__.co_filename == "<string>":
                assert ours.__code__ == theirs.__code__, (cls, name)
                assert ours.__defaults__ == theirs.__defaults__, (cls, name)


def test_the_quick_special_type_test_agrees_with_dataclasses():
    """records._is_type skips dataclasses' regular expression for annotations that do not spell ClassVar, InitVar or
    KW_ONLY. For every annotation of every record class, and a few that do name them, it answers as dataclasses
    does."""
    import typing

    modules = [
        importlib.import_module(f"mla_mem.{info.name}")
        for info in pkgutil.walk_packages(mla_mem.__path__, onerror=lambda _: None)
        if not info.ispkg and info.name not in {"__main__"}
    ]
    modules += [importlib.import_module(f"mla_mem.runtimes.{n}") for n in ("rules", "vllm")]
    classes = {value for module in modules for value in vars(module).values()
               if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__.startswith("mla_mem.")}  # fmt: skip
    specials = [
        (typing, typing.ClassVar, dataclasses._is_classvar),
        (dataclasses, dataclasses.InitVar, dataclasses._is_initvar),
        (dataclasses, dataclasses.KW_ONLY, dataclasses._is_kw_only),
    ]
    checked = 0
    for cls in classes:
        for annotation in [*vars(cls).get("__annotations__", {}).values(), "ClassVar[int]", "typing.ClassVar[str]",
                           "dataclasses.InitVar[int]", "KW_ONLY"]:  # fmt: skip
            for module, special, predicate in specials:
                expected = dataclasses._is_type(annotation, cls, module, special, predicate)
                assert records._is_type(annotation, cls, module, special, predicate) == expected, (cls, annotation)
                checked += 1
    assert checked > 1000


def test_a_second_run_compiles_nothing(tmp_path):
    """Two runs of a table command with a fresh cache directory: the first writes one file per defining module, the
    second reads them and writes nothing."""
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "COLUMNS": "120"}
    environment.pop("MLA_MEM_NO_CACHE", None)
    command = [sys.executable, "-m", "mla_mem", "estimate", "deepseek-v3", "-c", "128K", "--format", "json"]
    first = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    files = sorted(Path(tmp_path, "mla-mem").glob("records-*/*.marshal"))
    assert {f.stem for f in files} >= {"mla_mem.spec", "mla_mem.cache", "mla_mem.units", "mla_mem.options"}
    stamps = [f.stat().st_mtime_ns for f in files]
    second = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    assert second.stdout == first.stdout
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert sorted(Path(tmp_path, "mla-mem").glob("records-*/*.marshal")) == files
