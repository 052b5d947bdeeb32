"""Every command in a real pseudo-terminal at 40, 60, 80 and 120 columns: every number the wide output shows is
there whole, and so is every identifying label (model names, verdicts)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import pytest

ANSI = re.compile(r"\x1b\[[0-9;]*m")
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?: ?(?:[KMGT]i?B|B|x|%|tokens)\b)?")
COMMANDS = {
    "estimate": ["estimate", "deepseek-v3", "llama-3.1-70b", "-c", "32K,128K", "--batch", "16"],
    "show": ["show", "glm-5"],
    "compare": ["compare", "deepseek-v3"],
    "fit": ["fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8", "-c", "128K", "--batch", "32"],
    "models": ["models"],
    "gpus": ["gpus"],
    "check": ["check", "examples/budgets.yaml"],
}
LABELS = {
    "estimate": ["DeepSeek-V3", "Llama-3.1-70B", "bf16"],
    "show": ["mla_latent", "indexer"],
    "compare": ["DeepSeek-V3", "MHA"],
    "fit": ["FITS", "H200"],
    "models": ["deepseek-v3", "kimi-k3"],
    "gpus": ["H200", "B200"],
    "check": ["PASS"],
}


def in_terminal(args: list[str], columns: int) -> str:
    """Run `mla-mem args` with stdout and stderr on a pseudo-terminal of `columns` columns."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm"
    process = subprocess.Popen(
        [sys.executable, "-m", "mla_mem", *args], stdin=child, stdout=child, stderr=child, env=env, close_fds=True
    )
    os.close(child)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(main)
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def numbers(text: str) -> set[str]:
    return set(NUMBER.findall(text))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_number_is_cut_at_any_width(name):
    wide = in_terminal(COMMANDS[name], 400)
    expected = numbers(wide)
    assert expected
    for columns in (40, 60, 80, 120):
        text = in_terminal(COMMANDS[name], columns)
        missing = sorted(n for n in expected if n not in text)
        assert not missing, (columns, missing[:10])
        for label in LABELS[name]:
            assert label in text, (columns, label)
        assert "…" not in text


@pytest.mark.parametrize("name", ["estimate", "fit", "check", "plot", ""])
def test_help_is_never_cut_with_an_ellipsis(name):
    """Typer's help tables ellipsize what does not fit a column ("--no-hybrid-allocat…" at 80 columns); mla-mem has
    them fold it onto the next line, so every option name and word is there in full."""
    for columns in (60, 80):
        text = in_terminal([name, "--help"] if name else ["--help"], columns)
        assert "Usage" in text and "…" not in text, (name, columns)
        if name == "fit":
            assert "max_num_batched_tok" in text.replace("│", "").replace("\n", "").replace(" ", "")
