"""Misuse of the Python API: every mistake is an exception with a clear
message, never a crash or a hang.

One test (or one parametrized case) per row of docs/python-misuse.md; the
table names the test. Each test asserts the exception type and a
meaningful part of its message, and leaves the runtime idle (every Event
it sets up is released, and it waits for what it scheduled).
"""

from __future__ import annotations

import _thread
import copy
import gc
import logging
import math
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable

import boc
import pytest
from boc import Cown, PinnedCown, _boc, when
from helpers import ASAN, FREE_THREADED, PATIENCE, run_in_thread

# Longest a test waits on one of its own Events: far beyond what any of
# them needs, short of the suite's timeout.


def result_error(result):
    """The exception a behavior left on its result cown (after wait())."""
    assert result.exception, f"the behavior did not fail: {result!r}"
    return result.value


def blocked_behavior(cown):
    """Schedules a worker behavior on `cown` that blocks until released;
    returns (started, release)."""
    started, release = threading.Event(), threading.Event()

    @when(cown)
    def _(cown):
        started.set()
        release.wait(PATIENCE)

    assert started.wait(PATIENCE)
    return release


# --- when(): arguments -----------------------------------------------------


def a_function(x):
    return x


@pytest.mark.parametrize(
    ("argument", "pattern"),
    [
        pytest.param(1, r"argument 1 is an int \(1\)\. Wrap shared values in boc\.Cown", id="int"),
        pytest.param("a", r"argument 1 is a str \('a'\)", id="str"),
        pytest.param(None, r"argument 1 is a NoneType \(None\)", id="None"),
        pytest.param((Cown(1), Cown(2)), r"argument 1 is a tuple .*pass several cowns as a list, not a tuple", id="tuple"),
        pytest.param({1, 2}, r"argument 1 is a set", id="set"),
        pytest.param(print, r"argument 1 is a builtin_function_or_method", id="builtin"),
        pytest.param(Cown, r"argument 1 is a type", id="class"),
    ],
)
def test_when_rejects_a_non_cown(argument, pattern):
    with pytest.raises(TypeError, match=r"when\(\) takes cowns or lists of cowns; " + pattern):
        when(argument)


def test_when_rejects_a_generator_of_cowns():
    with pytest.raises(TypeError, match=r"argument 1 is a generator"):
        when(c for c in [Cown(1)])


def test_when_without_parentheses_on_a_function():
    with pytest.raises(TypeError, match=r"argument 1 is the function .*forgot.*use @when\(\.\.\.\) with parentheses"):

        @when
        def forgot(x):
            return x


def test_when_rejects_the_second_argument_when_only_it_is_wrong():
    with pytest.raises(TypeError, match=r"argument 2 is an int \(7\)"):
        when(Cown(1), 7)


@pytest.mark.parametrize(
    ("items", "pattern"),
    [
        pytest.param(lambda c: [c, 3], r"item 1 of the list in argument 1 is an int \(3\), not a Cown", id="int"),
        pytest.param(lambda c: [c, None], r"item 1 of the list in argument 1 is a NoneType", id="None"),
        pytest.param(lambda c: [[c]], r"item 0 of the list in argument 1 is a list .*, not a Cown", id="nested"),
    ],
)
def test_when_rejects_a_list_holding_a_non_cown(items, pattern):
    with pytest.raises(TypeError, match=pattern):
        when(items(Cown(0)))


def test_when_rejects_keyword_arguments():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'cown'"):
        when(cown=Cown(0))


@pytest.mark.parametrize(
    ("target", "pattern"),
    [
        pytest.param(42, r"@when\(\.\.\.\) decorates a function, not an int \(42\)", id="int"),
        pytest.param(None, r"@when\(\.\.\.\) decorates a function, not a NoneType", id="None"),
        pytest.param("f", r"@when\(\.\.\.\) decorates a function, not a str", id="str"),
    ],
)
def test_when_decorating_a_non_callable(target, pattern):
    with pytest.raises(TypeError, match=pattern):
        when(Cown(0))(target)
    assert _boc._state()["in_flight"] == 0


def test_when_refuses_an_async_def_whose_body_would_never_run():
    with pytest.raises(TypeError, match=r"cannot schedule the async function .*refresh.*body would never run"):

        @when(Cown(0))
        async def refresh(cown):
            cown.value += 1

    assert _boc._state()["in_flight"] == 0


@pytest.mark.parametrize(
    "kind",
    ["generator function", "async generator function"],
)
def test_when_refuses_generator_functions_whose_body_would_never_run(kind):
    if kind == "generator function":

        def produce(cown):
            yield cown.value

    else:

        async def produce(cown):
            yield cown.value

    with pytest.raises(TypeError, match=rf"cannot schedule the {kind} .*produce.*body would never run"):
        when(Cown(0))(produce)
    assert _boc._state()["in_flight"] == 0


def test_a_body_with_the_wrong_arity_fails_on_its_result_cown():
    @when(Cown(0))
    def takes_nothing():
        return 1

    boc.wait()
    with pytest.raises(TypeError, match=r"takes_nothing\(\) takes 0 positional arguments but 1 was given"):
        takes_nothing.unwrap()


# --- pump(): bounds and flags ----------------------------------------------


