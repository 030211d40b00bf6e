"""An asyncio service: workers compute, the event loop keeps its own objects.

asyncio objects (queues, futures, events) belong to their loop: they are not
thread-safe and must only be used on the loop's thread. Here the service keeps
one, an `asyncio.Queue` of "request served" events read by a monitor task, in
a `PinnedCown`, so behaviors can reach it and boc runs those behaviors on the
main thread, inside the loop.

For every request the service schedules a worker behavior that does the
computation (counting primes), then a pinned behavior that pushes an event
into the queue; the request's coroutine awaits the answer with
`boc.aio.result()`, which never blocks the loop. `boc.aio.attach()` makes
the running loop pump the pinned behaviors: it watches `boc.pump_fd()`, so
the loop sleeps until there is main-side work, and each pump has a deadline,
so a burst of events cannot starve the loop's other tasks.

    python aio_service.py [--requests N] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import threading
import time
from dataclasses import dataclass

import boc
import boc.aio
from boc import PinnedCown, when
from checks import report

LARGEST = 20_000


def sieve(n: int) -> bytearray:
    """Sieve of Eratosthenes: `sieve(n)[i]` is 1 if `i < n` is prime."""
    flags = bytearray([1]) * max(n, 2)
    flags[0] = flags[1] = 0
    for i in range(2, int(n**0.5) + 1):
        if flags[i]:
            flags[i * i :: i] = bytes(len(range(i * i, n, i)))
    return flags[:n]


def count_primes(n: int) -> int:
    """The number of primes below `n`: the service's CPU work, run on a worker."""
    return sum(sieve(n))


@dataclass
class Served:
    """An event the service puts on the monitor's queue."""

    request: int
    answer: int
    on_main: bool


class Service:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Served] = asyncio.Queue()
        # Behaviors reach the queue only through this pinned cown, so only the main thread touches it.
        self.events = PinnedCown(self.queue)

    async def handle(self, request: int, n: int) -> int:
        @when()  # no cown needed: the request's data is captured; any worker runs it
        def answer() -> int:
            return count_primes(n)

        @when(self.events, answer)  # holds a pinned cown: runs on the main thread, in the loop
        def publish(events: PinnedCown[asyncio.Queue[Served]], answer: boc.Cown[int]) -> None:
            on_main = threading.current_thread() is threading.main_thread()
            events.value.put_nowait(Served(request, answer.value, on_main))

        return await boc.aio.result(answer)  # the loop runs other requests meanwhile

    async def monitor(self, n_requests: int) -> list[Served]:
        """Reads the events. It runs in the loop, so it uses the queue directly."""
        seen = []
        while len(seen) < n_requests:
            seen.append(await self.queue.get())
            if len(seen) % (n_requests // 4 or 1) == 0:
                print(f"  monitor: {len(seen)}/{n_requests} requests served")
        return seen


async def serve(n_requests: int) -> tuple[list[int], list[int], list[float], list[Served], float]:
    rng = random.Random(1)
    sizes = [rng.randint(1_000, LARGEST) for _ in range(n_requests)]
    latencies: list[float] = []
    longest_stall = 0.0

    async def client(request: int) -> int:
        await asyncio.sleep(rng.uniform(0, 0.5))  # requests arrive over half a second
        started = time.perf_counter()
        answer = await service.handle(request, sizes[request])
        latencies.append(time.perf_counter() - started)
        return answer

    async def heartbeat() -> None:  # how long did the loop ever go without a turn?
        nonlocal longest_stall
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            longest_stall = max(longest_stall, time.perf_counter() - before - 0.005)

    with boc.aio.attach():  # from here on the loop pumps boc's main-side work
        service = Service()
        beating = asyncio.ensure_future(heartbeat())
        monitoring = asyncio.ensure_future(service.monitor(n_requests))
        answers = await asyncio.gather(*(client(i) for i in range(n_requests)))
        events = await asyncio.wait_for(monitoring, 30)
        beating.cancel()
    return sizes, list(answers), latencies, events, longest_stall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None, help="worker threads (default: boc's)")
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")

    boc.start(workers=args.workers)
    started = time.monotonic()
    sizes, answers, latencies, events, longest_stall = asyncio.run(serve(args.requests))
    boc.wait()
    elapsed = time.monotonic() - started

    reference = sieve(LARGEST)
    expected = [sum(reference[:n]) for n in sizes]
    ordered = sorted(latencies)
    p50, p99 = (ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3 for q in (0.5, 0.99))
    checks = [
        (answers == expected, f"{len(answers)} answers, all correct"),
        (sorted(e.request for e in events) == list(range(args.requests)), "the monitor saw every request once"),
        (all(e.on_main for e in events) and all(e.answer == expected[e.request] for e in events),
         "every event was queued on the main thread, with the right answer"),
    ]
    print(f"aio service: {args.requests} requests in {elapsed:.2f} s; reply latency p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms; the loop's longest stall {longest_stall * 1e3:.1f} ms")
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
