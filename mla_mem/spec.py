"""What a model IS, as far as its cache is concerned: frozen dataclasses, no arithmetic on bytes.

Layer kinds (one per layer, in `ModelSpec.layer_kinds`):
  full     attention over the whole context (K/V heads, or the MLA latent)
  sliding  the same attention, keeping only the last `sliding_window` tokens
  linear   linear attention (Gated DeltaNet, Kimi Delta Attention): a constant state per sequence

DeepSeek-V4's attention compressed along the sequence (attention kind `compressed`) has its own kinds; every
such layer keeps a window of the last `sliding_window` tokens:
  window   the window only
  csa      compressed sparse attention: one entry per `compress_rates.csa` tokens, plus indexer keys
  hca      heavily compressed attention: one entry per `compress_rates.hca` tokens, no indexer
"""

from __future__ import annotations

from dataclasses import dataclass, field

LAYER_KINDS = ("full", "sliding", "linear")
WEIGHT_DTYPES = ("bf16", "fp16", "fp32", "fp8", "int4", "mxfp4", "mxfp4-experts")
COMPRESSED_KINDS = ("window", "csa", "hca")


@dataclass(frozen=True)
class KVAttention:
    """Attention that caches keys and values per KV head: MHA (kv_heads = heads), GQA, MQA (kv_heads = 1)."""

    kind: str  # "mha" | "gqa" | "mqa"
    heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int

    @property
    def elements_per_token(self) -> int:
        """K and V values cached per token per layer: kv_heads x (head_dim + v_head_dim)."""
        return self.kv_heads * (self.head_dim + self.v_head_dim)


@dataclass(frozen=True)
class MLAttention:
    """Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434): one latent of kv_lora_rank plus a
    decoupled rope key of qk_rope_head_dim per token, shared by all heads."""

    heads: int
    kv_lora_rank: int
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int
    q_lora_rank: int | None = None
    kind: str = "mla"

    @property
    def latent_dim(self) -> int:
        """kv_lora_rank + qk_rope_head_dim (576 for DeepSeek-V3)."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    @property
    def elements_per_token(self) -> int:
        return self.latent_dim


@dataclass(frozen=True)
class CompressedAttention:
    """DeepSeek-V4 attention: one shared key-value vector of head_dim (nope + rope) per cache entry, kept for a
    window of recent tokens and, on compressed layers, once per r tokens (DeepSeek-V4 technical report)."""

    heads: int
    head_dim: int
    qk_rope_head_dim: int
    kind: str = "compressed"

    @property
    def elements_per_token(self) -> int:
        return self.head_dim


Attention = KVAttention | MLAttention | CompressedAttention


@dataclass(frozen=True)
class LinearAttention:
    """Linear attention with a constant per-sequence state.

    Gated DeltaNet (Qwen3-Next) and Kimi Delta Attention share one shape: a short causal convolution over
    q, k and v channels (conv_dim = 2 x key_heads x key_head_dim + value_heads x value_head_dim) and a
    recurrent state of value_heads x key_head_dim x value_head_dim. KDA has key_heads = value_heads.
    """

    kind: str  # "gated_deltanet" | "kda"
    key_heads: int
    value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int

    @property
    def conv_dim(self) -> int:
        return 2 * self.key_heads * self.key_head_dim + self.value_heads * self.value_head_dim

    @property
    def recurrent_elements(self) -> int:
        return self.value_heads * self.key_head_dim * self.value_head_dim


@dataclass(frozen=True)
class Indexer:
    """DeepSeek Sparse Attention's lightning indexer (DeepSeek-V3.2, GLM-5): one key of head_dim per token
    on every layer that has it; `layers` None means every attention layer."""

    heads: int
    head_dim: int
    topk: int
    layers: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Params:
    """Published parameter counts (from the model card), for display and checks."""

    total: int | None = None
    active: int | None = None


@dataclass(frozen=True)
class Weights:
    """The few dims a parameter count needs (from config.json: hidden_size, vocab_size, intermediate_size, ...)."""

    hidden_size: int
    vocab_size: int
    intermediate_size: int  # dense MLP width (dense models, and the first dense layers of MoE models)
    tie_embeddings: bool = False
    experts: int = 0
    experts_per_token: int = 0
    shared_experts: int = 0
    expert_intermediate_size: int = 0
    first_dense_layers: int = 0
    dtype: str = "bf16"  # the checkpoint's weight format: bf16 | fp16 | fp8 | int4 | mxfp4 | mxfp4-experts


@dataclass(frozen=True)
class ModelSpec:
    name: str
    layers: int
    attention: Attention
    layer_kinds: tuple[str, ...]
    sliding_window: int | None = None
    linear_attention: LinearAttention | None = None
    indexer: Indexer | None = None
    mtp_layers: int = 0
    dtype: str = "bf16"
    max_context: int | None = None
    source: str | None = None
    aliases: tuple[str, ...] = ()
    params: Params = field(default_factory=Params)
    path: str | None = None
    compress_rates: tuple[tuple[str, int], ...] = ()
    weights: Weights | None = None

    def compress_rate(self, kind: str) -> int:
        """Tokens per compressed entry of a csa/hca layer."""
        return dict(self.compress_rates)[kind]

    def layers_of(self, kind: str) -> tuple[int, ...]:
        """0-based indices of the layers of one kind."""
        return tuple(i for i, k in enumerate(self.layer_kinds) if k == kind)

    def count(self, kind: str) -> int:
        return sum(1 for k in self.layer_kinds if k == kind)

    @property
    def attention_kind(self) -> str:
        """A short label: 'mla', 'gqa', 'mla+linear', 'gqa+sliding', 'compressed (csa+hca)', ..."""
        if self.attention.kind == "compressed":
            kinds = "+".join(k for k in COMPRESSED_KINDS if k in self.layer_kinds)
            return f"compressed ({kinds})"
        parts = [self.attention.kind]
        if "sliding" in self.layer_kinds and "full" in self.layer_kinds:
            parts.append("sliding")
        elif "sliding" in self.layer_kinds:
            parts = [f"{self.attention.kind} (sliding)"]
        if "linear" in self.layer_kinds:
            assert self.linear_attention is not None
            parts.append(self.linear_attention.kind)
        if self.indexer is not None:
            parts.append("dsa")
        return "+".join(parts)

    @property
    def indexer_layers(self) -> tuple[int, ...]:
        if self.indexer is None:
            return ()
        if self.indexer.layers is not None:
            return self.indexer.layers
        if self.attention.kind == "compressed":
            return self.layers_of("csa")
        return tuple(i for i, k in enumerate(self.layer_kinds) if k != "linear")
