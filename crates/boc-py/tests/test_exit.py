"""The exit matrix: what a program does when its interpreter exits while boc
still has work, threads or errors (SPEC section 5, threading rule 5,
"Finalization"; docs/python.md, "Interpreter exit").

Each case is a small program run as a subprocess of this interpreter
(`helpers.run_program`, `helpers.Program`) and judged on its exit status,
stdout and stderr. The exit-time stop is boc's atexit handler: it runs what
is still scheduled (main-side work on the main thread), then stops the
workers. While it runs, `@when` and `start()` from a daemon thread (one that
was running when it began) raise `RuntimeError`; other calls go on. Once it
is over, a daemon thread that enters boc, or whose wait in boc ends, parks
there until the process ends. Nothing crashes, hangs or reaches a thread
that CPython is finalizing.

Most cases race with the interpreter's finalization, so each runs
`helpers.REPEAT` times (`BOC_REPEAT`: 2 by default, 20 under
`cargo xtask soak`), every run a test of its own: a soak reports how many
runs of which case failed.
"""

from __future__ import annotations

import re
import signal
import textwrap
import time

import pytest
from helpers import REPEAT, Finished, Program, run_program

#: Parametrizes a test over `REPEAT` runs, reported separately.
repeated = pytest.mark.parametrize("run", range(1, REPEAT + 1), ids=lambda run: f"run{run}")

#: How a Python process that a Ctrl-C ended exits: killed by SIGINT, as
#: CPython does after an uncaught KeyboardInterrupt, or 130 (128 + SIGINT),
#: as shells report it.
INTERRUPTED = (-signal.SIGINT, 128 + signal.SIGINT)

#: Prefix of the programs whose test reads logger "boc"'s records: each
#: record on stderr starts with the logger's name.
LOG_WITH_NAMES = """
    import logging
    logging.basicConfig(format="%(name)s %(levelname)s: %(message)s")
"""


def expect_status(finished: Finished, *allowed: int) -> None:
    __tracebackhide__ = True
    expected = " or ".join(map(str, allowed))
    finished.expect(finished.returncode in allowed, f"expected exit status {expected}")


def expect_clean_exit(finished: Finished, stdout: str) -> None:
    """Status 0, exactly these `stdout` lines, nothing on stderr."""
    __tracebackhide__ = True
    expect_status(finished, 0)
    expected = "".join(line.strip() + "\n" for line in stdout.strip().splitlines())
    finished.expect(finished.stdout == expected, f"expected stdout {expected!r}")
    finished.expect(finished.stderr == "", "expected nothing on stderr")


def expect_logged_drop(finished: Finished) -> None:
    """Logger "boc" reported dropping behaviors (see LOG_WITH_NAMES)."""
    __tracebackhide__ = True
    logged = re.search(r"^boc [A-Z]+: .*dropped", finished.stderr, re.MULTILINE | re.DOTALL)
    finished.expect(logged, "expected a record of logger 'boc' that mentions 'dropped' on stderr")


def stdout_lines(finished: Finished) -> list[str]:
    return sorted(finished.stdout.splitlines())


# --- 1. daemon threads calling into boc while main exits ---------------------

#: What a daemon thread's `@when` raises during the exit-time stop says.
REFUSED = "while boc stops for interpreter exit"

DAEMON_LOOP = """
    import sys, threading, time
    import boc
    from boc import Cown, PinnedCown, when

    cowns = COWNS

    def loop(cown):
        try:
            while True:
                BODY
        except RuntimeError as error:
            # One write: lines from several threads stay whole, and a thread
            # that finalization stops mid-way leaves all of it or nothing.
            sys.stdout.write(f"refused: {error}\\n")
            sys.stdout.flush()

    for index in range(THREADS):
        threading.Thread(target=loop, args=(cowns[index % len(cowns)],), daemon=True).start()
    time.sleep(0.2)
    print("main done", flush=True)
"""

SCHEDULE = """
    @when(cown)
    def step(cown):
        cown.value += 1
"""


