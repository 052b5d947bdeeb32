"""Print the cross-check table: bytes transformers really holds in its cache against mla-mem's estimate.

Run inside a cross-check environment (torch + a pinned transformers + mla-mem), e.g. the ones .ci/run builds:

    .crosscheck/tf-5.24.0/bin/python scripts/crosscheck_report.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import transformers  # noqa: E402

import mla_mem  # noqa: E402
from tests.crosscheck.measure import measured_bytes  # noqa: E402
from tests.crosscheck.models import CASES, shrunk_config  # noqa: E402
from tests.crosscheck.test_transformers_cache import RELEASE, VERSION, _as_run, _spec, _state_dtype  # noqa: E402


def main() -> int:
    print("| architecture | runtime | S | batch | measured bytes | estimated bytes | equal |")
    print("|---|---|---:|---:|---:|---:|---|")
    mismatches = 0
    for case in CASES:
        runtime = f"transformers {transformers.__version__}"
        if RELEASE < case.first:
            print(f"| {case.name} | {runtime} | | | | | no model class before {case.first[0]}.{case.first[1]} |")
            continue
        if case.refused_before and RELEASE < case.refused_before:
            print(f"| {case.name} | {runtime} | | | | | refused by mla-mem before this release's layout |")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            spec = _as_run(case, _spec(case, Path(tmp)))
        config = shrunk_config(case)
        for prompt in case.prompts:
            for batch in (1, 2):
                measured, _ = measured_bytes(config, prompt, batch)
                estimate = mla_mem.estimate(
                    spec, prompt + 1, batch, runtime=f"transformers@{VERSION}", state_dtype=_state_dtype(case)
                ).total_bytes
                equal = measured == estimate
                mismatches += not equal
                print(
                    f"| {case.name} | {runtime} | {prompt + 1:,} | {batch} | {measured:,} | {estimate:,} "
                    f"| {'yes' if equal else '**NO**'} |"
                )
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