@pytest.mark.parametrize(
    ("bound", "error", "pattern"),
    [
        pytest.param(0, ValueError, r"max_behaviors must be a positive int .*not 0", id="zero"),
        pytest.param(-1, ValueError, r"max_behaviors must be a positive int .*not -1", id="negative"),
        pytest.param(-(2**80), ValueError, r"max_behaviors must be a positive int", id="huge-negative"),
        pytest.param(True, TypeError, r"max_behaviors must be a positive int .*not bool", id="True"),
        pytest.param(False, TypeError, r"max_behaviors must be a positive int .*not bool", id="False"),
        pytest.param(1.0, TypeError, r"max_behaviors must be a positive int .*not float", id="float"),
        pytest.param("3", TypeError, r"max_behaviors must be a positive int .*not str", id="str"),
    ],
)
def test_pump_rejects_a_bad_max_behaviors(bound, error, pattern):
    with pytest.raises(error, match=pattern):
        boc.pump(max_behaviors=bound)


@pytest.mark.parametrize(
    ("bound", "error", "pattern"),
    [
        pytest.param(0, ValueError, r"not 0$", id="zero"),
        pytest.param(0.0, ValueError, r"not 0\.0$", id="zero-float"),
        pytest.param(-5, ValueError, r"not -5$", id="negative"),
        pytest.param(True, TypeError, r"not bool$", id="bool"),
        pytest.param("5", TypeError, r"not str$", id="str"),
        pytest.param(math.nan, ValueError, r"not nan$", id="nan"),
        pytest.param(-(10**400), ValueError, r"not -10{400}$", id="-huge-int"),
        pytest.param(-math.inf, ValueError, r"not -inf$", id="-inf"),
    ],
)
def test_pump_rejects_a_bad_deadline(bound, error, pattern):
    with pytest.raises(error, match=r"deadline_ms must be a positive number of milliseconds .*" + pattern):
        boc.pump(deadline_ms=bound)


@pytest.mark.parametrize("flag", [1, "yes", 0.0], ids=["int", "str", "float"])
def test_pump_rejects_a_non_bool_raise_on_error(flag):
    with pytest.raises(TypeError, match=r"raise_on_error must be a bool, not " + type(flag).__name__):
        boc.pump(raise_on_error=flag)


def test_pump_rejects_extra_arguments():
    with pytest.raises(TypeError, match=r"takes from 0 to 3 positional arguments but 4 were given"):
        boc.pump(1, 2, False, 4)


def test_pump_off_the_main_thread_raises_in_that_thread():
    pinned = PinnedCown(0)

    @when(pinned)
    def waiting(pinned):
        return "pumped on main"

    error = run_in_thread(boc.pump)
    assert isinstance(error, RuntimeError), error
    assert "pump() must be called on the main thread" in str(error)
    boc.wait()
    assert waiting.value == "pumped on main"


def test_pump_inside_a_worker_behavior():
    @when(Cown(0))
    def pumps(cown):
        boc.pump()

    boc.wait()
    error = result_error(pumps)
    assert isinstance(error, RuntimeError)
    assert "pump() must be called on the main thread" in str(error)


def test_pump_nested_inside_a_main_side_body():
    @when(PinnedCown(0))
    def pumps(pinned):
        boc.pump()

    boc.pump()
    assert pumps.exception
    with pytest.raises(RuntimeError, match=r"pump\(\) cannot be called from inside a behavior running on the main thread \(pumping is not re-entrant\)"):
        pumps.unwrap()
    boc.wait()


def test_pump_from_the_waker_callback_is_reported_not_fatal():
    reported = []
    seen = threading.Event()

    def hook(unraisable):
        reported.append(unraisable.exc_value)
        seen.set()

    previous = sys.unraisablehook
    sys.unraisablehook = hook
    try:
        boc.set_pump_waker(boc.pump)  # runs on the waker's own thread
        when(PinnedCown(0))(lambda pinned: None)
        assert seen.wait(PATIENCE)
    finally:
        boc.set_pump_waker(None)
        sys.unraisablehook = previous
    boc.wait()
    assert isinstance(reported[0], RuntimeError)
    assert "pump() must be called on the main thread" in str(reported[0])


# --- wait / quiesce / stop / start inside a behavior -----------------------


@pytest.mark.parametrize("operation", ["wait", "quiesce", "stop"])
@pytest.mark.parametrize("side", ["worker", "main"])
def test_waiting_inside_a_behavior(operation, side):
    cown = Cown(0) if side == "worker" else PinnedCown(0)

    @when(cown)
    def waits(cown):
        getattr(boc, operation)()

    boc.wait()
    error = result_error(waits)
    assert isinstance(error, RuntimeError)
    assert f"{operation}() cannot be called from inside a behavior: it would wait for the behavior itself" in str(error)


@pytest.mark.parametrize("workers", [None, 3])
def test_start_inside_a_behavior(workers):
    @when(Cown(0))
    def starts(cown):
        boc.start(workers=workers)

    boc.wait()
    with pytest.raises(RuntimeError, match=r"start\(\) cannot be called from inside a behavior"):
        starts.unwrap()


# --- PinnedCown off the main thread ----------------------------------------


def test_pinned_cown_built_off_main():
    error = run_in_thread(lambda: PinnedCown(0))
    assert isinstance(error, RuntimeError), error
    assert "a PinnedCown can only be created on the main thread" in str(error)


