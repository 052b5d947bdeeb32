"""`@record` (mla_mem/records.py): the same classes as `@dataclass(frozen=True)`, method for method, whether the
generated code comes from the cache directory or is compiled; a damaged cache is compiled over, never an error."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
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
    monkeypatch.setattr(records, "_USED", {})
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
    """The same generated code, method for method (the general path: dataclasses itself, its code from the cache)."""
    for name in METHODS:
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a.__code__ == b.__code__, name  # same bytecode, constants, names, line table
        assert a.__defaults__ == b.__defaults__ and a.__kwdefaults__ == b.__kwdefaults__, name
        assert a.__annotations__ == b.__annotations__, name
    assert_same_behaviour(ours, theirs)


def assert_same_definition(ours, theirs):
    """What dataclasses and its users see of a class: the fields with every attribute, the parameters, the class
    attributes a default leaves, the methods' names, signatures, defaults and annotations, match args and doc."""
    mine, its = vars(ours)["__dataclass_fields__"], vars(theirs)["__dataclass_fields__"]
    assert list(mine) == list(its)
    for name in its:
        for attribute in dataclasses.Field.__slots__:
            assert getattr(mine[name], attribute) == getattr(its[name], attribute), (name, attribute)
        assert getattr(ours, name, "absent") == getattr(theirs, name, "absent"), name  # defaults as class attributes
    assert repr(ours.__dataclass_params__) == repr(theirs.__dataclass_params__)
    assert ours.__match_args__ == theirs.__match_args__ and ours.__doc__ == theirs.__doc__
    assert str(inspect.signature(ours)) == str(inspect.signature(theirs))
    assert set(vars(theirs)) - {"__slotnames__"} <= set(vars(ours))  # (copy.copy caches that one on a class)
    for name in METHODS + ("__replace__",):
        a, b = vars(ours).get(name), vars(theirs).get(name)
        assert (a is None) == (b is None), name
        if a is None:
            continue
        assert (a.__name__, a.__qualname__, a.__module__) == (b.__name__, b.__qualname__, b.__module__), name
        assert a.__defaults__ == b.__defaults__ and a.__kwdefaults__ == b.__kwdefaults__, name
        assert getattr(a, "__annotations__", None) == getattr(b, "__annotations__", None), name
        assert hasattr(a, "__wrapped__") == hasattr(b, "__wrapped__"), name  # __repr__'s recursion guard


def assert_same_behaviour(ours, theirs):
    assert_same_definition(ours, theirs)
    p, q = ours(1, tags=("a",)), theirs(1, tags=("a",))
    assert repr(p) == repr(q) and hash(p) == hash(q) and p == ours(1, 2, ("a",)) and p != q
    assert p.__eq__(q) is NotImplemented and ours(1).tags == () and ours(1).y == 2
    assert vars(p) == vars(q) and vars(ours(5)) == vars(theirs(5))
    assert dataclasses.replace(p, y=5).y == 5 and dataclasses.asdict(p) == dataclasses.asdict(q)
    assert copy.deepcopy(p) == p and copy.copy(q) == q  # (pickling: the built-ins' disk cache, test_configs.py)
    for instance in (p, q):
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
            instance.x = 3  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'other'"):
            instance.other = 3  # type: ignore[attr-defined]
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'y'"):
            del instance.y  # type: ignore[misc]
    with pytest.raises(ValueError, match="x"):
        ours(-1)
    with pytest.raises(TypeError) as mine:
        ours()
    with pytest.raises(TypeError) as its:
        theirs()
    assert str(mine.value) == str(its.value)  # "...Point.__init__() missing 1 required positional argument: 'x'"


def test_a_record_is_a_frozen_dataclass_compiled_or_cached(cache, monkeypatch):
    monkeypatch.setattr(records, "_DIRECT", False)  # the general path: dataclasses, its code from the cache
    plain = define(dataclasses.dataclass(frozen=True))
    cold = define(records.record)  # compiles, keeps the code for the exit
    assert_same_class(cold, plain)
    assert records._ADDED == {__name__} and not cache.exists()
    records._save()  # what the exit does
    assert (cache / f"{__name__}.marshal").is_file()
    records._CODE.clear()  # a new process
    records._USED.clear()
    warm = define(records.record)
    assert_same_class(warm, plain)
    assert not records._ADDED  # nothing compiled: every method came from the file
    assert "exec" not in vars(dataclasses)  # the dataclasses module is left as it was


