"""mla-mem's `transformers` runtime against caches transformers really allocates: equal, byte for byte.

For every architecture, a shrunk model (models.py: every cache-relevant dim real) is built on the CPU in bf16, runs
a prefill of S tokens and one decode step at batch 1 and 2, and the bytes of every tensor in the returned cache
object are counted. mla-mem estimates the same model at S + 1 tokens with --runtime transformers@<installed>.
"""

from __future__ import annotations

import pytest
import transformers

import mla_mem

from .measure import measured_bytes
from .models import NOT_IN_457, SUITE, case

VERSION = ".".join(transformers.__version__.split(".")[:2])
LEGACY = tuple(int(p) for p in VERSION.split(".")) < (5, 15)
# below and above the sliding windows; DeepSeek-V4: before the first window closes, and with tokens waiting
PROMPTS = {"gpt-oss-120b": [20, 200], "gemma-3-27b": [64, 1100], "deepseek-v4-flash": [2, 130, 300]}


def params():
    for name in SUITE:
        for prompt in PROMPTS.get(name, [24, 100]):
            for batch in (1, 2):
                marks = []
                if LEGACY and name in NOT_IN_457:
                    marks.append(pytest.mark.skip(reason=NOT_IN_457[name]))
                yield pytest.param(name, prompt, batch, id=f"{name}-S{prompt}-B{batch}", marks=marks)


@pytest.mark.parametrize("name,prompt,batch", list(params()))
def test_cache_bytes_equal(name, prompt, batch, record_property):
    spec, config = case(name)
    measured, by_dtype = measured_bytes(config, prompt, batch)
    estimate = mla_mem.estimate(spec, prompt + 1, batch, runtime=f"transformers@{VERSION}")
    record_property("measured", measured)
    record_property("estimated", estimate.total_bytes)
    print(
        f"REPORT {name} transformers {transformers.__version__} S={prompt + 1} B={batch} "
        f"measured={measured} estimated={estimate.total_bytes} {by_dtype}"
    )
    assert measured == estimate.total_bytes, (
        by_dtype,
        [(c.name, c.total_bytes) for c in estimate.components],
    )
