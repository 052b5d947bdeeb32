"""Parameter counts and weight memory from the model description (the `weights` section of a model file).

Every weight is listed as a tensor group (name, rows x cols, how many, whether it is a routed expert), so the count
and the bytes under each weight format come from the same list. Shapes follow the models' reference code
(transformers `modeling_deepseek_v3.py`, `modeling_qwen3_next.py`, `modeling_kimi_linear.py`, Llama/Qwen/Mistral).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from .errors import UsageError
from .records import record
from .spec import MLA, Attention, Compressed, GatedDeltaNet, LayerKind, ModelSpec, Weights


class Tensor(NamedTuple):
    """One weight matrix of a model (or `copies` of them), by rows and columns and what it belongs to. A named tuple:
    a model has thousands, built on every `fit`, and a tuple is built in half the time of a frozen dataclass."""

    name: str
    rows: int
    cols: int
    copies: int = 1  # how many such tensors in the model
    kind: str = "linear"  # linear | expert | embedding | head | norm | router | other
    layers: int = 1  # on how many layers (copies already includes it)

    @property
    def params(self) -> int:
        return self.rows * self.cols * self.copies


@lru_cache(maxsize=64)
def tensors(model: ModelSpec, mtp: bool = True) -> tuple[Tensor, ...]:
    """Every weight of the model as tensor groups. MTP layers are included when `mtp` is true. Remembered per
    (model, mtp): `fit`'s layout search and `check` ask for the same model's weights many times."""
    if mtp and model.mtp_layers and model.mtp_layer_kind is not None:
        return tensors(model, mtp=False) + tuple(_mtp_tensors(model))  # the trunk's list is computed once
    return tuple(_tensors(model))


def _tensors(model: ModelSpec) -> list[Tensor]:
    w = model.weights
    if w is None:
        raise UsageError(
            f"{model.name}: the model file has no `weights` section (hidden_size, vocab_size, ...); "
            "parameter counts and weight memory need it"
        )
    for kind in model.used_kinds():
        attention = kind.attention
        if isinstance(attention, Compressed) and None in (
            attention.q_lora_rank,
            attention.o_groups,
            attention.o_lora_rank,
        ):
            raise UsageError(
                f"{model.name}: counting DeepSeek-V4 attention needs q_lora_rank, o_groups and o_lora_rank"
            )
        if kind.state is not None and not isinstance(kind.state, GatedDeltaNet):
            raise UsageError(f"{model.name}: parameter counting for {kind.state.kind} layers is not modelled")
    h = w.hidden_size
    out: list[Tensor] = [Tensor("embed_tokens", w.vocab_size, h, kind="embedding")]
    if not w.tie_embeddings:
        out.append(Tensor("lm_head", w.vocab_size, h, kind="head"))
    out.append(Tensor("final_norm", 1, h, kind="norm"))
    if w.hc_mult:  # DeepSeek-V4's hyper-connection head: hc_fn (M x M h), hc_base (M), hc_scale (1)
        out.append(Tensor("hc_head", 1, w.hc_mult * w.hc_mult * h + w.hc_mult + 1, kind="norm"))
    # Layers of one kind, all dense or all MoE, have the same tensors: each group is listed once, its copies times
    # the layers (a 61-layer model is 2 groups, not 61 lists: `check` weighs several models on every run).
    groups: dict[tuple[str, bool], list[int]] = {}
    for index, name in enumerate(model.layer_kinds):
        groups.setdefault((name, _moe(w, index)), []).append(index)
    for (name, _), indices in groups.items():
        layer = _layer(model, indices[0], model.kind(name), h)
        if len(indices) == 1:
            out.extend(layer)
            continue
        at, n = f"layers.{_ranges(indices)}.", len(indices)
        cut = len(f"layers.{indices[0]}.")
        out.extend(Tensor(at + t.name[cut:], t.rows, t.cols, t.copies * n, t.kind, n) for t in layer)
    return out


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8': the layers a tensor group stands for, in its name."""
    out: list[str] = []
    start = previous = indices[0]
    for index in [*indices[1:], -1]:
        if index != previous + 1:
            out.append(str(start) if start == previous else f"{start}-{previous}")
            start = index
        previous = index
    return ",".join(out)


