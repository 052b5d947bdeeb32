"""Memory-vs-context figures (matplotlib, imported only here, with the non-interactive Agg backend).

Every curve comes from the exact core (`cache.curve`, numpy over many contexts, equal to `size` at each point),
so a plot shows the same bytes the tables print. Output is deterministic: no timestamps or software metadata, a
fixed SVG hash salt, fixed figure size and DPI, and the same point grid for the same command.
"""

from __future__ import annotations

import io
import math
from dataclasses import field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import Plan, curve, size
from .errors import UsageError
from .options import Deployment
from .records import record
from .spec import ModelSpec
from .units import format_bytes, format_number, format_tokens, json_number

if TYPE_CHECKING:
    from .hardware import GPU

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


@record(frozen=False)
class Series:
    """One line of a plot: a model's total cache (and components) over the contexts."""

    label: str
    contexts: list[int]
    total_bytes: list[int]
    components: dict[str, list[int]] = field(default_factory=dict)
    bytes_per_token: Fraction = Fraction(0)

    memory: int | None = None  # the memory line this series is held against (per model: its weights differ)
    crossing: int | None = None  # the longest context that fits under that line
    # --offload: the GPU line plus the host tier's distinct content in this model's bytes per GPU, and its crossing
    offload: int | None = None
    offload_crossing: int | None = None
    offload_label: str = ""


@record(frozen=False)
class PlotData:
    """Everything a plot draws: title, units, series and what is stacked or logarithmic."""

    title: str
    units: str
    series: list[Series]
    memory_label: str = ""
    breakdown: bool = False
    log_y: bool = False

    @property
    def memory_lines(self) -> list[int]:
        """The distinct memory lines, in series order."""
        return list(dict.fromkeys(s.memory for s in self.series if s.memory is not None))

    @property
    def offload_lines(self) -> list[int]:
        return list(dict.fromkeys(s.offload for s in self.series if s.offload is not None))

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "units": self.units,
            "memory_lines_bytes": self.memory_lines,
            "series": [
                {
                    "label": s.label,
                    "bytes_per_token": json_number(s.bytes_per_token),
                    "contexts": s.contexts,
                    "total_bytes": s.total_bytes,
                    "components": s.components,
                    "memory_line_bytes": s.memory,
                    "crossing_context": s.crossing,
                    **(
                        {
                            "offload_line_bytes": s.offload,
                            "offload_crossing_context": s.offload_crossing,
                            "offload": s.offload_label,
                        }
                        if s.offload is not None
                        else {}
                    ),
                }
                for s in self.series
            ],  # fmt: skip
        }


def context_grid(low: int, high: int, points: int = 160) -> list[int]:
    """A geometric grid from low to high with every power-of-two tick in range included exactly."""
    if low < 1 or high <= low:
        raise UsageError(f"--min-context {low:,} must be at least 1 and below --max-context {high:,}")
    ratio = (high / low) ** (1 / (points - 1))
    grid = {low, high}
    value = float(low)
    for _ in range(points):
        grid.add(min(high, max(low, round(value))))
        value *= ratio
    grid.update(2**k for k in range(0, 41) if low <= 2**k <= high)
    return sorted(grid)


def series_for(
    plan: Plan, label: str, contexts: list[int], batch: int, memory: int | None, breakdown: bool = False
) -> Series:
    from .hardware import longest_context

    data = curve(plan, contexts, batch)
    total = [int(v) for v in data["total"].tolist()]
    components = {name: [int(v) for v in values.tolist()] for name, values in data["components"].items()}
    first = size(plan, contexts[-1], batch)
    crossing = None
    if memory is not None:
        crossing = longest_context(plan, batch, memory)
    return Series(
        label=label,
        contexts=contexts,
        total_bytes=total,
        components=components if breakdown else {},
        bytes_per_token=first.bytes_per_token,
        memory=memory,
        crossing=crossing,
    )


def _tick_label(value: int) -> str:
    """1024 -> '1K', 2**20 -> '1M', 2**30 -> '1G'; other values as format_tokens prints them ('1k', '1,500')."""
    if value >= 2**30 and value % 2**30 == 0:
        return f"{value // 2**30}G"
    return format_tokens(value)


