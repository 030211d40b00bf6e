"""The bocpy side of the Python benchmarks: one measurement (see harness.py).

bocpy runs each worker in a sub-interpreter that executes this module again, so
the imports stay at top level and the driver runs only under ``__main__``.
"""

import bocpy

import harness

if __name__ == "__main__":
    harness.main(bocpy, "bocpy", start=lambda workers: bocpy.start(worker_count=workers))
