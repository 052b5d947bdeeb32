"""The module layout of docs/architecture.md, enforced: what each module may import at module level (lazy imports
inside functions are the way to reach further), no import cycle, no function over 80 lines, a thin cli.py, and no
kind named outside the spec, the importer, the lowering and the parameter counts."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mla_mem"
# module -> the mla_mem modules it may import at module level (docs/architecture.md, "Modules")
# records.py (the `record` decorator) is the one module every module may import, like `dataclasses`
EVERYWHERE = {"records"}
ALLOWED = {
    "records": set(),
    "errors": set(),
    "units": {"errors"},
    "yamlio": {"errors"},
    "spec": set(),
    "options": {"errors", "units"},
    "configs": {"errors", "spec", "units", "yamlio"},
    "families": {"errors"},
    "hf": {"configs", "errors", "families", "spec"},
    "models": {"configs", "errors", "spec", "yamlio"},
    "hub": {"errors", "spec"},
    "checkpoint": {"errors"},
    "ggufread": {"checkpoint", "errors", "spec"},
    "cache": {"errors", "units"},
    "runtimes": {"cache", "errors", "options", "spec", "units", "runtimes"},
    "variants": {"errors", "spec"},
    "params": {"errors", "spec"},
    "comparison": {"cache", "errors", "models", "options", "runtimes", "spec", "units", "variants"},
    "capacity": set(),
    "tiers": {"errors", "units"},
    "overhead": set(),
    "sglang_memory": {"options"},
    "hardware": {
        "cache",
        "capacity",
        "overhead",
        "configs",
        "errors",
        "options",
        "runtimes",
        "spec",
        "units",
        "yamlio",
    },
    "budgets": {"errors", "options", "units", "yamlio"},
    "plots": {"cache", "errors", "options", "spec", "units"},
    "render": {"units"},
    "textable": set(),
    "files": {"errors"},
    "cli": {"errors", "__init__"},
    "__init__": {"cache", "configs", "errors", "models", "options", "spec", "variants"},
    "__main__": {"entry"},
    "entry": set(),
}
KIND_CLASSES = ("MLA", "Attention", "Compressed", "GatedDeltaNet", "Mamba1", "Mamba2", "Lightning", "ShortConv")
KIND_AWARE = {"spec", "configs", "families", "hf", "runtimes", "params", "variants"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        out[relative.parts[0].removesuffix(".py") if len(relative.parts) == 1 else relative.parts[0]] = path
        if len(relative.parts) > 1:
            out[f"{relative.parts[0]}/{relative.stem}"] = path
    return out


def imported(path: Path) -> set[str]:
    """mla_mem modules imported at module level (not under TYPE_CHECKING, not inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    depth = len(path.relative_to(PACKAGE).parts) - 1
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = node.level - depth
            if base == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif base == 1:  # from . import x: a module, or a name of the package (__init__)
                found.update(a.name if (PACKAGE / f"{a.name}.py").exists() else "__init__" for a in node.names)
            elif base <= 0:
                found.add(path.relative_to(PACKAGE).parts[0])
    return found


def test_modules_import_only_what_the_layout_allows():
    for name, path in modules().items():
        top = name.split("/")[0]
        allowed = ALLOWED.get(top)
        assert allowed is not None, f"{name} is not in the layout table of docs/architecture.md"
        extra = imported(path) - allowed - EVERYWHERE - {top}
        assert not extra, f"{name} imports {sorted(extra)} at module level"


def test_no_import_cycle():
    graph = {name: {i for i in imported(path) if i in ALLOWED} for name, path in modules().items() if "/" not in name}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for child in graph.get(node, ()) - {node}:
            assert state.get(child) != 1, "import cycle: " + " -> ".join(trail + [child])
            if child not in state:
                visit(child, trail + [child])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_functions_are_short_and_the_cli_is_thin():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                assert length <= 80, f"{path.name}:{node.lineno} {node.name} is {length} lines"
    assert len((PACKAGE / "cli.py").read_text().splitlines()) < 800


def test_kinds_are_named_only_where_they_are_described_and_lowered():
    for name, path in modules().items():
        if name.split("/")[0] in KIND_AWARE:
            continue
        names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
        names |= {
            a.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) for a in n.names
        }
        assert not names & set(KIND_CLASSES), f"{name} names a layer kind: {sorted(names & set(KIND_CLASSES))}"


def test_no_untyped_option_bags_in_public_signatures():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "**options: Any" not in text and "**kwargs: Any) -> FitResult" not in text, path.name


def test_no_submodule_shadows_a_public_name():
    """Importing a submodule sets it as an attribute of the package: a module named like a public function (the old
    compare.py) replaced mla_mem.compare with the module once anything imported it."""
    import importlib

    import mla_mem

    for name in modules():
        if not name.startswith("__"):  # __main__ would run the command line
            importlib.import_module("mla_mem." + name.replace("/", "."))

    for name in mla_mem.__all__:
        assert not isinstance(getattr(mla_mem, name), type(mla_mem)), name
