"""The mla-mem command line: parse, call the library, render. No arithmetic lives here."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .errors import MlaMemError, UsageError
from .render import FORMATS, Column, TableData, emit
from .units import (
    format_bytes,
    format_number,
    format_tokens,
    json_number,
    parse_count,
    parse_size,
    parse_tokens,
)

app = typer.Typer(
    name="mla-mem",
    help="Exact KV-cache memory for MLA, GQA, sliding-window and linear-attention models.\n\n"
    "Example: mla-mem estimate deepseek-v3 --context 128K --batch 16",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE = {"debug": False}


def _friendly(command: Callable[..., None]) -> Callable[..., None]:
    """Turn mla-mem's own errors into one line on stderr and exit 2, in every way the app is run."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except BrokenPipeError:
            # the reader went away (mla-mem models | head -1): stop quietly, successfully
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except MlaMemError as exc:
            if _STATE["debug"]:
                raise
            _error(str(exc))
            raise typer.Exit(exc.exit_code) from None

    return wrapper


DEFAULT_COMPARE_MODELS = ["deepseek-v3", "kimi-k2", "glm-5"]
DEFAULT_COMPARE_VARIANTS = "mha,gqa:8"
DEFAULT_COMPARE_CONTEXTS = ["4K", "32K", "128K", "1M"]

# ---------------------------------------------------------------------------------------------------------
# Shared options

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, json, csv or markdown.")]
UnitsOpt = Annotated[str, typer.Option("--units", help="binary (KiB, MiB, GiB) or si (kB, MB, GB).")]
ContextOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        "-c",
        help="Tokens per sequence: 131072, 128k (=128,000), 128K (=131,072), 1M. "
        "Repeat or separate with commas for several.",
    ),
]
BatchOpt = Annotated[
    str, typer.Option("--batch", "-b", help="Concurrent sequences (spread over --dp replicas).")
]
DtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--kv-dtype",
        help="Cache dtype: bf16, fp16, fp32, fp8, fp8_e5m2, int8, int4, fp4, 6bit, ... "
        "Default: the model's dtype.",
    ),
]
RuntimeOpt = Annotated[
    str,
    typer.Option(
        "--runtime",
        help="Runtime profile NAME[@VERSION]: ideal, vllm, sglang, transformers, llama.cpp, trtllm "
        "(e.g. vllm@0.11, transformers@4.57, llama.cpp@2025).",
        rich_help_panel="Deployment",
    ),
]
BlockOpt = Annotated[
    int | None,
    typer.Option(
        "--block-size", help="Paging block in tokens (default: the runtime's).", rich_help_panel="Deployment"
    ),
]
BatchedOpt = Annotated[
    str | None,
    typer.Option(
        "--max-batched-tokens",
        help="vLLM max_num_batched_tokens (sizes sliding layers; default 8192).",
        rich_help_panel="Deployment",
    ),
]
HybridOpt = Annotated[
    bool,
    typer.Option(
        "--hybrid-allocator/--no-hybrid-allocator",
        help="vLLM hybrid KV allocator; off sizes sliding layers as full attention (as with a KV connector).",
        rich_help_panel="Deployment",
    ),
]
IndexerDtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--indexer-dtype",
        help="DeepSeek-V4 indexer keys on vLLM: fp8 (132 B, default), mxfp4 (68 B), bf16.",
        rich_help_panel="Deployment",
    ),
]
VDtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--v-dtype", help="llama.cpp V cache type when it differs from K.", rich_help_panel="Deployment"
    ),
]
TpOpt = Annotated[int, typer.Option("--tp", help="Tensor-parallel GPUs.", rich_help_panel="Deployment")]
PpOpt = Annotated[int, typer.Option("--pp", help="Pipeline stages.", rich_help_panel="Deployment")]
DpOpt = Annotated[int, typer.Option("--dp", help="Data-parallel replicas.", rich_help_panel="Deployment")]
DcpOpt = Annotated[
    int,
    typer.Option("--dcp", help="Decode context parallel size (divides --tp).", rich_help_panel="Deployment"),
]
MtpOpt = Annotated[
    bool,
    typer.Option(
        "--mtp", help="MTP speculative decoding on: MTP layers hold a cache.", rich_help_panel="Deployment"
    ),
]


def _check_format(fmt: str) -> str:
    value = fmt.lower()
    if value not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    return value


def _check_units(units: str) -> str:
    value = units.lower()
    if value not in ("binary", "si"):
        raise UsageError(f"--units: expected binary or si, got {units!r}")
    return value


def _contexts(values: list[str] | None, default: list[str]) -> list[int]:
    items: list[str] = []
    for value in values or default:
        items.extend(part for part in value.split(",") if part.strip())
    if not items:
        raise UsageError("--context: expected at least one token count")
    return list(dict.fromkeys(parse_tokens(item, "--context") for item in items))


def _options(
    runtime: str,
    kv_dtype: str | None,
    tp: int,
    pp: int,
    dp: int,
    dcp: int,
    mtp: bool,
    block_size: int | None = None,
    max_batched_tokens: str | None = None,
    hybrid_allocator: bool = True,
    v_dtype: str | None = None,
    indexer_dtype: str | None = None,
) -> dict[str, Any]:
    batched = None
    if max_batched_tokens is not None:
        batched = parse_tokens(max_batched_tokens, "--max-batched-tokens", maximum=1 << 30)
    return {
        "runtime": runtime,
        "kv_dtype": kv_dtype,
        "tp": tp,
        "pp": pp,
        "dp": dp,
        "dcp": dcp,
        "mtp": mtp,
        "block_size": block_size,
        "max_batched_tokens": batched,
        "hybrid_allocator": hybrid_allocator,
        "v_dtype": v_dtype,
        "indexer_dtype": indexer_dtype,
    }


def _bytes_col(key: str, header: str, units: str) -> Column:
    return Column(key, header, numeric=True, display=lambda v: format_bytes(v, units))


def _exact_col(key: str, header: str) -> Column:
    return Column(key, header, numeric=True, display=lambda v: format_number(Fraction(v)))


