"""GGUF files (llama.cpp's checkpoints) as models: dims from the metadata, weight bytes from the tensor table,
read with the `gguf` package (imported only when a .gguf file is given).

Keys read (gguf/constants.py Keys.LLM / Keys.Attention / Keys.Rope): {arch}.block_count, .context_length,
.embedding_length, .attention.head_count, .attention.head_count_kv, .attention.key_length, .attention.value_length;
for deepseek2 (MLA) also .attention.kv_lora_rank, .attention.key_length_mla, .attention.value_length_mla,
.rope.dimension_count, .nextn_predict_layers. Anything that changes what llama.cpp caches and is not read here
(sliding windows, recurrent state, per-layer head counts that differ) is refused rather than guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import CheckpointWeights, Tensor, summarise
from .errors import ConfigError
from .spec import ModelSpec

# architectures whose attention is plain multi-head / grouped-query on every layer
GQA_ARCHS = ("llama", "mistral", "qwen2", "qwen3", "qwen2moe", "qwen3moe", "mixtral", "granite", "olmo", "olmo2",
             "phi3", "internlm2", "starcoder2", "stablelm", "command-r", "deci")  # fmt: skip
UNREAD = ("attention.sliding_window", "ssm.", "shortconv.", "wkv.", "attention.sliding_window_pattern",
          "full_attention_interval")  # fmt: skip


def _reader(path: Path) -> Any:
    try:
        from gguf import GGUFReader
    except ImportError:  # pragma: no cover - a dependency of mla-mem
        raise ConfigError(str(path), "", "reading GGUF needs the gguf package (pip install gguf)") from None
    try:
        return GGUFReader(path)
    except (ValueError, OSError, KeyError, IndexError) as exc:
        raise ConfigError(str(path), "", f"not a readable GGUF file: {exc}") from None


def _fields(reader: Any) -> dict[str, Any]:
    out = {}
    for name, item in reader.fields.items():
        try:
            out[name] = item.contents()
        except (ValueError, UnicodeDecodeError, IndexError):
            continue
    return out


def load_gguf(path_text: str) -> ModelSpec:
    """The model a GGUF file describes, its checkpoint the file itself."""
    from .configs import parse_model

    path = Path(path_text)
    fields = _fields(_reader(path))
    arch = fields.get("general.architecture")
    if not isinstance(arch, str):
        raise ConfigError(path_text, "general.architecture", "missing; not a model GGUF")

    def get(key: str, default: Any = None, required: bool = True) -> Any:
        value = fields.get(f"{arch}.{key}", default)
        if value is None and required:
            raise ConfigError(path_text, f"{arch}.{key}", "missing; llama.cpp needs it to size the cache")
        return value

    for key in fields:
        if key.startswith(f"{arch}.") and any(part in key for part in UNREAD):
            raise ConfigError(path_text, key, f"{arch} GGUF with {key.split('.', 1)[1]}: what llama.cpp caches then "
                                              "is not read from GGUF yet; give the model's config.json instead")  # fmt: skip
    nextn = int(get("nextn_predict_layers", 0, required=False))
    layers = int(get("block_count")) - nextn
    heads = _uniform(path_text, f"{arch}.attention.head_count", get("attention.head_count"))
    embedding = int(get("embedding_length"))
    model: dict[str, Any] = {"name": str(fields.get("general.name") or path.stem), "source": str(path),
                             "layers": layers, "max_context": int(get("context_length"))}  # fmt: skip
    if arch == "deepseek2":
        if fields.get(f"{arch}.attention.key_length_mla") is None:
            raise ConfigError(path_text, f"{arch}.attention.key_length_mla", "missing: a DeepSeek GGUF converted before "
                              "llama.cpp's MLA cache, which llama.cpp runs with per-head keys and values; re-convert "
                              "it, or give the model's config.json")  # fmt: skip
        rope = int(get("rope.dimension_count"))
        model["attention"] = {
            "kind": "mla", "heads": heads, "kv_lora_rank": int(get("attention.kv_lora_rank")),
            "qk_rope_head_dim": rope, "qk_nope_head_dim": int(get("attention.key_length_mla")) - rope,
            "v_head_dim": int(get("attention.value_length_mla")),
        }  # fmt: skip
    elif arch in GQA_ARCHS:
        head_dim = int(get("attention.key_length", embedding // heads, required=False))
        value_dim = int(get("attention.value_length", head_dim, required=False))
        if value_dim != head_dim:
            raise ConfigError(path_text, f"{arch}.attention.value_length", f"{value_dim} differs from key_length "
                                                                           f"{head_dim}; not read from GGUF yet")  # fmt: skip
        kv_heads = _uniform(path_text, f"{arch}.attention.head_count_kv", get("attention.head_count_kv", heads))
        model["attention"] = {"kind": "gqa", "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim}
    else:
        raise ConfigError(path_text, "general.architecture", f"{arch!r}: not read from GGUF yet (llama, qwen2/3, "
                                                             "mistral, mixtral, deepseek2 and similar are); give the "
                                                             "model's config.json instead")  # fmt: skip
    if nextn:
        model["mtp_layers"] = nextn
    spec = parse_model(model, path_text)
    from dataclasses import replace

    return replace(spec, checkpoint=str(path))


def _uniform(file: str, key: str, value: Any) -> int:
    if isinstance(value, list):
        if len(set(value)) != 1:
            raise ConfigError(file, key, f"differs by layer ({sorted(set(value))}); not read from GGUF yet")
        value = value[0]
    return int(value)


def gguf_weights(path_text: str, layers: int | None) -> CheckpointWeights:
    """Bytes of every tensor in the file's tensor table, by quantisation type and component."""
    reader = _reader(Path(path_text))
    tensors = [
        Tensor(t.name, t.tensor_type.name, tuple(int(d) for d in t.shape), int(t.n_bytes)) for t in reader.tensors
    ]
    return summarise(tensors, f"GGUF tensor table of {path_text}", layers, pack={})


__all__ = ["gguf_weights", "load_gguf"]