def test_pinned_cown_built_inside_a_worker_behavior():
    @when(Cown(0))
    def builds(cown):
        return PinnedCown(0)

    boc.wait()
    with pytest.raises(RuntimeError, match=r"a PinnedCown can only be created on the main thread"):
        builds.unwrap()


def _write_value(cown):
    cown.value = 2


@pytest.mark.parametrize(
    ("access", "what"),
    [
        pytest.param(lambda c: c.value, "value", id="read"),
        pytest.param(_write_value, "value", id="write"),
        pytest.param(lambda c: c.exception, "exception flag", id="exception"),
        pytest.param(lambda c: c.unwrap(), "value", id="unwrap"),
    ],
)
def test_pinned_value_off_main(access, what):
    pinned = PinnedCown(1)
    error = run_in_thread(lambda: access(pinned))
    assert isinstance(error, RuntimeError), error
    assert f"the {what} of PinnedCown #{hash(pinned)} can only be reached on the main thread" in str(error)
    assert pinned.value == 1


def test_pinned_value_read_inside_a_worker_behavior():
    pinned = PinnedCown(1)

    @when(Cown(0))
    def peeks(cown):
        return pinned.value

    boc.wait()
    with pytest.raises(RuntimeError, match=rf"of PinnedCown #{hash(pinned)} can only be reached on the main thread"):
        peeks.unwrap()


# --- .value outside what the caller holds ----------------------------------


def _set_busy(cown):
    cown.value = 5


@pytest.mark.parametrize(
    ("access", "what"),
    [
        pytest.param(lambda c: c.value, "value", id="read"),
        pytest.param(_set_busy, "value", id="write"),
        pytest.param(lambda c: c.exception, "exception flag", id="exception"),
        pytest.param(lambda c: c.unwrap(), "value", id="unwrap"),
    ],
)
def test_value_of_a_busy_cown_outside_a_behavior(access, what):
    cown = Cown(0)
    release = blocked_behavior(cown)
    try:
        with pytest.raises(RuntimeError, match=rf"Cown #{hash(cown)} is busy: .*its {what} cannot be reached"):
            access(cown)
    finally:
        release.set()
    boc.wait()
    assert cown.value == 0


def test_value_of_a_result_cown_before_its_behavior_ran():
    blocker = Cown(0)
    release = blocked_behavior(blocker)
    try:

        @when(blocker)
        def later(blocker):
            return 1

        with pytest.raises(RuntimeError, match=rf"Cown #{hash(later)} is busy"):
            later.value
    finally:
        release.set()
    boc.wait()
    assert later.value == 1


@pytest.mark.parametrize("side", ["worker", "main"])
def test_value_inside_a_behavior_of_a_cown_not_in_its_request_set(side):
    held = Cown(0) if side == "worker" else PinnedCown(0)
    other = Cown(1)

    @when(held)
    def reaches(held):
        return other.value

    boc.wait()
    with pytest.raises(RuntimeError, match=rf"Cown #{hash(other)} is not in the request set of the running behavior"):
        reaches.unwrap()


def test_reading_a_nested_behaviors_result_inside_the_scheduling_behavior():
    @when(Cown(0))
    def outer(cown):
        inner = when(Cown(1))(lambda c: c.value)
        return inner.value

    boc.wait()
    with pytest.raises(RuntimeError, match=r"is not in the request set of the running behavior.*Add it to the @when"):
        outer.unwrap()


# --- attributes ------------------------------------------------------------


def test_deleting_value():
    cown = Cown(1)
    with pytest.raises(AttributeError, match=rf"the value of Cown #{hash(cown)} cannot be deleted.*Assign None instead"):
        del cown.value
    cown.value = None  # what the message suggests works
    assert cown.value is None


@pytest.mark.parametrize("name", ["acquired", "exception"])
def test_setting_a_read_only_attribute(name):
    with pytest.raises(AttributeError, match=rf"attribute '{name}' of 'boc.Cown' objects is not writable"):
        setattr(Cown(0), name, True)


def test_setting_an_unknown_attribute():
    with pytest.raises(AttributeError, match=r"'boc.Cown' object has no attribute 'vlaue'"):
        Cown(0).vlaue = 1


# --- copying and pickling --------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "how"),
    [
        pytest.param(pickle.dumps, "pickled", id="pickle"),
        pytest.param(lambda p: pickle.dumps(p, protocol=0), "pickled", id="pickle-protocol-0"),
        pytest.param(copy.copy, r"copied \(copy\.copy\)", id="copy"),
        pytest.param(copy.deepcopy, r"deep-copied \(copy\.deepcopy\)", id="deepcopy"),
        pytest.param(lambda p: copy.deepcopy({"widget": [p]}), r"deep-copied \(copy\.deepcopy\)", id="deepcopy-container"),
    ],
)
def test_copying_a_pinned_cown(operation, how):
    with pytest.raises(TypeError, match=rf"a PinnedCown cannot be {how}: its value must stay on the main thread"):
        operation(PinnedCown(0))


def test_pickling_a_cown():
    cown = Cown([1, 2])
    with pytest.raises(TypeError, match=rf"Cown #{hash(cown)} cannot be pickled: a cown is a handle .*Pickle its value instead"):
        pickle.dumps(cown)


