"""Offload tiers, shared prefixes and speculative drafts, each engine rule derived by hand (docs/tiers.md)."""

from __future__ import annotations

import json

import pytest

import mla_mem
from mla_mem.cli import main
from mla_mem.errors import UsageError
from mla_mem.tiers import parse_tiers

LATENT = 61 * (512 + 64) * 2  # DeepSeek-V3's bf16 latent over its 61 layers: 70,272 B per token


def fit(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = main(["fit", *args, "--format", "json"])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    return json.loads(out.out)


def test_vllm_033_keeps_one_copy_of_a_replicated_latent(capsys):
    out = fit(capsys, "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "128K", "--offload",
              "cpu:1TiB", "--runtime", "vllm")  # fmt: skip
    [tier] = out["tiers"]
    block = 64 * LATENT  # one 64-token block on one worker: 4,497,408 B, a multiple of 4 KiB already
    assert tier["chunk_bytes"] == block == 4_497_408 and tier["copies"] == 1
    assert tier["unique_tokens"] == 2**40 // block * 64 == 15_646_464
    assert tier["host_bytes_per_node"] == 2**40 // block * block


def test_vllm_prices_every_rank_where_it_cannot_dedup(capsys):
    """Two nodes (tp 16): one copy per worker, so a distinct token costs 16 x 70,272 B of host memory."""
    out = fit(capsys, "deepseek-v3", "--gpu", "H200", "--gpus", "16", "--tp", "16", "-c", "32K", "--offload",
              "cpu:1TiB", "--runtime", "vllm")  # fmt: skip
    [tier] = out["tiers"]
    assert tier["chunk_bytes"] == 16 * 64 * LATENT and tier["copies"] == 16
    assert tier["unique_tokens"] == 2**40 // (16 * 64 * LATENT) * 64
    assert "16 engines of tp 1" in tier["alternative"]


def test_glm_53_recipe_431520_bytes_per_offloaded_token(capsys):
    """vllm-project/recipes#893 (GLM-5.3 on 8 x H200, vLLM 0.28, fp8, blocks_per_chunk 4): 59,763,793,920 B held
    138,496 tokens = 431,520 B per token. By hand: 78 fp8_ds_mla latents of 656 B + 21 indexer keys of 132 B =
    53,940 B per worker per token, priced x 8 workers (0.28 keeps one copy of plain MLA only, not of a DSA model);
    a chunk is 4 blocks of 64 tokens. GLM-5.3's cache-relevant config equals GLM-5.2's."""
    per_worker = 78 * 656 + 21 * 132
    assert per_worker == 53_940 and 8 * per_worker == 431_520
    out = fit(capsys, "glm-5.2", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "128K", "--offload",
              "cpu:100GiB", "--offload-chunk", "4", "--runtime", "vllm@0.28", "--kv-dtype", "fp8")  # fmt: skip
    [tier] = out["tiers"]
    assert tier["chunk_tokens"] == 256 and tier["chunk_bytes"] == 256 * 431_520 and tier["copies"] == 8
    assert 59_763_793_920 % tier["chunk_bytes"] == 0 and 59_763_793_920 // 431_520 == 138_496
    on_031 = fit(capsys, "glm-5.2", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "128K", "--offload",
                 "cpu:100GiB", "--offload-chunk", "4", "--runtime", "vllm@0.31", "--kv-dtype", "fp8")["tiers"][0]  # fmt: skip
    assert on_031["copies"] == 1 and on_031["chunk_bytes"] == -(-256 * 53_940 // 4096) * 4096 == 13_811_712


def test_sglang_hicache_is_per_rank(capsys):
    """sglang#26691: GLM-5.1 at TP 8 with --hicache-size 40 took 40 GB x 8 = 320 GB of host memory. By hand, GLM-5
    in bf16 on H20 (SM 9.0): 78 layers x 576 x 2 B = 89,856 B per token per rank; tokens = (40e9 // 89,856 // 64 +
    1) x 64; the DSA indexer keys (78 x 132 B) get a pool of the same tokens outside --hicache-size."""
    out = fit(capsys, "glm-5", "--gpu", "H20", "--gpus", "8", "--tp", "8", "--runtime", "sglang", "-c", "32K",
              "--offload", "cpu:40GB")  # fmt: skip
    [tier] = out["tiers"]
    tokens = (40 * 10**9 // 89_856 // 64 + 1) * 64
    assert tier["unique_tokens"] == tokens == 445_184 and tier["copies"] == 8
    assert tier["host_bytes_per_engine"] == 8 * tokens * 89_856 == 320_019_628_032  # "40 GB x 8 = 320 GB"
    assert tier["extra_bytes_per_engine"] == 8 * tokens * 78 * 132
    assert tier["host_bytes_per_node"] == 8 * tokens * (89_856 + 78 * 132)


def test_shared_prefix_in_whole_blocks(capsys):
    """vLLM block 64: N requests of 131,072 tokens sharing 100K (102,400) tokens hold 1,600 blocks once and 2,048 -
    1,600 = 448 each; 10,834 blocks less the null block fit (10,833 - 1,600) // 448 = 20 of them, 5 without."""
    out = fit(capsys, "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "128K", "--shared-prefix",
              "100K", "--runtime", "vllm")  # fmt: skip
    assert out["num_blocks"] == 10_834
    assert out["prefix"] == {"prefix_tokens": 102_400, "block_size": 64, "shared_blocks": 1_600, "request_blocks": 448,
                             "requests": 20, "requests_unshared": 5, "notes": out["prefix"]["notes"]}  # fmt: skip
    # a prefix that is not block aligned: its partial block is each request's own
    odd = fit(capsys, "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "128K", "--shared-prefix",
              "100,000", "--runtime", "vllm")["prefix"]  # fmt: skip
    assert odd["shared_blocks"] == 100_000 // 64 == 1_562 and odd["request_blocks"] == 2_048 - 1_562


def test_eagle3_draft_of_one_llama_layer(tmp_path, capsys):
    """An EAGLE-3 draft of one Llama layer with 8 KV heads of 128: 1 x 8 x 128 x 2 (K, V) x 2 B = 4,096 B per token
    in bf16, beside the target's 70,272 (ideal, and vLLM at tp 1 where the layers join the main pool)."""
    draft = tmp_path / "draft.yaml"
    draft.write_text("name: draft\nlayers: 1\nattention: {kind: gqa, heads: 64, kv_heads: 8, head_dim: 128}\n")
    for runtime in ("ideal", "vllm"):
        result = mla_mem.estimate("deepseek-v3", 4096, runtime=runtime, draft=str(draft))
        assert result.bytes_per_token == LATENT + 1 * 8 * 128 * 2 * 2 == LATENT + 4_096
        assert {c.name for c in result.components} == {"mla_latent", "draft_full_kv"}
    # SGLang sizes an EAGLE draft as that many of the target's layers: int(70,272 x 1 / 61) = 1,152 B
    sglang = mla_mem.estimate("deepseek-v3", 4096, runtime="sglang", draft=str(draft))
    assert sglang.bytes_per_token == LATENT + LATENT // 61 == LATENT + 1_152
    with pytest.raises(mla_mem.UsageError, match="needs the draft model"):
        mla_mem.estimate("deepseek-v3", 4096, spec="eagle3")
    with pytest.raises(mla_mem.UsageError, match="not modelled"):
        mla_mem.estimate("deepseek-v3", 4096, runtime="trtllm", draft=str(draft))
    assert mla_mem.estimate("deepseek-v3", 4096, spec="mtp").bytes_per_token == 62 * 1152  # the MTP layer


@pytest.mark.parametrize(
    ("text", "message"),
    [("gpu:1TiB", "TIER one of cpu, disk"), ("cpu:1TiB,cpu:2TiB", "given twice"), ("cpu:100", "unit")],
)
def test_tier_syntax(text, message):
    with pytest.raises(mla_mem.UsageError, match=message):
        parse_tiers(text)


def test_what_is_not_modelled_is_refused(capsys):
    for extra, message in ((["--offload", "disk:4TiB"], "LMCache"), (["--offload", "cpu:1TiB", "--runtime", "vllm@0.27"],
                           "from 0.28"), (["--offload", "cpu:1TiB", "--runtime", "trtllm"], "not modelled")):  # fmt: skip
        args = ["fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "32K", *extra]
        if "--runtime" not in extra:
            args += ["--runtime", "vllm"]
        assert main(args) == 2
        assert message in capsys.readouterr().err


def test_budgets_state_tiers_prefixes_and_drafts(tmp_path, capsys):
    path = tmp_path / "budgets.yaml"
    path.write_text(
        "budgets:\n"
        "  - name: agents\n    model: deepseek-v3\n    runtime: vllm\n    gpu: H200\n    tp: 8\n    context: 128K\n"
        "    shared_prefix: 100K\n    offload: cpu:1TiB\n    min_shared_requests: 21\n    min_offload_tokens: 10M\n"
        "  - name: no tier\n    model: deepseek-v3\n    gpu: H200\n    tp: 8\n    min_offload_tokens: 1M\n"
    )
    assert main(["check", str(path), "--format", "json"]) == 2
    verdicts = json.loads(capsys.readouterr().out)["verdicts"]
    by_limit = {v["limit"]: v for v in verdicts if v["budget"] == "agents"}
    assert by_limit["min_offload_tokens"]["measured"] == 15_646_464 and by_limit["min_offload_tokens"]["passed"]
    assert by_limit["min_shared_requests"]["measured"] == 20 and not by_limit["min_shared_requests"]["passed"]
    [error] = [v for v in verdicts if v["budget"] == "no tier"]
    assert error["status"] == "ERROR" and "needs `offload`" in error["error"]


@pytest.mark.parametrize("runtime", ["vllm", "sglang"])
def test_offload_of_compressed_caches_is_refused(runtime):
    """DeepSeek-V4's window, compressed and state pools are not priced per token as the tier rules assume."""
    with pytest.raises(UsageError, match="compressed along the sequence"):
        mla_mem.fit("deepseek-v4-flash", "H200", gpus=8, tp=8, context=131072, runtime=runtime, offload="cpu:100GiB")


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main([*args, "--format", "json"]) == 0
    return capsys.readouterr().out


def test_estimate_offload_per_request_by_hand(capsys):
    """One request offloaded: vLLM keeps whole chunks (a 64-token block of DeepSeek-V3 at tp 8: 61 x 1,152 x 64 =
    4,497,408 B, one copy with replicated_layout on 0.33, 16 copies at tp 16 on 0.28), SGLang whole pages (64 for a
    DSA model) of its per-rank pool on every tp rank."""
    rows = json.loads(run_json(capsys, "estimate", "deepseek-v3", "-c", "131072,100000", "--runtime", "vllm", "--tp", "8",
                               "--offload", "cpu:1TiB"))  # fmt: skip
    chunk, distinct = 4_497_408, 2**40 // 4_497_408 * 64
    [full] = rows[0]["offload"]
    assert (full["stored_tokens"], full["host_bytes"], full["copies"]) == (131_072, 2048 * chunk, 1)
    assert full["requests"] == distinct // 131_072 == 119
    [part] = rows[1]["offload"]  # 100,000 tokens: 1,562 whole blocks; the last 32 tokens stay on the GPU
    assert (part["stored_tokens"], part["host_bytes"]) == (1562 * 64, 1562 * chunk)
    old = json.loads(run_json(capsys, "estimate", "deepseek-v3", "-c", "131072", "--runtime", "vllm@0.28", "--tp", "16",
                              "--offload", "cpu:1TiB"))[0]["offload"][0]  # fmt: skip
    assert old["copies"] == 16 and old["host_bytes"] == 2048 * 16 * chunk
    glm = json.loads(run_json(capsys, "estimate", "glm-5", "-c", "100000", "--runtime", "sglang", "--tp", "8", "--offload",
                              "cpu:40GB"))[0]["offload"][0]  # fmt: skip
    # 40 GB // (78 x 1,152 B latent) = 445,155 tokens -> 6,956 whole pages + one = 445,184 tokens per rank pool
    assert glm["copies"] == 8 and glm["stored_tokens"] == 100_000 // 64 * 64
    assert glm["host_bytes"] == glm["stored_tokens"] * (78 * 1152 + 78 * 132) * 8  # latent and indexer keys, 8 ranks
    assert glm["requests"] == 445_184 // glm["stored_tokens"]


def test_lmcache_tiers_by_hand(capsys):
    """LMCache 0.5.6 under vLLM: whole 256-token chunks of this worker's KV, allocations rounded up to 4 KiB and
    counted against max_local_cpu_size / max_local_disk_size (GiB per worker); an MLA latent saved by the first rank
    only (save_only_first_rank), K and V shards by every rank."""
    v3_chunk = 61 * 1152 * 256  # 17,989,632 B, already 4 KiB aligned
    rows = json.loads(run_json(capsys, "estimate", "deepseek-v3", "llama-3.1-70b", "-c", "128K", "--runtime", "vllm",
                               "--tp", "8", "--offload", "lmcache-cpu:100GiB,lmcache-disk:2TiB"))  # fmt: skip
    cpu, disk = rows[0]["offload"]
    assert cpu["requests"] == 100 * 2**30 // v3_chunk * 256 // 131_072 == 11
    assert disk["requests"] == 2**41 // v3_chunk * 256 // 131_072 == 238
    assert cpu["host_bytes"] == 512 * v3_chunk and cpu["copies"] == 1  # one copy for 8 ranks
    llama_chunk = 80 * 2 * 1 * 128 * 2 * 256  # one of 8 KV heads per rank: 10,485,760 B
    cpu, _ = rows[1]["offload"]
    assert cpu["requests"] == 100 * 2**30 // llama_chunk * 256 // 131_072 == 20
    assert cpu["host_bytes"] == 512 * llama_chunk * 8  # every rank's shard of the request
    out = fit(capsys, "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "128K", "--offload",
              "lmcache-cpu:100GiB")  # fmt: skip
    [tier] = out["tiers"]
    assert tier["host_bytes_per_engine"] == 8 * 100 * 2**30  # every worker pins its pool, used or not
    assert tier["unique_tokens"] == 100 * 2**30 // v3_chunk * 256


def test_sglang_l3_file_tier_by_hand(capsys):
    """SGLang 0.5.23's L3 file backend: one file per 64-token page and pool (GLM-5's DSA: latent 78 x 1,152 B and
    indexer 78 x 132 B a token), written by the first tp rank only for an MLA cache, within max_size per rank."""
    page = (78 * 1152 + 78 * 132) * 64
    [row] = json.loads(run_json(capsys, "estimate", "glm-5", "-c", "128K", "--runtime", "sglang", "--tp", "8",
                                "--offload", "disk:1TB"))  # fmt: skip
    [disk] = row["offload"]
    assert disk["requests"] == 10**12 // page * 64 // 131_072 == 76
    assert disk["host_bytes"] == 2048 * page and disk["copies"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deepseek-v3", "--runtime", "vllm", "--offload", "disk:1TiB"], "lmcache-disk"),
        (["deepseek-v3", "--runtime", "sglang", "--offload", "lmcache-cpu:1TiB"], "LMCache is modelled under vLLM"),
        (["deepseek-v3", "--runtime", "vllm", "--offload", "cpu:1TiB,lmcache-disk:1TiB"], "one KV connector"),
        (["deepseek-v3.2", "--runtime", "vllm", "--offload", "lmcache-cpu:1TiB"], "DSA indexer"),
    ],
)
def test_tier_refusals(capsys, args, message):
    assert main(["estimate", *args, "-c", "128K", "--tp", "8"]) == 2
    assert message in capsys.readouterr().err


def test_tiers_written_through_are_not_added_up():
    """LMCache puts every chunk to every backend and SGLang backs L2 up to L3: the disk tier holds what the CPU tier
    holds, so the distinct tokens of both are the larger tier's, in plots and budgets alike."""
    from mla_mem.plots import build
    from mla_mem.tiers import distinct_across

    assert distinct_across([{"unique_tokens": 5}, {"unique_tokens": 9}]) == 9
    options = mla_mem.Deployment().with_(runtime="vllm", tp=8)
    data = build(
        ["deepseek-v3"], deployment=options, gpu="H200", gpus=8, offload="lmcache-cpu:100GiB,lmcache-disk:2TiB"
    )
    [series] = data.series
    assert series.offload == series.memory + 2**41 // (61 * 1152 * 256) * 256 * 70_272
