"""The mla-mem command line: parse, call the library, render. No arithmetic lives here.

Every command that prints bytes takes the same deployment options (DEPLOYMENT_OPTIONS, added to each command's
signature by `with_deployment`), built into one `Deployment` by deployment.py. Only the invoked command is
registered on the Typer app (Typer inspects every registered command when it runs), and `--version` is answered
before any app is built.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .errors import ConfigError, MlaMemError, UsageError

_STATE = {"debug": False}
MODEL_HELP = (
    "a built-in name or alias, a YAML file, a config.json or params.json (or its directory), a .gguf file, "
    "or a Hub id (org/name or org/name@revision)."
)
DEPLOYMENT_PANEL = "Deployment"
DEFAULT_COMPARE_MODELS = ["deepseek-v3", "kimi-k2", "glm-5"]
DEFAULT_COMPARE_VARIANTS = "mha,gqa:8"
DEFAULT_COMPARE_CONTEXTS = ["4K", "32K", "128K", "1M"]

# ---------------------------------------------------------------------------------------------------------
# Options shared by commands

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, json, csv or markdown.")]
UnitsOpt = Annotated[str, typer.Option("--units", help="binary (KiB, MiB, GiB) or si (kB, MB, GB).")]
ContextOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--context", "-c",
        help="Tokens per sequence: 131072, 131,072, 128k (=128,000), 128K (=131,072), 1M. Several: 32K,128K or "
        "repeat the option. [default: 128K]",
    ),
]  # fmt: skip
BatchOpt = Annotated[str, typer.Option("--batch", "-b", help="Concurrent sequences (spread over --dp replicas).")]
OffloadOpt = Annotated[str | None, typer.Option("--offload", help="Host tiers: cpu:SIZE (vLLM --kv-offloading-size, "
                       "the engine's total; SGLang --hicache-size per rank), disk:SIZE (SGLang L3 file max_size per "
                       "rank), lmcache-cpu:SIZE / lmcache-disk:SIZE (per worker), e.g. cpu:1TiB.")]  # fmt: skip
ChunkOpt = Annotated[
    int, typer.Option("--offload-chunk", help="vLLM: GPU blocks per offloaded chunk (blocks_per_chunk).")
]


def _option(name: str, annotation: Any, default: Any, help_text: str, *decls: str) -> inspect.Parameter:
    info = typer.Option(*(decls or (f"--{name.replace('_', '-')}",)), help=help_text, rich_help_panel=DEPLOYMENT_PANEL)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, info]
    )


def deployment_parameters(runtime: str) -> list[inspect.Parameter]:
    """The deployment options, in the order help lists them; `runtime` is the command's default runtime."""
    return [
        _option("runtime", str, runtime, "Runtime profile NAME[@VERSION]: ideal, vllm, sglang, transformers, "
                "llama.cpp, trtllm (e.g. vllm@0.11, transformers@4.57, llama.cpp@2025)."),
        _option("kv_dtype", str | None, None, "Cache dtype: bf16, fp16, fp32, fp8, fp8_e5m2, fp8_ds_mla, int8, int4, "
                "fp4, q8_0, 6bit, ... [default: the model's dtype, or the runtime's default]"),
        _option("v_dtype", str | None, None, "llama.cpp V cache type when it differs from K."),
        _option("indexer_dtype", str | None, None, "DeepSeek-V4 indexer keys on vLLM: fp8 (132 B), mxfp4 (68 B), "
                "bf16. [default: fp8]"),
        _option("state_dtype", str | None, None, "Linear-attention / SSM state dtype (vLLM mamba_ssm_cache_dtype). "
                "[default: the runtime's]"),
        _option("tp", int | None, None, "Tensor-parallel GPUs. [default: 1; fit: all --gpus]"),
        _option("pp", int | None, None, "Pipeline stages. [default: 1]"),
        _option("dp", int | None, None, "Data-parallel replicas. [default: 1; fit: --gpus / (tp x pp)]"),
        _option("dcp", int, 1, "Decode context parallel size (divides --tp)."),
        _option("pp_layers", str | None, None, "Layers per pipeline stage, e.g. 16,32 (as VLLM_PP_LAYER_PARTITION)."),
        _option("ep", bool | None, None, "Shard routed experts over all GPUs. [default: on for MoE with --dp > 1]",
                "--ep/--no-ep"),
        _option("mtp", bool, False, "MTP speculative decoding on: MTP layers hold a cache."),
        _option("block_size", int | None, None, "Paging block in tokens. [default: the runtime's]"),
        _option("max_batched_tokens", str | None, None, "vLLM max_num_batched_tokens (sizes sliding layers), SGLang "
                "--chunked-prefill-size (DeepSeek-V4.1's window pool). [default: 8192; SGLang's by GPU memory]"),
        _option("max_running_requests", int | None, None, "SGLang --max-running-requests: the request slots "
                "DeepSeek-V4/V4.1's pools are sized for. [default: 256]"),
        _option("hybrid_allocator", bool, True, "vLLM hybrid KV allocator; off sizes sliding layers as full "
                "attention (as with a KV connector).", "--hybrid-allocator/--no-hybrid-allocator"),
        _option("prefix_caching", bool | None, None, "Prefix caching: vLLM keeps checkpoints of linear/SSM state; off "
                "is SGLang's --disable-radix-cache (V4.1's prefix tails). [default: the runtime's]",
                "--prefix-caching/--no-prefix-caching"),
        _option("dp_attention", bool, False, "SGLang --enable-dp-attention: the --dp ranks split the --tp group "
                "(GPUs = tp x pp; attention tp = tp / dp).", "--dp-attention"),
        _option("compute_capability", str | None, None, "The GPU's CUDA compute capability, e.g. 10.0 (engine "
                "defaults depend on it). [default: fit: the --gpu's]"),
        _option("spec", str | None, None, "Speculative decoding: eagle, eagle3 (with --draft), mtp (the model's MTP "
                "layers, as --mtp), dspark."),
        _option("draft", str | None, None, "The EAGLE draft model (a model name, file or Hub id); its cache joins "
                "the pool by the runtime's rule. Implies --spec eagle3."),
    ]  # fmt: skip


