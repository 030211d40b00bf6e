"""Worker-to-main latency under boc.aio.attach, against a polling loop.

A worker behavior notes the time and schedules a behavior on a pinned cown;
that behavior runs on the main thread, inside the asyncio loop, and notes
the time again. One sample at a time (the next starts when the last
arrived), so this is the latency of an idle loop waking for main-side work.
The baseline is the naive integration: the loop calls ``boc.pump()`` every
millisecond (``call_later``), in the same process.

    python aio_latency.py [--samples N] [--json]
"""

import argparse
import asyncio
import json
import statistics
import sys
import time

import boc
import boc.aio


async def measure(n_samples, attach):
    loop = asyncio.get_running_loop()
    screen = boc.PinnedCown(None)
    samples = []
    polling = None
    attachment = boc.aio.attach() if attach else None
    if not attach:

        def poll():
            nonlocal polling
            boc.pump()
            polling = loop.call_later(0.001, poll)

        poll()
    try:
        for _ in range(n_samples):
            arrived = loop.create_future()

            @boc.when(boc.Cown(None))
            def _(cown):
                sent = time.perf_counter()

                @boc.when(screen)
                def _(screen):
                    samples.append(time.perf_counter() - sent)
                    arrived.set_result(None)

            await asyncio.wait_for(arrived, 30)
    finally:
        if attachment is not None:
            attachment.detach()
        if polling is not None:
            polling.cancel()
    return samples


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    boc.start(workers=1)
    asyncio.run(measure(100, True))  # warm up
    results = {}
    for name, attach in (("attach", True), ("polling 1 ms", False)):
        samples = asyncio.run(measure(args.samples, attach))
        results[name] = {
            "p50_us": statistics.median(samples) * 1e6,
            "p99_us": percentile(samples, 0.99) * 1e6,
        }
    boc.wait()
    results["python"] = sys.version.split()[0]
    if args.json:
        print(json.dumps(results))
    else:
        for name in ("attach", "polling 1 ms"):
            print(f"{name:13} p50 {results[name]['p50_us']:8.1f} us   p99 {results[name]['p99_us']:8.1f} us")


if __name__ == "__main__":
    main()