# ---------------------------------------------------------------------------------------------------------
# Commands


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")] = False,
) -> None:
    """Exact KV-cache memory for MLA, GQA, sliding-window and linear-attention models.

    Example: mla-mem estimate deepseek-v3 --context 128K --batch 16
    """
    _STATE["debug"] = debug
    if version:
        sys.stdout.write(f"mla-mem {__version__}\n")
        raise typer.Exit(0)


@app.command()
@_friendly
def models(fmt: FormatOpt = "table", units: UnitsOpt = "binary") -> None:
    """List the built-in models: attention kind, layers, cache bytes per token (bf16), fixed bytes, context.

    Example: mla-mem models --format markdown
    """
    from . import builtin_models, estimate

    fmt, units = _check_format(fmt), _check_units(units)
    rows: list[dict[str, Any]] = []
    for model in builtin_models():
        result = estimate(model, context=1)
        stem = os.path.splitext(os.path.basename(model.path or ""))[0]
        rows.append(
            {
                "name": stem,
                "model": model.name,
                "attention": model.attention_kind,
                "layers": _layers_text(model),
                "bytes_per_token": result.bytes_per_token,
                "fixed_bytes": result.fixed_bytes,
                "max_context": model.max_context,
                "params_total": model.params.total,
                "params_active": model.params.active,
                "source": model.source,
            }
        )
    table = TableData(
        [
            Column("name", "Name"),
            Column("attention", "Attention"),
            Column("layers", "Layers"),
            _exact_col("bytes_per_token", "Bytes/token"),
            _bytes_col("fixed_bytes", "Fixed/sequence", units),
            Column("max_context", "Max context", numeric=True, display=lambda v: f"{v:,}"),
            Column("params_total", "Params", numeric=True, display=_params_text),
        ],
        rows,
        title="Built-in models (ideal runtime, bf16 cache, MTP off)",
        caption="Bytes/token: what each further token costs once windows are full. "
        "Fixed/sequence: linear state and full windows.",
    )
    emit(fmt, table, [{**row, "bytes_per_token": json_number(row["bytes_per_token"])} for row in rows])


def _params_text(value: int) -> str:
    if value >= 10**12:
        return f"{value / 10**12:g}T"
    return f"{value / 10**9:g}B"


def _layers_text(model: Any) -> str:
    counts = {kind: model.count(kind) for kind in ("full", "sliding", "linear", "window", "csa", "hca")}
    parts = [f"{n} {kind}" for kind, n in counts.items() if n]
    text = str(model.layers) if len(parts) == 1 else f"{model.layers} = " + " + ".join(parts)
    if model.mtp_layers:
        text += f" (+{model.mtp_layers} MTP)"
    return text


@app.command()
@_friendly
def show(
    model: Annotated[str, typer.Argument(help="Built-in name or alias, or a YAML model file.")],
    context: ContextOpt = None,
    batch: BatchOpt = "1",
    kv_dtype: DtypeOpt = None,
    runtime: RuntimeOpt = "ideal",
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    dp: DpOpt = 1,
    dcp: DcpOpt = 1,
    mtp: MtpOpt = False,
    block_size: BlockOpt = None,
    max_batched_tokens: BatchedOpt = None,
    hybrid_allocator: HybridOpt = True,
    v_dtype: VDtypeOpt = None,
    indexer_dtype: IndexerDtypeOpt = None,
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
) -> None:
    """One model's architecture and its cache by component, with the formula each line uses.

    Example: mla-mem show glm-5 --context 128K
    """
    from . import estimate, load_model

    fmt, units = _check_format(fmt), _check_units(units)
    spec = load_model(model)
    contexts = _contexts(context, ["128K"])
    if len(contexts) > 1:
        raise UsageError("--context: show takes one context; use estimate for several")
    result = estimate(
        spec,
        contexts[0],
        parse_count(batch, "--batch"),
        **_options(
            runtime,
            kv_dtype,
            tp,
            pp,
            dp,
            dcp,
            mtp,
            block_size,
            max_batched_tokens,
            hybrid_allocator,
            v_dtype,
            indexer_dtype,
        ),
    )
    rows = [
        {
            "component": c.name,
            "layers": c.layers,
            "bytes_per_token": c.bytes_per_token,
            "fixed_bytes": c.fixed_bytes,
            "total_bytes": c.total_bytes,
            "formula": c.formula,
        }
        for c in result.components
    ]
    rows.append(
        {
            "component": "total",
            "layers": result.layers,
            "bytes_per_token": result.bytes_per_token,
            "fixed_bytes": result.fixed_bytes,
            "total_bytes": result.total_bytes,
            "formula": "",
        }
    )
    table = TableData(
        [
            Column("component", "Component"),
            Column("layers", "Layers", numeric=True),
            _exact_col("bytes_per_token", "Bytes/token"),
            _exact_col("fixed_bytes", "Fixed bytes"),
            _bytes_col("total_bytes", f"At {format_tokens(result.context)} x {result.batch}", units),
            Column("formula", "Formula (per GPU)"),
        ],
        rows,
        title=f"{spec.name}: {_architecture_text(spec)}",
        caption=_assumptions(result) + (f" Source: {spec.source}" if spec.source else ""),
    )
    payload = result.as_dict()
    payload["architecture"] = _architecture_dict(spec)
    emit(fmt, table, payload)


def _assumptions(result: Any, with_context: bool = True) -> str:
    """One sentence of what an estimate assumed: runtime, version, cache dtype, block, layout, notes."""
    parts = [
        f"Runtime {result.runtime}",
        f"cache {result.kv_dtype}",
        f"block {result.block_size} tokens" if result.block_size > 1 else "no paging",
    ]
    if with_context:
        parts.append(f"context {result.context:,} tokens x batch {result.batch}")
    if result.gpus > 1:
        parts.append(f"{result.layout} = {result.gpus} GPUs, bytes per GPU")
    if result.mtp:
        parts.append("MTP layers on")
    text = ", ".join(parts) + "."
    for note in result.notes:
        text += f" Note: {note}."
    return text