DEPLOYMENT_OPTIONS = ("runtime", "kv_dtype", "v_dtype", "indexer_dtype", "state_dtype", "tp", "pp", "dp", "dcp",
                      "pp_layers", "ep", "mtp", "block_size", "max_batched_tokens", "max_running_requests",
                      "hybrid_allocator", "prefix_caching", "dp_attention", "compute_capability", "spec", "draft")  # fmt: skip


def with_deployment(runtime: str = "ideal") -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add the deployment options to a command's signature; the command receives them as `options` (a dict of the
    values given), to build its Deployment with `make_deployment` (fit resolves tp/dp from --gpus first). The
    signature is built when the app registers the command (`_signed`), so a run builds only its own."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            options = {name: kwargs.pop(name) for name in DEPLOYMENT_OPTIONS}
            command(**kwargs, options=options)

        wrapper._deployment_runtime = runtime  # type: ignore[attr-defined]
        return wrapper

    return decorate


def make_deployment(options: dict[str, Any]) -> Any:
    from .options import deployment

    values = {k: v for k, v in options.items() if v is not None}
    return deployment(**values)


def _check_format(fmt: str, allowed: tuple[str, ...] | None = None) -> str:
    from .render import FORMATS

    choices, value = allowed or FORMATS, fmt.lower()
    if value not in choices:
        raise UsageError(f"--format: expected one of {', '.join(choices)}, got {fmt!r}")
    return value


def _check_units(units: str) -> str:
    if units.lower() not in ("binary", "si"):
        raise UsageError(f"--units: expected binary or si, got {units!r}")
    return units.lower()


def _contexts(values: list[str] | None, default: list[str]) -> list[int]:
    from .units import parse_token_list

    return parse_token_list(values or default, "--context")


def _batch(text: str) -> int:
    return __import__("mla_mem.units", fromlist=["parse_count"]).parse_count(text, "--batch")  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------------------
# Commands


