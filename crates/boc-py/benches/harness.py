"""One measurement, in a process of its own: start the runtime, warm it up with a
short run of the workload, time one full run, print the result as one JSON line
(the last line of standard output), stop the runtime.

Run it through ``boc_side.py`` or ``bocpy_side.py``, which import their runtime
at top level and hand it to ``main``; ``run.py`` does that for every sample::

    python boc_side.py chain --n 20000 --workers 1 --warmup 1000

This module only defines functions: bocpy's workers import it again.
"""

import argparse
import json
import platform
import sys
import sysconfig
import time
from importlib import metadata

import workloads


def main(api, distribution, start):
    """Runs one measurement of the workload named on the command line.

    ``api`` is the runtime's module, ``distribution`` its name on PyPI (for the
    version in the report), and ``start(workers)`` starts it with that many
    workers.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(workloads.WORKLOADS))
    parser.add_argument("--n", type=int, required=True, help="behaviors in the timed run")
    parser.add_argument("--workers", type=int, default=1, help="worker count (default 1)")
    parser.add_argument("--warmup", type=int, default=0, help="behaviors in the untimed run first")
    parser.add_argument("--iterations", type=int, help="loop length of a CPU-bound body (cpu only)")
    args = parser.parse_args()

    build = workloads.WORKLOADS[args.workload]
    options = {} if args.iterations is None else {"iterations": args.iterations}
    start(args.workers)
    if args.warmup > 0:
        build(api, args.warmup, **options)()
    run = build(api, args.n, **options)
    began = time.perf_counter()
    run()
    seconds = time.perf_counter() - began
    api.wait()

    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    print(json.dumps({
        "seconds": seconds,
        "runtime": f"{distribution} {version(distribution)}",
        "python": platform.python_version(),
        "free_threaded": free_threaded,
        # Read after the runtime ran: an extension that needs the GIL turns it back on.
        "gil_enabled": sys._is_gil_enabled() if free_threaded else True,
    }), flush=True)


def version(distribution):
    """The installed version of `distribution`, or `?` when it has no metadata."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"
