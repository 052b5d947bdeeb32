"""The GPU catalogue and the capacity solver, pinned with hand-derived numbers."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

import mla_mem
from mla_mem import fit
from mla_mem.cache import size
from mla_mem.cli import main
from mla_mem.errors import UsageError
from mla_mem.hardware import find_gpu, gpu_catalogue, search
from mla_mem.options import deployment as Options
from mla_mem.params import weight_bytes
from mla_mem.runtimes import lower

GIB = 2**30


def test_catalogue_covers_the_required_gpus():
    names = {g.name for g in gpu_catalogue()}
    for needed in (
        "A100-40GB",
        "A100-80GB",
        "H100",
        "H200",
        "B200",
        "B300",
        "GB200",
        "MI300X",
        "MI325X",
        "MI355X",
        "L40S",
        "L4",
        "RTX-4090",
        "RTX-5090",
    ):
        assert needed in names
    assert find_gpu("h100").memory_bytes == 81559 * 2**20
    assert find_gpu("H200").memory_bytes == 143771 * 2**20
    assert all(g.source for g in gpu_catalogue())
    with pytest.raises(UsageError, match="did you mean"):
        find_gpu("H20O")


def test_deepseek_v3_vllm_block_capacity_by_hand():
    model = mla_mem.load_model("deepseek-v3")
    gpu = find_gpu("H200")
    result = fit(model, gpu, tp=8, runtime="vllm", context=163840, batch=1, block_size=64, reserve="2GiB")
    # vLLM 0.14+: requested = ceil(CUDA total x 0.9); the H200's CUDA total is 150,109,880,320 B
    assert gpu.budget_bytes == 150_109_880_320
    usable = -(-150_109_880_320 * 9 // 10)
    weights = weight_bytes(model)
    per_gpu_weights = -(-weights.dense // 8) + -(-weights.expert // 8)
    available = usable - per_gpu_weights - 2 * GIB
    assert result.available_bytes == available
    blocks = available // (61 * 64 * 1152)
    assert result.num_blocks == blocks
    # 0.20.1+: GPU KV cache size = int(max_concurrency x max_model_len), blocks / 2,560 x 163,840 = blocks x 64
    assert result.token_capacity == blocks * 64
    assert result.concurrency_per_gpu_group == Fraction(blocks, 2560)  # 163,840 / 64 = 2,560 blocks per request
    assert result.engine_lines[-1] == (
        f"GPU KV cache size: {blocks * 64:,} tokens, Maximum concurrency for 163,840 tokens per request: "
        f"{blocks / 2560:.2f}x"
    )


def test_capacity_fed_back_fits_and_one_more_block_does_not():
    model = mla_mem.load_model("deepseek-v3")
    result = fit(model, find_gpu("H200"), tp=8, runtime="vllm", block_size=64)
    plan = lower(model, Options(runtime="vllm", tp=8, block_size=64))
    assert size(plan, result.token_capacity, 1).total_bytes <= result.available_bytes
    assert size(plan, result.token_capacity + 64, 1).total_bytes > result.available_bytes


def test_tp_versus_dp_for_mla():
    model = mla_mem.load_model("deepseek-v3")
    gpu = find_gpu("H200")
    tp8 = fit(model, gpu, tp=8, runtime="vllm", context=131072)
    one_rank_room = tp8.available_bytes
    # at tp 8 each GPU holds the whole latent: the group's capacity is one rank's
    assert tp8.token_capacity == one_rank_room // (61 * 64 * 1152) * 64
    assert tp8.max_concurrency == one_rank_room // size(lower(model, Options(runtime="vllm", tp=8)), 131072).total_bytes
    dp8 = fit(model, gpu, dp=8, runtime="vllm", context=131072)
    per_gpu = dp8.available_bytes // size(lower(model, Options(runtime="vllm", dp=8)), 131072).total_bytes
    assert dp8.max_concurrency == 8 * per_gpu  # eight independent pools
    assert dp8.max_concurrency > tp8.max_concurrency


def test_longest_context_and_exit_codes(capsys):
    assert (
        main(
            [
                "fit",
                "llama-3.1-8b",
                "--gpu",
                "H100",
                "--gpus",
                "1",
                "--context",
                "128K",
                "--batch",
                "2",
                "--format",
                "json",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["fits"] and payload["longest_context"] >= 131072
    assert main(["fit", "llama-3.1-70b", "--gpu", "RTX-4090", "--gpus", "1"]) == 1  # weights do not fit
    assert main(["fit", "llama-3.1-8b", "--gpu", "L4", "--gpus", "1", "--context", "1M", "--batch", "64"]) == 1
    capsys.readouterr()
    assert main(["fit", "llama-3.1-8b", "--memory", "80GiB", "--gpus", "1", "-c", "8K", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["memory_bytes"] == 80 * GIB


def test_search_finds_the_smallest_layout():
    model = mla_mem.load_model("llama-3.1-70b")
    found = search(model, find_gpu("H100"), Options(runtime="vllm"), context=32768, batch=8)
    assert found and found[0].fits
    smallest = found[0].gpus
    for gpus in range(1, smallest):
        for result in search(model, find_gpu("H100"), Options(runtime="vllm"), context=32768, batch=8, max_gpus=gpus):
            assert result.gpus >= smallest


@pytest.mark.parametrize(
    "args,message",
    [
        (["fit", "deepseek-v3"], "--gpu"),
        (["fit", "deepseek-v3", "--gpu", "H100", "--memory", "80GiB"], "not both"),
        (["fit", "deepseek-v3", "--gpu", "H100"], "needs --context"),
        (["fit", "deepseek-v3", "--gpu", "H100", "--gpus", "8", "--tp", "3"], "= 6 GPUs, not the 8 GPUs given"),
        (
            ["fit", "deepseek-v3", "--gpu", "H100", "--gpus", "8", "--gpu-memory-utilization", "1.5"],
            "between 0 and 1",
        ),
        (["fit", "deepseek-v3", "--gpu", "H100", "--gpus", "8", "--reserve", "12XB"], "not a size"),
        (["fit", "deepseek-v3", "--gpu", "H100", "--gpus", "8", "--weight-dtype", "fp7"], "--weight-dtype"),
    ],
)
def test_fit_bad_input(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_fit_options_on_the_command_line(capsys):
    args = [
        "fit",
        "deepseek-v3",
        "--gpu",
        "H200",
        "--gpus",
        "16",
        "--tp",
        "8",
        "--pp",
        "2",
        "--context",
        "32K",
        "--batch",
        "4",
        "--weight-dtype",
        "int4",
        "--gpu-memory-utilization",
        "0.8",
        "--reserve",
        "4GiB",
        "--runtime",
        "vllm",
        "--kv-dtype",
        "fp8",
        "--block-size",
        "64",
        "--format",
        "json",
    ]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    gpu = find_gpu("H200").budget_bytes
    assert payload["usable_bytes"] == -(-gpu * 8 // 10) and payload["reserve_bytes"] == 4 * GIB
    assert payload["weight_dtype"] == "int4" and payload["kv_dtype"] == "fp8_e4m3"
    assert (payload["tp"], payload["pp"], payload["dp"]) == (8, 2, 1)
    assert payload["bytes_per_token"] == 31 * 576  # the larger pipeline stage holds 31 of 61 layers
    model = mla_mem.load_model("deepseek-v3")
    for flag, expected_ep in (("--ep", 2), ("--no-ep", 1)):
        assert (
            main(
                [
                    "fit",
                    "deepseek-v3",
                    "--gpu",
                    "H200",
                    "--gpus",
                    "16",
                    "--tp",
                    "8",
                    "--dp",
                    "2",
                    flag,
                    "--format",
                    "json",
                ]
            )
            == 0
        )
        result = json.loads(capsys.readouterr().out)
        weights = weight_bytes(model)
        assert result["weight_bytes"] == -(-weights.dense // 8) + -(-weights.expert // (8 * expected_ep))


def test_engine_cache_memory_needs_no_gpu(capsys):
    """Issue 16's command: the engine's own cache memory is enough; the GPU's memory would not enter the result."""
    args = ["fit", "kimi-linear-48b-a3b", "--gpus", "2", "--tp", "2", "-c", "120000", "--runtime", "vllm",
            "--kv-cache-memory", "2.30GiB", "--format", "json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine_lines"][-1] == ("GPU KV cache size: 289,354 tokens, Maximum concurrency for 120,000 tokens "
                                       "per request: 2.41x")  # fmt: skip
    assert main(args[:-2] + ["--gpu", "H100", "--format", "json"]) == 0  # the same with a GPU named
    assert json.loads(capsys.readouterr().out)["engine_lines"] == out["engine_lines"]
    assert main(["fit", "kimi-linear-48b-a3b", "--gpus", "2", "--tp", "2"]) == 2
    assert "or the engine's --kv-cache-memory" in capsys.readouterr().err


