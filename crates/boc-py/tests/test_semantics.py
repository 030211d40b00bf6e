"""The model: exclusion, ordering, results, exceptions, request-set forms."""

from __future__ import annotations

import logging
import random
import threading
import types

import boc
import pytest
from boc import Cown, PinnedCown, _boc, wait, when
from helpers import run_in_thread


def increment(counter, times):
    """Schedules `times` behaviors that each add one to `counter`."""
    for _ in range(times):

        @when(counter)
        def _(counter):
            counter.value += 1


def test_a_counter_sees_every_increment():
    counter = Cown(0)
    increment(counter, 1000)
    wait()
    assert counter.value == 1000


def test_behaviors_on_one_cown_run_in_schedule_order():
    log = Cown([])
    for i in range(500):

        @when(log)
        def _(log, i=i):
            log.value.append(i)

    wait()
    assert log.value == list(range(500))


def test_transfers_between_random_pairs_conserve_the_total():
    accounts = [Cown(100) for _ in range(16)]
    rng = random.Random(7)

    def schedule_transfers(seed):
        rng = random.Random(seed)
        for _ in range(300):
            a, b = rng.sample(accounts, 2)

            @when(a, b)
            def _(src, dst):
                amount = min(src.value, 7)
                src.value -= amount
                dst.value += amount

    threads = [threading.Thread(target=schedule_transfers, args=(rng.random(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = when(accounts)(lambda accounts: sum(account.value for account in accounts))
    wait()
    assert total.value == 1600


def test_a_body_never_overlaps_another_on_the_same_cown():
    shared = Cown(0)
    overlaps = []
    inside = threading.Lock()

    for _ in range(300):

        @when(shared)
        def _(shared):
            if not inside.acquire(blocking=False):
                overlaps.append(1)
                return
            try:
                shared.value += 1
            finally:
                inside.release()

    wait()
    assert overlaps == []
    assert shared.value == 300


def test_a_list_of_cowns_arrives_as_a_list():
    cowns = [Cown(i) for i in range(5)]
    single = Cown(10)

    @when(cowns, single)
    def total(cowns, single):
        assert isinstance(cowns, list)
        return sum(cown.value for cown in cowns) + single.value

    wait()
    assert total.value == 20


def test_the_list_is_copied_when_scheduled():
    cowns = [Cown(1), Cown(2)]
    decorator = when(cowns)
    cowns.append(Cown(3))

    @decorator
    def seen(cowns):
        return len(cowns)

    wait()
    assert seen.value == 2


def test_a_cown_named_twice_is_acquired_once_and_passed_twice():
    cown = Cown(1)

    @when(cown, cown, [cown])
    def both(a, b, c):
        assert a is b is c[0]
        a.value += 1
        return b.value

    wait()
    assert both.value == 2


def test_the_result_is_a_cown_that_orders_later_behaviors():
    source = Cown(21)

    @when(source)
    def doubled(source):
        return source.value * 2

    @when(doubled)
    def plus_one(doubled):
        return doubled.value + 1

    wait()
    assert isinstance(doubled, Cown)
    assert plus_one.value == 43


def test_an_exception_lands_on_the_result_cown():
    cown = Cown(0)

    @when(cown)
    def failing(cown):
        raise ValueError("no good")

    wait()
    assert failing.exception is True
    assert isinstance(failing.value, ValueError)
    with pytest.raises(ValueError, match="no good") as raised:
        failing.unwrap()
    assert raised.value is failing.value
    assert raised.value.__traceback__ is not None


def test_unwrap_returns_the_value():
    @when(Cown(2))
    def result(cown):
        return cown.value + 1

    wait()
    assert result.exception is False
    assert result.unwrap() == 3


def test_a_base_exception_on_a_worker_lands_on_the_result_cown():
    class Abort(BaseException):
        pass

    @when(Cown(0))
    def aborted(cown):
        raise Abort("stop")

    wait()
    assert aborted.exception
    with pytest.raises(Abort):
        aborted.unwrap()


def test_behaviors_schedule_behaviors():
    log = Cown([])

    @when(log)
    def _(log):
        log.value.append("outer")

        @when(log)
        def _(log):
            log.value.append("inner")

    wait()
    assert log.value == ["outer", "inner"]


def test_closures_capture_local_state():
    results = Cown({})

    def record(name, factor):
        @when(results)
        def _(results):
            results.value[name] = factor * 10

    record("a", 2)
    record("b", 3)
    wait()
    assert results.value == {"a": 20, "b": 30}


def test_acquired_is_true_only_inside_a_behavior_holding_the_cown():
    held, other = Cown(0), Cown(0)
    assert not held.acquired

    @when(held)
    def seen(held):
        return (held.acquired, other.acquired)

    wait()
    assert seen.value == (True, False)


def test_value_can_be_read_and_written_outside_behaviors_while_idle():
    cown = Cown("a")
    cown.value = "b"
    assert cown.value == "b"

    @when(cown)
    def _(cown):
        cown.value += "c"

    wait()
    assert cown.value == "bc"


def test_cowns_are_hashable_ordered_and_compared_by_identity():
    a, b = Cown(1), Cown(1)
    assert a != b and a == a
    assert a < b and sorted([b, a]) == [a, b]
    assert len({a, b, a}) == 2


def test_repr_shows_the_value_when_readable():
    assert "value=42" in repr(Cown(42))


def test_cown_is_generic_for_type_checkers():
    alias = Cown[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is Cown


def test_pinned_cown_is_a_cown_subclass():
    pinned = PinnedCown(1)
    assert isinstance(pinned, Cown)
    assert type(pinned) is not Cown


def test_copying_a_cown_names_the_same_cown():
    import copy

    cown = Cown([1])
    assert copy.copy(cown) is cown
    assert copy.deepcopy({"c": cown})["c"] is cown


def test_an_unretrieved_exception_is_reported_when_its_cown_is_dropped(caplog):
    caplog.set_level(logging.ERROR, logger="boc")

    @when(Cown(0))
    def forgotten(cown):
        raise KeyError("never looked at")

    wait()
    del forgotten
    wait()
    messages = [record.getMessage() for record in caplog.records if record.name == "boc"]
    assert any("never retrieved" in message and "forgotten" in message for message in messages), messages


def test_a_retrieved_exception_is_not_reported(caplog):
    caplog.set_level(logging.ERROR, logger="boc")

    @when(Cown(0))
    def looked_at(cown):
        raise KeyError("seen")

    wait()
    assert looked_at.exception
    assert isinstance(looked_at.value, KeyError)
    del looked_at
    wait()
    assert not [record for record in caplog.records if record.name == "boc"]


def test_wait_stops_the_pool_and_the_next_when_restarts_it():
    @when(Cown(0))
    def first(cown):
        return 1

    wait()
    assert _boc._state()["running"] is False

    @when(Cown(0))
    def second(cown):
        return 2

    boc.quiesce()
    assert _boc._state()["running"] is True
    assert (first.value, second.value) == (1, 2)


def test_zero_workers_runs_everything_on_the_main_thread():
    boc.wait()
    boc.start(workers=0)
    try:
        threads = Cown([])
        for _ in range(10):

            @when(threads)
            def _(threads):
                threads.value.append(threading.current_thread() is threading.main_thread())

        assert boc.pump().executed >= 1
        wait()
        assert threads.value == [True] * 10
    finally:
        boc.wait()


def test_start_with_the_running_worker_count_is_a_no_op():
    boc.wait()
    boc.start(workers=2)
    boc.start(workers=2)
    boc.start()
    assert _boc._state()["workers"] == 2
    boc.wait()


def test_when_works_from_many_threads_at_once():
    counter = Cown(0)

    threads = [threading.Thread(target=increment, args=(counter, 250)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait()
    assert counter.value == 1000


def test_wait_from_another_thread_waits_for_worker_side_work():
    counter = Cown(0)
    increment(counter, 100)
    assert run_in_thread(lambda: boc.quiesce(timeout=30)) is None
    wait()
    assert counter.value == 100


def test_stop_finishes_everything_including_main_side_work():
    counter = Cown(0)
    screen = PinnedCown([])
    for i in range(100):

        @when(counter)
        def _(counter):
            counter.value += 1

        @when(screen, counter)
        def _(screen, counter):
            screen.value.append(counter.value)

    boc.stop()
    assert _boc._state() == {"running": False, "workers": None, "in_flight": 0, "main_pending": 0}
    assert counter.value == 100
    assert screen.value == list(range(1, 101))


def test_concurrent_waits_all_return():
    counter = Cown(0)
    increment(counter, 200)

    errors = []

    def waiter():
        try:
            boc.wait(timeout=30)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for thread in threads:
        thread.start()
    boc.wait(timeout=30)
    for thread in threads:
        thread.join()
    assert errors == []
    assert counter.value == 200


def test_the_worker_count_of_start_outlives_a_wait():
    boc.start(workers=2)
    boc.wait()

    @when(Cown(0))
    def _(cown):
        return None

    boc.quiesce()
    assert _boc._state()["workers"] == 2
    boc.wait()
    boc.start()
    assert _boc._state()["running"]


def test_a_cycle_through_a_result_cown_is_collected():
    import gc
    import weakref

    holder = {}

    @when(Cown(0))
    def result(cown):
        return holder

    wait()
    holder["self"] = result  # result -> its value (holder) -> result
    collected = weakref.ref(result)
    del result, holder
    gc.collect()
    assert collected() is None


def test_a_cycle_through_a_cown_given_a_list_later_is_collected():
    import gc
    import weakref

    cown = Cown(0)

    @when(cown)  # cowns named in when() with a plain value may leave the GC
    def _(cown):
        cown.value = [cown]  # now it references itself

    wait()
    collected = weakref.ref(cown)
    del cown
    gc.collect()
    assert collected() is None


def test_a_cycle_through_an_exception_on_a_result_cown_is_collected():
    import gc
    import weakref

    @when(Cown(0))
    def failing(cown):
        raise ValueError("kept")

    wait()
    error = failing.value  # retrieved; the traceback's frames may reach it
    error.cown = failing
    collected = weakref.ref(failing)
    del failing, error
    gc.collect()
    assert collected() is None
