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
from helpers import FREE_THREADED, run_program


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


def test_boc_imported_and_started_first_on_a_plain_thread():
    # The runtime's home is the interpreter's main thread, recognized by
    # CPython's thread identity, so it can be created from any thread:
    # scheduling and waiting off the main thread work before the main
    # thread has ever used boc, and pinned work still runs on main.
    finished = run_program(
        """
        import threading

        result = {}

        def first_user():
            import boc
            counter = boc.Cown(1)

            @boc.when(counter)
            def bumped(counter):
                counter.value += 1
                return counter.value

            boc.wait(timeout=30)
            result["bumped"] = bumped.value

        thread = threading.Thread(target=first_user)
        thread.start()
        thread.join()

        import boc
        screen = boc.PinnedCown([])

        @boc.when(screen)
        def drawn(screen):
            screen.value.append(threading.current_thread() is threading.main_thread())

        boc.wait(timeout=30)
        print(result["bumped"], screen.value)
        """
    )
    finished.expect(finished.returncode == 0, "the program failed")
    finished.expect(finished.stdout.split() == ["2", "[True]"], "unexpected output")
