"""The cross-check suite runs in its own environment with torch and a pinned transformers (see .ci/run)."""

from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers", reason="the cross-check suite needs transformers and torch")


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.crosscheck)
