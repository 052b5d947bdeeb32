"""Print the cross-check table: bytes transformers really holds in its cache against mla-mem's estimate.

Run inside a cross-check environment (torch + a pinned transformers + mla-mem), e.g. the ones .ci/run builds:

    .crosscheck/tf-5.24/bin/python scripts/crosscheck_report.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import transformers  # noqa: E402

import mla_mem  # noqa: E402
from tests.crosscheck.measure import measured_bytes  # noqa: E402
from tests.crosscheck.models import NOT_IN_457, SUITE, case  # noqa: E402
from tests.crosscheck.test_transformers_cache import LEGACY, PROMPTS, VERSION  # noqa: E402


def main() -> int:
    print("| architecture | runtime | S | batch | measured bytes | estimated bytes | equal |")
    print("|---|---|---:|---:|---:|---:|---|")
    mismatches = 0
    for name in SUITE:
        if LEGACY and name in NOT_IN_457:
            print(f"| {name} | transformers {transformers.__version__} | | | | | not built: {NOT_IN_457[name]} |")
            continue
        spec, config = case(name)
        for prompt in PROMPTS.get(name, [24, 100]):
            for batch in (1, 2):
                measured, _ = measured_bytes(config, prompt, batch)
                estimate = mla_mem.estimate(spec, prompt + 1, batch, runtime=f"transformers@{VERSION}").total_bytes
                equal = measured == estimate
                mismatches += not equal
                print(
                    f"| {name} | transformers {transformers.__version__} | {prompt + 1:,} | {batch} | {measured:,} "
                    f"| {estimate:,} | {'yes' if equal else '**NO**'} |"
                )
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