def _architecture_text(spec: Any) -> str:
    a = spec.attention
    if a.kind == "compressed":
        rates = ", ".join(f"{k} 1/{r}" for k, r in spec.compress_rates)
        text = (
            f"compressed attention, {a.heads} heads, one {a.head_dim}-wide key-value vector per entry; "
            f"window {spec.sliding_window} on every layer; {rates}; layers {spec.layers} = "
            + " + ".join(f"{spec.count(k)} {k}" for k in ("window", "csa", "hca") if spec.count(k))
        )
        if spec.indexer:
            text += f"; indexer {spec.indexer.heads} x {spec.indexer.head_dim} on csa layers"
        return text
    if a.kind == "mla":
        text = (
            f"MLA, {a.heads} heads, kv_lora_rank {a.kv_lora_rank} + rope {a.qk_rope_head_dim}, "
            f"nope {a.qk_nope_head_dim}, v {a.v_head_dim}"
        )
    else:
        text = f"{a.kind.upper()}, {a.heads} heads, {a.kv_heads} KV heads x {a.head_dim}"
        if a.v_head_dim != a.head_dim:
            text += f" (v {a.v_head_dim})"
    text += f"; layers {_layers_text(spec)}"
    if spec.sliding_window:
        text += f"; window {spec.sliding_window:,}"
    if spec.indexer:
        text += f"; DSA indexer {spec.indexer.heads} x {spec.indexer.head_dim}, top-k {spec.indexer.topk}"
    return text


def _architecture_dict(spec: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "name": spec.name,
        "layers": spec.layers,
        "layer_kinds": {kind: spec.count(kind) for kind in ("full", "sliding", "linear") if spec.count(kind)},
        "attention": asdict(spec.attention),
        "sliding_window": spec.sliding_window,
        "linear_attention": asdict(spec.linear_attention) if spec.linear_attention else None,
        "indexer": asdict(spec.indexer) if spec.indexer else None,
        "mtp_layers": spec.mtp_layers,
        "dtype": spec.dtype,
        "max_context": spec.max_context,
        "source": spec.source,
    }


@app.command()
@_friendly
def estimate(
    model: Annotated[list[str], typer.Argument(help="One or more built-in names, aliases or YAML files.")],
    context: ContextOpt = None,
    batch: BatchOpt = "1",
    kv_dtype: DtypeOpt = None,
    runtime: RuntimeOpt = "ideal",
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    dp: DpOpt = 1,
    dcp: DcpOpt = 1,
    mtp: MtpOpt = False,
    block_size: BlockOpt = None,
    max_batched_tokens: BatchedOpt = None,
    hybrid_allocator: HybridOpt = True,
    v_dtype: VDtypeOpt = None,
    indexer_dtype: IndexerDtypeOpt = None,
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
) -> None:
    """KV-cache size of one or more models at one or more contexts (one row each).

    Example: mla-mem estimate deepseek-v3 llama-3.1-70b --context 32K,128K --batch 16
    """
    from . import load_model
    from . import plan as make_plan
    from .cache import size

    fmt, units = _check_format(fmt), _check_units(units)
    contexts = _contexts(context, ["128K"])
    sequences = parse_count(batch, "--batch")
    options = _options(
        runtime,
        kv_dtype,
        tp,
        pp,
        dp,
        dcp,
        mtp,
        block_size,
        max_batched_tokens,
        hybrid_allocator,
        v_dtype,
        indexer_dtype,
    )
    results: list[Any] = []
    for name in model:
        plan = make_plan(load_model(name), **options)
        results.extend(size(plan, n, sequences) for n in contexts)
    multi_gpu = any(r.gpus > 1 for r in results)
    rows = [
        {
            "model": r.model,
            "context": r.context,
            "batch": r.batch,
            "kv_dtype": r.kv_dtype,
            "runtime": r.runtime,
            "bytes_per_token": r.bytes_per_token,
            "fixed_bytes": r.fixed_bytes,
            "total_bytes": r.total_bytes,
            "deployment_bytes": r.deployment_bytes,
        }
        for r in results
    ]
    columns = [
        Column("model", "Model"),
        Column("context", "Context", numeric=True, display=lambda v: f"{v:,}"),
        Column("batch", "Batch", numeric=True),
        Column("kv_dtype", "Cache dtype"),
        _exact_col("bytes_per_token", "Bytes/token"),
        _bytes_col("fixed_bytes", "Fixed/seq", units),
        _bytes_col("total_bytes", "KV cache per GPU" if multi_gpu else "KV cache", units),
        _exact_col("total_bytes", "Bytes"),
    ]
    if multi_gpu:
        columns.append(_bytes_col("deployment_bytes", "All GPUs", units))
    if any(r.block_size > 1 for r in results):
        columns.insert(4, Column("block_size", "Block", numeric=True))
        for row, r in zip(rows, results, strict=True):
            row["block_size"] = r.block_size
    caption = f"Runtime {results[0].runtime}"
    if multi_gpu:
        caption += f", {results[0].layout} = {results[0].gpus} GPUs, bytes per GPU"
    caption += "." + "".join(f" Note: {note}." for note in dict.fromkeys(n for r in results for n in r.notes))
    table = TableData(columns, rows, caption=caption)
    payload = [r.as_dict() for r in results]
    emit(fmt, table, payload)