@repeated
@pytest.mark.parametrize(
    ("cowns", "body", "n_threads"),
    [
        pytest.param("[Cown(0)]", SCHEDULE, 1, id="when-worker"),
        pytest.param("[PinnedCown(0)]", SCHEDULE, 1, id="when-pinned"),
        pytest.param("[Cown(0), Cown(0), PinnedCown(0)]", SCHEDULE, 4, id="when-4-threads"),
        pytest.param("[Cown(0)]", SCHEDULE + "    boc.quiesce()\n", 1, id="when-quiesce"),
        pytest.param("[Cown(0)]", SCHEDULE + "    boc.wait()\n", 1, id="when-wait"),
        pytest.param("[None]", "boc.send('ping', 1)\nboc.receive('ping')\n", 1, id="send-receive"),
    ],
)
def test_daemon_threads_calling_into_boc_while_main_exits(cowns, body, n_threads, run):
    loop_body = textwrap.indent(textwrap.dedent(body), " " * 16)
    source = DAEMON_LOOP.replace("COWNS", cowns).replace("THREADS", str(n_threads))
    finished = run_program(source.replace("                BODY\n", loop_body))
    expect_status(finished, 0)
    # A thread whose @when comes during the stop is refused; one that only
    # comes back to boc after it (or never schedules) stays parked.
    lines = finished.stdout.splitlines()
    finished.expect(lines[:1] == ["main done"], "expected 'main done' first")
    for line in lines[1:]:
        finished.expect(line.startswith("refused: ") and REFUSED in line, "expected only refusals after 'main done'")
    finished.expect(len(lines) <= 1 + n_threads, "a thread was refused more than once")
    finished.expect(finished.stderr == "", "expected nothing on stderr")


#: repros/exit_daemon_scheduler.py: a daemon thread schedules in a loop and
#: does not expect to be refused.
UNCAUGHT_REFUSAL = """
    import threading, time
    import boc
    from boc import Cown, when

    c = Cown(0)

    def spam():
        while True:
            @when(c)
            def w(c):
                c.value += 1

    threading.Thread(target=spam, daemon=True).start()
    time.sleep(0.2)
    print("main done", flush=True)
"""


@repeated
def test_a_daemon_thread_that_does_not_catch_the_refusal_only_reports_it(run):
    finished = run_program(UNCAUGHT_REFUSAL)
    expect_status(finished, 0)
    finished.expect(finished.stdout == "main done\n", "expected stdout 'main done'")
    # Nothing on stderr (the thread parked after the stop), or the thread's
    # RuntimeError as threading.excepthook reports it, and nothing else. The
    # report may be cut short: the thread writes it while the interpreter
    # finalizes, and CPython stops daemon threads where they are.
    stderr = finished.stderr
    if stderr:
        one_report = stderr.startswith("Exception in thread") and stderr.count("Exception in thread") == 1
        finished.expect(one_report, "expected nothing on stderr, or the thread's RuntimeError only")
        crashed = ("AddressSanitizer", "Fatal Python error", "FATAL", "panicked")
        finished.expect(not any(word in stderr for word in crashed), "a crash report on stderr")
        error_lines = [line for line in stderr.splitlines() if line.startswith("RuntimeError")]
        finished.expect(all(REFUSED in line for line in error_lines), "the RuntimeError does not say why")


#: A daemon thread calls CALL in a loop while a behavior keeps the
#: exit-time stop running for a while.
DURING_THE_STOP = """
    import atexit, threading, time
    import boc
    from boc import Cown, when

    # Registered after boc's handler, so it runs just before boc's exit-time stop.
    exiting = threading.Event()
    atexit.register(exiting.set)

    cown = Cown(0)

    def loop():
        try:
            while True:
                CALL
        except RuntimeError as error:
            print("refused:", error, flush=True)

    threading.Thread(target=loop, daemon=True).start()

    # In flight until well into the stop, which waits for it.
    @when(Cown(0))
    def probe(_):
        exiting.wait()
        time.sleep(0.3)
        print("probe done", flush=True)

    time.sleep(0.1)
    print("main done", flush=True)
"""


