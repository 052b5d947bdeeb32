"""The calculator against numbers derived by hand from the dims in ../shared/reference/MODELS.md.

Every expected value below is written from the published architecture (layers, heads, ranks), not copied
from mla-mem's output: the formulas are the DeepSeek-V2 paper's (arXiv 2405.04434, Table 1).
"""

from __future__ import annotations

import pytest

import mla_mem

BF16 = 2
K128 = 131072


def mla_bpt(layers: int, rank: int = 512, rope: int = 64, width: int = BF16) -> int:
    return layers * (rank + rope) * width


def gqa_bpt(layers: int, kv_heads: int, head_dim: int, width: int = BF16) -> int:
    return layers * 2 * kv_heads * head_dim * width


# model -> (bytes per token of the layers that grow with context, from MODELS.md dims)
GROWING = {
    "deepseek-v3": mla_bpt(61),
    "deepseek-v3.2": mla_bpt(61) + 61 * 128 * BF16,  # + indexer keys, index_head_dim 128
    "kimi-k2": mla_bpt(61),
    "glm-5": mla_bpt(78) + 78 * 128 * BF16,
    "mistral-large-3": mla_bpt(61),
    "deepseek-v2": mla_bpt(60),
    "deepseek-v2-lite": mla_bpt(27),
    "kimi-linear-48b-a3b": mla_bpt(7),
    "llama-3.1-8b": gqa_bpt(32, 8, 128),
    "llama-3.1-70b": gqa_bpt(80, 8, 128),
    "llama-3.1-405b": gqa_bpt(126, 8, 128),
    "qwen3-32b": gqa_bpt(64, 8, 128),
    "qwen3-235b-a22b": gqa_bpt(94, 4, 128),
    "qwen3-next-80b-a3b": gqa_bpt(12, 2, 256),
    "gpt-oss-120b": gqa_bpt(18, 8, 64),
    "gpt-oss-20b": gqa_bpt(12, 8, 64),
    "gemma-3-27b": gqa_bpt(10, 16, 128),
    "minimax-m2": gqa_bpt(62, 8, 128),
    "glm-4.6": gqa_bpt(92, 8, 128),
    "mistral-7b-v0.1": 0,  # every layer is windowed: nothing grows past 4096 tokens
    "mistral-7b-v0.3": gqa_bpt(32, 8, 128),
    "mistral-small-3.1-24b": gqa_bpt(40, 8, 128),
    # DeepSeek-V4, ideal runtime in bf16: a 512-wide entry per 4 (csa) or 128 (hca) tokens, indexer keys of 128
    # per 4 tokens on csa layers (MODELS.md: Pro 30 csa + 31 hca, Flash 21 csa + 20 hca + 2 window-only)
    "deepseek-v4-pro": 30 * 512 * BF16 // 4 + 30 * 128 * BF16 // 4 + 31 * 512 * BF16 // 128,
    "deepseek-v4-flash": 21 * 512 * BF16 // 4 + 21 * 128 * BF16 // 4 + 20 * 512 * BF16 // 128,
    # kv sources 2, 8, 14 of ratio 2 and 20 of ratio 1 own the compressed entries and index keys; the other layers
    # read them (vLLM 0.33 models/deepseek_v41/attention.py)
    "deepseek-v4.1-flash": 3 * (512 + 128) * BF16 // 2 + (512 + 128) * BF16,
    # Built-ins from real config.json files (tests/data/wild has each file):
    "qwen3.5-397b-a17b": gqa_bpt(15, 2, 256),  # 15 of 60 layers full attention
    "gemma-4-31b": 10 * 4 * 512 * BF16,  # 10 global layers, 4 KV heads x 512, the key is also the value
    "llama-4-maverick": gqa_bpt(12, 8, 128),  # every 4th of 48 layers global
    "nemotron-3-super": gqa_bpt(8, 2, 128),  # 8 '*' in hybrid_override_pattern
    "jamba-v0.1": gqa_bpt(4, 8, 128),  # layers 4, 12, 20, 28
    "minimax-m1": gqa_bpt(10, 8, 128),  # every 8th of 80 layers softmax attention
    "longcat-flash": mla_bpt(56),  # 28 layers x 2 MLA blocks
    "mimo-v2-flash": 9 * 4 * (192 + 128) * BF16,  # 9 global layers, K 192 + V 128 wide
    "glm-4.7": gqa_bpt(92, 8, 128),
    "glm-5.2": mla_bpt(78) + 21 * 128 * BF16,  # indexer keys only on the 21 layers that run the indexer
    "kimi-k3": mla_bpt(24),
}

