"""The memory around the cache on one GPU: what an engine holds besides weights and KV cache.

vLLM measures it at start-up (Worker.determine_available_memory, vllm/v1/worker/gpu_worker.py): a profile run of
max_num_batched_tokens tokens gives the torch activation peak, the CUDA context and NCCL give non-torch memory, and
from 0.20 the CUDA-graph capture is estimated and subtracted too. mla-mem cannot run the model, so it models each
term from the model's widths and the engine's settings; docs/memory.md has the model, the public log lines it was
calibrated on, and its error on each. `--reserve` replaces the model with one figure.

  activation  = max_num_batched_tokens x hidden x 2 B x ACT_HIDDEN_FACTOR          (hidden states, attention, norms)
              + max_num_batched_tokens x widest MLP / tp x 2 B x ACT_MLP_FACTOR    (gate, up and their product; MoE:
                                                                                    experts per token x expert width)
              + min(max_num_batched_tokens, max_num_seqs) x vocab / tp x 4 B x 2   (fp32 logits and the sampler's copy)
  non_torch   = NON_TORCH_BASE + NCCL_PER_GROUP with more than one GPU                 (CUDA context, cuBLAS, NCCL)
  cuda_graphs = GRAPH_BYTES (vLLM 0.20+, which subtracts the capture's estimate; earlier it fits in the headroom)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .records import record

if TYPE_CHECKING:
    from .cache import Plan

GIB = 2**30
MIB = 2**20
# Calibrated on the log lines of tests/engine_logs/profiling*.yaml (docs/memory.md).
ACT_HIDDEN_FACTOR = 4
ACT_MLP_FACTOR = 3
NON_TORCH_BASE = 512 * MIB
NCCL_PER_GROUP = 512 * MIB
GRAPH_BYTES = 512 * MIB
MAX_NUM_SEQS = 256  # vLLM's default max_num_seqs (EngineArgs)


@record
class Around:
    """Bytes per GPU beside weights and cache, by term; `source` says whether it is modelled or given."""

    activation: int
    non_torch: int
    cuda_graphs: int
    source: str  # "model" | "--reserve"
    tokens: int = 0  # max_num_batched_tokens of the profile run

    @property
    def total(self) -> int:
        return self.activation + self.non_torch + self.cuda_graphs

    def as_dict(self) -> dict[str, int | str]:
        return {"activation": self.activation, "non_torch": self.non_torch, "cuda_graphs": self.cuda_graphs,
                "total": self.total, "source": self.source, "max_num_batched_tokens": self.tokens}  # fmt: skip


def given(reserve: int) -> Around:
    return Around(activation=reserve, non_torch=0, cuda_graphs=0, source="--reserve")


def default_batched_tokens(device_bytes: int, gpu_name: str, version: tuple[int, ...] = (0, 33)) -> int:
    """vLLM's max_num_batched_tokens for `vllm serve` (vllm/engine/arg_utils.py get_batch_defaults, by the CUDA
    total): 16384 on a GPU of 160 GiB or more from 0.28 ("B200/B300", for serve and the LLM class alike); 8192 on
    one of 70 GiB or more other than A100; else 2048."""
    if version >= (0, 28) and device_bytes >= 160 * GIB:
        return 16384
    return 8192 if device_bytes >= 70 * GIB and "A100" not in gpu_name.upper() else 2048


def modelled(plan: Plan, device_bytes: int, gpu_name: str) -> Around | None:
    """The modelled terms, or None when the model file lacks the widths (no `weights` section)."""
    weights = plan.model.weights
    if weights is None:
        return None
    tokens = plan.deployment.max_batched_tokens or default_batched_tokens(device_bytes, gpu_name, plan.runtime.numbers)
    tp = plan.tp
    widest = max(weights.intermediate_size, weights.expert_intermediate_size * max(1, weights.experts_per_token))
    activation = (
        tokens * weights.hidden_size * 2 * ACT_HIDDEN_FACTOR
        + tokens * -(-widest // tp) * 2 * ACT_MLP_FACTOR
        + min(tokens, MAX_NUM_SEQS) * -(-weights.vocab_size // tp) * 4 * 2
    )
    non_torch = NON_TORCH_BASE + (NCCL_PER_GROUP if plan.gpus > 1 else 0)
    graphs = GRAPH_BYTES if plan.runtime.name == "vllm" and plan.runtime.numbers >= (0, 20) else 0
    return Around(activation=activation, non_torch=non_torch, cuda_graphs=graphs, source="model", tokens=tokens)


__all__ = ["Around", "default_batched_tokens", "given", "modelled"]