def _mtp_tensors(model: ModelSpec) -> list[Tensor]:
    """DeepSeek-style MTP modules, after the trunk: enorm, hnorm, eh_proj (2h -> h), one decoder layer, its own
    copies of the embedding and head in the checkpoint, and a final norm."""
    w, mtp_kind = model.weights, model.mtp_layer_kind
    assert w is not None and mtp_kind is not None
    h, out = w.hidden_size, []
    for index in range(model.mtp_layers):
        out.append(Tensor(f"mtp{index}.eh_proj", h, 2 * h))
        out.append(Tensor(f"mtp{index}.norms", 1, 3 * h, kind="norm"))
        out.extend(
            Tensor(f"mtp{index}." + t.name, t.rows, t.cols, t.copies, t.kind)
            for t in _layer(model, model.layers + index, mtp_kind, h)
        )
        out.append(Tensor(f"mtp{index}.embed_tokens", w.vocab_size, h, kind="embedding"))
        out.append(Tensor(f"mtp{index}.shared_head", w.vocab_size, h, kind="head"))
    return out


def _linear_tensors(linear: GatedDeltaNet, p: str, h: int) -> list[Tensor]:
    kh, vh, kd, vd = linear.key_heads, linear.value_heads, linear.key_head_dim, linear.value_head_dim
    if linear.kind == "gated_deltanet":
        # modeling_qwen3_next.py Qwen3NextGatedDeltaNet: in_proj_qkvz, in_proj_ba, conv1d, A_log, dt_bias,
        # norm, out_proj
        return [
            Tensor(p + "in_proj_qkvz", 2 * kh * kd + 2 * vh * vd, h),
            Tensor(p + "in_proj_ba", 2 * vh, h),
            Tensor(p + "conv1d", linear.conv_channels, linear.conv_kernel, kind="other"),
            Tensor(p + "A_log_dt_bias", 1, 2 * vh, kind="norm"),
            Tensor(p + "norm", 1, vd, kind="norm"),
            Tensor(p + "out_proj", h, vh * vd),
        ]
    # modeling_kimi_linear.py KimiDeltaAttention: q/k/v, low-rank f and g gates, beta, short convs, o_proj
    width = vh * vd
    return [
        Tensor(p + "q_k_v_proj", width, h, copies=3),
        Tensor(p + "f_a_g_a", vd, h, copies=2),
        Tensor(p + "f_b_g_b", width, vd, copies=2),
        Tensor(p + "b_proj", vh, h),
        Tensor(p + "convs", width, linear.conv_kernel, copies=3, kind="other"),
        Tensor(p + "A_log_dt_bias", 1, vh + width, kind="norm"),
        Tensor(p + "o_norm", 1, vd, kind="norm"),
        Tensor(p + "o_proj", h, width),
    ]


