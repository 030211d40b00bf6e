"""Type stubs for ``boc._boc``, the extension module behind the ``boc`` package.

Import these names from ``boc``, not from here. The guide is docs/python.md.
"""

from types import GenericAlias
from typing import Any, Callable, Final, Generic, NoReturn, TypedDict, TypeVar, final, overload

from typing_extensions import disjoint_base

__all__ = [
    "Cown",
    "PinnedCown",
    "when",
    "start",
    "wait",
    "quiesce",
    "stop",
    "pump",
    "pump_fd",
    "set_pump_waker",
    "set_pump_watchdog",
    "send",
    "receive",
    "drain",
    "TIMEOUT",
    "notice_write",
    "notice_update",
    "notice_delete",
    "notice_read",
    "REMOVED",
    "_noticeboard",
    "_state",
    "_after_fork_in_child",
    "_shutdown_at_exit",
]

_T = TypeVar("_T")
_R = TypeVar("_R")

@disjoint_base
class Cown(Generic[_T]):
    """A concurrently-owned value: shared state that behaviors reach one at a time.

    ``Cown(value)`` wraps any Python object (never copied or pickled). Read
    and write it with ``.value`` inside a behavior scheduled on the cown
    with ``@when``. ``Cown[int]`` works at runtime too (a generic alias).

    Cowns are hashable and ordered (by creation, the order in which
    behaviors acquire them). Copying a handle (``copy.copy``,
    ``copy.deepcopy``) returns the same handle; pickling raises
    ``TypeError``.
    """

    def __new__(cls, value: _T) -> Cown[_T]: ...
    def __class_getitem__(cls, item: Any) -> GenericAlias: ...
    @property
    def value(self) -> _T:
        """The value.

        Readable and writable inside a behavior whose request set holds the
        cown, or outside any behavior while no behavior holds or waits for
        it (the access then holds the cown, so no behavior starts on it
        meanwhile). Anywhere else ``RuntimeError``, naming the cown.

        For a result cown (the name ``@when`` binds), the value is what the
        behavior returned, or the exception it raised (then ``exception``
        is true). Reading an exception this way counts as retrieving it;
        one never retrieved is logged on logger ``"boc"`` when the cown is
        dropped.
        """
    @value.setter
    def value(self, value: _T) -> None: ...
    @value.deleter
    def value(self) -> NoReturn:
        """Always raises ``AttributeError``: a cown always holds a value (assign ``None``)."""
    @property
    def exception(self) -> bool:
        """True if the value is an exception raised by the behavior that produced this cown.

        Same access rules as ``value``. Looking counts as retrieving the
        exception: it is then not reported when the cown is dropped.
        """
    @property
    def acquired(self) -> bool:
        """True while the behavior running on this thread holds this cown."""
    def unwrap(self) -> _T:
        """The value, or raise the exception the producing behavior raised.

        Same access rules as ``value``.
        """
    def __hash__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: Cown[Any], /) -> bool: ...
    def __le__(self, other: Cown[Any], /) -> bool: ...
    def __gt__(self, other: Cown[Any], /) -> bool: ...
    def __ge__(self, other: Cown[Any], /) -> bool: ...
    def __copy__(self) -> Cown[_T]: ...
    def __deepcopy__(self, memo: dict[int, Any], /) -> Cown[_T]: ...
    def __reduce__(self) -> NoReturn:
        """Always raises ``TypeError``: a cown is a handle to shared state, not a value."""

