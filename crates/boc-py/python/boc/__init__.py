"""boc: behavior-oriented concurrency, with pinned (main-thread) cowns.

Shared state lives in cowns (``Cown``); work is a behavior, a function
scheduled with ``@when(c1, c2, ...)`` that runs once it holds every cown it
names, exclusively. Behaviors that share a cown run one at a time, in the
order they were scheduled; others run in parallel on worker threads (truly
in parallel on free-threaded CPython). A ``PinnedCown`` holds a value that
must stay on the main thread (a GUI widget, an asyncio object, a GL
context): every behavior that names one runs on the main thread, when that
thread calls ``pump()`` or ``wait()``.

See docs/python.md for the guide.
"""

from __future__ import annotations

import atexit
from typing import NamedTuple, Optional

from . import _boc
from ._boc import (
    Cown,
    PinnedCown,
    pump_fd,
    quiesce,
    set_pump_waker,
    set_pump_watchdog,
    start,
    stop,
    wait,
    when,
)

__all__ = [
    "Cown",
    "PinnedCown",
    "PumpResult",
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
    """What one ``pump()`` call did."""

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

    ``max_behaviors`` caps how many run; ``deadline_ms`` stops starting new
    ones after that many milliseconds (a running body is never
    interrupted). With neither, the queue is drained, including behaviors
    that become ready meanwhile. A body's ``Exception`` lands on its result
    cown and counts in ``raised``; with ``raise_on_error=True`` the first
    one is raised here after that behavior has released its cowns, and the
    rest stay queued. A ``BaseException`` (``KeyboardInterrupt``,
    ``SystemExit``) always propagates the same way.

    Raises ``RuntimeError`` off the main thread or inside a main-side
    behavior; ``TypeError``/``ValueError`` for a bad bound. Before any
    runtime exists it does nothing and returns zeros.
    """
    return PumpResult(*_boc.pump(max_behaviors, deadline_ms, raise_on_error))


def _shutdown_at_exit() -> None:
    # Worker threads hold interpreter thread states: stop them before the
    # interpreter finalizes. Behaviors still scheduled run first.
    try:
        _boc.stop()
    except BaseException:  # exiting: report, never raise
        import logging

        logging.getLogger("boc").exception("boc could not finish its behaviors at exit")


atexit.register(_shutdown_at_exit)
