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