def test_subclassing_pinned_cown():
    with pytest.raises(TypeError, match=r"type 'boc.PinnedCown' is not an acceptable base type"):

        class Widget(PinnedCown):
            pass


# --- construction ----------------------------------------------------------


@pytest.mark.parametrize("cls", [Cown, PinnedCown])
def test_a_cown_without_a_value(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__}.__new__\(\) missing 1 required positional argument: 'value'"):
        cls()


def test_a_cown_with_two_values():
    with pytest.raises(TypeError, match=r"Cown.__new__\(\) takes 1 positional arguments but 2 were given"):
        Cown(1, 2)


def test_a_cown_subclass_whose_init_takes_other_arguments():
    class Account(Cown):
        def __init__(self, owner, balance):
            super().__init__(balance)
            self.owner = owner

    with pytest.raises(TypeError, match=r"Cown.__new__\(\) takes 1 positional arguments but 2 were given"):
        Account("ada", 10)

    class Fixed(Cown):  # the fix: give __new__ the same signature
        def __new__(cls, owner, balance):
            return super().__new__(cls, balance)

        def __init__(self, owner, balance):
            self.owner = owner

    assert Fixed("ada", 10).value == 10


def test_bypassing_pinned_cown_construction():
    with pytest.raises(TypeError, match=r"Cown.__new__\(boc.PinnedCown\) is not safe, use boc.PinnedCown.__new__\(\)"):
        Cown.__new__(PinnedCown, 0)


def test_ordering_a_cown_against_a_non_cown():
    with pytest.raises(TypeError, match=r"'<' not supported between instances of 'boc.Cown' and 'int'"):
        Cown(0) < 1  # noqa: B015


# --- start() ---------------------------------------------------------------


def test_start_twice_with_different_worker_counts():
    boc.wait()
    boc.start(workers=1)
    with pytest.raises(RuntimeError, match=r"already running with 1 workers?, so it cannot start with 2\. Call boc\.wait\(\)"):
        boc.start(workers=2)
    boc.start(workers=1)  # the same count is fine
    boc.start()  # and so is no count
    boc.wait()
    boc.start(workers=2)
    assert _boc._state()["workers"] == 2
    boc.wait()


@pytest.mark.parametrize(
    ("workers", "error", "pattern"),
    [
        pytest.param(-1, ValueError, r"workers must be between 0 and 1024, not -1", id="negative"),
        pytest.param(10**6, ValueError, r"workers must be between 0 and 1024, not 1000000", id="million"),
        pytest.param(10**30, ValueError, r"workers must be between 0 and 1024", id="huge"),
        pytest.param(True, TypeError, r"workers must be an int \(or None for the default\), not bool", id="bool"),
        pytest.param("2", TypeError, r"workers must be an int .*not str", id="str"),
        pytest.param(2.0, TypeError, r"workers must be an int .*not float", id="float"),
    ],
)
def test_start_rejects_a_bad_worker_count(workers, error, pattern):
    with pytest.raises(error, match=pattern):
        boc.start(workers=workers)
    assert not _boc._state()["running"]


# --- wait() / quiesce(): timeouts ------------------------------------------


@pytest.mark.parametrize("operation", ["wait", "quiesce"])
@pytest.mark.parametrize(
    ("timeout", "error", "pattern"),
    [
        pytest.param(-1, ValueError, r"timeout must be a number of seconds >= 0 \(or None to wait forever\), not -1", id="negative"),
        pytest.param(math.nan, ValueError, r"timeout must be a number of seconds >= 0 .*not nan", id="nan"),
        pytest.param(-math.inf, ValueError, r"timeout must be a number of seconds >= 0 .*not -inf", id="-inf"),
        pytest.param("x", TypeError, r"timeout must be a number of seconds \(or None to wait forever\), not str", id="str"),
        pytest.param(True, TypeError, r"timeout must be a number of seconds .*not bool", id="bool"),
    ],
)
def test_wait_rejects_a_bad_timeout(operation, timeout, error, pattern):
    with pytest.raises(error, match=pattern):
        getattr(boc, operation)(timeout=timeout)


@pytest.mark.parametrize("operation", ["wait", "quiesce"])
def test_wait_times_out_naming_what_is_in_flight(operation):
    release = blocked_behavior(Cown(0))
    try:
        with pytest.raises(TimeoutError, match=rf"{operation}\(\) timed out after 0\.050 s with 1 behaviors? still scheduled or running"):
            getattr(boc, operation)(timeout=0.05)
    finally:
        release.set()
    boc.wait()


def test_wait_off_main_times_out_on_pinned_work_nobody_pumps():
    @when(PinnedCown(0))
    def redraw(pinned):
        return 1

    error = run_in_thread(lambda: boc.wait(timeout=0.05))
    assert isinstance(error, TimeoutError), error
    assert "ready main-side behavior" in str(error)
    assert "pump()" in str(error)
    boc.wait()
    assert redraw.value == 1


def test_ctrl_c_interrupts_a_blocked_wait():
    release = threading.Event()
    try:
        with pytest.raises(KeyboardInterrupt):

            @when(Cown(0))
            def _(cown):
                release.wait(PATIENCE)

            threading.Timer(0.1, _thread.interrupt_main).start()
            boc.wait()
    finally:
        release.set()
    boc.wait()


