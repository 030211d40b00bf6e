"""boc.aio: an asyncio loop pumps main-side work, and awaits results."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import boc
import boc.aio
import pytest
from helpers import run_in_thread
from boc import Cown, PinnedCown, when


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_loop_affine_queue_in_a_pinned_cown_is_fed_by_worker_results():
    async def main():
        queue: asyncio.Queue[int] = asyncio.Queue()
        inbox = PinnedCown(queue)
        with boc.aio.attach():
            for i in range(20):

                @when(Cown(i))
                def squared(cown):
                    return cown.value * cown.value

                @when(inbox, squared)
                def _(inbox, squared):
                    assert threading.current_thread() is threading.main_thread()
                    inbox.value.put_nowait(squared.value)

            return sorted([await asyncio.wait_for(queue.get(), 30) for _ in range(20)])

    assert run(main()) == sorted(i * i for i in range(20))
    boc.wait()


def test_result_returns_the_value_without_blocking_the_loop():
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.ensure_future(ticker())
        release = threading.Event()

        @when(Cown(6))
        def slow(cown):
            release.wait(30)
            return cown.value * 7

        asyncio.get_running_loop().call_later(0.05, release.set)
        value = await asyncio.wait_for(boc.aio.result(slow), 30)
        ticking.cancel()
        return value, ticks

    value, ticks = run(main())
    assert value == 42
    assert ticks > 1, "the loop ran other tasks while waiting"
    boc.wait()


def test_result_raises_the_behavior_exception():
    async def main():
        @when(Cown(0))
        def failing(cown):
            raise KeyError("missing")

        with pytest.raises(KeyError, match="missing"):
            await asyncio.wait_for(boc.aio.result(failing), 30)

    run(main())
    boc.wait()


def test_result_of_a_main_side_behavior_needs_the_attachment():
    async def main():
        with boc.aio.attach():

            @when(PinnedCown(5))
            def on_main(cown):
                return threading.current_thread() is threading.main_thread()

            return await asyncio.wait_for(boc.aio.result(on_main), 30)

    assert run(main()) is True
    boc.wait()


def test_a_busy_main_side_queue_does_not_starve_the_loop():
    events = []

    async def main():
        async def ticker():
            while True:
                events.append("tick")
                await asyncio.sleep(0)

        with boc.aio.attach(deadline_ms=2):
            screen = PinnedCown(None)
            done = asyncio.Event()
            for i in range(100):

                @when(screen)
                def _(screen, i=i):
                    time.sleep(0.001)
                    events.append("behavior")
                    if i == 99:
                        done.set()

            ticking = asyncio.ensure_future(ticker())
            await asyncio.wait_for(done.wait(), 30)
            ticking.cancel()

    run(main())
    boc.wait()
    last_behavior = len(events) - 1 - events[::-1].index("behavior")
    ticks_before_the_end = events[:last_behavior].count("tick")
    assert ticks_before_the_end >= 5, "the loop got no turns while main-side work was queued"


def test_detach_stops_pumping():
    async def main():
        attachment = boc.aio.attach()
        assert attachment.attached
        attachment.detach()
        attachment.detach()
        assert not attachment.attached

        @when(PinnedCown(1))
        def waiting(cown):
            return cown.value

        await asyncio.sleep(0.05)
        return boc._boc._state()["main_pending"]

    assert run(main()) == 1
    boc.wait()


def test_attach_needs_the_main_thread_and_a_loop():
    with pytest.raises(RuntimeError, match="needs an event loop"):
        boc.aio.attach()
    def off_main():
        loop = asyncio.new_event_loop()
        try:
            boc.aio.attach(loop)
        finally:
            loop.close()

    error = run_in_thread(off_main)
    assert isinstance(error, RuntimeError) and "main thread" in str(error)


@pytest.mark.parametrize(
    ("deadline", "error"),
    [(0, ValueError), (-1, ValueError), ("5", TypeError), (True, TypeError), (math.inf, ValueError), (10**400, ValueError)],
)
def test_attach_refuses_a_bad_deadline(deadline, error):
    async def main():
        with pytest.raises(error, match="deadline_ms"):
            boc.aio.attach(deadline_ms=deadline)

    run(main())


def test_result_takes_a_cown():
    async def main():
        with pytest.raises(TypeError, match="takes a cown"):
            await boc.aio.result(42)  # type: ignore[arg-type]

    run(main())


def test_one_attachment_at_a_time():
    async def main():
        with boc.aio.attach():
            with pytest.raises(RuntimeError, match="already attached"):
                boc.aio.attach()
        # Detached: attaching again works.
        boc.aio.attach().detach()

    run(main())


class _NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop that cannot watch descriptors, like a proactor."""

    def add_reader(self, fd, callback, *args):
        raise NotImplementedError


def test_a_loop_without_readers_is_woken_by_the_pump_waker():
    loop = _NoReaderLoop()
    try:

        async def main():
            with boc.aio.attach() as attachment:
                assert not attachment.uses_reader

                @when(PinnedCown(3))
                def on_main(cown):
                    return cown.value * 2

                return await asyncio.wait_for(boc.aio.result(on_main), 30)

        assert loop.run_until_complete(main()) == 6
    finally:
        loop.close()
    boc.wait()


def test_a_cancelled_result_leaves_the_exception_to_be_reported(caplog):
    import gc
    import logging

    caplog.set_level(logging.ERROR, logger="boc")
    release = threading.Event()

    async def main():
        @when(Cown(0))
        def failing(cown):
            release.wait(30)
            raise ValueError("nobody waited")

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(boc.aio.result(failing), 0.01)
        release.set()

    run(main())
    boc.wait()
    gc.collect()
    boc.wait()
    assert any("never retrieved" in record.getMessage() for record in caplog.records)