@repeated
@pytest.mark.parametrize(
    "call",
    [
        pytest.param("boc.when(cown)(lambda cown: None)", id="when"),
        pytest.param("boc.start()", id="start"),
    ],
)
def test_a_daemon_thread_scheduling_during_the_exit_time_stop_is_refused(call, run):
    finished = run_program(DURING_THE_STOP.replace("CALL", call))
    expect_status(finished, 0)
    lines = finished.stdout.splitlines()
    refused = len(lines) == 3 and lines[0] == "main done" and lines[1].startswith("refused: ")
    finished.expect(refused and lines[2] == "probe done", "expected 'main done', a refusal, then 'probe done'")
    finished.expect(REFUSED in lines[1], "the RuntimeError does not say why")
    finished.expect(finished.stderr == "", "expected nothing on stderr")


LOCK_HELD_WHILE_SCHEDULING = """
    import atexit, sys, threading, time
    import boc
    from boc import Cown, when

    def say(line):
        # One write, so lines from two threads stay whole.
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()

    # Registered after boc's handler, so it runs just before boc's exit-time stop.
    exiting = threading.Event()
    atexit.register(exiting.set)

    cown, lock = Cown(0), threading.Lock()

    def loop():
        try:
            while True:
                with lock:
                    @when(cown)
                    def step(cown):
                        cown.value += 1
        except RuntimeError:
            say("refused")

    threading.Thread(target=loop, daemon=True).start()

    # Still running at exit, and needs the lock the daemon thread keeps taking.
    @when(Cown(0))
    def needs_the_lock(_):
        exiting.wait()
        with lock:
            say("got the lock")

    time.sleep(0.1)
    print("main done", flush=True)
"""


@repeated
def test_a_daemon_thread_refused_at_exit_releases_its_locks(run):
    # A thread frozen inside @when would keep the lock, and the exit would
    # wait for the behavior forever.
    finished = run_program(LOCK_HELD_WHILE_SCHEDULING)
    expect_status(finished, 0)
    lines = finished.stdout.splitlines()
    finished.expect(lines[:1] == ["main done"] and "got the lock" in lines, "expected 'main done', then 'got the lock'")
    finished.expect(set(lines[1:]) <= {"got the lock", "refused"} and len(lines) <= 3, "unexpected stdout")
    finished.expect(finished.stderr == "", "expected nothing on stderr")


HELPER_THREAD_DURING_THE_STOP = """
    import atexit, threading
    import boc
    from boc import Cown, when

    # Registered after boc's handler, so it runs just before boc's exit-time stop.
    exiting = threading.Event()
    atexit.register(exiting.set)

    cown = Cown(0)

    @when(Cown(0))
    def in_flight(_):
        exiting.wait()

        def helper():
            @when(cown)
            def scheduled(cown):
                print("the helper's behavior ran", flush=True)

        try:
            thread = threading.Thread(target=helper)
            thread.start()
        except RuntimeError as error:
            print("no new thread:", error, flush=True)
        else:
            thread.join()

    print("main done", flush=True)
"""


@repeated
def test_a_thread_started_during_the_exit_time_stop_may_schedule(run):
    # Its work is part of what the stop waits for.
    finished = run_program(HELPER_THREAD_DURING_THE_STOP)
    if "no new thread: can't create new thread at interpreter shutdown" in finished.stdout:
        pytest.skip("this CPython refuses to start threads during atexit (3.12)")
    expect_clean_exit(finished, "main done\nthe helper's behavior ran")


#: A daemon thread's `@when` starts the pool (a big one, so the start takes
#: a while) just as the main thread exits.
POOL_STARTING_AT_EXIT = """
    import sys, threading
    import boc
    from boc import Cown, when

    cown = Cown(0)
    going = threading.Event()

    def say(line):
        # One write: lines from two threads stay whole.
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()

    def late():
        going.set()
        try:
            @when(cown)
            def body(cown):
                say("ran")
        except RuntimeError as error:
            say(f"refused: {error}")
        else:
            say("scheduled")

    threading.Thread(target=late, daemon=True).start()
    going.wait()
"""


