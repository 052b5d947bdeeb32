"""The Python API mirrors the command line: the same answers for the same question, names accepted wherever a model
is taken, readable results, errors in the API's own words."""

from __future__ import annotations

import json
import pydoc

import pytest

import mla_mem
from mla_mem.cli import main


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main([*args, "--format", "json"]) in (0, 1)
    return json.loads(capsys.readouterr().out)


def test_fit_with_gpus_chooses_the_layout_as_the_command_line_does(capsys):
    api = mla_mem.fit("deepseek-v3", "H200", gpus=8).as_dict()
    cli = cli_json(capsys, "fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8")
    assert api == cli
    # DeepSeek-V3 keeps its whole latent on every tp rank: eight pipeline stages hold 8x the layers' room; the
    # engine's count, hand-derived: 47,703,963,348 B / (8 layers x 1,152 B x 64-token block) = 80,878 blocks
    assert (api["tp"], api["pp"]) == (1, 8)
    assert api["num_blocks"] == 47_703_963_348 // (8 * 1152 * 64) == 80_878
    explicit = mla_mem.fit("deepseek-v3", "H200", gpus=8, tp=8).as_dict()
    assert explicit == cli_json(capsys, "fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8")
    assert (explicit["tp"], explicit["pp"]) == (8, 1)


def test_fit_takes_a_memory_for_a_gpu_not_listed():
    by_memory = mla_mem.fit("llama-3.1-8b", memory="80GiB", context=8192)
    assert by_memory.gpu == "custom 80GiB" and by_memory.memory_bytes == 80 * 2**30
    assert mla_mem.fit("llama-3.1-8b", memory=80 * 2**30, context=8192).available_bytes == by_memory.available_bytes
    with pytest.raises(mla_mem.UsageError, match="gpu or memory, not both"):
        mla_mem.fit("llama-3.1-8b", "H100", memory="80GiB")


def test_a_single_name_is_accepted_where_a_list_of_models_is():
    one = mla_mem.compare("deepseek-v3", variants=["mha"], contexts=[4096])
    assert [row.model for row in one.rows] == ["DeepSeek-V3", "DeepSeek-V3"]
    # MHA on DeepSeek-V3's dims: 61 layers x 128 heads x (192 K + 128 V) x 2 B = 4,997,120 B per token
    assert one.rows[1].bytes_per_token == 61 * 128 * (192 + 128) * 2
    _, data = mla_mem.plot("deepseek-v3", min_context=1024, max_context=4096)
    assert [s.label for s in data.series] == ["DeepSeek-V3"]


def test_results_print_as_the_command_line_prints_them(capsys):
    result = mla_mem.estimate("deepseek-v3", 131072)
    text = str(result)
    assert "DeepSeek-V3" in text and "9,210,691,584" in text and "Estimate(" not in text
    html = result._repr_html_()
    assert html.startswith("<table>") and "<td" in html and "9,210,691,584" in html
    fit = str(mla_mem.fit("deepseek-v3", "H200", gpus=8, tp=8))
    assert "FITS" in fit and "H200 x 8" in fit
    diff = mla_mem.diff("deepseek-v3", "kimi-k2")
    assert "kinds.full.attention.heads: 128 -> 64" in " ".join(str(diff).split())
    assert "<table>" in mla_mem.compare("deepseek-v3")._repr_html_()
    [verdict, *_] = mla_mem.check_budgets(["examples/budgets.yaml"])
    assert str(verdict).startswith("PASS ")


@pytest.mark.parametrize(
    ("call", "wording"),
    [
        (lambda: mla_mem.fit("deepseek-v3", "H900"), "or give memory 80GiB"),
        (lambda: mla_mem.fit("deepseek-v3", "H200", kv_cache_memory="40"), "kv_cache_memory"),
        (lambda: mla_mem.estimate("deepseek-v3", 4096, runtime="vllm", tp=3), "tp"),
        (lambda: mla_mem.load_model("no-such-model"), "mla_mem.builtin_names() lists"),
        (lambda: mla_mem.variant("deepseek-v3", "gqa:7"), "variants gqa:7"),
    ],
)
def test_errors_name_keywords_not_flags(call, wording):
    with pytest.raises(mla_mem.MlaMemError) as caught:
        call()
    message = str(caught.value)
    assert wording in message
    assert "--" not in message.replace("--kv-cache-dtype", ""), message  # an engine's own flag may stay


def test_engine_flags_keep_their_spelling():
    from mla_mem.errors import api_wording

    assert api_wording("vllm: --kv-cache-dtype auto; --tp/--dp need --gpus") == (
        "vllm: --kv-cache-dtype auto; tp/dp need gpus"
    )


def test_help_lists_every_public_function():
    text = pydoc.render_doc(mla_mem, renderer=pydoc.plaintext)
    for name in mla_mem.__all__:
        assert name in text, name
    for name in ("fit", "plot", "estimate", "compare", "diff", "check_budgets"):
        assert callable(getattr(mla_mem, name))


def test_plot_takes_deployment_options_as_keywords():
    _, data = mla_mem.plot("llama-3.1-8b", min_context=1024, max_context=4096, runtime="vllm", tp=2)
    # vLLM on tp 2: 32 layers x 4 of 8 KV heads x 128 x 2 (K, V) x 2 B = 65,536 B per token per GPU
    assert data.series[0].bytes_per_token == 32 * 4 * 128 * 2 * 2
    assert data.series[0].total_bytes[-1] == mla_mem.estimate("llama-3.1-8b", 4096, runtime="vllm", tp=2).total_bytes


def test_readme_python_examples_run_and_their_comments_hold(monkeypatch, capsys):
    """Every ```python block of README.md runs; the numbers its comments state are checked here by hand."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    blocks = re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S)
    assert blocks
    for block in blocks:
        scope: dict = {}
        exec(compile(block, "README.md", "exec"), scope)  # noqa: S102
    capsys.readouterr()
    result = scope["result"]
    assert result.bytes_per_token == 61 * 576 * 1 == 35136
    assert result.total_bytes == 35136 * 131072 * 16 == 73685532672
