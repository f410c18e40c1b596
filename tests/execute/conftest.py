"""Fixtures for the execute tests."""

from __future__ import annotations

import pytest

from .helpers import results_of as _results_of


@pytest.fixture
def results_of():
    """``results_of(a=1, b=Cell(...))`` -> a stand-in Results with a start_time cell."""
    return _results_of
