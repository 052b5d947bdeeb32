"""Hugging Face model ids as MODEL arguments (`org/name`, `org/name@revision`), resolved with huggingface_hub the
way the ecosystem's own tools resolve them: the local cache first (HF_HOME, HF_HUB_CACHE), then the Hub unless
HF_HUB_OFFLINE is set; HF_TOKEN and gated repositories as huggingface_hub handles them; HF_ENDPOINT for a mirror.
huggingface_hub is imported only when an id is given, so start-up does not pay for it."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from .errors import UsageError
from .records import record
from .spec import ModelSpec

HUB_ID = re.compile(
    r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})(?:@(?P<rev>[\w./-]{1,255}))?$"
)
CONFIG_FILES = ("config.json", "params.json")


def is_hub_id(text: str) -> bool:
    """`org/name` or `org/name@revision` that is not a file or directory here (a local path always wins) and does
    not name a model file (.yaml, .json, .gguf, .safetensors)."""
    match = HUB_ID.match(text)
    if match is None or Path(text).exists():
        return False
    return not match.group("repo").lower().endswith((".yaml", ".yml", ".json", ".gguf", ".safetensors"))


@record
class Resolved:
    """A Hub id resolved to a commit and the config file in the local cache."""

    repo: str
    revision: str | None  # as asked
    commit: str  # the commit the cache or the Hub resolved it to
    path: Path  # the config file in the local cache


def _commit_of(path: Path) -> str:
    """The snapshot folder a cached file sits in is named after its commit (huggingface_hub cache layout)."""
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else "unknown"


def resolve(text: str) -> Resolved:
    """The config.json (or params.json) of a Hub id: from the cache when it is there, else downloaded."""
    match = HUB_ID.match(text)
    assert match is not None
    repo, revision = match.group("repo"), match.group("rev")
    hub = _hub()
    for filename in CONFIG_FILES:  # the cache first: no network when the file is already there
        try:
            path = Path(hub.hf_hub_download(repo, filename, revision=revision, local_files_only=True))
            return Resolved(repo, revision, _commit_of(path), path)
        except Exception:  # noqa: BLE001, S112 - not cached (or a broken cache entry): try the next, then the Hub
            continue
    if hub.constants.HF_HUB_OFFLINE:
        raise UsageError(f"{text}: not in the local Hugging Face cache ({hub.constants.HF_HUB_CACHE}) and "
                         "HF_HUB_OFFLINE is set; download it once online, or give a config.json path")  # fmt: skip
    last: Exception | None = None
    for filename in CONFIG_FILES:
        try:
            path = Path(bounded(partial(hub.hf_hub_download, repo, filename, revision=revision), text))
            return Resolved(repo, revision, _commit_of(path), path)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to one line below
            if _kind(exc) != "entry":
                raise UsageError(explain(text, exc)) from None
            last = exc
    assert last is not None
    raise UsageError(f"{text}: the repository has no config.json or params.json at "
                     f"{revision or 'main'}; give a config path instead")  # fmt: skip


def bounded(call: Callable[[], Any], what: str) -> Any:  # noqa: ANN401
    """`call()` within MLA_MEM_HUB_TIMEOUT seconds (default 60): huggingface_hub retries a silent server with
    back-off and, for its error report, once more without a timeout, so a stalled endpoint would hang the command."""
    import threading

    try:
        deadline = float(os.environ.get("MLA_MEM_HUB_TIMEOUT", "60"))
    except ValueError:
        raise UsageError("MLA_MEM_HUB_TIMEOUT: expected seconds, e.g. 60") from None
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = call()
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            result["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        raise UsageError(f"{what}: cannot reach the Hub (no answer within {deadline:g} s, MLA_MEM_HUB_TIMEOUT) and "
                         "it is not in the local cache; check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1")  # fmt: skip
    if "error" in result:
        raise result["error"]
    return result["value"]


def _hub() -> Any:  # noqa: ANN401
    try:
        import huggingface_hub
    except ImportError:  # pragma: no cover - a dependency of mla-mem
        raise UsageError("Hub ids need the huggingface_hub package (pip install huggingface_hub)") from None
    return huggingface_hub


def _kind(exc: Exception) -> str:
    from huggingface_hub import errors

    if isinstance(exc, errors.GatedRepoError):
        return "gated"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return "repo"
    if isinstance(exc, errors.RevisionNotFoundError):
        return "revision"
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return "entry"
    if isinstance(exc, errors.LocalEntryNotFoundError | errors.OfflineModeIsEnabled | TimeoutError | ConnectionError):
        return "network"
    name = type(exc).__name__.lower()
    if "timeout" in name or "connect" in name:
        return "network"
    if isinstance(exc, errors.HfHubHTTPError):
        return "http"
    return "other"


def explain(text: str, exc: Exception) -> str:
    """One line for a failed Hub request: what went wrong and what to do."""
    kind = _kind(exc)
    if kind == "gated":
        return (f"{text}: a gated repository; accept its terms on the Hub and set HF_TOKEN (or log in with "
                "huggingface_hub) to read it")  # fmt: skip
    if kind == "repo":
        return f"{text}: no such repository on the Hub (or a private one: set HF_TOKEN)"
    if kind == "revision":
        return f"{text}: no such revision in the repository"
    if kind == "network":
        return (f"{text}: cannot reach the Hub ({type(exc).__name__}) and it is not in the local cache; check the "
                "network, HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache")  # fmt: skip
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{text}: the Hub answered {status or type(exc).__name__}; try again, or give a config path"


def load_hub_model(text: str) -> ModelSpec:
    """The model of a Hub id, named after the repository, its source the repo and the commit it resolved to."""
    from .hf import load_config

    found = resolve(text)
    name = found.repo.split("/", 1)[1]
    spec = load_config(str(found.path), name)
    origin = f"{found.repo}@{found.commit} (Hugging Face cache: {found.path})"
    return replace(spec, source=origin, checkpoint=f"hf:{found.repo}@{found.commit}")


def hub_weights(reference: str, layers: int | None) -> Any:  # noqa: ANN401
    """Weight bytes of a Hub checkpoint from its safetensors headers: a cached copy of the shards when present,
    else header-only range reads (huggingface_hub get_safetensors_metadata)."""
    from .checkpoint import Tensor, summarise

    repo, _, commit = reference.removeprefix("hf:").partition("@")
    hub = _hub()
    try:
        meta = bounded(partial(hub.get_safetensors_metadata, repo, revision=commit or None), repo)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line
        raise UsageError(explain(f"{repo}@{commit}" if commit else repo, exc)) from None
    tensors = []
    for file in meta.files_metadata.values():
        for name, info in file.tensors.items():
            begin, end = info.data_offsets
            tensors.append(Tensor(name, info.dtype.upper(), tuple(info.shape), end - begin))
    files = len(meta.files_metadata)
    return summarise(tensors, f"safetensors headers of {repo}@{commit} on the Hub ({files} file{'s' * (files > 1)})",
                     layers)  # fmt: skip


__all__ = ["explain", "hub_weights", "is_hub_id", "load_hub_model", "resolve"]