@repeated
def test_a_pool_starting_as_the_exit_time_stop_begins_is_waited_for(run):
    # The pool starts detached, and the stop may begin meanwhile: it must
    # wait for the start, then for the behavior counted in on that pool, or
    # refuse it; never leave workers running through finalization, never
    # lose a behavior whose @when returned. (A thread that comes back to
    # boc only after the stop parks: no line at all.)
    finished = run_program(POOL_STARTING_AT_EXIT, env={"BOC_WORKERS": "200"})
    expect_status(finished, 0)
    finished.expect(finished.stderr == "", "expected nothing on stderr")
    lines = sorted(finished.stdout.splitlines())
    if "scheduled" in lines:
        finished.expect(lines == ["ran", "scheduled"], "the behavior of a @when that returned did not run")
    elif lines:
        # The thread existed when the stop began: refused as the stop's gate
        # refuses it.
        refused = f"refused: when() was called from a daemon thread {REFUSED}"
        finished.expect(len(lines) == 1 and lines[0].startswith(refused), "expected the @when to run, be refused, or park")


# --- 2. daemon threads blocked in boc while main exits -------------------------

BLOCKED_DAEMON = """
    import threading, time
    import boc
    from boc import PinnedCown, when

    pinned = PinnedCown(0)
    about_to_block = threading.Event()

    def blocked():
        # Pinned work that only the main thread's exit-time stop will run.
        @when(pinned)
        def at_exit(pinned):
            print("pinned ran", flush=True)

        about_to_block.set()
        try:
            CALL
        except BaseException as error:
            print("CALL raised", type(error).__name__, error, flush=True)
        else:
            print("CALL returned", flush=True)

    threading.Thread(target=blocked, daemon=True).start()
    about_to_block.wait()
    time.sleep(0.1)  # well into the call
    print("main exiting", flush=True)
"""


@repeated
@pytest.mark.parametrize(
    "call",
    [
        pytest.param("boc.wait()", id="wait"),
        pytest.param("boc.stop()", id="stop"),
        pytest.param("boc.quiesce()", id="quiesce"),
        pytest.param("boc.receive('never-sent')", id="receive"),
    ],
)
def test_daemon_thread_blocked_in_boc_while_main_exits(call, run):
    finished = run_program(BLOCKED_DAEMON.replace("CALL", call))
    expect_status(finished, 0)
    # The call returns if its wait ends during the stop (`pinned ran` ends
    # it, except for receive); after the stop the thread stays parked in it.
    returned = [f"{call} returned"] if "receive" not in call else []
    lines = finished.stdout.splitlines()
    expected = ["main exiting", "pinned ran"]
    finished.expect(lines in (expected, expected + returned), f"expected {expected}, then at most {returned}")
    finished.expect(finished.stderr == "", "expected nothing on stderr")


# --- 3. work still scheduled at exit -----------------------------------------

CHAIN_IN_FLIGHT = """
    import threading
    import boc
    from boc import Cown, when

    log, main_done = Cown([]), threading.Event()

    def link(index):
        @when(log)
        def step(log):
            if index == 0:
                main_done.wait()  # the other links are still queued at exit
            log.value.append(index)

    for index in range(200):
        link(index)

    @when(log)
    def total(log):
        print("total", len(log.value), sum(log.value), log.value == sorted(log.value), flush=True)

    print("main done", flush=True)
    main_done.set()
"""


@repeated
def test_worker_work_in_flight_at_exit_all_runs(run):
    expect_clean_exit(run_program(CHAIN_IN_FLIGHT), "main done\ntotal 200 19900 True")


UNPUMPED_PINNED = """
    import threading
    import boc
    from boc import Cown, PinnedCown, when

    pinned, plain = PinnedCown(0), Cown(0)

    def on_main():
        return threading.current_thread() is threading.main_thread()

    def mark(index):
        @when(pinned)
        def marked(pinned):
            print("pinned", index, on_main(), flush=True)

    for index in range(3):
        mark(index)

    @when(plain)
    def worker(plain):
        plain.value = 42

        @when(pinned)
        def nested(pinned):
            print("nested", on_main(), flush=True)

    @when(plain, pinned)
    def mixed(plain, pinned):
        print("mixed", plain.value, on_main(), flush=True)

    print("main done", flush=True)
"""


