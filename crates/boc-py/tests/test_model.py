"""A model-based test of the Python API: Hypothesis writes random programs
over ordinary and pinned cowns, runs them on the real runtime, and checks
what happened against a sequential reference model.

A program is a sequence of steps, the rules of `BocModel`: schedule a
behavior (from the main thread, from a plain thread, or on an earlier
behavior's result cown), pump with budgets, wait/quiesce/stop, send and
receive messages, write and read the noticeboard, drop handles, collect
garbage. A behavior is a `Plan`: the cowns it names (`c0`..`c2` ordinary,
`p0`, `p1` pinned; a tuple of names is passed as a list, duplicates
allowed), what its body does, how it ends (returns, or raises one of the
`Model*` exceptions), and the behaviors it schedules from inside its body
(`children`). Every body records what it sees under one plain lock; the
checks compare those records with the model:

- every behavior runs exactly once, and after `wait()` everything
  scheduled has run (nothing lost);
- behaviors on a shared cown run in the order of their `when` calls when
  one call happened before the other (same thread or body; main and plain
  threads before the chain was scheduled); with `workers=0` everything runs
  on the main thread, so since that `start` the order on every cown is the
  global scheduling order and the pump's counts (`executed`, `raised`,
  `pending`) are exact;
- two bodies holding a common cown never overlap, and a cown is free (its
  `.value` readable from main) as soon as every behavior on it has returned,
  even while a worker is blocked in a later body;
- a body whose request set holds a `PinnedCown` runs on the main thread
  (with `workers=0`, every body does), and no other body does;
- each exception lands on its result cown (`.exception` true, `.value` and
  `.unwrap()` give back the very object raised), and a `BaseException`
  from a main-side body (or the first `Exception` under
  `pump(raise_on_error=True)`) also propagates out of the `pump()` or
  `wait()` that ran it, right after that body, the rest staying queued;
  an exception never retrieved is reported on logger "boc", naming its
  behavior, once its result cown is gone, and a retrieved one never is;
- `wait(timeout)` times out (saying what waits) while a worker is blocked,
  `start()` with another count is refused while a pool runs, and `pump()`
  and `wait()` raise `RuntimeError` inside a behavior;
- messages are received at most once, per sender in send order, none is
  lost, and a receive at a quiet moment finds what is queued;
- the noticeboard: a behavior sees every write that happened before it was
  scheduled, its reads are one snapshot (even after its own writes),
  `notice_update` increments are never lost, and reads at quiet moments
  match the model exactly;
- pinned values are dropped on the main thread.

`BOC_MODEL_EXAMPLES` sets how many programs run (default 200);
`cargo xtask fuzz` runs many more. A failure prints the shrunk program as
Hypothesis steps, and the model's findings name the behaviors involved
(`b3 = when(c0, [c1, c1]) from main`). The steps replay by hand, outside
Hypothesis, to debug a failure:

    from test_model import BocModel, Plan
    state = BocModel()
    state.start(workers=0)
    (r0,) = state.schedule(plans=[Plan(('c0', ('c1', 'c1')), outcome='abort')]).values
    state.teardown()  # AssertionError listing what the model found, if anything

Violations are collected and raised at teardown, not where they happen: a
failure that depends on timing must not change what Hypothesis draws when
it replays the program.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import itertools
import logging
import os
import re
import sys
import threading
import time
import traceback
import weakref
from typing import Any, Optional

import boc
import pytest
from boc import Cown, PinnedCown, _boc, when
from hypothesis import HealthCheck, event, settings
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

N_EXAMPLES = int(os.environ.get("BOC_MODEL_EXAMPLES", "200"))

#: How long a wait() may take before the model calls the program hung.
PATIENCE = 60.0
#: How long a cown may stay busy after its last behavior returned (the
#: runtime releases it right after the body; this only absorbs scheduling noise).
RELEASE_PATIENCE = 5.0

MAIN_IDENT = threading.main_thread().ident

ORDINARY_NAMES = ("c0", "c1", "c2")
PINNED_NAMES = ("p0", "p1")
NAMES = ORDINARY_NAMES + PINNED_NAMES
TAG_NAMES = ("m0", "m1")

#: Noticeboard keys and message tags of this test (others may exist).
KEY_MAIN = "model.main"  # written by the main thread only: version numbers
KEY_COUNT = "model.count"  # incremented by bodies and by the main thread
KEY_BODY = "model.body"  # written by bodies: their behavior id
KEYS = (KEY_MAIN, KEY_COUNT, KEY_BODY)


def full_tag(tag: str) -> str:
    return "model." + tag


class _Absent:
    """The model's value of a noticeboard key that is not there."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
#: What `after` returns when a receive times out.
AFTER = "after() was called"


class ModelError(Exception):
    """The `Exception` a body of this test raises on purpose."""


class ModelAbort(BaseException):
    """A plain `BaseException` a body of this test raises on purpose."""


class ModelInterrupt(KeyboardInterrupt):
    """A `KeyboardInterrupt` a body of this test raises on purpose."""


class ModelExit(SystemExit):
    """A `SystemExit` a body of this test raises on purpose."""


RAISES = {"raise": ModelError, "abort": ModelAbort, "interrupt": ModelInterrupt, "exit": ModelExit}
BASE_KINDS = ("abort", "interrupt", "exit")

#: (uid, thread ident, where) of every cown value (`Box`) finalized, whichever
#: program made it; `where` is the thread and stack of a pinned value finalized
#: off the main thread.
DROPPED: list[tuple[int, int, str]] = []
#: uid -> thread ident, of the same: what the checks look up (a long run drops
#: tens of thousands of values, too many to scan at every step).
DROPPED_ON: dict[int, int] = {}


class Box:
    """A cown's value: the log of the behaviors that held the cown. It
    records which thread finalized it (pinned values must die on main)."""

    __slots__ = ("uid", "log", "pinned", "link", "__weakref__")

    def __init__(self, uid: int, log: list[int], pinned: bool) -> None:
        self.uid = uid
        self.log = log
        self.pinned = pinned
        self.link: Optional[Cown] = None  # a cown this value refers to (a cycle through cowns)

    def __del__(self) -> None:
        ident = threading.get_ident()
        where = ""
        if self.pinned and ident != MAIN_IDENT:
            where = f"on thread {threading.current_thread().name!r}:\n" + "".join(traceback.format_stack())
        DROPPED_ON[self.uid] = ident
        DROPPED.append((self.uid, ident, where))


# --- programs ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plan:
    """One behavior of a generated program, as drawn.

    - `targets`: cown names (`c*` ordinary, `p*` pinned), or tuples of names,
      passed as a list.
    - `outcome`: `return`, or raise `ModelError` (`raise`), `ModelAbort`
      (`abort`), `ModelInterrupt` (`interrupt`) or `ModelExit` (`exit`).
    - `sends`: tags the body sends to.
    - `receive`: `(tag, timeout, with_after)` the body receives with (always
      with a timeout: a body that waits forever may legitimately wait forever).
    - `notice`: the body reads the noticeboard (its first read through
      `notice_read` or through `noticeboard()`), increments a key and writes
      another, then reads again.
    - `sleep`: the body sleeps 1 ms holding its cowns.
    - `link`: the body stores the cown of that name (as of scheduling) in the
      value of the first cown it holds, and returns a value that refers to
      its own result cown: cycles through cowns, which only the cycle
      collector frees.
    - `collect`: the body runs `gc.collect()` (on a worker, if it runs on one).
    - `misuse`: the body calls `pump()`, `wait()` and `quiesce()`, which must
      raise `RuntimeError` inside a behavior.
    - `gate`: the body ends by blocking in `receive` until the main thread
      opens its gate, which it does before it pumps or waits: meanwhile the
      worker stays blocked, and the cowns of behaviors that finished before
      must be free all the same.
    - `children`: plans the body schedules, in order, from inside itself.
    """

    targets: tuple = ()
    outcome: str = "return"
    sends: tuple = ()
    receive: Optional[tuple] = None
    notice: Optional[str] = None
    sleep: bool = False
    link: Optional[str] = None
    collect: bool = False
    misuse: bool = False
    gate: bool = False
    children: tuple = ()

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))  # Hypothesis prints failing programs with this

    def __repr__(self) -> str:
        fields = [repr(self.targets)]
        for field in dataclasses.fields(self)[1:]:
            value = getattr(self, field.name)
            if value != field.default:
                fields.append(f"{field.name}={value!r}")
        return f"Plan({', '.join(fields)})"


