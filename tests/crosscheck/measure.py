"""Build a model with transformers on the CPU, run a prefill and one decode step, and count the bytes of every
tensor its cache object holds (numel x element size), without looking at the config."""

from __future__ import annotations

import inspect
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
            for item in vars(value).values():
                walk(item, depth + 1)

    walk(cache, 0)
    return list(found.values())


def measured_bytes(config_dict: dict[str, Any], prompt: int, batch: int) -> tuple[int, dict[str, int]]:
    """Bytes held by the cache after a prefill of `prompt` tokens and one decode step, for `batch` sequences."""
    torch.manual_seed(0)
    model_type = config_dict["model_type"]
    config = transformers.AutoConfig.for_model(
        model_type, **{k: v for k, v in config_dict.items() if k != "model_type"}
    )
    config._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.eval()
    ids = torch.randint(3, config_dict["vocab_size"], (batch, prompt))
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        cache = getattr(out, "past_key_values", None) or getattr(out, "cache", None)
        step = torch.randint(3, config_dict["vocab_size"], (batch, 1))
        # transformers 5.x names the argument `cache` (`past_key_values` deprecated); 4.x only knows the latter
        parameters = inspect.signature(model.forward).parameters
        kwargs = {"cache": cache} if "cache" in parameters else {"past_key_values": cache}
        out = model(input_ids=step, use_cache=True, **kwargs)
        cache = getattr(out, "past_key_values", None) or getattr(out, "cache", None) or cache
    # keys, values, latents, indexer keys, conv and recurrent states are floating point; integer tensors in the
    # cache object are bookkeeping (e.g. a sliding layer's int64 token counter), not cached data
    tensors = [t for t in cache_tensors(cache) if t.dtype.is_floating_point]
    by_dtype: dict[str, int] = {}
    for tensor in tensors:
        by_dtype[str(tensor.dtype)] = by_dtype.get(str(tensor.dtype), 0) + tensor.numel() * tensor.element_size()
    return sum(by_dtype.values()), by_dtype