@final
class PinnedCown(Cown[_T]):
    """A cown whose value lives on, and is only ever touched from, the main thread.

    For thread-affine resources: GUI widgets, GL contexts, asyncio objects,
    anything backed by a thread-affine C library. Every behavior whose
    request set names a pinned cown (directly or in a list) runs on the
    main thread, during ``pump()`` or ``wait()`` there; it may mix pinned
    and ordinary cowns freely.

    Constructible only on the main thread (``RuntimeError`` elsewhere).
    ``.value`` from any other thread raises ``RuntimeError``. The handle
    itself may go anywhere: worker behaviors can schedule on it.
    ``pickle``, ``copy.copy`` and ``copy.deepcopy`` raise ``TypeError``.
    ``isinstance(p, Cown)`` is true.
    """

    def __new__(cls, value: _T) -> PinnedCown[_T]: ...
    def __copy__(self) -> NoReturn:
        """Always raises ``TypeError``: a pinned value must have one owner, on the main thread."""
    def __deepcopy__(self, memo: dict[int, Any], /) -> NoReturn:
        """Always raises ``TypeError``: a pinned value must have one owner, on the main thread."""
    def __reduce__(self) -> NoReturn:
        """Always raises ``TypeError``: a pinned value cannot leave the main thread."""
    def __reduce_ex__(self, protocol: Any, /) -> NoReturn:
        """Always raises ``TypeError``: a pinned value cannot leave the main thread."""

def when(*cowns: Cown[Any] | list[Cown[Any]]) -> Callable[[Callable[..., _R]], Cown[_R]]:
    """Schedule the decorated function as a behavior on ``cowns``.

    ::

        @when(src, dst)
        def transfer(src, dst):
            src.value -= 10
            dst.value += 10

    Each argument is a ``Cown`` or a list of cowns (the body receives the
    list, as it was when scheduled). The function is scheduled at once and
    runs when it holds every cown named, exclusively; behaviors that share
    a cown run in the order they were scheduled. The decorated name is
    bound to the *result cown*: the function's return value, or the
    exception it raised (``.exception`` true, ``.unwrap()`` re-raises). The
    behavior holds its result cown until it finishes, so a behavior
    scheduled on the result runs after it.

    A request set holding any ``PinnedCown`` runs on the main thread
    (during ``pump()``/``wait()``); the others run on worker threads.
    Usable from any thread and from inside behaviors; starts the runtime
    if needed. Raises ``TypeError`` at once for arguments that are not
    cowns or lists of cowns.
    """

def start(workers: int | None = None) -> None:
    """Start the runtime with ``workers`` worker threads.

    ``None`` means the default: the ``BOC_WORKERS`` environment variable,
    else the available parallelism minus one (at least one). ``0`` runs
    every behavior on the main thread, during ``pump()``/``wait()``.
    Optional: ``@when`` starts the runtime itself, with the count the last
    ``start`` asked for (``start()`` goes back to the default). Calling it
    while running with the same count does nothing; with a different count
    it raises ``RuntimeError`` (``wait()`` or ``stop()`` first).
    """

def wait(timeout: float | None = None) -> None:
    """Block until every scheduled behavior has finished, then stop the worker pool.

    On the main thread it runs main-side behaviors while it waits (it
    pumps), so batch programs need nothing else. The next ``@when`` starts
    the pool again. ``timeout`` is in seconds: on expiry ``TimeoutError``
    says what is still waiting. ``RuntimeError`` inside a behavior (it
    would wait for itself). Releases the GIL while blocked; Ctrl-C
    interrupts it.
    """

def quiesce(timeout: float | None = None) -> None:
    """Like ``wait()``, but leaves the worker pool running."""

def stop() -> None:
    """Finish all scheduled work (pumping on the main thread), then stop the pool.

    Loses nothing. Called automatically at interpreter exit.
    """

def pump(
    max_behaviors: int | None = None,
    deadline_ms: float | None = None,
    raise_on_error: bool | None = None,
) -> tuple[int, bool, int, int]:
    """The raw pump: returns ``(executed, deadline_reached, raised, pending)``.

    Use ``boc.pump()``, which wraps this tuple in a ``PumpResult`` and
    documents the contract.
    """

def pump_fd() -> int:
    """A file descriptor that is readable while main-side work waits to be pumped.

    For event loops: register it with the loop's reader API
    (``loop.add_reader``, ``tk.createfilehandler``, ``selectors``) and call
    ``pump()`` when it fires. ``pump()`` clears it; never read from it or
    close it yourself. The same descriptor for the life of the process.
    """

