"""boc demo: the workers compute, the main thread draws.

A bank moves money between accounts: each account is a Cown, and a transfer
is a behavior that holds both of its accounts, so money is never lost or
made. Samplers estimate pi by Monte Carlo, each on its own cown. A "screen"
that may only be used on the main thread (like a Tk window or a GL context)
lives in a PinnedCown. Each frame, the host loop on the main thread hands the
workers a wave of transfers and samples, then schedules one pinned behavior
that redraws the screen, and pumps main-side work with boc.pump() while it
waits for the next frame: the coarse-grained pattern.

    python demo.py [--seconds S] [--workers N]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import selectors
import sys
import threading
import time
from dataclasses import dataclass

import boc
from boc import Cown, PinnedCown, when
from checks import report

N_ACCOUNTS, OPENING_BALANCE, TRANSFERS_PER_FRAME = 10, 1_000, 200
N_SAMPLERS, SAMPLES_PER_BEHAVIOR = 8, 20_000
FRAMES_PER_SECOND = 20


@dataclass
class Sampler:
    rng: random.Random
    hits: int = 0
    samples: int = 0


@dataclass
class Frame:
    """A consistent snapshot of the accounts and samplers, taken on a worker."""

    elapsed: float
    balances: list[int]
    n_transfers: int
    hits: int
    samples: int


class Screen:
    """Stands in for a window: it must only be used on the main thread, and it checks."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.tty = seconds, sys.stdout.isatty()
        self.n_uses = self.n_uses_off_main = self.n_frames = self.n_lines = 0
        self.last_line_at = -1.0
        try:
            "█░".encode(sys.stdout.encoding or "ascii")
            self.bar = "█░"
        except UnicodeEncodeError:
            self.bar = "#."

    def draw(self, frame: Frame, final: bool = False) -> None:
        self.n_uses += 1
        if threading.current_thread() is not threading.main_thread():
            self.n_uses_off_main += 1
            raise AssertionError("the screen was used off the main thread")
        self.n_frames += 1
        if self.tty:  # redraw in place
            lines = self.render(frame)
            up = f"\x1b[{self.n_lines}F" if self.n_lines else ""
            sys.stdout.write(up + "".join(f"{line}\x1b[K\n" for line in lines))
            sys.stdout.flush()
            self.n_lines = len(lines)
        elif final:
            print("\n".join(self.render(frame)))
        elif frame.elapsed - self.last_line_at >= 0.5:  # not a terminal: a line every half second
            self.last_line_at = frame.elapsed
            print(f"  {frame.elapsed:3.1f} s  {frame.n_transfers:>6,} transfers, total {sum(frame.balances):,}"
                  f"  |  pi ~ {4 * frame.hits / frame.samples:.5f} from {frame.samples:,} samples")

    def render(self, frame: Frame) -> list[str]:
        width, top = 36, max(2 * OPENING_BALANCE, *frame.balances)
        lines = [f"  bank: {frame.n_transfers:,} transfers, total {sum(frame.balances):,}"]
        for idx, balance in enumerate(frame.balances):
            n_full = round(width * balance / top)
            bar = self.bar[0] * n_full + self.bar[1] * (width - n_full)
            lines.append(f"    {'ABCDEFGHIJ'[idx]} {bar} {balance:>6,}")
        pi = 4 * frame.hits / frame.samples
        lines.append(f"  pi ~ {pi:.5f} from {frame.samples:,} samples (off by {abs(pi - math.pi):.5f})")
        done = round(30 * min(frame.elapsed / self.seconds, 1.0))
        lines.append(f"  [{'#' * done:<30}] {frame.elapsed:.1f} s, frame {self.n_frames}")
        return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long the host loop runs (default 3)")
    parser.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 2) - 1), help="worker threads")
    args = parser.parse_args()
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    build = "the GIL is on: behaviors interleave" if gil else "free-threaded: behaviors run in parallel"
    print(f"boc demo: {args.workers} workers, Python {sys.version.split()[0]}, {build}\n")

    boc.start(workers=args.workers)
    accounts = [Cown(OPENING_BALANCE) for _ in range(N_ACCOUNTS)]
    samplers = [Cown(Sampler(random.Random(seed))) for seed in range(N_SAMPLERS)]
    screen = PinnedCown(Screen(args.seconds))
    customers = random.Random(42)  # picks the transfers; only the main thread uses it
    started = time.monotonic()

    def transfer(src: Cown[int], dst: Cown[int], amount: int) -> None:
        @when(src, dst)
        def _(src, dst):
            moved = min(src.value, amount)
            src.value -= moved
            dst.value += moved

    def sample(sampler: Cown[Sampler]) -> None:
        @when(sampler)
        def _(sampler):
            state, rand = sampler.value, sampler.value.rng.random
            state.hits += sum(1 for _ in range(SAMPLES_PER_BEHAVIOR) if rand() ** 2 + rand() ** 2 <= 1.0)
            state.samples += SAMPLES_PER_BEHAVIOR

    def snapshot(n_transfers: int) -> Cown[Frame]:
        @when(accounts, samplers)  # a worker holding all of them at once: the total is exact
        def frame(accounts, samplers):
            return Frame(time.monotonic() - started, [account.value for account in accounts], n_transfers,
                         sum(s.value.hits for s in samplers), sum(s.value.samples for s in samplers))
        return frame

    def redraw(frame: Cown[Frame], final: bool = False) -> None:
        @when(screen, frame)  # holds a pinned cown: runs on the main thread
        def _(screen, frame):
            screen.value.draw(frame.value, final)

    @when(Cown(None))  # a worker reaching for the screen: refused, the error lands on `peek`
    def peek(_):
        return screen.value

    # The host loop, as a GUI toolkit's main loop would run it.
    frames: list[Cown[Frame]] = []
    n_pumped = n_transfers = n_waves = 0
    selector = selectors.DefaultSelector()
    selector.register(boc.pump_fd(), selectors.EVENT_READ)  # readable while main-side work waits
    tty = sys.stdout.isatty()
    if tty:
        sys.stdout.write("\x1b[?25l")  # hide the cursor while animating
    try:
        next_frame = time.monotonic()
        deadline = next_frame + args.seconds
        while time.monotonic() < deadline:
            if n_pumped == len(frames):  # the screen is up to date: hand out this frame's work
                for _ in range(TRANSFERS_PER_FRAME):
                    src, dst = customers.sample(accounts, 2)
                    transfer(src, dst, customers.randint(1, 100))
                n_transfers, n_waves = n_transfers + TRANSFERS_PER_FRAME, n_waves + 1
                for sampler in samplers:
                    sample(sampler)
                frames.append(snapshot(n_transfers))
                redraw(frames[-1])
            next_frame += 1 / FRAMES_PER_SECOND
            while (remaining := next_frame - time.monotonic()) > 0:  # sleep, waking for main-side work
                if selector.select(timeout=remaining):
                    n_pumped += boc.pump(deadline_ms=5).executed
    except KeyboardInterrupt:
        print("\ninterrupted: finishing the behaviors already scheduled")
    finally:
        if tty:
            sys.stdout.write("\x1b[?25h")
        selector.close()
    frames.append(snapshot(n_transfers))
    redraw(frames[-1], final=True)
    boc.wait()  # runs what is left, pumping the last redraws on the main thread

    # Everything has run, so every cown is idle and its value readable here.
    last, shown, total = frames[-1].value, screen.value, N_ACCOUNTS * OPENING_BALANCE
    pi = 4 * last.hits / last.samples
    tolerance = 5 * 4 * math.sqrt(math.pi / 4 * (1 - math.pi / 4) / last.samples)  # five standard errors
    try:
        refused = f"nothing, it read {peek.unwrap()!r}"
    except RuntimeError as error:
        refused = f"RuntimeError: {str(error).split('.')[0]}"
    checks = [
        (sum(a.value for a in accounts) == total and all(sum(f.value.balances) == total for f in frames),
         f"money conserved: {total:,} after {n_transfers:,} transfers, and in each of {len(frames)} snapshots"),
        (abs(pi - math.pi) <= tolerance, f"pi ~ {pi:.5f} from {last.samples:,} samples (within {tolerance:.5f})"),
        (shown.n_uses_off_main == 0 and shown.n_frames == len(frames),
         f"{shown.n_frames} frames drawn by pinned behaviors, all {shown.n_uses} screen uses on the main thread"),
        (refused.startswith("RuntimeError"), f"a worker that reached for the screen got {refused}"),
    ]
    n_worker_side = n_transfers + n_waves * N_SAMPLERS + len(frames) + 1  # + snapshots + peek
    print(f"\n{n_worker_side:,} behaviors ran on the workers and {len(frames)} on the main thread ({n_pumped} pumped "
          f"by the host loop, {len(frames) - n_pumped} by wait()), in {time.monotonic() - started:.1f} s")
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
