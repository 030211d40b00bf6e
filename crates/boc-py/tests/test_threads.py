"""Threading: the GIL stays off on free-threaded builds, workers run in
parallel, and Ctrl-C interrupts a blocked wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import boc
import pytest
from boc import Cown, wait, when
from helpers import FREE_THREADED


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded CPython build")
def test_the_gil_stays_off_after_import_and_use():
    code = (
        "import sys, boc\n"
        "c = boc.Cown(0)\n"
        "@boc.when(c)\n"
        "def r(c):\n"
        "    return sys._is_gil_enabled()\n"
        "boc.wait()\n"
        "print(sys._is_gil_enabled(), r.value)\n"
    )
    output = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert output.stdout.split() == ["False", "False"], output.stderr


def test_the_extension_declares_itself_free_threading_safe():
    # On free-threaded builds importing a module that does not declare it
    # re-enables the GIL with a RuntimeWarning; -W error turns that into a
    # failure of this subprocess.
    subprocess.run([sys.executable, "-W", "error", "-c", "import boc"], timeout=60, check=True)


def test_behaviors_on_disjoint_cowns_run_at_the_same_time():
    boc.wait()
    boc.start(workers=2)
    barrier = threading.Barrier(2, timeout=30)

    def meet(cown):
        barrier.wait()
        return True

    first = when(Cown(0))(meet)
    second = when(Cown(0))(meet)
    wait()
    assert first.value is True and second.value is True


def test_ctrl_c_interrupts_a_blocked_wait():
    release = threading.Event()

    @when(Cown(0))
    def blocked(cown):
        release.wait(30)

    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            wait(timeout=30)
    finally:
        timer.cancel()
        release.set()
    wait()
