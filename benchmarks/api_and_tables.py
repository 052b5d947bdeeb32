"""The API's per-call cost, `curve` at a million points, and a 24-model x 1,000-context table against its CSV.

    uv run python benchmarks/api_and_tables.py [--runs 5]

Targets (issue 19): estimate(name) within 1.5x of estimate(spec); curve on 10^6 points under 0.1 s and 40 MiB of
its own; the table under 2x the CSV's time and under 100 MiB.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _timing import compile_environment, pairs  # noqa: E402


def per_call(function, calls: int) -> float:  # noqa: ANN001
    function()
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def api(runs: int) -> None:
    import numpy as np

    import mla_mem

    spec = mla_mem.load_model("deepseek-v3")
    by_name = [per_call(lambda: mla_mem.estimate("deepseek-v3", 131072), 500) for _ in range(runs)]
    by_spec = [per_call(lambda: mla_mem.estimate(spec, 131072), 500) for _ in range(runs)]
    ratios = [a / b for a, b in zip(by_name, by_spec, strict=True)]
    print(f"estimate(name) {statistics.median(by_name) * 1e6:6.0f} us, estimate(spec) "
          f"{statistics.median(by_spec) * 1e6:6.0f} us, ratio {min(ratios):.2f} / {statistics.median(ratios):.2f} / "
          f"{max(ratios):.2f} (target <= 1.5)")  # fmt: skip
    points = np.arange(1, 1_000_001)
    mla_mem.curve(spec, points[:10])
    for name in ("deepseek-v3", "gpt-oss-120b", "qwen3-next-80b-a3b"):
        seconds, peaks = [], []
        for _ in range(runs):
            tracemalloc.start()
            start = time.perf_counter()
            mla_mem.curve(name, points, runtime="vllm")
            seconds.append(time.perf_counter() - start)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
        print(f"curve {name} (vllm), 10^6 points: {min(seconds):.3f} / {statistics.median(seconds):.3f} / "
              f"{max(seconds):.3f} s, peak {max(peaks):.1f} MiB (targets 0.1 s, 40 MiB)")  # fmt: skip


def tables(runs: int) -> None:
    import mla_mem

    models = mla_mem.builtin_names()[:24]
    contexts = ",".join(str(1024 * (i + 1)) for i in range(1000))
    script = str(Path(sys.executable).parent / "mla-mem")
    base = [script, "estimate", *models, "-c", contexts]
    result = pairs([*base, "--format", "table"], [*base, "--format", "csv"], runs)
    print(result.line(f"{len(models)} x 1,000 table vs CSV"))
    # each format's peak measured in a process of its own (a parent's RUSAGE_CHILDREN is the largest child so far)
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
             "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # fmt: skip
    for fmt in ("table", "csv"):
        peak = subprocess.run([sys.executable, "-c", probe, *base, "--format", fmt], check=True, capture_output=True,
                              text=True).stdout  # fmt: skip
        print(f"{fmt} peak resident memory: {int(peak) / 1024:.0f} MiB (target for the table 100 MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compile_environment()
    api(args.runs)
    tables(args.runs)


if __name__ == "__main__":
    main()
