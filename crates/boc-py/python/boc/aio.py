"""asyncio integration: run main-side behaviors from a running event loop,
and await results of behaviors without blocking it.

::

    import asyncio
    import boc
    import boc.aio

    async def main():
        with boc.aio.attach():                 # the loop now pumps boc
            @boc.when(boc.Cown(20))
            def doubled(cown):                 # runs on a worker
                return cown.value * 2
            print(await boc.aio.result(doubled))   # 40, the loop never blocked

    asyncio.run(main())

``attach`` watches ``boc.pump_fd()`` with ``loop.add_reader``: no polling.
When main-side work arrives the descriptor becomes readable and the loop
calls ``boc.pump`` with a deadline, so a busy main-side queue cannot starve
the loop's other callbacks; while work is left the descriptor stays
readable and the loop comes back to it after its other ready callbacks.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional, TypeVar

import boc

from ._hosts import positive_millis, require_main_thread

__all__ = ["Attachment", "attach", "result"]

_T = TypeVar("_T")

#: The default pump deadline of an attachment, in milliseconds.
DEFAULT_DEADLINE_MS = 5.0


class Attachment:
    """A running event loop pumping boc's main-side behaviors.

    Made by :func:`attach`; ``detach()`` (or leaving a ``with`` block)
    stops the loop from pumping. Detaching twice is harmless.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline_ms: float) -> None:
        self._loop = loop
        self._deadline_ms = deadline_ms
        self._fd: Optional[int] = boc.pump_fd()
        loop.add_reader(self._fd, self._pump)
        # Work may already be waiting: the descriptor is then readable and
        # the loop sees it at its next iteration.

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop that pumps."""
        return self._loop

    @property
    def attached(self) -> bool:
        """True until :meth:`detach`."""
        return self._fd is not None

    def _pump(self) -> None:
        # BaseExceptions (KeyboardInterrupt, SystemExit) from a main-side
        # body propagate out of the loop, as from any callback; a body's
        # Exception lands on its result cown and does not disturb the loop.
        boc.pump(deadline_ms=self._deadline_ms)

    def detach(self) -> None:
        """Stop pumping from the loop. Main-side behaviors then wait for
        ``pump()`` or ``wait()`` (the watchdog reports them if they wait
        too long)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if not self._loop.is_closed():
            self._loop.remove_reader(fd)

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.detach()

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<boc.aio.Attachment {state} to {self._loop!r}, deadline {self._deadline_ms} ms>"


def attach(loop: Optional[asyncio.AbstractEventLoop] = None, *, deadline_ms: float = DEFAULT_DEADLINE_MS) -> Attachment:
    """Make ``loop`` (default: the running loop) pump boc's main-side work.

    Call it on the main thread, where the loop must run: main-side
    behaviors (those holding a ``PinnedCown``, or all of them with
    ``workers=0``) then run inside the loop, each pump lasting at most
    ``deadline_ms`` milliseconds before the loop gets its turn again (a
    running behavior is never interrupted). Returns an :class:`Attachment`;
    use it as a context manager or call ``detach()``.

    Raises ``RuntimeError`` off the main thread or with no loop running
    and none given; ``TypeError``/``ValueError`` for a bad ``deadline_ms``.
    """
    require_main_thread("boc.aio.attach()")
    deadline_ms = positive_millis("deadline_ms", deadline_ms)
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "boc.aio.attach() needs an event loop: call it from a coroutine running in the loop, or pass loop="
            ) from None
    elif not isinstance(loop, asyncio.AbstractEventLoop):
        raise TypeError(f"loop must be an asyncio event loop, not {type(loop).__name__}")
    return Attachment(loop, deadline_ms)


def _settle(future: asyncio.Future[Any], value: Any, failed: bool) -> None:
    if future.done():  # cancelled meanwhile
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)


async def result(cown: boc.Cown[_T]) -> _T:
    """Wait, without blocking the loop, for the behavior that produces
    ``cown`` (a result cown bound by ``@when``) and return its value, or
    raise the exception it raised.

    It schedules a behavior on ``cown``, which runs once the producing
    behavior has finished and hands the value to the loop. That behavior
    runs on a worker, or on the main thread if ``cown`` is pinned or boc
    runs with ``workers=0``, in which case the loop must be attached
    (:func:`attach`) for it to run. Cancelling the wait does not cancel
    the producing behavior.
    """
    if not isinstance(cown, boc.Cown):
        raise TypeError(f"boc.aio.result() takes a cown (the name @when binds), not {type(cown).__name__}")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    @boc.when(cown)
    def _deliver(cown: boc.Cown[Any]) -> None:
        failed = cown.exception
        try:
            loop.call_soon_threadsafe(_settle, future, cown.value, failed)
        except RuntimeError:  # the loop closed: nobody is waiting any more
            pass

    return await future
