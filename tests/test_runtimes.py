"""Runtime profiles and parallel layouts, against numbers derived by hand from ../shared/reference/RUNTIMES.md."""

from __future__ import annotations

import pytest

import mla_mem
from mla_mem.errors import UsageError
from mla_mem.runtimes import RUNTIMES, parse_runtime
from mla_mem.runtimes.lowering import pipeline_stages

BF16 = 2
V3_LATENT = 512 + 64  # kv_lora_rank + qk_rope_head_dim


def est(model, context=1000, batch=1, **options):
    return mla_mem.estimate(model, context, batch, **options)


def parts(estimate):
    return {c.name: c for c in estimate.components}


# --- vLLM ---------------------------------------------------------------------------------------------


def test_vllm_deepseek_v3_replicated_latent_and_blocks():
    assert est("deepseek-v3", runtime="vllm").bytes_per_token == 61 * V3_LATENT * BF16 == 70_272
    assert est("deepseek-v3", runtime="vllm", tp=8).bytes_per_token == 70_272  # latent on every rank
    hundred = est("deepseek-v3", context=100, runtime="vllm", block_size=64)
    assert hundred.total_bytes == 61 * 128 * 1152  # 2 blocks of 64 tokens per layer
    assert hundred.stored_bytes == 61 * 100 * 1152 and hundred.paging_bytes == 61 * 28 * 1152
    assert est("deepseek-v3", runtime="vllm", mtp=True).bytes_per_token == 62 * 1152 == 71_424


def test_vllm_default_mla_block_is_flashmla_64():
    assert est("deepseek-v3", runtime="vllm").block_size == 64
    assert est("llama-3.1-8b", runtime="vllm").block_size == 16
    assert est("deepseek-v3", context=1, runtime="vllm", block_size=128).total_bytes == 61 * 128 * 1152


def test_vllm_deepseek_v32_packed_fp8():
    packed = est("deepseek-v3.2", runtime="vllm", kv_dtype="fp8_ds_mla")
    assert packed.bytes_per_token == (656 + 132) * 61 == 48_068
    assert est("deepseek-v3.2", runtime="vllm", kv_dtype="fp8").bytes_per_token == 48_068  # fp8 -> fp8_ds_mla
    assert est("deepseek-v3.2", runtime="vllm@0.33", kv_dtype="nvfp4_ds_mla").bytes_per_token == (352 + 132) * 61


def test_vllm_version_difference_for_v32_default_dtype():
    # 0.11: "auto" is fp8_ds_mla for DeepSeek-V3.2 (vLLM PR 25988); later "auto" is the model's bf16
    old = est("deepseek-v3.2", runtime="vllm@0.11")
    new = est("deepseek-v3.2", runtime="vllm@0.33")
    assert old.kv_dtype == "fp8_ds_mla" and old.bytes_per_token == 48_068
    assert new.kv_dtype == "bf16" and new.bytes_per_token == (1152 + 132) * 61


def test_vllm_llama_70b_heads_split_then_replicated():
    per_head_layer = 2 * 128 * BF16  # K and V of one head
    assert est("llama-3.1-70b", runtime="vllm", tp=8).bytes_per_token == 80 * 1 * per_head_layer == 40_960
    assert est("llama-3.1-70b", runtime="vllm", tp=16).bytes_per_token == 40_960  # still one head per GPU
    assert est("llama-3.1-70b", runtime="vllm", tp=2).bytes_per_token == 80 * 4 * per_head_layer
    with pytest.raises(UsageError, match="not divisible by tp 3"):  # 64 query heads, as vLLM refuses
        est("llama-3.1-70b", runtime="vllm", tp=3)
    with pytest.raises(UsageError, match="128 attention heads"):
        est("deepseek-v3", runtime="vllm", tp=3)


