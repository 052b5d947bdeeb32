"""The cross-check's models: real config.json files, shrunk where the cache does not care, read by both sides.

Each case takes a real config (tests/data/hf or tests/data/wild; sources in their READMEs), keeps a few of its
layers (every layer kind of the model at least once, the family's own schedule keys cut to those layers) and shrinks
only what the cache does not depend on: the vocabulary, the number and width of experts, MLP widths, q_lora_rank and,
where every cache dim is an explicit key, the hidden size. Query and KV heads, head dims, MLA ranks, indexer dims,
state dims and conv kernels stay the model's own. Windows and chunks above 1,024 tokens are cut to 1,024 to keep the
prompts short on the CPU (the rule checked, W - 1 kept, is the same at any W).

The shrunk file is written once; mla-mem reads it like any config.json (the importer and the runtime rules), and
transformers builds a random model from the same dict. The test compares the bytes.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"
SMALL = 128
HIDDEN = 256
MAX_WINDOW = 1024

# keys with one entry per layer, and keys listing 0-based layer indices
PER_LAYER_LISTS = ("layer_types", "attn_type_list", "layers_block_type", "indexer_types", "no_rope_layers",
                   "hybrid_layer_pattern", "moe_layer_freq", "mlp_layer_types", "block_configs")  # fmt: skip
INDEX_LISTS = ("full_attn_idxs", "attn_layer_indices", "mlp_only_layers")
EXPERT_COUNTS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
EXPERTS_PER_TOKEN = ("num_experts_per_tok", "num_experts_per_token", "moe_topk")
WIDTHS = ("moe_intermediate_size", "expert_ffn_hidden_size", "ffn_hidden_size", "shared_expert_intermediate_size",
          "moe_shared_expert_intermediate_size", "intermediate_size_mlp", "shared_intermediate_size")  # fmt: skip
DROP = ("quantization_config", "auto_map", "compression_config")


@dataclass(frozen=True)
class Case:
    name: str
    file: str  # under tests/data
    layers: tuple[int, ...]  # the real model's layers kept, in order
    first: tuple[int, int] = (4, 57)  # first transformers release with the model class (measured)
    model_type: str | None = None  # when transformers names the family differently
    keep_hidden: bool = False  # a cache dim derives from hidden_size
    keep: tuple[str, ...] = ()  # keys not to shrink (a cache dim for this family)
    edit: dict[str, Any] = field(default_factory=dict)  # further keys of the shrunk config
    prompts: tuple[int, ...] = (24, 100)
    state_dtype: dict[tuple[int, int], str] = field(default_factory=dict)  # release below which -> --state-dtype
    refused_before: tuple[int, int] | None = None  # mla-mem refuses the family on earlier releases
    builtin: str = ""  # no config file: the built-in model's dims, its config written by `from_builtin`
    # releases below this ran the sliding layers one token short of the model's window (a transformers bug, fixed):
    # the test expects mla-mem's figure for windows of W - 1 there
    window_short_before: tuple[int, int] | None = None


def _text(data: dict[str, Any]) -> dict[str, Any]:
    """The language model's config of a multimodal or remote-code wrapper."""
    return data["text_config"] if isinstance(data.get("text_config"), dict) else data


def _cut(config: dict[str, Any], keep: tuple[int, ...]) -> None:
    """Keep the layers `keep` (indices of the real model) in every per-layer key."""
    total = config.get("num_hidden_layers") or config.get("num_layers") or config.get("n_layer")
    position = {old: new for new, old in enumerate(keep)}
    for key in PER_LAYER_LISTS:
        if isinstance(config.get(key), list) and len(config[key]) == total:
            config[key] = [config[key][i] for i in keep]
    if isinstance(config.get("hybrid_override_pattern"), str):
        config["hybrid_override_pattern"] = "".join(config["hybrid_override_pattern"][i] for i in keep)
    for key in INDEX_LISTS:
        if isinstance(config.get(key), list):
            config[key] = [position[i] for i in config[key] if i in position]
    linear = config.get("linear_attn_config")
    if isinstance(linear, dict):
        for key in ("full_attn_layers", "kda_layers"):  # 1-based
            linear[key] = [position[i - 1] + 1 for i in linear.get(key) or [] if i - 1 in position]
    for key in ("num_hidden_layers", "num_layers", "n_layer"):
        if key in config:
            config[key] = len(keep)