def test_the_direct_path_makes_the_dataclass_compiled_or_cached(cache):
    plain = define(dataclasses.dataclass(frozen=True))
    cold = define(records.record)
    assert cold in records._BUILT and plain not in records._BUILT  # built without dataclasses' general path
    assert_same_behaviour(cold, plain)
    assert records._ADDED == {__name__}
    records._save()
    records._CODE.clear()  # a new process
    records._USED.clear()
    warm = define(records.record)
    assert_same_behaviour(warm, plain)
    assert not records._ADDED  # its one function came from the file
    assert "exec" not in vars(dataclasses)


@pytest.mark.parametrize("content", [b"", b"\x00garbage", b"\xe3" + b"\x00" * 40])
def test_a_damaged_cache_is_compiled_over(cache, content):
    cache.mkdir(parents=True)
    (cache / f"{__name__}.marshal").write_bytes(content)
    assert_same_behaviour(define(records.record), define(dataclasses.dataclass(frozen=True)))
    assert records._ADDED == {__name__}  # compiled
    records._save()  # and the file rewritten whole
    records._CODE.clear()
    records._USED.clear()
    define(records.record)
    assert not records._ADDED


def test_code_no_class_asks_for_any_more_is_dropped(cache):
    import marshal

    define(records.record)
    stale = records._code(__name__, records._load(__name__), "x = 1\n")  # as if a class had since changed
    records._USED[__name__].discard("x = 1\n")
    assert stale is not None
    records._save()
    kept = marshal.loads((cache / f"{__name__}.marshal").read_bytes())
    assert "x = 1\n" not in kept and len(kept) == 1  # the one function of Point's shape


def test_a_file_of_other_objects_is_not_trusted(cache):
    import marshal

    cache.mkdir(parents=True)
    (cache / f"{__name__}.marshal").write_bytes(marshal.dumps({"def __create_fn__": 3, 4: compile("1", "", "eval")}))
    assert_same_behaviour(define(records.record), define(dataclasses.dataclass(frozen=True)))


def test_the_cache_is_off_with_mla_mem_no_cache(cache, monkeypatch):
    monkeypatch.setenv("MLA_MEM_NO_CACHE", "1")
    assert_same_behaviour(define(records.record), define(dataclasses.dataclass(frozen=True)))
    records._save()
    assert not cache.exists()


def twin(cls, decorator=None, post_init=True):
    """The class a plain @dataclass (or `decorator`) makes of the same fields (and __post_init__)."""
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    annotations = {}
    for f in dataclasses.fields(cls):
        annotations[f.name] = f.type
        namespace[f.name] = dataclasses.field(
            default=f.default, default_factory=f.default_factory, init=f.init, repr=f.repr, hash=f.hash,
            compare=f.compare, metadata=f.metadata, kw_only=f.kw_only,
        )  # fmt: skip
    namespace["__annotations__"] = annotations
    if post_init and "__post_init__" in vars(cls):
        namespace["__post_init__"] = vars(cls)["__post_init__"]
    params = cls.__dataclass_params__
    decorator = decorator or dataclasses.dataclass(frozen=params.frozen, slots="__slots__" in vars(cls))
    return decorator(type(cls.__name__, (), namespace))


def package_records():
    modules = [
        importlib.import_module(f"mla_mem.{info.name}")
        for info in pkgutil.walk_packages(mla_mem.__path__, onerror=lambda _: None)
        if not info.ispkg and info.name not in {"__main__"}
    ]
    modules += [importlib.import_module(f"mla_mem.runtimes.{n}") for n in ("rules", "vllm")]
    return {
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__.startswith("mla_mem.")
    }


def test_every_record_of_the_package_equals_its_dataclass():
    """Every class mla-mem defines with @record against a plain @dataclass of the same fields. Those dataclasses
    built (slots, mutable): the same code, method for method. Those built directly: the same definition, and the
    same behaviour on instances of stand-in values, through __init__ too (without __post_init__, whose checks the
    stand-ins would not pass)."""
    classes = package_records()
    assert len(classes) >= 50
    direct = [cls for cls in classes if cls in records._BUILT]
    assert len(direct) >= 45  # every frozen record without slots
    for cls in classes:
        other = twin(cls)
        if cls in direct:
            assert_same_definition(cls, other)
            assert_same_instances(cls, other)
            assert_same_instances(twin(cls, records.record, post_init=False), twin(cls, post_init=False), init=True)
            continue
        for name in METHODS:
            ours, theirs = vars(cls).get(name), vars(other).get(name)
            assert (ours is None) == (theirs is None), (cls, name)
            if ours is not None and ours.__code__.co_filename == "<string>":
                assert ours.__code__ == theirs.__code__, (cls, name)
                assert ours.__defaults__ == theirs.__defaults__, (cls, name)


