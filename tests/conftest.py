"""Fixtures every test gets."""

from __future__ import annotations

import pytest

from edges2shoes_utils.inference import fastpath


@pytest.fixture(autouse=True)
def fast_layers_on_tiny_networks(monkeypatch):
    """Sketch2Shoe keeps the fast path only where it beats plain; the suite's tiny networks often do
    not, and the tests that compare fast with plain must still run the fast layers.
    `tests/test_fast_fallback.py` turns the comparison back on."""
    monkeypatch.setattr(fastpath, "TIME_AGAINST_PLAIN", False)
