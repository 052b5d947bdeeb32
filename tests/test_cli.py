"""The command line end to end: in-process (CliRunner) and as the installed script (subprocess)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mla_mem import __version__
from mla_mem.cli import app, main

runner = CliRunner()
SCRIPT = Path(sys.executable).parent / "mla-mem"


def invoke(*args: str, width: int = 100):
    return runner.invoke(app, list(args), env={"COLUMNS": str(width), "NO_COLOR": "1"})


def ok_json(*args: str, width: int = 100):
    result = invoke(*args, "--format", "json", width=width)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_estimate_deepseek_v3_json_acceptance():
    [row] = ok_json("estimate", "deepseek-v3", "--context", "128K")
    assert row["bytes_per_token"] == 70272 and row["total_bytes"] == 9210691584 == 70272 * 131072
    assert row["context"] == 131072 and row["batch"] == 1 and row["kv_dtype"] == "bf16"
    for key in ("model", "fixed_bytes", "components"):
        assert key in row
    for component in row["components"]:
        assert {"name", "layers", "bytes_per_token", "fixed_bytes", "total_bytes"} <= component.keys()
    [batch16] = ok_json("estimate", "deepseek-v3", "--context", "128K", "--batch", "16")
    assert batch16["total_bytes"] == 16 * 9210691584
    [fp8] = ok_json("estimate", "deepseek-v3", "--context", "128K", "--kv-dtype", "fp8")
    assert fp8["total_bytes"] == 9210691584 // 2 and fp8["kv_dtype"] == "fp8_e4m3"


def test_estimate_several_models_and_contexts():
    rows = ok_json("estimate", "deepseek-v3", "llama-3.1-8b", "-c", "4K,128k", "-c", "1M")
    assert [(r["model"], r["context"]) for r in rows] == [
        (m, n) for m in ("DeepSeek-V3", "Llama-3.1-8B") for n in (4096, 128000, 1048576)
    ]
    assert rows[4]["total_bytes"] == 32 * 2 * 8 * 128 * 2 * 128000


def test_token_suffixes_follow_vllm():
    rows = ok_json("estimate", "llama-3.1-8b", "-c", "128k", "-c", "128K", "-c", "1M", "-c", "131072")
    assert [r["context"] for r in rows] == [128000, 131072, 1048576]  # duplicates collapse


def test_compare_mha_acceptance():
    [entry] = ok_json("compare", "deepseek-v3", "--as", "mha")
    assert entry["equivalent_gqa_groups"] == 2.25
    built, mha = entry["variants"]
    assert built["variant"] == "as built" and mha["variant"] == "MHA"
    assert mha["bytes_per_token"] == 128 * (192 + 128) * 2 * 61
    assert 30 < mha["ratio_to_built"] < 100  # several tens of times larger


def test_compare_default_is_the_readme_command():
    result = invoke("compare", width=160)
    assert result.exit_code == 0, result.output
    for text in ("DeepSeek-V3", "Kimi-K2", "GLM-5", "as MHA", "as GQA-8", "4K", "32K", "128K", "1M", "2.25"):
        assert text in result.stdout
    payload = ok_json("compare")
    assert [p["model"] for p in payload] == ["DeepSeek-V3", "Kimi-K2", "GLM-5"]
    assert [e["context"] for e in payload[0]["variants"][0]["estimates"]] == [4096, 32768, 131072, 1048576]


def test_compare_all_variant_kinds():
    [entry] = ok_json("compare", "llama-3.1-8b", "--as", "mha,gqa:4,mqa,mla:256", "-c", "1K")
    labels = [v["variant"] for v in entry["variants"]]
    assert labels == ["as built", "MHA", "GQA-4", "MQA", "MLA-256"]
    assert entry["variants"][-1]["bytes_per_token"] == (256 + 64) * 2 * 32
    assert entry["equivalent_gqa_groups"] is None


def test_models_lists_every_builtin():
    rows = ok_json("models")
    names = {r["name"] for r in rows}
    assert {"deepseek-v3", "glm-5", "qwen3-next-80b-a3b", "gemma-3-27b"} <= names
    v3 = next(r for r in rows if r["name"] == "deepseek-v3")
    assert v3["bytes_per_token"] == 70272 and v3["max_context"] == 163840


def test_show_breakdown_with_formulas():
    payload = ok_json("show", "glm-5", "-c", "1K")
    names = [c["name"] for c in payload["components"]]
    assert names == ["mla_latent", "indexer"]
    assert "kv_lora_rank 512" in payload["components"][0]["formula"]
    assert payload["architecture"]["indexer"]["heads"] == 32
    result = invoke("show", "qwen3-next", width=200)
    assert result.exit_code == 0 and "linear_state" in result.stdout and "conv" in result.stdout


@pytest.mark.parametrize("width", [40, 300])
@pytest.mark.parametrize(
    "args",
    [
        ["models"],
        ["show", "deepseek-v3"],
        ["estimate", "gemma-3-27b", "-c", "1M"],
        ["compare"],
        ["compare", "qwen3-next", "--as", "mla:512"],
    ],
)
def test_json_parses_at_any_width(args, width):
    result = invoke(*args, "--format", "json", width=width)
    assert result.exit_code == 0
    json.loads(result.stdout)


@pytest.mark.parametrize("command", [["models"], ["show", "kimi-k2"], ["estimate", "kimi-k2"], ["compare", "kimi-k2"]])
def test_csv_and_markdown(command):
    result = invoke(*command, "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows)
    result = invoke(*command, "--format", "markdown")
    assert result.exit_code == 0
    table_lines = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert len(table_lines) >= 3 and set(table_lines[1]) <= set("|-: ")


def test_csv_carries_exact_integers():
    result = invoke("estimate", "deepseek-v3", "-c", "128K", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["total_bytes"] == "9210691584" and rows[0]["bytes_per_token"] == "70272"


def test_si_units_label():
    result = invoke("estimate", "deepseek-v3", "-c", "128K", "--units", "si")
    assert "9.21 GB" in result.stdout
    result = invoke("estimate", "deepseek-v3", "-c", "128K")
    assert "8.58 GiB" in result.stdout


def test_parallel_options_in_estimate():
    [row] = ok_json(
        "estimate",
        "deepseek-v3",
        "-c",
        "1K",
        "--tp",
        "8",
        "--pp",
        "1",
        "--dp",
        "2",
        "--batch",
        "4",
        "--mtp",
        "--dcp",
        "1",
        "--runtime",
        "ideal",
    )
    assert row["bytes_per_token"] == 62 * 1152 and row["sequences_per_gpu"] == 2
    assert row["parallel"]["gpus"] == 16


BAD_INPUTS = [
    (["estimate", "deepseek-v33"], "did you mean 'deepseek-v3'"),
    (["estimate", "deepseek-v3", "-c", "0"], "at least 1"),
    (["estimate", "deepseek-v3", "-c", "-1"], "--context"),
    (["estimate", "deepseek-v3", "-c", "1000000000000000000"], "beyond"),
    (["estimate", "deepseek-v3", "-c", "12XB"], "not a token count"),
    (["estimate", "deepseek-v3", "-c", "1e3"], "not a token count"),
    (["estimate", "deepseek-v3", "-c", "K128"], "not a token count"),
    (["estimate", "deepseek-v3", "-c", "1.5K"], "decimals are not allowed"),
    (["estimate", "deepseek-v3", "--batch", "0"], "at least 1"),
    (["estimate", "deepseek-v3", "--batch", "1000000000"], "beyond"),
    (["estimate", "deepseek-v3", "--kv-dtype", "bf17"], "unknown cache dtype"),
    (["estimate", "deepseek-v3", "--format", "xml"], "--format"),
    (["estimate", "deepseek-v3", "--units", "metric"], "--units"),
    (["estimate", "deepseek-v3", "--runtime", "vllm9"], "unknown runtime"),
    (["estimate", "deepseek-v3", "--tp", "0"], "--tp"),
    (["estimate", "deepseek-v3", "--tp", "4", "--dcp", "3"], "--dcp"),
    (["estimate", "deepseek-v3", "--pp", "100"], "--pp"),
    (["estimate", "missing.yaml"], "no such file"),
    (["estimate", "deepseek-v3", "--no-such-option"], "No such option"),
    (["compare", "deepseek-v3", "--as", "gqa:7"], "divides"),
    (["compare", "deepseek-v3", "--as", "xyz"], "unknown variant"),
    (["show", "deepseek-v3", "-c", "1K,2K"], "one context"),
    (["show"], "Missing argument"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith("mla-mem: error: ")
    assert "Traceback" not in captured.err and captured.out == ""


def test_bad_yaml_file_names_file_and_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: X\nlayers: 4\nattention: {kind: gqa, heads: 8, kv_heads: 2, head_dim: -1}\n")
    assert main(["estimate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "attention.head_dim" in err


def test_yaml_model_path_works(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("name: Tiny\nlayers: 2\nattention: {kind: mqa, heads: 4, head_dim: 64}\n")
    [row] = ok_json("estimate", str(path), "-c", "10")
    assert row["bytes_per_token"] == 2 * 2 * 64 * 2 and row["total_bytes"] == 10 * 512


def test_version_and_help():
    assert invoke("--version").stdout.strip() == f"mla-mem {__version__}"
    for command in ("models", "show", "estimate", "compare"):
        result = invoke(command, "--help", width=200)
        assert result.exit_code == 0 and "Example: mla-mem" in result.stdout


def test_debug_shows_the_traceback():
    with pytest.raises(Exception, match="unknown model"):
        main(["--debug", "estimate", "nope"])


@pytest.mark.slow
def test_installed_script_and_module(tmp_path):
    assert SCRIPT.exists()
    result = subprocess.run(
        [str(SCRIPT), "estimate", "deepseek-v3", "-c", "128K", "-f", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and json.loads(result.stdout)[0]["total_bytes"] == 9210691584
    result = subprocess.run([sys.executable, "-m", "mla_mem", "estimate", "nope"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("mla-mem: error:") and result.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize("command", [["models"], ["estimate", "deepseek-v3"], ["show", "glm-5"], ["compare"]])
def test_table_commands_do_not_import_numpy_or_matplotlib(command):
    code = (
        "import sys\nfrom mla_mem.cli import main\nmain(sys.argv[1:])\n"
        "bad = [m for m in ('numpy', 'matplotlib', 'huggingface_hub', 'gguf', 'mla_mem.hardware') if m in sys.modules]\n"
        "sys.stderr.write('IMPORTED:' + ','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith("IMPORTED:")


@pytest.mark.slow
def test_broken_pipe_is_quiet():
    result = subprocess.run(f"'{SCRIPT}' models | head -1", shell=True, capture_output=True, text=True)
    assert result.returncode == 0 and "Traceback" not in result.stderr and result.stderr == ""


@pytest.mark.slow
def test_no_color_when_not_a_tty():
    result = subprocess.run(
        [str(SCRIPT), "compare"], capture_output=True, text=True, env={**os.environ, "FORCE_COLOR": ""}
    )
    assert "\x1b[" not in result.stdout


@pytest.mark.slow
def test_readme_outputs_are_up_to_date():
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, str(root / "scripts" / "update_readme.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_runtime_options_on_the_command_line():
    [row] = ok_json("estimate", "deepseek-v3", "-c", "100", "--runtime", "vllm", "--block-size", "64")
    assert row["runtime"] == "vllm 0.33" and row["block_size"] == 64 and row["total_bytes"] == 61 * 128 * 1152
    [row] = ok_json("estimate", "deepseek-v3.2", "-c", "1K", "--runtime", "vllm", "--kv-dtype", "fp8_ds_mla")
    assert row["bytes_per_token"] == 48068
    [row] = ok_json("estimate", "gpt-oss-120b", "-c", "100K", "--runtime", "vllm", "--no-hybrid-allocator")
    assert row["components"][1]["total_bytes"] == 18 * 102400 * 2048
    [row] = ok_json("estimate", "gpt-oss-120b", "-c", "100K", "--runtime", "vllm", "--max-batched-tokens", "2K")
    assert row["components"][1]["total_bytes"] == 18 * (-(-(127 + 2 * 2048) // 16) + 1) * 16 * 2048  # 2 in flight

    [row] = ok_json(
        "estimate",
        "deepseek-v3",
        "-c",
        "1K",
        "--runtime",
        "llama.cpp@2025",
        "--kv-dtype",
        "q8_0",
        "--v-dtype",
        "q4_0",
    )
    assert row["bytes_per_token"] == 61 * (612 + 288)
    payload = ok_json("show", "deepseek-v3", "--runtime", "transformers@4.57")
    assert payload["bytes_per_token"] == 4997120 and "expanded per head" in payload["components"][0]["formula"]


def test_show_explains_the_runtime(capsys):
    result = invoke("show", "deepseek-v3.2", "--runtime", "vllm@0.11", "--tp", "8", width=250)
    assert result.exit_code == 0
    flat = " ".join(result.stdout.split())
    for text in ("vllm 0.11", "fp8_ds_mla", "656 B", "132 B", "block 64", "not split by tp 8", "8 GPUs"):
        assert text in flat, text


def test_indexer_dtype_and_public_api():
    [row] = ok_json("estimate", "deepseek-v4-pro", "-c", "1M", "--runtime", "vllm", "--indexer-dtype", "mxfp4")
    assert row["bytes_per_token"] == 30 * (584 + 68) / 4 + 31 * 584 / 128
    import mla_mem

    assert mla_mem.count_params(mla_mem.load_model("deepseek-v3")).total == pytest.approx(671e9, rel=0.01)
    assert callable(mla_mem.plot) and callable(mla_mem.fit)
    with pytest.raises(AttributeError):
        mla_mem.no_such_thing  # noqa: B018
