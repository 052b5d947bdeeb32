"""What-if variants: the same model re-imagined with another attention (MHA, GQA-g, MQA, MLA at rank R).

Conventions (docs/config-format.md, "What-if variants"):
- An MLA model turned into K/V attention keeps its per-head widths: each KV head caches a key of
  qk_nope_head_dim + qk_rope_head_dim and a value of v_head_dim (DeepSeek-V3: 192 + 128), which is what a
  runtime that expands the latent stores per head.
- A K/V model turned into MLA at rank R caches R + head_dim / 2 values (a decoupled rope key of half a head,
  as DeepSeek-V2 chose r = d_h / 2), with qk_nope_head_dim = head_dim and its own v_head_dim.
- Layer pattern, windows, linear layers, indexer and MTP layers are kept: only the attention changes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction

from .errors import UsageError
from .spec import MLA, AnyAttention, Attention, Compressed, LayerKind, ModelSpec

# Per-head key and value width of a K/V what-if of a DeepSeek-V4 model (which has no per-head K/V): 128, the head
# size of DeepSeek's own comparison ("a bf16 GQA cache with 8 KV heads of 128").
COMPRESSED_WHATIF_HEAD_DIM = 128

VARIANT_HELP = "mha, gqa:G (G KV heads), mqa, mla:R (latent rank R); e.g. --as mha,gqa:8,mqa,mla:256"


def parse_variants(text: str) -> list[str]:
    items = [item.strip().lower() for item in str(text).split(",") if item.strip()]
    if not items:
        raise UsageError(f"--as: expected a list of variants ({VARIANT_HELP})")
    for item in items:
        _parse_one(item)
    return items


def _parse_one(item: str) -> tuple[str, int | None]:
    match = re.fullmatch(r"(mha|mqa|gqa|mla)(?::(\d+))?", item.strip().lower())
    if not match:
        raise UsageError(f"--as: unknown variant {item!r}; expected {VARIANT_HELP}")
    kind, arg = match.group(1), match.group(2)
    if kind in ("gqa", "mla") and arg is None:
        raise UsageError(f"--as: {kind} needs a size, e.g. {'gqa:8' if kind == 'gqa' else 'mla:512'}")
    if kind in ("mha", "mqa") and arg is not None:
        raise UsageError(f"--as: {kind} takes no size (got {item!r})")
    value = int(arg) if arg is not None else None
    if value is not None and not 1 <= value <= 1 << 20:
        raise UsageError(f"--as: {item!r}: the size must be between 1 and {1 << 20:,}")
    return kind, value


def _kv_widths(attention: AnyAttention) -> tuple[int, int, int]:
    """(query heads, key width, value width) per head for a K/V version of an attention."""
    if isinstance(attention, MLA):
        return attention.heads, attention.qk_nope_head_dim + attention.qk_rope_head_dim, attention.v_head_dim
    if isinstance(attention, Compressed):
        return attention.heads, COMPRESSED_WHATIF_HEAD_DIM, COMPRESSED_WHATIF_HEAD_DIM
    return attention.heads, attention.head_dim, attention.v_head_dim


def _plain_layers(model: ModelSpec) -> ModelSpec:
    """A DeepSeek-V4 model's what-if attends over the full context on every layer: windows, compression and the
    indexer (which belongs to the compressed layers) are dropped."""
    compressed = next((k.attention for k in model.used_kinds() if isinstance(k.attention, Compressed)), None)
    if compressed is None:
        return model
    full = LayerKind("full", compressed)
    return replace(model, kinds=(full,), layer_kinds=("full",) * model.layers, mtp_kind=None)


def variant_label(item: str) -> str:
    kind, value = _parse_one(item)
    if kind == "gqa":
        return f"GQA-{value}"
    if kind == "mla":
        return f"MLA-{value}"
    return kind.upper()


def make_variant(model: ModelSpec, item: str) -> ModelSpec:
    """The model with the attention of every layer kind replaced as `item` says ('mha', 'gqa:8', 'mqa',
    'mla:256'); windows, states and indexers of each kind stay."""
    kind_name, value = _parse_one(item)
    model = _plain_layers(model)
    kinds = []
    for kind in model.kinds:
        if kind.attention is None:
            kinds.append(kind)
            continue
        kinds.append(replace(kind, attention=_replace_attention(model, kind.attention, kind_name, value, item)))
    return replace(model, name=f"{model.name} as {variant_label(item)}", kinds=tuple(kinds))


def _replace_attention(
    model: ModelSpec, attention: AnyAttention, kind: str, value: int | None, item: str
) -> AnyAttention:
    heads, key_width, value_width = _kv_widths(attention)
    if kind == "mla":
        assert value is not None
        if isinstance(attention, MLA):
            return replace(attention, kv_lora_rank=value)
        return MLA(
            heads=heads, kv_lora_rank=value, qk_rope_head_dim=max(1, key_width // 2), qk_nope_head_dim=key_width,
            v_head_dim=value_width,
        )  # fmt: skip
    kv_heads = {"mha": heads, "mqa": 1}.get(kind, value)
    assert kv_heads is not None
    if kv_heads > heads or heads % kv_heads:
        raise UsageError(
            f"--as {item}: {model.name} has {heads} query heads; GQA needs a KV head count that divides it"
        )
    return Attention(heads=heads, kv_heads=kv_heads, head_dim=key_width, v_head_dim=value_width)


def equivalent_gqa_groups(model: ModelSpec) -> Fraction | None:
    """How many GQA groups cache as much as this MLA model per layer, with the DeepSeek-V2 paper's convention
    (arXiv 2405.04434, Table 1): one group caches a key and a value of d_h each, d_h = qk_nope_head_dim for
    the key and v_head_dim for the value. DeepSeek-V2/V3: 576 / (128 + 128) = 2.25. None for K/V models."""
    attention = model.first_mla()
    if attention is None:
        return None
    return Fraction(attention.latent_dim, attention.qk_nope_head_dim + attention.v_head_dim)
