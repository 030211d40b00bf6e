"""Regression tests for defects found from outside (../shared/repros/).

Each reproduces one defect as it was reported; those that took the
interpreter down run in a subprocess, and racy ones repeat (BOC_REPEAT
times: 2 in a normal run, more in `cargo xtask soak`).
"""

from __future__ import annotations

import asyncio
import select
import sys
import threading
import time

import boc
import boc.aio
import pytest
from boc import Cown, PinnedCown, when
from helpers import REPEAT, run_program


def test_collecting_an_unretrieved_exception_in_a_cycle_reports_it():
    # The result cown and its exception form a cycle; the collector frees it
    # while nobody has looked at the exception. The report used to resurrect
    # the exception after the collector had cleared it: a segfault.
    result = run_program(
        """
        import gc, boc
        from boc import Cown, when
        holder = []
        @when(Cown(0))
        def body(c):
            err = ValueError("boom")
            err.holder = holder
            raise err
        holder.append(body)
        boc.quiesce()
        del body, holder
        gc.collect()
        boc.wait()
        print("survived")
        """
    )
    assert result.returncode == 0, result.describe()
    assert "survived" in result.stdout, result.describe()
    assert "was never retrieved" in result.stderr, result.describe()
    assert "ValueError: boom" in result.stderr, result.describe()


def test_collecting_an_unretrieved_main_side_exception_reports_it():
    # The same cycle built by an ordinary GUI-style program: a main-side body
    # raises during pump(), and its traceback reaches the caller's frame,
    # which holds the result cown.
    result = run_program(
        """
        import gc, boc
        from boc import PinnedCown, when
        def scenario():
            @when(PinnedCown("p"))
            def body(pc):
                raise ValueError("boom")
            print(tuple(boc.pump()))
        scenario()
        gc.collect()
        print(tuple(boc.pump()))
        print("survived")
        """
    )
    assert result.returncode == 0, result.describe()
    assert "survived" in result.stdout, result.describe()
    assert "(1, False, 1, 0)" in result.stdout, result.describe()
    assert "was never retrieved" in result.stderr and "ValueError: boom" in result.stderr, result.describe()


