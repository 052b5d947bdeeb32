"""Hostile input: every command over a corpus of bad inputs exits 2 with one line naming the input, prints
nothing on stdout, shows no traceback, and finishes quickly (sizes are capped before parsing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mla_mem.cli import main

BAD = Path(__file__).parent / "data" / "bad"
MODEL_FILES = sorted(p for p in BAD.iterdir() if not p.name.startswith("budget-"))
BUDGET_FILES = sorted(BAD.glob("budget-*.yaml"))


def model_commands(path: str, tmp: Path) -> list[list[str]]:
    commands = [
        ["estimate", path],
        ["show", path],
        ["compare", path, "-c", "1K"],
        ["validate", path],
        ["fit", path, "--gpu", "H100", "--gpus", "1"],
        ["plot", path, "-o", str(tmp / "x.png")],
        ["diff", path, "deepseek-v3"],
        ["diff", "deepseek-v3", path],
    ]
    if path.endswith(".json"):
        commands.append(["import", path])
    return commands


def expect_rejected(args: list[str], capsys, needle: str) -> None:
    start = time.perf_counter()
    code = main(args)
    elapsed = time.perf_counter() - start
    captured = capsys.readouterr()
    assert code == 2, (args, captured.out, captured.err)
    if args[0] == "check":
        # check still writes its report, where the file is one ERROR verdict (CI keeps a report to read)
        lines = captured.out.splitlines()
        assert lines[0].startswith("ERROR ") and lines[-1] == "0 passed, 0 failed, 1 could not be checked", lines
    else:
        assert captured.out == "", (args, captured.out)  # nothing that parses as a result
    lines = [line for line in captured.err.splitlines() if not line.startswith("mla-mem: note:")]
    assert len(lines) == 1 and lines[0].startswith("mla-mem: error: "), captured.err
    assert "Traceback" not in captured.err
    assert needle in lines[0], (needle, lines[0])
    assert elapsed < 10, (args, elapsed)


@pytest.mark.parametrize("path", MODEL_FILES, ids=[p.name for p in MODEL_FILES])
def test_bad_model_files_in_every_command(path, tmp_path, capsys):
    for args in model_commands(str(path), tmp_path):
        expect_rejected(args, capsys, path.name)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("path", BUDGET_FILES, ids=[p.name for p in BUDGET_FILES])
def test_bad_budget_files(path, capsys):
    expect_rejected(["check", str(path)], capsys, path.name)


def test_generated_hostile_files(tmp_path, capsys):
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # 100 MB: refused before anything reads it
    huge_json = tmp_path / "huge.json"
    with huge_json.open("wb") as handle:
        handle.write(b'{"a": "')
        handle.truncate(100 * 1024 * 1024)
    loop_a, loop_b = tmp_path / "loop-a.yaml", tmp_path / "loop-b.yaml"
    os.symlink(loop_b, loop_a)
    os.symlink(loop_a, loop_b)
    unreadable = tmp_path / "unreadable.yaml"
    unreadable.write_text("layers: [\n")
    os.chmod(unreadable, 0)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    cases = [
        huge,
        huge_json,
        loop_a,
        unreadable,
        folder,
        tmp_path / "missing.yaml",
        tmp_path / "missing.json",
    ]
    for path in cases:
        for args in model_commands(str(path), tmp_path):
            expect_rejected(args, capsys, path.name)
    budget_dir = tmp_path / "budgets.yaml"
    budget_dir.mkdir()
    for path in (huge, loop_a, budget_dir, tmp_path / "nope.yaml"):
        expect_rejected(["check", str(path)], capsys, path.name)


ARGUMENTS = [
    (["estimate", "deepseek-v3", "-c", "0"], "--context"),
    (["estimate", "deepseek-v3", "-c", "-1"], "--context"),
    (["estimate", "deepseek-v3", "-c", "1000000000000000000"], "--context"),
    (["estimate", "deepseek-v3", "-c", "12XB"], "--context"),
    (["estimate", "deepseek-v3", "-c", "1e3"], "--context"),
    (["estimate", "deepseek-v3", "-c", "K128"], "--context"),
    (["estimate", "deepseek-v3", "--batch", "1000000000"], "--batch"),
    (["estimate", "deepseek-v3", "--batch", "-3"], "--batch"),
    (["estimate", "deepseek-v3", "--runtime", "tgi"], "--runtime"),
    (["estimate", "deepseek-v3", "--runtime", "vllm@banana"], "--runtime"),
    (["estimate", "deepseek-v3", "--kv-dtype", "fp9"], "cache dtype"),
    (["estimate", "no-such-model"], "no-such-model"),
    (["fit", "deepseek-v3", "--gpu", "H900", "--gpus", "8"], "H900"),
    (["fit", "deepseek-v3", "--memory", "12XB", "--gpus", "8"], "--memory"),
    (["fit", "deepseek-v3", "--gpu", "H100", "--gpus", "8", "--reserve", "1e3"], "--reserve"),
    (["plot", "deepseek-v3", "--min-context", "K128", "-o", "/tmp/never.png"], "--min-context"),
    (["compare", "deepseek-v3", "--as", "gqa:1000000000000"], "--as"),
    (["estimate", "deepseek-v3", "--tp", "100000"], "--tp"),
    (["estimate", "deepseek-v3", "--max-batched-tokens", "1e3", "--runtime", "vllm"], "--max-batched-tokens"),
    (["estimate", "deepseek-v3", "--units", "furlongs"], "--units"),
]


@pytest.mark.parametrize("args,needle", ARGUMENTS, ids=[" ".join(a) for a, _ in ARGUMENTS])
def test_bad_arguments(args, needle, capsys):
    expect_rejected(args, capsys, needle)


def test_corpus_size():
    generated = 7 + 4
    assert len(MODEL_FILES) + len(BUDGET_FILES) + generated + len(ARGUMENTS) >= 40


@pytest.mark.slow
def test_broken_pipe_exits_quietly():
    script = Path(sys.executable).parent / "mla-mem"
    command = f"'{script}' compare deepseek-v3 kimi-k2 glm-5 --as mha,gqa:8,mqa -c 1K,2K,4K,8K,16K,32K --format json | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[" and result.stderr == ""


def test_ctrl_c_prints_one_line_and_exits_130(monkeypatch, capsys):
    from mla_mem import cache

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "size", interrupted)
    monkeypatch.setattr("mla_mem.size", interrupted)
    code = main(["estimate", "deepseek-v3"])
    err = capsys.readouterr().err
    assert code == 130 and err == "mla-mem: error: interrupted\n"


@pytest.mark.slow
def test_sigint_to_a_running_process():
    # A terminal's Ctrl-C: the child restores Python's SIGINT handler (a CI runner may start us with SIGINT
    # ignored, which children inherit), says when the command is running, and the test interrupts it then.
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "import mla_mem.cli as c\n"
        "def slow(*a, **k):\n    sys.stdout.write('running\\n'); sys.stdout.flush(); time.sleep(60)\n"
        "c._check_format = slow\nraise SystemExit(c.main(['models']))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "running"
    process.send_signal(2)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130 and err.strip() == "mla-mem: error: interrupted" and "Traceback" not in err
