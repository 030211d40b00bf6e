"""200,000 behaviors mixing pinned and worker cowns, with nested @when:
nothing lost, memory flat afterwards."""

from __future__ import annotations

import gc
import tracemalloc

import boc
from boc import Cown, PinnedCown, wait, when

N_OUTER = 50_000  # each schedules 3 more: 200,000 behaviors per round
N_COUNTERS = 64


def round_of_work():
    counters = [Cown(0) for _ in range(N_COUNTERS)]
    screen = PinnedCown({"frames": 0, "seen": 0})
    for i in range(N_OUTER):
        counter = counters[i % N_COUNTERS]

        @when(counter)
        def _(counter, i=i):
            counter.value += 1
            other = counters[(i * 7 + 3) % N_COUNTERS]

            @when(counter, other)
            def _(counter, other):
                counter.value += 1
                other.value += 1

            @when([counter])
            def _(cowns):
                cowns[0].value += 1

            if i % 100 == 0:

                @when(screen, counter)
                def _(screen, counter):
                    screen.value["frames"] += 1
                    screen.value["seen"] += counter.value

            else:

                @when(counter)
                def _(counter):
                    counter.value += 1

    wait()
    total = sum(counter.value for counter in counters)
    return total, screen.value["frames"]


def test_two_hundred_thousand_behaviors_lose_nothing_and_leave_memory_flat():
    boc.wait()
    boc.start(workers=2)
    total, frames = round_of_work()
    n_pinned = N_OUTER // 100
    assert frames == n_pinned
    assert total == N_OUTER * 5 - n_pinned
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        boc.start(workers=2)
        total, frames = round_of_work()
        assert (total, frames) == (N_OUTER * 5 - n_pinned, n_pinned)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Everything a round allocated is gone: a leak of even 16 bytes per
    # behavior would be over 3 MB.
    assert after - before < 512 * 1024, (before, after)
