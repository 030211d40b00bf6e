"""The workloads of the Python benchmarks, written once for both runtimes.

boc takes its names from bocpy, so one definition serves both: a workload gets
the runtime's module as ``api`` and uses only ``Cown``, ``PinnedCown``, ``when``
and ``quiesce``.

A workload is a function ``(api, n) -> run``. It builds the cowns, which is not
timed, and returns ``run``, which is: schedule the ``n`` behaviors, then return
once every one of them has finished. ``quiesce()`` does the waiting; on the main
thread it also runs the behaviors that hold a pinned cown, as ``wait()`` does,
but leaves the runtime up, so neither runtime's shutdown is timed (bocpy's tears
down sub-interpreters).

The bodies capture nothing: bocpy runs a body in a worker sub-interpreter where
it sees only its parameters (extra values ride in as defaults, ``x=x``) and the
module's globals.
"""

#: Loop length of one CPU-bound body: tens of milliseconds of pure Python.
CPU_ITERATIONS = 300_000


def chain(api, n):
    """n null behaviors on one cown: each waits for the one before."""
    cown = api.Cown(0)

    def run():
        for _ in range(n):
            @api.when(cown)
            def _(c):
                pass
        api.quiesce()

    return run


def fanout(api, n):
    """n null behaviors, each on its own cown: nothing waits for anything."""
    cowns = [api.Cown(0) for _ in range(n)]

    def run():
        for cown in cowns:
            @api.when(cown)
            def _(c):
                pass
        api.quiesce()

    return run


def pinned(api, n):
    """n null behaviors on one pinned cown, run on the main thread while it waits."""
    cown = api.PinnedCown(0)

    def run():
        for _ in range(n):
            @api.when(cown)
            def _(p):
                pass
        api.quiesce()

    return run


def mixed(api, n):
    """n null behaviors, each on its own pair of a cown and a pinned cown: each
    body runs on the main thread once it holds both."""
    pairs = [(api.Cown(0), api.PinnedCown(0)) for _ in range(n)]

    def run():
        for cown, pinned_cown in pairs:
            @api.when(cown, pinned_cown)
            def _(c, p):
                pass
        api.quiesce()

    return run


def cpu(api, n, iterations=CPU_ITERATIONS):
    """n CPU-bound pure-Python behaviors, each on its own cown; each body's
    result (a number) lands on its result cown.

    The modulus is made inside the body (``int("1000003")``), not written as a
    literal: on free-threaded CPython 3.13 a function defined in an imported
    module shares its non-small int constants between threads, and every
    thread's reference count traffic on that one object made two threads
    running this loop 4x slower each than one (plain ``threading`` too; a
    literal in ``__main__`` does not do it). A value the thread makes itself
    is its own."""
    cowns = [api.Cown(0) for _ in range(n)]

    def run():
        for cown in cowns:
            @api.when(cown)
            def _(c, iterations=iterations):
                modulus = int("1000003")
                x = 0
                for i in range(iterations):
                    x = (x * 31 + i) % modulus
                return x
        api.quiesce()

    return run


#: Every workload, by the name the harness takes on its command line.
WORKLOADS = {"chain": chain, "fanout": fanout, "pinned": pinned, "mixed": mixed, "cpu": cpu}
