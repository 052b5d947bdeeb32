from __future__ import annotations

from pathlib import Path

import pytest

# Property tests draw the same examples on every run (derandomize): a failure is reproducible, never a flake, and an
# example found once is kept as an explicit test. MLA_MEM_PROPERTY_EXAMPLES raises the count for longer local runs.
# The cross-check environments (.ci/run) have no hypothesis: they run tests/crosscheck only.
try:
    from hypothesis import settings
except ImportError:
    pass
else:
    settings.register_profile("mla-mem", derandomize=True, database=None, print_blob=True)
    settings.load_profile("mla-mem")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def write(tmp_path):
    """Write a text file in a temporary directory and return its path."""

    def _write(text: str, name: str = "model.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write