# --- the watchdog and the waker --------------------------------------------


@pytest.mark.parametrize(
    ("warn_ms", "error", "pattern"),
    [
        pytest.param(0, ValueError, r"not 0$", id="zero"),
        pytest.param(-5, ValueError, r"not -5$", id="negative"),
        pytest.param(math.nan, ValueError, r"not nan$", id="nan"),
        pytest.param("x", TypeError, r"not str$", id="str"),
        pytest.param(True, TypeError, r"not bool$", id="bool"),
    ],
)
def test_set_pump_watchdog_rejects_a_bad_threshold(warn_ms, error, pattern):
    with pytest.raises(error, match=r"warn_ms must be a positive number of milliseconds \(or None to turn the watchdog off\), " + pattern):
        boc.set_pump_watchdog(warn_ms=warn_ms)


@pytest.mark.parametrize("kwargs", [{"warn_ms": 1000}, {}], ids=["with-threshold", "alone"])
def test_set_pump_watchdog_rejects_a_non_callable_sink(kwargs):
    with pytest.raises(TypeError, match=r"on_starve must be a callable taking the message \(or None for the boc logger\), not int"):
        boc.set_pump_watchdog(on_starve=42, **kwargs)


@pytest.mark.parametrize("waker", [42, "wake"], ids=["int", "str"])
def test_set_pump_waker_rejects_a_non_callable(waker):
    with pytest.raises(TypeError, match=r"set_pump_waker\(\) takes a callable with no arguments \(or None to remove it\), not "):
        boc.set_pump_waker(waker)


# --- exceptions from bodies ------------------------------------------------


def test_unwrap_reraises_the_very_exception_the_body_raised():
    raised = []

    @when(Cown(0))
    def fails(cown):
        error = ValueError("bad input")
        raised.append(error)
        raise error

    boc.wait()
    with pytest.raises(ValueError, match=r"^bad input$") as caught:
        fails.unwrap()
    assert caught.value is raised[0]
    assert fails.value is raised[0]


