"""Refuse, never guess: real configs whose layer schedule is decided by a key, with that key removed, renamed or set
to a value nobody defined, under their own model_type or an unknown one. mla-mem gives the same bytes as the
config read as its family reads it, or refuses naming a key; never a third number."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mla_mem
from mla_mem.configs import parse_model
from mla_mem.errors import ConfigError
from mla_mem.families import is_schedule_item
from mla_mem.hf import convert

WILD = Path(__file__).parent / "data" / "wild"
SCHEDULED = [
    "nvidia-nemotron-3-nano-30b-a3b-bf16.config.json",  # hybrid_override_pattern
    "qwen3.5-27b.config.json",  # layer_types + full_attention_interval (text_config)
    "gemma-2-2b-it-poem.config.json",  # sliding_window without layer_types
    "minimax-m1.config.json",  # attn_type_list
    "mimo-v2-flash.config.json",  # hybrid_layer_pattern, swa_* dims
    "llama-4-scout-17b-16e-instruct.config.json",  # attention_chunk_size (text_config)
    "lfm2-1.2b.config.json",  # full_attn_idxs, conv_L_cache
    "llama-3_3-nemotron-super-49b-v1.config.json",  # block_configs
    "cogito-v1-preview-qwen-14b.config.json",  # use_sliding_window false, max_window_layers
    "gemma-4-26b-a4b.config.json",  # global_head_dim, num_global_key_value_heads (text_config)
    "phi-mini-moe-instruct.config.json",  # sliding_window on every layer
    "step-3.7-flash.config.json",  # layer_types
]
EXAMPLES = int(os.environ.get("MLA_MEM_PROPERTY_EXAMPLES", "0")) or 200


def language_part(data: dict) -> dict:
    return data["text_config"] if isinstance(data.get("text_config"), dict) else data


def reading(data: dict) -> tuple[object, object] | ConfigError:
    """(bytes per token, fixed bytes) of the config as mla-mem reads it, or the ConfigError it refuses with."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, _ = convert(data, "config.json", "x")
            spec = parse_model(model, "config.json")
    except ConfigError as exc:
        return exc
    result = mla_mem.estimate(spec, 1)
    return result.bytes_per_token, result.fixed_bytes


@pytest.mark.parametrize("name", SCHEDULED)
def test_each_config_reads_under_its_family(name):
    assert not isinstance(reading(json.loads((WILD / name).read_text())), ConfigError)


@st.composite
def mutations(draw):
    name = draw(st.sampled_from(SCHEDULED))
    data = json.loads((WILD / name).read_text())
    inner = language_part(data)
    keys = sorted(k for k, v in inner.items() if is_schedule_item(k, v))
    key = draw(st.sampled_from(keys))
    # (a key removed from a known family's config reads as that family's default, which is the config's meaning)
    how = draw(
        st.sampled_from(
            [
                "rename",
                "unknown value",
                "unknown family",
                "unknown family and remove",
                "unknown family and rename",
                "unknown model_type",
            ]
        )
    )
    return name, key, how


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_a_schedule_key_is_understood_or_named(case):
    name, key, how = case
    original = json.loads((WILD / name).read_text())
    expected = reading(original)
    data = json.loads((WILD / name).read_text())
    inner = language_part(data)
    named = {key}
    if "unknown" in how and how != "unknown value":
        for part in (data, inner):
            part["model_type"] = "brand_new_family"
            if "family" in how and "architectures" in part:
                part["architectures"] = ["BrandNewForCausalLM"]
    if how == "unknown family and remove":
        del inner[key]
    elif how in ("rename", "unknown family and rename"):
        inner[f"{key}_v2"] = inner.pop(key)
        named.add(f"{key}_v2")
    elif how == "unknown value":
        inner[key] = "banana" if not isinstance(inner[key], str) else "~unknown~"
    got = reading(data)
    if how == "unknown model_type":  # the architectures name the family: read exactly as that family
        assert got == expected, (how, got, expected)
        return
    if isinstance(got, ConfigError):
        leaf = got.key.split(".")[-1].split("[")[0]
        present = {k for k, v in inner.items() if is_schedule_item(k, v)} | named
        assert leaf in present or got.key.endswith("model_type"), (how, key, str(got))
        return
    if how == "unknown family and remove" and not any(is_schedule_item(k, v) for k, v in inner.items()):
        # nothing left says that the layers differ: the file now describes a uniform model of an unknown family,
        # and reading it as one is the only reading there is (a config's keys are all a reader has)
        return
    assert got == expected, (how, key, got, expected)