# Per-sequence constants: full windows and linear states (ideal runtime: state in bf16, kernel - 1 columns).
GDN_STATE = ((4 - 1) * (2 * 16 * 128 + 32 * 128) + 32 * 128 * 128) * BF16
KDA_STATE = ((4 - 1) * (3 * 32 * 128) + 32 * 128 * 128) * BF16
FIXED = {
    "gpt-oss-120b": 18 * 128 * 2 * 8 * 64 * BF16,
    "gpt-oss-20b": 12 * 128 * 2 * 8 * 64 * BF16,
    "gemma-3-27b": 52 * 1024 * 2 * 16 * 128 * BF16,
    "mistral-7b-v0.1": 32 * 4096 * 2 * 8 * 128 * BF16,
    "qwen3-next-80b-a3b": 36 * GDN_STATE,
    "kimi-linear-48b-a3b": 20 * KDA_STATE,
    "deepseek-v4-pro": 61 * 128 * 512 * BF16,  # every layer's 128-token window
    "deepseek-v4-flash": 43 * 128 * 512 * BF16,
    "deepseek-v4.1-flash": 40 * 128 * 512 * BF16,  # every trunk layer's window; the 3 DSpark layers only with mtp
    "qwen3.5-397b-a17b": 45 * ((4 - 1) * (2 * 16 * 128 + 64 * 128) + 64 * 128 * 128) * BF16,
    "gemma-4-31b": 50 * 1024 * 2 * 16 * 256 * BF16,
    "llama-4-maverick": 36 * 8192 * 2 * 8 * 128 * BF16,  # a chunk of 8192 at most
    # Mamba-2: conv (kernel - 1) x (heads x head_dim + 2 x groups x d_state), SSM heads x head_dim x d_state
    "nemotron-3-super": 40 * ((4 - 1) * (128 * 64 + 2 * 8 * 128) + 128 * 64 * 128) * BF16,
    # Mamba-1: conv (kernel - 1) x d_inner, SSM d_inner x d_state
    "jamba-v0.1": 28 * ((4 - 1) * 8192 + 8192 * 16) * BF16,
    "minimax-m1": 70 * 64 * 128 * 128 * BF16,  # lightning: heads x head_dim x head_dim
    "mimo-v2-flash": 39 * 129 * 8 * (192 + 128) * BF16,
    "kimi-k3": 69 * ((4 - 1) * (3 * 96 * 128) + 96 * 128 * 128) * BF16,
}


def test_every_builtin_is_covered():
    assert sorted(GROWING) == sorted(mla_mem.builtin_names())


@pytest.mark.parametrize("name", sorted(GROWING))
def test_bytes_per_token_and_fixed_bytes_match_hand_derivation(name):
    estimate = mla_mem.estimate(name, context=K128)
    assert estimate.bytes_per_token == GROWING[name]
    assert estimate.fixed_bytes == FIXED.get(name, 0)


def test_acceptance_figures_from_the_issue():
    assert mla_mem.estimate("deepseek-v3", K128).bytes_per_token == 70_272
    assert mla_mem.estimate("kimi-k2", K128).bytes_per_token == 70_272
    assert mla_mem.estimate("llama-3.1-8b", K128).bytes_per_token == 131_072
    assert mla_mem.estimate("qwen3-235b-a22b", K128).bytes_per_token == 192_512
    glm5 = mla_mem.estimate("glm-5", K128)
    parts = {c.name: c for c in glm5.components}
    assert parts["mla_latent"].bytes_per_token == 89_856
    assert parts["indexer"].bytes_per_token == 78 * 128 * 2
    assert mla_mem.estimate("kimi-linear-48b-a3b", K128).bytes_per_token == 8_064
    assert mla_mem.estimate("gpt-oss-120b", K128).bytes_per_token == 36_864
    assert mla_mem.estimate("gemma-3-27b", K128).bytes_per_token == 81_920


def test_deepseek_v3_total_at_128k():
    estimate = mla_mem.estimate("deepseek-v3", context=K128)
    assert estimate.total_bytes == 70_272 * K128 == 9_210_691_584
    assert mla_mem.estimate("deepseek-v3", K128, batch=16).total_bytes == 16 * 9_210_691_584
    assert mla_mem.estimate("deepseek-v3", K128, kv_dtype="fp8").total_bytes == 9_210_691_584 // 2


def test_sliding_window_below_and_above():
    # gpt-oss-120b: 18 sliding layers (window 128) + 18 full; per layer-token 2 x 8 x 64 x 2 = 2048 B
    per_layer = 2 * 8 * 64 * BF16
    below = mla_mem.estimate("gpt-oss-120b", context=100)
    assert below.total_bytes == 36 * 100 * per_layer  # below the window a sliding layer costs like a full one
    above = mla_mem.estimate("gpt-oss-120b", context=10_000)
    assert above.total_bytes == 18 * 10_000 * per_layer + 18 * 128 * per_layer
    parts = {c.name: c.total_bytes for c in above.components}
    assert parts["sliding_kv"] == mla_mem.estimate("gpt-oss-120b", context=1_000_000).components[1].total_bytes
    at_window = mla_mem.estimate("gpt-oss-120b", context=128)
    assert at_window.total_bytes == 36 * 128 * per_layer