@pytest.mark.parametrize("error_type", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_a_base_exception_on_a_worker_lands_on_the_result_cown(error_type):
    cown = Cown(0)

    @when(cown)
    def interrupted(cown):
        raise error_type("from a worker")

    @when(cown)
    def after(cown):
        return "still runs"

    boc.wait()
    assert isinstance(result_error(interrupted), error_type)
    with pytest.raises(error_type, match="from a worker"):
        interrupted.unwrap()
    assert after.value == "still runs"


@pytest.mark.parametrize("driver", ["pump", "wait"])
def test_a_base_exception_from_a_main_side_body_propagates(driver):
    pinned = PinnedCown(0)

    @when(pinned)
    def interrupted(pinned):
        raise KeyboardInterrupt("from a main-side body")

    @when(pinned)
    def after(pinned):
        return "ran later"

    with pytest.raises(KeyboardInterrupt, match="from a main-side body"):
        getattr(boc, driver)()
    assert _boc._state()["main_pending"] == 1  # the rest stay queued
    boc.wait()
    assert after.value == "ran later"
    assert isinstance(result_error(interrupted), KeyboardInterrupt)


def test_raise_on_error_raises_the_first_failure_and_keeps_the_rest():
    pinned = PinnedCown(0)

    @when(pinned)
    def fails(pinned):
        raise ValueError("first failure")

    @when(pinned)
    def after(pinned):
        return 2

    with pytest.raises(ValueError, match="first failure"):
        boc.pump(raise_on_error=True)
    report = boc.pump()
    assert (report.executed, report.raised) == (1, 0)
    assert after.value == 2
    assert isinstance(result_error(fails), ValueError)


def test_an_exception_never_retrieved_is_logged(caplog):
    caplog.set_level(logging.ERROR, logger="boc")

    @when(Cown(0))
    def forgotten(cown):
        raise ValueError("nobody looked")

    boc.wait()
    del forgotten
    gc.collect()
    boc.wait()  # reports what was dropped
    messages = [record.getMessage() for record in caplog.records if record.name == "boc"]
    assert any("forgotten" in message and "was never retrieved" in message for message in messages), messages


# --- processes -------------------------------------------------------------


def fork_and_report(work: Callable[[], object]) -> str:
    """Forks; the child runs `work()` and reports its `repr` (or the error)
    through a pipe, then ends without returning into pytest."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_end, repr(work()).encode())
        except BaseException as error:  # noqa: BLE001
            os.write(write_end, f"{type(error).__name__}: {error}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read().decode()
    os.waitpid(pid, 0)
    return output


def add_one_in_a_behavior(cown: Cown) -> int:
    result = when(cown)(lambda cown: cown.value + 1)
    boc.wait(timeout=PATIENCE)
    return result.value


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork with threads running
def test_a_child_forked_while_the_pool_runs_gets_a_fresh_pool():
    boc.start(workers=1)  # its threads do not survive the fork
    # Fork once the worker has started (it ran a behavior): on the ASan
    # build, a worker still starting at the fork may be inside the
    # sanitizer's allocator, which GCC 12's AddressSanitizer does not lock
    # across fork(), so the child's first allocation of that size hangs
    # (seen in CI, and under gdb). The next test forks as workers start.
    when(Cown(None))(lambda _: boc.send("started", True))
    assert boc.receive("started", timeout=PATIENCE) == ("started", True)
    cown = Cown(20)
    assert fork_and_report(lambda: add_one_in_a_behavior(cown)) == "21"
    boc.wait()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork with threads running
def test_main_side_work_queued_at_a_fork_runs_in_the_parent_only():
    pinned = PinnedCown(1)
    queued = when(pinned)(lambda pinned: pinned.value + 1)  # ready, not pumped

    def in_the_child() -> tuple[int, int]:
        report = boc.pump()
        return report.executed, report.pending

    assert fork_and_report(in_the_child) == "(0, 0)"
    assert boc.pump().executed == 1
    assert queued.value == 2


def fork_and_wait(work: Callable[[], bool]) -> str:
    """Forks; the child exits 0 if `work()` is true, else 1. Says how the
    child ended, or that it hung (then kills it)."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if work() else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return f"status {os.waitstatus_to_exitcode(status)}"
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.skipif(ASAN, reason="GCC 12's AddressSanitizer does not lock its allocator across fork()")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork with threads running
def test_a_child_forked_as_pump_wakers_come_and_go_runs_its_work():
    # Each replaced waker's thread dropped its callback detached, into
    # PyO3's deferred-decref list, under a lock that every call into the
    # extension takes: a fork in between left the child that lock held
    # (it hung in the fork hook, 2 forks in 300). Found by a hostile-user
    # survey. Now nothing of boc drops a Python reference detached.
    stop = threading.Event()

    def replace_the_waker() -> None:
        while not stop.is_set():
            boc.set_pump_waker(lambda: None)

    churn = threading.Thread(target=replace_the_waker)
    churn.start()
    try:
        cown = Cown(20)
        outcomes = [fork_and_wait(lambda: add_one_in_a_behavior(cown) == 21) for _ in range(100)]
    finally:
        stop.set()
        churn.join()
        boc.set_pump_waker(None)
    assert set(outcomes) == {"status 0"}, outcomes


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.skipif(ASAN, reason="GCC 12's AddressSanitizer does not lock its allocator across fork()")
@pytest.mark.skipif(
    FREE_THREADED,
    reason="free-threaded 3.13: a thread creating its thread state at a fork can leave the child "
    "CPython's stop-the-world lock held (the child's workers then hang in _Py_qsbr_reserve)",
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork with threads running
def test_a_child_forked_as_workers_start_and_receivers_wake_runs_its_work():
    # Workers register as they start, and receivers re-take the mailbox's
    # lock as they wake, detached: a fork in the middle left the child that
    # lock held by a thread it does not have, and its workers (or its
    # receive) hung. The fork handlers hold those locks across the fork.
    stop = threading.Event()

    def wake_up_often() -> None:
        while not stop.is_set():
            boc.receive("nobody sends this", timeout=1e-4)

    def in_the_child() -> tuple[int, object]:
        boc.send("forked", "mail")
        return add_one_in_a_behavior(cown), boc.receive("forked", timeout=PATIENCE)

    receiver = threading.Thread(target=wake_up_often)
    receiver.start()
    try:
        cown = Cown(20)
        for _ in range(25):
            boc.start(workers=8)
            assert fork_and_report(in_the_child) == "(21, ('forked', 'mail'))"
            boc.wait()
    finally:
        stop.set()
        receiver.join()


# --- messages and the noticeboard --------------------------------------------

# The only tags and noticeboard keys the tests below use; `clean_messages`
# checks each test took back what it sent and deleted what it wrote.
MISUSE_TAG = "misuse-tag"
MISUSE_KEY = "misuse-key"
KEY_OF_254_BYTES = "é" * 127  # 2 UTF-8 bytes each


@pytest.fixture
def clean_messages():
    yield
    left_queued = boc.drain(MISUSE_TAG)
    left_on_board = [key for key in (MISUSE_KEY, KEY_OF_254_BYTES) if key in boc.noticeboard()]
    for key in left_on_board:
        boc.notice_delete(key)
    assert left_queued == [], "the test left messages queued"
    assert left_on_board == [], "the test left keys on the noticeboard"


NOTICEBOARD_CALLS = {
    "write": lambda key: boc.notice_write(key, "value"),
    "read": lambda key: boc.notice_read(key),
    "update": lambda key: boc.notice_update(key, lambda value: value),
    "delete": lambda key: boc.notice_delete(key),
}


@pytest.mark.usefixtures("clean_messages")
@pytest.mark.parametrize("operation", list(NOTICEBOARD_CALLS))
@pytest.mark.parametrize(
    ("key", "error", "pattern"),
    [
        pytest.param(1, TypeError, r"^a noticeboard key must be a str, not int$", id="int"),
        pytest.param(None, TypeError, r"^a noticeboard key must be a str, not NoneType$", id="None"),
        pytest.param(b"key", TypeError, r"^a noticeboard key must be a str, not bytes$", id="bytes"),
        pytest.param("", ValueError, r"^a noticeboard key must not be empty$", id="empty"),
        pytest.param(
            "k" * 256, ValueError, r"^a noticeboard key must be at most 255 bytes in UTF-8, not 256 \(k{20}\.\.\.\)$", id="256-ascii"
        ),
        pytest.param(
            "é" * 128, ValueError, r"^a noticeboard key must be at most 255 bytes in UTF-8, not 256 \(é{20}\.\.\.\)$", id="256-utf8"
        ),
    ],
)
def test_noticeboard_rejects_a_bad_key(operation, key, error, pattern):
    with pytest.raises(error, match=pattern):
        NOTICEBOARD_CALLS[operation](key)


@pytest.mark.usefixtures("clean_messages")
def test_a_noticeboard_key_of_254_utf8_bytes_is_fine():
    assert len(KEY_OF_254_BYTES.encode()) == 254
    boc.notice_write(KEY_OF_254_BYTES, 1)
    boc.notice_update(KEY_OF_254_BYTES, lambda value: value + 1)
    assert boc.notice_read(KEY_OF_254_BYTES) == 2
    boc.notice_delete(KEY_OF_254_BYTES)
    assert KEY_OF_254_BYTES not in boc.noticeboard()


@pytest.mark.usefixtures("clean_messages")
@pytest.mark.parametrize("function", [42, None], ids=["int", "None"])
def test_notice_update_rejects_a_non_callable(function):
    with pytest.raises(
        TypeError,
        match=r"^notice_update\(\) needs a callable taking the current value and returning the new one, not "
        + type(function).__name__
        + "$",
    ):
        boc.notice_update(MISUSE_KEY, function)
    assert MISUSE_KEY not in boc.noticeboard()


@pytest.mark.usefixtures("clean_messages")
def test_an_exception_raised_by_the_update_function_propagates_and_changes_nothing():
    def fails(value):
        raise ValueError(f"cannot update {value!r}")

    boc.notice_write(MISUSE_KEY, [1, 2])
    with pytest.raises(ValueError, match=r"^cannot update \[1, 2\]$"):
        boc.notice_update(MISUSE_KEY, fails)
    assert boc.notice_read(MISUSE_KEY) == [1, 2]
    boc.notice_delete(MISUSE_KEY)
    with pytest.raises(ValueError, match=r"^cannot update 'the default'$"):
        boc.notice_update(MISUSE_KEY, fails, default="the default")
    assert MISUSE_KEY not in boc.noticeboard(), "an absent key stays absent"


@pytest.mark.usefixtures("clean_messages")
@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda: boc.notice_write(MISUSE_KEY, 0), id="write"),
        pytest.param(lambda: boc.notice_delete(MISUSE_KEY), id="delete"),
        pytest.param(lambda: boc.notice_update(MISUSE_KEY, lambda value: 0), id="update"),
    ],
)
def test_an_update_function_that_writes_its_own_key(write):
    calls = []

    def function(value):
        calls.append(value)
        write()
        return value + 1

    boc.notice_write(MISUSE_KEY, 1)
    with pytest.raises(
        RuntimeError,
        match=r'^the function given to notice_update\("misuse-key", \.\.\.\) cannot write "misuse-key" itself: '
        r"every write to the key makes the update call the function again, so it would never finish\. "
        r"Return the new value \(or boc\.REMOVED\) from the function instead\.$",
    ):
        boc.notice_update(MISUSE_KEY, function)
    assert calls == [1], "the function ran once"
    assert boc.notice_read(MISUSE_KEY) == 1, "the board is unchanged"
    boc.notice_delete(MISUSE_KEY)