@repeated
def test_unpumped_pinned_work_runs_at_exit_on_the_main_thread(run):
    finished = run_program(UNPUMPED_PINNED)
    expect_status(finished, 0)
    # `nested` is scheduled by a worker, so its place among the others varies.
    expected = ["main done", "mixed 42 True", "nested True", "pinned 0 True", "pinned 1 True", "pinned 2 True"]
    finished.expect(stdout_lines(finished) == expected, f"expected the lines {expected} in some order")
    finished.expect(finished.stdout.startswith("main done\n"), "pinned work ran before exit")
    in_order = [line for line in finished.stdout.splitlines() if line.startswith(("pinned", "mixed"))]
    fifo = ["pinned 0 True", "pinned 1 True", "pinned 2 True", "mixed 42 True"]
    finished.expect(in_order == fifo, "main-side work ran out of scheduling order")
    finished.expect(finished.stderr == "", "expected nothing on stderr")


# --- 4. SystemExit in a main-side body run by the exit-time stop ------------------

SYSTEM_EXIT_AT_EXIT = """
    import sys
    import boc
    from boc import PinnedCown, when

    pinned = PinnedCown(0)

    @when(pinned)
    def leave(pinned):
        print("leave ran", flush=True)
        EXIT

    @when(pinned)
    def after(pinned):
        print("after ran", flush=True)

    print("main done", flush=True)
"""


@repeated
@pytest.mark.parametrize(
    ("exit_statement", "status", "message"),
    [
        pytest.param("sys.exit(9)", 9, None, id="exit-9"),
        pytest.param("raise SystemExit('bye')", 1, "bye", id="exit-message"),
        pytest.param("raise SystemExit(0)", 0, None, id="exit-0"),
    ],
)
def test_system_exit_in_a_main_side_body_at_exit_sets_the_status(exit_statement, status, message, run):
    finished = run_program(SYSTEM_EXIT_AT_EXIT.replace("EXIT", exit_statement))
    expect_status(finished, status)
    # Nothing lost: the behavior queued after it still runs.
    finished.expect(finished.stdout == "main done\nleave ran\nafter ran\n", "expected 'after' to run too")
    # As a plain `sys.exit` would: the message, if any, and no traceback.
    if message is not None:
        finished.expect(message in finished.stderr, f"expected {message!r} on stderr")
    finished.expect("Traceback" not in finished.stderr, "expected no traceback on stderr")


# --- 5. KeyboardInterrupt in a main-side body run by the exit-time stop -----------

INTERRUPT_IN_BODY = (
    LOG_WITH_NAMES
    + """
    import threading, time
    import boc
    from boc import Cown, PinnedCown, when

    plain, pinned = Cown(0), PinnedCown(0)
    running = threading.Event()

    @when(plain)
    def slow(plain):
        running.set()
        time.sleep(0.5)
        print("slow finished", flush=True)

    @when(plain)
    def queued(plain):
        print("queued ran", flush=True)

    @when(pinned)
    def interrupt(pinned):
        print("interrupt ran", flush=True)
        raise KeyboardInterrupt

    @when(pinned)
    def after(pinned):
        print("after ran", flush=True)

    running.wait()
    print("main done", flush=True)
"""
)


@repeated
def test_keyboard_interrupt_in_a_main_side_body_at_exit_drops_the_rest(run):
    finished = run_program(INTERRUPT_IN_BODY)
    expect_status(finished, *INTERRUPTED)
    # The body running on a worker finishes; what had not started is dropped.
    expected = ["interrupt ran", "main done", "slow finished"]
    finished.expect(stdout_lines(finished) == expected, f"expected the lines {expected} in some order")
    expect_logged_drop(finished)


#: A behavior dropped unrun by that stop leaves an object whose `__del__`
#: calls `wait()`: the drop runs on the main thread before the dropped
#: behavior is counted out, so that wait would wait for itself.
WAIT_IN_DEL_OF_A_DROPPED_BEHAVIOR = (
    LOG_WITH_NAMES
    + """
    import threading
    import boc
    from boc import Cown, PinnedCown, when

    pinned = PinnedCown(0)

    class WaitsWhenDropped:
        def __del__(self):
            try:
                boc.wait()
                print("wait returned", flush=True)
            except RuntimeError as error:
                print(f"wait refused: {error}", flush=True)

    @when(pinned)
    def interrupt(pinned):
        print("interrupt ran", flush=True)
        raise KeyboardInterrupt

    def schedule_holding(held):
        @when(pinned)
        def after(pinned):
            held

    schedule_holding(WaitsWhenDropped())
    print("main done", flush=True)
"""
)


