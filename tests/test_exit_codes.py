"""The exit-code contract with the real executable: 0 ok, 1 a check failed or it does not fit, 2 bad input or an
environment error (one line on stderr), never 70 for something the user or the environment caused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(shell: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = f"{sys.executable} -m mla_mem {shell}"
    environment = {**os.environ, **env}
    return subprocess.run(command, shell=True, capture_output=True, text=True, cwd=ROOT, env=environment, timeout=120)


def one_line(stderr: str) -> bool:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in stderr


def test_a_full_device_is_an_environment_error():
    result = run("models > /dev/full")
    assert result.returncode == 2 and one_line(result.stderr) and "No space left" in result.stderr


def test_closed_standard_output(tmp_path):
    models = run("models >&-")
    assert models.returncode == 2 and one_line(models.stderr)
    check = run("check examples/budgets.yaml >&-")
    assert check.returncode == 0  # the verdict's code survives
    budget = tmp_path / "tight.yaml"
    budget.write_text(
        "budgets:\n  - name: tight\n    model: deepseek-v3\n    context: 128K\n    max_cache_per_gpu: 1GiB\n"
    )
    assert run(f"check {budget} >&-").returncode == 1


def test_bad_input_with_stderr_closed_is_still_two():
    assert run("estimate deepseek-v3 -c nope 2>&-").returncode == 2


def test_an_encoding_that_cannot_say_a_name():
    result = run("show glm-5 --runtime vllm", PYTHONIOENCODING="ascii")
    assert result.returncode == 0 and "GLM-5" in result.stdout


@pytest.mark.parametrize("where", ["--debug estimate deepseek-v3 -c 1K", "estimate deepseek-v3 -c 1K --debug"])
def test_debug_anywhere(where):
    assert run(where).returncode == 0


def test_numbers_as_the_tool_prints_them():
    rows = json.loads(run("estimate deepseek-v3 -c 131,072 --format json").stdout)
    assert [row["context"] for row in rows] == [131072]
    assert [r["context"] for r in json.loads(run("estimate deepseek-v3 -c 131_072 --format json").stdout)] == [131072]
    lists = json.loads(run("estimate deepseek-v3 -c 32K,128K --format json").stdout)
    assert [row["context"] for row in lists] == [32768, 131072]
    ambiguous = run("estimate deepseek-v3 -c 1,000,2,000")
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr and one_line(ambiguous.stderr)
    bare = run("fit deepseek-v3 --memory 80 --gpus 8 -c 1K")
    assert bare.returncode == 2 and "unit" in bare.stderr


def test_dash_output_is_standard_output(tmp_path):
    result = run("import tests/data/hf/glm-5.config.json -o -")
    assert result.returncode == 0 and result.stdout.startswith("# Imported by mla-mem")
    assert not os.path.exists(os.path.join(ROOT, "-"))
