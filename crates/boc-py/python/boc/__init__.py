"""boc: behavior-oriented concurrency, with pinned (main-thread) cowns.

Shared state lives in cowns (``Cown``); work is a behavior, a function
scheduled with ``@when(c1, c2, ...)`` that runs once it holds every cown it
names, exclusively. Behaviors that share a cown run one at a time, in the
order they were scheduled; others run in parallel on worker threads (truly
in parallel on free-threaded CPython). A ``PinnedCown`` holds a value that
must stay on the main thread (a GUI widget, an asyncio object, a GL
context): every behavior that names one runs on the main thread, when that
thread calls ``pump()`` or ``wait()``.

::

    import boc
    from boc import Cown, when

    a, b = Cown(100), Cown(0)

    @when(a, b)
    def transfer(a, b):
        a.value -= 10
        b.value += 10
        return b.value

    boc.wait()               # runs everything, then stops the workers
    print(transfer.value)    # 10: the name is bound to the result cown

Exceptions raised by a body land on its result cown (``.exception`` is
true, ``.unwrap()`` re-raises); one never retrieved is logged on logger
``"boc"`` when the cown is dropped.

Two channels work outside cowns, from any thread and inside behaviors:
tagged messages (``send``, ``receive``, ``drain``) and the noticeboard, a
process-wide key/value board for read-mostly state (``notice_write``,
``notice_update``, ``notice_delete``, ``notice_read``, ``noticeboard()``).
Both carry the objects themselves, never copies.

See docs/python.md for the guide.
"""

from __future__ import annotations

import atexit
import os
from typing import NamedTuple, Optional

from collections.abc import Iterator, Mapping
from typing import Any

from . import _boc
from ._boc import (
    REMOVED,
    TIMEOUT,
    Cown,
    PinnedCown,
    drain,
    notice_delete,
    notice_read,
    notice_update,
    notice_write,
    pump_fd,
    quiesce,
    receive,
    send,
    set_pump_waker,
    set_pump_watchdog,
    start,
    stop,
    wait,
    when,
)

__all__ = [
    "REMOVED",
    "TIMEOUT",
    "Cown",
    "PinnedCown",
    "PumpResult",
    "drain",
    "notice_delete",
    "notice_read",
    "notice_update",
    "notice_write",
    "noticeboard",
    "receive",
    "send",
    "pump",
    "pump_fd",
    "quiesce",
    "set_pump_waker",
    "set_pump_watchdog",
    "start",
    "stop",
    "wait",
    "when",
]


class PumpResult(NamedTuple):
    """What one ``pump()`` call did.

    Attributes:
        executed: main-side behaviors run, including those that raised.
        deadline_reached: true if ``deadline_ms`` stopped the pump while
            behaviors were still ready (they are counted in ``pending``).
        raised: behaviors whose body raised an ``Exception``; each one
            is on that behavior's result cown.
        pending: main-side behaviors ready and waiting when the call
            returned, left for the next ``pump()``. Defaults to 0, so
            ``PumpResult(executed, deadline_reached, raised)`` still works.
    """

    executed: int
    """Main-side behaviors run (including those that raised)."""
    deadline_reached: bool
    """True if the deadline stopped the pump before the queue was empty."""
    raised: int
    """Behaviors whose body raised (the exception is on their result cown)."""
    pending: int = 0
    """Main-side behaviors still ready and waiting after the call."""


def pump(
    max_behaviors: Optional[int] = None,
    deadline_ms: Optional[float] = None,
    raise_on_error: bool = False,
) -> PumpResult:
    """Run ready main-side behaviors on the main thread, within a budget.

    Main-side behaviors are those whose request set holds a ``PinnedCown``
    (or all behaviors, after ``start(workers=0)``). They run only when the
    main thread calls ``pump()`` or ``wait()``. An interactive program
    calls ``pump`` from its own event loop, once per iteration, with a
    budget; ``pump_fd()`` or ``set_pump_waker()`` tell the loop when work
    arrives, and the watchdog (``set_pump_watchdog``) warns when nobody
    pumps.

    Args:
        max_behaviors: run at most this many (a positive ``int``).
        deadline_ms: stop *starting* behaviors after this many
            milliseconds (a positive ``int`` or ``float``); a running body
            is never interrupted, so the call can overrun by one body.
        raise_on_error: re-raise the first ``Exception`` a body raises,
            after that behavior has released its cowns; the rest stay
            queued.

    With neither bound, the queue is drained, including behaviors that
    become ready during the call (the next link of a chain on one pinned
    cown). It never waits for behaviors that are not ready yet: with
    nothing ready it returns at once.

    A body's ``Exception`` lands on its result cown and counts in
    ``raised``, and pumping goes on (unless ``raise_on_error``). A
    ``BaseException`` (``KeyboardInterrupt``, ``SystemExit``) always
    propagates, after that behavior's cleanup; queued behaviors stay
    queued for the next call.

    Returns:
        A ``PumpResult(executed, deadline_reached, raised, pending)``.

    Raises:
        RuntimeError: off the main thread, or inside a main-side behavior
            (pumping is not re-entrant).
        TypeError: a bound of the wrong type (``bool``, ``str``, a
            ``float`` for ``max_behaviors``; a non-bool ``raise_on_error``).
        ValueError: a bound of ``0`` or less.

    Before any runtime exists it does nothing and returns zeros.
    """
    return PumpResult(*_boc.pump(max_behaviors, deadline_ms, raise_on_error))


class _Noticeboard(Mapping[str, Any]):
    """A read-only mapping over one snapshot of the noticeboard.

    What ``noticeboard()`` returns. It never changes, and it refuses item
    assignment and deletion (``TypeError``): write with ``notice_write``,
    ``notice_update`` and ``notice_delete``.
    """

    __slots__ = ("_snapshot",)

    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot

    def __getitem__(self, key: str) -> Any:
        return self._snapshot[key]

    def __contains__(self, key: object) -> bool:
        return key in self._snapshot

    def __len__(self) -> int:
        return len(self._snapshot)

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshot.keys())

    def __repr__(self) -> str:
        return f"<boc.noticeboard {dict(self)!r}>"


def noticeboard() -> Mapping[str, Any]:
    """A read-only mapping of the whole noticeboard, as one snapshot.

    Inside a behavior it is the snapshot the behavior's first read took
    (the rest of the behavior sees the same one, even after its own
    writes); outside behaviors, a fresh one. Later writes never change a
    snapshot: call ``noticeboard()`` again to see them. The values are the
    objects written, shared with every other reader: do not mutate them.

    While a snapshot is alive (the mapping is referenced, or the behavior
    that took it still runs), each write to the board copies the board's
    table first, O(keys): drop the mapping when you are done with it.
    """
    return _Noticeboard(_boc._noticeboard())


# The exit-time stop: runs what is still scheduled, then stops the workers
# before the interpreter finalizes (worker threads hold interpreter thread
# states). See docs/python.md, "Interpreter exit".
atexit.register(_boc._shutdown_at_exit)

if hasattr(os, "register_at_fork"):
    # A forked child inherits no worker threads: drop the dead pool there so
    # the child's first @when starts a fresh one instead of waiting forever,
    # and the pump waker, whose thread it does not have either. (The locks
    # other threads may hold at the fork are held across it by the
    # extension's own pthread_atfork handlers.)
    os.register_at_fork(after_in_child=_boc._after_fork_in_child)