def main_callback(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")] = False,
) -> None:
    """Exact KV-cache memory for MLA, GQA, sliding-window, linear-attention and state-space models.

    A MODEL is a built-in name or alias (mla-mem models), a YAML file, a Hugging Face config.json or its directory (with the checkpoint's safetensors, for exact weights), a Mistral params.json, a .gguf file, or a Hub id: org/name or org/name@revision.



    Example: mla-mem estimate deepseek-v3 --context 128K --batch 16
    """
    _STATE["debug"] = _STATE["debug"] or debug
    if version:
        sys.stdout.write(f"mla-mem {__version__}\n")
        raise typer.Exit(0)


def models(fmt: FormatOpt = "table", units: UnitsOpt = "binary") -> None:
    """List the built-in models: attention kind, layers, cache bytes per token (bf16), fixed bytes, context.

    Example: mla-mem models --format markdown
    """
    from . import builtin_models, plan
    from .cache import size, total_bytes
    from .render import emit, models_view

    fmt, units = _check_format(fmt), _check_units(units)
    specs = builtin_models()
    plans = [plan(spec) for spec in specs]
    at = [[(n, total_bytes(p, n)) for n in (131072, 1048576)] for p in plans]
    emit(fmt, *models_view(specs, [size(p, 1) for p in plans], units, at))