def test_vllm_qwen3_next_hybrid_page_rule():
    gdn_state = (4 - 1) * 8192 * BF16 + 32 * 128 * 128 * BF16
    assert gdn_state == 1_097_728
    attn_page_per_token = 2 * 2 * 256 * BF16  # 2 KV heads x (K + V) x 256
    block = 16 * -(-gdn_state // (16 * attn_page_per_token))  # vLLM raises the attention block
    assert block == 544
    result = est("qwen3-next-80b-a3b", context=1000, runtime="vllm@0.25")  # no prefix caching for hybrids
    state = parts(result)["linear_state"]
    assert state.fixed_bytes == 36 * 1_097_728  # before page padding
    assert state.total_bytes == 36 * block * attn_page_per_token  # padded to one attention page
    assert result.bytes_per_token == 12 * attn_page_per_token == 24_576
    assert parts(result)["full_kv"].total_bytes == 12 * 2 * block * attn_page_per_token  # 1000 -> 2 blocks
    # from 0.26 prefix caching is on for hybrid models: mamba_cache_mode "align" keeps 2 state pages per request
    # (vllm/v1/kv_cache_interface.py MambaSpec.max_memory_usage_bytes); --no-prefix-caching keeps one
    new = parts(est("qwen3-next-80b-a3b", context=1000, runtime="vllm@0.33"))["linear_state"]
    assert new.fixed_bytes == 36 * 1_097_728 and new.total_bytes == 36 * 2 * block * attn_page_per_token
    off = parts(est("qwen3-next-80b-a3b", context=1000, runtime="vllm@0.33", prefix_caching=False))["linear_state"]
    assert off.total_bytes == 36 * block * attn_page_per_token


def test_vllm_kimi_linear_kda_state_fp32():
    state = parts(est("kimi-linear-48b-a3b", runtime="vllm"))["linear_state"]
    assert state.fixed_bytes == 20 * ((4 - 1) * 12_288 * BF16 + 32 * 128 * 128 * 4) == 20 * 2_170_880


def test_vllm_gpt_oss_sliding_block_formula():
    per_layer_token = 2 * 8 * 64 * BF16
    n = 100_000
    # vllm SlidingWindowSpec (0.11 to 0.25): cdiv(min(W - 1 + max_num_batched_tokens, n), block) + 1 blocks of 16
    blocks = -(-min(128 - 1 + 8192, n) // 16) + 1
    result = est("gpt-oss-120b", context=n, runtime="vllm@0.25")
    assert parts(result)["sliding_kv"].total_bytes == 18 * blocks * 16 * per_layer_token
    assert parts(result)["full_kv"].total_bytes == 18 * n * per_layer_token  # 100,000 is a multiple of 16
    small = est("gpt-oss-120b", context=n, runtime="vllm@0.25", max_batched_tokens=2048)
    assert parts(small)["sliding_kv"].total_bytes == 18 * (-(-(127 + 2048) // 16) + 1) * 16 * per_layer_token
    off = est("gpt-oss-120b", context=n, runtime="vllm", hybrid_allocator=False)
    assert parts(off)["sliding_kv"].total_bytes == 18 * n * per_layer_token  # sized as full attention
    tiny = est("gpt-oss-120b", context=20, runtime="vllm")  # a short request never holds the + 1 block
    assert parts(tiny)["sliding_kv"].total_bytes == 18 * 2 * 16 * per_layer_token
    # from 0.26 the window keeps every batch in flight: max_in_flight_tokens = 2 x max_num_batched_tokens at pp 1
    # (async scheduling; vllm/config/vllm.py max_concurrent_batches)
    new = est("gpt-oss-120b", context=n, runtime="vllm@0.33")
    assert parts(new)["sliding_kv"].total_bytes == 18 * (-(-(128 - 1 + 2 * 8192) // 16) + 1) * 16 * per_layer_token


def test_vllm_dcp_divides_tokens():
    result = est("deepseek-v3", context=1024, runtime="vllm", tp=8, dcp=8, block_size=64)
    assert result.total_bytes == 61 * 128 * 1152  # 1024 tokens / 8 ranks = 128 tokens = 2 blocks
    with pytest.raises(UsageError, match="dcp"):
        est("deepseek-v3", runtime="vllm", tp=8, dcp=3)


# --- transformers ---------------------------------------------------------------------------------------


def test_transformers_mla_expanded_before_5_15():
    expanded = est("deepseek-v3", runtime="transformers@4.57")
    assert expanded.bytes_per_token == 61 * 128 * (128 + 64 + 128) * BF16 == 4_997_120
    assert est("deepseek-v3", runtime="transformers@5.14").bytes_per_token == 4_997_120
    assert est("deepseek-v3", runtime="transformers@5.15").bytes_per_token == 70_272


def test_transformers_gemma_4_windows_and_state_dtypes_by_release():
    # 5.5-5.13: DynamicCache(config) emptied its layer list for num_kv_shared_layers 0, so Gemma 4's sliding layers
    # kept every token (measured by tests/crosscheck at 5.13.1); 5.14 keeps W - 1
    sliding = 50 * 16 * 256 * 2 * BF16  # per token of the 50 sliding layers
    at_513 = parts(est("gemma-4-31b", context=10_000, runtime="transformers@5.13"))["sliding_kv"]
    assert at_513.total_bytes == 10_000 * sliding
    at_514 = parts(est("gemma-4-31b", context=10_000, runtime="transformers@5.14"))["sliding_kv"]
    assert at_514.total_bytes == 1023 * sliding
    # Gated DeltaNet's recurrent state: fp32 up to 5.4, bf16 5.5-5.13, fp32 from 5.14
    recurrent = 45 * 64 * 128 * 128
    conv = 45 * 4 * (2 * 16 * 128 + 64 * 128) * BF16
    for release, width in (("5.4", 4), ("5.13", 2), ("5.14", 4)):
        state = parts(est("qwen3.5-397b-a17b", runtime=f"transformers@{release}"))["linear_state"]
        assert state.fixed_bytes == conv + recurrent * width, release


def test_transformers_dsa_models_expanded_with_indexer_keys_until_5_18():
    # measured: deepseek_v32 / glm_moe_dsa cache expanded keys and values plus indexer keys [B, T, 128] up to 5.17,
    # the latent plus indexer keys from 5.18 (modeling_deepseek_v32.py 5.17.0:460 -> 5.18.0:442)
    at_517 = est("deepseek-v3.2", runtime="transformers@5.17")
    assert at_517.bytes_per_token == 61 * (128 * (128 + 64 + 128) + 128) * BF16
    assert est("deepseek-v3.2", runtime="transformers@5.18").bytes_per_token == 61 * (512 + 64 + 128) * BF16
    assert est("glm-5", runtime="transformers@5.17").bytes_per_token == 78 * (64 * (192 + 64 + 256) + 128) * BF16
    # the issue's measured 58x on GPU for DeepSeek-V3.2's full-size dims
    assert at_517.bytes_per_token / est("deepseek-v3.2", runtime="transformers@5.18").bytes_per_token > 58
    with pytest.raises(UsageError, match="glm_moe_dsa"):
        est("deepseek-v3.2", runtime="transformers@4.57")  # no DSA model class before 5.2


def test_transformers_linear_state_and_sliding_window_minus_one():
    state = parts(est("qwen3-next-80b-a3b", runtime="transformers"))["linear_state"]
    assert state.fixed_bytes == 36 * (4 * 8192 * BF16 + 32 * 128 * 128 * 4) == 36 * 2_162_688
    per_layer_token = 2 * 8 * 64 * BF16
    sliding = parts(est("gpt-oss-120b", context=10_000, runtime="transformers"))["sliding_kv"]
    # stores LESS than the ideal window: DynamicSlidingWindowLayer keeps the last W - 1 tokens
    assert sliding.total_bytes == 18 * 127 * per_layer_token
    ideal = parts(est("gpt-oss-120b", context=10_000))["sliding_kv"]
    assert ideal.total_bytes == 18 * 128 * per_layer_token > sliding.total_bytes


def test_transformers_has_no_tp():
    with pytest.raises(UsageError, match="tp"):
        est("llama-3.1-8b", runtime="transformers", tp=2)


# --- llama.cpp ------------------------------------------------------------------------------------------


def test_llama_cpp_mla_layouts_by_era():
    q8_row = 576 // 32 * 34  # 18 blocks of 34 B
    assert est("deepseek-v3", runtime="llama.cpp", kv_dtype="q8_0").bytes_per_token == 61 * q8_row == 37_332
    assert est("deepseek-v3", runtime="llama.cpp@2025").bytes_per_token == 61 * (576 + 512) * 2
    expanded = est("deepseek-v3", runtime="llama.cpp@2024").bytes_per_token
    assert expanded == 61 * 128 * (192 + 128) * 2
    mixed = est("deepseek-v3", runtime="llama.cpp@2025", kv_dtype="q8_0", v_dtype="q4_0")
    assert mixed.bytes_per_token == 61 * (612 + 512 // 32 * 18)


@pytest.mark.parametrize(
    "cache_type,block_bytes",
    [("q8_0", 34), ("q4_0", 18), ("q4_1", 20), ("q5_0", 22), ("q5_1", 24), ("iq4_nl", 18)],
)
def test_llama_cpp_block_quant_sizes(cache_type, block_bytes):
    assert est("deepseek-v3", runtime="llama.cpp", kv_dtype=cache_type).bytes_per_token == 61 * 18 * block_bytes


def test_llama_cpp_pads_cells_to_256():
    result = est("llama-3.1-8b", context=1000, runtime="llama.cpp")
    assert result.total_bytes == 32 * 1024 * 2 * 8 * 128 * 2
    gemma = parts(est("gemma-3-27b", context=100_000, runtime="llama.cpp"))
    # SWA layers: pad256(min(n, n_swa 1024 + n_ubatch 512)) = 1536 cells
    assert gemma["sliding_kv"].total_bytes == 52 * 1536 * 2 * 16 * 128 * 2


def test_llama_cpp_linear_state_fp32():
    state = parts(est("qwen3-next-80b-a3b", runtime="llama.cpp"))["linear_state"]
    assert state.fixed_bytes == 36 * (3 * 8192 * 4 + 32 * 128 * 128 * 4) == 36 * 2_195_456


# --- SGLang and TensorRT-LLM -----------------------------------------------------------------------------


def test_sglang():
    assert est("deepseek-v3", runtime="sglang", tp=8).bytes_per_token == 70_272
    assert est("deepseek-v3.2", runtime="sglang", kv_dtype="fp8").bytes_per_token == 61 * (656 + 132)
    assert est("deepseek-v3.2", runtime="sglang").block_size == 64
    state = parts(est("qwen3-next-80b-a3b", runtime="sglang"))["linear_state"]
    assert state.fixed_bytes == 36 * (3 * 8192 * 2 + 32 * 128 * 128 * 4) == 36 * 2_146_304


def test_trtllm():
    assert est("llama-3.1-70b", runtime="trtllm", tp=16).bytes_per_token == 80 * 2 * 128 * 2  # ceil(8/16) = 1
    assert est("deepseek-v3", runtime="trtllm", kv_dtype="fp8").bytes_per_token == 61 * 576
    nvfp4 = 576 // 2 + 576 // 16
    assert est("deepseek-v3", runtime="trtllm", kv_dtype="nvfp4").bytes_per_token == 61 * nvfp4
    assert est("llama-3.1-8b", context=1, runtime="trtllm").total_bytes == 32 * 32 * 2 * 8 * 128 * 2  # block 32


# --- every model on every runtime, versions, layouts -------------------------------------------------


V4_RUNTIMES = (
    "ideal",
    "vllm",
    "transformers",
    "llama.cpp",
    "sglang",
)  # DeepSeek-V4 rules exist for these (docs/runtimes.md)
# (runtime, built-in) -> the layer kind the runtime has no rules for; the refusal must name it. Everything else runs.
REFUSED = {
    ("sglang", "jamba-v0.1"): "mamba1",
    ("sglang", "minimax-m1"): "lightning",
    ("trtllm", "jamba-v0.1"): "mamba1",
    ("trtllm", "minimax-m1"): "lightning",
}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_builtin_runs_on_every_runtime_or_refuses_its_kind_by_name(runtime):
    for name in mla_mem.builtin_names():
        if name.startswith("deepseek-v4.1") and runtime != "ideal":  # ratio-1/2 caches shared across layers
            with pytest.raises(
                UsageError,
                match="DeepSeek-V4.1's compress_ratio 2 .* use runtime ideal|no DeepSeek-V4 |V4.1's (cache|layout) depends on the GPU",
            ):
                est(name, context=131072, runtime=runtime)
            continue
        if name.startswith("deepseek-v4") and runtime not in V4_RUNTIMES:
            with pytest.raises(UsageError, match="no DeepSeek-V4"):
                est(name, context=131072, runtime=runtime)
            continue
        if (runtime, name) in REFUSED:
            with pytest.raises(UsageError, match=f"no rules for {REFUSED[runtime, name]}"):
                est(name, context=131072, runtime=runtime)
            continue
        result = est(name, context=131072, runtime=runtime)
        assert result.total_bytes > 0 and result.runtime.startswith(runtime)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_block_rounding_never_rounds_down(runtime):
    names = ["deepseek-v3.2", "gpt-oss-120b", "qwen3-next-80b-a3b", "gemma-3-27b"]
    if runtime in V4_RUNTIMES:
        names += ["deepseek-v4-pro", "deepseek-v4-flash"]
    for name in names:
        for n in (1, 63, 64, 65, 1000, 4097):
            result = est(name, context=n, runtime=runtime)
            assert result.total_bytes >= result.stored_bytes


def test_pipeline_stages_like_vllm():
    assert pipeline_stages(61, 2) == ((0, 31), (31, 61))
    assert pipeline_stages(62, 4) == ((0, 15), (15, 31), (31, 47), (47, 62))
    assert pipeline_stages(10, 3) == ((0, 3), (3, 7), (7, 10))


def test_data_parallel_pools():
    one = est("deepseek-v3", context=1000, batch=8, runtime="vllm", tp=8)
    dp = est("deepseek-v3", context=1000, batch=8, runtime="vllm", dp=8)
    assert one.total_bytes == 8 * dp.total_bytes  # each dp rank holds its own requests
    assert one.deployment_bytes == 8 * dp.deployment_bytes  # tp 8 replicates the latent 8 times


@pytest.mark.parametrize(
    "text,expected",
    [
        ("vllm", ("vllm", "0.33")),
        ("vllm@0.11", ("vllm", "0.11")),
        ("VLLM@v0.12.1", ("vllm", "0.12.1")),
        ("llamacpp@2025", ("llama.cpp", "2025")),
        ("transformers@4.57.1", ("transformers", "4.57.1")),
        ("ideal", ("ideal", "")),
    ],
)
def test_parse_runtime(text, expected):
    ref = parse_runtime(text)
    assert (ref.name, ref.version) == expected


@pytest.mark.parametrize("text", ["vllm@0.9", "vllm@banana", "ideal@1", "tgi", "llama.cpp@2019"])
def test_bad_runtimes(text):
    with pytest.raises(UsageError):
        parse_runtime(text)


@pytest.mark.parametrize(
    "runtime,dtype",
    [
        ("vllm", "q8_0"),
        ("vllm", "fp8_ds_mla"),
        ("llama.cpp", "fp8"),
        ("transformers", "q4_0"),
        ("ideal", "fp8_ds_mla"),
        ("trtllm", "int4"),
    ],
)
def test_dtype_not_supported_by_runtime(runtime, dtype):
    model = "deepseek-v3"  # fp8_ds_mla needs a sparse (indexer) model
    with pytest.raises(UsageError):
        est(model, runtime=runtime, kv_dtype=dtype)


def test_every_estimate_names_its_assumptions():
    result = est("deepseek-v3.2", runtime="vllm@0.11", tp=8)
    payload = result.as_dict()
    assert payload["runtime"] == "vllm 0.11" and payload["block_size"] == 64
    assert payload["kv_dtype"] == "fp8_ds_mla" and payload["parallel"]["tp"] == 8
    assert any("fp8_ds_mla" in note for note in payload["notes"])
    assert all(c["formula"] for c in payload["components"])


def test_llama_cpp_builds_split_at_sparse_attention_support():
    # b9445 added the DSA indexer cache; before, DeepSeek-V3.2 ran as dense MLA: 61 x 576 x f16 per token
    before = est("deepseek-v3.2", context=163840, runtime="llama.cpp@b9444")
    assert before.total_bytes == 61 * 576 * 2 * 163840 == 11_513_364_480  # 10.72 GiB
    assert f"{before.total_bytes / 2**30:.2f}" == "10.72"
    after = est("deepseek-v3.2", context=163840, runtime="llama.cpp@b9445")
    assert after.total_bytes == 61 * (576 + 128) * 2 * 163840  # + indexer keys, 13.11 GiB
    with pytest.raises(UsageError, match="b8054"):
        est("deepseek-v3.2", runtime="llama.cpp@b7000")


def test_the_module_table_names_every_profile_and_alias():
    from mla_mem.runtimes import MODULES, profiles

    names = {name: profile.name for profile in profiles().values() for name in (profile.name, *profile.aliases)}
    assert set(MODULES) == set(names)
    for name, module in MODULES.items():
        assert profiles()[names[name]].rules.__module__.endswith("." + module)
