from __future__ import annotations

from fractions import Fraction

import pytest

import mla_mem
from mla_mem.errors import UsageError

MLA_MODELS = [
    "deepseek-v3",
    "deepseek-v3.2",
    "kimi-k2",
    "glm-5",
    "mistral-large-3",
    "deepseek-v2",
    "deepseek-v2-lite",
    "kimi-linear-48b-a3b",
]


def test_deepseek_v3_as_mha_by_hand():
    # 128 heads x (key 128 nope + 64 rope + value 128) x 2 B x 61 layers = 4,997,120 B/token
    mha = mla_mem.estimate(mla_mem.variant("deepseek-v3", "mha"), 1000)
    assert mha.bytes_per_token == 128 * (192 + 128) * 2 * 61 == 4_997_120


def test_gqa_and_mqa_variants_by_hand():
    gqa8 = mla_mem.estimate(mla_mem.variant("deepseek-v3", "gqa:8"), 1000)
    assert gqa8.bytes_per_token == 8 * (192 + 128) * 2 * 61
    mqa = mla_mem.estimate(mla_mem.variant("deepseek-v3", "mqa"), 1000)
    assert mqa.bytes_per_token == 1 * (192 + 128) * 2 * 61


def test_mla_variant_of_a_gqa_model():
    # Llama 3.1 8B as MLA rank 256: latent 256 + rope 64 (head_dim / 2), 32 layers, bf16
    mla = mla_mem.estimate(mla_mem.variant("llama-3.1-8b", "mla:256"), 1000)
    assert mla.bytes_per_token == (256 + 64) * 2 * 32


def test_mla_variant_of_an_mla_model_changes_the_rank():
    assert mla_mem.estimate(mla_mem.variant("deepseek-v3", "mla:256"), 1).bytes_per_token == (256 + 64) * 2 * 61


def test_equivalent_gqa_groups_paper_convention():
    # DeepSeek-V2 paper, Table 1: MLA's cache equals GQA with 2.25 groups
    assert mla_mem.equivalent_gqa_groups(mla_mem.load_model("deepseek-v2")) == Fraction(9, 4)
    assert mla_mem.equivalent_gqa_groups(mla_mem.load_model("deepseek-v3")) == Fraction(9, 4)
    assert mla_mem.equivalent_gqa_groups(mla_mem.load_model("glm-5")) == Fraction(576, 192 + 256)
    assert mla_mem.equivalent_gqa_groups(mla_mem.load_model("llama-3.1-8b")) is None


@pytest.mark.parametrize("name", MLA_MODELS)
def test_mla_is_smaller_than_its_mha_what_if(name):
    model = mla_mem.load_model(name)
    assert mla_mem.estimate(model, 4096).total_bytes < mla_mem.estimate(mla_mem.variant(model, "mha"), 4096).total_bytes


def test_variant_keeps_layer_pattern_and_linear_layers():
    model = mla_mem.variant("qwen3-next-80b-a3b", "mha")
    assert model.layer_kinds == mla_mem.load_model("qwen3-next-80b-a3b").layer_kinds
    assert model.attention.kv_heads == 16


@pytest.mark.parametrize("bad", ["gqa", "gqa:0", "gqa:7", "mla", "mha:4", "foo", "gqa:x", "gqa:256"])
def test_bad_variants(bad):
    with pytest.raises(UsageError):
        mla_mem.variant("deepseek-v3", bad)
