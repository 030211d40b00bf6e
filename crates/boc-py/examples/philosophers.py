"""Dining philosophers: forks are cowns, and no one can deadlock.

Philosophers sit at a round table with a fork between each pair of
neighbours; to eat, a philosopher needs both forks at once. With locks, every
philosopher picking up the left fork first deadlocks the table. Here a meal
is a behavior over the philosopher and both forks, `@when(me, left, right)`:
boc takes all of a behavior's cowns together, in one global order, so the
deadlock cannot happen, whatever order the forks are named in.

Each meal schedules the philosopher's next one from inside the behavior, and
each fork checks that nobody else holds it while it is in use.

    python philosophers.py [--philosophers N] [--meals N] [--workers N]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import boc
from boc import Cown, when
from checks import report


@dataclass
class Fork:
    in_use: bool = False
    n_uses: int = 0
    n_clashes: int = 0  # times it was found in use: a broken exclusion (never, with boc)


@dataclass
class Philosopher:
    name: str
    n_meals: int = 0


def dine(me: Cown[Philosopher], left: Cown[Fork], right: Cown[Fork], meals: int) -> None:
    """Schedules one meal; the meal schedules the next, until `meals` have been eaten."""

    @when(me, left, right)
    def _(me: Cown[Philosopher], left: Cown[Fork], right: Cown[Fork]) -> None:
        for fork in (left.value, right.value):
            fork.n_clashes += fork.in_use
            fork.in_use = True
            fork.n_uses += 1
        time.sleep(0.0005)  # eating; sleep releases the GIL, so philosophers who share no fork eat meanwhile
        left.value.in_use = right.value.in_use = False
        me.value.n_meals += 1
        if me.value.n_meals < meals:
            dine(me, left, right, meals)  # think, then be hungry again


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--philosophers", type=int, default=5)
    parser.add_argument("--meals", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None, help="worker threads (default: boc's)")
    args = parser.parse_args()
    if args.philosophers < 2 or args.meals < 1:
        parser.error("a table needs at least 2 philosophers, and each at least 1 meal")

    boc.start(workers=args.workers)
    n = args.philosophers
    forks = [Cown(Fork()) for _ in range(n)]
    table = [Cown(Philosopher(f"philosopher {i}")) for i in range(n)]
    started = time.monotonic()
    for i, me in enumerate(table):
        # Everyone reaches left first: the classic deadlock with locks, harmless here.
        dine(me, forks[i], forks[(i + 1) % n], args.meals)
    boc.wait()
    elapsed = time.monotonic() - started

    meals = [p.value.n_meals for p in table]
    checks = [
        (all(m == args.meals for m in meals), f"every philosopher ate {args.meals} times ({sum(meals):,} meals)"),
        (all(f.value.n_uses == 2 * args.meals for f in forks), f"every fork used {2 * args.meals} times"),
        (sum(f.value.n_clashes for f in forks) == 0, "no fork was ever held by two philosophers"),
    ]
    print(f"philosophers: {n} at the table, {args.meals} meals each, finished in {elapsed:.2f} s, no deadlock")
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
