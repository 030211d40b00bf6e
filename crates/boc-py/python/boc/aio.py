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

from ._hosts import claim, positive_millis, release, require_main_thread

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
        self._attached = True
        self._pumping = False
        claim(self)
        self._fd: Optional[int] = boc.pump_fd()
        try:
            loop.add_reader(self._fd, self._pump)
        except NotImplementedError:
            # A loop that cannot watch descriptors (a proactor): the waker,
            # called on a boc thread, posts a pump to the loop instead.
            self._fd = None
            boc.set_pump_waker(self._wake)
            loop.call_soon(self._pump)  # for work that is already waiting
        except BaseException:
            release(self)
            raise
        # With a reader, work already waiting has made the descriptor
        # readable: the loop sees it at its next iteration.

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop that pumps."""
        return self._loop

    @property
    def attached(self) -> bool:
        """True until :meth:`detach`."""
        return self._attached

    def _host_gone(self) -> bool:
        """True once the loop is closed: it will never pump again."""
        return self._loop.is_closed()

    @property
    def uses_reader(self) -> bool:
        """True if the loop watches boc's descriptor; false if boc's waker
        posts pumps to it."""
        return self._fd is not None

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._pump)
        except RuntimeError:  # the loop closed
            pass

    def _pump(self) -> None:
        # Not re-entered from a loop nested in a main-side body.
        if not self._attached or self._pumping:
            return
        self._pumping = True
        try:
            # BaseExceptions (KeyboardInterrupt, SystemExit) from a main-side
            # body propagate out of the loop, as from any callback; a body's
            # Exception lands on its result cown and does not disturb it.
            pending = boc.pump(deadline_ms=self._deadline_ms).pending
        finally:
            self._pumping = False
        if pending and self._fd is None:
            # With a reader the descriptor stays readable while work is
            # left; the waker only fires again for new work.
            self._loop.call_soon(self._pump)

    def detach(self) -> None:
        """Stop pumping from the loop. Main-side behaviors then wait for
        ``pump()`` or ``wait()`` (the watchdog reports them if they wait
        too long)."""
        if not self._attached:
            return
        self._attached = False
        release(self)
        if self._fd is None:
            boc.set_pump_waker(None)
        elif not self._loop.is_closed():
            self._loop.remove_reader(self._fd)

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.detach()

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        how = "reader" if self.uses_reader else "waker"
        return f"<boc.aio.Attachment {state} ({how}) to {self._loop!r}, deadline {self._deadline_ms} ms>"


def attach(loop: Optional[asyncio.AbstractEventLoop] = None, *, deadline_ms: float = DEFAULT_DEADLINE_MS) -> Attachment:
    """Make ``loop`` (default: the running loop) pump boc's main-side work.

    Call it on the main thread, where the loop must run: main-side
    behaviors (those holding a ``PinnedCown``, or all of them with
    ``workers=0``) then run inside the loop, each pump lasting at most
    ``deadline_ms`` milliseconds before the loop gets its turn again (a
    running behavior is never interrupted). Returns an :class:`Attachment`;
    use it as a context manager or call ``detach()``. One loop pumps at a
    time: attaching while another attachment (``boc.aio`` or ``boc.tk``)
    is active raises ``RuntimeError``. A loop that cannot watch file
    descriptors is woken through ``boc.set_pump_waker`` instead.

    Raises ``RuntimeError`` off the main thread, with no loop running and
    none given, or while attached already; ``TypeError``/``ValueError``
    for a bad ``deadline_ms``.
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
    the producing behavior; an exception it raised is then not consumed
    here (it is reported when the cown is dropped unread).
    """
    if not isinstance(cown, boc.Cown):
        raise TypeError(f"boc.aio.result() takes a cown (the name @when binds), not {type(cown).__name__}")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    @boc.when(cown)
    def _deliver(cown: boc.Cown[Any]) -> None:
        if future.cancelled():
            # Nobody waits: leave an exception unretrieved, so it is
            # reported when the cown is dropped rather than lost here.
            return
        failed = cown.exception
        try:
            loop.call_soon_threadsafe(_settle, future, cown.value, failed)
        except RuntimeError:  # the loop closed: nobody is waiting any more
            pass

    return await future