def test_an_exception_reported_by_the_collector_is_reported_once(caplog):
    holder = []

    @when(Cown(0))
    def body(c):
        error = ValueError("once")
        error.holder = holder
        raise error

    holder.append(body)
    boc.quiesce()
    del body, holder
    import gc

    gc.collect()
    boc.wait()
    reports = [record for record in caplog.records if "was never retrieved" in record.getMessage()]
    assert len(reports) == 1, [record.getMessage() for record in caplog.records]
    assert str(reports[0].exc_info[1]) == "once"


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("run", range(REPEAT))
def test_cowns_are_released_when_the_body_returns(workers, run):
    # A worker used to keep a finished behavior's cowns until its batch
    # ended: a later body of the batch blocked in receive() then waited for a
    # behavior that needed those cowns. With one worker it always hung.
    result = run_program(
        f"""
        import boc
        from boc import Cown, when
        boc.start(workers={workers})
        x, y = Cown(0), Cown(0)
        @when(x)
        def f(x):
            x.value += 1
        @when(x)
        def g(x):
            boc.send("tag", x.value)
        @when(y)
        def h(y):
            return boc.receive("tag", timeout=None)
        boc.wait()
        print("h got:", h.value)
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.describe()
    assert "h got: ('tag', 1)" in result.stdout, result.describe()


class Widget:
    """Records the thread its value was dropped on."""

    def __init__(self, log):
        self.log = log

    def __del__(self):
        self.log.append(threading.current_thread().name)


def drop_pinned_value_on_a_worker(log):
    """Schedules a worker behavior that drops the last handle to a pinned
    cown holding a `Widget(log)`."""
    holder = Cown([PinnedCown(Widget(log))])

    @when(holder)
    def drop_it(holder):
        holder.value = None  # the pinned cown's last handle dies on a worker


def wait_for_the_main_thread_to_be_told(fd, woken, log):
    """Waits until the host loop is told (the descriptor readable, the waker
    called) or the value was dropped on the main thread directly. On a
    free-threaded build CPython may hand an object's deallocation back to
    the thread that created it (biased reference counting), which is the
    main thread here: it does that when the main thread next runs Python,
    so this loop runs some between looks."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if log or select.select([fd], [], [], 0.01)[0] == [fd]:
            break
    if log:
        return False
    assert select.select([fd], [], [], 0)[0] == [fd], "pump_fd() never became readable"
    assert woken.wait(20), "the pump waker never fired"
    return True


def test_a_pinned_value_dropped_on_a_worker_wakes_the_main_thread():
    log = []
    woken = threading.Event()
    boc.set_pump_waker(woken.set)
    try:
        fd = boc.pump_fd()
        drop_pinned_value_on_a_worker(log)
        if wait_for_the_main_thread_to_be_told(fd, woken, log):
            assert log == [], "dropped before anyone pumped"
            assert boc.pump().executed == 1
        assert log == [threading.main_thread().name]
        # Nothing is left: the descriptor is quiet again.
        assert select.select([fd], [], [], 0)[0] == []
    finally:
        boc.set_pump_waker(None)


def test_workers_get_the_stack_of_a_python_thread():
    # C-level recursion (repr of a deeply nested list) that works in a
    # threading.Thread used to overflow a worker's 2 MiB stack (segfault on
    # 3.11): both must behave alike.
    program = """
        import boc, sys, threading
        from boc import Cown, when
        depth = 16000
        sys.setrecursionlimit(depth * 2)
        def work():
            x = []
            for _ in range(depth):
                x = [x]
            try:
                return ("ok", len(repr(x)))
            except RecursionError:
                return ("RecursionError",)
        if sys.argv[1] == "thread":
            out = []
            t = threading.Thread(target=lambda: out.append(work()))
            t.start(); t.join()
            print(out[0])
        else:
            @when(Cown(0))
            def f(c):
                return work()
            boc.wait()
            print(f.value)
        """
    in_thread = run_program(program, args=["thread"])
    in_worker = run_program(program, args=["boc"])
    assert in_thread.returncode == 0, in_thread.describe()
    assert in_worker.returncode == 0, in_worker.describe()
    assert in_worker.stdout == in_thread.stdout


@pytest.mark.parametrize("deadline_ms", [1e15, 1e18, 1e22, 1.7e308, 2**70, 10**400])
def test_a_deadline_too_far_to_represent_is_no_deadline(deadline_ms):
    # pump(deadline_ms=1e22) used to raise a Rust panic (PanicException);
    # 10**400 raised OverflowError while max_behaviors=10**400 was no limit.
    results = [when(PinnedCown(i))(lambda cown: cown.value) for i in range(3)]
    report = boc.pump(deadline_ms=deadline_ms)
    assert (report.executed, report.deadline_reached, report.pending) == (3, False, 0)
    assert [result.value for result in results] == [0, 1, 2]


@pytest.mark.parametrize("max_behaviors", [2**63, 2**64 - 1, 2**64, 2**70, 10**400])
def test_a_count_too_large_to_represent_is_no_limit(max_behaviors):
    for i in range(3):
        when(PinnedCown(i))(lambda cown: None)
    assert boc.pump(max_behaviors=max_behaviors).executed == 3


@pytest.mark.parametrize("warn_ms", [1e300, 2**70, 10**400])
def test_a_watchdog_threshold_too_large_to_represent_never_fires(warn_ms):
    try:
        boc.set_pump_watchdog(warn_ms=warn_ms)
    finally:
        boc.set_pump_watchdog()


def test_no_bound_raises_a_rust_panic():
    # Every numeric bound of the API, at its extremes: errors are ordinary
    # exceptions (or none), never pyo3's PanicException (a BaseException).
    calls = {
        "pump(deadline_ms)": lambda value: boc.pump(deadline_ms=value),
        "pump(max_behaviors)": lambda value: boc.pump(max_behaviors=value),
        "wait(timeout)": lambda value: boc.wait(timeout=value),
        "quiesce(timeout)": lambda value: boc.quiesce(timeout=value),
        "receive(timeout)": lambda value: boc.receive("never-sent", timeout=value),
        "set_pump_watchdog(warn_ms)": lambda value: boc.set_pump_watchdog(warn_ms=value),
        "start(workers)": lambda value: boc.start(workers=value),
    }
    values = [0, -1, 1e-320, 5e-324, 1e300, float("inf"), float("-inf"), float("nan"), 2**64, 10**400, -(10**400)]
    try:
        for name, call in calls.items():
            for value in values:
                if name in ("wait(timeout)", "quiesce(timeout)", "receive(timeout)") and value in (
                    float("inf"),
                    1e300,
                    2**64,
                    10**400,
                ):
                    continue  # forever: nothing would return
                if name == "start(workers)" and value in (0,):
                    continue
                try:
                    call(value)
                except Exception:
                    pass
                except BaseException as error:  # noqa: BLE001 (the test's subject)
                    pytest.fail(f"{name} with {value!r} raised {type(error).__module__}.{type(error).__name__}: {error}")
    finally:
        boc.set_pump_watchdog()


def test_an_attachment_whose_loop_closed_does_not_block_the_next():
    async def first():
        boc.aio.attach()  # never detached; asyncio.run closes the loop

    async def second():
        with boc.aio.attach():
            result = when(Cown(20))(lambda cown: cown.value * 2)
            return await boc.aio.result(result)

    asyncio.run(first())
    assert asyncio.run(second()) == 40
