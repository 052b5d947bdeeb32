"""The memory-around-the-cache model (mla_mem/overhead.py) against the public log lines of
tests/engine_logs/memory.yaml: one Markdown row per line, with the model's terms and its error.

    uv run python scripts/memory_report.py        # print the table (docs/memory.md embeds it)
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GIB = 2**30


def rows() -> list[str]:
    import mla_mem
    from mla_mem.hardware import find_gpu
    from mla_mem.options import deployment
    from mla_mem.overhead import modelled
    from mla_mem.runtimes import lower

    data = yaml.safe_load((ROOT / "tests" / "engine_logs" / "memory.yaml").read_text())["observations"]
    out = [
        "| log line | engine | model, tp, tokens profiled | printed (GiB) | modelled: activation + non-torch = total (GiB) | error |",
        "|---|---|---|---:|---:|---:|",
    ]
    for item in data:
        if item.get("usable") is False:
            out.append(f"| {item['entry']} | | not usable: {item['why']} | | | |")
            continue
        gpu = find_gpu(item["gpu"])
        plan = lower(mla_mem.load_model(item["model"]),
                     deployment(runtime="vllm@0.11", tp=item["tp"], max_batched_tokens=item["max_batched_tokens"]))  # fmt: skip
        around = modelled(plan, gpu.budget_bytes, gpu.name)
        assert around is not None
        terms = item.get("terms")
        observed = sum(terms.values()) if terms else item["observed"]
        printed = " + ".join(f"{v:.2f}" for v in terms.values()) + f" = {observed:.2f}" if terms else f"{observed:.2f}"
        total = (around.activation + around.non_torch) / GIB
        error = total - observed
        out.append(
            f"| {item['entry']} | {item['engine']} | {item['model']}, tp {item['tp']}, {item['max_batched_tokens']:,} "
            f"| {printed} | {around.activation / GIB:.2f} + {around.non_torch / GIB:.2f} = {total:.2f} "
            f"| {error:+.2f} ({error / observed:+.0%}) |"
        )
    return out


def render() -> str:
    return "\n".join(rows()) + "\n"


if __name__ == "__main__":
    print(render(), end="")
