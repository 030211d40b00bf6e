"""The pump: budgets, reports, errors, the waker and the watchdog."""

from __future__ import annotations

import gc
import os
import select
import subprocess
import sys
import threading
import time

import boc
import pytest
from boc import Cown, PinnedCown, PumpResult, pump, wait, when
from helpers import run_in_thread


def schedule_pinned(n, body=None):
    """n ready main-side behaviors, each on its own pinned cown."""
    results = []
    for i in range(n):

        @when(PinnedCown(i))
        def result(cown):
            return body(cown) if body else cown.value

        results.append(result)
    return results


def test_pump_before_any_runtime_is_a_no_op():
    code = "import boc; print(tuple(boc.pump()))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert output.stdout.strip() == "(0, False, 0, 0)"


def test_pump_runs_ready_main_side_behaviors():
    results = schedule_pinned(5)
    report = pump()
    assert report == PumpResult(executed=5, deadline_reached=False, raised=0, pending=0)
    assert [result.value for result in results] == [0, 1, 2, 3, 4]


def test_max_behaviors_bounds_a_pump():
    schedule_pinned(5)
    first = pump(max_behaviors=2)
    assert (first.executed, first.pending) == (2, 3)
    second = pump()
    assert (second.executed, second.pending) == (3, 0)


def test_a_deadline_gates_starting_behaviors():
    schedule_pinned(20, body=lambda cown: time.sleep(0.005))
    report = pump(deadline_ms=12)
    assert report.deadline_reached
    assert 1 <= report.executed < 20
    assert report.pending == 20 - report.executed
    wait()


def test_an_unbounded_pump_drains_a_chain_in_one_call():
    log = PinnedCown([])
    for i in range(50):

        @when(log)
        def _(log, i=i):
            log.value.append(i)

    report = pump()
    assert report.executed == 50
    assert log.value == list(range(50))


def test_failures_count_in_raised_and_land_on_results():
    def body(cown):
        if cown.value % 2:
            raise ValueError(cown.value)
        return cown.value

    results = schedule_pinned(4, body)
    report = pump()
    assert (report.executed, report.raised) == (4, 2)
    assert [result.exception for result in results] == [False, True, False, True]
    for result in results[1::2]:
        result.value  # retrieved: not reported


def test_raise_on_error_raises_the_first_and_leaves_the_rest_queued():
    def body(cown):
        raise ValueError(f"failure {cown.value}")

    results = schedule_pinned(3, body)
    with pytest.raises(ValueError, match="failure 0"):
        pump(raise_on_error=True)
    assert boc._boc._state()["main_pending"] == 2
    report = pump()
    assert (report.executed, report.raised) == (2, 2)
    assert results[0].exception  # the raised one is on its cown too
    for result in results[1:]:
        result.value


def test_a_base_exception_propagates_after_cleanup_and_the_rest_stay_queued():
    class Quit(BaseException):
        pass

    def body(cown):
        if cown.value == 0:
            raise Quit()
        return cown.value

    results = schedule_pinned(3, body)
    with pytest.raises(Quit):
        pump()
    assert boc._boc._state()["main_pending"] == 2
    assert pump().executed == 2
    assert [result.value for result in results[1:]] == [1, 2]


def test_keyboard_interrupt_in_a_main_side_body_propagates_from_wait():
    def body(cown):
        raise KeyboardInterrupt

    (result,) = schedule_pinned(1, body)
    with pytest.raises(KeyboardInterrupt):
        wait()
    wait()
    assert result.exception


def test_pump_result_is_a_named_tuple_with_a_default_pending():
    assert PumpResult(1, False, 0) == (1, False, 0, 0)
    assert PumpResult(1, True, 0, 2).pending == 2
    assert PumpResult._fields == ("executed", "deadline_reached", "raised", "pending")


def readable(fd):
    return bool(select.select([fd], [], [], 0)[0])


def test_pump_fd_is_readable_while_main_side_work_waits():
    fd = boc.pump_fd()
    pump()
    assert not readable(fd)
    schedule_pinned(1)
    deadline = time.monotonic() + 10
    while not readable(fd) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert readable(fd)
    pump()
    assert not readable(fd)


def test_the_waker_is_called_when_work_arrives():
    # Garbage left by earlier tests, collected on the waker's thread, would
    # send its pinned values home as main-side work of its own (counted in
    # `executed`): collect it here, on main, first.
    gc.collect()
    woken = threading.Event()
    boc.set_pump_waker(woken.set)
    try:
        pump()
        schedule_pinned(1)
        assert woken.wait(10)
        assert pump().executed == 1
    finally:
        boc.set_pump_waker(None)


def test_the_watchdog_names_waiting_behaviors():
    messages = []
    reported = threading.Event()

    def on_starve(message):
        messages.append(message)
        reported.set()

    boc.set_pump_watchdog(warn_ms=30, on_starve=on_starve)
    try:

        @when(PinnedCown(0))
        def redraw_the_window(cown):
            return cown.value

        assert reported.wait(10)
        pump()
    finally:
        boc.set_pump_watchdog(warn_ms=2000)
    assert "redraw_the_window" in messages[0]
    assert f"{os.path.basename(__file__)}:" in messages[0]
    assert "pump()" in messages[0]


def test_the_default_watchdog_sink_is_the_boc_logger(caplog):
    import logging

    caplog.set_level(logging.WARNING, logger="boc")
    boc.set_pump_watchdog(warn_ms=20)
    try:
        reported = threading.Event()

        @when(PinnedCown(0))
        def starving(cown):
            return 0

        deadline = time.monotonic() + 10
        while not any(r.name == "boc" for r in caplog.records) and time.monotonic() < deadline:
            reported.wait(0.01)
        pump()
    finally:
        boc.set_pump_watchdog(warn_ms=2000)
    assert any(r.name == "boc" and "starving" in r.getMessage() for r in caplog.records)


def test_a_timed_out_wait_off_main_names_the_main_side_behaviors_waiting():
    @when(PinnedCown(0))
    def paint_the_canvas(cown):
        return 1

    error = run_in_thread(lambda: boc.quiesce(timeout=0.05))
    wait()
    assert isinstance(error, TimeoutError)
    assert "1 behaviors still scheduled or running" in str(error)
    assert "paint_the_canvas" in str(error)
    assert "pump()" in str(error)


def test_the_watchdog_can_be_turned_off_and_back_to_its_default():
    boc.set_pump_watchdog(None)
    boc.set_pump_watchdog()
    boc.set_pump_watchdog(warn_ms=1500.5)
    boc.set_pump_watchdog(2000)
