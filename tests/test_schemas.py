"""Every command's JSON output against its published schema (docs/schemas/), over every built-in and runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from mla_mem.cli import main
from mla_mem.configs import builtin_names

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = {path.name.split(".")[0]: json.loads(path.read_text()) for path in (ROOT / "docs" / "schemas").glob("*.json")}
REGISTRY = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in SCHEMAS.values())
RUNTIMES = ["ideal", "vllm", "sglang", "trtllm", "llama.cpp", "transformers"]


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[name], registry=REGISTRY)


def output(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    code = main([*args, "--format", "json"])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    return json.loads(captured.out)


def assert_valid(name: str, payload: object) -> None:
    errors = sorted(validator(name).iter_errors(payload), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def test_every_schema_is_a_valid_schema_and_has_a_command():
    assert set(SCHEMAS) == {"estimate", "show", "compare", "models", "fit", "gpus", "check", "diff", "gallery"}
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)


def test_schemas_reject_what_they_do_not_describe(capsys):
    """The schemas are closed: an unknown key, a byte count as a string or a missing field is an error."""
    good = output(capsys, "estimate", "deepseek-v3", "-c", "4K")
    assert_valid("estimate", good)
    for change in ({"surprise": 1}, {"total_bytes": "1,024"}, {"context": 0}):
        bad = [dict(good[0], **change)]  # type: ignore[index]
        assert list(validator("estimate").iter_errors(bad))
    missing = [{k: v for k, v in good[0].items() if k != "notes"}]  # type: ignore[index]
    assert list(validator("estimate").iter_errors(missing))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_estimate_and_show_every_builtin(capsys, runtime):
    for name in builtin_names():
        code = main(["estimate", name, "-c", "4K,128K", "--runtime", runtime, "--format", "json"])
        captured = capsys.readouterr()
        if code == 2:  # the runtime refuses this model (a one-line reason, tested elsewhere)
            continue
        assert_valid("estimate", json.loads(captured.out))
    assert_valid("show", output(capsys, "show", "deepseek-v4-flash", "-c", "1M", "--runtime", "vllm"))
    assert_valid("show", output(capsys, "show", "qwen3.5-397b-a17b", "--runtime", "vllm", "--tp", "8"))


def test_show_every_builtin(capsys):
    for name in builtin_names():
        assert_valid("show", output(capsys, "show", name))


def test_models_gpus_compare(capsys):
    assert_valid("models", output(capsys, "models"))
    assert_valid("gpus", output(capsys, "gpus"))
    assert_valid("compare", output(capsys, "compare", "deepseek-v3", "llama-3.1-70b", "-c", "4K,1M"))
    assert_valid("compare", output(capsys, "compare", "gemma-4-31b", "--runtime", "vllm"))


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8"],
        ["fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "128K", "--batch", "64"],
        ["fit", "deepseek-v3", "--gpu", "H100", "--gpus", "8", "--tp", "8", "--runtime", "sglang", "-c", "128K"],
        ["fit", "llama-3.1-70b", "--gpu", "A100-40GB", "--gpus", "1"],  # the weights do not fit
        ["fit", "qwen3.5-397b-a17b", "--gpu", "B200", "--gpus", "8", "--tp", "8", "--runtime", "vllm", "-c", "256K"],
        ["fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "--kv-cache-memory", "40GiB"],
        ["fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "--runtime", "trtllm"],
        ["fit", "deepseek-v3", "--gpu", "H200", "--gpus", "8", "--tp", "8", "--reserve", "6GiB"],
        [
            "fit",
            "deepseek-v3",
            "--gpu",
            "H200",
            "--gpus",
            "8",
            "--tp",
            "8",
            "-c",
            "128K",
            "--runtime",
            "vllm",
            "--offload",
            "cpu:1TiB",
            "--shared-prefix",
            "64K",
        ],
        [
            "fit",
            "glm-5",
            "--gpu",
            "H20",
            "--gpus",
            "8",
            "--tp",
            "8",
            "-c",
            "32K",
            "--runtime",
            "sglang",
            "--offload",
            "cpu:40GB",
            "--shared-prefix",
            "8K",
        ],
    ],
)
def test_fit(capsys, args):
    assert_valid("fit", output(capsys, *args))


def test_check_with_errors_and_failures(capsys, tmp_path):
    assert_valid("check", output(capsys, "check", str(ROOT / "examples" / "budgets.yaml")))
    assert_valid("check", output(capsys, "check", str(ROOT / "examples" / "budgets-failing.yaml")))
    broken = tmp_path / "budgets.yaml"
    broken.write_text(
        "budgets:\n"
        "  - {name: unknown model, model: nope, context: 4K, max_cache_per_gpu: 1GiB}\n"
        "  - {name: short, model: deepseek-v3, context: 128K, gpu: H200, tp: 8, min_concurrency: 100000}\n"
    )
    code = main(["check", str(broken), "--format", "json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 2
    assert [v["status"] for v in payload["verdicts"]] == ["ERROR", "FAIL", "PASS"]  # the last: fits on the GPUs
    assert_valid("check", payload)


def test_diff_with_new_and_removed_components(capsys):
    assert_valid("diff", output(capsys, "diff", "deepseek-v3", "kimi-k2"))
    payload = output(capsys, "diff", "llama-3.1-70b", "deepseek-v3.2", "-c", "4K,128K")
    assert {"new", "removed"} <= {row["status"] for row in payload["rows"]}  # type: ignore[index]
    assert_valid("diff", payload)


def test_committed_gallery():
    payload = json.loads((ROOT / "plots" / "gallery.json").read_text())
    assert_valid("gallery", payload)


def test_show_weights_and_a_checkpoint_fit(capsys, tmp_path):
    import shutil

    from test_checkpoint import MIXED, write_safetensors

    shutil.copy(ROOT / "tests" / "data" / "hf" / "llama-3.1-8b.config.json", tmp_path / "config.json")
    write_safetensors(tmp_path / "model.safetensors", MIXED)
    assert_valid("show", output(capsys, "show", str(tmp_path), "--weights"))
    assert_valid("show", output(capsys, "show", "deepseek-v3", "--weights"))
    assert_valid("fit", output(capsys, "fit", str(tmp_path), "--gpu", "H100", "--gpus", "1"))


def test_estimate_with_offload(capsys):
    assert_valid("estimate", output(capsys, "estimate", "deepseek-v3", "glm-5", "-c", "32K,100000", "--runtime",
                                    "vllm", "--tp", "8", "--offload", "cpu:1TiB", "--format", "json"))  # fmt: skip