@pytest.mark.usefixtures("clean_messages")
@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        pytest.param("assign", r"^'_Noticeboard' object does not support item assignment$", id="assign"),
        pytest.param("delete", r"^'_Noticeboard' object does not support item deletion$", id="delete"),
    ],
)
def test_the_noticeboard_mapping_is_read_only(change, pattern):
    boc.notice_write(MISUSE_KEY, 1)
    board = boc.noticeboard()
    with pytest.raises(TypeError, match=pattern):
        if change == "assign":
            board[MISUSE_KEY] = 2  # type: ignore[index]
        else:
            del board[MISUSE_KEY]  # type: ignore[attr-defined]
    assert boc.notice_read(MISUSE_KEY) == 1
    boc.notice_delete(MISUSE_KEY)


MESSAGE_CALLS = {
    "receive": lambda tags: boc.receive(tags, timeout=0),
    "drain": lambda tags: boc.drain(tags),
}


@pytest.mark.usefixtures("clean_messages")
@pytest.mark.parametrize(
    ("tag", "error", "pattern"),
    [
        pytest.param(1, TypeError, r"^tag must be a str, not int$", id="int"),
        pytest.param(None, TypeError, r"^tag must be a str, not NoneType$", id="None"),
        pytest.param("", ValueError, r"^tag must not be empty$", id="empty"),
        pytest.param("t" * 256, ValueError, r"^tag must be at most 255 bytes in UTF-8, not 256 \(t{20}\.\.\.\)$", id="256"),
        pytest.param([MISUSE_TAG], TypeError, r"^tag must be a str, not list$", id="list"),
        pytest.param({MISUSE_TAG: 1}, TypeError, r"^tag must be a str, not dict$", id="dict"),
    ],
)
def test_send_rejects_a_bad_tag(tag, error, pattern):
    with pytest.raises(error, match=pattern):
        boc.send(tag, "contents")