# SGLang's default mem_fraction_static, release by release (each wheel 0.5.10-0.5.23 read, and its own functions run
# on these inputs). reserved MiB = 512 + max(cps, 2048) x 1.5 + decode max_bs x 2 + tp x pp / 8 x 1024 (+ max_bs x
# dp x 3 with dp attention) + the prefill graph's reserve when that graph is on, at least 10,240 above 60 GiB.
H200_MIB, H100_MIB, B200_MIB = 143_771, 81_559, 183_359
V3_TP8 = 512 + 8192 * 3 // 2 + 512 * 2 + 1024  # 14,848 (cps 8,192, max_bs 512 at tp 8)
V3_DP8 = V3_TP8 + 512 * 8 * 3 + 512 * 8 * 3 // 2  # 33,280 (max_bs 512 > 300: half again)
LLAMA_TP4 = 512 + 8192 * 3 // 2 + 512 * 2 + 512  # 14,336
V4_DP8 = 512 + 16384 * 3 // 2 + 512 * 2 + 1024 + 512 * 8 * 3 + 512 * 8 * 3 // 2  # 45,568; its prefill graph is off


def sglang_mem_fraction(gpu, plan):
    from mla_mem.sglang_memory import mem_fraction

    return mem_fraction(gpu.memory_bytes // 2**20, plan, [])


def _mfs(total, reserved):
    return round((total - reserved) / total, 3)


@pytest.mark.parametrize(
    ("version", "v3", "v3_dp", "llama"),
    [
        # prefill graph on for MLA (+1,536) and llama (+58 capture sizes x 8 = 464), off with dp attention
        ("0.5.10", V3_TP8 + 1536, V3_DP8, LLAMA_TP4 + 464),
        ("0.5.14", V3_TP8 + 1536, V3_DP8, LLAMA_TP4 + 464),
        # 0.5.15-0.5.17: the breakable prefill graph is off for MLA models (DeepSeek-V3 has no indexer)
        ("0.5.15", V3_TP8, V3_DP8, LLAMA_TP4 + 464),
        ("0.5.17", V3_TP8, V3_DP8, LLAMA_TP4 + 464),
        # 0.5.18 on: MLA and dp-attention rules gone
        ("0.5.18", V3_TP8 + 1536, V3_DP8 + 1536, LLAMA_TP4 + 464),
        ("0.5.23", V3_TP8 + 1536, V3_DP8 + 1536, LLAMA_TP4 + 464),
    ],
)
def test_sglang_default_mem_fraction_by_release(version, v3, v3_dp, llama):
    def mfs(model, gpu, **options):
        return float(sglang_mem_fraction(find_gpu(gpu), mla_mem.plan(model, runtime=f"sglang@{version}", **options)))

    assert mfs("deepseek-v3", "H200", tp=8) == _mfs(H200_MIB, v3)  # 0.886 or 0.897
    assert mfs("deepseek-v3", "H200", tp=8, dp=8, dp_attention=True) == _mfs(H200_MIB, v3_dp)  # 0.758 or 0.769
    assert mfs("llama-3.1-70b", "H100", tp=4) == _mfs(H100_MIB, llama) == 0.819
    if version == "0.5.23":
        assert mfs("deepseek-v4-flash", "B200", tp=8, dp=8, dp_attention=True) == _mfs(B200_MIB, V4_DP8) == 0.751


def test_sglang_mem_fraction_small_gpus_and_old_drafts():
    """A 24 GiB card: cps 2,048 and max_bs 24 before 0.5.20, 4,096 and 48 from 0.5.20 (42 / 50 capture sizes);
    speculative drafts added 4 GiB before 0.5.14 (and turned the prefill graph off in 0.5.10)."""
    from mla_mem.hardware import GPU

    card = GPU(name="L4-24", memory_bytes=24_564 * 2**20)
    old = mla_mem.plan("llama-3.1-8b", runtime="sglang@0.5.19")
    new = mla_mem.plan("llama-3.1-8b", runtime="sglang@0.5.20")
    assert float(sglang_mem_fraction(card, old)) == _mfs(24_564, 512 + 3072 + 48 + 128 + 42 * 8) == 0.833
    assert float(sglang_mem_fraction(card, new)) == _mfs(24_564, 512 + 6144 + 96 + 128 + 50 * 8) == 0.704
    h200 = find_gpu("H200")
    mtp = mla_mem.plan("deepseek-v3", runtime="sglang@0.5.13", tp=8, mtp=True)
    assert float(sglang_mem_fraction(h200, mtp)) == _mfs(H200_MIB, V3_TP8 + 1536 + 4096)
    first = mla_mem.plan("deepseek-v3", runtime="sglang@0.5.10", tp=8, mtp=True)
    assert float(sglang_mem_fraction(h200, first)) == _mfs(H200_MIB, V3_TP8 + 4096)


def test_sglang_memory_for_multimodal_models_by_hand():
    """A multimodal model (SGLang's model_config.is_multimodal, enable_multimodal on by default for its architecture)
    loses the prefill graph's reserve (off for multimodal models unless allow-listed) and has its fraction scaled by
    adjust_mem_fraction_for_vlm: 0.95 x clamp(1 - 0.1 x (L x H^2 / (24 x 1024^2) - 1), 0.8, 1.05). H100 (81,559 MiB),
    tp 1: reserved = 512 + 12,288 + 256 x 2 + 128 = 13,440 MiB."""
    h100 = find_gpu("H100")

    def mfs(model, version="0.5.23", **options):
        return sglang_mem_fraction(h100, mla_mem.plan(model, runtime=f"sglang@{version}", **options))

    gemma4 = (27 * 1152**2) / (24 * 1024**2)  # 1.4238...
    assert mfs("gemma-4-31b") == Fraction(_mfs(H100_MIB, 13_440) * (0.95 * (1 - 0.1 * (gemma4 - 1))))
    assert float(mfs("gemma-4-31b")) == pytest.approx(0.835 * 0.909736, abs=1e-6)
    # Gemma 3 and Llama 4 are served text-only unless asked: the prefill graph is on (58 sizes x 8 MiB), no factor
    assert mfs("gemma-3-27b") == Fraction(_mfs(H100_MIB, 13_440 + 464)).limit_denominator(1000) == Fraction(83, 100)
    # Qwen3.5: allow-listed for the prefill graph from 0.5.16; its vision class has no num_hidden_layers, so 24 layers
    qwen = 0.95 * (1 - 0.1 * (1152**2 / 1024**2 - 1))
    assert mfs("qwen3.5-397b-a17b") == Fraction(_mfs(H100_MIB, 13_440 + 464) * qwen)
    assert mfs("qwen3.5-397b-a17b", "0.5.15") == Fraction(_mfs(H100_MIB, 13_440) * qwen)
    # Mistral Small 3.1 (24 x 1024: the baseline tower): x 0.95, prefill graph off in every release
    assert mfs("mistral-small-3.1-24b", "0.5.10") == Fraction(_mfs(H100_MIB, 13_440) * 0.95)


def test_sglang_keeps_100_mib_of_a_multimodal_models_cache_from_0_5_18():
    """kv_cache_configurator.py: SGLANG_VLM_CACHE_SIZE_MB (100) leaves a multimodal model's cache budget; 0.5.17 has
    the same fraction for Mistral Small 3.1 (prefill graph off either way), so the budgets differ by exactly that."""
    old = fit("mistral-small-3.1-24b", "H100", runtime="sglang@0.5.17")
    new = fit("mistral-small-3.1-24b", "H100", runtime="sglang@0.5.18")
    assert old.fraction == new.fraction and old.available_bytes - new.available_bytes == 100 * 2**20
    assert any("100 MiB of the cache budget" in note for note in new.notes)
    text = fit("llama-3.1-8b", "H100", runtime="sglang@0.5.23")
    assert not any("multimodal" in note for note in text.notes)
    assert any("vision tower's are not counted" in note for note in new.notes)  # the dims count the language model
    assert not any("vision tower" in note for note in text.notes)


def test_a_vision_tower_without_an_architecture_is_refused_for_sglang_defaults(tmp_path):
    from dataclasses import replace

    spec = replace(mla_mem.load_model("gemma-4-31b"), architecture=None)
    with pytest.raises(UsageError, match="vision tower but no `architecture`"):
        fit(spec, "H100", runtime="sglang")
    assert fit(spec, "H100", runtime="vllm").weights_fit  # vLLM's budget does not depend on it


def test_sglang_mem_fraction_before_0_5_10():
    """0.5.3-0.5.9 (each wheel read): the piecewise prefill graph is opt-in, so no prefill reserve; drafts add 2 GiB;
    the 20-35 GiB class has max_bs 16 at tp < 4 in 0.5.3-0.5.4. Before 0.5.3 the default was another formula, and
    which checkpoints count as multimodal was read from 0.5.10 on: both refused, naming the option that says it.
    A public log (LMCache#2400, SGLang of January 2026, 0.5.7-0.5.8: `--model-path Qwen/Qwen3-14B` on one Hopper GPU
    with chunked_prefill_size 8192, no --mem-fraction-static) printed mem_fraction_static=0.835: 13,440 MiB reserved
    on an H100, as here for any text model at tp 1."""
    h100, h200 = find_gpu("H100"), find_gpu("H200")
    qwen = mla_mem.plan("qwen3-32b", runtime="sglang@0.5.8")
    assert float(sglang_mem_fraction(h100, qwen)) == _mfs(H100_MIB, 13_440) == 0.835
    assert float(sglang_mem_fraction(h100, mla_mem.plan("llama-3.1-70b", runtime="sglang@0.5.9", tp=4))) == 0.824
    v3 = mla_mem.plan("deepseek-v3", runtime="sglang@0.5.9", tp=8, mtp=True)
    assert float(sglang_mem_fraction(h200, v3)) == _mfs(H200_MIB, V3_TP8 + 2048)
    from mla_mem.hardware import GPU

    card = GPU(name="L4-24", memory_bytes=24_564 * 2**20)
    old = mla_mem.plan("llama-3.1-8b", runtime="sglang@0.5.4")
    assert float(sglang_mem_fraction(card, old)) == _mfs(24_564, 512 + 3072 + 32 + 128)
    with pytest.raises(UsageError, match="before 0.5.3 .* give --gpu-memory-utilization"):
        sglang_mem_fraction(h100, mla_mem.plan("qwen3-32b", runtime="sglang@0.5.2"))
    with pytest.raises(UsageError, match="multimodal .* read from 0.5.10 on"):
        sglang_mem_fraction(h100, mla_mem.plan("gemma-4-31b", runtime="sglang@0.5.9"))


def test_an_unmodelled_sglang_default_does_not_block_a_given_cache_memory():
    result = fit("qwen3-32b", "H100", runtime="sglang@0.5.1", kv_cache_memory=40 * 2**30)
    assert result.available_bytes == 40 * 2**30 and result.weights_fit
    assert any("default mem_fraction_static is not modelled" in note for note in result.notes)
    with pytest.raises(UsageError, match="before 0.5.3"):
        fit("qwen3-32b", "H100", runtime="sglang@0.5.1")