def assert_same_instances(ours, theirs, init=False):
    """Instances of stand-in values (made by __init__, or set field by field): equal representations, equality,
    hashes, and the same refusals to change them."""
    names = [f.name for f in dataclasses.fields(theirs)]
    values = [type(f"Value{i}", (), {"__repr__": lambda self, i=i: f"<{i}>"})() for i in range(len(names))]
    if init:
        made = [ours(*values), theirs(*values)]
        assert ours in records._BUILT  # (the record twin took the direct path)
        missing = dataclasses.MISSING
        required = sum(f.default is missing and f.default_factory is missing for f in dataclasses.fields(theirs))
        assert vars(ours(*values[:required])) == vars(theirs(*values[:required]))  # defaults and factories
    else:
        made = [object.__new__(ours), object.__new__(theirs)]
        for instance in made:
            for name, value in zip(names, values, strict=True):
                object.__setattr__(instance, name, value)
    a, b = made
    assert vars(a) == vars(b) and list(vars(a)) == names
    assert repr(a) == repr(b) and hash(a) == hash(b)
    assert a == copy.copy(a) and b == copy.copy(b) and a.__eq__(b) is NotImplemented
    for instance in made:
        for name in [*names[:1], "not_a_field"]:
            with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot assign to field '{name}'"):
                setattr(instance, name, 1)
            with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot delete field '{name}'"):
                delattr(instance, name)


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


@pytest.mark.parametrize(
    "body",
    [
        "x: int\n    y: list = dataclasses.field(default_factory=list, repr=False)",  # a field option: general path
        "x: int\n    def __eq__(self, other): return True",  # its own method
        "x: int = 1\n    y: int",  # a field without a default after one with: TypeError
        "x: list = []",  # a mutable default: ValueError
        "x: int\n    z = dataclasses.field(default=1)",  # a field without an annotation: TypeError
        "x: 'ClassVar[int]' = 1\n    y: int = 2",  # not a field at all
    ],
)
def test_what_the_direct_path_declines_dataclasses_decides(cache, body):
    """A class the direct path does not handle becomes what @dataclass(frozen=True) makes of it, or raises what it
    raises."""
    source = f'class Thing:\n    """A thing."""\n    {body}\n'
    made = []
    for decorator in (records.record, dataclasses.dataclass(frozen=True)):
        namespace = {"dataclasses": dataclasses, "ClassVar": __import__("typing").ClassVar, "__name__": __name__}
        exec(source, namespace)  # noqa: S102
        try:
            made.append(decorator(namespace["Thing"]))
        except (TypeError, ValueError) as exc:
            made.append(f"{type(exc).__name__}: {exc}")
    ours, theirs = made
    if isinstance(theirs, str):
        assert ours == theirs
        return
    assert ours not in records._BUILT
    assert_same_definition(ours, theirs)


def test_a_base_class_or_no_docstring_takes_the_general_path(cache):
    @records.record
    class Base:
        """A base."""

        x: int

    @records.record
    class Derived(Base):
        """Derived."""

        y: int = 2

    @records.record
    class Bare:
        x: int

    assert Base in records._BUILT and Derived not in records._BUILT and Bare not in records._BUILT
    assert Derived(1).y == 2 and Bare.__doc__.startswith("Bare(x: ")  # dataclasses writes the signature as the doc


def test_code_of_a_shape_is_keyed_by_the_generator_that_wrote_it(cache, monkeypatch):
    """A cached function of the direct path is used only while records.py is the file that wrote it: an edited or
    reinstalled records.py (another modification time or size) writes its code anew."""
    define(records.record)
    assert any(key.startswith(f"record {records._stamp()}: x y= tags()") for key in records._CODE[__name__])
    records._save()
    records._CODE.clear()
    records._USED.clear()
    monkeypatch.setattr(records, "_STAMP", ["another-records.py"])
    define(records.record)
    assert records._ADDED == {__name__}  # compiled again, not taken from the file