@pytest.mark.usefixtures("clean_messages")
@pytest.mark.parametrize("operation", ["receive", "drain"])
@pytest.mark.parametrize(
    ("tags", "error", "pattern"),
    [
        pytest.param(1, TypeError, r"^tags must be a str or a list or tuple of str, not int$", id="int"),
        pytest.param(None, TypeError, r"^tags must be a str or a list or tuple of str, not NoneType$", id="None"),
        pytest.param("", ValueError, r"^a tag must not be empty$", id="empty"),
        pytest.param("t" * 256, ValueError, r"^a tag must be at most 255 bytes in UTF-8, not 256 \(t{20}\.\.\.\)$", id="256"),
        pytest.param([], ValueError, r"^tags must name at least one tag$", id="empty-list"),
        pytest.param([MISUSE_TAG, 1], TypeError, r"^each tag must be a str, not int$", id="list-holding-int"),
        pytest.param((MISUSE_TAG, ""), ValueError, r"^each tag must not be empty$", id="tuple-holding-empty"),
        pytest.param(
            [MISUSE_TAG, "t" * 256], ValueError, r"^each tag must be at most 255 bytes in UTF-8, not 256", id="list-holding-256"
        ),
        pytest.param({MISUSE_TAG: 1}, TypeError, r"^tags must be a str or a list or tuple of str, not dict$", id="dict"),
        pytest.param({MISUSE_TAG}, TypeError, r"^tags must be a str or a list or tuple of str, not set$", id="set"),
    ],
)
def test_receive_and_drain_reject_bad_tags(operation, tags, error, pattern):
    boc.send(MISUSE_TAG, "stays queued")
    with pytest.raises(error, match=pattern):
        MESSAGE_CALLS[operation](tags)
    assert boc.drain(MISUSE_TAG) == [(MISUSE_TAG, "stays queued")], "nothing was taken"


@pytest.mark.usefixtures("clean_messages")
@pytest.mark.parametrize(
    ("timeout", "error", "pattern"),
    [
        pytest.param(
            -1, ValueError, r"^timeout must be a number of seconds >= 0 \(or None to wait forever\), not -1$", id="negative"
        ),
        pytest.param(-math.inf, ValueError, r"^timeout must be a number of seconds >= 0 .*not -inf$", id="-inf"),
        pytest.param(math.nan, ValueError, r"^timeout must be a number of seconds >= 0 .*not nan$", id="nan"),
        pytest.param(
            "1",
            TypeError,
            r"^timeout must be a number of seconds \(or None to wait forever\), not str$",
            id="str",
        ),
        pytest.param(True, TypeError, r"^timeout must be a number of seconds .*not bool$", id="bool"),
    ],
)
def test_receive_rejects_a_bad_timeout(timeout, error, pattern):
    boc.send(MISUSE_TAG, "stays queued")
    with pytest.raises(error, match=pattern):
        boc.receive(MISUSE_TAG, timeout=timeout)
    assert boc.drain(MISUSE_TAG) == [(MISUSE_TAG, "stays queued")], "nothing was taken"


@pytest.mark.usefixtures("clean_messages")
@pytest.mark.parametrize("timeout", [None, 0, 0.0, 1e300, math.inf], ids=["None", "zero", "zero-float", "huge", "inf"])
def test_receive_timeouts_that_are_fine(timeout):
    boc.send(MISUSE_TAG, "waiting")  # sent first: even "forever" returns at once
    assert boc.receive(MISUSE_TAG, timeout=timeout) == (MISUSE_TAG, "waiting")


@pytest.mark.usefixtures("clean_messages")
@pytest.mark.parametrize("after", [5, "later"], ids=["int", "str"])
def test_receive_rejects_an_after_that_is_not_callable(after):
    boc.send(MISUSE_TAG, "stays queued")
    with pytest.raises(
        TypeError,
        match=r"^after must be a callable taking no arguments \(or None\), not " + type(after).__name__ + "$"
    ):
        boc.receive(MISUSE_TAG, timeout=0, after=after)
    assert boc.drain(MISUSE_TAG) == [(MISUSE_TAG, "stays queued")], "nothing was taken"


@pytest.mark.usefixtures("clean_messages")
def test_an_exception_raised_by_after_propagates():
    def after():
        raise LookupError("nothing came")

    with pytest.raises(LookupError, match=r"^nothing came$"):
        boc.receive(MISUSE_TAG, timeout=0.01, after=after)


@pytest.mark.usefixtures("clean_messages")
def test_ctrl_c_interrupts_a_blocked_receive():
    timer = threading.Timer(0.1, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            boc.receive(MISUSE_TAG, timeout=PATIENCE)
    finally:
        timer.cancel()


@pytest.mark.parametrize("timeout", [math.inf, 1e300, 10**400], ids=["inf", "huge-float", "huge-int"])
def test_a_timeout_too_large_to_represent_waits_forever(timeout):
    # Nothing is in flight: wait returns at once, whatever the timeout.
    boc.wait(timeout=timeout)
    boc.quiesce(timeout=timeout)
    boc.send("huge-timeout", 1)
    assert boc.receive("huge-timeout", timeout=timeout) == ("huge-timeout", 1)
