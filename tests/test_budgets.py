"""mla-mem check and mla-mem diff: verdicts, exit codes and the formats CI systems read."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from mla_mem.cli import main

ROOT = Path(__file__).resolve().parent.parent
V3_BPT = 61 * 576 * 2  # 70,272


def write(tmp_path, text, name="budgets.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_shipped_examples(capsys):
    code, out, _ = run(capsys, "check", str(ROOT / "examples" / "budgets.yaml"))
    assert code == 0 and "8 passed, 0 failed" in out  # 5 budgets, 6 limits, 2 "fits on the GPU" verdicts
    code, out, _ = run(capsys, "check", str(ROOT / "examples" / "budgets-failing.yaml"))
    assert code == 1 and "0 passed, 2 failed" in out


def test_at_the_limit_passes_one_byte_over_fails(tmp_path, capsys):
    exact = 61 * 1000 * 1152  # DeepSeek-V3, ideal, bf16, 1,000 tokens
    text = f"""budgets:
  - name: exact
    model: deepseek-v3
    context: 1000
    max_cache_per_gpu: {exact}
  - name: one under
    model: deepseek-v3
    context: 1000
    max_cache_per_gpu: {exact - 1}
"""
    code, out, _ = run(capsys, "check", str(write(tmp_path, text)), "--format", "json")
    verdicts = json.loads(out)["verdicts"]
    assert code == 1
    assert verdicts[0]["passed"] and verdicts[0]["headroom"] == 0 and verdicts[0]["measured"] == exact
    assert not verdicts[1]["passed"] and verdicts[1]["headroom"] == -1
    assert verdicts[1]["headroom_percent"] == pytest.approx(-100 / (exact - 1))


LIMIT_CASES = [
    ("max_bytes_per_token", f"max_bytes_per_token: {V3_BPT}", f"max_bytes_per_token: {V3_BPT - 1}", ""),
    (
        "max_cache_per_gpu",
        "context: 128K\n    max_cache_per_gpu: 9GiB",
        "context: 128K\n    max_cache_per_gpu: 8GiB",
        "",
    ),
    (
        "max_total_cache",
        "context: 128K\n    tp: 8\n    max_total_cache: 69GiB",
        "context: 128K\n    tp: 8\n    max_total_cache: 68GiB",
        "    runtime: vllm\n",
    ),
    (
        "min_context_that_fits",
        "gpu: H200\n    tp: 8\n    min_context_that_fits: 128K",
        "gpu: H200\n    tp: 8\n    min_context_that_fits: 100M",
        "    runtime: vllm\n",
    ),
    (
        "min_concurrency",
        "gpu: H200\n    tp: 8\n    context: 128K\n    min_concurrency: 4",
        "gpu: H200\n    tp: 8\n    context: 128K\n    min_concurrency: 100",
        "    runtime: vllm\n",
    ),
]


@pytest.mark.parametrize("key,passing,failing,extra", LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_every_limit_kind_passes_and_fails(tmp_path, capsys, key, passing, failing, extra):
    for body, expected in ((passing, 0), (failing, 1)):
        text = f"budgets:\n  - name: b\n    model: deepseek-v3\n{extra}    {body}\n"
        code, out, err = run(capsys, "check", str(write(tmp_path, text)), "--format", "json")
        assert code == expected, (body, out, err)
        assert json.loads(out)["verdicts"][0]["limit"] == key


INVALID = [
    (
        "unknown key",
        "budgets:\n  - name: b\n    model: deepseek-v3\n    max_cache_per_gpo: 1GiB\n",
        "did you mean",
    ),
    ("no limit", "budgets:\n  - name: b\n    model: deepseek-v3\n", "sets no limit"),
    ("no model", "budgets:\n  - name: b\n    max_bytes_per_token: 1\n", "model"),
    (
        "bad size",
        "budgets:\n  - name: b\n    model: deepseek-v3\n    context: 1K\n    max_cache_per_gpu: 12XB\n",
        "not a size",
    ),
    (
        "limit needs context",
        "budgets:\n  - name: b\n    model: deepseek-v3\n    max_cache_per_gpu: 1GiB\n",
        "needs `context`",
    ),
    (
        "limit needs gpu",
        "budgets:\n  - name: b\n    model: deepseek-v3\n    min_context_that_fits: 1K\n",
        "needs `gpu`",
    ),
    (
        "unknown gpu",
        "budgets:\n  - name: b\n    model: deepseek-v3\n    gpu: H900\n    min_context_that_fits: 1K\n",
        "unknown GPU",
    ),
    (
        "unknown model",
        "budgets:\n  - name: b\n    model: deepseek-v9\n    max_bytes_per_token: 1\n",
        "unknown model",
    ),
    (
        "duplicate name",
        "budgets:\n  - name: b\n    model: deepseek-v3\n    max_bytes_per_token: 1\n"
        "  - name: b\n    model: deepseek-v3\n    max_bytes_per_token: 1\n",
        "duplicate budget name",
    ),
    ("empty list", "budgets: []\n", "non-empty list"),
    ("empty file", "", "empty"),
    ("bad yaml", "budgets: [\n", "invalid YAML"),
    (
        "bad tp",
        "budgets:\n  - name: b\n    model: deepseek-v3\n    tp: 0\n    max_bytes_per_token: 1\n",
        "tp",
    ),
    (
        "bad context",
        "budgets:\n  - name: b\n    model: deepseek-v3\n    context: 0\n    max_cache_per_gpu: 1GiB\n",
        "context",
    ),
]


@pytest.mark.parametrize("label,text,message", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_budget_files_exit_2(tmp_path, capsys, label, text, message):
    path = write(tmp_path, text)
    code, out, err = run(capsys, "check", str(path))
    assert code == 2 and message in err and str(path) in err
    # the report is still written: the bad entry is an ERROR verdict
    assert "ERROR " in out and "could not be checked" in out


def test_a_bad_entry_does_not_stop_the_others(tmp_path, capsys):
    text = (
        "budgets:\n"
        '  - name: bad\n    model: deepseek-v3\n    block_size: "64"\n    max_bytes_per_token: 70272\n'
        "  - name: good\n    model: deepseek-v3\n    max_bytes_per_token: 70272\n"
    )
    path = write(tmp_path, text)
    code, out, err = run(capsys, "check", str(path))
    assert code == 2
    assert "PASS good" in out and "ERROR bad" in out and "1 passed, 0 failed, 1 could not be checked" in out
    [line] = err.splitlines()
    assert line.startswith(f"mla-mem: error: {path}:4: budgets[0].block_size: expected a positive integer, got '64'")
    code, out, _ = run(capsys, "check", str(path), "--format", "junit")
    suite = ET.fromstring(out)
    assert code == 2 and suite.get("errors") == "1" and suite.get("tests") == "2"


def test_a_bad_kv_dtype_is_reported_against_its_own_key(tmp_path, capsys):
    text = "budgets:\n  - name: b\n    model: deepseek-v3\n    runtime: vllm\n    kv_dtype: q9\n    max_bytes_per_token: 1\n"
    code, _, err = run(capsys, "check", str(write(tmp_path, text)))
    assert code == 2 and "budgets[0].kv_dtype" in err and ":5:" in err


def test_model_paths_are_relative_to_the_budget_file(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.yaml").write_text(
        "name: Tiny\nlayers: 2\nattention: {kind: mqa, heads: 4, head_dim: 64}\n"
    )
    path = write(tmp_path, "budgets:\n  - name: t\n    model: models/tiny.yaml\n    max_bytes_per_token: 512\n")
    code, out, _ = run(capsys, "check", str(path))
    assert code == 0 and "1 passed" in out


def test_junit_structure(capsys):
    code, out, _ = run(capsys, "check", str(ROOT / "examples" / "budgets-failing.yaml"), "--format", "junit")
    assert code == 1
    root = ET.fromstring(out)
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "2"
    suite = root.find("testsuite")
    assert suite is not None and len(suite.findall("testcase")) == 2
    assert all(case.find("failure") is not None for case in suite.findall("testcase"))


def test_github_annotations_point_at_the_budget_lines(tmp_path, capsys):
    text = (
        "# comment\ndefaults: {runtime: ideal}\nbudgets:\n  - name: fine\n    model: deepseek-v3\n"
        f"    max_bytes_per_token: {V3_BPT}\n  - name: too small\n    model: deepseek-v3\n"
        f"    max_bytes_per_token: {V3_BPT - 1}\n"
    )
    path = write(tmp_path, text)
    code, out, _ = run(capsys, "check", str(path), "--format", "github")
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"::notice file={path},line=6,")
    assert lines[1].startswith(f"::error file={path},line=9,") and "too small" in lines[1]


def test_markdown_renders_as_a_table(capsys):
    code, out, _ = run(capsys, "check", str(ROOT / "examples" / "budgets.yaml"), "--format", "markdown")
    rows = [line for line in out.splitlines() if line.startswith("|")]
    assert code == 0 and len(rows) == 2 + 8
    assert all(row.count("|") == rows[0].count("|") for row in rows)
    assert set(rows[1]) <= set("|-: ")


def test_report_file_is_written_atomically(tmp_path, capsys):
    report = tmp_path / "report.xml"
    code, _, _ = run(capsys, "check", str(ROOT / "examples" / "budgets.yaml"), "-f", "junit", "-o", str(report))
    assert code == 0 and report.read_text().startswith("<?xml")
    code, _, err = run(capsys, "check", str(ROOT / "examples" / "budgets.yaml"), "-o", str(report))
    assert code == 2 and "--force" in err


# --- diff --------------------------------------------------------------------------------------------------


def git(cwd, *args):
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
            "PATH": "/usr/bin:/bin:/usr/local/bin",
        },
    )


MODEL = "name: Demo\nlayers: 4\nattention: {kind: gqa, heads: 8, kv_heads: 2, head_dim: 64}\n"


@pytest.mark.slow
def test_diff_against_a_git_revision(tmp_path, capsys, monkeypatch):
    git(tmp_path, "init", "-q")
    (tmp_path / "model.yaml").write_text(MODEL)
    git(tmp_path, "add", "model.yaml")
    git(tmp_path, "commit", "-qm", "v1")
    (tmp_path / "model.yaml").write_text(MODEL.replace("kv_heads: 2", "kv_heads: 4"))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(
        capsys, "diff", "HEAD:model.yaml", "model.yaml", "-c", "1K", "--max-growth", "5%", "--format", "json"
    )
    payload = json.loads(out)
    assert code == 1 and payload["passed"] is False
    total = next(r for r in payload["rows"] if r["component"] == "total")
    assert total["old_bytes"] == 4 * 1024 * 2 * 2 * 64 * 2 and total["new_bytes"] == 2 * total["old_bytes"]
    assert total["change_percent"] == 100.0
    code, out, _ = run(capsys, "diff", "HEAD:model.yaml", "model.yaml", "-c", "1K", "--max-growth", "100%")
    assert code == 0
    code, _, err = run(capsys, "diff", "HEAD:missing.yaml", "model.yaml")
    assert code == 2 and "git show failed" in err


def test_diff_component_by_component(capsys):
    code, out, _ = run(capsys, "diff", "deepseek-v3", "deepseek-v3.2", "-c", "1K", "--format", "json")
    payload = json.loads(out)
    names = [r["component"] for r in payload["rows"]]
    assert code == 0 and names == ["mla_latent", "indexer", "total"]
    indexer = payload["rows"][1]
    assert indexer["old_bytes"] == 0 and indexer["new_bytes"] == 61 * 1024 * 256
    code, _, err = run(capsys, "diff", "deepseek-v3", "deepseek-v3.2", "--max-growth", "five")
    assert code == 2 and "--max-growth" in err


def test_validate_command(tmp_path, capsys):
    good = write(tmp_path, MODEL, "good.yaml")
    bad = write(tmp_path, MODEL.replace("layers: 4", "layers: four"), "bad.yaml")
    code, out, err = run(capsys, "validate", str(good), str(bad))
    assert code == 2 and "ok" in out and "bad.yaml" in err


def test_pre_commit_hooks_file():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    ids = {hook["id"]: hook for hook in hooks}
    assert ids["mla-mem-check"]["entry"] == "mla-mem check"
    assert ids["mla-mem-validate"]["entry"] == "mla-mem validate"
    assert all(hook["language"] == "python" for hook in hooks)