names = st.sampled_from(NAMES)
targets = st.lists(st.one_of(names, st.lists(names, max_size=3).map(tuple)), max_size=3).map(tuple)
# Mostly returns; sampled_from shrinks towards the first.
outcomes = st.sampled_from(("return",) * 6 + ("raise",) * 2 + BASE_KINDS)
receives = st.one_of(
    st.none(),
    st.tuples(st.sampled_from(TAG_NAMES), st.sampled_from((0, 0.002, 0.01)), st.booleans()),
)


@st.composite
def plans(draw, depth: int = 2) -> Plan:
    children: tuple = ()
    if depth > 0 and draw(st.integers(0, 3)) == 0:
        children = tuple(draw(st.lists(plans(depth - 1), min_size=1, max_size=2)))
    return Plan(
        targets=draw(targets),
        outcome=draw(outcomes),
        sends=tuple(draw(st.lists(st.sampled_from(TAG_NAMES), max_size=2))),
        receive=draw(receives),
        notice=draw(st.sampled_from((None, None, "read", "board"))),
        sleep=draw(st.booleans()),
        link=draw(st.sampled_from((None, None, None) + NAMES)),
        collect=draw(st.sampled_from((False, False, False, True))),
        misuse=draw(st.sampled_from((False, False, False, True))),
        gate=draw(st.sampled_from((False, False, False, True))),
        children=children,
    )


@dataclasses.dataclass(frozen=True)
class ResultRef:
    """A result cown the program holds (the model keeps the handle itself)."""

    bid: int

    def __repr__(self) -> str:
        return f"ResultRef(b{self.bid})"


# --- the model's records -----------------------------------------------------------


class Incarnation:
    """One named cown (`c1` may name several in turn: `drop_cown` makes the next use create a new one)."""

    def __init__(self, name: str, label: str, uid: int, pinned: bool) -> None:
        self.name = name
        self.label = label
        self.uid = uid
        self.pinned = pinned
        self.log: list[int] = []  # the Box's log: appended by bodies through `.value`
        self.cown: Optional[Cown] = None  # the program's handle, until dropped
        self.ref: Optional[weakref.ref] = None  # the cown, to say what keeps it alive


class Node:
    """One behavior of the program, as the model knows it (no cown handles:
    the model must not keep values alive)."""

    def __init__(self, bid: int, plan: Plan, source: str, parent: Optional[Node]) -> None:
        self.bid = bid
        self.plan = plan
        self.source = source  # "main", "thread<n>" or "b<parent>": who schedules it
        self.parent = parent
        self.name = f"b{bid}"
        self.description = ""
        self.uids: list[int] = []  # the request set (named and result cowns), distinct
        self.result_uid = 0
        self.main_side = False
        self.min_version = 0  # noticeboard: the oldest KEY_MAIN version it may see
        self.min_count = 0  # and the smallest KEY_COUNT
        self.scheduled = False
        # For behaviors scheduled by the main thread or a plain thread: the
        # position of their `when` call in the one order of those calls (the
        # plain threads run while main waits for them, so the order is total).
        self.clock: Optional[int] = None
        self.entered = 0
        self.exited = False
        self.thread: Optional[int] = None
        self.error_ref: Optional[weakref.ref] = None
        self.propagated = False  # raised out of pump()/wait() too
        self.retrieved = False  # its exception was looked at
        self.dropped = False  # the program let go of its result cown
        self.phase = 0  # the model's worker-count phase when `when` was called
        self.reports = 0  # "never retrieved" reports seen
        self.gate_open = False

    def __repr__(self) -> str:
        return self.description

    def root(self) -> Node:
        return self if self.parent is None else self.parent.root()


@dataclasses.dataclass
class Job:
    """What a body needs at run time: the cowns themselves. Only the body's
    closure (and the scheduling code) holds it."""

    node: Node
    args: list  # what `when` gets: cowns and lists of cowns
    expected: list  # what the body must get back: cowns, and tuples for the lists
    named: list  # (cown, uid) of each distinct named cown
    results_in: list  # (result cown, producing Node) of result cowns in the request set
    outsider: Optional[Cown]  # a cown not in the request set: `.acquired` must be false
    link: Optional[Cown]  # what the body stores in its first cown's value
    children: list  # Jobs the body schedules
    cell: list = dataclasses.field(default_factory=list)  # [result cown], reachable from the body's exception


class _Stopped(AssertionError):
    """A step stopped because bodies recorded problems (they are reported, not this)."""


def _step(method):
    """Runs a step, unless the program already failed; what it raises becomes
    a violation, reported at teardown. (Failing at once would make a failure
    end the program at a step that depends on timing, and Hypothesis would
    see the same program draw different data when it replays it.)"""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.failed:
            return None
        try:
            return method(self, *args, **kwargs)
        except _Stopped:
            self.failed = True
            return None
        except BaseException as error:  # noqa: BLE001 (reported at teardown)
            if isinstance(error, KeyboardInterrupt) and not isinstance(error, ModelInterrupt):
                raise  # a real Ctrl-C
            self._violation(f"step {method.__name__}: {''.join(traceback.format_exception(error))}")
            self.failed = True
            return None

    return wrapper


def _makes_results(method):
    """For the rules that add result cowns to the bundle: one `ResultRef` per
    plan, whether the step ran, failed or was skipped (the bundle's size must
    not depend on timing either, or replaying a program draws differently)."""
    step = _step(method)

    @functools.wraps(method)
    def wrapper(self, **kwargs):
        refs = step(self, **kwargs)
        if refs is None:
            refs = [ResultRef(0)] * len(kwargs.get("plans", [None]))
        return multiple(*refs)

    return wrapper


def _holders(obj: Any, depth: int = 4) -> str:
    """What keeps `obj` alive, for a failure report: its referrers and
    theirs, `depth` levels up, one line each (type and a short repr)."""
    ignored = {id(sys._getframe())}
    lines: list[str] = []
    seen: set[int] = set()

    def walk(target: Any, level: int) -> None:
        referrers = gc.get_referrers(target)
        ignored.add(id(referrers))
        for referrer in referrers:
            if id(referrer) in ignored or id(referrer) in seen or len(lines) >= 60:
                continue
            seen.add(id(referrer))
            try:
                shown = repr(referrer)
            except Exception as error:  # noqa: BLE001 (a report, best effort)
                shown = f"<repr failed: {error!r}>"
            lines.append(f"{'  ' * level}<- {type(referrer).__name__} {shown[:160]}")
            if level + 1 < depth and not isinstance(referrer, type(sys._getframe())):
                walk(referrer, level + 1)
        del referrers

    walk(obj, 0)
    return "\n".join(lines)


class _ReportCatcher(logging.Handler):
    """Receives logger "boc"'s records while an example runs."""

    def __init__(self, model: BocModel) -> None:
        super().__init__(logging.DEBUG)
        self.model = model

    def emit(self, record: logging.LogRecord) -> None:
        self.model._on_log(record)


_example_ids = itertools.count()
#: Behavior and cown ids, unique across programs: a late report or a late drop
#: of a value must not be taken for one of another program's.
_bids = itertools.count(1)
_uids = itertools.count(1)


