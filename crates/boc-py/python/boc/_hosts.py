"""Checks shared by the event-loop integrations (``boc.aio``, ``boc.tk``)."""

from __future__ import annotations

import math
import threading


def require_main_thread(what: str) -> None:
    """Raises ``RuntimeError`` unless called on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            f"{what} must be called on the main thread: main-side behaviors run there, so the event loop "
            "that pumps them must run there too"
        )


def positive_millis(name: str, value: object) -> float:
    """``value`` as a positive, finite number of milliseconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number of milliseconds, not {type(value).__name__}")
    try:
        millis = float(value)
    except OverflowError:  # an int beyond any float
        millis = math.inf
    if not (millis > 0 and math.isfinite(millis)):
        raise ValueError(f"{name} must be a positive, finite number of milliseconds, not {value}")
    return millis


#: The attachment pumping boc now, if any: there is one main-side queue and
#: one waker descriptor, so one host loop pumps at a time.
_active: object | None = None


def claim(attachment: object) -> None:
    """Records `attachment` as the one pumping; ``RuntimeError`` if another is.

    An attachment whose host is gone (its asyncio loop closed, its Tk root
    destroyed) without a ``detach()`` no longer pumps anything: it is
    detached here rather than blocking every later attachment.
    """
    global _active
    if _active is not None and _active._host_gone():  # type: ignore[attr-defined]
        _active.detach()  # type: ignore[attr-defined]
    if _active is not None:
        raise RuntimeError(
            f"boc is already attached to a host loop ({_active!r}); detach() it before attaching another"
        )
    _active = attachment


def release(attachment: object) -> None:
    """Forgets `attachment` if it is the one pumping."""
    global _active
    if _active is attachment:
        _active = None
