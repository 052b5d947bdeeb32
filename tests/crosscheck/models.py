"""Shrunk but cache-exact versions of the built-in models, as mla-mem specs and as transformers configs.

Every dimension that decides the cache is taken from the shipped YAML: query heads, KV heads, head dims, the MLA
kv_lora_rank, rope/nope/v dims, sliding windows, linear-attention heads, head dims and conv kernels, the indexer
head dim, and DeepSeek-V4's shared K=V head dim, window and compression rates. (The indexer's and V4's query head
counts are shrunk: they do not reach the cache.) Only what the cache does not depend on is shrunk: 2 to 4 layers (keeping the layer-kind
pattern), a hidden size of 256, 4 small experts, q_lora_rank 64, a vocabulary of 512, MLP widths of 128.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import mla_mem
from mla_mem.spec import KVAttention, MLAttention, ModelSpec

HIDDEN = 256
VOCAB = 512
SMALL = 128


def shrink(name: str, kinds: tuple[str, ...]) -> ModelSpec:
    """The built-in model with its layer list replaced by `kinds` (same dims otherwise), MTP off."""
    spec = mla_mem.load_model(name)
    indexer = spec.indexer
    if indexer is not None:
        indexer = replace(indexer, layers=None)
    return replace(spec, layers=len(kinds), layer_kinds=kinds, mtp_layers=0, indexer=indexer)


def _moe(config: dict[str, Any]) -> dict[str, Any]:
    config.update(
        n_routed_experts=4,
        num_experts_per_tok=2,
        n_shared_experts=1,
        moe_intermediate_size=SMALL,
        first_k_dense_replace=1,
        n_group=1,
        topk_group=1,
        moe_layer_freq=1,
        norm_topk_prob=True,
        routed_scaling_factor=1.0,
    )
    return config


def _base(spec: ModelSpec, model_type: str) -> dict[str, Any]:
    return {"model_type": model_type, "num_hidden_layers": spec.layers, "hidden_size": HIDDEN,
            "intermediate_size": SMALL, "vocab_size": VOCAB, "max_position_embeddings": 8192,
            "torch_dtype": "bfloat16", "tie_word_embeddings": False, "rope_scaling": None,
            "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}  # fmt: skip


def _mla(spec: ModelSpec, model_type: str) -> dict[str, Any]:
    a = spec.attention
    assert isinstance(a, MLAttention)
    config = _base(spec, model_type)
    config.update(
        num_attention_heads=a.heads,
        num_key_value_heads=a.heads,
        kv_lora_rank=a.kv_lora_rank,
        qk_rope_head_dim=a.qk_rope_head_dim,
        qk_nope_head_dim=a.qk_nope_head_dim,
        v_head_dim=a.v_head_dim,
        q_lora_rank=64 if a.q_lora_rank else None,
        head_dim=a.qk_rope_head_dim,
    )
    return _moe(config)


def _gqa(spec: ModelSpec, model_type: str) -> dict[str, Any]:
    a = spec.attention
    assert isinstance(a, KVAttention)
    config = _base(spec, model_type)
    config.update(num_attention_heads=a.heads, num_key_value_heads=a.kv_heads, head_dim=a.head_dim)
    return config


def _layer_types(kinds: tuple[str, ...]) -> list[str]:
    return [{"full": "full_attention", "sliding": "sliding_attention", "linear": "linear_attention"}[k] for k in kinds]


def case(name: str) -> tuple[ModelSpec, dict[str, Any]]:
    """(mla-mem spec, transformers config dict) for one architecture of the suite."""
    if name in ("deepseek-v3", "kimi-k2"):
        spec = shrink(name, ("full",) * 2)
        return spec, _mla(spec, "deepseek_v3")
    if name == "deepseek-v2-lite":
        spec = shrink(name, ("full",) * 2)
        return spec, _mla(spec, "deepseek_v2")
    if name == "deepseek-v3.2":
        spec = shrink(name, ("full",) * 2)
        config = _mla(spec, "deepseek_v32")
        assert spec.indexer is not None
        config.update(index_n_heads=spec.indexer.heads, index_head_dim=spec.indexer.head_dim, index_topk=64)
        return spec, config
    if name == "glm-5":
        spec = shrink(name, ("full",) * 2)
        config = _mla(spec, "glm_moe_dsa")
        assert spec.indexer is not None
        config.update(index_n_heads=spec.indexer.heads, index_head_dim=spec.indexer.head_dim, index_topk=64)
        return spec, config
    if name == "kimi-linear-48b-a3b":
        kinds = ("linear", "full", "linear")
        spec = shrink(name, kinds)
        config = _mla(spec, "kimi_linear")
        linear = spec.linear_attention
        assert linear is not None
        config.update(
            num_experts=4, num_experts_per_token=2, num_shared_experts=1, moe_intermediate_size=SMALL,
            linear_attn_config={
                "full_attn_layers": [i + 1 for i, k in enumerate(kinds) if k == "full"],
                "kda_layers": [i + 1 for i, k in enumerate(kinds) if k == "linear"],
                "num_heads": linear.value_heads, "head_dim": linear.value_head_dim,
                "short_conv_kernel_size": linear.conv_kernel,
            },
            mla_use_nope=True,
        )  # fmt: skip
        return spec, config
    if name == "qwen3-next-80b-a3b":
        kinds = ("linear", "linear", "linear", "full")
        spec = shrink(name, kinds)
        config = _gqa(spec, "qwen3_next")
        linear = spec.linear_attention
        assert linear is not None
        config.update(
            layer_types=_layer_types(kinds), linear_num_key_heads=linear.key_heads,
            linear_num_value_heads=linear.value_heads, linear_key_head_dim=linear.key_head_dim,
            linear_value_head_dim=linear.value_head_dim, linear_conv_kernel_dim=linear.conv_kernel,
            num_experts=4, num_experts_per_tok=2, moe_intermediate_size=SMALL, shared_expert_intermediate_size=SMALL,
            decoder_sparse_step=1, mlp_only_layers=[],
        )  # fmt: skip
        return spec, config
    if name == "gpt-oss-120b":
        kinds = ("sliding", "full")
        spec = shrink(name, kinds)
        config = _gqa(spec, "gpt_oss")
        config.update(
            layer_types=_layer_types(kinds),
            sliding_window=spec.sliding_window,
            num_local_experts=4,
            num_experts_per_tok=2,
            experts_per_token=2,
        )
        return spec, config
    if name == "gemma-3-27b":
        kinds = ("sliding", "full")
        spec = shrink(name, kinds)
        config = _gqa(spec, "gemma3_text")
        config.update(layer_types=_layer_types(kinds), sliding_window=spec.sliding_window, query_pre_attn_scalar=128)
        return spec, config
    if name == "deepseek-v4-flash":
        kinds = ("window", "csa", "hca")
        spec = shrink(name, kinds)
        a = spec.attention
        assert spec.indexer is not None and spec.sliding_window is not None
        names = {
            "window": "sliding_attention",
            "csa": "compressed_sparse_attention",
            "hca": "heavily_compressed_attention",
        }
        config = _base(spec, "deepseek_v4")
        config.update(
            num_attention_heads=8, num_key_value_heads=1, head_dim=a.head_dim, qk_rope_head_dim=a.qk_rope_head_dim,
            q_lora_rank=64, o_lora_rank=64, o_groups=2, moe_intermediate_size=SMALL, n_routed_experts=4,
            n_shared_experts=1, num_experts_per_tok=2, num_hash_layers=1, index_n_heads=8,
            index_head_dim=spec.indexer.head_dim, index_topk=16, sliding_window=spec.sliding_window,
            layer_types=[names[k] for k in kinds],
            compress_rates={"compressed_sparse_attention": spec.compress_rate("csa"),
                            "heavily_compressed_attention": spec.compress_rate("hca")},
        )  # fmt: skip
        return spec, config
    if name == "llama-3.1-8b":
        spec = shrink(name, ("full",) * 2)
        return spec, _gqa(spec, "llama")
    raise KeyError(name)


SUITE = [
    "deepseek-v3",
    "kimi-k2",
    "deepseek-v3.2",
    "glm-5",
    "deepseek-v2-lite",
    "kimi-linear-48b-a3b",
    "qwen3-next-80b-a3b",
    "gpt-oss-120b",
    "gemma-3-27b",
    "llama-3.1-8b",
    "deepseek-v4-flash",
]
# transformers 4.57 has no DeepSeek-V3.2, GLM-5 (glm_moe_dsa), Kimi Linear or DeepSeek-V4 model classes
NOT_IN_457 = {
    "deepseek-v3.2": "no deepseek_v32 model class in transformers 4.57",
    "glm-5": "no glm_moe_dsa model class in transformers 4.57",
    "kimi-linear-48b-a3b": "no kimi_linear model class in transformers 4.57",
    "deepseek-v4-flash": "no deepseek_v4 model class in transformers 4.57",
}
