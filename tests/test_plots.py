"""Plots: the drawn series equal the calculator, files are valid and written safely, the gallery is current."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import mla_mem
from mla_mem.cli import main
from mla_mem.errors import UsageError
from mla_mem.options import deployment
from mla_mem.plots import build, context_grid, equal_groups, figure, plot, style, x_ticks, y_unit

ROOT = Path(__file__).resolve().parent.parent
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".svg": b"<?xml", ".pdf": b"%PDF-"}


def test_series_equal_the_calculator_at_every_point():
    data = build(
        ["gpt-oss-120b", "qwen3-next-80b-a3b"],
        variants=["mha"],
        batch=3,
        deployment=deployment(runtime="vllm"),
    )
    assert len(data.series) == 4
    for series in data.series:
        model = series.label.split(" as ")[0]
        spec = mla_mem.load_model(model.lower() if " as " not in series.label else model.lower())
        if " as " in series.label:
            spec = mla_mem.variant(spec, "mha")
        for n, total in zip(series.contexts, series.total_bytes, strict=True):
            assert total == mla_mem.estimate(spec, n, 3, runtime="vllm").total_bytes


def test_grid_contains_the_ticks():
    grid = context_grid(1024, 2**20)
    for tick in (1024, 4096, 32768, 131072, 2**20):
        assert tick in grid
    assert grid == sorted(set(grid)) and len(grid) > 100


def test_labels_and_legends_carry_units():
    fig, data = plot(["deepseek-v3"], variants=["mha"], cache_memory=80 * 2**30)
    ax = fig.axes[0]
    assert "GiB" in ax.get_ylabel() and "tokens" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "DeepSeek-V3 (70,272 B/token)" in legend and any("80.00 GiB" in t for t in legend)
    assert "batch 1" in ax.get_title() and "bf16" in ax.get_title() and "ideal" in ax.get_title()
    si = figure(build(["deepseek-v3"], units="si"))
    assert "GB" in si.axes[0].get_ylabel()
    # the crossing point is the longest context that fits under the line, exactly
    crossing = data.series[0].crossing
    assert mla_mem.estimate("deepseek-v3", crossing).total_bytes <= 80 * 2**30
    assert mla_mem.estimate("deepseek-v3", crossing + 1).total_bytes > 80 * 2**30


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_files_are_valid_and_deterministic(tmp_path, suffix, capsys):
    out = tmp_path / f"plot{suffix}"
    args = ["plot", "deepseek-v3", "kimi-k2", "--as", "gqa:8", "-o", str(out)]
    assert main(args) == 0
    first = out.read_bytes()
    assert first.startswith(MAGIC[suffix]) and len(first) > 10_000
    assert main([*args, "--force"]) == 0
    if suffix != ".pdf":
        assert out.read_bytes() == first  # byte-identical PNG and SVG


def test_existing_file_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "keep.png"
    out.write_bytes(b"mine")
    assert main(["plot", "deepseek-v3", "-o", str(out)]) == 2
    assert out.read_bytes() == b"mine" and "--force" in capsys.readouterr().err


def test_bad_outputs_leave_nothing_behind(tmp_path, capsys):
    assert main(["plot", "deepseek-v3", "-o", str(tmp_path / "x.gif")]) == 2
    assert "unknown image type" in capsys.readouterr().err
    readonly = tmp_path / "ro"
    readonly.mkdir()
    os.chmod(readonly, 0o500)
    try:
        code = main(["plot", "deepseek-v3", "-o", str(readonly / "x.png")])
        if os.geteuid() != 0:  # root can write anywhere
            assert code == 2
    finally:
        os.chmod(readonly, 0o700)
    assert main(["plot", "deepseek-v3", "-o", str(tmp_path / "missing" / "x.png")]) == 2
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert all(not name.endswith(".tmp") for name in leftovers)


def test_failed_render_keeps_the_old_file(tmp_path, monkeypatch):
    from mla_mem import plots
    from mla_mem.errors import MlaMemError

    out = tmp_path / "old.png"
    out.write_bytes(b"old")

    def broken(data, fmt):
        raise RuntimeError("renderer failed midway")

    monkeypatch.setattr(plots, "render", broken)
    with pytest.raises(RuntimeError):
        main(["--debug", "plot", "deepseek-v3", "-o", str(out), "--force"])
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["old.png"]
    assert MlaMemError  # the error path is ours, the file is untouched


def test_breakdown_and_memory_options(tmp_path, capsys):
    out = tmp_path / "b.svg"
    assert main(["plot", "glm-5", "--breakdown", "--cache-memory", "80GiB", "-o", str(out)]) == 0
    text = out.read_text()
    assert "MLA latent" in text and "indexer keys" in text
    assert main(["plot", "glm-5", "deepseek-v3", "--breakdown", "-o", str(tmp_path / "c.png")]) == 2
    assert (
        main(
            [
                "plot",
                "deepseek-v3",
                "--gpu",
                "H200",
                "--gpus",
                "8",
                "--tp",
                "8",
                "--runtime",
                "vllm",
                "-o",
                str(tmp_path / "d.png"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "plot",
                "deepseek-v3",
                "--gpu",
                "H200",
                "--gpus",
                "4",
                "--tp",
                "8",
                "-o",
                str(tmp_path / "e.png"),
            ]
        )
        == 2
    )


def test_table_path_does_not_need_matplotlib():
    data = build(["deepseek-v3"])
    assert json.loads(json.dumps(data.as_dict()))["series"][0]["label"] == "DeepSeek-V3"


@pytest.mark.slow
def test_gallery_is_up_to_date_and_stable(tmp_path, capsys):
    """The gallery, rendered once per test run (the help example of `gallery` is this command): regenerated over a
    copy of the committed plots/, its data must equal the committed gallery.json, and with the same matplotlib
    version every PNG must come out byte-identical to the committed one (so a second render is identical too); with
    another matplotlib version it is rendered a second time to prove the output stable."""
    import matplotlib

    copy = tmp_path / "plots"
    shutil.copytree(ROOT / "plots", copy)
    assert main(["gallery", str(copy)]) == 0
    fresh = json.loads((copy / "gallery.json").read_text())
    committed = json.loads((ROOT / "plots" / "gallery.json").read_text())
    assert fresh["plots"] == committed["plots"], "run: uv run mla-mem gallery plots"
    first = {p.name: p.read_bytes() for p in copy.iterdir()}
    if committed["matplotlib"] == matplotlib.__version__:
        assert first == {p.name: p.read_bytes() for p in (ROOT / "plots").iterdir()}, (
            "run: uv run mla-mem gallery plots"
        )
    else:
        assert main(["gallery", str(copy)]) == 0
        assert first == {p.name: p.read_bytes() for p in copy.iterdir()}
    for item in committed["plots"]:
        assert f"plots/{item['file']}" in (ROOT / "README.md").read_text(), f"README does not show {item['file']}"


def test_twenty_series_stay_distinct():
    names = mla_mem.builtin_names()[:20]
    fig = figure(build(names, log_y=True))
    lines = [line for line in fig.axes[0].get_lines()]
    drawn = {(line.get_color(), line.get_linestyle()) for line in lines}
    groups = equal_groups(build(names).series)
    assert len(drawn) == len(groups) == len(lines)  # one line per distinct curve, no two drawn alike
    assert len({(style(i)["color"], style(i)["linestyle"]) for i in range(40)}) == 40


def test_equal_lines_are_drawn_once_and_labelled_equal():
    # DeepSeek-V3 and Kimi K2 cache the same 576-value latent on 61 layers: the same curve
    fig = figure(build(["deepseek-v3", "kimi-k2", "llama-3.1-8b"]))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["DeepSeek-V3 = Kimi-K2 (70,272 B/token), equal", "Llama-3.1-8B (131,072 B/token)"]
    assert len(fig.axes[0].get_lines()) == 2


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1024, 2**20, [2**k for k in range(10, 21)]),  # 11 powers of two: all kept
        (1000, 1500, [1000, 1225, 1500]),  # no two powers in range: the ends and their geometric middle
        (1, 2**30, [2 ** (3 * k) for k in range(11)]),  # 31 powers thinned to every third
        (3000, 5000, [3000, 3873, 5000]),  # one power (4096) only: the ends and the middle
    ],
)
def test_ticks_at_any_range(low, high, expected):
    assert x_ticks(low, high) == expected
    fig = figure(build(["deepseek-v3"], min_context=low, max_context=high))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) == len(expected) and all(labels)


def test_memory_axis_unit_follows_the_range():
    assert y_unit(2**30, "binary") == (2**30, "GiB")
    assert y_unit(2**30 - 1, "binary") == (2**20, "MiB")
    assert y_unit(999, "si") == (1, "B")
    fig = figure(build(["llama-3.1-8b"], min_context=16, max_context=64))  # 2 MiB .. 8 MiB
    assert fig.axes[0].get_ylabel() == "KV cache (MiB)"


def test_crossing_label_near_the_right_edge_is_drawn_leftwards():
    # Llama-3.1-8B under 16 GiB: 131,072 tokens fit (16 GiB / 131,072 B), at the right end of a 1K..160K axis
    fig = figure(build(["llama-3.1-8b"], max_context=160_000, cache_memory=16 * 2**30))
    texts = [t for t in fig.axes[0].texts if t.get_text() == "131,072"]
    assert len(texts) == 1 and texts[0].get_horizontalalignment() == "right"


def test_a_long_title_stays_inside_the_figure():
    """A runtime's long cache label (SGLang's DeepSeek-V4 layout) and a layout made the title run off the right."""
    data = build(["deepseek-v4-flash"], deployment=mla_mem.Deployment().with_(runtime="sglang", tp=8), gpu="H200")
    assert len(data.title) > 95
    fig = figure(data)
    fig.canvas.draw()
    extent = fig.axes[0].title.get_window_extent()
    assert 0 <= extent.x0 and extent.x1 <= fig.bbox.width


def test_offload_line_is_the_gpu_line_plus_the_host_tiers_distinct_tokens():
    """DeepSeek-V3 on 8 x H200 at tp 8, vLLM 0.33 with 1 TiB of CPU offload: one copy for the replicated latent
    (replicated_layout), chunks of one 64-token block of 61 x 1,152 B = 4,497,408 B (already 4 KiB aligned), so
    2^40 // 4,497,408 = 244,476 chunks = 15,646,464 distinct tokens, each 70,272 B on every GPU."""
    options = mla_mem.Deployment().with_(runtime="vllm", tp=8)
    data = build(["deepseek-v3"], deployment=options, gpu="H200", gpus=8, offload="cpu:1TiB")
    [series] = data.series
    distinct = 2**40 // (64 * 61 * 1152) * 64
    assert distinct == 15_646_464
    assert series.offload == series.memory + distinct * 70_272
    # the longest context kept across both: whole 64-token blocks of 64 x 70,272 B
    assert series.offload_crossing == series.offload // (64 * 70_272) * 64
    assert "1 copy" in series.offload_label and data.as_dict()["series"][0]["offload_line_bytes"] == series.offload
    # at tp 16 over two nodes vLLM keeps one copy per rank: the same host memory holds 1/16 as many tokens
    wide = build(["deepseek-v3"], deployment=options.with_(tp=16), gpu="H200", gpus=16, offload="cpu:1TiB")
    assert "16 copies" in wide.series[0].offload_label
    assert wide.series[0].offload - wide.series[0].memory == 2**40 // (16 * 64 * 61 * 1152) * 64 * 70_272
    fig = figure(data)
    assert any("native CPU offload" in text.get_text() for text in fig.axes[0].get_legend().get_texts())


@pytest.mark.parametrize(
    ("models", "kwargs", "message"),
    [(["deepseek-v3"], {"offload": "cpu:1TiB"}, "give --gpu"),
     (["gpt-oss-120b"], {"offload": "cpu:1TiB", "gpu": "H200"}, "windows or states")],
)  # fmt: skip
def test_offload_line_refusals(models, kwargs, message):
    with pytest.raises(UsageError, match=message):
        build(models, deployment=mla_mem.Deployment().with_(runtime="vllm"), **kwargs)