def set_pump_waker(callback: Callable[[], object] | None) -> None:
    """Call ``callback()`` whenever main-side work arrives in an empty queue.

    Also called when a budgeted ``pump()`` returns with work left. It is
    called from a runtime-owned thread, so it must only post a "pump soon"
    event to the host loop (``loop.call_soon_threadsafe(...)``, a
    toolkit's thread-safe post), never pump itself. ``None`` removes it.
    An exception it raises is reported as unraisable. One thread calls it,
    started by the first call with a callback and kept for the life of the
    process; later calls only replace the callback.
    """

def set_pump_watchdog(warn_ms: float | None = ..., on_starve: Callable[[str], object] | None = None) -> None:
    """Configure the starvation watchdog.

    When main-side work has waited more than ``warn_ms`` milliseconds
    without the main thread pumping, the watchdog reports it once per
    episode: queue depth, age, and the waiting behaviors by qualname and
    file:line. It is on by default (2000 ms), logging a WARNING on logger
    ``"boc"``; ``on_starve(message)`` replaces that sink (it is called on
    the watchdog's own thread). ``warn_ms=None`` turns the watchdog off;
    ``set_pump_watchdog()`` restores the default. It warns; it never
    raises.
    """

@final
class _Sentinel:
    """The type of ``TIMEOUT`` and ``REMOVED`` (``boc.Sentinel`` at runtime, not importable).

    Each sentinel is one unique object: compare with ``is``. Pickling or
    copying one gives back the same object.
    """

    def __reduce__(self) -> str: ...

TIMEOUT: Final[_Sentinel]
"""The tag ``receive`` returns when it times out without ``after``: ``(TIMEOUT, None)``."""

REMOVED: Final[_Sentinel]
"""Returned by a ``notice_update`` function, deletes the key."""

_Tags = str | list[str] | tuple[str, ...]

def send(tag: str, contents: object) -> None:
    """Send a message: queue ``contents`` under ``tag``, for a ``receive`` on that tag.

    ``contents`` is any object, passed as it is (never copied or pickled):
    once sent, leave it to the receiver. ``tag`` is a non-empty ``str`` of
    at most 255 bytes in UTF-8 (else ``TypeError``/``ValueError``). Usable
    from any thread and inside behaviors; never blocks, and queues have no
    bound.
    """

@overload
def receive(tags: _Tags, timeout: None = None, after: None = None) -> tuple[str, Any]:
    """Receive a message: the oldest one queued under any of ``tags``, as ``(tag, contents)``.

    ``tags`` is a ``str`` or a non-empty list or tuple of them. Messages
    under one tag come in the order they were sent; across tags, the
    oldest in the one global order of sends comes first. Each message is
    received once.

    With no message queued it waits, releasing the GIL, for at most
    ``timeout`` seconds: ``None`` waits forever, ``0`` does not wait, and a
    timeout too large to represent waits forever. On timeout it returns
    ``after()`` if ``after`` is given (its exception propagates), else
    ``(TIMEOUT, None)``. On the main thread Ctrl-C interrupts the wait.

    Works anywhere, inside behaviors too. A behavior waiting here keeps its
    thread and its cowns; inside a main-side behavior it blocks the host's
    event loop meanwhile, so pass a timeout there.

    Raises:
        TypeError: ``tags`` not a str, list or tuple of str; a non-number
            or ``bool`` timeout; an ``after`` that is not callable.
        ValueError: an empty or over-long tag, no tags, a negative or NaN
            timeout.
    """

@overload
def receive(tags: _Tags, timeout: float, after: None = None) -> tuple[str, Any] | tuple[_Sentinel, None]: ...
@overload
def receive(tags: _Tags, timeout: float | None, after: Callable[[], _R]) -> tuple[str, Any] | _R: ...
@overload
def receive(tags: _Tags, timeout: float | None = None, *, after: Callable[[], _R]) -> tuple[str, Any] | _R: ...

