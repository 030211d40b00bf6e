"""Bank transfers: every account is a cown, every transfer a behavior.

A transfer names its two accounts, `@when(src, dst)`, so it runs only while it
holds both: nothing else can touch either balance halfway through, and money
is never lost or made. There are no locks in the code and no lock order to
get wrong: transfers A->B and B->A at the same time cannot deadlock.

A transfer that would overdraw raises; the exception lands on the transfer's
result cown and the rest of the bank carries on. Now and then an audit, one
behavior over the list of every account, takes a consistent snapshot: it runs
between transfers, never during one, so the total it sees is always exact.

    python bank.py [--accounts N] [--transfers N] [--workers N]
"""

from __future__ import annotations

import argparse
import random
import sys

import boc
from boc import Cown, when
from checks import report

OPENING_BALANCE = 1_000


class InsufficientFunds(Exception):
    """A transfer would have overdrawn its source account."""


def transfer(src: Cown[int], dst: Cown[int], amount: int) -> Cown[int]:
    """Schedules a transfer; returns its result cown (the amount moved, or the exception)."""

    @when(src, dst)
    def moved(src: Cown[int], dst: Cown[int]) -> int:
        if src.value < amount:
            raise InsufficientFunds(f"balance {src.value} < {amount}")
        src.value -= amount
        dst.value += amount
        return amount

    return moved


def audit(accounts: list[Cown[int]], audits: Cown[list[int]]) -> None:
    """Schedules an audit: one behavior holding every account at once (and the audit log)."""

    @when(accounts, audits)
    def _(accounts: list[Cown[int]], audits: Cown[list[int]]) -> None:
        audits.value.append(sum(account.value for account in accounts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--transfers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=None, help="worker threads (default: boc's)")
    args = parser.parse_args()

    boc.start(workers=args.workers)
    accounts = [Cown(OPENING_BALANCE) for _ in range(args.accounts)]
    audits: Cown[list[int]] = Cown([])
    rng = random.Random(7)
    transfers = []
    for i in range(args.transfers):
        src, dst = rng.sample(accounts, 2)
        transfers.append(transfer(src, dst, rng.randint(1, 400)))
        if i % 1_000 == 0:
            audit(accounts, audits)
    audit(accounts, audits)
    boc.wait()

    # Everything has run: every cown is idle, so its value is readable here.
    expected = args.accounts * OPENING_BALANCE
    balances = [account.value for account in accounts]
    refused = [t for t in transfers if t.exception]  # reading .exception retrieves it
    moved = sum(t.value for t in transfers if not t.exception)
    checks = [
        (sum(balances) == expected, f"total {sum(balances):,} (expected {expected:,})"),
        (all(total == expected for total in audits.value), f"{len(audits.value)} audits, each saw {expected:,}"),
        (min(balances) >= 0, f"no account overdrawn (lowest balance {min(balances):,})"),
        (all(isinstance(t.value, InsufficientFunds) for t in refused), f"{len(refused):,} transfers refused"),
    ]
    print(f"bank: {args.transfers:,} transfers between {args.accounts} accounts, {moved:,} moved")
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
