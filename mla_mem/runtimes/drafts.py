"""Speculative decoding's draft caches, by each runtime's rule (after the target is lowered).

- vLLM 0.33 (v1/core/kv_cache_planning.py:1113-1147): an EAGLE / EAGLE-3 draft's attention layers are KV-cache
  layers like the target's: lowered with the target's runtime, tp and block size, they join the main pool (one
  `UniformTypeKVCacheSpecs` group when every layer needs the same token slots, bytes per block summed over layers).
- SGLang 0.5.23 (model_executor/pool_configurator.py DefaultPoolConfigurator, 258-314): the draft pool holds as
  many tokens as the target's, and its cell is sized as `int(cell x draft_layers / target_layers)`: "EAGLE/
  STANDALONE: assumes the draft shares the target's per-layer KV size", whatever the draft's own dims.
- ideal: exactly the draft's own layers, as for vLLM.
- MTP is the model's own MTP layers (`--mtp`); so are DSpark's draft stages (ideal, vLLM 0.30-0.33 and SGLang
  0.5.23, where each keeps a window like the target's layers); other runtimes are refused rather than guessed.
"""

from __future__ import annotations

from dataclasses import replace

from ..cache import CacheStream, Plan
from ..options import OptionError

DRAFT_RUNTIMES = ("ideal", "vllm", "sglang")


def attach_draft(plan: Plan) -> Plan:
    """`plan` with the draft model's cache added as streams after the target's layers (and its MTP layers)."""
    deployment = plan.deployment
    method = deployment.spec
    if method in (None, "mtp"):
        return plan
    name = plan.runtime.name
    if method == "dspark":
        # vLLM 0.33 models/deepseek_v41/nvidia/dspark.py: the draft stages are the checkpoint's MTP layers
        # (num_nextn_predict_layers), each a decoder layer of compress ratio 0 with a sliding-window cache, lowered
        # as the model's MTP layers; sized only where the model's own rules hold (the ideal runtime for V4.1)
        if not plan.model.mtp_layers:
            raise OptionError("spec", f"dspark: {plan.model.name} has no draft stages (num_nextn_predict_layers)")
        if name != "ideal" and not plan.model.compress_ratios() & {1, 2}:
            raise OptionError("spec", f"dspark: {name}'s DSpark serves DeepSeek-V4.1 (deepseek_v41) only")
        if name not in ("ideal", "vllm", "sglang"):  # windows like the target's: runtimes/vllm.py, sglang.py
            raise OptionError("spec", f"dspark: {name}'s DSpark draft caches are not modelled; use runtime ideal, "
                                      "vllm or sglang")  # fmt: skip
        return plan
    if deployment.pp > 1:
        raise OptionError("draft", "a draft model with pipeline parallelism is not modelled (it runs on the last "
                                   "stage); give pp 1")  # fmt: skip
    if name not in DRAFT_RUNTIMES:
        raise OptionError("draft", f"{name}: where a draft's cache lives is not modelled; {', '.join(DRAFT_RUNTIMES)} "
                                   "are")  # fmt: skip
    from ..models import load_model

    assert deployment.draft is not None
    draft = load_model(deployment.draft)
    first = plan.stages[-1][1]  # the layer after the target's last (and its MTP layers)
    if name == "sglang":
        extra, layers, note = _sglang_draft(plan, draft.layers, draft.name, first)
    else:
        from . import lower

        own = deployment.with_(spec=None, draft=None, mtp=False,
                               block_size=plan.block_size if name == "vllm" else deployment.block_size)  # fmt: skip
        sub = lower(draft, own)
        extra = tuple(
            replace(s, layers=tuple(layer + first for layer in s.layers), component=f"draft_{s.component}",
                    kind=f"draft:{s.kind}")
            for s in sub.streams
        )  # fmt: skip
        layers = sub.stages[-1][1]
        plural = "layer caches" if draft.layers == 1 else f"{draft.layers} layers cache"
        note = (f"{method} draft {draft.name}: its {plural} in the main pool "
                + ("(vllm: same block ids, bytes per block summed over the layers)" if name == "vllm" else "(ideal)"))  # fmt: skip
    return replace(plan, streams=plan.streams + extra, stages=((0, first + layers),), notes=plan.notes + (note,))


def _sglang_draft(
    plan: Plan, draft_layers: int, draft_name: str, first: int
) -> tuple[tuple[CacheStream, ...], int, str]:
    streams = plan.stage_streams(0)
    if any(s.is_state or s.window is not None or s.tokens_per_entry != 1 for s, _ in streams):
        raise OptionError("draft", "sglang: draft pools beside sliding-window or state pools are not modelled")
    cell = sum(s.entry_bytes * count for s, count in streams)
    target_layers = plan.stages[-1][1]
    extra = cell * draft_layers // target_layers
    stream = CacheStream(
        component="draft_kv", layers=(first,), entry_bytes=extra, block=plan.block_size, kind="draft",
        description=f"{draft_name} as {draft_layers} of the target's layers",
        formula=f"int({cell:,} B x {draft_layers} / {target_layers}) = {extra:,} B (SGLang sizes EAGLE drafts as "
                "target layers)",
    )  # fmt: skip
    note = (f"sglang: the {plan.deployment.spec} draft pool holds as many tokens as the target's; its cell is "
            f"{draft_layers} of the target's {target_layers} layers (pool_configurator.py), not {draft_name}'s own dims")  # fmt: skip
    return (stream,), 1, note


__all__ = ["attach_draft"]
