"""The boc side of the Python benchmarks: one measurement (see harness.py)."""

import boc

import harness

if __name__ == "__main__":
    harness.main(boc, "boc-py", start=lambda workers: boc.start(workers=workers))