@repeated
def test_wait_in_a_del_run_by_dropping_a_behavior_at_exit_is_refused(run):
    finished = run_program(WAIT_IN_DEL_OF_A_DROPPED_BEHAVIOR)
    expect_status(finished, *INTERRUPTED)
    lines = finished.stdout.splitlines()
    finished.expect(lines[:2] == ["main done", "interrupt ran"], "expected the body to run at exit")
    finished.expect(
        len(lines) == 3 and lines[2].startswith("wait refused: wait() cannot be called while this thread"),
        "expected the wait in __del__ to be refused, not to wait for the behavior being dropped",
    )
    expect_logged_drop(finished)


# --- 6. a behavior that does not finish: exit says what it waits for ------------

BLOCKED_BEHAVIOR_NAME = "blocked_at_exit.py"

BLOCKED_BEHAVIOR = """
    import threading
    import boc
    from boc import Cown, when

    boc.set_pump_watchdog(WATCHDOG)
    cown, release = Cown(0), threading.Event()

    @when(cown)
    def b(cown):
        release.wait(HOLD)  # never set: HOLD seconds, or forever
        print("b finished", flush=True)

    print("main done", flush=True)
"""

#: What the exit path says once it has waited long enough.
WAITING = "interpreter exit is waiting for"

#: "Within a few seconds", with room for the ASan build on a busy machine.
FEW_SECONDS = 10


def expect_names_b(program: Program) -> None:
    """The message names `b` and where it comes from, as the watchdog does:
    `b (<path>/blocked_at_exit.py:<line>)`."""
    program.wait_for(BLOCKED_BEHAVIOR_NAME, "stderr", timeout=5)
    label = r"\bb \([^)]*" + re.escape(BLOCKED_BEHAVIOR_NAME)
    program.expect(re.search(label, program.output("stderr")), f"expected the label 'b (...{BLOCKED_BEHAVIOR_NAME}'")


@repeated
@pytest.mark.parametrize(
    ("watchdog", "earliest"),
    [
        pytest.param("warn_ms=300", 0.0, id="watchdog-300ms"),
        # No watchdog: the exit path's own grace period of 2 s applies.
        pytest.param("None", 1.5, id="watchdog-off"),
    ],
)
def test_exit_names_a_behavior_blocked_forever_and_keeps_waiting(watchdog, earliest, run):
    source = BLOCKED_BEHAVIOR.replace("WATCHDOG", watchdog).replace("HOLD", "None")
    with Program(source, name=BLOCKED_BEHAVIOR_NAME) as program:
        main_done = program.wait_for("main done")
        seen = program.wait_for(WAITING, "stderr", timeout=FEW_SECONDS)
        program.expect(
            seen - main_done >= earliest, f"the message came {seen - main_done:.2f} s after 'main done', too early"
        )
        expect_names_b(program)
        time.sleep(0.5)
        program.expect(program.running(), "exit stopped waiting for the blocked behavior")


@repeated
def test_exit_names_a_slow_behavior_then_exits_once_it_finishes(run):
    source = BLOCKED_BEHAVIOR.replace("WATCHDOG", "warn_ms=300").replace("HOLD", "1.5")
    with Program(source, name=BLOCKED_BEHAVIOR_NAME) as program:
        program.wait_for("main done")
        program.wait_for(WAITING, "stderr", timeout=FEW_SECONDS)
        expect_names_b(program)
        finished = program.finish()
    expect_status(finished, 0)
    finished.expect(finished.stdout == "main done\nb finished\n", "expected 'b finished' after 'main done'")


# --- 7. Ctrl-C during the exit-time stop --------------------------------------

CTRL_C_AT_EXIT = (
    LOG_WITH_NAMES
    + """
    import atexit, signal, threading, time
    # Python leaves SIGINT ignored if it started that way (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import boc
    from boc import Cown, when

    # Registered after boc's handler, so it runs just before boc's exit-time stop.
    atexit.register(print, "exiting", flush=True)

    cown, running = Cown(0), threading.Event()

    @when(cown)
    def long(cown):
        running.set()
        time.sleep(SECONDS)
        print("long finished", flush=True)

    for index in range(5):
        @when(cown)
        def queued(cown):
            print("queued ran", flush=True)

    running.wait()
    print("main done", flush=True)
"""
)