def _compressed_tensors(kind: LayerKind, attention: Compressed, p: str, h: int) -> list[Tensor]:
    """DeepSeek-V4 attention (transformers models/deepseek_v4/modeling_deepseek_v4.py, DeepseekV4Attention and its
    compressors): low-rank query, one shared key-value head, a grouped low-rank output, per-head sinks; a compressed
    layer's compressor (kv and gate projections of twice the head on CSA layers, which overlap windows), and the
    Lightning Indexer's own compressor and query projection on CSA layers."""
    assert attention.q_lora_rank and attention.o_groups and attention.o_lora_rank
    heads, dim, q, groups, o_rank = (
        attention.heads,
        attention.head_dim,
        attention.q_lora_rank,
        attention.o_groups,
        attention.o_lora_rank,
    )
    out = [
        Tensor(p + "q_a_proj", q, h), Tensor(p + "q_a_norm", 1, q, kind="norm"),
        Tensor(p + "q_b_proj", heads * dim, q), Tensor(p + "kv_proj", dim, h), Tensor(p + "kv_norm", 1, dim, kind="norm"),
        Tensor(p + "o_a_proj", groups * o_rank, heads * dim // groups), Tensor(p + "o_b_proj", h, groups * o_rank),
        Tensor(p + "sinks", 1, heads, kind="norm"),
    ]  # fmt: skip
    ratio = kind.compress_ratio
    if ratio:
        width = 2 * dim if kind.indexer is not None else dim  # CSA's compressor carries an overlapping window
        out += [
            Tensor(p + "compressor.kv_proj", width, h), Tensor(p + "compressor.gate_proj", width, h),
            Tensor(p + "compressor.position_bias", ratio, width, kind="norm"),
            Tensor(p + "compressor.kv_norm", 1, dim, kind="norm"),
        ]  # fmt: skip
    if ratio and kind.indexer is not None:
        ix = kind.indexer
        out += [
            Tensor(p + "indexer.kv_proj", 2 * ix.head_dim, h), Tensor(p + "indexer.gate_proj", 2 * ix.head_dim, h),
            Tensor(p + "indexer.position_bias", ratio, 2 * ix.head_dim, kind="norm"),
            Tensor(p + "indexer.kv_norm", 1, ix.head_dim, kind="norm"),
            Tensor(p + "indexer.q_b_proj", ix.heads * ix.head_dim, q),
            Tensor(p + "indexer.weights_proj", ix.heads, h, kind="router"),
        ]  # fmt: skip
    return out


def _attention_tensors(kind: LayerKind, p: str, h: int) -> list[Tensor]:
    attention = kind.attention
    out: list[Tensor] = []
    if isinstance(attention, Compressed):
        return _compressed_tensors(kind, attention, p, h)
    if isinstance(attention, MLA):
        heads, qk = attention.heads, attention.qk_nope_head_dim + attention.qk_rope_head_dim
        if attention.q_lora_rank:
            out += [
                Tensor(p + "q_a_proj", attention.q_lora_rank, h),
                Tensor(p + "q_a_layernorm", 1, attention.q_lora_rank, kind="norm"),
                Tensor(p + "q_b_proj", heads * qk, attention.q_lora_rank),
            ]
        else:
            out.append(Tensor(p + "q_proj", heads * qk, h))
        out += [
            Tensor(p + "kv_a_proj_with_mqa", attention.latent_dim, h),
            Tensor(p + "kv_a_layernorm", 1, attention.kv_lora_rank, kind="norm"),
            Tensor(
                p + "kv_b_proj",
                heads * (attention.qk_nope_head_dim + attention.v_head_dim),
                attention.kv_lora_rank,
            ),
            Tensor(p + "o_proj", h, heads * attention.v_head_dim),
        ]
        if kind.indexer is not None:
            ix = kind.indexer
            q_in = attention.q_lora_rank or h
            # DeepSeek-V3.2 Indexer: wq_b, wk, k_norm (LayerNorm weight + bias), weights_proj
            out += [
                Tensor(p + "indexer.wq_b", ix.heads * ix.head_dim, q_in),
                Tensor(p + "indexer.wk", ix.head_dim, h),
                Tensor(p + "indexer.k_norm", 1, 2 * ix.head_dim, kind="norm"),
                Tensor(p + "indexer.weights_proj", ix.heads, h, kind="router"),
            ]
    elif isinstance(attention, Attention):
        heads, kv = attention.heads, attention.kv_heads
        out += [
            Tensor(p + "q_proj", heads * attention.head_dim, h),
            Tensor(p + "k_proj", kv * attention.head_dim, h),
            Tensor(p + "v_proj", kv * attention.v_head_dim, h),
            Tensor(p + "o_proj", h, heads * attention.v_head_dim),
        ]
    return out


def _moe(w: Weights, index: int) -> bool:
    """Whether layer `index` has routed experts (the first `first_dense_layers` keep a dense MLP)."""
    return w.experts > 0 and index >= w.first_dense_layers


def _layer(model: ModelSpec, index: int, kind: LayerKind, h: int) -> list[Tensor]:
    w = model.weights
    assert w is not None
    p = f"layers.{index}."
    out = [Tensor(p + "norms", 1, 2 * h, kind="norm")]
    if w.hc_mult:  # two hyper-connections (attention, MLP): fn ((2 + M) M x M h), base ((2 + M) M), scale (3)
        mixes = (2 + w.hc_mult) * w.hc_mult
        out.append(Tensor(p + "hyper_connections", 2, mixes * w.hc_mult * h + mixes + 3, kind="norm"))
    if isinstance(kind.state, GatedDeltaNet):
        out += _linear_tensors(kind.state, p, h)
    if kind.attention is not None:
        out += _attention_tensors(kind, p, h)
    if _moe(w, index):
        inter = w.expert_intermediate_size
        out += [
            Tensor(p + "experts", 3 * inter, h, copies=w.experts, kind="expert"),
            Tensor(p + "router", w.experts, h, kind="router"),
        ]
        if w.shared_experts:
            out.append(Tensor(p + "shared_experts", 3 * inter * w.shared_experts, h))
    else:
        out.append(Tensor(p + "mlp", 3 * w.intermediate_size, h))
    return out


__all__ = ["Weights", "count_params", "tensors", "weight_bytes"]


@record
class ParamCount:
    """A model's parameters: total, with MTP, active per token, and routed experts."""

    total: int  # main model, without MTP
    total_with_mtp: int
    active: int  # per token: all but the unchosen routed experts (main model)
    expert: int  # routed-expert parameters (main model)


def count_params(model: ModelSpec) -> ParamCount:
    main = tensors(model, mtp=False)
    total = expert = 0
    for t in main:
        total += t.params
        expert += t.params if t.kind == "expert" else 0
    with_mtp = sum(t.params for t in tensors(model, mtp=True)) if model.mtp_layers else total
    w = model.weights
    assert w is not None
    active = total - expert
    if w.experts:
        active += expert * w.experts_per_token // w.experts
    return ParamCount(total=total, total_with_mtp=with_mtp, active=active, expert=expert)


# ---------------------------------------------------------------------------------------------------------
# Weight formats


from .spec import WEIGHT_DTYPES  # noqa: E402


def _tensor_bytes(tensor: Tensor, fmt: str) -> int:
    """Bytes of one tensor group in `fmt`. Quantised formats apply to linear weights and experts; embeddings, the
    head, norms, routers and convolutions stay bf16 (as in the DeepSeek, Kimi and gpt-oss checkpoints)."""
    plain = tensor.params * 2
    quantizable = tensor.kind in ("linear", "expert")
    if fmt in ("bf16", "fp16"):
        return plain
    if fmt == "fp32":
        return tensor.params * 4
    if not quantizable or (fmt == "mxfp4-experts" and tensor.kind != "expert"):
        return plain
    if fmt == "fp8":
        # e4m3 values + one fp32 scale per 128 x 128 block (DeepSeek-V3 weight_block_size [128, 128])
        blocks = -(-tensor.rows // 128) * -(-tensor.cols // 128)
        return tensor.copies * (tensor.rows * tensor.cols + 4 * blocks)
    if fmt == "int4":
        # 4-bit values + one fp16 scale per group of 128 along the input dim (GPTQ / AWQ group size 128)
        groups = tensor.rows * -(-tensor.cols // 128)
        return tensor.copies * (-(-tensor.rows * tensor.cols // 2) + 2 * groups)
    if fmt == "fp8+mxfp4-experts":
        # DeepSeek-V4 Instruct: MXFP4 routed experts (e2m1 pairs + one e8m0 scale per 32), FP8 e4m3 128 x 128 blocks
        # with one ue8m0 scale byte each elsewhere (vLLM models/deepseek_v4/quant_config.py; config scale_fmt ue8m0)
        if tensor.kind == "expert":
            return _tensor_bytes(tensor, "mxfp4-experts")
        if not quantizable:
            return plain
        blocks = -(-tensor.rows // 128) * -(-tensor.cols // 128)
        return tensor.copies * (tensor.rows * tensor.cols + blocks)
    if fmt in ("mxfp4", "mxfp4-experts"):
        # OCP MX: 4-bit values + one e8m0 scale byte per 32 values
        groups = tensor.rows * -(-tensor.cols // 32)
        return tensor.copies * (-(-tensor.rows * tensor.cols // 2) + groups)
    raise UsageError(f"--weight-dtype: expected one of {', '.join(WEIGHT_DTYPES)}, got {fmt!r}")


ATTENTION_NAMES = ("q_proj", "q_a_proj", "q_a_layernorm", "q_b_proj", "k_proj", "v_proj", "o_proj",
                   "kv_a_proj_with_mqa", "kv_a_layernorm", "kv_b_proj", "indexer.")  # fmt: skip


@record
class WeightBytes:
    """A model's weights in bytes under a weight format: routed experts and the rest, attention apart."""

    total: int
    expert: int  # routed experts (sharded by expert parallelism)
    dense: int  # everything else
    dtype: str
    attention: int = 0  # of `dense`: the attention layers' weights (replicated with data-parallel attention)


def weight_bytes(model: ModelSpec, dtype: str | None = None, mtp: bool = False) -> WeightBytes:
    w = model.weights
    assert w is not None or dtype is not None
    fmt = (dtype or (w.dtype if w else "bf16")).lower()
    if fmt == "auto":
        fmt = w.dtype if w else "bf16"
    if fmt not in WEIGHT_DTYPES:
        raise UsageError(f"--weight-dtype: expected auto or one of {', '.join(WEIGHT_DTYPES)}, got {dtype!r}")
    expert = dense = attention = 0
    sizes: dict[tuple[int, int, int, str], int] = {}  # every layer repeats the same shapes: each size computed once
    local: dict[str, bool] = {}  # is an attention weight, by the name within its layer
    for t in tensors(model, mtp=mtp):
        shape = (t.rows, t.cols, t.copies, t.kind)
        size = sizes.get(shape)
        if size is None:
            size = sizes[shape] = _tensor_bytes(t, fmt)
        if t.kind == "expert":
            expert += size
        else:
            dense += size
            name = t.name.split(".", 2)[2] if t.name.startswith("layers.") else t.name
            if name not in local:
                local[name] = any(n in name for n in ATTENTION_NAMES)
            attention += size if local[name] else 0
    return WeightBytes(total=expert + dense, expert=expert, dense=dense, dtype=fmt, attention=attention)
