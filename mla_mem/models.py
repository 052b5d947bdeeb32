"""MODEL arguments -> ModelSpec: a built-in name or alias, a YAML model file, a Hugging Face config.json (or the
directory holding it), a Mistral params.json, a GGUF file, or a Hugging Face Hub id (org/name[@revision]). The one
place that decides what a model reference means."""

from __future__ import annotations

import os
from pathlib import Path

from .configs import builtin_names, load_builtin, load_model_file, normalise, resolve_builtin
from .errors import ConfigError, UsageError
from .spec import ModelSpec
from .yamlio import suggest


def looks_like_path(text: str) -> bool:
    return os.sep in text or text.endswith((".yaml", ".yml", ".json")) or Path(text).exists()


def load_model(model: str | os.PathLike[str] | ModelSpec) -> ModelSpec:
    """A built-in name or alias ('deepseek-v3', 'DeepSeek-R1'), a YAML model file, a Hugging Face config.json
    (or the directory holding it), a Mistral params.json, a .gguf file or a Hub id ('deepseek-ai/DeepSeek-V3')."""
    if isinstance(model, ModelSpec):
        return model
    text = str(model)
    if not text.strip():
        raise UsageError("model: expected a built-in name, a YAML file or a config.json, got an empty string")
    if text.lower().endswith(".gguf") and Path(text).is_file():
        from .ggufread import load_gguf

        return load_gguf(text)
    if "/" in text and not Path(text).exists():  # a Hub id has one; built-ins never do, and a local path wins
        from .hub import is_hub_id, load_hub_model

        if is_hub_id(text):
            return load_hub_model(text)
    if looks_like_path(text):
        path = Path(text)  # a config.json (or its directory) is read by hf.py, imported only then
        if text.endswith(".json") or (
            path.is_dir() and any((path / f).is_file() for f in ("config.json", "params.json"))
        ):
            from .hf import load_config

            return load_config(text)
        if Path(text).is_dir():
            raise ConfigError(text, "", "is a directory without config.json or params.json")
        return load_model_file(text)
    found = resolve_builtin(text)
    if found is None:
        raise UsageError(
            f"unknown model {text!r}{suggest(normalise(text), builtin_names())}; "
            "run 'mla-mem models' for the built-in names, or give a path to a YAML file, a config.json or a .gguf, or a "
            "Hub id (org/name)"
        )
    return load_builtin(found)


def import_model(config: str, name: str | None = None) -> tuple[str, list[str], str]:
    """`mla-mem import`: the YAML text of a config.json / params.json (or its directory) or a Hub id, the notes on
    what was inferred, and the file read. The model is validated before any text is returned."""
    from .configs import parse_model
    from .hf import import_config, to_yaml
    from .hub import is_hub_id, resolve

    source = config
    if is_hub_id(config):  # the cached (or downloaded) config of a Hub id, its origin recorded
        found = resolve(config)
        source = f"{found.repo}@{found.commit}"
        model, notes, file = import_config(str(found.path), name or found.repo.split("/", 1)[1])
        model["checkpoint"] = f"hf:{source}"
    else:
        model, notes, file = import_config(config, name)
    parse_model(model, file)  # the result must load
    return to_yaml(model, notes, source), notes, file


def load_reference(ref: str) -> ModelSpec:
    """A model as `load_model` reads it, or 'REV:path', the file at a git revision (for `diff` in CI)."""
    if os.path.exists(ref) or ":" not in ref or (len(ref) > 1 and ref[1] == ":" and ref[0].isalpha()):
        return load_model(ref)
    revision, _, path = ref.partition(":")
    if not revision or not path:
        raise UsageError(f"{ref}: expected REV:path, e.g. HEAD~1:configs/model.yaml")
    import subprocess

    try:
        result = subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"{ref}: cannot run git ({exc})") from None
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"{ref}: git show failed: {reason[-1] if reason else 'unknown error'}")
    if len(result.stdout) > 4 << 20:
        raise UsageError(f"{ref}: file is too large")
    text = result.stdout.decode("utf-8-sig", "replace")
    if path.endswith(".json"):
        from .hf import load_config_text

        folder = Path(path).parent.name
        return load_config_text(
            text,
            ref,
            folder if Path(path).name in ("config.json", "params.json") and folder else Path(path).stem,
        )
    from .configs import parse_model
    from .yamlio import load_yaml

    return parse_model(load_yaml(text, ref), ref)