def _shrink(config: dict[str, Any], case: Case) -> None:
    for key in DROP:
        config.pop(key, None)
    config["vocab_size"] = 512
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if key in config:
            config[key] = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}[key]
    for key in EXPERT_COUNTS:
        if isinstance(config.get(key), int) and config[key] > 4 and key not in case.keep:
            config[key] = 4
    for key in EXPERTS_PER_TOKEN:
        if isinstance(config.get(key), int) and config[key] > 2:
            config[key] = 2
    for key in ("n_shared_experts", "num_shared_experts"):
        if isinstance(config.get(key), int) and config[key] > 1:
            config[key] = 1
    for key in ("n_group", "topk_group"):
        if key in config:
            config[key] = 1
    if isinstance(config.get("zero_expert_num"), int):
        config["zero_expert_num"] = 2
    for key in (*WIDTHS, "intermediate_size"):
        if isinstance(config.get(key), int) and key not in case.keep:
            config[key] = SMALL
    if config.get("q_lora_rank"):
        config["q_lora_rank"] = 64
    if not case.keep_hidden:
        for key in ("hidden_size", "n_embd"):
            if key in config:
                config[key] = HIDDEN
    for key in ("sliding_window", "attention_chunk_size"):
        if isinstance(config.get(key), int) and config[key] > MAX_WINDOW:
            config[key] = MAX_WINDOW
    for key in ("torch_dtype", "dtype"):
        config.pop(key, None)
    config["torch_dtype"] = "bfloat16"
    config["tie_word_embeddings"] = False
    config.update(copy.deepcopy(case.edit))


def shrunk_config(case: Case) -> dict[str, Any]:
    if case.builtin:
        return from_builtin(case)
    config = copy.deepcopy(_text(json.loads((DATA / case.file).read_text())))
    _cut(config, case.layers)
    _shrink(config, case)
    if case.model_type:
        config["model_type"] = case.model_type
    return config


def builtin_spec(case: Case) -> Any:
    """The built-in model with only the layers `case.layers`, MTP off."""
    from dataclasses import replace

    import mla_mem

    spec = mla_mem.load_model(case.builtin)
    kinds = tuple(spec.layer_kinds[i] for i in case.layers)
    used = {k for k in kinds}
    return replace(spec, layers=len(kinds), layer_kinds=kinds, mtp_layers=0,
                   kinds=tuple(k for k in spec.kinds if k.name in used))  # fmt: skip


def from_builtin(case: Case) -> dict[str, Any]:
    """A transformers config with the built-in model's cache dims (Qwen3-Next, DeepSeek-V2-Lite, DeepSeek-V4)."""
    from mla_mem.spec import MLA, Attention, Compressed, GatedDeltaNet

    spec = builtin_spec(case)
    base: dict[str, Any] = {"num_hidden_layers": spec.layers, "hidden_size": HIDDEN, "intermediate_size": SMALL,
                            "vocab_size": 512, "max_position_embeddings": 8192, "torch_dtype": "bfloat16",
                            "tie_word_embeddings": False, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}  # fmt: skip
    attention = spec.attention
    if isinstance(attention, MLA):
        base.update(model_type="deepseek_v2", num_attention_heads=attention.heads, num_key_value_heads=attention.heads,
                    kv_lora_rank=attention.kv_lora_rank, qk_rope_head_dim=attention.qk_rope_head_dim,
                    qk_nope_head_dim=attention.qk_nope_head_dim, v_head_dim=attention.v_head_dim, q_lora_rank=None,
                    n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, moe_intermediate_size=SMALL,
                    first_k_dense_replace=1, n_group=1, topk_group=1)  # fmt: skip
    elif isinstance(attention, Compressed):
        names = {"window": "sliding_attention", "csa": "compressed_sparse_attention",
                 "hca": "heavily_compressed_attention"}  # fmt: skip
        rates = dict(spec.compress_rates)
        assert spec.indexer is not None
        base.update(
            model_type="deepseek_v4", num_attention_heads=8, num_key_value_heads=1, head_dim=attention.head_dim,
            qk_rope_head_dim=attention.qk_rope_head_dim, q_lora_rank=64, o_lora_rank=64, o_groups=2,
            moe_intermediate_size=SMALL, n_routed_experts=4, n_shared_experts=1, num_experts_per_tok=2,
            num_hash_layers=1, index_n_heads=8, index_head_dim=spec.indexer.head_dim, index_topk=16,
            sliding_window=spec.sliding_window, layer_types=[names[k] for k in spec.layer_kinds],
            compress_rates={names["csa"]: rates["csa"], names["hca"]: rates["hca"]},
        )  # fmt: skip
    else:
        assert isinstance(attention, Attention) and isinstance(spec.linear_attention, GatedDeltaNet)
        linear = spec.linear_attention
        types = {"full": "full_attention", "linear": "linear_attention"}
        base.update(
            model_type="qwen3_next", num_attention_heads=attention.heads, num_key_value_heads=attention.kv_heads,
            head_dim=attention.head_dim, layer_types=[types[k] for k in spec.layer_kinds],
            linear_num_key_heads=linear.key_heads, linear_num_value_heads=linear.value_heads,
            linear_key_head_dim=linear.key_head_dim, linear_value_head_dim=linear.value_head_dim,
            linear_conv_kernel_dim=linear.conv_kernel, num_experts=4, num_experts_per_tok=2,
            moe_intermediate_size=SMALL, shared_expert_intermediate_size=SMALL, decoder_sparse_step=1,
            mlp_only_layers=[],
        )  # fmt: skip
    return base


