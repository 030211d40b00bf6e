"""Shared fixtures: every test ends with the runtime idle."""

from __future__ import annotations

import signal

import boc
import pytest
from boc import _boc

# A Python started with SIGINT ignored (a background job of a
# non-interactive shell) keeps it ignored, and then neither Ctrl-C nor
# `_thread.interrupt_main()` interrupts anything: the Ctrl-C tests need
# Python's own handler, whatever started the run.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