def x_ticks(lowest: int, highest: int, most: int = 11) -> list[int]:
    """Context ticks for a log2 axis from `lowest` to `highest`: the powers of two in range (thinned to at most
    `most`); when fewer than two fall in range, the ends and their geometric middle instead, so any range keeps
    labels that do not crowd each other."""
    ticks = [2**k for k in range(0, 41) if lowest <= 2**k <= highest]
    if len(ticks) > most:
        ticks = ticks[:: -(-len(ticks) // most)]
    if len(ticks) < 2:
        middle = round((lowest * highest) ** 0.5)
        ticks = sorted({lowest, *([middle] if lowest < middle < highest else []), highest})

    return ticks


# Ten colours (matplotlib's tab10, colour-blind friendly order) times four line styles: 40 series stay distinct.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")  # fmt: skip
LINE_STYLES = ("-", "--", "-.", ":")


def style(index: int) -> dict[str, Any]:
    """Colour and line style of the index-th line: colours first, then the next dash pattern."""
    return {"color": PALETTE[index % len(PALETTE)], "linestyle": LINE_STYLES[(index // len(PALETTE)) % 4]}


def equal_groups(series: list[Series]) -> list[list[Series]]:
    """Series with the same curve (every point equal) grouped in order of first appearance: drawn as one line
    labelled with every name, since one would hide the others."""
    groups: dict[tuple[tuple[int, ...], tuple[int, ...]], list[Series]] = {}
    for s in series:
        groups.setdefault((tuple(s.contexts), tuple(s.total_bytes)), []).append(s)
    return list(groups.values())


def y_unit(largest: int, units: str) -> tuple[int, str]:
    """(scale, unit) of the memory axis: the largest binary (or SI) unit that keeps the top value at least 1."""
    steps = [(10**9, "GB"), (10**6, "MB"), (10**3, "kB")] if units == "si" else [(2**30, "GiB"), (2**20, "MiB"),
                                                                                (2**10, "KiB")]  # fmt: skip
    for scale, unit in steps:
        if largest >= scale:
            return scale, unit
    return 1, "B"


COMPONENT_LABELS = {
    "mla_latent": "MLA latent", "full_kv": "full K/V", "sliding_kv": "sliding K/V",
    "sliding_mla_latent": "sliding MLA latent", "indexer": "indexer keys", "linear_state": "linear state",
    "mtp": "MTP layers", "mtp_indexer": "MTP indexer", "window": "window", "compressed_csa": "csa entries",
    "compressed_hca": "hca entries", "compressor_state_r4": "compressor state (r4)",
    "compressor_state_r128": "compressor state (r128)",
}  # fmt: skip


def figure(data: PlotData) -> Any:
    """The matplotlib Figure for `data`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lowest = min(s.contexts[0] for s in data.series)
    highest = max(s.contexts[-1] for s in data.series)
    tallest = max([max(s.total_bytes) for s in data.series] + data.memory_lines + data.offload_lines)
    scale, unit = y_unit(tallest, data.units)
    fig = Figure(figsize=(9, 5.4), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    if data.breakdown:
        s = data.series[0]
        names = list(s.components)
        stacks = [[v / scale for v in s.components[n]] for n in names]
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
        ax.stackplot(s.contexts, stacks, labels=[COMPONENT_LABELS.get(n, n) for n in names], colors=colours,
                     alpha=0.85)  # fmt: skip
        ax.plot(
            s.contexts,
            [v / scale for v in s.total_bytes],
            color="black",
            linewidth=1.2,
            label=f"total ({format_number(s.bytes_per_token)} B/token)",
        )
    else:
        for index, group in enumerate(equal_groups(data.series)):
            first = group[0]
            joined = " = ".join(s.label for s in group)
            label = f"{joined} ({format_number(first.bytes_per_token)} B/token)"
            if len(group) > 1:
                label += ", equal"
            ax.plot(first.contexts, [v / scale for v in first.total_bytes], linewidth=2, label=label, **style(index))
    _memory_lines(ax, data, scale, lowest, highest)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(x_ticks(lowest, highest)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _tick_label(int(round(v)))))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(lowest, highest)
    if data.log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlabel("context length (tokens per sequence; K = 1,024)")
    ax.set_ylabel(f"KV cache ({unit})")
    import textwrap

    ax.set_title(textwrap.fill(data.title, 95), fontsize=11)  # a long title wraps instead of running off the figure
    ax.grid(True, which="major", alpha=0.3)
    entries = len(ax.get_legend_handles_labels()[1])
    if entries > 8:  # a long legend goes beside the axes, in columns, instead of over the lines
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=1 + (entries > 22),
                  borderaxespad=0)  # fmt: skip
    else:
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def _memory_lines(ax: Any, data: PlotData, scale: int, lowest: int, highest: int) -> None:  # noqa: ANN401
    """The GPU's cache lines (crimson), the host tiers above them (orange), and where each curve crosses them."""
    lines = data.memory_lines
    for index, line in enumerate(lines):
        label = data.memory_label + f": {format_bytes(line, data.units)}"
        if len(lines) > 1:
            owners = [s.label for s in data.series if s.memory == line]
            label += f" ({', '.join(owners)})"
        ax.axhline(line / scale, color="crimson", linestyle=("--", ":", "-.")[index % 3], linewidth=1.2, label=label)
    for index, line in enumerate(data.offload_lines):
        holders = [s for s in data.series if s.offload == line]
        label = f"+ {holders[0].offload_label}: {format_bytes(line, data.units)}"
        if len(data.offload_lines) > 1:
            label += f" ({', '.join(s.label for s in holders)})"
        ax.axhline(line / scale, color="darkorange", linestyle=("--", ":", "-.")[index % 3], linewidth=1.2, label=label)
    span = math.log2(highest / lowest) if highest > lowest else 1.0
    marks = [(s.memory, s.crossing, "crimson") for s in data.series]
    marks += [(s.offload, s.offload_crossing, "darkorange") for s in data.series]
    for memory, crossing, colour in marks:
        if memory is not None and crossing is not None and lowest <= crossing < highest:
            y = memory / scale
            # a label in the right sixth of the axis is drawn to the left of its point, so it is never clipped
            right = math.log2(crossing / lowest) > span * 5 / 6
            ax.plot([crossing], [y], marker="o", color=colour)
            ax.annotate(
                f"{crossing:,}", (crossing, y), textcoords="offset points", xytext=(-4 if right else 4, 6),
                fontsize=8, color=colour, ha="right" if right else "left",
            )  # fmt: skip


def render(data: PlotData, fmt: str) -> bytes:
    """The figure as PNG, SVG or PDF bytes, deterministically."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "mla-mem"
    matplotlib.rcParams["pdf.compression"] = 6
    fig = figure(data)
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {
        "png": {"Software": None},
        "svg": {"Date": None, "Creator": None},
        "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    }[fmt]
    fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def output_format(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"{path}: unknown image type {suffix or '(none)'!r}; use .png, .svg or .pdf")
    return FORMATS[suffix]


def memory_for(
    model: ModelSpec, deployment: Deployment, gpu: str | GPU, gpus: int | None, batch: int
) -> tuple[int, str]:
    """(bytes left for the cache per GPU, label) for `model` on `gpu` under `deployment` (fit's arithmetic)."""
    from .hardware import GPU, find_gpu, fit

    if gpus is not None and gpus != deployment.gpus:
        raise UsageError(f"--gpus {gpus} must equal --tp x --pp x --dp = {deployment.gpus}")
    device = gpu if isinstance(gpu, GPU) else find_gpu(gpu)
    result = fit(model, device, deployment, batch=batch)
    if not result.weights_fit:
        raise UsageError(f"{model.name}: the weights alone do not fit on {deployment.gpus} x {device.name}")
    return result.available_bytes, f"left for the cache on {deployment.gpus} x {device.name}"


def _offload_tiers(offload: str | None, drawable: bool) -> tuple[Any, ...]:
    if offload is None:
        return ()
    from .tiers import parse_tiers

    if not drawable:
        raise UsageError("--offload draws a host tier above the GPU's cache line: give --gpu (or --memory) and no "
                         "--breakdown")  # fmt: skip
    return parse_tiers(offload)


def offload_for(
    model: ModelSpec, plan: Plan, deployment: Deployment, gpu: str | GPU, batch: int, memory: int,
    tiers: tuple[Any, ...],
) -> tuple[int, int, str]:  # fmt: skip
    """(line, crossing, label) of `--offload`: the GPU's cache line plus the host tiers' distinct tokens in this
    model's bytes per GPU (fit's tier rules: copies per tp rank, whole chunks), and the longest context kept across
    both. Only for caches that are tokens x bytes per token (no windows or states)."""
    from .hardware import Beyond, fit, longest_context
    from .tiers import distinct_across, per_token_only

    if not per_token_only(plan):
        raise UsageError(f"--offload: {model.name}'s cache has windows or states; a host tier is drawn only for "
                         "caches of whole tokens")  # fmt: skip
    from .hardware import GPU, find_gpu

    device = gpu if isinstance(gpu, GPU) else find_gpu(gpu)
    result = fit(model, device, deployment, batch=batch, plan=plan, beyond=Beyond(offload=tiers))
    distinct = distinct_across(result.tiers)
    per_token = size(plan, 1, 1).bytes_per_token
    line = memory + int(distinct * per_token)
    first = result.tiers[0]
    copies = "1 copy" if first["copies"] == 1 else f"{first['copies']} copies"
    label = f"{first['engine']} ({distinct:,} distinct tokens, {copies}), per GPU"
    return line, longest_context(plan, batch, line), label


def build(
    models: list[str] | list[ModelSpec | str],
    *,
    variants: list[str] | None = None,
    min_context: int = 1024,
    max_context: int = 2**20,
    batch: int = 1,
    deployment: Deployment | None = None,
    gpu: str | GPU | None = None,
    gpus: int | None = None,
    memory: int | str | None = None,
    cache_memory: int | str | None = None,
    breakdown: bool = False,
    log_y: bool = False,
    units: str = "binary",
    points: int = 160,
    offload: str | None = None,
) -> PlotData:
    """The data of one memory-vs-context plot: one series per model and per what-if variant. `gpu` (or `memory`,
    the memory of a GPU not in the catalogue, as in `fit`) draws, for each model, what its weights leave for the
    cache on that GPU; `cache_memory` draws one line of cache memory per GPU. Sizes are bytes or text ("80GiB")."""
    from .hardware import memory_gpu
    from .models import load_model
    from .runtimes import lower
    from .units import parse_size
    from .variants import make_variant, variant_label

    deployment = deployment or Deployment()
    if isinstance(models, str) or not isinstance(models, list | tuple):
        models = [models]  # one model
    if breakdown and (len(models) != 1 or variants):
        raise UsageError("--breakdown draws one model's components: give exactly one model and no --as")
    if sum(x is not None for x in (gpu, memory, cache_memory)) > 1:
        raise UsageError("give one of --gpu, --memory or --cache-memory")
    if gpus is not None and gpu is None and memory is None:
        raise UsageError("--gpus needs --gpu or --memory")
    if memory is not None:
        gpu = memory_gpu(memory, "--memory")
    if gpus is not None and deployment.gpus == 1 and gpus > 1:
        deployment = deployment.with_(tp=gpus)  # no layout given: tp takes every GPU (fit searches; a plot cannot)
    line_bytes = parse_size(cache_memory, "--cache-memory") if cache_memory is not None else None
    tiers = _offload_tiers(offload, gpu is not None and not breakdown)
    contexts = context_grid(min_context, max_context, points)
    series = []
    first_plan = None
    labels: list[str] = []
    memory_label_text = "cache memory per GPU" if line_bytes is not None else ""
    for name in models:
        spec = load_model(name)
        line = line_bytes
        if gpu is not None:
            line, memory_label_text = memory_for(spec, deployment, gpu, gpus, batch)
        entries = [(spec, spec.name)] + [
            (make_variant(spec, v), f"{spec.name} as {variant_label(v)}") for v in (variants or [])
        ]
        for model, label in entries:
            plan = lower(model, deployment)
            first_plan = first_plan or plan
            labels.append(plan.kv_dtype)
            series.append(series_for(plan, label, contexts, batch, line, breakdown))
            if tiers and line is not None and gpu is not None:
                series[-1].offload, series[-1].offload_crossing, series[-1].offload_label = offload_for(
                    model, plan, deployment, gpu, batch, line, tiers
                )
    assert first_plan is not None
    dtype = labels[0] if len(set(labels)) == 1 else (deployment.kv_dtype or "per model")
    title = f"KV cache per GPU vs context, batch {batch}, cache {dtype}, runtime {first_plan.runtime}"
    if first_plan.gpus > 1:
        title += f" ({first_plan.layout})"
    if breakdown:
        title = f"{series[0].label}: " + title
    return PlotData(
        title=title, units=units, series=series, memory_label=memory_label_text, breakdown=breakdown, log_y=log_y,
    )  # fmt: skip


def plot(models: list[str], **kwargs: Any) -> tuple[Any, PlotData]:
    """Python API: (matplotlib Figure, plotted data) for a memory-vs-context plot. Deployment options (runtime,
    kv_dtype, tp, ...) may be given as keywords, as everywhere else in the API."""
    from .options import FIELDS, resolve

    options = {key: kwargs.pop(key) for key in list(kwargs) if key in FIELDS}
    if options:
        kwargs["deployment"] = resolve(kwargs.get("deployment"), options)
    data = build(models, **kwargs)
    return figure(data), data


# The committed gallery (plots/), regenerated by `mla-mem gallery plots/`.
GALLERY: list[dict[str, Any]] = [
    {"file": "seed-models.png", "models": ["deepseek-v3", "kimi-k2", "glm-5"],
     "caption": "DeepSeek-V3, Kimi K2 and GLM-5 as built (ideal runtime, bf16): under 14 GiB per sequence at 128K."},
    {"file": "deepseek-v3-whatifs.png", "models": ["deepseek-v3"], "variants": ["mha", "gqa:8", "mqa"], "log_y": True,
     "caption": "DeepSeek-V3's MLA against the same model with MHA, GQA-8 and MQA on its real dims (log scale)."},
    {"file": "hybrids.png", "models": ["qwen3-next-80b-a3b", "kimi-linear-48b-a3b", "gpt-oss-120b", "gemma-3-27b",
                                       "llama-3.1-70b"],
     "log_y": True,
     "caption": "Hybrid and windowed models against dense Llama-3.1-70B (log scale): linear state and full windows "
                "are the flat parts at short contexts, and only the full-attention layers keep growing."},
    {"file": "glm-5-breakdown.png", "models": ["glm-5"], "breakdown": True,
     "caption": "GLM-5 by component: the MLA latent and the DSA indexer keys (ideal runtime, bf16)."},
    {"file": "deepseek-v4.png", "models": ["deepseek-v3", "deepseek-v3.2", "deepseek-v4-flash", "deepseek-v4-pro"],
     "runtime": "vllm", "kv_dtype": "fp8", "log_y": True,
     "caption": "DeepSeek-V3, V3.2, V4-Flash and V4-Pro on vLLM with fp8 caches to 1M tokens (log scale): V4's window "
                "and compressor state dominate short requests, its compressed entries long ones."},
    {"file": "deepseek-v3-on-h200.png", "models": ["deepseek-v3"], "variants": ["gqa:8"], "runtime": "vllm",
     "batch": 16, "tp": 8, "gpu": "H200",
     "caption": "DeepSeek-V3 and its GQA-8 what-if, 16 requests on 8 x H200 with tp 8: every GPU holds the whole "
                "latent, while GQA's 8 heads split to one per GPU, so the what-if fits longer contexts here."},
]  # fmt: skip


def write_gallery(folder: Path) -> list[Path]:
    """Regenerate the committed gallery in `folder`: every picture of GALLERY and gallery.json with its data."""
    import json

    import matplotlib

    from .files import write_atomic
    from .options import deployment

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: exists and is not a directory")
    if not folder.is_dir():
        if not folder.parent.is_dir():
            raise UsageError(f"{folder}: its directory {folder.parent} does not exist")
        folder.mkdir()
    written = []
    index = []
    for item in GALLERY:
        chosen = deployment(runtime=item.get("runtime", "ideal"), kv_dtype=item.get("kv_dtype"), tp=item.get("tp", 1))
        data = build(
            item["models"], variants=item.get("variants"), batch=item.get("batch", 1), deployment=chosen,
            gpu=item.get("gpu"), breakdown=item.get("breakdown", False), log_y=item.get("log_y", False),
        )  # fmt: skip
        written.append(write_atomic(folder / item["file"], render(data, "png"), force=True))
        index.append({"file": item["file"], "caption": item["caption"], "data": data.as_dict()})
    payload = {"matplotlib": matplotlib.__version__, "plots": index}
    written.append(write_atomic(folder / "gallery.json", json.dumps(payload, indent=1) + "\n", force=True))
    return written
