"""What a model IS, as far as its cache is concerned: layer kinds, each saying what one layer of it caches, with
its own dims. Frozen dataclasses and descriptions; no arithmetic on bytes (that is runtimes.py and cache.py).

A model is a list of layers; every layer has a kind (`ModelSpec.layer_kinds`), and a kind (`LayerKind`) holds:

  attention   what the layer's attention caches per token: keys and values per KV head (`Attention`: MHA, GQA,
              MQA), the MLA latent (`MLA`), or DeepSeek-V4's shared key-value vector (`Compressed`)
  window      the attention keeps only the last `window` tokens (sliding-window attention)
  chunk       the attention sees only the tokens of its chunk (chunked local attention, Llama 4)
  compress_ratio
              one cache entry per `compress_ratio` tokens besides the window (DeepSeek-V4; 0 = window only)
  attention_blocks
              several attention blocks with their own caches in one layer (LongCat-Flash: 2)
  indexer     DeepSeek Sparse Attention's lightning-indexer keys (DeepSeek-V3.2, GLM-5, DeepSeek-V4's csa layers)
  state       a constant state per sequence: linear attention (Gated DeltaNet, Kimi Delta Attention, lightning),
              Mamba-1, Mamba-2, short convolutions

A kind with none of these caches nothing (MLP-only layers, layers that reuse another layer's keys and values).
A layer that has both attention and a state (Falcon-H1, Hymba) keeps both.

`describe_*` turn a spec into the words and labels the commands print, so nothing outside this module and the
lowering (runtimes.py) needs to know the kinds.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from .records import record

WEIGHT_DTYPES = ("bf16", "fp16", "fp32", "fp8", "int4", "mxfp4", "mxfp4-experts", "fp8+mxfp4-experts")


# ---------------------------------------------------------------------------------------------------------
# Attention: what grows with the context


@record
class Attention:
    """Keys and values per KV head: MHA (kv_heads = heads), GQA, MQA (kv_heads = 1). `k_eq_v`: keys and values
    share one tensor (Gemma 4's `attention_k_eq_v`)."""

    heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int
    k_eq_v: bool = False

    @property
    def kind(self) -> str:
        if self.kv_heads == self.heads:
            return "mha"
        return "mqa" if self.kv_heads == 1 else "gqa"

    @property
    def values_per_token(self) -> int:
        """Values cached per token per layer: kv_heads x (head_dim + v_head_dim), or kv_heads x head_dim."""
        return self.kv_heads * (self.head_dim if self.k_eq_v else self.head_dim + self.v_head_dim)


@record
class MLA:
    """Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434): one latent of kv_lora_rank plus a decoupled rope
    key of qk_rope_head_dim per token, shared by all heads."""

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
    def values_per_token(self) -> int:
        return self.latent_dim


@record
class Compressed:
    """DeepSeek-V4 attention: one shared key-value vector of head_dim (nope + rope) per cache entry, kept for a
    window of recent tokens and, on compressed layers, once per compress_ratio tokens (DeepSeek-V4 report)."""

    heads: int
    head_dim: int
    qk_rope_head_dim: int
    kind: str = "compressed"
    # weights only (parameter counts): the query's LoRA rank and the grouped output projection
    q_lora_rank: int | None = None
    o_groups: int | None = None
    o_lora_rank: int | None = None

    @property
    def values_per_token(self) -> int:
        return self.head_dim


AnyAttention = Attention | MLA | Compressed


@record
class Indexer:
    """DeepSeek Sparse Attention's lightning indexer: one key of head_dim per token (per compress_ratio tokens on
    DeepSeek-V4) on every layer of a kind that has it."""

    heads: int
    head_dim: int
    topk: int


# ---------------------------------------------------------------------------------------------------------
# States: constant per sequence


@record
class GatedDeltaNet:
    """Gated DeltaNet (Qwen3-Next, Qwen3.5) and Kimi Delta Attention (key_heads = value_heads): a short causal
    convolution over q, k and v channels and a recurrent state of value_heads x key_head_dim x value_head_dim."""

    key_heads: int
    value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int
    kind: str = "gated_deltanet"  # or "kda"
    recurrent_dtype: str | None = None  # the dtype the model's config asks for the recurrent state (mamba_ssm_dtype)

    @property
    def conv_channels(self) -> int:
        return 2 * self.key_heads * self.key_head_dim + self.value_heads * self.value_head_dim

    @property
    def recurrent_values(self) -> int:
        return self.value_heads * self.key_head_dim * self.value_head_dim


@record
class Mamba1:
    """Mamba (Jamba's SSM layers): a convolution over d_inner channels and an SSM state of d_inner x d_state."""

    d_inner: int
    d_state: int
    conv_kernel: int
    kind: str = "mamba1"
    recurrent_dtype: str | None = None  # the dtype the model's config asks for the SSM state

    @property
    def conv_channels(self) -> int:
        return self.d_inner

    @property
    def recurrent_values(self) -> int:
        return self.d_inner * self.d_state


@record
class Mamba2:
    """Mamba-2 (Nemotron-H, Granite-4.0-H, Bamba, Falcon-H1, Zamba2): a convolution over x, B and C channels
    (heads x head_dim + 2 x groups x d_state) and an SSM state of heads x head_dim x d_state."""

    heads: int
    head_dim: int
    groups: int
    d_state: int
    conv_kernel: int
    kind: str = "mamba2"
    recurrent_dtype: str | None = None  # the dtype the model's config asks for the SSM state (mamba_ssm_cache_dtype)

    @property
    def d_inner(self) -> int:
        return self.heads * self.head_dim

    @property
    def conv_channels(self) -> int:
        return self.d_inner + 2 * self.groups * self.d_state

    @property
    def recurrent_values(self) -> int:
        return self.heads * self.head_dim * self.d_state


@record
class Lightning:
    """Lightning attention (MiniMax-M1 / MiniMax-Text-01 linear layers): a key-value state of heads x head_dim x
    head_dim per sequence, no convolution."""

    heads: int
    head_dim: int
    kind: str = "lightning"

    @property
    def conv_channels(self) -> int:
        return 0

    @property
    def conv_kernel(self) -> int:
        return 0

    @property
    def recurrent_values(self) -> int:
        return self.heads * self.head_dim * self.head_dim


@record
class ShortConv:
    """A gated short convolution (LFM2's conv layers): the last conv_kernel - 1 inputs over `channels`."""

    channels: int
    conv_kernel: int
    kind: str = "short_conv"

    @property
    def conv_channels(self) -> int:
        return self.channels

    @property
    def recurrent_values(self) -> int:
        return 0


State = GatedDeltaNet | Mamba1 | Mamba2 | Lightning | ShortConv
STATE_KINDS = ("gated_deltanet", "kda", "mamba1", "mamba2", "lightning", "short_conv")


# ---------------------------------------------------------------------------------------------------------
# Layers and models


@record
class LayerKind:
    """What one layer of this kind caches (see the module docstring)."""

    name: str
    attention: AnyAttention | None = None
    window: int | None = None
    chunk: int | None = None
    compress_ratio: int = 0
    attention_blocks: int = 1
    indexer: Indexer | None = None
    state: State | None = None
    description: str = ""

    @property
    def caches_nothing(self) -> bool:
        return self.attention is None and self.state is None and self.indexer is None

    @property
    def grows(self) -> bool:
        """True when the layer's cache grows with the context without bound."""
        if self.attention is None:
            return False
        if isinstance(self.attention, Compressed):
            return self.compress_ratio > 0
        return self.window is None and self.chunk is None


@record
class Params:
    """Published parameter counts (from the model card), for display and checks."""

    total: int | None = None
    active: int | None = None


@record
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
    dtype: str = "bf16"
    hc_mult: int = 0  # DeepSeek-V4's hyper-connection streams (0: plain residual)  # the checkpoint's weight format: bf16 | fp16 | fp8 | int4 | mxfp4 | mxfp4-experts


@record
class Vision:
    """The checkpoint's vision tower, as far as engines read it (SGLang scales its memory fraction by layers x
    hidden_size^2 when it serves the model as multimodal): its depth and width from vision_config."""

    layers: int | None = None
    hidden_size: int | None = None


@record
class ModelSpec:
    """A model as far as its cache is concerned: its layers and their kinds, MTP layers, dtypes, weights."""

    name: str
    layers: int
    kinds: tuple[LayerKind, ...]
    layer_kinds: tuple[str, ...]  # the kind name of each layer
    mtp_layers: int = 0
    mtp_kind: str | None = None  # the kind of the MTP layers (None: like the first kind with unbounded attention)
    dtype: str = "bf16"  # the model's dtype: the default of states and (without cache_dtype) of the cache
    cache_dtype: str | None = None  # the checkpoint's own attention-cache format (kv_cache_scheme), if it has one
    max_context: int | None = None
    source: str | None = None
    aliases: tuple[str, ...] = ()
    params: Params = field(default_factory=Params)
    path: str | None = None
    weights: Weights | None = None
    # where the exact weight sizes are: a checkpoint directory or .safetensors file, a .gguf file, or
    # "hf:org/name@commit" (read only when weights are needed: checkpoint.py)
    checkpoint: str | None = None
    architecture: str | None = None  # config.json's architectures[0] (engines pick defaults by it)
    vision: Vision | None = None  # a vision tower beside the language model (None: a text-only checkpoint)

    def kind(self, name: str) -> LayerKind:
        for kind in self.kinds:
            if kind.name == name:
                return kind
        raise KeyError(name)

    def kind_of(self, layer: int) -> LayerKind:
        return self.kind(self.layer_kinds[layer])

    def layers_of(self, name: str) -> tuple[int, ...]:
        """0-based indices of the layers of one kind."""
        return tuple(i for i, k in enumerate(self.layer_kinds) if k == name)

    def count(self, name: str) -> int:
        return sum(1 for k in self.layer_kinds if k == name)

    def used_kinds(self) -> list[LayerKind]:
        """The kinds that some layer has, in the order they are declared."""
        present = set(self.layer_kinds)
        return [kind for kind in self.kinds if kind.name in present]

    def compress_ratios(self) -> set[int]:
        """The compress ratios its layers use (DeepSeek-V4: 4 and 128; V4.1's shared caches: 1 and 2), 0 aside."""
        return {kind.compress_ratio for kind in self.used_kinds() if kind.compress_ratio}

    def mechanisms(self) -> set[str]:
        """The attention and state kinds its layers use ("mla", "gqa", "compressed", "kda", ...), "mla+indexer" too
        where an MLA layer has an indexer: what engines pick backends and defaults by."""
        out = set()
        for kind in self.used_kinds():
            if kind.attention is not None:
                out.add(kind.attention.kind)
                if kind.attention.kind == "mla" and kind.indexer is not None:
                    out.add("mla+indexer")
            if kind.state is not None:
                out.add(kind.state.kind)
        return out

    @property
    def mtp_layer_kind(self) -> LayerKind | None:
        """The kind of the MTP layers, or None when the model has none (or no attention for them)."""
        if not self.mtp_layers:
            return None
        if self.mtp_kind is not None:
            return self.kind(self.mtp_kind)
        for kind in self.kinds:
            if kind.attention is not None and kind.grows:
                return kind
        return None

    def attentions(self) -> list[AnyAttention]:
        """The distinct attention descriptions of the layers, in layer order."""
        seen: list[AnyAttention] = []
        for kind in self.used_kinds():
            if kind.attention is not None and kind.attention not in seen:
                seen.append(kind.attention)
        return seen

    def first_mla(self) -> MLA | None:
        return next((a for a in self.attentions() if isinstance(a, MLA)), None)

    # Summary views for models whose attention layers share one attention (most models): the first of each.

    @property
    def attention(self) -> AnyAttention | None:
        """The attention of the first layer kind that has one."""
        attentions = self.attentions()
        return attentions[0] if attentions else None

    @property
    def linear_attention(self) -> State | None:
        """The state of the first layer kind that keeps one."""
        return next((k.state for k in self.used_kinds() if k.state is not None), None)

    @property
    def sliding_window(self) -> int | None:
        return next((k.window for k in self.used_kinds() if k.window is not None), None)

    @property
    def indexer(self) -> Indexer | None:
        return next((k.indexer for k in self.used_kinds() if k.indexer is not None), None)

    @property
    def indexer_layers(self) -> tuple[int, ...]:
        """0-based layers whose kind owns indexer keys."""
        return tuple(i for i, name in enumerate(self.layer_kinds) if self.kind(name).indexer is not None)

    @property
    def compress_rates(self) -> tuple[tuple[str, int], ...]:
        """(kind, tokens per compressed entry) of the kinds compressed along the sequence."""
        return tuple((k.name, k.compress_ratio) for k in self.used_kinds() if k.compress_ratio)


# ---------------------------------------------------------------------------------------------------------
# Descriptions the commands print


def _attention_label(kind: LayerKind) -> str:
    attention = kind.attention
    if attention is None:
        return ""
    if isinstance(attention, Compressed):
        return "compressed"
    return attention.kind


def attention_label(spec: ModelSpec) -> str:
    """A short label: 'mla', 'mla+dsa', 'gqa+sliding', 'gqa (sliding)', 'gqa+gated_deltanet', 'gqa+mamba2',
    'compressed (window+csa+hca)', ..."""
    kinds = spec.used_kinds()
    if any(isinstance(k.attention, Compressed) for k in kinds):
        return "compressed (" + "+".join(k.name for k in kinds) + ")"
    bases = list(dict.fromkeys(_attention_label(k) for k in kinds if k.attention is not None))
    parts = bases[:1] or []
    for base in bases[1:]:
        parts.append(base)
    windowed = [k for k in kinds if k.attention is not None and k.window is not None]
    chunked = [k for k in kinds if k.attention is not None and k.chunk is not None]
    unbounded = [k for k in kinds if k.attention is not None and k.window is None and k.chunk is None]
    if windowed and not unbounded and not chunked and len(parts) == 1:
        parts = [f"{parts[0]} (sliding)"]
    elif windowed:
        parts.append("sliding")
    if chunked:
        parts.append("chunked")
    for state in dict.fromkeys(k.state.kind for k in kinds if k.state is not None):
        parts.append(state)
    if any(k.indexer is not None for k in kinds):
        parts.append("dsa")
    return "+".join(parts) if parts else "no cache"


def layers_text(spec: ModelSpec) -> str:
    """'61', '48 = 12 full + 36 linear', with '(+1 MTP)'."""
    counts = [(kind.name, spec.count(kind.name)) for kind in spec.used_kinds()]
    text = str(spec.layers) if len(counts) == 1 else f"{spec.layers} = " + " + ".join(f"{n} {k}" for k, n in counts)
    if spec.mtp_layers:
        text += f" (+{spec.mtp_layers} MTP)"
    return text


def attention_dims(attention: AnyAttention) -> str:
    """'MLA 512+64', '8 x (128+128)', 'compressed 512'."""
    if isinstance(attention, MLA):
        return f"MLA {attention.kv_lora_rank}+{attention.qk_rope_head_dim}"
    if isinstance(attention, Compressed):
        return f"compressed {attention.head_dim}"
    if attention.k_eq_v:
        return f"{attention.kv_heads} x {attention.head_dim} (K=V)"
    return f"{attention.kv_heads} x ({attention.head_dim}+{attention.v_head_dim})"


def short_text(spec: ModelSpec) -> str:
    """One line naming the attention of a model, for what-if tables: 'MLA 512+64, indexer 128'."""
    parts = [attention_dims(a) for a in spec.attentions()]
    kinds = spec.used_kinds()
    ratios = [(k.name, k.compress_ratio) for k in kinds if isinstance(k.attention, Compressed) and k.compress_ratio]
    if ratios:
        parts = [parts[0] + ", " + "/".join(f"{name} 1:{ratio}" for name, ratio in ratios)]
    indexers = list(dict.fromkeys(k.indexer.head_dim for k in kinds if k.indexer is not None))
    text = " | ".join(parts) if parts else "no attention"
    if indexers:
        text += ", indexer " + "/".join(str(d) for d in indexers)
    return text


def attention_text(attention: AnyAttention) -> str:
    if isinstance(attention, MLA):
        return (
            f"MLA, {attention.heads} heads, kv_lora_rank {attention.kv_lora_rank} + rope {attention.qk_rope_head_dim}, "
            f"nope {attention.qk_nope_head_dim}, v {attention.v_head_dim}"
        )
    if isinstance(attention, Compressed):
        return (
            f"compressed attention, {attention.heads} heads, one {attention.head_dim}-wide key-value vector per entry"
        )
    text = f"{attention.kind.upper()}, {attention.heads} heads, {attention.kv_heads} KV heads x {attention.head_dim}"
    if attention.k_eq_v:
        text += " (K=V)"
    elif attention.v_head_dim != attention.head_dim:
        text += f" (v {attention.v_head_dim})"
    return text


def _extras(kind: LayerKind) -> list[str]:
    bits = []
    if kind.attention_blocks > 1:
        bits.append(f"{kind.attention_blocks} attention blocks per layer")
    if kind.window is not None:
        bits.append(f"window {kind.window:,}")
    if kind.chunk is not None:
        bits.append(f"chunk {kind.chunk:,}")
    if kind.compress_ratio:
        bits.append("1 entry per token" if kind.compress_ratio == 1 else f"1 entry per {kind.compress_ratio} tokens")
    if kind.indexer is not None:
        bits.append(f"DSA indexer {kind.indexer.heads} x {kind.indexer.head_dim}, top-k {kind.indexer.topk}")
    if kind.state is not None:
        bits.append(state_text(kind.state))
    return bits


def state_text(state: State) -> str:
    if isinstance(state, GatedDeltaNet):
        if state.kind == "kda":
            return f"KDA {state.value_heads} heads x {state.value_head_dim}, conv {state.conv_kernel}"
        return (
            f"Gated DeltaNet {state.key_heads}/{state.value_heads} heads x {state.key_head_dim}/"
            f"{state.value_head_dim}, conv {state.conv_kernel}"
        )
    if isinstance(state, Mamba1):
        return f"Mamba-1 d_inner {state.d_inner:,}, d_state {state.d_state}, conv {state.conv_kernel}"
    if isinstance(state, Mamba2):
        return (
            f"Mamba-2 {state.heads} heads x {state.head_dim}, {state.groups} groups, d_state {state.d_state}, "
            f"conv {state.conv_kernel}"
        )
    if isinstance(state, Lightning):
        return f"lightning {state.heads} heads x {state.head_dim}"
    return f"short conv {state.channels} channels, kernel {state.conv_kernel}"


def describe(spec: ModelSpec) -> str:
    """The architecture in one line, for `show`: the attention, the layers, then what each kind adds."""
    kinds = spec.used_kinds()
    attentions = spec.attentions()
    parts = []
    if len(attentions) == 1:
        parts.append(attention_text(attentions[0]))
    for kind in kinds:
        if kind.attention is not None and len(attentions) > 1:
            parts.append(f"{kind.name}: {attention_text(kind.attention)}")
    parts.append(f"layers {layers_text(spec)}")
    for kind in kinds:
        extras = _extras(kind)
        if kind.attention is None and kind.state is None:
            extras = ["no cache"]
        if extras:
            parts.append((f"{kind.name}: " if len(kinds) > 1 else "") + ", ".join(extras))
    return "; ".join(parts)


def architecture(spec: ModelSpec) -> dict[str, Any]:
    """The spec as plain data (JSON output of `show`): every kind with its dims, and the first attention, window,
    state and indexer for readers that expect one of each."""
    from dataclasses import asdict

    def attention_dict(kind: LayerKind) -> dict[str, Any] | None:
        if kind.attention is None:
            return None
        return {**asdict(kind.attention), "kind": _attention_label(kind)}

    kinds = {}
    for kind in spec.used_kinds():
        entry: dict[str, Any] = {"layers": spec.count(kind.name), "attention": attention_dict(kind)}
        for key in ("window", "chunk", "compress_ratio", "attention_blocks", "description"):
            value = getattr(kind, key)
            if value not in (None, 0, "") and not (key == "attention_blocks" and value == 1):
                entry[key] = value
        entry["indexer"] = asdict(kind.indexer) if kind.indexer is not None else None
        entry["state"] = asdict(kind.state) if kind.state is not None else None
        kinds[kind.name] = entry
    first = next((k for k in spec.used_kinds() if k.attention is not None), None)
    state = spec.linear_attention
    indexer = spec.indexer
    return {
        "name": spec.name,
        "layers": spec.layers,
        "attention_kind": attention_label(spec),
        "attention": attention_dict(first) if first is not None else None,
        "kinds": kinds,
        "layer_kinds": {kind.name: spec.count(kind.name) for kind in spec.used_kinds()},
        "sliding_window": spec.sliding_window,
        "linear_attention": asdict(state) if state is not None else None,
        "indexer": asdict(indexer) if indexer is not None else None,
        "mtp_layers": spec.mtp_layers,
        "dtype": spec.dtype,
        "max_context": spec.max_context,
        "source": spec.source,
    }
