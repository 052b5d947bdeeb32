"""Parameter counts and weight memory."""

from __future__ import annotations

import pytest

import mla_mem
import mla_mem.params
from mla_mem.params import count_params, weight_bytes

# (published total, published active) from the model cards (MODELS.md); totals within 1%, active within 3%
PUBLISHED = {
    "deepseek-v3": (671e9, 37e9),
    "glm-5": (744e9, None),
    "mistral-large-3": (673e9, None),  # language model
    "llama-3.1-8b": (8.03e9, None),
    "llama-3.1-70b": (70.6e9, None),
    "llama-3.1-405b": (405e9, None),
    "qwen3-235b-a22b": (235e9, 22e9),
    "gpt-oss-120b": (117e9, None),
    "minimax-m2": (230e9, None),
    "deepseek-v2": (236e9, 21e9),
    "qwen3.5-397b-a17b": (397e9, 17e9),
    "glm-5.2": (743e9, None),
    "gemma-4-31b": (31e9, None),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_match_published_totals(name):
    total, active = PUBLISHED[name]
    counted = count_params(mla_mem.load_model(name))
    assert counted.total == pytest.approx(total, rel=0.01)
    if active:
        assert counted.active == pytest.approx(active, rel=0.03)


def test_deepseek_v3_with_mtp_is_about_685b():
    counted = count_params(mla_mem.load_model("deepseek-v3"))
    assert counted.total_with_mtp == pytest.approx(685e9, rel=0.01)


def test_kimi_k2_against_its_rounded_one_trillion():
    # The model card says "1T"; the structure gives 1.026T (routed experts alone: 60 x 384 x 3 x 7168 x 2048).
    counted = count_params(mla_mem.load_model("kimi-k2"))
    assert 60 * 384 * 3 * 7168 * 2048 == 1_014_686_023_680
    assert counted.total == pytest.approx(1e12, rel=0.03)
    assert counted.active == pytest.approx(32e9, rel=0.03)


def test_llama_8b_term_by_term():
    h, vocab, inter, layers, kv = 4096, 128256, 14336, 32, 8 * 128
    embed_and_head = 2 * vocab * h
    attention = h * h + 2 * h * kv + h * h  # q, k, v, o
    mlp = 3 * h * inter  # gate, up, down
    norms = 2 * h
    expected = embed_and_head + layers * (attention + mlp + norms) + h
    assert count_params(mla_mem.load_model("llama-3.1-8b")).total == expected == 8_030_261_248


def test_weight_formats():
    model = mla_mem.load_model("llama-3.1-8b")
    params = count_params(model).total
    assert weight_bytes(model, "bf16").total == 2 * params
    fp8 = weight_bytes(model, "fp8").total
    assert params < fp8 < 1.2 * params  # linear weights at 1 B + block scales; embeddings stay bf16
    int4 = weight_bytes(model, "int4").total
    assert int4 < fp8


def test_gpt_oss_checkpoint_mix():
    model = mla_mem.load_model("gpt-oss-120b")
    mixed = weight_bytes(model)  # the YAML says: experts in MXFP4, the rest bf16
    assert mixed.dtype == "mxfp4-experts"
    expert_params = count_params(model).expert
    # MXFP4: 4 bits per value + 1 scale byte per 32 values
    assert mixed.expert == expert_params // 2 + expert_params // 32
    assert mixed.dense == 2 * (count_params(model).total - expert_params)
    assert 60 * 2**30 < mixed.total < 62 * 2**30  # about 61 GiB, as the released checkpoint


def test_deepseek_fp8_block_scales():
    model = mla_mem.load_model("deepseek-v3")
    fp8 = weight_bytes(model)
    assert fp8.dtype == "fp8"
    # one expert matrix 6144 x 7168: 48 x 56 blocks of 128 x 128, one fp32 scale each
    assert 6144 * 7168 + 4 * 48 * 56 == 44_050_944
    assert fp8.total == pytest.approx(671e9, rel=0.01)


@pytest.mark.parametrize("name,total", [("qwen3-next-80b-a3b", 80e9), ("kimi-linear-48b-a3b", 48e9)])
def test_linear_attention_hybrids_count_their_linear_layers(name, total):
    # the cards round to 80B and 48B; both counts must land within 3% and include the linear layers' weights
    counted = count_params(mla_mem.load_model(name))
    assert counted.total == pytest.approx(total, rel=0.03)
    linear_only = sum(
        t.params
        for t in mla_mem.params.tensors(mla_mem.load_model(name))
        if "proj" in t.name and ("qkvz" in t.name or "q_k_v" in t.name)
    )
    assert linear_only > 0


def test_deepseek_v4_weights_counted_tensor_by_tensor():
    # transformers 5.24 builds DeepseekV4ForCausalLM (meta device, the real configs) with 284,332,230,231 and
    # 1,572,997,179,491 parameters; mla-mem's tensor list for the same dims gives exactly these
    flash, pro = mla_mem.load_model("deepseek-v4-flash"), mla_mem.load_model("deepseek-v4-pro")
    assert count_params(flash).total == 284_332_230_231
    assert count_params(pro).total == 1_572_997_179_491
    experts = 43 * 256 * 3 * 4096 * 2048  # layers x experts x (gate, up, down) x hidden x expert width
    assert count_params(flash).expert == experts == 277_025_390_592
    weights = weight_bytes(flash)
    assert weights.dtype == "fp8+mxfp4-experts"
    assert weights.expert == experts // 2 + experts // 32  # e2m1 pairs + one e8m0 scale per 32 values
    # fit on 8 x B200 with data-parallel attention and expert parallelism: dense weights whole, experts / 8
    result = mla_mem.fit("deepseek-v4-flash", "B200", gpus=8, tp=1, dp=8, ep=True, context=1 << 20)
    assert result.weight_bytes == weights.dense + -(-weights.expert // 8)
    assert result.fits


def test_layers_of_one_kind_are_listed_once_with_the_same_totals():
    # tensors() lists each (kind, dense or MoE) group of layers once, copies times its layers; listing every layer
    # on its own (as _layer does for one index) must give the same count and the same bytes in every format
    from mla_mem.configs import builtin_models
    from mla_mem.params import _layer, _ranges, _tensor_bytes

    assert _ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert _ranges([4]) == "4"
    checked = 0
    for model in builtin_models():
        if model.weights is None:
            continue
        try:  # a kind whose weights are not modelled is refused, for the grouped list as for one layer
            grouped = mla_mem.params.tensors(model, mtp=False)
        except mla_mem.MlaMemError:
            continue
        h = model.weights.hidden_size
        single = [t for t in grouped if not t.name.startswith("layers.")]
        for index in range(model.layers):
            single += _layer(model, index, model.kind_of(index), h)
        assert len(single) > len(grouped)  # every model here has a repeated layer
        assert sum(t.params for t in single) == sum(t.params for t in grouped), model.name
        for fmt in ("bf16", "fp8", "int4", "mxfp4", "fp8+mxfp4-experts"):
            assert sum(_tensor_bytes(t, fmt) for t in single) == sum(_tensor_bytes(t, fmt) for t in grouped)
        checked += 1
    assert checked >= 20