@with_deployment()
def show(
    model: Annotated[str, typer.Argument(help="The model: " + MODEL_HELP)],
    context: Annotated[str, typer.Option("--context", "-c", help="Tokens per sequence (one), e.g. 128K.")] = "128K",
    batch: BatchOpt = "1",
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
    weights: Annotated[bool, typer.Option("--weights", help="Also the weights: the checkpoint's stored bytes by "
                                          "component and dtype beside the count from the dims.")] = False,
    options: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """One model's architecture and its cache by component, with the formula each line uses.

    Example: mla-mem show glm-5 --context 128K
    """
    from . import estimate, load_model
    from .render import emit, show_view

    fmt, units = _check_format(fmt), _check_units(units)
    spec = load_model(model)
    [n] = _one_context(context)
    result = estimate(spec, n, _batch(batch), make_deployment(options or {}))
    table, payload = show_view(spec, result, units)
    if weights:
        from .checkpoint import weights_report
        from .render import weights_view

        report = weights_report(spec)
        payload["weights"] = report.as_dict()
        if fmt != "json":
            emit(fmt, table, payload)
            _stdout("\n")
            table = weights_view(report, units)

    emit(fmt, table, payload)
    _context_notes([result])


def _one_context(text: str) -> list[int]:
    contexts = _contexts([text], [])
    if len(contexts) > 1:
        raise UsageError("--context: this command takes one context; use estimate for several")
    return contexts


@with_deployment()
def estimate(
    model: Annotated[list[str], typer.Argument(help="One or more models: " + MODEL_HELP)],
    context: ContextOpt = None,
    batch: BatchOpt = "1",
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
    offload: OffloadOpt = None,
    offload_chunk: ChunkOpt = 1,
    options: dict[str, Any] | None = None,
) -> None:
    """KV-cache size of one or more models at one or more contexts (one row each); with --offload, what a request
    takes in a host tier and how many such requests the tier keeps.

    Example: mla-mem estimate deepseek-v3 llama-3.1-70b --context 32K,128K --batch 16
    """
    from . import load_model, plan
    from .cache import size
    from .render import emit, estimates_view

    fmt, units = _check_format(fmt), _check_units(units)
    contexts, sequences = _contexts(context, ["128K"]), _batch(batch)
    if offload is not None:  # tiers.py only when asked
        from .tiers import parse_tiers, request_offload
    tiers = parse_tiers(offload) if offload is not None else ()
    chosen = make_deployment(options or {})
    results: list[Any] = []
    offloaded: list[Any] = []
    for name in model:
        lowered = plan(load_model(name), chosen)
        results.extend(size(lowered, n, sequences) for n in contexts)
        offloaded.extend(request_offload(lowered, tiers, n, offload_chunk) for n in contexts if tiers)
    emit(fmt, *estimates_view(results, units, offloaded))
    _context_notes(results)


@with_deployment()
def compare(
    model: Annotated[list[str] | None, typer.Argument(help="Models to compare. [default: deepseek-v3 kimi-k2 glm-5]")] = None,
    as_: Annotated[
        str | None, typer.Option("--as", help="What-if variants: mha, gqa:G, mqa, mla:R, comma-separated. [default: mha,gqa:8]")
    ] = None,
    context: Annotated[list[str] | None, typer.Option("--context", "-c", help="Tokens per sequence, several allowed. "
                       "[default: 4K,32K,128K,1M]")] = None,
    batch: BatchOpt = "1",
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
    options: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """A model against its what-if variants (MHA, GQA-g, MQA, MLA at another rank), at several contexts.

    With no model: DeepSeek-V3, Kimi K2 and GLM-5 against their MHA and GQA-8 variants at 4K, 32K, 128K, 1M.

    Example: mla-mem compare deepseek-v3 --as mha,gqa:8,mqa,mla:256 --context 128K
    """
    from .comparison import compare as run
    from .render import comparison_view, emit

    fmt, units = _check_format(fmt), _check_units(units)
    contexts = _contexts(context, DEFAULT_COMPARE_CONTEXTS)
    variants = (as_ if as_ is not None else DEFAULT_COMPARE_VARIANTS).split(",")
    result = run(model or DEFAULT_COMPARE_MODELS, variants, contexts, _batch(batch), make_deployment(options or {}))
    emit(fmt, *comparison_view(result, units))
    _context_notes(e for row in result.rows for e in row.estimates)


@with_deployment(runtime="vllm")
def fit(
    model: Annotated[str, typer.Argument(help="The model: " + MODEL_HELP)],
    gpu: Annotated[str | None, typer.Option("--gpu", help="GPU from the catalogue (mla-mem gpus), e.g. H200.")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="GPU count; omit to search the smallest layout.")] = None,
    memory: Annotated[str | None, typer.Option("--memory", help="Memory per GPU for a GPU not listed, e.g. 80GiB.")] = None,
    context: Annotated[str | None, typer.Option("--context", "-c", help="Tokens per request (one), e.g. 128K.")] = None,
    batch: BatchOpt = "1",
    weight_dtype: Annotated[str | None, typer.Option("--weight-dtype", help="auto (the checkpoint's), bf16, fp16, fp8, "
                            "int4, mxfp4, mxfp4-experts. [default: auto]")] = None,
    utilization: Annotated[str | None, typer.Option("--gpu-memory-utilization", help="The engine's memory fraction: "
                           "vLLM gpu_memory_utilization, SGLang mem_fraction_static, TensorRT-LLM "
                           "free_gpu_memory_fraction. [default: the engine's (0.9; SGLang's own rule)]")] = None,
    reserve: Annotated[str | None, typer.Option("--reserve", help="Memory around the cache (activations, CUDA graphs, "
                       "non-torch) with a unit, e.g. 3GiB. [default: modelled, see docs/memory.md]")] = None,
    kv_cache_memory: Annotated[str | None, typer.Option("--kv-cache-memory", help="The cache memory per GPU as the "
                               "engine states it (vLLM 'Available KV cache memory', --kv-cache-memory-bytes), with a "
                               "unit: 5.44GiB.")] = None,
    blocks_override: Annotated[int | None, typer.Option("--num-gpu-blocks-override", help="vLLM: this many cache "
                               "blocks instead of what memory gives.")] = None,
    offload: OffloadOpt = None,
    offload_chunk: ChunkOpt = 1,
    shared_prefix: Annotated[str | None, typer.Option("--shared-prefix", help="Tokens every request shares (a "
                             "system prompt, a document), cached once, e.g. 200K; needs --context.")] = None,
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
    options: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Does a model fit on these GPUs: weights, cache left per GPU, token capacity, concurrency, longest context.

    Exits 1 when the weights do not fit or context x batch does not. Without --gpus, finds the smallest layout.

    Example: mla-mem fit deepseek-v3 --gpu H200 --gpus 8 --context 128K --batch 16
    """
    from . import load_model
    from .hardware import find_gpu, fit_model, memory_gpu, parse_fraction, search, unspecified_gpu
    from .render import emit, fit_search_view, fit_view
    from .units import parse_count, parse_size

    fmt, units = _check_format(fmt), _check_units(units)
    if gpu is not None and memory is not None:
        raise UsageError("give --gpu NAME (see mla-mem gpus) or --memory SIZE, not both")
    if gpu is None and memory is None and kv_cache_memory is None:
        raise UsageError("give --gpu NAME (see mla-mem gpus) or --memory SIZE (or the engine's --kv-cache-memory)")
    device = find_gpu(gpu) if gpu is not None else memory_gpu(str(memory), "--memory") if memory else unspecified_gpu()
    spec = load_model(model)
    n = _one_context(context)[0] if context else None
    sequences = _batch(batch)
    values = dict(options or {})
    settings: dict[str, Any] = {
        "weight_dtype": weight_dtype,
        "reserve": parse_size(reserve, "--reserve") if reserve is not None else None,
        "gpu_memory_utilization": parse_fraction(utilization, "--gpu-memory-utilization") if utilization else None,
        "kv_cache_memory": parse_size(kv_cache_memory, "--kv-cache-memory") if kv_cache_memory is not None else None,
        "num_gpu_blocks_override": parse_count(blocks_override, "--num-gpu-blocks-override", maximum=1 << 40)
        if blocks_override is not None else None,
    }  # fmt: skip
    if gpus is None:
        if n is None:
            raise UsageError("the layout search needs --context (and --batch): what must fit?")
        if values.get("tp") is not None or values.get("dp") is not None:
            raise UsageError("--tp/--dp need --gpus; without --gpus mla-mem searches the layout")
        found = search(spec, device, make_deployment(values), context=n, batch=sequences, **settings)
        if not found:
            _error(f"{spec.name} does not fit on up to 128 x {device.name} at {n:,} tokens x {sequences}")
            raise typer.Exit(1)
        emit(fmt, *fit_search_view(found, units))
        return
    count = parse_count(gpus, "--gpus", maximum=4096)
    result = fit_model(spec, device, gpus=count, context=n, batch=sequences, options=values, offload=offload,
                       offload_chunk_blocks=offload_chunk, shared_prefix=shared_prefix, **settings)  # fmt: skip
    emit(fmt, *fit_view(result, units))
    _context_notes([result])
    if not result.fits:
        raise typer.Exit(1)


def gpus(fmt: FormatOpt = "table", units: UnitsOpt = "binary") -> None:
    """The GPU catalogue: memory as the device reports it, with sources.

    Example: mla-mem gpus --format json
    """
    from .hardware import gpu_catalogue
    from .render import emit, gpus_view

    fmt, units = _check_format(fmt), _check_units(units)
    emit(fmt, *gpus_view(gpu_catalogue(), units))


def check(
    budgets: Annotated[list[str], typer.Argument(help="Budget YAML files (docs/budgets.md).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, json, junit, github or markdown.")] = "text",
    units: UnitsOpt = "binary",
    output: Annotated[str | None, typer.Option("--output", "-o", help="Also write the report to this file "
                      "(- for standard output).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:  # fmt: skip
    """Check KV-cache budgets: exit 0 when all pass, 1 when any fails, 2 when a budget cannot be checked.

    Example: mla-mem check examples/budgets.yaml --format github
    """
    from .budgets import check as run
    from .render import VERDICT_FORMATS, verdicts_json

    kind = _check_format(fmt, ("text", "json", "junit", "github", "markdown"))
    units = _check_units(units)
    to_file = output is not None and output != "-"
    if to_file:
        from .files import check_writable

        check_writable(Path(str(output)), force)
    verdicts = run(budgets)
    text = verdicts_json(verdicts) if kind == "json" else VERDICT_FORMATS[kind](verdicts, units)
    _stdout(text)
    if to_file:
        from .files import write_atomic

        write_atomic(str(output), text, force=force)
    errors = [v for v in verdicts if v.status == "ERROR"]
    for verdict in errors:
        _error(verdict.error or verdict.message(units))
    if errors:
        raise typer.Exit(2)
    if not all(v.passed for v in verdicts):
        raise typer.Exit(1)


@with_deployment()
def diff(
    old: Annotated[str, typer.Argument(help="The old model: " + MODEL_HELP + " Or REV:path, a file at a git revision.")],
    new: Annotated[str, typer.Argument(help="The new model, as OLD.")],
    context: ContextOpt = None,
    batch: BatchOpt = "1",
    max_growth: Annotated[str | None, typer.Option("--max-growth", help="Fail (exit 1) when the cache grows more, "
                          "e.g. 5%.")] = None,
    fmt: FormatOpt = "table",
    units: UnitsOpt = "binary",
    options: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Compare two model configs component by component; exit 1 when the cache grows past --max-growth.

    Example: mla-mem diff configs/glm-5.yaml configs/glm-5.2.yaml --context 128K --max-growth 5%
    (a git revision reads an old version: HEAD~1:configs/model.yaml)
    """
    from .comparison import diff as run
    from .render import diff_view, emit
    from .units import parse_percent

    fmt, units = _check_format(fmt), _check_units(units)
    limit = parse_percent(max_growth, "--max-growth") if max_growth is not None else None
    result = run(old, new, _contexts(context, ["128K"]), _batch(batch), make_deployment(options or {}), limit)
    emit(fmt, *diff_view(result, units))
    _context_notes([result])
    if not result.passed:
        raise typer.Exit(1)


def validate(
    files: Annotated[list[str], typer.Argument(help="Model files (YAML, config.json, params.json), budget files or "
                     "the GPU catalogue.")],
) -> None:  # fmt: skip
    """Load files strictly, say what each one is, and report the first error of each (exit 2 if any is invalid).

    Example: mla-mem validate configs/*.yaml examples/budgets.yaml
    """
    from .budgets import validate_file

    bad = 0
    for file in files:
        try:
            sys.stdout.write(f"ok {file}: {validate_file(file)}\n")
        except MlaMemError as exc:
            _error(_message(exc))
            bad += 1
    if bad:
        raise typer.Exit(2)


@with_deployment()
def plot(
    model: Annotated[list[str], typer.Argument(help="One or more models: " + MODEL_HELP)],
    output: Annotated[str, typer.Option("--output", "-o", help="Image file: .png, .svg or .pdf.")],
    as_: Annotated[str | None, typer.Option("--as", help="What-if variants: mha, gqa:G, mqa, mla:R.")] = None,
    min_context: Annotated[str, typer.Option("--min-context", help="Left end of the x axis.")] = "1K",
    max_context: Annotated[str, typer.Option("--max-context", help="Right end of the x axis.")] = "1M",
    batch: BatchOpt = "1",
    gpu: Annotated[str | None, typer.Option("--gpu", help="Draw the memory left for the cache on this GPU.")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="GPU count with --gpu. [default: tp x pp x dp]")] = None,
    memory: Annotated[str | None, typer.Option("--memory", help="Memory per GPU for a GPU not listed, e.g. 80GiB "
                      "(draws what the weights leave for the cache).")] = None,
    cache_memory: Annotated[str | None, typer.Option("--cache-memory", help="Draw a line at this much cache memory "
                            "per GPU, e.g. 40GiB.")] = None,
    breakdown: Annotated[bool, typer.Option("--breakdown", help="Stacked components of one model.")] = False,
    log_y: Annotated[bool, typer.Option("--log-y", help="Logarithmic memory axis.")] = False,
    offload: Annotated[str | None, typer.Option("--offload", help="With --gpu: + a host tier, e.g. cpu:1TiB.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    units: UnitsOpt = "binary",
    options: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Draw KV cache against context length (one line per model and what-if) as PNG, SVG or PDF.

    Example: mla-mem plot deepseek-v3 --as mha,gqa:8 --gpu H200 --gpus 8 --tp 8 -o v3.png
    """
    from .files import check_writable, write_atomic
    from .plots import build, output_format, render
    from .units import parse_tokens
    from .variants import parse_variants

    units = _check_units(units)
    fmt = output_format(output)
    check_writable(Path(output), force)
    data = build(
        model, variants=parse_variants(as_) if as_ else None, min_context=parse_tokens(min_context, "--min-context"),
        max_context=parse_tokens(max_context, "--max-context"), batch=_batch(batch),
        deployment=make_deployment(options or {}), gpu=gpu, gpus=gpus, memory=memory, cache_memory=cache_memory,
        breakdown=breakdown, log_y=log_y, units=units, offload=offload,
    )  # fmt: skip
    write_atomic(output, lambda: render(data, fmt), force=force)
    _note(f"wrote {output}")


def gallery(
    directory: Annotated[str, typer.Argument(help="Where to write the gallery (the repository's plots/).")] = "plots",
) -> None:
    """Regenerate the committed plot gallery (PNG files and their data in gallery.json).

    Example: mla-mem gallery plots
    """
    from .plots import write_gallery

    for written in write_gallery(Path(directory)):
        _note(f"wrote {written}")


def import_(
    config: Annotated[str, typer.Argument(help="A Hugging Face config.json (or its directory), a Mistral params.json, "
                                               "or a Hub id (org/name[@revision]).")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write the YAML here (- or omitted: standard "
                      "output).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Model name. [default: from the path]")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:  # fmt: skip
    """Turn a model's config.json / params.json into a mla-mem YAML, with comments on what was inferred.

    Example: mla-mem import tests/data/hf/deepseek-v3.config.json -o deepseek-v3.yaml
    """
    from .files import check_writable, write_atomic
    from .models import import_model

    to_file = output is not None and output != "-"
    if to_file:
        check_writable(Path(str(output)), force)
    text, notes, file = import_model(config, name)
    for note in notes:
        _note(f"{file}: {note}")
    if not to_file:
        _stdout(text)
    else:
        write_atomic(str(output), text, force=force)
        _note(f"wrote {output}")


COMMANDS: dict[str, Callable[..., None]] = {
    "models": models, "show": show, "estimate": estimate, "compare": compare, "fit": fit, "gpus": gpus,
    "check": check, "diff": diff, "validate": validate, "plot": plot, "gallery": gallery, "import": import_,
}  # fmt: skip
# The commands that print bytes, and so take the deployment options.
BYTE_COMMANDS = ("show", "estimate", "compare", "fit", "diff", "plot")


# ---------------------------------------------------------------------------------------------------------
# The app, errors, exit codes


def _message(exc: MlaMemError) -> str:
    """The one line a user reads: deployment options named as the flags they typed."""
    from .options import OptionError

    if isinstance(exc, OptionError):
        return f"--{exc.field.replace('_', '-')}: {exc.detail}"
    return str(exc)


def _friendly(command: Callable[..., None]) -> Callable[..., None]:
    """Turn mla-mem's own errors into one line on stderr and exit 2, in every way the app is run."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except MlaMemError as exc:
            if _STATE["debug"]:
                raise
            _error(_message(exc))
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def build_app(only: str | None = None, helping: bool = True) -> typer.Typer:
    """The Typer app with every command, or only `only` (what a run needs); `helping` when it prints help."""
    if helping:
        __import__("mla_mem.render", fromlist=["fold_help"]).fold_help()
    app = typer.Typer(
        name="mla-mem", pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]},
        help=inspect.getdoc(main_callback), add_completion=False,
    )  # fmt: skip
    app.callback(invoke_without_command=True)(main_callback)
    for name, command in COMMANDS.items():
        if only is None or name == only:
            app.command(name)(_friendly(_signed(command)))
    return app


def _signed(command: Callable[..., None]) -> Callable[..., None]:
    """The command, annotations evaluated once (Typer would twice), deployment options added (with_deployment)."""
    if hasattr(command, "__signature__"):
        return command
    runtime = getattr(command, "_deployment_runtime", None)
    signature = inspect.signature(getattr(command, "__wrapped__", command), eval_str=True)
    if runtime is not None:
        kept = [p for p in signature.parameters.values() if p.name != "options"]
        signature = signature.replace(parameters=kept + deployment_parameters(runtime))
    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}  # returns are None
    return command


def __getattr__(name: str) -> Any:  # noqa: ANN401 - `app`: the whole app, for tests and documentation tools
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _note(message: str) -> None:
    _write_stderr(f"mla-mem: note: {message}\n")


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    _note(str(message))


def _error(message: str) -> None:
    _write_stderr(f"mla-mem: error: {message}\n")


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass  # no stderr to write to: the exit code still says what happened


def _stdout(text: str) -> None:
    __import__("mla_mem.render", fromlist=["write"]).write(text)


def _context_notes(results: Any) -> None:
    """Notes on stderr for contexts beyond a model's maximum, one line per model (each result's JSON has its own)."""
    from .render import summarise_notes

    notes = [note for result in results for note in getattr(result, "notes", ())]
    for note in summarise_notes([n for n in notes if "maximum context" in n]):
        _note(note)


def _invoked(args: list[str]) -> str | None:
    """The command a run invokes, or None for the top-level help."""
    for arg in args:
        if arg == "--":
            return None
        if arg.startswith("-"):
            continue
        return arg if arg in COMMANDS else None
    return None


def _run(args: list[str]) -> int:
    from .options import OptionError

    try:
        app = build_app(only := _invoked(args), only is None or "--help" in args or "-h" in args)
        result = app(args=args, prog_name="mla-mem", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except OptionError as exc:
        if _STATE["debug"]:
            raise
        _error(_message(exc))
        return 2
    except (MlaMemError, ConfigError) as exc:
        if _STATE["debug"]:
            raise
        _error(_message(exc))
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        _error("interrupted")
        return 130
    except typer.TyperException as exc:  # click's usage errors: unknown option, missing argument, bad value
        if _STATE["debug"]:
            raise
        _error(exc.format_message().replace("\n", " "))
        return 2


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and exit with) 0 ok, 1 check failed, 2 bad input, 130 interrupted."""
    import warnings

    closed = sys.stdout is None  # started with standard output closed (>&-)
    if sys.stderr is None or closed:
        from .files import devnull as null_stream

        if sys.stderr is None:
            sys.stderr = null_stream()
        if closed:
            sys.stdout = null_stream()
    for stream in (sys.stdout, sys.stderr):  # an encoding that cannot say a name prints '?', never a traceback
        try:
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            pass
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        head, tail = args[: args.index("--")], args[args.index("--") :]
    else:
        head, tail = args, []
    _STATE["debug"] = "--debug" in head
    args = [a for a in head if a != "--debug"] + tail
    if args in (["--version"], ["-V"]):
        _stdout(f"mla-mem {__version__}\n")
        return _exit(0, argv)
    if not args:
        args = ["--help"]
    warnings.showwarning = _show_warning
    warnings.filterwarnings("always", category=UserWarning)  # importer assumptions: shown as notes
    try:
        code = _run(args)
        if code == 130:
            _error("interrupted")
    except KeyboardInterrupt:
        _error("interrupted")
        code = 130
    except BrokenPipeError:
        # the reader went away (mla-mem models | head -1): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except (OSError, ValueError) as exc:
        # standard output closed or full (mla-mem models > /dev/full, >&-): the environment's problem, not a bug
        if _STATE["debug"] or not _output_failed(exc):
            raise
        _error(f"cannot write the output ({getattr(exc, 'strerror', None) or exc})")
        _quiet_stdout()
        code = 2
    except Exception as exc:  # a bug in mla-mem, not bad input: one line, and --debug for the rest
        if _STATE["debug"]:
            raise
        _error(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it")
        code = 70
    if closed and code == 0 and _invoked(args) != "check":
        # nothing could be written; `check` still answers with its exit code (its verdicts are the result)
        _error("standard output is closed; nothing was written")
        code = 2
    return _exit(code, argv)


def _output_failed(exc: Exception) -> bool:
    """Whether `exc` is a failure to write standard output (closed, full, unwritable)."""
    if isinstance(exc, ValueError):
        return "closed file" in str(exc)
    import errno

    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EBADF, errno.EIO, errno.EPIPE, errno.EROFS, errno.EDQUOT)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    from .files import devnull as null_stream

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        sys.stdout = null_stream()
    except OSError:
        pass


def _exit(code: int, argv: list[str] | None) -> int:
    if argv is None:
        sys.exit(code)
    return code
