"""The workloads of the Python benchmarks, written once for both runtimes.

boc takes its names from bocpy, so one definition serves both: a workload gets
the runtime's module as ``api`` and uses only ``Cown``, ``PinnedCown``, ``when``,
``quiesce``, ``send``, ``receive`` and ``notice_read`` (plus, untimed,
``notice_seed`` on bocpy and ``notice_write`` on boc to fill the noticeboard).

A workload is a function ``(api, n) -> run``. It builds the cowns, which is not
timed, and returns ``run``, which is: schedule the ``n`` behaviors, then return
once every one of them has finished. ``quiesce()`` does the waiting; on the main
thread it also runs the behaviors that hold a pinned cown, as ``wait()`` does,
but leaves the runtime up, so neither runtime's shutdown is timed (bocpy's tears
down sub-interpreters).

The bodies capture nothing: bocpy runs a body in a worker sub-interpreter where
it sees only its parameters (extra values ride in as defaults, ``x=x``) and the
module's globals. A body that calls the runtime finds it with ``_api()``, which
looks it up among the loaded modules of the interpreter it runs in.
"""

import sys

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


#: The tag the message workloads send on, and the one a body reports a wrong
#: result on (checked once the timed part is over).
MESSAGE_TAG = "bench"
CHECK_TAG = "bench-check"

#: The most messages bocpy 0.14 holds on one tag: ``send`` raises "Message
#: queue is full" beyond it.
BOCPY_QUEUE_CAPACITY = 16_384

#: How many messages the main-thread workload sends before receiving them.
MESSAGE_BATCH = 1_000

#: How many keys the noticeboard workloads put on the board, and the key they
#: read, whose value is its number.
NOTICE_KEYS = 10
NOTICE_KEY = "key5"
NOTICE_VALUE = 5

#: The runtime module, once ``_api()`` found it in this interpreter.
_API = None


def _api():
    """The runtime module, for a body: bocpy runs bodies in worker
    sub-interpreters, where the main interpreter's ``api`` is out of reach (a
    module cannot ride in as a default) but the worker has imported bocpy
    itself; boc's bodies run in the main interpreter, where boc is loaded."""
    global _API
    if _API is None:
        _API = sys.modules["bocpy"] if "bocpy" in sys.modules else sys.modules["boc"]
    return _API


def check(api, what):
    """Fails the sample if a body reported a wrong result on CHECK_TAG."""
    tag, contents = api.receive(CHECK_TAG, 0)
    if tag == CHECK_TAG:
        raise AssertionError(f"{what}: {contents}")


def send_from_behavior(api, n, receive_after):
    """n messages (small ints) sent on one tag by one worker behavior and
    received, one receive each, by the main thread: as they arrive, or
    (``receive_after``) once the behavior has finished.

    n is at most bocpy's queue capacity, so the queue never fills up."""
    if n > BOCPY_QUEUE_CAPACITY:
        raise ValueError(f"n must be at most {BOCPY_QUEUE_CAPACITY:,} messages, not {n:,}")
    cown = api.Cown(0)

    def run():
        @api.when(cown)
        def _(c, n=n):
            send = _api().send
            for i in range(n):
                send(MESSAGE_TAG, i)
        if receive_after:
            api.quiesce()
        receive = api.receive
        last = None
        for _ in range(n):
            last = receive(MESSAGE_TAG)
        api.quiesce()
        if tuple(last) != (MESSAGE_TAG, n - 1):
            raise AssertionError(f"the last message is {last!r}, not {(MESSAGE_TAG, n - 1)!r}")

    return run


def messages(api, n):
    """n messages sent by one behavior, received on the main thread as they
    arrive: the receiver waits on the sender all along."""
    return send_from_behavior(api, n, receive_after=False)


def messages_queued(api, n):
    """n messages sent by one behavior, received on the main thread once the
    behavior has finished: each receive finds its message waiting."""
    return send_from_behavior(api, n, receive_after=True)


def messages_main(api, n):
    """n messages (small ints) sent on one tag by the main thread and received
    by it, MESSAGE_BATCH at a time (send a batch, then receive it): the cost of
    a send and a receive with no other thread involved. No behaviors."""
    batches = [range(start, min(start + MESSAGE_BATCH, n)) for start in range(0, n, MESSAGE_BATCH)]

    def run():
        send, receive = api.send, api.receive
        last = None
        for batch in batches:
            for i in batch:
                send(MESSAGE_TAG, i)
            for _ in batch:
                last = receive(MESSAGE_TAG)
        api.quiesce()
        if tuple(last) != (MESSAGE_TAG, n - 1):
            raise AssertionError(f"messages_main: the last message is {last!r}, not {(MESSAGE_TAG, n - 1)!r}")

    return run


def seed_noticeboard(api):
    """Puts NOTICE_KEYS small ints on the board, visible to every behavior
    scheduled afterwards. bocpy's ``notice_write`` is fire-and-forget (its
    noticeboard thread applies the write later), so bocpy seeds with
    ``notice_seed``, which commits before it returns; boc's ``notice_write``
    does."""
    write = getattr(api, "notice_seed", None) or api.notice_write
    for i in range(NOTICE_KEYS):
        write(f"key{i}", i)


def notice_read(api, n):
    """n behaviors on one cown, each reading one key of the board once: a
    snapshot and a read each (compare with chain, the same without the read)."""
    seed_noticeboard(api)
    cown = api.Cown(0)

    def run():
        for _ in range(n):
            @api.when(cown)
            def _(c):
                api = _api()
                value = api.notice_read(NOTICE_KEY)
                if value != NOTICE_VALUE:
                    api.send(CHECK_TAG, f"a behavior read {value!r}, not {NOTICE_VALUE!r}")
        api.quiesce()
        check(api, "notice_read")

    return run


def notice_reads(api, n):
    """One behavior reading one key of the board n times: the first read takes
    the behavior's snapshot, the rest read it."""
    seed_noticeboard(api)
    cown = api.Cown(0)

    def run():
        @api.when(cown)
        def _(c, n=n):
            api = _api()
            read = api.notice_read
            total = 0
            for _ in range(n):
                total += read(NOTICE_KEY)
            if total != n * NOTICE_VALUE:
                api.send(CHECK_TAG, f"{n:,} reads added up to {total:,}, not {n * NOTICE_VALUE:,}")
        api.quiesce()
        check(api, "notice_reads")

    return run


#: Every workload, by the name the harness takes on its command line.
WORKLOADS = {"chain": chain, "fanout": fanout, "pinned": pinned, "mixed": mixed, "cpu": cpu,
             "messages": messages, "messages_queued": messages_queued, "messages_main": messages_main,
             "notice_read": notice_read, "notice_reads": notice_reads}
