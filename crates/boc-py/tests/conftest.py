"""Shared fixtures: every test ends with the runtime idle."""

from __future__ import annotations

import boc
import pytest
from boc import _boc


@pytest.fixture(autouse=True)
def idle_runtime():
    """Waits for everything a test scheduled, and checks nothing is left."""
    yield
    boc.wait(timeout=60)
    # Back to the default worker count for the next test.
    boc.start()
    boc.wait(timeout=60)
    state = _boc._state()
    assert state["in_flight"] == 0, state
    assert state["main_pending"] == 0, state