@app.command()
@_friendly
def compare(
    model: Annotated[
        list[str] | None,
        typer.Argument(help="Models to compare (default: deepseek-v3 kimi-k2 glm-5)."),
    ] = None,
    as_: Annotated[
        str | None,
        typer.Option(
            "--as", help="What-if variants: mha, gqa:G, mqa, mla:R, comma-separated (default mha,gqa:8)."
        ),
    ] = None,
    context: ContextOpt = None,
    batch: BatchOpt = "1",
    kv_dtype: DtypeOpt = None,
    runtime: RuntimeOpt = "ideal",
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    dp: DpOpt = 1,
    dcp: DcpOpt = 1,
    mtp: MtpOpt = False,
    block_size: BlockOpt = None,
    max_batched_tokens: BatchedOpt = None,
    hybrid_allocator: HybridOpt = True,
    v_dtype: VDtypeOpt = None,
    indexer_dtype: IndexerDtypeOpt = None,
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
) -> None:
    """A model against its what-if variants (MHA, GQA-g, MQA, MLA at another rank), at several contexts.

    With no model: DeepSeek-V3, Kimi K2 and GLM-5 against their MHA and GQA-8 variants at 4K, 32K, 128K, 1M.

    Example: mla-mem compare deepseek-v3 --as mha,gqa:8,mqa,mla:256 --context 128K
    """
    from . import load_model
    from . import plan as make_plan
    from .cache import size
    from .variants import equivalent_gqa_groups, make_variant, parse_variants, variant_label

    fmt, units = _check_format(fmt), _check_units(units)
    contexts = _contexts(context, DEFAULT_COMPARE_CONTEXTS)
    sequences = parse_count(batch, "--batch")
    variants = parse_variants(as_ if as_ is not None else DEFAULT_COMPARE_VARIANTS)
    options = _options(
        runtime,
        kv_dtype,
        tp,
        pp,
        dp,
        dcp,
        mtp,
        block_size,
        max_batched_tokens,
        hybrid_allocator,
        v_dtype,
        indexer_dtype,
    )
    names = model or DEFAULT_COMPARE_MODELS
    rows: list[dict[str, Any]] = []
    payload = []
    largest = max(contexts)
    for name in names:
        base = load_model(name)
        base_plan = make_plan(base, **options)
        base_total = size(base_plan, largest, sequences).total_bytes
        groups = equivalent_gqa_groups(base)
        entries = [(base, "as built")] + [(make_variant(base, v), variant_label(v)) for v in variants]
        results = []
        for spec, label in entries:
            plan = base_plan if label == "as built" else make_plan(spec, **options)
            estimates = [size(plan, n, sequences) for n in contexts]
            ratio = Fraction(estimates[-1].total_bytes, base_total) if base_total else Fraction(0)
            text = row_label(base.name, label, _variant_attention(spec))
            row: dict[str, Any] = {
                "label": text,
                "model": base.name,
                "variant": label,
                "attention": _variant_attention(spec),
                "bytes_per_token": estimates[0].bytes_per_token,
                "ratio": ratio,
                "gqa_groups": groups if label == "as built" else None,
            }
            for n, e in zip(contexts, estimates, strict=True):
                row[f"ctx_{n}"] = e.total_bytes
            rows.append(row)
            results.append(
                {
                    "variant": label,
                    "attention": row["attention"],
                    "bytes_per_token": json_number(estimates[0].bytes_per_token),
                    "ratio_to_built": float(ratio),
                    "estimates": [e.as_dict() for e in estimates],
                }
            )
        payload.append(
            {
                "model": base.name,
                "equivalent_gqa_groups": float(groups) if groups is not None else None,
                "equivalent_gqa_groups_convention": "DeepSeek-V2 paper, Table 1: latent / (qk_nope_head_dim "
                "+ v_head_dim)",
                "variants": results,
            }
        )
    columns = [
        Column("label", "Model / what-if"),
        _exact_col("bytes_per_token", "Bytes/token"),
    ]
    columns += [_bytes_col(f"ctx_{n}", format_tokens(n), units) for n in contexts]
    columns.append(
        Column(
            "ratio",
            f"vs built @{format_tokens(largest)}",
            numeric=True,
            display=lambda v: f"{float(v):,.2f}x",
        )
    )
    columns.append(Column("gqa_groups", "GQA groups", numeric=True, display=lambda v: f"{float(v):.2f}"))
    first = size(make_plan(load_model(names[0]), **options), contexts[0], sequences)
    caption = (
        f"KV cache for batch {sequences}, {first.kv_dtype}, runtime {first.runtime}. What-ifs cache per layer "
        "KV heads x (key + value width), keeping the model's per-head widths (key = nope + rope). GQA groups: "
        "how many GQA groups cache as much as the MLA latent, DeepSeek-V2 paper convention "
        "(latent / (qk_nope_head_dim + v_head_dim))."
    )
    table = TableData(columns, rows, title="KV cache as built and as what-if attention", caption=caption)
    csv_rows = [
        {**r, "ratio": float(r["ratio"]), "gqa_groups": float(r["gqa_groups"]) if r["gqa_groups"] else None}
        for r in rows
    ]
    if fmt == "csv":
        table.rows = csv_rows
    emit(fmt, table, payload)


def row_label(model: str, label: str, attention: str) -> str:
    return f"{model}: {attention}" if label == "as built" else f"  as {label}: {attention}"