CASES = [
    # MLA: the latent from 5.15, expanded per head before (DeepSeek-V3, Kimi K2, LongCat-Flash)
    Case("deepseek-v3", "hf/deepseek-v3.config.json", (0, 3)),
    Case("kimi-k2", "hf/kimi-k2-instruct.config.json", (0, 1), model_type="deepseek_v3"),
    Case("longcat-flash", "wild/longcat-flash-chat.mlx-bf16.config.json", (0,)),
    # DSA: MLA + indexer keys, expanded until 5.18
    Case("deepseek-v3.2", "hf/deepseek-v3.2.config.json", (0, 3), first=(5, 11)),
    Case("glm-5", "hf/glm-5.config.json", (0, 3), first=(5, 2)),
    Case("glm-5.2", "wild/glm-5.2.config.json", (2, 3), first=(5, 12)),  # one indexer layer, one shared
    # linear attention and state-space hybrids
    Case("kimi-linear", "hf/kimi-linear-48b-a3b-instruct.config.RECONSTRUCTED.json", (2, 3), first=(5, 17)),
    Case(
        "kimi-k3", "wild/kimi-k3.config.json", (2, 3), first=(5, 17), edit={"hidden_act": "silu"}
    ),  # situ: remote code
    Case("qwen3.5", "wild/qwen3.5-397b-a17b.config.json", (2, 3), first=(5, 2)),
    Case(
        "jamba",
        "wild/jamba-v0.1.config.json",
        (0, 1, 2, 3, 4),
        keep_hidden=True,
        state_dtype={(5, 5): "fp32"},
        edit={"use_mamba_kernels": False},
    ),  # the CUDA kernels; the torch path keeps the same state
    Case(
        "nemotron-3-super",
        "wild/nvidia-nemotron-3-super-120b-a12b-fp8.config.json",
        (0, 1, 7),
        first=(5, 3),
        model_type="nemotron_h",
    ),  # fmt: skip
    Case("bamba", "wild/bamba-9b.config.json", (8, 9), keep_hidden=True),
    Case(
        "mamba2",
        "wild/mamba-codestral-7b-v0.1.mlx-8bit.config.json",
        (0, 1),
        keep_hidden=True,
        keep=("intermediate_size",),
    ),  # fmt: skip
    Case("minimax-m1", "wild/minimax-m1.config.json", (6, 7), model_type="minimax"),
    Case("lfm2", "wild/lfm2-1.2b.config.json", (1, 2), keep_hidden=True, refused_before=(5, 5)),
    # windows, chunks, per-kind dims
    Case("gpt-oss", "hf/gpt-oss-120b.config.json", (0, 1), prompts=(24, 200)),
    Case("gemma-2", "wild/gemma-2-2b-it-poem.config.json", (0, 1), prompts=(24, 1100)),
    Case("gemma-3", "hf/gemma-3-27b-it.config.RECONSTRUCTED.json", (4, 5), prompts=(64, 1100)),
    Case("gemma-4", "wild/gemma-4-31b-it-nvfp4.config.json", (4, 5), first=(5, 5), prompts=(64, 1100)),
    Case("llama-4", "wild/llama-4-maverick-17b-128e-instruct.config.json", (0, 1, 2, 3), prompts=(64, 1100)),
    # transformers 5.20 configuration_mimo_v2_flash.py: "The reference SGLang implementation attends to
    # `sliding_window_size` previous tokens plus the query", sliding_window = sliding_window_size + 1; 5.13-5.19 used 128
    Case(
        "mimo-v2-flash",
        "wild/mimo-v2-flash.config.json",
        (0, 1),
        first=(5, 13),
        prompts=(64, 200),
        window_short_before=(5, 20),
    ),  # fmt: skip
    Case("phi-3.5", "wild/phi-3.5-mini-instruct.config.json", (0, 1), keep_hidden=True),
    Case("smollm3", "wild/smollm3-3b.config.json", (2, 3), keep_hidden=True),
    Case("exaone-4", "wild/exaone-4.0-1.2b.config.json", (0, 1)),
    Case("olmo-2", "wild/olmo-2-1124-13b.config.json", (0, 1), keep_hidden=True),
    Case("gpt2", "wild/gpt2-xl.config.json", (0, 1), keep_hidden=True),
    Case("llama-3.1-8b", "hf/llama-3.1-8b.config.json", (0, 1), keep_hidden=True),
    # built-ins without a config file here (their YAML's dims)
    Case("qwen3-next", "", (0, 1, 2, 3), builtin="qwen3-next-80b-a3b"),
    Case("deepseek-v2-lite", "", (0, 1), builtin="deepseek-v2-lite"),
    # before the first compressed window closes, and with tokens waiting in the compressor's buffer
    Case("deepseek-v4-flash", "", (1, 2, 3), builtin="deepseek-v4-flash", first=(5, 24), prompts=(2, 130, 300)),
]