def test_gemma_window():
    per_layer = 2 * 16 * 128 * BF16
    assert mla_mem.estimate("gemma-3-27b", 1000).total_bytes == 62 * 1000 * per_layer
    assert mla_mem.estimate("gemma-3-27b", 4096).total_bytes == 10 * 4096 * per_layer + 52 * 1024 * per_layer


def test_linear_state_is_constant_and_scales_with_batch():
    small = mla_mem.estimate("qwen3-next-80b-a3b", 1024)
    large = mla_mem.estimate("qwen3-next-80b-a3b", 1 << 20)
    state = {c.name: c for c in small.components}["linear_state"]
    state_large = {c.name: c for c in large.components}["linear_state"]
    assert state.total_bytes == state_large.total_bytes == 36 * GDN_STATE
    batch4 = {c.name: c for c in mla_mem.estimate("qwen3-next-80b-a3b", 1024, batch=4).components}
    assert batch4["linear_state"].total_bytes == 4 * 36 * GDN_STATE


def test_mtp_layers_only_with_mtp():
    off = mla_mem.estimate("deepseek-v3", 1000)
    on = mla_mem.estimate("deepseek-v3", 1000, mtp=True)
    assert off.bytes_per_token == 61 * 1152
    assert on.bytes_per_token == 62 * 1152 == 71_424
    v32 = mla_mem.estimate("deepseek-v3.2", 1000, mtp=True)
    assert v32.bytes_per_token == 62 * (1152 + 256)


@pytest.mark.parametrize(
    "dtype,width_bits",
    [
        ("fp32", 32),
        ("bf16", 16),
        ("fp16", 16),
        ("fp8", 8),
        ("fp8_e5m2", 8),
        ("int8", 8),
        ("int4", 4),
        ("fp4", 4),
        ("6bit", 6),
    ],
)
def test_cache_dtypes(dtype, width_bits):
    estimate = mla_mem.estimate("deepseek-v3", 1000, kv_dtype=dtype)
    assert estimate.bytes_per_token == 61 * 576 * width_bits // 8


def test_kv_dtype_is_independent_of_weights_and_defaults_to_model_dtype():
    assert mla_mem.estimate("deepseek-v3", 10).kv_dtype == "bf16"


@pytest.mark.parametrize(
    ("name", "runtime"),
    [("gpt-oss-120b", "ideal"), ("qwen3-next-80b-a3b", "ideal"), ("deepseek-v3.2", "ideal"), ("gemma-3-27b", "ideal"),
     ("deepseek-v4-flash", "llama.cpp"), ("deepseek-v4-pro", "vllm")],
)  # fmt: skip
def test_curve_equals_scalar_path(name, runtime):
    contexts = [1, 100, 127, 128, 129, 1025, 4096, 100_000, 1 << 20]
    result = mla_mem.curve(name, contexts, batch=3, runtime=runtime)
    for i, n in enumerate(contexts):
        estimate = mla_mem.estimate(name, n, batch=3, runtime=runtime)
        assert int(result["total"][i]) == estimate.total_bytes
        for component in estimate.components:
            assert int(result["components"][component.name][i]) == component.total_bytes


def test_curve_exact_for_huge_values():
    result = mla_mem.curve("llama-3.1-405b", [2**40], batch=2**24)
    assert int(result["total"][0]) == 516_096 * 2**40 * 2**24
    # exact Python integers through the windowed path too (worked in place on an object array)
    contexts = [1, 129, 4096, 2**40]
    for runtime in ("ideal", "vllm"):
        result = mla_mem.curve("gpt-oss-120b", contexts, batch=2**24, runtime=runtime)
        assert result["total"].dtype == object
        for i, n in enumerate(contexts):
            assert int(result["total"][i]) == mla_mem.estimate("gpt-oss-120b", n, 2**24, runtime=runtime).total_bytes


def test_pipeline_parallel_reports_the_largest_stage():
    estimate = mla_mem.estimate("deepseek-v3", 1000, pp=2)  # 61 layers -> stages of 31 and 30 (vLLM)
    assert estimate.components[0].layers == 31
    assert estimate.total_bytes == 31 * 1000 * 1152
    assert estimate.deployment_bytes == 61 * 1000 * 1152


def test_tensor_parallel_ideal():
    mla = mla_mem.estimate("deepseek-v3", 1000, tp=8)
    assert mla.bytes_per_token == 70_272  # the latent is replicated on every rank
    assert mla.deployment_bytes == 8 * 70_272 * 1000
    gqa = mla_mem.estimate("llama-3.1-70b", 1000, tp=8)
    assert gqa.bytes_per_token == 80 * 2 * 1 * 128 * 2
    assert mla_mem.estimate("llama-3.1-70b", 1000, tp=16).bytes_per_token == 80 * 2 * 1 * 128 * 2


def test_data_parallel_spreads_the_batch():
    estimate = mla_mem.estimate("deepseek-v3", 1000, batch=16, dp=8)
    assert estimate.sequences_per_gpu == 2
    assert estimate.total_bytes == 2 * 1000 * 70_272
    assert estimate.deployment_bytes == 16 * 1000 * 70_272