class BocModel(RuleBasedStateMachine):
    """Random programs against the runtime, checked by a sequential model."""

    results = Bundle("results")

    def __init__(self) -> None:
        super().__init__()
        # Everything alive before this program (Hypothesis's own records grow
        # with every example) is hidden from the collector until teardown
        # (`_clean_up` unfreezes it), so a program's full collections cost what
        # the program made, not what the whole run has piled up: without
        # this, a 1,000-example run took 22 times as long as 200 examples.
        gc.freeze()
        self.example = next(_example_ids)
        self.lock = threading.Lock()  # guards every record below that bodies touch
        self.failed = False
        self.workers = 1
        # Bumped by every (re)start: within a phase with workers=0 the order of
        # the `when` calls is the order the model recorded them in.
        self.phase = 0
        self.threads = itertools.count(1)
        self.clock = itertools.count(1)
        self.current: dict[str, Incarnation] = {}
        self.incarnations: list[Incarnation] = []
        self.incarnation_of: dict[int, Incarnation] = {}
        self.nodes: dict[int, Node] = {}
        self.handles: dict[int, Cown] = {}  # bid -> result cown, while the program holds it
        self.result_uid_of: dict[int, int] = {}  # bid -> uid of its result cown
        self.producer_of: dict[int, Node] = {}  # result cown uid -> the behavior producing it
        self.on_uid: dict[int, list[Node]] = {}  # uid -> behaviors scheduled on it, in `when` call order
        self.schedule_order: list[Node] = []
        self.holders: dict[int, Node] = {}  # uid -> the body holding it now
        self.cown_logs: dict[int, list[int]] = {}  # uid -> bids of the bodies that held it, in order
        self.runs: list[tuple[Node, int]] = []  # (behavior, thread ident), in order of entry
        self.violations: list[str] = []
        self.events: set[str] = set()  # what the program exercised (Hypothesis statistics)
        self.n_dropped_seen = len(DROPPED)
        # Messages: mid -> (tag, sender ident); received mids; per (receiver, sender, tag) the last mid.
        self.mids = itertools.count(1)
        self.sent: dict[int, tuple[str, int]] = {}
        self.received: set[int] = set()
        self.last_received: dict[tuple[int, int, str], int] = {}
        # The noticeboard: KEY_MAIN's history (index = version), increments done, body writes.
        self.history: list[Any] = [ABSENT]
        self.count_done = 0
        self.count_seen_on_main = 0
        self.body_writes: list[int] = []
        # Logger "boc": caught here, and kept from propagating (pytest's capture would keep
        # every reported exception, and with it every value its traceback reaches, alive).
        self.logger = logging.getLogger("boc")
        self.catcher = _ReportCatcher(self)
        self.logger.addHandler(self.catcher)
        self.logger_propagate = self.logger.propagate
        self.logger.propagate = False

    # --- recording (any thread) -----------------------------------------------------

    def _violation(self, message: str) -> None:
        with self.lock:
            self.violations.append(message)

    def _on_log(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "was never retrieved" not in message:
            if record.levelno >= logging.ERROR:
                self._violation(f"logger 'boc' logged an error: {message}")
            return
        named = re.search(r"exception in behavior (\S+) \(", message)
        named = named.group(1) if named else None
        # Touch nothing but the instance dict: a report written after the cycle
        # collector cleared the exception reads freed memory (args, traceback).
        # The exception's `bid` says whose it is (each body raises one; not
        # `node.error_ref`: the collector clears weak references before it
        # finalizes, so a report from a finalizer outlives them).
        error = record.exc_info[1] if record.exc_info else None
        node = self.nodes.get(getattr(error, "bid", None))
        if node is None:
            named_node = self.nodes.get(int(named[1:])) if named and re.fullmatch(r"b\d+", named) else None
            if named_node is not None:  # else not this program's (bids are unique across programs)
                named_node.reports += 1
                self._violation(
                    f"{named_node}: the 'never retrieved' report carries {type(error).__name__} without its "
                    f"attributes (the cycle collector cleared it before the report was written)"
                )
            return
        node.reports += 1
        if named != node.name:
            self._violation(f"{node}: the 'never retrieved' report of its exception names another behavior: {message}")
        if not node.dropped:
            self._violation(f"{node} was reported as never retrieved while the program still holds its result cown")
        if node.retrieved:
            self._violation(f"{node} was reported as never retrieved, but it was retrieved")

    def _enter(self, node: Node) -> None:
        ident = threading.get_ident()
        problems = []
        with self.lock:
            node.entered += 1
            node.thread = ident
            self.runs.append((node, ident))
            if node.entered > 1:
                problems.append(f"ran {node.entered} times")
            if not node.scheduled:
                problems.append("ran before its `when` was called")
            on_main = ident == MAIN_IDENT
            if node.main_side and not on_main:
                problems.append(f"is main-side but ran on {threading.current_thread().name}")
            if not node.main_side and on_main:
                problems.append(f"is a worker behavior (workers={self.workers}) but ran on the main thread")
            for uid in [*node.uids, node.result_uid]:
                holder = self.holders.get(uid)
                if holder is not None:
                    problems.append(f"started while {holder} held {self._label(uid)}")
                self.holders[uid] = node
                self.cown_logs.setdefault(uid, []).append(node.bid)
                producer = self.producer_of.get(uid)
                root_clock = node.root().clock
                for earlier in self.on_uid.get(uid, ()):
                    if earlier is node:
                        break
                    # Its `when` call happened before this one's: by the same thread or body,
                    # or by main or a plain thread before this behavior's root was scheduled.
                    ordered = (
                        self.workers == 0
                        or earlier.source == node.source
                        or earlier is producer
                        or (earlier.clock is not None and root_clock is not None and earlier.clock <= root_clock)
                    )
                    if ordered and not earlier.exited:
                        problems.append(
                            f"started on {self._label(uid)} before {earlier}, whose `when` call happened "
                            f"before this one's, finished"
                        )
            parent = node.parent
            if parent is not None and set(parent.uids) & set(node.uids) and not parent.exited:
                problems.append(f"started before its parent {parent} finished, on a cown they share")
            self.violations.extend(f"{node}: {problem}" for problem in problems)

    def _exit(self, node: Node, problems: list[str]) -> None:
        with self.lock:
            for uid in [*node.uids, node.result_uid]:
                if self.holders.get(uid) is node:
                    del self.holders[uid]
            node.exited = True
            self.violations.extend(f"{node}: {problem}" for problem in problems)

    def _label(self, uid: int) -> str:
        incarnation = self.incarnation_of.get(uid)
        if incarnation is not None:
            return incarnation.label
        producer = self.producer_of.get(uid)
        return f"the result cown of {producer.name}" if producer else f"cown #{uid}"

    # --- scheduling --------------------------------------------------------------------

    def _named(self, name: str) -> Incarnation:
        """The cown `name` names now, made on first use (on the main thread)."""
        incarnation = self.current.get(name)
        if incarnation is None:
            uid = next(_uids)
            n_before = sum(1 for other in self.incarnations if other.name == name)
            label = name if n_before == 0 else f"{name}.{n_before + 1}"
            incarnation = Incarnation(name, label, uid, name in PINNED_NAMES)
            box = Box(uid, incarnation.log, incarnation.pinned)
            incarnation.cown = PinnedCown(box) if incarnation.pinned else Cown(box)
            incarnation.ref = weakref.ref(incarnation.cown)
            self.current[name] = incarnation
            self.incarnations.append(incarnation)
            self.incarnation_of[uid] = incarnation
        return incarnation

    def _resolve(self, plan: Plan, source: str, parent: Optional[Node], on_result: Optional[ResultRef] = None) -> Job:
        """Turns a plan (and its children) into a Job over the cowns the names denote now."""
        node = Node(next(_bids), plan, source, parent)
        args: list = []
        expected: list = []
        shown: list[str] = []
        named: dict[int, Cown] = {}
        results_in: list = []
        uids: set[int] = set()
        pinned = False
        if on_result is not None:
            result = self.handles[on_result.bid]
            uid = self.result_uid_of[on_result.bid]
            args.append(result)
            expected.append(result)
            shown.append(f"b{on_result.bid}")
            results_in.append((result, self.nodes[on_result.bid]))
            uids.add(uid)
        for target in plan.targets:
            group = [target] if isinstance(target, str) else list(target)
            cowns = []
            for name in group:
                incarnation = self._named(name)
                cowns.append(incarnation.cown)
                named[incarnation.uid] = incarnation.cown
                uids.add(incarnation.uid)
                pinned = pinned or incarnation.pinned
            labels = [self.current[name].label for name in group]
            if isinstance(target, str):
                args.append(cowns[0])
                expected.append(cowns[0])
                shown.append(labels[0])
            else:
                args.append(list(cowns))
                expected.append(tuple(cowns))
                shown.append(f"[{', '.join(labels)}]")
        node.uids = sorted(uids)
        node.main_side = pinned or self.workers == 0
        node.result_uid = next(_uids)
        self.result_uid_of[node.bid] = node.result_uid
        self.producer_of[node.result_uid] = node
        node.min_version = parent.min_version if parent else len(self.history) - 1
        node.min_count = parent.min_count if parent else self.count_done
        node.description = f"{node.name} = when({', '.join(shown)}) from {source}"
        outsider = next(
            (incarnation.cown for incarnation in self.current.values() if incarnation.uid not in uids),
            None,
        )
        self.nodes[node.bid] = node
        if node.main_side:
            self._open_gates([node])  # only main runs it, and main must not wait for itself
        children = [self._resolve(child, node.name, node) for child in plan.children]
        link = self._named(plan.link).cown if plan.link else None
        named_list = [(cown, uid) for uid, cown in named.items()]
        return Job(node, args, expected, named_list, results_in, outsider, link, children)

    def _schedule(self, job: Job) -> Cown:
        """Calls `when` for a job (on whatever thread runs this)."""
        node = job.node
        body = self._make_body(job)
        with self.lock:
            node.scheduled = True
            node.phase = self.phase
            if node.parent is None:
                node.clock = next(self.clock)
            for uid in [*node.uids, node.result_uid]:
                self.on_uid.setdefault(uid, []).append(node)
            self.schedule_order.append(node)
        result = when(*job.args)(body)
        job.cell.append(result)
        with self.lock:
            self.handles[node.bid] = result
        for arg in job.args:
            if isinstance(arg, list):
                arg.clear()  # the body must get the list as it was when scheduled
        return result

    def _make_body(self, job: Job):
        node = job.node

        def body(*args):
            self._enter(node)
            problems: list[str] = []
            try:
                self._work(job, args, problems)
            except BaseException as error:  # noqa: BLE001 (reported as a violation)
                problems.append(f"raised unexpectedly: {''.join(traceback.format_exception(error))}")
            finally:
                self._exit(node, problems)
            return self._end(job)

        body.__name__ = body.__qualname__ = node.name
        return body

    def _end(self, job: Job):
        node = job.node
        if node.plan.outcome == "return":
            # With `link`, result cown -> value -> cell -> result cown: a cycle.
            return ("ok", node.bid, job.cell if node.plan.link else None)
        error = RAISES[node.plan.outcome](f"{node.name} raises {node.plan.outcome}")
        error.bid = node.bid
        error.example = self.example
        error.cell = job.cell  # result cown -> exception -> cell -> result cown: a cycle
        node.error_ref = weakref.ref(error)
        raise error

    def _work(self, job: Job, args: tuple, problems: list[str]) -> None:
        """A body's actions and the checks it can make itself."""
        node, plan = job.node, job.node.plan
        if len(args) != len(job.expected):
            problems.append(f"got {len(args)} arguments, expected {len(job.expected)}")
        for arg, expected in zip(args, job.expected):
            if isinstance(expected, tuple):
                if type(arg) is not list or len(arg) != len(expected) or any(a is not e for a, e in zip(arg, expected)):
                    problems.append(f"got {arg!r} for the list {list(expected)!r}")
            elif arg is not expected:
                problems.append(f"got {arg!r} for {expected!r}")
        for cown, uid in job.named:
            if not cown.acquired:
                problems.append(f"{self._label(uid)}.acquired is false inside the body")
            value = cown.value
            if type(value) is not Box or value.uid != uid:
                problems.append(f"{self._label(uid)}.value is {value!r}, not its box")
            else:
                value.log.append(node.bid)
                if job.link is not None and cown is job.named[0][0]:
                    value.link = job.link
        for result, producer in job.results_in:
            if not result.acquired:
                problems.append(f"the result cown of {producer.name} is not acquired inside the body")
            self._check_result(producer, result, problems, where="inside a behavior scheduled on it")
        if job.outsider is not None:
            if job.outsider.acquired:
                problems.append(f"{job.outsider!r}.acquired is true though it is not in the request set")
            try:
                value = job.outsider.value
            except RuntimeError:
                pass
            else:
                problems.append(f"{job.outsider!r}.value returned {value!r}, though the cown is not in the request set")
        if plan.misuse:
            for name, call in (
                ("pump()", boc.pump),
                ("wait(timeout=0)", lambda: boc.wait(timeout=0)),
                ("quiesce(timeout=0)", lambda: boc.quiesce(timeout=0)),
            ):
                try:
                    call()
                except RuntimeError:
                    pass
                else:
                    problems.append(f"{name} did not raise RuntimeError inside a behavior")
        if plan.sleep:
            time.sleep(0.001)
        if plan.collect:
            gc.collect()
        if plan.notice:
            self._notice_in_body(job, problems)
        for tag in plan.sends:
            self._send(tag)
        for child in job.children:
            self._schedule(child)
        if plan.receive is not None:
            tag, timeout, with_after = plan.receive
            if self._receive((tag,), timeout, with_after, problems) is not None:
                self.events.add("a body received a message")
        if plan.gate:
            tag, _ = boc.receive(self._gate(node), timeout=PATIENCE)
            if tag is boc.TIMEOUT:
                problems.append(f"its gate stayed shut for {PATIENCE}s")

    def _notice_in_body(self, job: Job, problems: list[str]) -> None:
        node = job.node
        if node.plan.notice == "read":
            main = boc.notice_read(KEY_MAIN, ABSENT)
            snapshot = {key: value for key, value in boc.noticeboard().items() if key in KEYS}
        else:
            snapshot = {key: value for key, value in boc.noticeboard().items() if key in KEYS}
            main = boc.notice_read(KEY_MAIN, ABSENT)
        if main != snapshot.get(KEY_MAIN, ABSENT):
            problems.append(
                f"notice_read saw {main!r} but noticeboard() {snapshot.get(KEY_MAIN, ABSENT)!r} in one snapshot"
            )
        count = snapshot.get(KEY_COUNT, 0)
        body_value = snapshot.get(KEY_BODY, ABSENT)
        with self.lock:
            versions = range(node.min_version, len(self.history))
            if main is ABSENT:
                valid = any(self.history[i] is ABSENT for i in versions)
            else:
                valid = type(main) is int and main in versions and self.history[main] == main
            if not valid:
                problems.append(
                    f"saw {KEY_MAIN}={main!r}, but it was scheduled after version {node.min_version} "
                    f"(history {self.history})"
                )
            if count < node.min_count:
                problems.append(f"saw {KEY_COUNT}={count}, but it was scheduled after it reached {node.min_count}")
            if self.workers == 0:
                if count != self.count_done:
                    problems.append(f"saw {KEY_COUNT}={count}, the model says {self.count_done}")
                last = self.body_writes[-1] if self.body_writes else ABSENT
                if body_value != last:
                    problems.append(f"saw {KEY_BODY}={body_value!r}, the model says {last!r}")
        committed: list[int] = []

        def increment(value):
            committed.append(value + 1)
            return value + 1

        boc.notice_update(KEY_COUNT, increment, default=0)
        boc.notice_write(KEY_BODY, node.bid)
        with self.lock:
            self.count_done += 1
            self.body_writes.append(node.bid)
            for child in job.children:
                child.node.min_count = max(child.node.min_count, committed[-1])
        if committed[-1] <= count:
            problems.append(f"notice_update committed {committed[-1]} after the snapshot saw {count}")
        again = {key: value for key, value in boc.noticeboard().items() if key in KEYS}
        reads = {key: boc.notice_read(key, ABSENT) for key in KEYS}
        reads = {key: value for key, value in reads.items() if value is not ABSENT}
        if again != snapshot or reads != snapshot:
            problems.append(
                f"the snapshot changed inside the behavior: first {snapshot}, "
                f"then noticeboard() {again} and notice_read {reads}"
            )

    # --- messages (any thread) --------------------------------------------------------

    @staticmethod
    def _gate(node: Node) -> str:
        return f"model.gate.{node.name}"

    def _open_gates(self, nodes=None) -> None:
        """Lets gated bodies finish (before the main thread pumps or waits for them)."""
        for node in list(self.nodes.values()) if nodes is None else nodes:
            if node.plan.gate and not node.gate_open:
                node.gate_open = True
                boc.send(self._gate(node), None)

    def _send(self, tag: str) -> None:
        with self.lock:
            mid = next(self.mids)
            self.sent[mid] = (tag, threading.get_ident())
        boc.send(full_tag(tag), ("model", self.example, mid))

    def _receive(self, tags: tuple, timeout: float, with_after: bool, problems: list[str]) -> Optional[int]:
        """Receives; returns the message id, or None on timeout."""
        after = (lambda: AFTER) if with_after else None
        got = boc.receive([full_tag(tag) for tag in tags], timeout=timeout, after=after)
        if with_after and got == AFTER:
            return None
        if not isinstance(got, tuple) or len(got) != 2:
            problems.append(f"receive returned {got!r}")
            return None
        tag, contents = got
        if tag is boc.TIMEOUT:
            if with_after:
                problems.append("receive timed out without calling after()")
            elif contents is not None:
                problems.append(f"receive timed out with contents {contents!r}")
            return None
        return self._record_received(tag, contents, tags, problems)

    def _record_received(self, tag: str, contents: Any, tags: tuple, problems: list[str]) -> Optional[int]:
        short = tag[len("model.") :] if isinstance(tag, str) else tag
        if short not in tags:
            problems.append(f"asked for {tags} but received a message under {tag!r}")
        if not (isinstance(contents, tuple) and len(contents) == 3 and contents[:2] == ("model", self.example)):
            problems.append(f"received {contents!r}, which this program never sent")
            return None
        mid = contents[2]
        receiver = threading.get_ident()
        with self.lock:
            sent = self.sent.get(mid)
            if sent is None:
                problems.append(f"received message {mid}, which was never sent")
                return None
            sent_tag, sender = sent
            if sent_tag != short:
                problems.append(f"message {mid} was sent under {sent_tag} but received under {short}")
            if mid in self.received:
                problems.append(f"message {mid} was received twice")
            self.received.add(mid)
            key = (receiver, sender, sent_tag)
            if self.last_received.get(key, 0) > mid:
                problems.append(
                    f"message {mid} was received after message {self.last_received[key]}, "
                    f"sent later by the same thread under the same tag"
                )
            self.last_received[key] = max(mid, self.last_received.get(key, 0))
        return mid

    def _queued(self, tags: tuple) -> list[int]:
        with self.lock:
            return sorted(mid for mid, (tag, _) in self.sent.items() if tag in tags and mid not in self.received)

    # --- the model's view ---------------------------------------------------------------

    def _quiet(self) -> bool:
        """No body is running or can start before the next boc call on main."""
        with self.lock:
            return self.workers == 0 or all(node.exited for node in self.nodes.values())

    def _model_ready(self) -> list[Node]:
        """With workers=0: the behaviors ready to run, as the model sees it."""
        with self.lock:
            return [
                node
                for node in self.schedule_order
                if not node.entered
                and all(
                    earlier.exited
                    for uid in [*node.uids, node.result_uid]
                    for earlier in itertools.takewhile(lambda other: other is not node, self.on_uid[uid])
                )
            ]

    def _in_flight(self) -> int:
        with self.lock:
            return sum(1 for node in self.schedule_order if not node.exited)

    def _assert_no_violations(self, final: bool = False) -> None:
        with self.lock:
            violations = list(self.violations)
        if final:
            assert not violations, f"the model found {len(violations)} problems:\n- " + "\n- ".join(violations[:10])
        if violations:
            raise _Stopped("the bodies recorded problems")

    def _check_result(self, node: Node, result: Cown, problems: list[str], where: str) -> None:
        """Checks a result cown against its behavior's outcome (which retrieves its exception)."""
        outcome = node.plan.outcome
        if outcome == "return":
            if result.exception is not False:
                problems.append(f"{node}: .exception is {result.exception!r} {where}, but it returned")
            if result.value[:2] != ("ok", node.bid):
                problems.append(f"{node}: .value is {result.value!r} {where}, not what it returned")
            return
        expected = node.error_ref() if node.error_ref else None
        with self.lock:
            node.retrieved = True
        if expected is None:
            problems.append(f"{node}: its exception is gone {where}, but its result cown holds it")
            return
        if result.exception is not True:
            problems.append(f"{node}: .exception is {result.exception!r} {where}, but it raised {expected!r}")
        if result.value is not expected:
            problems.append(f"{node}: .value is {result.value!r} {where}, not the {expected!r} it raised")
        try:
            result.unwrap()
        except BaseException as caught:  # noqa: BLE001 (compared below)
            if caught is not expected:
                problems.append(f"{node}: .unwrap() raised {caught!r} {where}, not the {expected!r} it raised")
        else:
            problems.append(f"{node}: .unwrap() returned {where}, but it raised {expected!r}")

    def _drive(self, call):
        """Runs a pump/wait-like call; returns (its result, what it raised, the
        behaviors run on main meanwhile, how many more behaviors it may have
        run). A pinned value whose last handle went away on another thread is
        dropped by a main-side behavior of its own, which pump() counts as
        executed: there are at most as many as this program's pinned values
        not dropped yet. (The previous program ended with every pinned value
        dropped and nothing in flight.)"""
        with self.lock:
            start = len(self.runs)
        n_drops_possible = self._n_pinned_alive()
        try:
            outcome, error = call(), None
        except BaseException as caught:  # noqa: BLE001 (checked by _check_raised)
            outcome, error = None, caught
        with self.lock:
            window = [node for node, ident in self.runs[start:] if ident == MAIN_IDENT]
        return outcome, error, window, n_drops_possible

    def _n_pinned_alive(self) -> int:
        """This program's pinned values not dropped yet: at most that many drops can be queued."""
        return sum(1 for incarnation in self.incarnations if incarnation.pinned and incarnation.uid not in DROPPED_ON)

    def _check_raised(
        self, what: str, error: Optional[BaseException], window: list[Node], raise_on_error: bool
    ) -> None:
        """What a pump/wait-like call raised, against what the bodies it ran did."""
        for node in window[:-1] if error is not None else window:
            if node.plan.outcome in BASE_KINDS:
                raise AssertionError(
                    f"{what}: {node} raised a BaseException on the main thread, "
                    f"but {what} went on ({'raised ' + repr(error) if error else 'returned'})"
                )
            if raise_on_error and node.plan.outcome == "raise":
                raise AssertionError(f"{what}: {node} raised an Exception, but pump(raise_on_error=True) went on")
        if error is None:
            return
        if isinstance(error, TimeoutError) and not hasattr(error, "bid"):
            raise AssertionError(f"{what} timed out after {PATIENCE}s: the program hung") from error
        node = self.nodes.get(getattr(error, "bid", None)) if getattr(error, "example", None) == self.example else None
        if node is None:
            raise AssertionError(f"{what} raised {error!r}, which no body of this program raised") from error
        if not window or window[-1] is not node:
            raise AssertionError(
                f"{what} raised the exception of {node}, but the last main-side body it ran was "
                f"{window[-1] if window else 'none'}"
            ) from error
        allowed = BASE_KINDS + (("raise",) if raise_on_error else ())
        if node.plan.outcome not in allowed:
            raise AssertionError(
                f"{what} raised {error!r} from {node}, which should have stayed on its result cown"
            ) from error
        node.propagated = True
        self.events.add(f"{what.split('(')[0]}() raised {type(error).__name__} from a body")

    def _check_everything_ran(self, what: str) -> None:
        """After a successful wait()/quiesce()/stop(): nothing lost, every record consistent."""
        self._assert_no_violations()
        missing = [node for node in self.nodes.values() if node.entered != 1 or not node.exited]
        assert not missing, f"after {what}(): did not run exactly once: " + "; ".join(
            f"{node} (ran {node.entered} times)" for node in missing
        )
        state = _boc._state()
        assert state["in_flight"] == 0 and state["main_pending"] == 0, f"after {what}(): {state}"
        self._check_cowns(what)
        problems: list[str] = []
        for bid, result in list(self.handles.items()):
            self._check_result(self.nodes[bid], result, problems, where=f"after {what}()")
        assert not problems, "\n".join(problems)

    def _check_cowns(self, what: str) -> None:
        for incarnation in self.incarnations:
            log = self.cown_logs.get(incarnation.uid, [])
            assert incarnation.log == log, (
                f"after {what}(): {incarnation.label}.value saw {incarnation.log}, the bodies entered in order {log}"
            )
            scheduled = [node.bid for node in self.on_uid.get(incarnation.uid, [])]
            assert sorted(log) == sorted(scheduled), (
                f"after {what}(): on {incarnation.label}, ran {log} but scheduled {scheduled}"
            )
            if self.workers == 0:
                # This phase only: behaviors scheduled under an earlier pool were
                # scheduled by threads running in parallel, which the model's log
                # orders by its own lock, not as `when` saw the calls.
                ran_now = [bid for bid in log if self.nodes[bid].phase == self.phase]
                scheduled_now = [bid for bid in scheduled if self.nodes[bid].phase == self.phase]
                assert ran_now == scheduled_now, (
                    f"after {what}() (workers=0): on {incarnation.label}, ran {ran_now} but scheduled "
                    f"{scheduled_now} since start(workers=0)"
                )
            if incarnation.cown is not None:
                value = incarnation.cown.value
                assert type(value) is Box and value.uid == incarnation.uid, f"{incarnation.label}.value is {value!r}"

    # --- the rules -------------------------------------------------------------------------

    @initialize(workers=st.integers(0, 2))
    @_step
    def start(self, workers):
        self._settle_leftovers()
        boc.start(workers=workers)
        self.workers = workers
        self.phase += 1
        for key in KEYS:
            boc.notice_delete(key)
        boc.drain([full_tag(tag) for tag in TAG_NAMES])

    @rule(target=results, plans=st.lists(plans(), min_size=1, max_size=3))
    @_makes_results
    def schedule(self, plans):
        """The main thread schedules each plan, one right after the other."""
        jobs = [self._resolve(plan, "main", None) for plan in plans]
        for job in jobs:
            self._schedule(job)
        return [ResultRef(job.node.bid) for job in jobs]

    @rule(target=results, result=results, plan=plans())
    @_makes_results
    def schedule_on_result(self, result, plan):
        """The main thread schedules a plan on an earlier behavior's result cown (and the plan's cowns)."""
        job = self._resolve(plan, "main", None, on_result=result)
        self._schedule(job)
        return [ResultRef(job.node.bid)]

    @rule(target=results, plans=st.lists(plans(), min_size=1, max_size=3))
    @_makes_results
    def schedule_from_thread(self, plans):
        """A new plain thread schedules each plan, one right after the other."""
        source = f"thread{next(self.threads)}"
        jobs = [self._resolve(plan, source, None) for plan in plans]
        refs = [ResultRef(job.node.bid) for job in jobs]
        errors: list[BaseException] = []

        def run():
            try:
                while jobs:
                    self._schedule(jobs.pop(0))
            except BaseException as error:  # noqa: BLE001 (asserted below)
                errors.append(error)

        thread = threading.Thread(target=run, name=source)
        thread.start()
        thread.join(PATIENCE)
        assert not thread.is_alive(), f"{source}: scheduling hung"
        if errors:
            raise AssertionError(f"{source}: when() raised") from errors[0]
        return refs

    @rule(result=consumes(results))
    @_step
    def drop_result(self, result):
        with self.lock:
            self.handles.pop(result.bid, None)
            self.nodes[result.bid].dropped = True

    @rule(name=names)
    @_step
    def drop_cown(self, name):
        incarnation = self.current.pop(name, None)
        if incarnation is not None:
            incarnation.cown = None

    def _idle(self, uid: int) -> bool:
        """No behavior on this cown is scheduled or planned but unfinished."""
        with self.lock:
            return all(node.exited for node in self.nodes.values() if uid in node.uids or uid == node.result_uid)

    def _read_outside(self, cown: Cown, uid: int):
        """`.value` from the main thread, outside behaviors: returns (value,
        None), or (None, the RuntimeError of a cown that is busy). A cown
        whose behaviors have all returned must be free (at once; the retries
        only absorb the instant between a body's return and its release)."""
        idle = self._idle(uid)
        deadline = time.monotonic() + (RELEASE_PATIENCE if idle else 0)
        while True:
            try:
                return cown.value, None
            except RuntimeError as error:
                if time.monotonic() < deadline:
                    time.sleep(0.001)
                    continue
                assert not idle, (
                    f"{self._label(uid)}.value from the main thread still raises {RELEASE_PATIENCE}s after "
                    f"every behavior on it returned (is a finished behavior's cown kept by a worker?): {error}"
                )
                number = re.search(r"#\d+", repr(cown))
                assert "busy" in str(error) and number and number.group() in str(error), (
                    f"{self._label(uid)}.value raised {error!r} from the main thread (repr {cown!r})"
                )
                return None, error

    @rule(name=names)
    @_step
    def read_cown(self, name):
        incarnation = self.current.get(name)
        if incarnation is None:
            return
        value, _ = self._read_outside(incarnation.cown, incarnation.uid)
        if value is not None:
            assert type(value) is Box and value.uid == incarnation.uid, f"{incarnation.label}.value is {value!r}"
            self.events.add("the main thread read a cown")

    @rule(result=results)
    @_step
    def read_result(self, result):
        node = self.nodes[result.bid]
        cown = self.handles[result.bid]
        _, busy = self._read_outside(cown, node.result_uid)
        if busy is None:
            problems: list[str] = []
            self._check_result(node, cown, problems, where="read from the main thread")
            assert not problems, "\n".join(problems)
            self.events.add("the main thread read a result")

    @rule()
    @_step
    def collect_garbage(self):
        """The cycle collector on main, over the young generations: the
        program's cycles are young, and a full collection scans every object
        Hypothesis and pytest hold (tens of ms; the end of a program does one)."""
        gc.collect(1)

    @rule(
        # Bounds too large to represent mean no bound (docs/python-misuse.md).
        max_behaviors=st.sampled_from((None, 1, 2, 5, 2**100)),
        deadline_ms=st.sampled_from((None, 1, 0.5, 5, 1e22)),
        raise_on_error=st.booleans(),
    )
    @_step
    def pump(self, max_behaviors, deadline_ms, raise_on_error):
        what = f"pump(max_behaviors={max_behaviors}, deadline_ms={deadline_ms}, raise_on_error={raise_on_error})"
        self._open_gates()
        report, error, window, n_drops = self._drive(
            lambda: boc.pump(max_behaviors=max_behaviors, deadline_ms=deadline_ms, raise_on_error=raise_on_error)
        )
        self._check_raised(what, error, window, raise_on_error)
        del error
        if report is not None:
            if report.deadline_reached:
                self.events.add("a pump reached its deadline")
            if max_behaviors is not None and report.executed == max_behaviors:
                self.events.add("a pump ran max_behaviors")
            assert len(window) <= report.executed <= len(window) + n_drops, (
                f"{what} returned {report} but ran {len(window)} behaviors ({window}), "
                f"and at most {n_drops} drops of pinned values"
            )
            n_raised = sum(1 for node in window if node.plan.outcome == "raise")
            assert report.raised == n_raised, f"{what} returned {report}, but {n_raised} of {window} raised"
            if max_behaviors is not None:
                assert report.executed <= max_behaviors, f"{what} returned {report}"
            if report.deadline_reached:
                assert report.pending >= 1, f"{what} returned {report}: a deadline reached with nothing pending"
                assert deadline_ms != 1e22, f"{what} returned {report}: a deadline 3e11 years away was reached"
        if self.workers == 0:
            # Exact, up to drops of pinned values queued by other threads (the
            # collector may run on a plain thread of this test).
            ready = self._model_ready()
            in_flight = self._in_flight()
            slack = self._n_pinned_alive()
            state = _boc._state()
            assert len(ready) <= state["main_pending"] <= len(ready) + slack, (
                f"after {what}: {state}, but the model has ready: {ready}"
            )
            assert in_flight <= state["in_flight"] <= in_flight + slack, (
                f"after {what}: {state}, the model has {in_flight} in flight"
            )
            if report is not None:
                assert len(ready) <= report.pending <= len(ready) + slack, (
                    f"{what} returned {report}, but the model has ready: {ready}"
                )
                unbounded = max_behaviors is None or report.executed < max_behaviors
                if unbounded and not report.deadline_reached:
                    assert self._in_flight() == 0, f"{what} returned {report} with behaviors left in flight"
            if self._in_flight() == 0:
                self._check_cowns(what)

    @rule(driver=st.sampled_from(("wait", "quiesce", "stop")))
    @_step
    def wait(self, driver):
        calls = {
            "wait": lambda: boc.wait(timeout=PATIENCE),
            "quiesce": lambda: boc.quiesce(timeout=PATIENCE),
            "stop": boc.stop,
        }
        self._open_gates()
        _, error, window, _ = self._drive(calls[driver])
        self._check_raised(f"{driver}()", error, window, raise_on_error=False)
        if error is None:
            self._check_everything_ran(driver)
            if driver != "quiesce":
                assert not _boc._state()["running"], f"after {driver}(): the pool still runs"

    @rule(driver=st.sampled_from(("wait", "quiesce")))
    @_step
    def wait_from_thread(self, driver):
        """A plain thread waits (`wait` or `quiesce`) while the main thread
        pumps with a deadline until that thread is done, as a host loop does."""
        self._open_gates()
        outcome: list[BaseException] = []
        call = getattr(boc, driver)

        def run():
            try:
                call(timeout=PATIENCE)
            except BaseException as error:  # noqa: BLE001 (asserted below)
                outcome.append(error)

        thread = threading.Thread(target=run, name=f"{driver}-thread")
        thread.start()
        deadline = time.monotonic() + PATIENCE
        while thread.is_alive() and time.monotonic() < deadline:
            what = "pump(deadline_ms=5) while another thread waits"
            report, error, window, n_drops = self._drive(lambda: boc.pump(deadline_ms=5))
            self._check_raised(what, error, window, raise_on_error=False)
            del error
            if report is not None:
                assert len(window) <= report.executed <= len(window) + n_drops, (
                    f"{what} returned {report} but ran {window}, and at most {n_drops} drops of pinned values"
                )
            time.sleep(0.0005)
        thread.join(1)
        assert not thread.is_alive(), f"{driver}() on another thread did not return in {PATIENCE}s"
        assert not outcome, f"{driver}() on another thread raised {outcome[0]!r}"
        self.events.add(f"{driver}() on a thread while main pumped")
        self._check_everything_ran(driver)
        if driver == "wait":
            assert not _boc._state()["running"], "after wait() on another thread, the pool still runs"

    @rule(driver=st.sampled_from(("wait", "quiesce")))
    @_step
    def wait_briefly(self, driver):
        """wait()/quiesce() with a 20 ms timeout, gates left shut: a worker body
        blocked at its gate must make it time out (or a main-side body's
        BaseException comes out first)."""
        with self.lock:
            blocked = [
                node
                for node in self.nodes.values()
                if node.plan.gate and not node.gate_open and not node.exited and not node.main_side
            ]
        call = getattr(boc, driver)
        _, error, window, _ = self._drive(lambda: call(timeout=0.02))
        if isinstance(error, TimeoutError) and not hasattr(error, "bid"):
            self.events.add(f"{driver}(timeout) timed out")
            assert "still" in str(error), f"{driver}(timeout=0.02) timed out without saying what waits: {error}"
            self._check_raised(f"{driver}(timeout=0.02)", None, window, raise_on_error=False)
            return
        self._check_raised(f"{driver}(timeout=0.02)", error, window, raise_on_error=False)
        if error is None:
            assert not blocked, f"{driver}(timeout=0.02) returned while {blocked} were blocked at their gates"
            self._check_everything_ran(driver)

    @rule(workers=st.integers(0, 2))
    @_step
    def start_again(self, workers):
        """start(workers) between programs' phases: refused while a pool of
        another size runs, else the next behaviors get the new count."""
        if not all(node.exited for node in self.nodes.values()):
            return
        running = _boc._state()["running"]
        if running and workers != self.workers:
            try:
                boc.start(workers=workers)
            except RuntimeError:
                return
            raise AssertionError(f"start(workers={workers}) did not raise while a pool of {self.workers} runs")
        boc.start(workers=workers)
        self.workers = workers
        self.phase += 1

    @rule(tag=st.sampled_from(TAG_NAMES))
    @_step
    def send(self, tag):
        self._send(tag)

    @rule(
        tags=st.sampled_from((("m0",), ("m1",), ("m0", "m1"))),
        timeout=st.sampled_from((0, 0.005)),
        with_after=st.booleans(),
    )
    @_step
    def receive(self, tags, timeout, with_after):
        quiet = self._quiet()
        queued = self._queued(tags)
        problems: list[str] = []
        mid = self._receive(tags, timeout, with_after, problems)
        assert not problems, "\n".join(problems)
        if mid is not None:
            self.events.add("the main thread received a message")
        if quiet:
            if not queued:
                assert mid is None, f"received message {mid} under {tags}, but none was queued"
            else:
                assert mid is not None, f"receive({tags!r}) timed out, but messages {queued} were queued"
                sender = self.sent[mid][1]
                oldest = min(m for m in queued if self.sent[m][1] == sender)
                assert mid == oldest, f"received message {mid}, but {oldest} from the same sender was queued before it"
                if self.workers == 0:
                    assert mid == queued[0], f"received message {mid}, but {queued[0]} was the oldest"

    @rule(tags=st.sampled_from((("m0",), ("m1",), ("m0", "m1"))))
    @_step
    def drain(self, tags):
        quiet = self._quiet()
        queued = self._queued(tags)
        got = boc.drain([full_tag(tag) for tag in tags])
        problems: list[str] = []
        mids = [self._record_received(tag, contents, tags, problems) for tag, contents in got]
        assert not problems, "\n".join(problems)
        if quiet:
            assert sorted(mids) == queued, f"drain({tags}) returned {mids}, but {queued} were queued"
            if self.workers == 0:
                assert mids == queued, f"drain({tags}) returned {mids}, not in the order sent {queued}"

    @rule(op=st.sampled_from(("read", "write", "delete", "update", "update_to_removed", "increment")))
    @_step
    def notice(self, op):
        """The main thread writes or reads the noticeboard: `op` is `read`,
        `write`/`delete`/`update`/`update_to_removed` of the key only main
        writes, or `increment` of the key bodies increment too."""
        if op == "read":
            self._notice_read()
        elif op == "write":
            self._notice_write()
        elif op == "delete":
            self._notice_delete()
        elif op == "increment":
            self._notice_increment()
        else:
            self._notice_update(remove=op == "update_to_removed")

    def _notice_write(self):
        with self.lock:
            version = len(self.history)
            self.history.append(version)
        boc.notice_write(KEY_MAIN, version)

    def _notice_delete(self):
        with self.lock:
            self.history.append(ABSENT)
        boc.notice_delete(KEY_MAIN)

    def _notice_update(self, remove):
        with self.lock:
            current = self.history[-1]
            version = len(self.history)
            self.history.append(ABSENT if remove else version)
        seen = []

        def update(value):
            seen.append(value)
            return boc.REMOVED if remove else version

        boc.notice_update(KEY_MAIN, update, default=ABSENT)
        assert seen == [current], f"notice_update's function got {seen}, the key held {current!r}"

    def _notice_increment(self):
        boc.notice_update(KEY_COUNT, lambda count: count + 1, default=0)
        with self.lock:
            self.count_done += 1

    def _notice_read(self):
        quiet = self._quiet()
        with self.lock:
            count_before = self.count_done
        main = boc.notice_read(KEY_MAIN, ABSENT)
        board = boc.noticeboard()
        count = boc.notice_read(KEY_COUNT, 0)
        body = boc.notice_read(KEY_BODY, ABSENT)
        assert main == self.history[-1], f"notice_read({KEY_MAIN!r}) is {main!r}, the model says {self.history[-1]!r}"
        assert board.get(KEY_MAIN, ABSENT) == self.history[-1], f"noticeboard() is {board!r}"
        assert count >= max(count_before, self.count_seen_on_main), (
            f"{KEY_COUNT} is {count}, but {count_before} increments were done and main saw {self.count_seen_on_main}"
        )
        self.count_seen_on_main = count
        if quiet:
            assert count == self.count_done, f"{KEY_COUNT} is {count}, the model says {self.count_done}"
            if self.workers == 0 or not self.body_writes:
                last = self.body_writes[-1] if self.body_writes else ABSENT
                assert body == last, f"{KEY_BODY} is {body!r}, the model says {last!r}"
            else:
                assert body in self.body_writes, f"{KEY_BODY} is {body!r}, written by none of {self.body_writes}"

    @invariant()
    @_step
    def finished_cowns_are_free(self):
        """Every cown whose behaviors have all returned can be read from main."""
        for incarnation in list(self.current.values()):
            if self._idle(incarnation.uid):
                value, _ = self._read_outside(incarnation.cown, incarnation.uid)
                assert type(value) is Box and value.uid == incarnation.uid, f"{incarnation.label}.value is {value!r}"

    @invariant()
    def no_violations(self):
        new = DROPPED[self.n_dropped_seen :]
        self.n_dropped_seen += len(new)
        for uid, ident, where in new:
            incarnation = self.incarnation_of.get(uid)
            if incarnation is not None and incarnation.pinned and ident != MAIN_IDENT:
                self._violation(f"the value of pinned {incarnation.label} was dropped off the main thread, {where}")
        with self.lock:
            if self.violations:
                self.failed = True

    # --- the end of a program ------------------------------------------------------------

    def _settle_leftovers(self) -> None:
        """Waits until nothing is left (main-side BaseExceptions of an earlier, failed example may interrupt)."""
        for _ in range(100):
            try:
                boc.wait(timeout=PATIENCE)
                return
            except (ModelAbort, ModelInterrupt, ModelExit, ModelError):
                continue

    def teardown(self):
        try:
            self.finish()
            if not self.failed:
                self._summarize()
        finally:
            self._clean_up()
        self._assert_no_violations(final=True)

    @_step
    def finish(self) -> None:
        self._finish()

    def _finish(self) -> None:
        # Wait for everything; main-side BaseExceptions come out one by one.
        self._open_gates()
        for _ in range(len(self.nodes) + 1):
            _, error, window, _ = self._drive(lambda: boc.wait(timeout=PATIENCE))
            self._check_raised("wait() at the end", error, window, raise_on_error=False)
            if error is None:
                break
        del error
        self._check_everything_ran("wait")
        # Messages: what nobody received is still queued, in order per sender.
        queued = self._queued(TAG_NAMES)
        got = boc.drain([full_tag(tag) for tag in TAG_NAMES])
        problems: list[str] = []
        mids = [self._record_received(tag, contents, TAG_NAMES, problems) for tag, contents in got]
        assert not problems, "\n".join(problems)
        assert sorted(mids) == queued, f"at the end, drain returned {mids}, but {queued} were queued"
        # Let go of everything; what was never retrieved must be reported, and
        # pinned values must be dropped on the main thread.
        self.handles.clear()
        for incarnation in self.incarnations:
            incarnation.cown = None
        self.current.clear()
        gc.collect()
        boc.wait(timeout=PATIENCE)
        boc.pump()
        self._assert_no_violations()
        for node in self.nodes.values():
            if node.propagated:
                continue  # raised to the caller: reporting it too is allowed, not required
            expected = int(node.plan.outcome != "return" and not node.retrieved)
            assert node.reports == expected, (
                f"{node} raised {node.plan.outcome!r}, retrieved={node.retrieved}, dropped={node.dropped}: "
                f"{node.reports} 'never retrieved' reports, expected {expected}"
            )
        for incarnation in self.incarnations:
            if incarnation.pinned and incarnation.uid not in DROPPED_ON:
                cown = incarnation.ref()
                held_by = _holders(cown) if cown is not None else ""
                del cown
                raise AssertionError(
                    f"the value of pinned {incarnation.label} was never dropped: the cown is "
                    + (f"alive, held by:\n{held_by}" if held_by else "gone, its value was kept")
                    + f"\nthreads: {[thread.name for thread in threading.enumerate()]}; state: {_boc._state()}"
                )
        self.no_violations()
        self._assert_no_violations()
        state = _boc._state()
        assert state["in_flight"] == 0 and state["main_pending"] == 0, f"at the end: {state}"

    def _summarize(self) -> None:
        """Hypothesis statistics (--hypothesis-show-statistics): what the programs exercised."""
        if not currently_in_test_context():
            return  # a program replayed by hand
        event(f"workers={self.workers}")
        nodes = list(self.nodes.values())
        event(f"behaviors run: {min(len(nodes) // 10 * 10, 50)}+")
        for label, present in (
            ("a nested behavior", any(node.parent for node in nodes)),
            ("a pinned behavior", self.workers > 0 and any(node.main_side for node in nodes)),
            ("a list with a duplicate", any(
                not isinstance(t, str) and len(set(t)) < len(t) for node in nodes for t in node.plan.targets
            )),
            ("a worker body raised a BaseException", any(
                not node.main_side and node.plan.outcome in BASE_KINDS for node in nodes
            )),
            ("a 'never retrieved' report", any(node.reports for node in nodes)),
        ):
            if present:
                event(label)
        for label in sorted(self.events):
            event(label)

    def _clean_up(self) -> None:
        try:
            self._open_gates()
            if self.failed:
                self._settle_leftovers()
                # Let go of what a failed program holds, so its exceptions are
                # reported now rather than at exit (reports the model expects).
                for bid in self.handles:
                    self.nodes[bid].dropped = True
                self.handles.clear()
                for incarnation in self.incarnations:
                    incarnation.cown = None
                self.current.clear()
                gc.collect()
                boc.wait(timeout=PATIENCE)
            for key in KEYS:
                boc.notice_delete(key)
            boc.drain([full_tag(tag) for tag in TAG_NAMES])
        finally:
            self.logger.removeHandler(self.catcher)
            self.logger.propagate = self.logger_propagate
            gc.unfreeze()


BocModel.TestCase.settings = settings(
    max_examples=N_EXAMPLES,
    deadline=None,
    stateful_step_count=40,
    # One failure, shrunk (Hypothesis gives up shrinking after 5 minutes), not all.
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# One pytest test runs every program, and a failure is then shrunk for up to 5
# minutes: the suite's per-test --timeout would cut the report off. A hung
# program fails sooner, through PATIENCE.
TestModel = pytest.mark.timeout(600 + 2 * N_EXAMPLES)(BocModel.TestCase)
