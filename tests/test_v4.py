"""DeepSeek-V4: caches compressed along the sequence, derived term by term from MODELS.md and RUNTIMES.md."""

from __future__ import annotations

import json
import warnings
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

import mla_mem
from mla_mem.cli import main
from mla_mem.errors import ConfigError, UsageError

DATA = Path(__file__).parent / "data" / "hf"
M = 1_048_576

# vLLM 0.33, --kv-cache-dtype fp8 (RUNTIMES.md): 584 B records, 132 B fp8 indexer keys (68 MXFP4), fp32 rings
RECORD, IDX_FP8, IDX_MXFP4 = 584, 132, 68
RING4, RING128 = 8 * 8192 + 8 * 2048, 128 * 4096
SHAPES = {"deepseek-v4-pro": (61, 30, 31), "deepseek-v4-flash": (43, 21, 20)}  # layers, csa, hca


def pad576(n: int) -> int:
    return -(-n // 576) * 576


def vllm_total(name: str, n: int, indexer: int = IDX_FP8) -> dict[str, int]:
    """Allocated bytes by hand: windows in 64-token blocks, compressed caches in 256-token pages, record pages
    padded to 576 B multiples, indexer keys paged with their csa entries in pages padded to 576 B multiples too
    (DeepseekV4IndexerCache: alignment=576 for fp8_ds_mla, vllm 0.33 models/deepseek_v4/attention.py:923;
    64 x 132 = 8,448 -> 8,640 B)."""
    layers, csa, hca = SHAPES[name]
    window_pages = -(-min(n, 128) // 64)
    csa_entries, hca_entries = n // 4, n // 128
    return {
        "window": layers * window_pages * pad576(64 * RECORD),
        "compressed_csa": csa * -(-csa_entries // 64) * pad576(64 * RECORD),
        "indexer": csa * -(-csa_entries // 64) * pad576(64 * indexer),
        "compressed_hca": hca * -(-hca_entries // 2) * pad576(2 * RECORD),
        "compressor_state_r4": csa * RING4,
        "compressor_state_r128": hca * RING128,
    }


def vllm_records(name: str, n: int, indexer: int = IDX_FP8) -> int:
    """Record bytes without page rounding: window + entries + indexer keys + rings."""
    layers, csa, hca = SHAPES[name]
    return (
        layers * min(n, 128) * RECORD
        + csa * (n // 4) * (RECORD + indexer)
        + hca * (n // 128) * RECORD
        + csa * RING4
        + hca * RING128
    )


def test_indexer_pages_are_padded_like_vllm_pads_them():
    """64 entries a 256-token page: mxfp4 keys 64 x 68 = 4,352 -> 4,608 B (576 B multiple, fp8_ds_mla); bf16 caches
    (FlashInfer) pad to 512 B: 64 x 132 = 8,448 -> 8,704 B. 131,072 tokens = 512 pages on each of Flash's 21 csa."""

    def indexer(**options):
        result = mla_mem.estimate("deepseek-v4-flash", 131072, runtime="vllm", **options)
        return next(c.total_bytes for c in result.components if c.name == "indexer")

    assert indexer(kv_dtype="fp8", indexer_dtype="mxfp4") == 21 * 512 * 4608
    assert indexer(kv_dtype="bf16") == 21 * 512 * 8704
    assert indexer(kv_dtype="fp8") == 21 * 512 * 8640


def test_marginal_bytes_per_token():
    pro = mla_mem.estimate("deepseek-v4-pro", M, runtime="vllm", kv_dtype="fp8")
    assert pro.bytes_per_token == Fraction(30 * (584 + 132), 4) + Fraction(31 * 584, 128) == Fraction("5511.4375")
    flash = mla_mem.estimate("deepseek-v4-flash", M, runtime="vllm", kv_dtype="fp8")
    assert flash.bytes_per_token == Fraction(21 * 716, 4) + Fraction(20 * 584, 128) == Fraction("3850.25")


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("n", [1024, 131072, M])
def test_totals_term_by_term(name, n):
    result = mla_mem.estimate(name, n, runtime="vllm", kv_dtype="fp8")
    expected = vllm_total(name, n)
    assert {c.name: c.total_bytes for c in result.components} == expected
    assert result.total_bytes == sum(expected.values())
    assert result.stored_bytes == vllm_records(name, n)


def test_published_claims_at_one_million_tokens():
    v32 = mla_mem.estimate("deepseek-v3.2", M, runtime="vllm", kv_dtype="fp8")
    assert v32.stored_bytes == 61 * (656 + 132) * M

    def ratio(name, indexer):
        return (
            mla_mem.estimate(name, M, runtime="vllm", kv_dtype="fp8", indexer_dtype=indexer).stored_bytes
            / v32.stored_bytes
        )

    assert ratio("deepseek-v4-pro", "fp8") == pytest.approx(0.115, abs=0.001)
    assert ratio("deepseek-v4-pro", "mxfp4") == pytest.approx(0.105, abs=0.001)
    assert ratio("deepseek-v4-flash", "fp8") == pytest.approx(0.080, abs=0.001)
    assert ratio("deepseek-v4-flash", "mxfp4") == pytest.approx(0.073, abs=0.001)
    gqa = mla_mem.estimate(mla_mem.variant("deepseek-v4-pro", "gqa:8"), M)  # bf16, 8 KV heads of 128, 61 layers
    assert gqa.bytes_per_token == 61 * 2 * 8 * 128 * 2
    pro = mla_mem.estimate("deepseek-v4-pro", M, runtime="vllm", kv_dtype="fp8")
    assert pro.stored_bytes / gqa.stored_bytes == pytest.approx(0.022, abs=0.001)
    # the records are the claim; vLLM's page padding adds a little on top
    assert pro.total_bytes / v32.total_bytes == pytest.approx(0.1167, abs=0.0005)


def test_per_request_constant_dominates_short_requests():
    short = mla_mem.estimate("deepseek-v4-pro", 1024, runtime="vllm", kv_dtype="fp8")
    assert 10_000 < short.total_bytes / 1024 < 100_000  # tens of KB per token at 1K
    long = mla_mem.estimate("deepseek-v4-pro", M, runtime="vllm", kv_dtype="fp8")
    assert long.stored_bytes / M == pytest.approx(float(long.bytes_per_token), rel=0.01)


def test_ideal_runtime_counts_records_only():
    result = mla_mem.estimate("deepseek-v4-pro", 131072)
    parts = {c.name: c.total_bytes for c in result.components}
    assert parts == {
        "window": 61 * 128 * 1024,
        "compressed_csa": 30 * (131072 // 4) * 1024,
        "indexer": 30 * (131072 // 4) * 256,
        "compressed_hca": 31 * (131072 // 128) * 1024,
    }


def test_bf16_records_and_mtp_window_layer():
    bf16 = mla_mem.estimate("deepseek-v4-pro", 4096, runtime="vllm", kv_dtype="bf16", block_size=64)
    assert {c.name: c.total_bytes for c in bf16.components}["window"] == 61 * 2 * 64 * 1024  # no 576 padding
    mtp = mla_mem.estimate("deepseek-v4-pro", 4096, runtime="vllm", mtp=True)
    assert {c.name: c.layers for c in mtp.components}["window"] == 62  # the MTP layer keeps a window only


@pytest.mark.parametrize(
    "runtime", ["trtllm", "transformers@4.57", "llama.cpp@b9838", "llama.cpp@2025", "sglang@0.5.11", "sglang@0.5.22"]
)
def test_runtimes_without_v4_rules_say_so(runtime):
    with pytest.raises(UsageError, match="DeepSeek-V4"):
        mla_mem.estimate("deepseek-v4-flash", 1024, runtime=runtime)


def test_llama_cpp_before_v4_names_the_build_that_runs_it():
    with pytest.raises(UsageError, match="b9840"):
        mla_mem.estimate("deepseek-v4-flash", 1024, runtime="llama.cpp@b9838")
    assert mla_mem.estimate("deepseek-v4-flash", 1024, runtime="llama.cpp@b9840").total_bytes > 0


def _llama_cpp_v4(n: int, layers: int, csa: int, hca: int, row: int = 1024, index_row: int = 256) -> int:
    """llama.cpp's DeepSeek-V4 caches by hand (src/llama-kv-cache-dsv4.cpp): K-only rows; every layer an iSWA window
    of pad256(min(n, 128 + 512)) cells; ratio-4 layers pad256(ceil(n / 4)) compressed cells and as many indexer keys;
    ratio-128 layers pad256(ceil(n / 128)) cells; f32 compressor states, kv and score tensors of 1,024 x 8 (csa),
    512 x 128 (hca) and 256 x 8 (lightning indexer) values."""

    def pad(cells: int) -> int:
        return -(-cells // 256) * 256

    window = layers * pad(min(n, 128 + 512)) * row
    compressed = csa * pad(-(-n // 4)) * (row + index_row) + hca * pad(-(-n // 128)) * row
    states = csa * 2 * (1024 * 8 + 256 * 8) * 4 + hca * 2 * 512 * 128 * 4
    return window + compressed + states


def test_llama_cpp_v4_by_hand():
    # DeepSeek-V4-Flash: 43 layers, 21 of ratio 4, 20 of ratio 128 (layers 0-1 window only); Pro: 61, 30, 31
    flash = mla_mem.estimate("deepseek-v4-flash", 131072, runtime="llama.cpp")
    assert flash.total_bytes == _llama_cpp_v4(131072, 43, 21, 20)
    assert flash.total_bytes == 43 * 768 * 1024 + 21 * 32768 * 1280 + 20 * 1024 * 1024 + 21 * 81920 + 20 * 524288
    assert flash.total_bytes == 947_798_016  # 903.89 MiB
    for n in (1, 255, 256, 1024, 1025, 4096, 32769, 100_000):
        assert mla_mem.estimate("deepseek-v4-flash", n, runtime="llama.cpp").total_bytes == _llama_cpp_v4(n, 43, 21, 20)
        assert mla_mem.estimate("deepseek-v4-pro", n, runtime="llama.cpp").total_bytes == _llama_cpp_v4(n, 61, 30, 31)
    # a started group of 4 tokens takes a cell: 1,025 tokens need 257 ratio-4 cells, padded to 512
    parts = {c.name: c.total_bytes for c in mla_mem.estimate("deepseek-v4-flash", 1025, runtime="llama.cpp").components}
    assert parts["compressed_csa"] == 21 * 512 * 1024 and parts["compressed_hca"] == 20 * 256 * 1024
    # q8_0 rows: 512 / 32 blocks of 34 B = 544 B, indexer 128 / 32 x 34 = 136 B
    q8 = mla_mem.estimate("deepseek-v4-flash", 131072, runtime="llama.cpp", kv_dtype="q8_0")
    assert q8.total_bytes == _llama_cpp_v4(131072, 43, 21, 20, row=544, index_row=136)
    # every cache is per sequence: a batch of 4 is 4 times one
    assert mla_mem.estimate("deepseek-v4-flash", 8192, 4, runtime="llama.cpp").total_bytes == 4 * _llama_cpp_v4(
        8192, 43, 21, 20
    )


def test_llama_cpp_v4_compressor_states_as_a_public_log_prints_them():
    """ggml-org/llama.cpp#27680 (DeepSeek-V4-Flash-0731, bf16 cache, one sequence):
    "csa ratio = 4, state = 8 x 1024, ... layers = 21, size =    1.31 MiB", "hca ratio = 128, state = 128 x 512,
    ... layers = 20, size =   10.00 MiB", "lid ratio = 4, state = 8 x 256, ... layers = 21, size =    0.33 MiB"."""
    result = mla_mem.estimate("deepseek-v4-flash", 64000, runtime="llama.cpp", kv_dtype="bf16")
    parts = {c.name: c.total_bytes for c in result.components}
    csa, lid = 21 * 2 * 8 * 1024 * 4, 21 * 2 * 8 * 256 * 4
    assert (f"{csa / 2**20:.2f}", f"{lid / 2**20:.2f}") == ("1.31", "0.33")
    assert parts["compressor_state_r4"] == csa + lid
    assert f"{parts['compressor_state_r128'] / 2**20:.2f}" == "10.00"
    # the same log's window, "182.75 MiB" = 43 layers x 4,352 cells x 1,024 B, used an n_ubatch of 4,096
    # (pad256(128 + 4096) = 4,352); mla-mem's llama.cpp window is the default n_ubatch 512's: pad256(640) = 768
    assert parts["window"] == 43 * 768 * 1024


@pytest.mark.parametrize(
    ("options", "key"),
    [({"mtp": True}, "mtp"), ({"kv_dtype": "f16", "v_dtype": "q8_0"}, "v_dtype"), ({"block_size": 64}, "block_size")],
)
def test_llama_cpp_v4_refusals_name_the_option(options, key):
    with pytest.raises(UsageError, match=key):
        mla_mem.estimate("deepseek-v4-flash", 1024, runtime="llama.cpp", **options)


def test_transformers_in_progress_state_by_hand():
    """transformers 5.24 keeps W - 1 window tokens, the tokens of the unfinished window (kv and gate; csa: two
    overlapping series for the compressor and the indexer) and an overlap slice once a window has closed
    (tests/crosscheck measures the same numbers on real caches)."""
    n = 301
    result = mla_mem.estimate("deepseek-v4-flash", n, runtime="transformers")
    parts = {c.name: c.total_bytes for c in result.components}
    bf16 = 2
    assert parts["window_kv"] == 2 * 2 * 127 * 512 * bf16  # layers 0 and 1: K and V apart
    assert parts["window"] == 41 * 127 * 512 * bf16  # csa and hca layers: shared K=V
    assert parts["compressed_csa"] == 21 * (n // 4) * 512 * bf16
    assert parts["indexer"] == 21 * (n // 4) * 128 * bf16
    assert parts["buffer_csa"] == 21 * (n % 4) * 2 * (2 * 512 + 2 * 128) * bf16
    assert parts["overlap_csa"] == 21 * 4 * (512 + 128) * (bf16 + 4)
    assert parts["compressed_hca"] == 20 * (n // 128) * 512 * bf16
    assert parts["buffer_hca"] == 20 * (n % 128) * 2 * 512 * bf16
    # before the first window closes there is no overlap state yet
    assert "overlap_csa" not in {
        c.name for c in mla_mem.estimate("deepseek-v4-flash", 3, runtime="transformers").components if c.total_bytes
    }


@pytest.mark.parametrize(
    "file,builtin",
    [
        ("deepseek-v4-pro.config.json", "deepseek-v4-pro"),
        ("deepseek-v4-flash.config.json", "deepseek-v4-flash"),
    ],
)
def test_import_matches_shipped_yaml(file, builtin):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imported = mla_mem.load_model(str(DATA / file))
    shipped = mla_mem.load_model(builtin)
    for field in (
        "layer_kinds",
        "attention",
        "compress_rates",
        "sliding_window",
        "mtp_layers",
        "indexer_layers",
    ):
        assert getattr(imported, field) == getattr(shipped, field), field
    for runtime in ("ideal", "vllm"):
        a = mla_mem.estimate(imported, 300_000, runtime=runtime)
        b = mla_mem.estimate(shipped, 300_000, runtime=runtime)
        assert (a.bytes_per_token, a.fixed_bytes, a.total_bytes) == (
            b.bytes_per_token,
            b.fixed_bytes,
            b.total_bytes,
        )


def test_layer_types_spelling_and_no_silent_pro_default(tmp_path):
    data = json.loads((DATA / "deepseek-v4-flash.config.json").read_text())
    names = {0: "sliding_attention", 4: "compressed_sparse_attention", 128: "heavily_compressed_attention"}
    new = {k: v for k, v in data.items() if k != "compress_ratios"}
    new["layer_types"] = [names[r] for r in data["compress_ratios"][:43]]
    new["compress_rates"] = {"compressed_sparse_attention": 4, "heavily_compressed_attention": 128}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(new))
    assert mla_mem.load_model(str(path)).layer_kinds == mla_mem.load_model("deepseek-v4-flash").layer_kinds
    bare = {k: v for k, v in data.items() if k != "compress_ratios"}
    path.write_text(json.dumps(bare))
    with pytest.raises(ConfigError, match="does not assume the V4-Pro default"):
        mla_mem.load_model(str(path))


def test_show_makes_the_streams_visible(capsys):
    assert main(["show", "deepseek-v4-pro", "--runtime", "vllm", "-c", "1M", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in payload["components"]] == [
        "window",
        "compressed_csa",
        "indexer",
        "compressed_hca",
        "compressor_state_r4",
        "compressor_state_r128",
    ]
    assert payload["bytes_per_token"] == 5511.4375 and payload["layers"] == 61


def test_compressed_yaml_validation(tmp_path):
    path = tmp_path / "v4.yaml"
    path.write_text(
        "name: X\nlayers: 2\nattention: {kind: compressed, heads: 8, head_dim: 512, qk_rope_head_dim: 64}\n"
        "layer_types: [csa, hca]\n"
    )
    with pytest.raises(ConfigError, match="sliding_window"):
        mla_mem.load_model(str(path))
    path.write_text(
        "name: X\nlayers: 2\nattention: {kind: compressed, heads: 8, head_dim: 512, qk_rope_head_dim: 64}\n"
        "sliding_window: 128\nlayer_types: [csa, full]\n"
    )
    with pytest.raises(ConfigError, match="expected one of window, csa, hca"):
        mla_mem.load_model(str(path))
    path.write_text(
        "name: X\nlayers: 2\nattention: {kind: gqa, heads: 8, kv_heads: 8, head_dim: 64}\ncompress_rates: {csa: 4}\n"
    )
    with pytest.raises(ConfigError, match="only applies to attention kind compressed"):
        mla_mem.load_model(str(path))


# vLLM's V4 block planning, derived by hand from the page sizes and groups (docs/capacity.md; vllm 0.29-0.33
# _get_packed_kv_cache_groups): V4-Flash fp8 groups = the 256-token group (21 csa pages 37,440 B, 20 hca pages
# 1,728 B, 21 indexer pages 64 x 132 = 8,448 -> 8,640 B), two window groups (22 and 21 layers, 64 x 584 -> 37,440 B
# pages), the ratio-4 states and the ratio-128 states. Bytes per block = the widest group.
FLASH_BLOCK = 21 * 37_440 + 20 * 1_728 + 21 * 8_640
PRO_BLOCK = 30 * 37_440 + 31 * 1_728 + 30 * 8_640


def flash_pages(n: int, in_flight: int) -> int:
    """Pages one request of n tokens takes: cdiv(n, 256) + 2 window groups + ratio-4 and ratio-128 state groups."""
    window = -(-min(127 + in_flight, n) // 64) + 1
    return -(-n // 256) + 2 * window + (-(-min(7 + in_flight, n) // 4) + 1) + (-(-min(127 + in_flight, n) // 8) + 1)


def engine(capsys, *args: str) -> dict:
    code = main(["fit", *args, "--format", "json"])
    payload = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    return payload


@pytest.mark.parametrize(("version", "tokens"), [("0.29", 8192), ("0.33", 8192), ("0.33", 16384)])
def test_vllm_029_plan_by_hand(capsys, version, tokens):
    assert FLASH_BLOCK == 1_002_240 and PRO_BLOCK == 1_435_968
    memory = 100 * 2**30
    out = engine(capsys, "deepseek-v4-flash", "--gpu", "B200", "--gpus", "1", "-c", "1M", "--runtime",
                 f"vllm@{version}", "--kv-dtype", "fp8", "--kv-cache-memory", "100GiB", "--max-batched-tokens",
                 str(tokens))  # fmt: skip
    blocks = memory // FLASH_BLOCK
    pages = flash_pages(M, 2 * tokens)  # two batches in flight (async scheduling at pp 1)
    assert out["num_blocks"] == blocks == 107_134
    assert pages == {8192: 10_778, 16384: 17_434}[tokens]
    tokens_logged = int(Fraction(blocks, pages) * M)
    assert out["token_capacity"] == tokens_logged
    assert out["engine_lines"][-1] == (f"GPU KV cache size: {tokens_logged:,} tokens, Maximum concurrency for "
                                       f"1,048,576 tokens per request: {blocks / pages:.2f}x")  # fmt: skip


def test_vllm_029_keeps_a_null_block_back_and_says_how_long_a_request_fits(capsys):
    out = engine(capsys, "deepseek-v4-flash", "--gpu", "B200", "--gpus", "1", "-c", "1M", "--runtime", "vllm@0.33",
                 "--kv-dtype", "fp8", "--kv-cache-memory", "5GiB", "--max-batched-tokens", "8192")  # fmt: skip
    needed = FLASH_BLOCK * flash_pages(M, 16384)
    check = 5 * 2**30 - FLASH_BLOCK
    longest = max(n for n in range(12_000, 14_000) if FLASH_BLOCK * flash_pages(n, 16384) <= check)
    assert longest == 13_044 and not out["fits"]
    assert f"({round(needed / 2**30, 2)} GiB KV cache is needed" in out["engine_lines"][-1]
    assert f"available KV cache memory ({round(check / 2**30, 2)} GiB)" in out["engine_lines"][-1]
    assert "estimated maximum model length is 13044." in out["engine_lines"][-1]


def test_vllm_025_reproduces_recipes_762_tp8(capsys):
    """vLLM 0.25, 8 x B200, TP8, fp8, block 256, M 8192 (vllm#51454's settings): 20.43x at 1M from about 139.76 GiB
    per GPU. 0.24-0.26 pad window and state pages to the next full page and size blocks by the most slots of each
    page size: 22 x 37,440 + 20 x 1,728 + 21 x 8,640; concurrency divides by cdiv(sum of pages x group bytes, full
    group bytes) with one batch in flight."""
    block = 22 * 37_440 + 20 * 1_728 + 21 * 8_640
    assert block == 1_039_680
    groups = [(4096, FLASH_BLOCK), (131, 22 * 37_440), (131, 21 * 37_440), (2051, 21 * (37_440 + 8_640)),
              (1041, 20 * 37_440)]  # fmt: skip
    per_request = -(-sum(p * b for p, b in groups) // FLASH_BLOCK)
    assert per_request == 7065
    out = engine(capsys, "deepseek-v4-flash", "--gpu", "B200", "--gpus", "8", "--tp", "8", "-c", "1M", "--runtime",
                 "vllm@0.25", "--kv-dtype", "fp8", "--kv-cache-memory", "139.76GiB", "--max-batched-tokens", "8192")  # fmt: skip
    blocks = int(Decimal("139.76") * 2**30) // block
    assert out["num_blocks"] == blocks
    assert out["engine_lines"][1:] == [f"GPU KV cache size: {int(Fraction(blocks, per_request) * M):,} tokens",
                                       "Maximum concurrency for 1,048,576 tokens per request: 20.43x"]  # fmt: skip
    assert int(Fraction(blocks, per_request) * M) == 21_422_415  # "21.4M" in the thread


def test_vllm_default_batched_tokens_follow_the_gpu(capsys):
    """From 0.28 a GPU of 160 GiB or more (CUDA total) batches 16,384 tokens by default; H200 stays at 8,192."""
    b200 = engine(capsys, "deepseek-v4-flash", "--gpu", "B200", "--gpus", "8", "--tp", "1", "--dp", "8", "--ep", "-c",
                  "1M", "--runtime", "vllm")  # fmt: skip
    assert b200["around"]["max_num_batched_tokens"] == 16384
    assert any("max_num_batched_tokens 16,384" in n for n in b200["notes"])
    blocks = b200["available_bytes"] // FLASH_BLOCK
    assert b200["num_blocks"] == blocks
    assert b200["engine_lines"][-1].endswith(f"{blocks / flash_pages(M, 2 * 16384):.2f}x")
    assert b200["fits"] and b200["max_concurrency"] == int(Fraction(blocks, flash_pages(M, 32768))) * 8
    h200 = engine(capsys, "deepseek-v4-flash", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "1M", "--runtime",
                  "vllm")  # fmt: skip
    assert h200["around"]["max_num_batched_tokens"] == 8192


def test_vllm_refuses_what_it_refuses_for_v4():
    with pytest.raises(UsageError, match="nvfp4_ds_mla is DeepSeek-V4.1's compressed-cache layout"):
        mla_mem.estimate("deepseek-v4-flash", 4096, runtime="vllm@0.33", kv_dtype="nvfp4_ds_mla")
    with pytest.raises(UsageError, match="vllm 0.29 stops on --kv-cache-dtype auto"):
        mla_mem.estimate("deepseek-v4-flash", 4096, runtime="vllm@0.29")
    assert mla_mem.estimate("deepseek-v4-flash", 4096, runtime="vllm@0.30").kv_dtype == "fp8_ds_mla"


# --- SGLang 0.5.23 (srt/mem_cache/deepseek_v4_memory_pool.py, model_executor/pool_configurator.py) ----------------
# A page of 256 tokens; entries of 584 B (448 fp8 + 64 bf16 + 8 B scales) stored as data rows then scale rows and
# padded to 576 B multiples: a window page of 256 entries = ceil(256 x 584 / 576) x 576 = 149,760 B, a ratio-4 page of
# 64 entries 37,440 B, a ratio-128 page of 2 entries 1,728 B; indexer keys 64 x 132 = 8,448 B a page.
SGL_FULL_PAGE = 21 * 37_440 + 21 * 8_448 + 20 * 1_728  # V4-Flash, per 256 tokens of the sequence: 998,208 B
SGL_WINDOW_PAGE = 43 * 149_760 + 21 * 8 * (8_192 + 2_048)  # every layer's page + the ratio-4 rows beside it
SGL_SLOT_RINGS = 20 * 128 * 4_096  # the ratio-128 ring of one request slot


def test_sglang_v4_request_by_hand():
    assert (SGL_FULL_PAGE, SGL_WINDOW_PAGE) == (998_208, 8_160_000)
    for n, full_pages, window_pages in ((1, 1, 1), (256, 1, 1), (257, 2, 2), (600, 3, 3), (131_072, 512, 3)):
        # window pages at SGLang's request cap: 128 window + 128 eviction interval + 2 pages = 768 tokens
        result = mla_mem.estimate("deepseek-v4-flash", n, runtime="sglang")
        assert result.total_bytes == full_pages * SGL_FULL_PAGE + window_pages * SGL_WINDOW_PAGE + SGL_SLOT_RINGS, n
    assert mla_mem.estimate("deepseek-v4-flash", 131_072, runtime="sglang").total_bytes == 546_048_256
    # replicated on every tp rank: one shared key-value head
    assert (
        mla_mem.estimate("deepseek-v4-flash", 4096, runtime="sglang", tp=8).total_bytes
        == mla_mem.estimate("deepseek-v4-flash", 4096, runtime="sglang").total_bytes
    )


def _sglang_v4_tokens(available: int, per_full_quarters: int, fixed: int, spec_layers: tuple[int, int] = (1, 1)) -> int:
    """full tokens = int((available - fixed) / bytes per full token) floored to 256-token pages, in exact integers:
    the bytes per full token given in quarters of a byte, times target+draft / target layers with speculation."""
    top, bottom = spec_layers
    return (available - fixed) * 4 * bottom // (per_full_quarters * top) // 256 * 256


def test_sglang_v4_pool_sizing_by_hand():
    # bytes per full token = 0.1 x (585 x 43 + 8 / 256 x 10,240 x 21) + 21 x (585 + 132) / 4 + 20 x 864 / 128
    #                      = 0.1 x 31,875 + 3,764.25 + 135 = 7,086.75 = 28,347 / 4
    fixed = 33_152 * 4_096 * 20  # ceil128(257 x 128 + 128 + 1) ring rows of 2 x 512 fp32 on 20 layers
    available = 100 * 2**30
    result = mla_mem.fit("deepseek-v4-flash", runtime="sglang", kv_cache_memory=available, context=131_072)
    full = _sglang_v4_tokens(available, 28_347, fixed)
    assert result.token_capacity == full == 14_768_128  # 104,658,370,560 x 4 / 28,347 = 14,768,175.9 -> pages
    assert (
        "bytes_per_full_token=7086.75" in result.engine_lines[1]
        and "c128_state_fixed=2.53 GB" in result.engine_lines[1]
    )
    swa = full // 10 // 256 * 256
    assert result.engine_lines[2] == (
        f"DSV4 pool sizes: full={full}, swa={swa}, c4={full // 4}, c128={full // 128}, c4_state={swa // 256 * 8}, "
        "c128_state=0"
    )
    # requests of 131,072 tokens: 512 pages each out of full / 256 pages
    assert result.concurrency_per_gpu_group == Fraction(full // 256, 512) and result.max_concurrency == 112
    # MTP: rings of 16 and 256 rows, bytes per full token x 44 / 43 (the draft worker's layer)
    mtp = mla_mem.fit("deepseek-v4-flash", runtime="sglang", kv_cache_memory=available, mtp=True)
    # 0.1 x (585 x 43 + 16 / 256 x 10,240 x 21) + 3,764.25 + 135 = 7,758.75 = 31,035 / 4
    fixed_mtp = 66_176 * 4_096 * 20  # ceil128(257 x 256 + 256 + 1)
    assert mtp.token_capacity == _sglang_v4_tokens(available, 31_035, fixed_mtp, (44, 43))
    assert "bytes_per_full_token=7939.19" in mtp.engine_lines[1]
    # data-parallel attention over 8 ranks: 256 // 8 = 32 request slots per rank
    dp = mla_mem.fit("deepseek-v4-flash", runtime="sglang", kv_cache_memory=available, tp=8, dp=8, dp_attention=True)
    assert dp.token_capacity == _sglang_v4_tokens(available, 28_347, 4_480 * 4_096 * 20)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"kv_dtype": "bf16"}, "fp8"), ({"block_size": 64}, "page_size 256"), ({"runtime": "sglang@0.5.11"}, "0.5.12")],
)
def test_sglang_v4_refusals(options, message):
    with pytest.raises(UsageError, match=message):
        mla_mem.estimate("deepseek-v4-flash", 1024, **{"runtime": "sglang", **options})


# --- DeepSeek-V4.1 (deepseek_v41): caches shared across layers, ideal runtime only -------------------------------


def test_v41_flash_by_hand():
    """40 layers, each a 128-token window; compressed caches only on the kv sources 2, 8, 14 (ratio 2: one entry per
    2 tokens) and 20 (ratio 1: one per token), with one 128-wide index key per entry; the other layers read them."""
    for n in (1, 2, 127, 129, 4097, 131_072):
        entries = 3 * (n // 2) + n
        expected = 40 * min(n, 128) * 512 * 2 + entries * (512 + 128) * 2
        assert mla_mem.estimate("deepseek-v4.1-flash", n).total_bytes == expected, n
    # the three DSpark draft stages keep a window each
    mtp = mla_mem.estimate("deepseek-v4.1-flash", 4096, mtp=True)
    assert mtp.total_bytes - mla_mem.estimate("deepseek-v4.1-flash", 4096).total_bytes == 3 * 128 * 512 * 2
    fp8 = mla_mem.estimate("deepseek-v4.1-flash", 4096, kv_dtype="fp8")
    assert fp8.total_bytes == 40 * 128 * 512 + (3 * 2048 + 4096) * (512 + 128)


def test_v41_config_imports_to_the_builtin():
    from pathlib import Path

    config = Path(__file__).parent / "data" / "hf" / "deepseek-v4.1-flash.config.TRIMMED.json"
    imported = mla_mem.load_model(str(config))
    builtin = mla_mem.load_model("deepseek-v4.1-flash")
    assert imported.layer_kinds == builtin.layer_kinds and imported.mtp_layers == 3
    for n in (1, 1000, 1 << 20):
        for mtp in (False, True):
            assert (mla_mem.estimate(imported, n, mtp=mtp).total_bytes
                    == mla_mem.estimate(builtin, n, mtp=mtp).total_bytes)  # fmt: skip


@pytest.mark.parametrize(
    ("runtime", "says"),
    [
        ("llama.cpp", "llama.cpp has no DeepSeek-V4.1 architecture"),
        ("transformers", "transformers has no deepseek_v41 model"),
    ],
)
def test_v41_engines_refuse_naming_the_ratio_and_what_the_engine_does(runtime, says):
    with pytest.raises(UsageError, match=f"DeepSeek-V4.1's compress_ratio 2 .*: {says}.*; use runtime ideal"):
        mla_mem.estimate("deepseek-v4.1-flash", 1024, runtime=runtime)


# DeepSeek-V4.1-Flash on vLLM 0.30-0.33 (models/deepseek_v41/, read from the wheels): 40 layers, each a window cache
# of 32-token blocks (128 tokens); kv sources 2, 8, 14 (ratio 2) and 20 (ratio 1) with compressed entries and 132 B
# fp8 index keys in pages of block_size tokens; the ratio-2 sources a ring of 8 fp32 rows of 2 x 512 per request.
# Compute capability 10.x: 528 B MXFP8 window records, mega attention's NVFP4 288 B compressed entries, pages padded to
# 512 B, blocks of 128; 9.x: 584 B records throughout (FlashMLA), pages padded to 576 B, blocks of 64.
V41_SOURCES = {2: 3, 1: 1}  # ratio -> kv-source layers


def pad(n: int, grain: int) -> int:
    return -(-n // grain) * grain


def v41_vllm_total(n: int, window: int, compressed: int, grain: int, block: int, index: int = 132) -> dict[str, int]:
    out = {"window": 40 * -(-min(n, 128) // 32) * pad(32 * window, grain)}
    for ratio, layers in V41_SOURCES.items():
        name = f"source_r{ratio}"
        pages = -(-(n // ratio) // (block // ratio))
        out[f"compressed_{name}"] = layers * pages * pad(block // ratio * compressed, grain)
        out[f"{name}_indexer"] = layers * pages * pad(block // ratio * index, grain)
    out["compressor_state_r2"] = 3 * 8 * 2 * 512 * 4
    return out


@pytest.mark.parametrize("n", [1000, 131072, M])
def test_v41_on_vllm_sm100_mega_attention_term_by_term(n):
    result = mla_mem.estimate("deepseek-v4.1-flash", n, runtime="vllm", compute_capability="10.0")
    expected = v41_vllm_total(n, 528, 288, 512, 128)
    assert {c.name: c.total_bytes for c in result.components} == expected
    assert result.total_bytes == sum(expected.values())
    assert "nvfp4_ds_mla" in result.kv_dtype and any("mega attention" in note for note in result.notes)


def test_v41_on_vllm_by_hand_at_128k():
    """128K on compute capability 10.0: 40 x 4 x 16,896 (window) + 3 x 1,024 x (18,432 + 8,704) (ratio-2 pages of 64
    entries) + 1,024 x (36,864 + 16,896) (ratio 1, 128 entries) + 3 x 32,768 (rings); on 9.0, blocks of 64 and
    576 B pages: 40 x 4 x 19,008 + 3 x 2,048 x (19,008 + 4,608) + 2,048 x (37,440 + 8,640) + 98,304."""
    sm100 = mla_mem.estimate("deepseek-v4.1-flash", 131072, runtime="vllm", compute_capability="10.0")
    assert sm100.total_bytes == 2_703_360 + 56_623_104 + 26_738_688 + 37_748_736 + 17_301_504 + 98_304 == 141_213_696
    sm90 = mla_mem.estimate("deepseek-v4.1-flash", 131072, runtime="vllm", compute_capability="9.0")
    assert sm90.total_bytes == 3_041_280 + 116_785_152 + 28_311_552 + 76_677_120 + 17_694_720 + 98_304 == 242_608_128
    fp8 = mla_mem.estimate(
        "deepseek-v4.1-flash", 131072, runtime="vllm", compute_capability="10.0", kv_dtype="fp8_ds_mla"
    )
    assert fp8.total_bytes == sum(v41_vllm_total(131072, 528, 528, 512, 128).values())
    assert {c.name: c.total_bytes for c in sm90.components} == v41_vllm_total(131072, 584, 584, 576, 64)


def test_v41_on_vllm_mega_attention_only_where_its_heads_per_group_hold():
    """Mega attention wants 8 heads per wo_a group: 64 heads in 8 groups hold at tp 1-8, not at 16 (FlashMLA, 528 B
    compressed entries); 0.30 has no mega attention (FlashMLA, 528 B)."""
    tp16 = mla_mem.estimate("deepseek-v4.1-flash", 4096, runtime="vllm", compute_capability="10.0", tp=16)
    assert "528 B compressed" in tp16.kv_dtype and not any("mega attention, the" in note for note in tp16.notes)
    old = mla_mem.estimate("deepseek-v4.1-flash", 4096, runtime="vllm@0.30", compute_capability="10.0")
    assert "fp8_ds_mla" in old.kv_dtype and "528 B compressed" in old.kv_dtype


def test_v41_capacity_on_vllm_by_hand(capsys):
    """B200 (10.0), 100 GiB, max_model_len 1M, max_num_batched_tokens 16,384 (B200 default, 2 x in flight):
    groups: the full caches (3 x 18,432 + 3 x 8,704 + 36,864 + 16,896 = 135,168 B), the 40 windows split into 5 groups
    of 8 (135,168 // 16,896; nothing repeats, so they are a state bucket), the 3 rings one group; bytes per block
    round_up(135,168, lcm(528, 288) = 3,168) = 136,224 (0.33; 135,168 in 0.32); per request 8,192 full pages +
    5 x (cdiv(127 + 32,768, 32) + 1 = 1,029) + 1 ring = 13,338 pages; blocks = 100 GiB // 136,224 = 788,217;
    tokens = int(788,217 / 13,338 x 1,048,576). vLLM 0.33's and 0.32's own planner code, run on these specs, print
    the same lines."""
    blocks = 100 * 2**30 // 136_224
    assert blocks == 788_217
    tokens = int(Fraction(blocks, 13_338) * M)
    assert main(["fit", "deepseek-v4.1-flash", "--runtime", "vllm", "--gpu", "B200", "--gpus", "1", "-c", "1M",
                 "--kv-cache-memory", "100GiB", "--format", "json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["token_capacity"] == tokens == 61_966_218 and out["num_blocks"] == blocks
    assert any(f"GPU KV cache size: {tokens:,} tokens" in line and "59.10x" in line for line in out["engine_lines"])
    assert main(["fit", "deepseek-v4.1-flash", "--runtime", "vllm@0.32", "--gpu", "B200", "--gpus", "1", "-c", "1M",
                 "--kv-cache-memory", "100GiB", "--format", "json"]) == 0  # fmt: skip
    old = json.loads(capsys.readouterr().out)
    assert old["num_blocks"] == 100 * 2**30 // 135_168 and old["token_capacity"] == int(Fraction(794_375, 13_338) * M)


def test_v41_dspark_drafts_on_vllm_by_hand(capsys):
    """DSpark's 3 draft stages (layers 40-42, compress ratio 0) each register one window spec like the target's and
    nothing else; they join the window groups: 43 windows of 16,896 B pages, 8 to a group (135,168 // 16,896), make
    6 window groups where 40 made 5. Per request at 1M: 8,192 full pages + 6 x 1,029 window pages + 1 ring = 14,367
    pages of 136,224 B (0.33); num_speculative_tokens 5 keeps the rings at 8 rows. vLLM 0.33's own planner, run on
    the same specs, prints 57,528,045 tokens and 54.86x."""
    blocks = 100 * 2**30 // 136_224
    tokens = int(Fraction(blocks, 8_192 + 6 * 1_029 + 1) * M)
    assert tokens == 57_528_045
    assert main(["fit", "deepseek-v4.1-flash", "--runtime", "vllm", "--gpu", "B200", "--gpus", "1", "-c", "1M",
                 "--kv-cache-memory", "100GiB", "--spec", "dspark", "--format", "json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["token_capacity"] == tokens and any("54.86x" in line for line in out["engine_lines"])
    assert any("num_speculative_tokens 5" in note for note in out["notes"])
    # per request: the 3 draft windows hold what a target window holds (4 blocks of 32 x 528 B at 128K)
    base = mla_mem.estimate("deepseek-v4.1-flash", 131_072, runtime="vllm", compute_capability="10.0")
    draft = mla_mem.estimate("deepseek-v4.1-flash", 131_072, runtime="vllm", compute_capability="10.0", spec="dspark")
    assert draft.total_bytes - base.total_bytes == 3 * 4 * 32 * 528


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({}, "compute.capability: vllm 0.33: DeepSeek-V4.1.s cache depends on the GPU"),
        ({"compute_capability": "8.0"}, "run on compute capability 9.x .* not 8.0"),
        ({"compute_capability": "9.0", "kv_dtype": "nvfp4_ds_mla"}, "nvfp4_ds_mla needs the V4.1 records"),
        ({"compute_capability": "10.0", "kv_dtype": "bf16"}, "packed layouts take auto, fp8, fp8_ds_mla or nvfp4"),
        ({"compute_capability": "10.0", "mtp": True}, "rejects mtp for it\\); use spec dspark"),
        ({"compute_capability": "10.0", "spec": "eagle3", "draft": "llama-3.1-8b"}, "use spec dspark"),
        ({"compute_capability": "10.0", "block_size": 256}, "blocks of 128 on compute capability 10.x"),
        ({"compute_capability": "10.0", "indexer_dtype": "bf16"}, "fp8 \\(132 B\\) or mxfp4 \\(68 B\\)"),
        (
            {"compute_capability": "10.0", "runtime": "vllm@0.29"},
            "vllm 0.29 does not serve DeepSeek-V4.1; 0.30 and later",
        ),
        ({"compute_capability": "10.0", "runtime": "vllm@0.30", "kv_dtype": "nvfp4_ds_mla"}, "0.31 and later"),
    ],
)
def test_v41_on_vllm_refuses_what_it_cannot_know(options, says):
    options = {"runtime": "vllm", **options}
    with pytest.raises(UsageError, match=says):
        mla_mem.estimate("deepseek-v4.1-flash", 4096, **options)


# SGLang 0.5.23 (V4.1 runs as DeepseekV4ForCausalLM: the V4 pools, 256-token pages): every trunk layer window pages
# up to the request cap (768 tokens = 3 pages); kv sources one compressed page per 256 tokens (128 ratio-2 entries,
# 256 ratio-1) and fp4 index keys (68 B); ratio-2 sources a 2-row ring of 4,096 B per request. flashmla_mega (10.x,
# attention tp 1): V41 windows 528 B (pages of 135,168 B) and V41_FP4 entries 288 B; otherwise the V4 layout (584 B
# records, pages padded to 576 B multiples: 149,760 / 74,880 B).
def v41_sglang_total(n: int, window_page: int, r2_page: int, r1_page: int) -> dict[str, int]:
    pages = -(-n // 256)
    return {
        "window": 40 * 3 * window_page,
        "compressed_source_r2": 3 * pages * r2_page, "source_r2_indexer": 3 * pages * 128 * 68,
        "compressed_source_r1": pages * r1_page, "source_r1_indexer": pages * 256 * 68,
        "compressor_state_r2": 3 * 2 * 4096,
    }  # fmt: skip


@pytest.mark.parametrize("n", [1000, 131072, M])
def test_v41_on_sglang_term_by_term(n):
    mega = mla_mem.estimate("deepseek-v4.1-flash", n, runtime="sglang", compute_capability="10.0", tp=8, dp=8,
                            dp_attention=True)  # fmt: skip
    assert {c.name: c.total_bytes for c in mega.components} == v41_sglang_total(n, 135_168, 36_864, 73_728)
    v4 = mla_mem.estimate("deepseek-v4.1-flash", n, runtime="sglang", compute_capability="9.0")
    assert {c.name: c.total_bytes for c in v4.components} == v41_sglang_total(n, 149_760, 74_880, 149_760)
    tp8 = mla_mem.estimate("deepseek-v4.1-flash", n, runtime="sglang", compute_capability="10.0", tp=8)
    assert tp8.total_bytes == v4.total_bytes  # attention tp 8: flashmla, the V4 layout


def test_v41_on_sglang_by_hand_at_128k():
    """40 x 3 x 135,168 + 3 x 512 x (36,864 + 8,704) + 512 x (73,728 + 17,408) + 3 x 8,192; bytes per token
    3 x (288 + 68) / 2 + (288 + 68) = 890, SGLang's own bytes_per_full_token for this layout."""
    mega = mla_mem.estimate("deepseek-v4.1-flash", 131072, runtime="sglang", compute_capability="10.0")
    assert mega.total_bytes == 16_220_160 + 56_623_104 + 13_369_344 + 37_748_736 + 8_912_896 + 24_576 == 132_898_816
    assert mega.bytes_per_token == 890


def _v41_padding(full, sources, page_token, index_page):
    """One reserved page of 256 compressed tokens per kv source, plus its index slots rounded up to index pages,
    less the index slots the full tokens pay for: pool_configurator.py:1406-1435, per ratio."""
    total = 0
    for ratio, layers in sources.items():
        slots = -(-((full + 256) // ratio + index_page) // index_page) * index_page
        total += layers * (256 * page_token + (slots - full // ratio) * 68)
    return total


def test_v41_pool_sizing_on_sglang_by_hand():
    """DSV4PoolConfigurator in cap mode (SGLang 0.5.23), B200 layout (V41 528 B windows, V41_FP4 288 B entries),
    --kv-cache-memory 100 GiB, chunked prefill 8,192, 256 requests, radix cache on:
    window pool = 256 x (128 + 128 + 256 + 256) + 2 x 8,192 + 256 + 4 x 256 tails x (128 + 256) = 606,464 tokens
    at 40 x 528 = 21,120 B; ratio-2 rings ceil2(257 x 2 + 2 + 1) = 518 rows x 4,096 B x 3 layers = 6,365,184 B;
    bytes per full token 3 x (288 + 68) / 2 + (288 + 68) = 890; the rest / 890 floored to pages, then pages given
    back while the reserved pages and index rounding do not fit. SGLang's own configurator code, run on these
    inputs, gives the same 106,245,888."""
    available = 100 * 2**30
    swa = 256 * 768 + 2 * 8192 + 256 + 1024 * 384
    rest = available - 518 * 4096 * 3 - swa * 21_120
    assert swa == 606_464 and rest == 94_559_297_536
    full = rest // 890 // 256 * 256
    while full * 890 + _v41_padding(full, {1: 1, 2: 3}, 288, 128) > rest:
        full -= 256
    assert full == 106_245_888  # two pages given back
    result = mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", compute_capability="10.0", kv_cache_memory=available,
                         max_batched_tokens=8192, context=131_072)  # fmt: skip
    assert result.token_capacity == full and result.capacity_kind == "engine"
    assert result.engine_lines[0] == (
        f"DSV4 SWA sizing: mode=cap, swa_tokens={swa}, request_cap+headroom={swa}, prefix_tails=1024"
    )
    assert "bytes_per_full_token=890.00" in result.engine_lines[1] and "swa_fixed=11.93 GB" in result.engine_lines[1]
    assert result.engine_lines[2].startswith(f"DSV4 pool sizes: full={full}, swa={swa}, c4={full // 4}")
    assert result.concurrency_per_gpu_group == 256  # min(415,023 pages / 512 a request, 256 running)


def test_v41_pool_sizing_with_fewer_requests_and_no_radix_cache_by_hand():
    """--max-running-requests 64 and --no-prefix-caching (SGLang's --disable-radix-cache: no prefix tails), the rest
    as above: window pool 64 x 768 + 2 x 8,192 + 256 = 65,792 tokens (257 pages exactly); ratio-2 rings
    ceil2(65 x 2 + 2 + 1) = 134 rows x 4,096 B x 3 = 1,646,592 B. 105,983,008,768 B / 890 floors to 465,164 pages;
    two are given back for the reserved pages and index rounding. SGLang's configurator code gives the same on 120
    inputs of requests and radix cache (research notes, compare_mrr.py)."""
    available = 100 * 2**30
    swa = 64 * 768 + 2 * 8192 + 256
    rest = available - 134 * 4096 * 3 - swa * 21_120
    assert swa == 65_792 and rest == 105_983_008_768
    full = rest // 890 // 256 * 256
    assert full == 465_164 * 256
    while full * 890 + _v41_padding(full, {1: 1, 2: 3}, 288, 128) > rest:
        full -= 256
    assert full == 119_081_472 == 465_162 * 256
    result = mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", compute_capability="10.0", kv_cache_memory=available,
                         max_batched_tokens=8192, max_running_requests=64, prefix_caching=False)  # fmt: skip
    assert result.token_capacity == full
    assert (
        result.engine_lines[0]
        == f"DSV4 SWA sizing: mode=cap, swa_tokens={swa}, request_cap+headroom={swa}, prefix_tails=0"
    )
    assert result.engine_lines[3] == f"max_total_num_tokens={full}, ..., max_running_requests=64, ..."
    assert any("--max-running-requests 64" in n for n in result.notes)
    assert any("--disable-radix-cache" in n for n in result.notes)
    # per attention-dp rank: 64 over 8 ranks is 8 requests a rank
    dp8 = mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", compute_capability="10.0", kv_cache_memory=available,
                      max_batched_tokens=8192, max_running_requests=64, tp=8, dp=8, dp_attention=True)  # fmt: skip
    assert dp8.engine_lines[0].startswith(
        f"DSV4 SWA sizing: mode=cap, swa_tokens={8 * 768 + 2 * 1024 + 256 + 32 * 384},"
    )


def test_sglang_v4_longest_context_is_the_full_pool_shared_by_the_batch():
    """SGLang sizes DeepSeek-V4's full pool after the window share and rings: a request of n tokens takes n / 256 of
    its pages whatever its own bytes. 20 GiB on B200: 2,647,040 tokens (10,340 pages), so the longest context is
    2,647,040 at batch 1 and 2,585 pages = 661,760 tokens at batch 4 (its bytes alone would allow about twice as
    much). A V4.1 pool that leaves nothing (4 GiB, SGLang refuses to start) holds no context at all."""
    v4 = mla_mem.fit("deepseek-v4-flash", runtime="sglang", gpu="B200", kv_cache_memory=20 * 2**30)
    assert v4.token_capacity == 2_647_040 == 10_340 * 256 and v4.longest_context == 2_647_040
    batch4 = mla_mem.fit("deepseek-v4-flash", runtime="sglang", gpu="B200", kv_cache_memory=20 * 2**30,
                         context=131_072, batch=4)  # fmt: skip
    assert batch4.longest_context == 2_585 * 256 == 661_760
    assert any("the engine's full pool of 2,647,040 tokens" in n for n in batch4.notes)
    none = mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", gpu="B200", kv_cache_memory=4 * 2**30)
    assert none.token_capacity == 0 and none.longest_context == 0 and not none.fits


def test_max_running_requests_is_said_to_be_ignored_where_it_sizes_nothing():
    result = mla_mem.estimate("deepseek-v3", 131_072, runtime="vllm", max_running_requests=64)
    assert any("--max-running-requests sizes SGLang's DeepSeek-V4/V4.1 pools only; vllm ignores it" in n
               for n in result.notes)  # fmt: skip
    with pytest.raises(mla_mem.MlaMemError, match="max_running_requests"):
        mla_mem.estimate("deepseek-v4.1-flash", 1024, runtime="sglang", max_running_requests=0)


def test_v41_pool_sizing_on_sglang_follows_the_gpu_and_the_layout():
    """H200 (9.0, nvidia-smi 143,771 MiB: chunked prefill 8,192): the V4 layout, 585 B per window token (pages
    of 149,760 B) and 3 x (585 + 68) / 2 + 653 = 1,632.5 B per full token, index pages of 64. B200 with data-parallel
    attention over 8 ranks (183,359 MiB: 16,384, so 2,048 a rank; 32 requests a rank): 32 x 768 + 2 x 2,048 + 256 +
    128 x 384 = 78,080 window tokens, rings ceil2(33 x 2 + 3) x 4,096 x 3 = 860,160 B."""
    available = 100 * 2**30
    h200 = mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", gpu="H200", kv_cache_memory=available)
    rest = available - 518 * 4096 * 3 - 606_464 * 23_400
    full = int(rest * 2 // 3265) // 256 * 256
    while full * 3265 / 2 + _v41_padding(full, {1: 1, 2: 3}, 585, 64) > rest:
        full -= 256
    assert h200.token_capacity == full == 57_075_456
    dp = mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", gpu="B200", tp=8, dp=8, dp_attention=True,
                     kv_cache_memory=available)  # fmt: skip
    rest = available - 70 * 4096 * 3 - 78_080 * 21_120
    full = rest // 890 // 256 * 256
    while full * 890 + _v41_padding(full, {1: 1, 2: 3}, 288, 128) > rest:
        full -= 256
    assert dp.token_capacity == full == 118_790_656
    assert "swa_tokens=78080" in dp.engine_lines[0] and "max_running_requests=32" in dp.engine_lines[3]


def test_v41_dspark_on_sglang_by_hand():
    """SGLang 0.5.23 with DSpark (6 draft tokens: dspark_block_size 5 + 1): a request's window budget is 128 + 128 x 6
    + 256 + 2 x 6 = 1,164 tokens (the overlap scheduler keeps two decodes' drafts), the ratio-2 rings grow to 8 rows,
    and the bytes per token are x 41 / 40 for the draft worker (one layer, whatever its stages). 100 GiB, chunk
    8,192: window pool 1,164 x 256 + 2 x 8,192 + 256 + 1,024 x 384 = 707,840 tokens at 21,120 x 41 / 40 = 21,648 B,
    rings ceil2(257 x 8 + 9) = 2,066 rows x 4,096 x 3, 890 x 41 / 40 = 912.25 B per full token. SGLang's own
    configurator code, run with the same inputs, gives 100,877,056."""
    available = 100 * 2**30
    swa = 1164 * 256 + 2 * 8192 + 256 + 1024 * 384
    rest = available - 2066 * 4096 * 3 - swa * 21_648
    full = int(rest / 912.25) // 256 * 256
    while full * 912.25 + _v41_padding(full, {1: 1, 2: 3}, 288, 128) > rest:
        full -= 256
    assert swa == 707_840 and full == 100_877_056
    result = mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", compute_capability="10.0", kv_cache_memory=available,
                         max_batched_tokens=8192, spec="dspark")  # fmt: skip
    assert result.token_capacity == full and "bytes_per_full_token=912.25" in result.engine_lines[1]
    assert any("for 256 requests (1,164 tokens each" in note for note in result.notes)  # the drafts' budget, not 768
    # a request at 128K: 43 windows (the 3 draft stages' too) of ceil(1,164 / 256) = 5 pages, rings of 8 rows
    base = mla_mem.estimate("deepseek-v4.1-flash", 131_072, runtime="sglang", compute_capability="10.0")
    draft = mla_mem.estimate("deepseek-v4.1-flash", 131_072, runtime="sglang", compute_capability="10.0", spec="dspark")
    assert draft.total_bytes - base.total_bytes == 43 * 5 * 135_168 - 40 * 3 * 135_168 + 3 * (8 - 2) * 4096
    with pytest.raises(UsageError, match="drafts only with DSpark"):
        mla_mem.estimate("deepseek-v4.1-flash", 4096, runtime="sglang", compute_capability="10.0", mtp=True)


def test_v41_pool_sizing_on_sglang_refusals_and_too_little_memory():
    with pytest.raises(UsageError, match="max.batched.tokens: sglang: DeepSeek-V4.1's window pool follows"):
        mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", compute_capability="10.0", kv_cache_memory=2**36)
    with pytest.raises(UsageError, match="multiple of the page size 256"):
        mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", gpu="B200", kv_cache_memory=2**36, max_batched_tokens=1000)
    # 5 GiB: the window pool alone takes 606,464 x 21,120 B = 11.93 GiB; SGLang raises at start-up
    small = mla_mem.fit("deepseek-v4.1-flash", runtime="sglang", compute_capability="10.0", kv_cache_memory=5 * 2**30,
                        max_batched_tokens=8192, context=4096)  # fmt: skip
    assert not small.fits and small.token_capacity == 0 and small.engine_lines == ()
    assert any("would not start" in note and "606464 tokens, 11.93 GB" in note for note in small.notes)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({}, "layout depends on the GPU"),
        ({"compute_capability": "12.0"}, "read for compute capability 9.x and 10.x"),
        ({"compute_capability": "10.0", "indexer_dtype": "fp8"}, "always fp4"),
        ({"compute_capability": "10.0", "kv_dtype": "bf16"}, "uint8 fp8 layouts"),
        ({"compute_capability": "10.0", "mtp": True}, "drafts only with DSpark"),
        ({"compute_capability": "10.0", "runtime": "sglang@0.5.22"}, "read from 0.5.23"),
    ],
)
def test_v41_on_sglang_refuses_what_it_cannot_know(options, says):
    with pytest.raises(UsageError, match=says):
        mla_mem.estimate("deepseek-v4.1-flash", 4096, **{"runtime": "sglang", **options})


def test_v41_on_a_runtime_without_v4_rules_gets_its_v4_refusal():
    with pytest.raises(UsageError, match="trtllm: no DeepSeek-V4 .*1.3.0rc22"):
        mla_mem.estimate("deepseek-v4.1-flash", 1024, runtime="trtllm")


def test_dspark_draft_stages_are_the_checkpoints_mtp_layers():
    """vLLM 0.33 deepseek_v41/nvidia/dspark.py: num_nextn_predict_layers (3) draft stages, each a compress-ratio-0
    decoder layer with a window of its own: 3 x 128 x 512 x 2 B more in bf16 on the ideal runtime."""
    base = mla_mem.estimate("deepseek-v4.1-flash", 4096)
    draft = mla_mem.estimate("deepseek-v4.1-flash", 4096, spec="dspark")
    assert draft.total_bytes - base.total_bytes == 3 * 128 * 512 * 2 and draft.mtp
    with pytest.raises(UsageError, match="DeepSeek-V4.1 \\(deepseek_v41\\) only"):
        mla_mem.estimate("deepseek-v4-flash", 4096, spec="dspark", runtime="vllm")
    with pytest.raises(UsageError, match="sglang's DSpark serves DeepSeek-V4.1"):
        mla_mem.estimate("deepseek-v3", 4096, spec="dspark", runtime="sglang")
    with pytest.raises(UsageError, match="no draft stages"):
        mla_mem.estimate("llama-3.1-8b", 4096, spec="dspark")


def test_sglang_v4_pools_without_an_indexer_are_not_guessed():
    """SGLang's ratio-4 pool sizing assumes the Lightning indexer's keys and rows: a model whose ratio-4 layers have
    none gets no engine arithmetic (no log lines, no engine capacity) rather than an assumed index_head_dim."""
    from dataclasses import replace

    spec = mla_mem.load_model("deepseek-v4-flash")
    plain = replace(spec, kinds=tuple(replace(k, indexer=None) for k in spec.kinds))
    result = mla_mem.fit(plain, runtime="sglang", kv_cache_memory=100 * 2**30, context=131_072)
    assert result.engine_lines == () and result.capacity_kind != "engine"
    assert mla_mem.fit(spec, runtime="sglang", kv_cache_memory=100 * 2**30, context=131_072).capacity_kind == "engine"
