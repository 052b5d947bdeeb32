"""The command-line surface as a contract: every command that prints bytes takes the same deployment options, the
docs name only flags and files that exist, and every help text has an example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from mla_mem.cli import BYTE_COMMANDS, COMMANDS, DEPLOYMENT_PANEL, build_app

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# Flags of the engines (vLLM, SGLang, TensorRT-LLM, llama.cpp) that the docs quote as the engines spell them.
ENGINE_FLAGS = {
    "--kv-cache-dtype", "--max-model-len", "--enable-dp-attention", "--hicache-size", "--hicache-ratio",
    "--kv-offloading-size", "--kv-offloading-backend", "--num-gpu-blocks-override", "--kv-cache-memory-bytes",
    "--max-num-batched-tokens", "--max-num-seqs", "--mem-fraction-static", "--block-size-tokens",
    "--disable-hybrid-kv-cache-manager", "--enable-prefix-caching", "--no-enable-prefix-caching", "--ctx-size",
    "--parallel", "--cache-type-k", "--cache-type-v", "--speculative-config", "--page-size", "--dp-size",
    "--tp-size", "--swa-full", "--kv-unified", "--n-gpu-layers", "--kv-cache-memory", "--tensor-parallel-size",
    "--data-parallel-size", "--pipeline-parallel-size", "--enable-expert-parallel", "--cpu-offload-gb",
    "--hicache-storage-backend", "--hicache-storage-backend-extra-config", "--force", "--help", "--version", "--debug",
    "--chunked-prefill-size", "--disable-radix-cache", "--max-running-requests", "--swa-prefix-tails",
    "--disable-overlap-schedule",
}  # fmt: skip


def command_options(name: str) -> dict[str, str | None]:
    """Option names of one command -> their help panel."""
    command = typer.main.get_command(build_app(only=name)).commands[name]  # type: ignore[attr-defined]
    out = {}
    for param in command.params:
        for opt in [*param.opts, *param.secondary_opts]:
            out[opt] = getattr(param, "rich_help_panel", None)
    return out


def test_every_byte_printing_command_takes_the_same_deployment_options():
    sets = {}
    for name in BYTE_COMMANDS:
        options = command_options(name)
        sets[name] = {opt for opt, panel in options.items() if panel == DEPLOYMENT_PANEL}
    reference = sets["estimate"]
    assert len(reference) >= 15
    for name, options in sets.items():
        assert options == reference, (name, options ^ reference)


def all_flags() -> set[str]:
    flags = set()
    for name in COMMANDS:
        flags |= set(command_options(name))
    return flags


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_docs_name_only_flags_that_exist(doc):
    known = all_flags() | ENGINE_FLAGS
    text = doc.read_text()
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", text))
    missing = sorted(flag for flag in named if flag not in known)
    assert not missing, f"{doc.name} names flags that no command has: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_docs_link_only_files_that_exist(doc):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
        if "://" in target:
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links {target}, which does not exist"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_an_example(name):
    command = typer.main.get_command(build_app(only=name)).commands[name]  # type: ignore[attr-defined]
    assert "Example: mla-mem " in (command.help or "")


def test_the_deployment_option_names_are_the_deployment_fields():
    from mla_mem.cli import DEPLOYMENT_OPTIONS, deployment_parameters
    from mla_mem.options import FIELDS

    assert DEPLOYMENT_OPTIONS == tuple(p.name for p in deployment_parameters("ideal")) == FIELDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_example_runs(name, tmp_path):
    """The example in each command's help, run as written from a directory that sees the repository's configs,
    examples and tests (outputs land in the temporary directory)."""
    import shlex
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    for part in ("configs", "examples", "tests"):
        (tmp_path / part).symlink_to(root / part)
    command = typer.main.get_command(build_app(only=name)).commands[name]  # type: ignore[attr-defined]
    example = re.search(r"Example: mla-mem (.+)", command.help or "").group(1)  # type: ignore[union-attr]
    if name == "gallery":  # rendered once per run, by tests/test_plots.py::test_gallery_is_up_to_date_and_stable
        assert example == "gallery plots"
        return
    args = " ".join(shlex.quote(a) if "*" not in a else a for a in shlex.split(example))
    result = subprocess.run(f"{sys.executable} -m mla_mem {args}", shell=True, cwd=tmp_path, capture_output=True,
                            text=True, timeout=180)  # fmt: skip
    assert result.returncode == 0, (example, result.stderr[-500:])


def test_the_package_and_its_metadata_name_one_version():
    import re
    from pathlib import Path

    import mla_mem

    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert declared is not None and declared.group(1) == mla_mem.__version__
    changelog = (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text()
    assert f"## {mla_mem.__version__}" in changelog


def test_every_benchmark_script_starts():
    """The benchmarks are run by hand, not by CI: a script that no longer imports would go unnoticed."""
    import subprocess
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    for script in sorted(folder.glob("*.py")):
        if script.name.startswith("_"):
            continue
        result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{script.name}: {result.stderr[-500:]}"
