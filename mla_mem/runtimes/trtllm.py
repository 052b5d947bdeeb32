"""TensorRT-LLM 1.x, PyTorch backend. Sources: tensorrt_llm/_torch/pyexecutor/resource_manager.py (KVCacheManager:
heads per rank ceil(kv_heads / tp), tokens_per_block 32; MLA caches kv_lora_rank + qk_rope_head_dim; the DSA indexer
cache 128 fp8 + fp32 scale in 64-token blocks), mamba_cache_manager.py."""

from __future__ import annotations

from ..options import Deployment, OptionError
from ..spec import ModelSpec
from . import Profile
from .rules import Rules, StateRule, has_kind, model_dtype, state_dtype


def rules(model: ModelSpec, deployment: Deployment) -> Rules:
    kv = model_dtype(deployment.kv_dtype, model)
    if kv.name not in ("bf16", "fp16", "fp32", "fp8_e4m3", "nvfp4"):
        raise OptionError(
            "kv_dtype", f"trtllm: unsupported cache dtype {kv.name}; expected auto, bf16, fp16, fp8 or nvfp4"
        )
    indexed = has_kind(model, lambda k: k.indexer is not None)
    block = deployment.block_size or (64 if indexed else 32)  # tokens_per_block 32; 64 for the V3.2 indexer
    state = state_dtype(deployment, model.dtype)
    notes = []
    if has_kind(model, lambda k: k.window is not None):
        notes.append("trtllm: sliding layers counted as the window rounded up to whole blocks")
    if has_kind(model, lambda k: k.chunk is not None):
        notes.append("trtllm: chunked layers keep the full sequence (attention_chunk_size reaches only the kernel)")
    if has_kind(model, lambda k: k.state is not None):
        notes.append(
            "trtllm: linear state assumed (k-1) conv columns and recurrent state in the model dtype "
            "(mamba_cache_manager.py; mamba_ssm_cache_dtype auto)"
        )
    return Rules(
        runtime=deployment.runtime, kv=kv, v=kv, kv_label=kv.name,
        indexer_bytes=132 if indexed else None,
        indexer_formula="index_head_dim 128 fp8 + one fp32 scale (TensorRT-LLM DSA indexer cache)",
        head_split="ceil", block=block, indexer_block=64 if indexed else block, window_rule="window",
        # tensorrt_llm/_torch/pyexecutor/mamba_cache_manager.py: conv [conv_dim / tp, d_conv - 1] and SSM [heads / tp,
        # head_dim, d_state], both in the model dtype (mamba_ssm_cache_dtype auto)
        # the SSM state in mamba_ssm_cache_dtype when the config names it (Nemotron 3: float32; PR 16065)
        states={"gated_deltanet": StateRule("k-1", state, state), "kda": StateRule("k-1", state, state),
                "mamba2": StateRule("k-1", state, state, declared_dtype=True)},
        # Llama 4: attention_chunk_size reaches only the attention kernel (PR 4330); every layer is sized at the
        # full sequence
        chunk_rule="full",
        notes=tuple(notes),
        refuse_compressed="trtllm: no DeepSeek-V4 (compressed attention) rules for this runtime yet (TensorRT-LLM "
        "lists DeepSeek-V4 from 1.3.0rc22; its DeepseekV4CacheManager on KVCacheManagerV2 changed its sizing between "
        "commits mla-mem could not map to releases); use runtime vllm, sglang, llama.cpp, transformers or ideal",
    )  # fmt: skip


PROFILE = Profile(
    name="trtllm", default_version="1.2", low=(1, 0), high=(1, 99), described="1.x (PyTorch backend)",
    rules=rules, order=5, aliases=("tensorrt-llm", "tensorrt_llm", "trt-llm"),
    sources=("tensorrt_llm/_torch/pyexecutor/resource_manager.py",),
)  # fmt: skip
