"""The one family of errors mla-mem raises for bad input. The CLI turns each into one line and exit 2."""

from __future__ import annotations


class MlaMemError(Exception):
    """Bad input of any kind: a message for the user, no traceback."""

    exit_code = 2


class UsageError(MlaMemError):
    """A bad option value or an impossible request (unknown dtype, context of 0, ...)."""


class ConfigError(MlaMemError):
    """An invalid model file: names the file, the key path and what was expected."""

    def __init__(self, file: str, key: str, message: str, line: int | None = None):
        self.file = file
        self.key = key
        self.line = line
        self.detail = message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


# The command line's flags and the keyword arguments of the Python API that mean the same. Flags of the engines
# themselves (vLLM's --kv-cache-dtype, SGLang's --enable-dp-attention) are not ours and keep their spelling.
_API_NAMES = {
    "--as": "variants", "--context": "context", "--batch": "batch", "--gpu": "gpu", "--gpus": "gpus",
    "--memory": "memory", "--weight-dtype": "weight_dtype", "--reserve": "reserve",
    "--gpu-memory-utilization": "gpu_memory_utilization", "--kv-cache-memory": "kv_cache_memory",
    "--num-gpu-blocks-override": "num_gpu_blocks_override", "--min-context": "min_context",
    "--max-context": "max_context", "--cache-memory": "cache_memory", "--max-growth": "max_growth",
    "--offload": "offload", "--offload-chunk": "offload_chunk_blocks", "--shared-prefix": "shared_prefix",
}  # fmt: skip


def api_wording(message: str) -> str:
    """`message` as the Python API says it: each of our command-line flags becomes the keyword argument that means
    the same (`--kv-cache-memory` -> `kv_cache_memory`, `--as` -> `variants`, `--tp` -> `tp`)."""
    import re

    from .options import FIELDS

    names = dict(_API_NAMES, **{f"--{name.replace('_', '-')}": name for name in FIELDS})
    message = message.replace("run 'mla-mem models' for", "mla_mem.builtin_names() lists")
    return re.sub(r"--[a-z][a-z0-9-]*", lambda m: names.get(m.group(0), m.group(0)), message)
