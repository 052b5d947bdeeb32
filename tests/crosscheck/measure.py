"""Build a model with transformers on the CPU, generate two tokens (a prefill of S tokens and one decode step) and
count the bytes of every tensor its cache object holds (numel x element size), without looking at the config."""

from __future__ import annotations

from typing import Any

import torch
import transformers


def cache_tensors(cache: Any) -> list[torch.Tensor]:
    """Every distinct tensor reachable from the cache object (attributes, lists, tuples, dicts)."""
    seen: set[int] = set()
    found: dict[int, torch.Tensor] = {}

    def walk(value: Any, depth: int) -> None:
        if depth > 8 or id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            found[id(value)] = value
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, depth + 1)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item, depth + 1)
        elif hasattr(value, "__dict__") and type(value).__module__.startswith("transformers"):
            if isinstance(value, (transformers.PretrainedConfig, torch.nn.Module)):
                return
            for item in vars(value).values():
                walk(item, depth + 1)

    walk(cache, 0)
    return list(found.values())


def module_buffers(model: torch.nn.Module, before: set[int]) -> list[torch.Tensor]:
    """Tensors that appeared on the model's modules while it ran (GLM-5's indexer keys before transformers 5.11)."""
    found = []
    for module in model.modules():
        for name, value in vars(module).items():
            if isinstance(value, torch.Tensor) and id(value) not in before and name.startswith("_cached"):
                found.append(value)
        for name, buffer in module.named_buffers(recurse=False):
            if id(buffer) not in before and "cache" in name:
                found.append(buffer)
    return found


def _all_tensor_ids(model: torch.nn.Module) -> set[int]:
    ids = {id(t) for t in model.parameters()} | {id(t) for t in model.buffers()}
    for module in model.modules():
        ids |= {id(v) for v in vars(module).values() if isinstance(v, torch.Tensor)}
    return ids


def build(config_dict: dict[str, Any]) -> torch.nn.Module:
    torch.manual_seed(0)
    values = {k: v for k, v in config_dict.items() if k != "model_type"}
    config = transformers.AutoConfig.for_model(config_dict["model_type"], **values)
    config._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    return model.eval()


def measured_bytes(config_dict: dict[str, Any], prompt: int, batch: int) -> tuple[int, dict[str, int]]:
    """Bytes held by the cache after a prefill of `prompt` tokens and one decode step, for `batch` sequences."""
    model = build(config_dict)
    before = _all_tensor_ids(model)
    ids = torch.randint(3, config_dict["vocab_size"], (batch, prompt))
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=2, min_new_tokens=2, do_sample=False,
            use_cache=True, return_dict_in_generate=True, pad_token_id=0,
        )  # fmt: skip
        cache = getattr(out, "past_key_values", None)
        if cache is None:  # Mamba and Mamba-2 on 4.57 return no cache from generate(): a state is constant anyway
            forward = model(input_ids=ids, use_cache=True)
            cache = getattr(forward, "cache_params", None) or getattr(forward, "past_key_values", None)
    assert cache is not None, "transformers returned no cache object"
    # keys, values, latents, indexer keys, conv and recurrent states are floating point; integer tensors in the
    # cache object are bookkeeping (e.g. a sliding layer's int64 token counter), not cached data
    tensors = [t for t in cache_tensors(cache) + module_buffers(model, before) if t.dtype.is_floating_point]
    by_dtype: dict[str, int] = {}
    for tensor in tensors:
        by_dtype[str(tensor.dtype)] = by_dtype.get(str(tensor.dtype), 0) + tensor.numel() * tensor.element_size()
    return sum(by_dtype.values()), by_dtype
