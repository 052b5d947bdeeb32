"""SGLang's memory defaults: the mem_fraction_static it picks when none is given and the multimodal reservation it
takes from the cache, release by release. Read from every wheel 0.5.3-0.5.23 (server_args.py
`_handle_gpu_memory_settings` and `adjust_mem_fraction_for_vlm` to 0.5.18, arg_groups/memory_hook.py and
cuda_graph_hook.py from 0.5.19, mem_cache/kv_cache_configurator.py), and the own functions of 0.5.10-0.5.23 run on
the cases tests/test_hardware.py derives by hand. Before 0.5.3 the default was another formula: refused.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from .options import OptionError

if TYPE_CHECKING:
    from .cache import Plan

# Served text-only unless --enable-multimodal: enable_multimodal's default is off for these (server_args
# mm_disabled_models, 0.5.10 :157, 0.5.23 model_config.py:692-697).
TEXT_BY_DEFAULT = ("Gemma3ForConditionalGeneration", "Llama4ForConditionalGeneration")
# The first release with the model class (0.5.11 model_config.py:1390; KimiK3 through its text_config, 0.5.17).
FIRST_RELEASE = {"Gemma4ForConditionalGeneration": (0, 5, 11), "KimiK3ForConditionalGeneration": (0, 5, 17)}
# Architectures whose multimodal status was read; any other with a vision tower is taken as multimodal, and said so.
READ = (*TEXT_BY_DEFAULT, *FIRST_RELEASE, "Mistral3ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration")
# Multimodal models keep the breakable prefill graph where its allowlist names them (0.5.16 server_args.py:3800-3805)
PREFILL_ALLOWED = {"Qwen3_5MoeForConditionalGeneration": (0, 5, 16), "KimiK3ForConditionalGeneration": (0, 5, 18)}
# Qwen3.5's vision config class stores `depth`, never num_hidden_layers: SGLang reads its default 24 (configs/qwen3_vl.py)
DEPTH_UNREAD = ("Qwen3_5MoeForConditionalGeneration",)
VLM_CACHE_MIB = 100  # SGLANG_VLM_CACHE_SIZE_MB, taken from the cache of a multimodal model from 0.5.18


def multimodal(plan: Plan, notes: list[str] | None = None) -> bool:
    """Whether SGLang serves the model as multimodal by default (model_config.is_multimodal and not language_only)."""
    model, version = plan.model, plan.runtime.numbers
    if model.vision is None:
        return False
    arch = model.architecture
    if arch is None:
        raise OptionError("gpu_memory_utilization", f"sglang: {model.name} has a vision tower but no `architecture`; "
                          "SGLang's memory defaults for multimodal models depend on it: give `architecture` in the "
                          "model file, or --gpu-memory-utilization (its mem_fraction_static)")  # fmt: skip
    if arch in TEXT_BY_DEFAULT or version < FIRST_RELEASE.get(arch, (0,)):
        return False
    if arch not in READ and notes is not None:
        notes.append(f"sglang: {arch} with a vision tower taken as multimodal (its multimodal list was not read for "
                     "this architecture)")  # fmt: skip
    return True


def _prefill_graph_off(plan: Plan, mm: bool) -> str | None:
    """Why SGLang's prefill CUDA graph is off by default (it reserves memory for it when on), or None when it is on.
    The rules by release (`_handle_piecewise_cuda_graph` to 0.5.13, `_disable_tc_piecewise_cudagraph_if_incompatible`
    0.5.14, the breakable graph's from 0.5.15, cuda_graph_hook.py from 0.5.19), those a deployment here can trigger."""
    version, model, d = plan.runtime.numbers, plan.model, plan.deployment
    mechanisms = model.mechanisms()
    if version < (0, 5, 10):
        return "opt-in before 0.5.10 (enable_piecewise_cuda_graph)"
    if "compressed" in mechanisms:
        return "DeepSeek-V4"
    if mm and version < PREFILL_ALLOWED.get(model.architecture or "", (9,)):  # allow-lists start at 0.5.16
        return "multimodal model"
    if (0, 5, 15) <= version < (0, 5, 17) and "mla" in mechanisms:
        return "MLA attention"
    if (0, 5, 17) <= version < (0, 5, 18) and "mla" in mechanisms and "mla+indexer" not in mechanisms:
        return "MLA attention without an indexer"
    if version < (0, 5, 17) and d.dp_attention:
        return "data-parallel attention"
    if version < (0, 5, 11) and (d.mtp or d.spec is not None):
        return "speculative decoding"
    if plan.pp > 1 and (version < (0, 5, 14) or version >= (0, 5, 19)):
        return "pipeline parallelism"
    if version >= (0, 5, 16) and plan.dcp > 1:
        return "context-parallel decoding"
    if version >= (0, 5, 20) and "kda" in mechanisms:
        return "KDA linear attention"
    return None


def _capture_sizes(largest: int) -> int:
    """How many batch sizes the prefill graph captures up to `largest` tokens (the same rule in 0.5.10-0.5.23):
    4-32 step 4, 48-256 step 16, 288-512 step 32, 576-1024 step 64, 1280-4096 step 256, then step 512."""
    steps = ((4, 32, 4), (48, 256, 16), (288, 512, 32), (576, 1024, 64), (1280, 4096, 256), (4608, largest, 512))
    return sum(len(range(first, min(last, largest) + 1, step)) for first, last, step in steps)


def vlm_factor(plan: Plan) -> float:
    """adjust_mem_fraction_for_vlm (the same in 0.5.10-0.5.23): 0.95 x clamp(1 - 0.1 x (L x H^2 / (24 x 1024^2) -
    1), 0.8, 1.05) with the vision tower's layers L and width H (24 and 1024 where the config class has none)."""
    vision = plan.model.vision
    assert vision is not None
    layers = 24 if plan.model.architecture in DEPTH_UNREAD else vision.layers or 24
    width = vision.hidden_size or 1024
    ratio = layers * width**2 / (24 * 1024**2)
    return 0.95 * max(0.8, min(1.05, 1.0 - 0.1 * (ratio - 1.0)))


def mem_fraction(gpu_mib: int, plan: Plan, notes: list[str]) -> Fraction:
    """SGLang's default mem_fraction_static: the GPU class (nvidia-smi MiB) sets chunked_prefill_size and the decode
    graph's max_bs (20-35 GiB: 2,048 and 24/80 before 0.5.20, 4,096 and 48/160 after); reserved = 512 + max(cps,
    2048) x 1.5 + tp x pp / 8 x 1024 + the graphs (decode: max_bs x 2, with dp attention + max_bs x dp x 3 and x 1.5
    more above 300; prefill, when its graph is on: 1,536 for MLA models, else 8 per captured size up to cps), at
    least 10 GiB above 60 GiB, + 4 GiB for EAGLE/MTP drafts before 0.5.14; round((gpu - reserved) / gpu, 3), times
    the vision factor for a multimodal model."""
    version = plan.runtime.numbers
    if version < (0, 5, 3):
        raise OptionError("gpu_memory_utilization", f"sglang {plan.runtime.version}: its default mem_fraction_static "
                          "(before 0.5.3 a table of GPU classes and parallel sizes) was not modelled; give "
                          "--gpu-memory-utilization (its mem_fraction_static)")  # fmt: skip
    if plan.model.vision is not None and version < (0, 5, 10):
        raise OptionError("gpu_memory_utilization", f"sglang {plan.runtime.version}: which checkpoints it serves as "
                          "multimodal (and so its default mem_fraction_static for this one) was read from 0.5.10 on; "
                          "give --gpu-memory-utilization (its mem_fraction_static)")  # fmt: skip
    tp, pp, dp = plan.tp, plan.pp, plan.dp
    small = tp < 4
    if gpu_mib < 20 * 1024:
        cps, bs = 2048, 8
    elif gpu_mib < 35 * 1024:  # 0.5.3-0.5.4: max_bs 16 at tp < 4 (24 from 0.5.4.post1); 0.5.20 on: 4,096 and 48/160
        cps, bs = (4096, 48 if small else 160) if version >= (0, 5, 20) else (2048, (24 if version > (0, 5, 4) else 16)
                                                                                 if small else 80)  # fmt: skip
    elif gpu_mib < 60 * 1024:
        cps, bs = 4096, 32 if small else 160
    elif gpu_mib < 160 * 1024:
        cps, bs = 8192, 256 if small else 512
    else:
        cps, bs = 16384, 512
    reserved = Fraction(512) + Fraction(max(cps, 2048) * 3, 2) + bs * 2 + Fraction(tp * pp * 1024, 8)
    if plan.deployment.dp_attention:
        reserved += bs * dp * 3 + (Fraction(bs * dp * 3, 2) if bs > 300 else 0)
    mm = multimodal(plan, notes)
    off = _prefill_graph_off(plan, mm)
    prefill = 0 if off else 1536 if "mla" in plan.model.mechanisms() else 8 * _capture_sizes(cps)
    reserved += prefill
    if gpu_mib > 60 * 1024:
        reserved = max(reserved, Fraction(10 * 1024))
    if version < (0, 5, 14) and (plan.mtp or plan.deployment.spec is not None):
        # EAGLE / MTP drafts (every method mla-mem takes), after the floor: 2 GiB to 0.5.9, 4 GiB in 0.5.10-0.5.13
        reserved += 4096 if version >= (0, 5, 10) else 2048
    rounded = round((gpu_mib - float(reserved)) / gpu_mib, 3)  # in floats, as the engine computes it
    text = f"sglang default mem_fraction_static {rounded:.3f}"
    fraction = Fraction(rounded).limit_denominator(1000)
    if mm:
        factor = vlm_factor(plan)
        fraction = Fraction(rounded * factor)  # the engine's float, not rounded again
        text += f" x {factor:.6f} for the vision tower = {float(fraction):.6f}"
    graph = f"prefill graph off: {off}" if off else f"prefill graph {prefill:,} MiB"
    notes.append(f"{text} ({gpu_mib:,} MiB, {float(reserved):,.0f} MiB reserved; {graph})")
    return fraction


def multimodal_reserve(plan: Plan) -> int:
    """Bytes SGLang takes from a multimodal model's cache budget for its feature cache (0.5.18 on:
    kv_cache_configurator.py:3034-3038, SGLANG_VLM_CACHE_SIZE_MB; 0 before)."""
    return VLM_CACHE_MIB * 2**20 if plan.runtime.numbers >= (0, 5, 18) and multimodal(plan) else 0


__all__ = ["mem_fraction", "multimodal", "multimodal_reserve", "vlm_factor"]
