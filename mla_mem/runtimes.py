"""Lowering: ModelSpec + runtime + parallel layout -> the cache streams each GPU holds (cache.Plan).

One lowering per runtime, all from the same spec. This module holds the `ideal` runtime: it stores exactly
what the architecture needs and nothing more:

  MLA layer        kv_lora_rank + qk_rope_head_dim values per token   (DeepSeek-V2 paper, arXiv 2405.04434)
  K/V layer        kv_heads x (head_dim + v_head_dim) values per token
  sliding layer    the same, for at most sliding_window tokens
  DSA indexer      index_head_dim values per token on each indexed layer (DeepSeek-V3.2 tech report)
  linear layer     conv state (conv_kernel - 1) x conv_dim + recurrent state value_heads x dk x dv,
                   in the model dtype (the state dtype), constant per sequence
  MTP layers       the main attention (and indexer) again, only with MTP speculative decoding on

With tensor parallelism the ideal runtime splits K/V heads evenly (ceil(kv_heads / tp) per GPU, so heads are
replicated once tp exceeds them), replicates the MLA latent and indexer keys on every rank, and splits linear
state by heads. No paging (block 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from .cache import CacheStream, Plan
from .errors import UsageError
from .spec import KVAttention, MLAttention, ModelSpec
from .units import DType, parse_dtype


@dataclass(frozen=True)
class Options:
    """How a model is served: runtime, cache dtype, parallel layout, MTP."""

    runtime: str = "ideal"
    kv_dtype: str | None = None
    tp: int = 1
    pp: int = 1
    dp: int = 1
    dcp: int = 1
    mtp: bool = False
    block_size: int | None = None
    state_dtype: str | None = None


RUNTIMES = ("ideal",)


def _fmt(n: int) -> str:
    return f"{n:,}"


def _check_parallel(options: Options, model: ModelSpec) -> None:
    for name in ("tp", "pp", "dp", "dcp"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"--{name}: expected a positive integer, got {value!r}")
        if value > 4096:
            raise UsageError(f"--{name}: {value:,} is beyond any real deployment (at most 4,096)")
    if options.tp % options.dcp:
        raise UsageError(
            f"--dcp {options.dcp} must divide --tp {options.tp} (decode context parallel runs inside TP)"
        )
    total_layers = model.layers + (model.mtp_layers if options.mtp else 0)
    if options.pp > total_layers:
        raise UsageError(f"--pp {options.pp} is more than the model's {total_layers} layers")


def pipeline_stages(layers: int, pp: int) -> tuple[tuple[int, int], ...]:
    """Layer ranges per pipeline stage, as vLLM partitions them (vllm/distributed/utils.py get_pp_indices):
    L // pp layers each, the remainder given one each to the stages before the last, from the end."""
    sizes = [layers // pp] * pp
    for i in range(2, layers % pp + 2):
        sizes[-i] += 1
    stages = []
    start = 0
    for count in sizes:
        stages.append((start, start + count))
        start += count
    return tuple(stages)


def resolve_dtype(model: ModelSpec, options: Options) -> DType:
    if options.kv_dtype is None or str(options.kv_dtype).lower() == "auto":
        return parse_dtype(model.dtype)
    return parse_dtype(options.kv_dtype)


def lower(model: ModelSpec, options: Options | None = None) -> Plan:
    """The streams `options.runtime` stores for `model`."""
    options = options or Options()
    name = options.runtime.split("@", 1)[0].strip().lower()
    if name != "ideal":
        raise UsageError(f"unknown runtime {options.runtime!r}; expected one of: {', '.join(RUNTIMES)}")
    if "@" in options.runtime:
        raise UsageError("the ideal runtime has no versions")
    return _lower_ideal(model, options)


def _lower_ideal(model: ModelSpec, options: Options) -> Plan:
    _check_parallel(options, model)
    if options.block_size not in (None, 1):
        raise UsageError("--block-size: the ideal runtime does not page its cache (block 1)")
    dt = resolve_dtype(model, options)
    if dt.name in ("fp8_ds_mla", "nvfp4_ds_mla"):
        raise UsageError(f"--kv-dtype {dt.name} is a vLLM/SGLang packed layout; use it with --runtime vllm")
    state_dt = parse_dtype(options.state_dtype or model.dtype)
    tp = options.tp
    streams: list[CacheStream] = []
    mtp_layers = tuple(range(model.layers, model.layers + model.mtp_layers)) if options.mtp else ()
    attention = model.attention

    def attention_stream(component: str, layers: tuple[int, ...], window: int | None) -> CacheStream:
        if isinstance(attention, MLAttention):
            entry = dt.row_bytes(attention.latent_dim)
            formula = (
                f"(kv_lora_rank {attention.kv_lora_rank} + qk_rope_head_dim {attention.qk_rope_head_dim}) "
                f"x {dt.name} = {_fmt(entry)} B per token per layer, on every GPU (the latent is not split by TP)"
            )
            description = "MLA latent"
        else:
            assert isinstance(attention, KVAttention)
            heads = -(-attention.kv_heads // tp)
            entry = dt.row_bytes(heads * attention.head_dim) + dt.row_bytes(heads * attention.v_head_dim)
            split = f" ({attention.kv_heads} KV heads / tp {tp})" if tp > 1 else ""
            dims = (
                f"(head_dim {attention.head_dim} + v_head_dim {attention.v_head_dim})"
                if attention.v_head_dim != attention.head_dim
                else f"2 x head_dim {attention.head_dim}"
            )
            formula = f"{heads} KV heads{split} x {dims} x {dt.name} = {_fmt(entry)} B per token per layer"
            description = "keys and values"
        if window is not None:
            formula += f", at most sliding_window {_fmt(window)} tokens"
            description += f" (sliding, window {window:,})"
        return CacheStream(
            component=component,
            layers=layers,
            entry_bytes=entry,
            window=window,
            description=description,
            formula=formula,
            token_shards=options.dcp,
        )

    is_mla = isinstance(attention, MLAttention)
    full = model.layers_of("full")
    sliding = model.layers_of("sliding")
    if full:
        streams.append(attention_stream("mla_latent" if is_mla else "full_kv", full, None))
    if sliding:
        streams.append(
            attention_stream("sliding_mla_latent" if is_mla else "sliding_kv", sliding, model.sliding_window)
        )
    if mtp_layers:
        streams.append(attention_stream("mtp", mtp_layers, None))

    if model.indexer is not None:
        entry = dt.row_bytes(model.indexer.head_dim)
        formula = f"index_head_dim {model.indexer.head_dim} x {dt.name} = {_fmt(entry)} B per token per layer"
        indexer_layers = model.indexer_layers
        streams.append(
            CacheStream(
                "indexer",
                indexer_layers,
                entry,
                description="DSA indexer keys",
                formula=formula,
                token_shards=options.dcp,
            )
        )
        if mtp_layers:
            streams.append(
                CacheStream(
                    "mtp_indexer",
                    mtp_layers,
                    entry,
                    description="DSA indexer keys (MTP)",
                    formula=formula,
                    token_shards=options.dcp,
                )
            )

    linear_layers = model.layers_of("linear")
    if linear_layers:
        linear = model.linear_attention
        assert linear is not None
        for what, heads in (("key_heads", linear.key_heads), ("value_heads", linear.value_heads)):
            if heads % tp:
                raise UsageError(f"--tp {tp} must divide the linear attention's {what} ({heads})")
        conv_values = (linear.conv_kernel - 1) * linear.conv_dim // tp
        recurrent_values = linear.recurrent_elements // tp
        entry = state_dt.row_bytes(conv_values) + state_dt.row_bytes(recurrent_values)
        split = f" / tp {tp}" if tp > 1 else ""
        formula = (
            f"conv (conv_kernel {linear.conv_kernel} - 1) x conv_dim {_fmt(linear.conv_dim)}{split} + recurrent "
            f"{linear.value_heads} x {linear.key_head_dim} x {linear.value_head_dim}{split}, x {state_dt.name} "
            f"= {_fmt(entry)} B per sequence per layer"
        )
        streams.append(
            CacheStream(
                "linear_state",
                linear_layers,
                entry,
                tokens_per_entry=0,
                description=f"{linear.kind} state",
                formula=formula,
            )
        )
    stages = pipeline_stages(model.layers + len(mtp_layers), options.pp)
    layout = f"tp {tp}, pp {options.pp}, dp {options.dp}" + (
        f", dcp {options.dcp}" if options.dcp > 1 else ""
    )
    return Plan(
        model=model,
        runtime="ideal",
        kv_dtype=dt.name,
        block_size=1,
        streams=tuple(streams),
        stages=stages,
        tp=tp,
        pp=options.pp,
        dp=options.dp,
        dcp=options.dcp,
        mtp=options.mtp,
        notes=("ideal: exactly the values the architecture needs, no paging, no runtime overhead",),
        layout=layout,
    )
