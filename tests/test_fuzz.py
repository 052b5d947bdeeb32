"""Fuzzing the loaders with near-valid documents (hypothesis). The only outcomes allowed: a valid result, or
mla-mem's own error type. CI runs a fixed, bounded number of examples; for a long local run:

    MLA_MEM_FUZZ_EXAMPLES=20000 uv run pytest tests/test_fuzz.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mla_mem
from mla_mem.budgets import BadEntry, check, evaluate, load_budgets
from mla_mem.configs import load_model_file, parse_model
from mla_mem.errors import MlaMemError
from mla_mem.hf import convert

EXAMPLES = int(os.environ.get("MLA_MEM_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "configs").glob("*.yaml")) if p.name != "gpus.yaml"]
HF_SEEDS = [json.loads(p.read_text()) for p in sorted((ROOT / "tests" / "data" / "hf").glob("*.json"))]

weird_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.lists(st.integers(-5, 300), max_size=6),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["full", "sliding", "linear", "mla", "gqa", "bf16", "128K", "1e3", "-1", "0", "csa"]),
)


def mutate(document, data):
    """Replace, delete or add one key somewhere in a nested document."""
    if not isinstance(document, dict) or not document:
        return document
    doc = dict(document)
    key = data.draw(st.sampled_from(sorted(doc)))
    action = data.draw(st.sampled_from(["replace", "delete", "add", "recurse"]))
    if action == "replace":
        doc[key] = data.draw(weird_values)
    elif action == "delete":
        del doc[key]
    elif action == "add":
        doc[data.draw(st.text(min_size=1, max_size=12))] = data.draw(weird_values)
    elif isinstance(doc[key], dict):
        doc[key] = mutate(doc[key], data)
    elif isinstance(doc[key], list) and doc[key]:
        items = list(doc[key])
        index = data.draw(st.integers(0, len(items) - 1))
        items[index] = mutate(items[index], data) if isinstance(items[index], dict) else data.draw(weird_values)
        doc[key] = items
    return doc


@FUZZ
@given(st.sampled_from(SEEDS), st.data(), st.integers(1, 3))
def test_model_documents(seed, data, rounds):
    document = seed
    for _ in range(rounds):
        document = mutate(document, data)
    try:
        spec = parse_model(document, "fuzz.yaml")
    except MlaMemError:
        return
    for runtime in ("ideal", "vllm", "transformers", "llama.cpp"):
        try:
            mla_mem.estimate(spec, 4096, 2, runtime=runtime)
        except MlaMemError:
            pass


@FUZZ
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_model_text_through_the_yaml_loader(tmp_path_factory, seed, data):
    text = yaml.safe_dump(mutate(seed, data), sort_keys=False)
    cut = data.draw(st.integers(0, len(text)))
    noise = data.draw(st.sampled_from(["", "\t", ": :", "&a", "*a", "!!python/object:os.system", "{", "\x00", "- "]))
    path = tmp_path_factory.mktemp("fuzz") / "model.yaml"
    path.write_text(text[:cut] + noise + text[cut:])
    try:
        load_model_file(path)
    except MlaMemError:
        pass


@FUZZ
@given(st.sampled_from(HF_SEEDS), st.data(), st.integers(1, 3))
def test_hf_configs(seed, data, rounds):
    document = seed
    for _ in range(rounds):
        document = mutate(document, data)
    try:
        model, _ = convert(document, "fuzz/config.json", "fuzz")
        parse_model(model, "fuzz/config.json")
    except MlaMemError:
        pass


BUDGET_SEED = {
    "defaults": {"runtime": "vllm"},
    "budgets": [
        {
            "name": "a",
            "model": "deepseek-v3",
            "context": "8K",
            "batch": 2,
            "tp": 2,
            "max_cache_per_gpu": "10GiB",
        },
        {"name": "b", "model": "llama-3.1-8b", "gpu": "H100", "context": "4K", "min_concurrency": 4},
    ],
}


@FUZZ
@given(data=st.data(), rounds=st.integers(1, 3))
def test_budget_documents(tmp_path_factory, data, rounds):
    document = BUDGET_SEED
    for _ in range(rounds):
        document = mutate(document, data)
    path = tmp_path_factory.mktemp("fuzz") / "budgets.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        _, budgets = load_budgets(str(path))
        for budget in budgets:
            if not isinstance(budget, BadEntry):
                evaluate(budget)
    except MlaMemError:
        pass
    # the whole check never raises: every problem is an ERROR verdict
    assert all(v.status in ("PASS", "FAIL", "ERROR") for v in check([str(path)]))