@repeated
def test_ctrl_c_during_the_exit_time_stop_drops_queued_work(run):
    with Program(CTRL_C_AT_EXIT.replace("SECONDS", "2")) as program:
        program.wait_for("exiting")
        time.sleep(0.3)
        program.send_signal(signal.SIGINT)
        finished = program.finish()
    expect_status(finished, *INTERRUPTED)
    # The running body finishes; the queued ones are dropped.
    expected = "main done\nexiting\nlong finished\n"
    finished.expect(finished.stdout == expected, f"expected stdout {expected!r}")
    expect_logged_drop(finished)


@repeated
def test_a_second_ctrl_c_during_the_exit_time_stop_ends_the_process_at_once(run):
    with Program(CTRL_C_AT_EXIT.replace("SECONDS", "10")) as program:
        program.wait_for("exiting")
        time.sleep(0.3)
        program.send_signal(signal.SIGINT)
        time.sleep(0.3)
        second = time.monotonic()
        program.send_signal(signal.SIGINT)
        finished = program.finish()
        ended = time.monotonic()
    expect_status(finished, *INTERRUPTED)
    # The body had about 9 s left to run.
    finished.expect(ended - second < 4, f"the process ended {ended - second:.1f} s after the second SIGINT")
    finished.expect("long finished" not in finished.stdout, "the process waited for the running body")


# --- 8. an exception never retrieved, still alive at exit ----------------------

UNRETRIEVED = """
    import boc
    from boc import Cown, PinnedCown, when

    cown = COWN(0)

    @when(cown)
    def failed(cown):
        raise ValueError("boom")

    WAIT
    print("main done", flush=True)
"""


@repeated
@pytest.mark.parametrize(
    ("cown", "wait"),
    [
        pytest.param("Cown", "boc.wait()", id="finished-before-exit"),
        pytest.param("Cown", "pass", id="in-flight-at-exit"),
        pytest.param("PinnedCown", "pass", id="pinned-run-at-exit"),
    ],
)
def test_an_exception_never_retrieved_is_reported_at_exit(cown, wait, run):
    # `failed`, a module global, still holds the result cown at exit.
    finished = run_program(UNRETRIEVED.replace("COWN", cown).replace("WAIT", wait))
    expect_status(finished, 0)
    finished.expect(finished.stdout == "main done\n", "expected stdout 'main done'")
    for part in ("was never retrieved", "ValueError", "boom"):
        finished.expect(part in finished.stderr, f"expected {part!r} on stderr")
    finished.expect(finished.stderr.count("was never retrieved") == 1, "the exception was reported more than once")


# --- 9. @when on the main thread after the exit-time stop ----------------------

LATE_WHEN = """
    import atexit

    def late():
        try:
            @boc.when(cown)
            def f(cown):
                print("late behavior ran", flush=True)
        except RuntimeError as error:
            print("refused:", error, flush=True)
        else:
            print("accepted", flush=True)

    # Registered before boc's handler, so it runs after boc's exit-time stop.
    atexit.register(late)

    import boc

    cown = boc.Cown(0)
    USE
    print("main done", flush=True)
"""


@repeated
@pytest.mark.parametrize(
    "use",
    [
        pytest.param("boc.when(cown)(lambda cown: None)", id="runtime-started"),
        pytest.param("pass", id="runtime-never-started"),
    ],
)
def test_when_after_the_exit_time_stop_is_refused(use, run):
    finished = run_program(LATE_WHEN.replace("USE", use))
    expect_status(finished, 0)
    lines = finished.stdout.splitlines()
    refused = len(lines) == 2 and lines[0] == "main done" and lines[1].startswith("refused: ")
    finished.expect(refused, "expected 'main done', then 'refused: ' and the RuntimeError")
    finished.expect("shut down for interpreter exit" in lines[1], "the RuntimeError does not say why")
    finished.expect(finished.stderr == "", "expected nothing on stderr")
