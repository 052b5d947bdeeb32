"""Real config.json files of models mla-mem does not ship (tests/data/wild, sources in its README): the bytes per
token and constant bytes per sequence derived by hand from each file's keys (expected.yaml) equal what mla-mem
reads, or the file is refused with the reason named."""

from __future__ import annotations

import ast
import operator
import warnings
from pathlib import Path

import pytest
import yaml

import mla_mem
from mla_mem.errors import ConfigError

WILD = Path(__file__).parent / "data" / "wild"
EXPECTED = yaml.safe_load((WILD / "expected.yaml").read_text())
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}


def arithmetic(text: str) -> int:
    """An expression of integers, + - * // and parentheses (the hand derivations of expected.yaml)."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](value(node.left), value(node.right))
        raise ValueError(f"not plain arithmetic: {ast.dump(node)}")

    return value(ast.parse(str(text), mode="eval"))


def test_the_corpus_is_large_and_sourced():
    files = sorted(p.name for p in WILD.glob("*.json"))
    readme = (WILD / "README.md").read_text()
    assert len(files) >= 40
    assert set(files) == set(EXPECTED)  # every file has a hand derivation
    assert all(name in readme for name in files)  # and a source
    families = {entry["family"] for entry in EXPECTED.values()}
    assert len(families) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hand_derived_bytes(name):
    entry = EXPECTED[name]
    path = str(WILD / name)
    if "refuse" in entry:
        with pytest.raises(ConfigError) as raised:
            mla_mem.load_model(path)
        reason = entry["refuse"].split()[0]
        assert reason.split("-")[0] in str(raised.value).lower(), str(raised.value)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mla_mem.load_model(path)
    result = mla_mem.estimate(model, 1)
    assert result.bytes_per_token == arithmetic(entry["bytes_per_token"]), entry["layers"]
    assert result.fixed_bytes == arithmetic(entry["fixed_bytes"]), entry["layers"]
    assert model.max_context == entry["max_context"]