@app.command("fit")
@_friendly
def fit_command(
    model: Annotated[
        str, typer.Argument(help="Built-in name or alias, YAML file, config.json or params.json.")
    ],
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="GPU from the catalogue (mla-mem gpus), e.g. H200.")
    ] = None,
    gpus: Annotated[
        int | None, typer.Option("--gpus", help="GPU count; omit to search the smallest layout.")
    ] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", help="Memory per GPU for a GPU not listed, e.g. 80GiB.")
    ] = None,
    context: ContextOpt = None,
    batch: BatchOpt = "1",
    kv_dtype: DtypeOpt = None,
    weight_dtype: Annotated[
        str | None,
        typer.Option(
            "--weight-dtype", help="auto (the checkpoint's), bf16, fp16, fp8, int4, mxfp4, mxfp4-experts."
        ),
    ] = None,
    utilization: Annotated[
        str, typer.Option("--gpu-memory-utilization", help="Fraction of GPU memory the engine may use.")
    ] = "0.9",
    reserve: Annotated[
        str, typer.Option("--reserve", help="Activations, CUDA graphs, non-torch memory.")
    ] = "2GiB",
    runtime: RuntimeOpt = "vllm",
    tp: Annotated[
        int | None,
        typer.Option(
            "--tp", help="Tensor-parallel GPUs (default: all --gpus).", rich_help_panel="Deployment"
        ),
    ] = None,
    pp: PpOpt = 1,
    dp: Annotated[
        int | None,
        typer.Option(
            "--dp", help="Data-parallel replicas (default: --gpus / (tp x pp)).", rich_help_panel="Deployment"
        ),
    ] = None,
    dcp: DcpOpt = 1,
    mtp: MtpOpt = False,
    ep: Annotated[
        bool | None,
        typer.Option(
            "--ep/--no-ep",
            help="Shard routed experts over all GPUs (default: on for MoE with --dp > 1).",
            rich_help_panel="Deployment",
        ),
    ] = None,
    block_size: BlockOpt = None,
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
) -> None:
    """Does a model fit on these GPUs: weights, cache left per GPU, token capacity, concurrency, longest context.

    Exits 1 when the weights do not fit or context x batch does not. Without --gpus, finds the smallest layout.

    Example: mla-mem fit deepseek-v3 --gpu H200 --gpus 8 --context 128K --batch 16
    """
    from . import load_model
    from .hardware import find_gpu, fit, memory_gpu, parse_fraction, search

    fmt, units = _check_format(fmt), _check_units(units)
    if (gpu is None) == (memory is None):
        raise UsageError("give --gpu NAME (see mla-mem gpus) or --memory SIZE, one of them")
    device = find_gpu(gpu) if gpu is not None else memory_gpu(str(memory))
    spec = load_model(model)
    contexts = _contexts(context, []) if context else []
    if len(contexts) > 1:
        raise UsageError("--context: fit takes one context")
    n = contexts[0] if contexts else None
    sequences = parse_count(batch, "--batch")
    kwargs: dict[str, Any] = {
        "runtime": runtime, "kv_dtype": kv_dtype, "weight_dtype": weight_dtype, "dcp": dcp, "mtp": mtp, "ep": ep,
        "gpu_memory_utilization": parse_fraction(utilization, "--gpu-memory-utilization"),
        "reserve": parse_size(reserve, "--reserve"), "block_size": block_size,
    }  # fmt: skip
    if gpus is None:
        if n is None:
            raise UsageError("the layout search needs --context (and --batch): what must fit?")
        if tp is not None or dp is not None:
            raise UsageError("--tp/--dp need --gpus; without --gpus mla-mem searches the layout")
        found = search(spec, device, context=n, batch=sequences, **kwargs)
        if not found:
            _error(f"{spec.name} does not fit on up to 128 x {device.name} at {n:,} tokens x {sequences}")
            raise typer.Exit(1)
        results = found
    else:
        count = parse_count(gpus, "--gpus", maximum=4096)
        tp_value = tp if tp is not None else max(1, count // (pp * (dp or 1)))
        dp_value = dp if dp is not None else count // (tp_value * pp)
        if tp_value * pp * dp_value != count:
            raise UsageError(
                f"--tp {tp_value} x --pp {pp} x --dp {dp_value} = {tp_value * pp * dp_value}, not --gpus {count}"
            )
        results = [fit(spec, device, tp=tp_value, pp=pp, dp=dp_value, context=n, batch=sequences, **kwargs)]
    _render_fit(results, fmt, units, search_mode=gpus is None)
    if not results[0].fits:
        raise typer.Exit(1)


def _render_fit(results: list[Any], fmt: str, units: str, search_mode: bool) -> None:
    from .render import print_table, write

    if fmt == "json":
        import json

        payload: Any = [r.as_dict() for r in results] if search_mode else results[0].as_dict()
        write(json.dumps(payload, indent=2) + "\n")
        return
    if search_mode:
        rows = [
            {"gpus": r.gpus, "layout": f"tp {r.tp} x pp {r.pp} x dp {r.dp}", "weights": r.weight_bytes,
             "available": r.available_bytes, "concurrency": r.max_concurrency, "longest": r.longest_context,
             "choice": "best" if i == 0 else ""}
            for i, r in enumerate(results)
        ]  # fmt: skip
        first = results[0]
        table = TableData(
            [Column("choice", ""), Column("gpus", "GPUs", numeric=True), Column("layout", "Layout"),
             _bytes_col("weights", "Weights/GPU", units), _bytes_col("available", "Cache room/GPU", units),
             Column("concurrency", f"Requests of {first.context:,}", numeric=True),
             Column("longest", f"Longest context x {first.batch}", numeric=True, display=lambda v: f"{v:,}")],
            rows,
            title=f"{first.model} on {first.gpu}: layouts that fit {first.context:,} tokens x {first.batch}",
            caption=f"Runtime {first.runtime}, cache {first.kv_dtype}, weights {first.weight_dtype}. Ranked by GPU "
            "count, then requests held. For MLA models data-parallel attention holds more: every tensor-parallel "
            "rank keeps the whole latent.",
        )  # fmt: skip
        if fmt == "table":
            print_table(table)
        else:
            emit(fmt, table, None)
        return
    r = results[0]
    lines: list[dict[str, Any]] = [
        {"what": "GPU", "value": f"{r.gpu} x {r.gpus} (tp {r.tp}, pp {r.pp}, dp {r.dp})", "bytes": None},
        {"what": "memory per GPU (device)", "value": format_bytes(r.memory_bytes, units), "bytes": r.memory_bytes},
        {"what": "usable (x utilization)", "value": format_bytes(r.usable_bytes, units), "bytes": r.usable_bytes},
        {"what": f"weights per GPU ({r.weight_dtype})", "value": format_bytes(r.weight_bytes, units),
         "bytes": r.weight_bytes},
        {"what": "reserve", "value": format_bytes(r.reserve_bytes, units), "bytes": r.reserve_bytes},
        {"what": "left for the KV cache", "value": format_bytes(r.available_bytes, units), "bytes": r.available_bytes},
        {"what": "cache bytes per token (per GPU)", "value": format_number(r.bytes_per_token), "bytes": None},
        {"what": f"token capacity per GPU ({r.capacity_kind})", "value": f"{r.token_capacity:,} tokens", "bytes": None},
    ]  # fmt: skip
    if r.dp > 1:
        lines.append(
            {
                "what": "token capacity, all replicas",
                "value": f"{r.token_capacity * r.dp:,} tokens ({r.dp} independent pools)",
                "bytes": None,
            }
        )
    if r.context is not None:
        lines.append(
            {"what": f"requests of {r.context:,} tokens", "value": f"{r.max_concurrency:,}", "bytes": None}
        )
        lines.append(
            {
                "what": f"cache at {r.context:,} x {r.batch}",
                "value": format_bytes(r.cache_bytes or 0, units),
                "bytes": r.cache_bytes,
            }
        )
    if r.longest_context is not None:
        lines.append(
            {
                "what": f"longest context at batch {r.batch or 1}",
                "value": f"{r.longest_context:,} tokens",
                "bytes": None,
            }
        )
    lines.append(
        {
            "what": "verdict",
            "value": "FITS" if r.fits else ("WEIGHTS DO NOT FIT" if not r.weights_fit else "DOES NOT FIT"),
            "bytes": None,
        }
    )
    caption = f"Runtime {r.runtime}, cache {r.kv_dtype}, block {r.block_size}."
    if r.runtime.startswith("vllm") and r.capacity_kind == "blocks":
        caption += " vLLM would log: " + " / ".join(r.vllm_lines()) + "."
    elif r.runtime.startswith("vllm"):
        caption += (
            " Token capacity is the longest single sequence that fits; vLLM counts hybrid models per"
            " KV-cache group, which mla-mem does not reproduce."
        )
    caption += "".join(f" Note: {note}." for note in r.notes)
    table = TableData(
        [Column("what", "Per GPU"), Column("value", "Value", numeric=True), _exact_col("bytes", "Bytes")],
        lines,
        title=f"{r.model} on {r.gpu}",
        caption=caption,
    )
    emit(fmt, table, None)


@app.command()
@_friendly
def gpus(fmt: FormatOpt = "table", units: UnitsOpt = "binary") -> None:
    """The GPU catalogue: memory as the device reports it, with sources.

    Example: mla-mem gpus --format json
    """
    from .hardware import gpu_catalogue

    fmt, units = _check_format(fmt), _check_units(units)
    rows = [{"name": g.name, "nominal": g.nominal, "memory_bytes": g.memory_bytes, "memory_mib": g.memory_bytes // 2**20,
             "source": g.source} for g in gpu_catalogue()]  # fmt: skip
    table = TableData(
        [
            Column("name", "GPU"),
            Column("nominal", "Nominal"),
            Column("memory_mib", "MiB", numeric=True),
            _bytes_col("memory_bytes", "Memory", units),
            Column("source", "Source"),
        ],
        rows,
        title="GPU catalogue (configs/gpus.yaml)",
    )
    emit(fmt, table, rows)


@app.command()
@_friendly
def check(
    budgets: Annotated[list[str], typer.Argument(help="Budget YAML files (docs/budgets.md).")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="text, json, junit, github or markdown.")
    ] = "text",
    units: UnitsOpt = "binary",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Also write the report to this file.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Check KV-cache budgets: exit 0 when all pass, 1 when any fails, 2 on invalid input.

    Example: mla-mem check examples/budgets.yaml --format github
    """
    from .budgets import as_github, as_junit, as_markdown, as_text
    from .budgets import check as run_check

    kind = fmt.lower()
    if kind not in ("text", "json", "junit", "github", "markdown"):
        raise UsageError(f"--format: expected text, json, junit, github or markdown, got {fmt!r}")
    units = _check_units(units)
    if output is not None:
        from .files import check_writable

        check_writable(Path(output), force)
    verdicts = run_check(budgets)
    if kind == "json":
        import json

        text = (
            json.dumps(
                {"passed": all(v.passed for v in verdicts), "verdicts": [v.as_dict() for v in verdicts]},
                indent=2,
            )
            + "\n"
        )
    else:
        text = {"text": as_text, "junit": as_junit, "github": as_github, "markdown": as_markdown}[kind](
            verdicts, units
        )
    sys.stdout.write(text)
    if output is not None:
        from .files import write_atomic

        write_atomic(output, text, force=force)
    if not all(v.passed for v in verdicts):
        raise typer.Exit(1)


@app.command()
@_friendly
def diff(
    old: Annotated[str, typer.Argument(help="The old model: a file, a built-in name, or REV:path from git.")],
    new: Annotated[str, typer.Argument(help="The new model, as OLD.")],
    context: ContextOpt = None,
    batch: BatchOpt = "1",
    max_growth: Annotated[
        str | None, typer.Option("--max-growth", help="Fail (exit 1) when the cache grows more, e.g. 5%.")
    ] = None,
    kv_dtype: DtypeOpt = None,
    runtime: RuntimeOpt = "ideal",
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    dp: DpOpt = 1,
    mtp: MtpOpt = False,
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
) -> None:
    """Compare two model configs component by component; exit 1 when the cache grows past --max-growth.

    Example: mla-mem diff HEAD~1:configs/model.yaml configs/model.yaml --context 128K --max-growth 5%
    """
    from .budgets import resolve_revision
    from .cache import size
    from .configs import load_model
    from .runtimes import Options, lower

    fmt, units = _check_format(fmt), _check_units(units)
    limit = None
    if max_growth is not None:
        text = max_growth.strip().rstrip("%")
        try:
            limit = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise UsageError(f"--max-growth: expected a percentage such as 5%, got {max_growth!r}") from None
        if limit < 0 or limit > 10**6:
            raise UsageError(f"--max-growth: expected a percentage from 0 to 1,000,000, got {max_growth!r}")
    contexts = _contexts(context, ["128K"])
    sequences = parse_count(batch, "--batch")
    options = Options(runtime=runtime, kv_dtype=kv_dtype, tp=tp, pp=pp, dp=dp, mtp=mtp)
    specs = []
    temporary = []
    try:
        for ref in (old, new):
            path, label = resolve_revision(ref)
            if label is not None:
                temporary.append(path)
            try:
                specs.append(load_model(path))
            except MlaMemError as exc:
                raise UsageError(str(exc).replace(path, ref)) from None
    finally:
        for path in temporary:
            os.unlink(path)
    plans = [lower(spec, options) for spec in specs]
    rows: list[dict[str, Any]] = []
    worst = Fraction(-(10**9))
    for n in contexts:
        before, after = (size(plan, n, sequences) for plan in plans)
        parts_before = {c.name: c for c in before.components}
        parts_after = {c.name: c for c in after.components}
        for name in dict.fromkeys([*parts_before, *parts_after]):
            a, b = parts_before.get(name), parts_after.get(name)
            rows.append(
                _diff_row(
                    n,
                    name,
                    a.total_bytes if a else 0,
                    b.total_bytes if b else 0,
                    a.bytes_per_token if a else Fraction(0),
                    b.bytes_per_token if b else Fraction(0),
                )
            )
        total = _diff_row(
            n, "total", before.total_bytes, after.total_bytes, before.bytes_per_token, after.bytes_per_token
        )
        rows.append(total)
        if before.total_bytes:
            worst = max(worst, Fraction(after.total_bytes - before.total_bytes, before.total_bytes) * 100)
    failed = limit is not None and worst > limit
    verdict = ("" if limit is None else
               f"{'FAIL' if failed else 'PASS'}: largest growth {float(worst):+.2f}% against --max-growth "
               f"{float(limit):g}%")  # fmt: skip
    table = TableData(
        [Column("context", "Context", numeric=True, display=lambda v: f"{v:,}"), Column("component", "Component"),
         _exact_col("old_bytes_per_token", "Old B/token"), _exact_col("new_bytes_per_token", "New B/token"),
         _bytes_col("old_bytes", "Old", units), _bytes_col("new_bytes", "New", units),
         _exact_col("change_bytes", "Change (B)"),
         Column("change_percent", "Change", numeric=True, display=lambda v: f"{float(v):+.2f}%")],
        rows, title=f"{old} -> {new} ({specs[0].name} -> {specs[1].name})",
        caption=f"Runtime {plans[0].runtime}, batch {sequences}. {verdict}".strip(),
    )  # fmt: skip
    payload = {"old": old, "new": new, "rows": [{**r, "old_bytes_per_token": json_number(r["old_bytes_per_token"]),
               "new_bytes_per_token": json_number(r["new_bytes_per_token"]), "change_percent": float(r["change_percent"])}
               for r in rows], "max_growth_percent": float(limit) if limit is not None else None,
               "largest_growth_percent": float(worst), "passed": not failed}  # fmt: skip
    emit(fmt, table, payload)
    if failed:
        raise typer.Exit(1)


def _diff_row(
    context: int, name: str, old: int, new: int, old_bpt: Fraction, new_bpt: Fraction
) -> dict[str, Any]:
    change = new - old
    percent = Fraction(change * 100, old) if old else (Fraction(100) if new else Fraction(0))
    return {
        "context": context,
        "component": name,
        "old_bytes_per_token": old_bpt,
        "new_bytes_per_token": new_bpt,
        "old_bytes": old,
        "new_bytes": new,
        "change_bytes": change,
        "change_percent": percent,
    }


@app.command()
@_friendly
def validate(
    files: Annotated[
        list[str], typer.Argument(help="Model files (YAML, config.json, params.json) to check.")
    ],
) -> None:
    """Load model files strictly and report the first error of each (exit 2 if any is invalid).

    Example: mla-mem validate configs/*.yaml
    """
    from .configs import load_model

    bad = 0
    for file in files:
        try:
            spec = load_model(
                file if (os.sep in file or file.endswith((".yaml", ".yml", ".json"))) else f"./{file}"
            )
        except MlaMemError as exc:
            _error(str(exc))
            bad += 1
        else:
            sys.stdout.write(f"ok {file}: {spec.name}, {spec.layers} layers, {spec.attention_kind}\n")
    if bad:
        raise typer.Exit(2)


@app.command("plot")
@_friendly
def plot_command(
    model: Annotated[list[str], typer.Argument(help="One or more models (names, YAML, config.json).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Image file: .png, .svg or .pdf.")],
    as_: Annotated[str | None, typer.Option("--as", help="What-if variants: mha, gqa:G, mqa, mla:R.")] = None,
    min_context: Annotated[str, typer.Option("--min-context", help="Left end of the x axis.")] = "1K",
    max_context: Annotated[str, typer.Option("--max-context", help="Right end of the x axis.")] = "1M",
    batch: BatchOpt = "1",
    kv_dtype: DtypeOpt = None,
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="Draw the memory left for the cache on this GPU.")
    ] = None,
    gpus: Annotated[
        int | None, typer.Option("--gpus", help="GPU count with --gpu (default: --tp x --pp x --dp).")
    ] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", help="Draw a line at this much memory, e.g. 80GiB.")
    ] = None,
    breakdown: Annotated[bool, typer.Option("--breakdown", help="Stacked components of one model.")] = False,
    log_y: Annotated[bool, typer.Option("--log-y", help="Logarithmic memory axis.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    runtime: RuntimeOpt = "ideal",
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    dp: DpOpt = 1,
    mtp: MtpOpt = False,
    units: UnitsOpt = "binary",
) -> None:
    """Draw KV cache against context length (one line per model and what-if) as PNG, SVG or PDF.

    Example: mla-mem plot deepseek-v3 --as mha,gqa:8 --gpu H200 --gpus 8 --tp 8 -o v3.png
    """
    from .files import check_writable, write_atomic
    from .plots import build, output_format, render
    from .runtimes import Options
    from .variants import parse_variants

    units = _check_units(units)
    fmt = output_format(output)
    check_writable(Path(output), force)
    options = Options(runtime=runtime, kv_dtype=kv_dtype, tp=tp, pp=pp, dp=dp, mtp=mtp)
    line, what = _memory_line(model[0], gpu, gpus, memory, options, parse_count(batch, "--batch"))
    data = build(
        model, variants=parse_variants(as_) if as_ else None,
        min_context=parse_tokens(min_context, "--min-context"), max_context=parse_tokens(max_context, "--max-context"),
        batch=parse_count(batch, "--batch"), options=options, memory=line, memory_what=what, breakdown=breakdown,
        log_y=log_y, units=units,
    )  # fmt: skip
    write_atomic(output, lambda: render(data, fmt), force=force)
    _note(f"wrote {output}")


def _memory_line(
    model: str, gpu: str | None, gpus: int | None, memory: str | None, options: Any, batch: int
) -> tuple[int | None, str]:
    if gpu is not None and memory is not None:
        raise UsageError("give --gpu or --memory, not both")
    if memory is not None:
        return parse_size(memory, "--memory"), "memory for the cache"
    if gpu is None:
        if gpus is not None:
            raise UsageError("--gpus needs --gpu")
        return None, ""
    from dataclasses import asdict

    from . import load_model
    from .hardware import find_gpu, fit

    count = options.tp * options.pp * options.dp
    if gpus is not None and gpus != count:
        raise UsageError(f"--gpus {gpus} must equal --tp x --pp x --dp = {count}")
    device = find_gpu(gpu)
    result = fit(load_model(model), device, batch=batch, **asdict(options))
    if not result.weights_fit:
        raise UsageError(f"{model}: the weights alone do not fit on {count} x {device.name}")
    return (
        result.available_bytes,
        f"left for the cache on {count} x {device.name} (weights of {result.model})",
    )


@app.command()
@_friendly
def gallery(
    directory: Annotated[
        str, typer.Argument(help="Where to write the gallery (the repository's plots/).")
    ] = "plots",
) -> None:
    """Regenerate the committed plot gallery (PNG files and their data in gallery.json).

    Example: mla-mem gallery plots
    """
    import json

    from .files import write_atomic
    from .plots import GALLERY, build, render
    from .runtimes import Options

    folder = Path(directory)
    if not folder.is_dir():
        raise UsageError(f"{directory}: no such directory")
    index = []
    for item in GALLERY:
        options = Options(
            runtime=item.get("runtime", "ideal"), kv_dtype=item.get("kv_dtype"), tp=item.get("tp", 1)
        )
        line, what = _memory_line(
            item["models"][0], item.get("gpu"), None, None, options, item.get("batch", 1)
        )
        data = build(item["models"], variants=item.get("variants"), batch=item.get("batch", 1), options=options,
                     memory=line, memory_what=what, breakdown=item.get("breakdown", False),
                     log_y=item.get("log_y", False))  # fmt: skip
        write_atomic(folder / item["file"], render(data, "png"), force=True)
        index.append({"file": item["file"], "caption": item["caption"], "data": data.as_dict()})
        _note(f"wrote {folder / item['file']}")
    import matplotlib

    payload = {"matplotlib": matplotlib.__version__, "plots": index}
    write_atomic(folder / "gallery.json", json.dumps(payload, indent=1) + "\n", force=True)


@app.command("import")
@_friendly
def import_(
    config: Annotated[
        str, typer.Argument(help="A Hugging Face config.json (or its directory) or a Mistral params.json.")
    ],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write the YAML here (default: stdout).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Model name (default: from the path).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Turn a model's config.json / params.json into a mla-mem YAML, with comments on what was inferred.

    Example: mla-mem import ./DeepSeek-V3/config.json -o configs/deepseek-v3.yaml
    """
    from .configs import parse_model
    from .files import check_writable, write_atomic
    from .hf import import_config, to_yaml

    if output is not None:
        check_writable(Path(output), force)
    model, notes, file = import_config(config, name)
    parse_model(model, file)  # the result must load: validate before writing anything
    text = to_yaml(model, notes, config)
    for note in notes:
        _note(f"{file}: {note}")
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text, force=force)
        _note(f"wrote {output}")


def _variant_attention(spec: Any) -> str:
    a = spec.attention
    if a.kind == "compressed":
        text = f"compressed {a.head_dim}, " + "/".join(f"{k} 1:{r}" for k, r in spec.compress_rates)
    elif a.kind == "mla":
        text = f"MLA {a.kv_lora_rank}+{a.qk_rope_head_dim}"
    else:
        text = f"{a.kv_heads} x ({a.head_dim}+{a.v_head_dim})"
    if spec.indexer is not None:
        text += f", indexer {spec.indexer.head_dim}"
    return text


# ---------------------------------------------------------------------------------------------------------
# Entry point: one-line errors, exit codes, quiet pipes


def _note(message: str) -> None:
    sys.stderr.write(f"mla-mem: note: {message}\n")
    sys.stderr.flush()


def _show_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    _note(str(message))


def _error(message: str) -> None:
    sys.stderr.write(f"mla-mem: error: {message}\n")
    sys.stderr.flush()


def _command_name(info: Any) -> str:
    return str(info.name or getattr(info.callback, "__name__", "").replace("_", "-"))


def _app_for(args: list[str]) -> typer.Typer:
    """The app with only the invoked command registered: Typer inspects every registered command's signature
    at start-up, which costs more than the command itself. Help and unknown commands get the full app."""
    names = [a for a in args if not a.startswith("-")]
    if not names or any(a in ("-h", "--help") for a in args[: args.index(names[0])] if names):
        return app
    wanted = names[0]
    chosen = [c for c in app.registered_commands if _command_name(c) == wanted]
    if len(chosen) != 1:
        return app
    single = typer.Typer(
        name="mla-mem", no_args_is_help=True, pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )  # fmt: skip
    single.registered_callback = app.registered_callback
    single.registered_commands = chosen
    single.info = app.info
    return single


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and exit with) 0 ok, 1 check failed, 2 bad input, 130 interrupted."""
    try:  # Typer >= 0.29 vendors click
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:  # pragma: no cover - older Typer on real click
        from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[no-redef]

    import warnings

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    warnings.showwarning = _show_warning
    warnings.filterwarnings("always", category=UserWarning)  # importer assumptions: shown as notes
    code = 0
    try:
        result = _app_for(args)(args=args, prog_name="mla-mem", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == 130:  # Typer turns Ctrl-C inside a command into exit code 130
            _error("interrupted")
    except MlaMemError as exc:
        if debug:
            raise
        _error(str(exc))
        code = exc.exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        _error("interrupted")
        code = 130
    except NoArgsIsHelpError as exc:
        sys.stdout.write((exc.ctx.get_help() if exc.ctx else "") + "\n")
        code = 0
    except ClickException as exc:
        if debug:
            raise
        _error(exc.format_message().replace("\n", " "))
        code = 2
    except KeyboardInterrupt:
        _error("interrupted")
        code = 130
    except BrokenPipeError:
        # the reader went away (mla-mem models | head -1): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except Exception as exc:  # a bug in mla-mem, not bad input: one line, and --debug for the rest
        if debug:
            raise
        _error(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it")
        code = 70
    if argv is None:
        sys.exit(code)
    return code
