"""Pinned cowns: their behaviors, and their values, stay on the main thread."""

from __future__ import annotations

import gc
import threading

import boc
from boc import Cown, PinnedCown, wait, when
from helpers import run_in_thread


def on_main() -> bool:
    return threading.current_thread() is threading.main_thread()


class MainOnly:
    """A stand-in for a GUI widget: fails loudly if touched off main."""

    def __init__(self):
        self.touches = 0
        self.off_main = 0

    def touch(self):
        self.touches += 1
        if not on_main():
            self.off_main += 1


def test_behaviors_on_a_pinned_cown_run_on_the_main_thread():
    widget = PinnedCown(MainOnly())
    for _ in range(50):

        @when(widget)
        def _(widget):
            widget.value.touch()

    wait()
    assert widget.value.touches == 50
    assert widget.value.off_main == 0


def test_worker_behaviors_feed_a_pinned_cown():
    widget = PinnedCown(MainOnly())
    totals = [Cown(0) for _ in range(8)]
    for total in totals:

        @when(total)
        def _(total):
            assert not on_main() or boc._boc._state()["workers"] == 0
            total.value = sum(range(1000))

            # Scheduled from a worker: still runs on main.
            @when(widget, total)
            def _(widget, total):
                widget.value.touch()
                assert on_main()

    wait()
    assert widget.value.touches == 8
    assert widget.value.off_main == 0


def test_a_pinned_cown_in_a_list_makes_the_behavior_main_side():
    widget = PinnedCown(MainOnly())

    @when([Cown(1), widget])
    def where(cowns):
        cowns[1].value.touch()
        return on_main()

    wait()
    assert where.value is True


def test_mixed_request_sets_exclude_worker_behaviors():
    widget = PinnedCown([])
    counter = Cown(0)
    for i in range(200):
        if i % 10 == 0:

            @when(widget, counter)
            def _(widget, counter):
                widget.value.append(counter.value)

        else:

            @when(counter)
            def _(counter):
                counter.value += 1

    wait()
    # Each snapshot saw exactly the increments scheduled before it.
    assert widget.value == [9 * k for k in range(20)]


def test_a_chain_on_a_pinned_cown_runs_in_order():
    log = PinnedCown([])
    for i in range(100):

        @when(log)
        def _(log, i=i):
            log.value.append(i)

    wait()
    assert log.value == list(range(100))


class Tracked:
    deleted_on_main: list[bool] = []

    def __del__(self):
        Tracked.deleted_on_main.append(on_main())


def test_a_pinned_value_is_dropped_on_the_main_thread():
    Tracked.deleted_on_main.clear()
    pinned = PinnedCown(Tracked())
    done = Cown(False)

    # The last handle goes away on a worker: captured by this behavior,
    # released when its closure is freed there.
    def drop_on_worker(handle):
        @when(done)
        def _(done):
            assert handle is not None
            done.value = True

    drop_on_worker(pinned)
    del pinned
    gc.collect()
    wait()
    gc.collect()
    wait()
    assert Tracked.deleted_on_main == [True]


def test_pinned_handles_travel_to_other_threads():
    widget = PinnedCown(MainOnly())
    def schedule_from_thread():
        @when(widget)
        def _(widget):
            widget.value.touch()

    error = run_in_thread(schedule_from_thread)
    wait()
    assert error is None
    assert widget.value.touches == 1
    assert widget.value.off_main == 0
