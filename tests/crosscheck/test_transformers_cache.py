"""mla-mem's `transformers` runtime against caches transformers really allocates: equal, byte for byte.

For every family, a real config.json shrunk where the cache does not care (models.py) is read by mla-mem (importer and
runtime rules, `--runtime transformers@<installed>`) and built by transformers on the CPU in bf16; the model generates
two tokens (a prefill of S tokens and one decode step) at batch 1 and 2, and the bytes of every tensor in the returned
cache object are counted. A family the installed release does not have is reported as skipped with the release that
brought it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import transformers

import mla_mem
from mla_mem.errors import MlaMemError

from .measure import measured_bytes
from .models import CASES, Case, builtin_spec, shrunk_config

RELEASE = tuple(int(p) for p in transformers.__version__.split(".")[:2])
VERSION = f"{RELEASE[0]}.{RELEASE[1]}"


def params():
    for case in CASES:
        for prompt in case.prompts:
            for batch in (1, 2):
                marks = []
                if RELEASE < case.first:
                    reason = f"transformers {VERSION} has no model class for {case.name} (from {case.first[0]}.{case.first[1]})"
                    marks.append(pytest.mark.skip(reason=reason))
                yield pytest.param(case, prompt, batch, id=f"{case.name}-S{prompt}-B{batch}", marks=marks)


def _spec(case: Case, tmp_path: Path):
    if case.builtin:
        return builtin_spec(case)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(shrunk_config(case)))
    return mla_mem.load_model(str(path))


def _as_run(case: Case, spec):
    """The model as this release runs it (see Case.window_short_before)."""
    if case.window_short_before and RELEASE < case.window_short_before:
        kinds = tuple(replace(k, window=k.window - 1) if k.window else k for k in spec.kinds)
        return replace(spec, kinds=kinds)
    return spec


def _state_dtype(case: Case) -> str | None:
    return next((dtype for below, dtype in case.state_dtype.items() if RELEASE < below), None)


@pytest.mark.parametrize("case,prompt,batch", list(params()))
def test_cache_bytes_equal(case, prompt, batch, tmp_path, record_property):
    config = shrunk_config(case)
    spec = _spec(case, tmp_path)
    runtime = f"transformers@{VERSION}"
    if case.refused_before and RELEASE < case.refused_before:
        with pytest.raises(MlaMemError):
            mla_mem.estimate(spec, prompt + 1, batch, runtime=runtime)
        return
    estimate = mla_mem.estimate(_as_run(case, spec), prompt + 1, batch, runtime=runtime, state_dtype=_state_dtype(case))
    measured, by_dtype = measured_bytes(config, prompt, batch)
    record_property("measured", measured)
    record_property("estimated", estimate.total_bytes)
    print(
        f"REPORT {case.name} transformers {transformers.__version__} S={prompt + 1} B={batch} "
        f"measured={measured} estimated={estimate.total_bytes} {by_dtype}"
    )
    assert measured == estimate.total_bytes, (
        by_dtype,
        [(c.name, c.total_bytes) for c in estimate.components],
    )


def test_the_suite_reports_the_families_this_release_lacks():
    lacking = [case.name for case in CASES if RELEASE < case.first]
    print(f"REPORT transformers {transformers.__version__} lacks: {', '.join(lacking) or 'nothing'}")
    assert len(lacking) < len(CASES)