def drain(tags: _Tags) -> list[tuple[str, Any]]:
    """Remove every message queued under any of ``tags`` and return them as ``(tag, contents)``, oldest first.

    ``tags`` as for ``receive``. Never waits: ``[]`` if nothing is queued.
    Messages under other tags stay queued.
    """

def notice_write(key: str, value: object) -> None:
    """Set ``key`` on the noticeboard to ``value`` (any object, stored as is, never copied).

    Atomic, and in effect for every thread when the call returns: a
    behavior scheduled after it returns (or ordered after it through a
    shared cown) sees this write or a later one. Keys are non-empty
    ``str`` of at most 255 bytes in UTF-8 (else ``TypeError``/
    ``ValueError``); there is no limit on the number of keys. Treat values
    as immutable: every reader shares the object.
    """

def notice_update(key: str, fn: Callable[[Any], object], default: object = None) -> None:
    """Atomically set ``key`` to ``fn(current)``, ``current`` being its value or ``default`` if absent.

    If ``fn`` returns ``REMOVED`` the key is deleted. ``fn`` runs on the
    calling thread without any lock held and gets the key's current value
    (not a behavior's snapshot); if another write to ``key`` lands
    meanwhile, ``fn`` is called again with the new value. Keep it pure: no
    side effects, a result that depends only on its argument. It may read
    the board and write other keys; writing ``key`` itself raises
    ``RuntimeError`` (the update would never finish). An exception from
    ``fn`` propagates and leaves the board unchanged. ``TypeError`` if
    ``fn`` is not callable.
    """

def notice_delete(key: str) -> None:
    """Delete ``key`` from the noticeboard; nothing happens if it is absent. Atomic, like ``notice_write``."""

def notice_read(key: str, default: Any = None) -> Any:
    """The value under ``key`` on the noticeboard (the object itself), or ``default`` if it is absent.

    Inside a behavior the first read (this or ``noticeboard()``) takes a
    snapshot of the whole board, and every later read of that behavior
    returns from it, even after the behavior's own writes; the next
    behavior takes a fresh one. Outside behaviors every read is fresh.
    """

@final
class _NoticeboardSnapshot:
    """The whole noticeboard at one instant (``boc.NoticeboardSnapshot`` at runtime, not importable).

    It never changes. ``boc.noticeboard()`` wraps it in a read-only
    ``Mapping``; use that. While it is alive, a write to the board copies
    the board's table (O(keys)).
    """

    def __getitem__(self, key: str, /) -> Any:
        """The value under ``key``; ``KeyError`` if absent (or not a str)."""
    def __contains__(self, key: object, /) -> bool: ...
    def __len__(self) -> int: ...
    def keys(self) -> list[str]:
        """The keys, as a new list."""

def _noticeboard() -> _NoticeboardSnapshot:
    """The snapshot ``boc.noticeboard()`` wraps: the running behavior's, or a fresh one outside behaviors."""

class _State(TypedDict):
    running: bool
    workers: int | None
    in_flight: int
    main_pending: int

def _state() -> _State:
    """A snapshot for diagnostics and tests: whether a pool runs, its size,
    behaviors in flight, ready main-side behaviors. Not a stable API."""

def _after_fork_in_child() -> None:
    """Registered with ``os.register_at_fork``: make a forked child's runtime its
    own. It forgets the worker pools the child inherited (they have no threads;
    the next ``@when`` starts a fresh one), the other threads' bookkeeping, and
    the pump waker (whose thread is the parent's: call ``set_pump_waker`` again)."""

def _shutdown_at_exit() -> None:
    """boc's ``atexit`` handler, the exit-time stop: runs what is still
    scheduled, stops the workers, reports unretrieved exceptions; from then
    on no boc thread attaches to the interpreter. See docs/python.md,
    "Interpreter exit"."""
