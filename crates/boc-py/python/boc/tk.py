"""Tk integration: run boc's main-side behaviors from Tk's event loop.

::

    import tkinter
    import boc
    import boc.tk

    root = tkinter.Tk()
    label = tkinter.Label(root, text="...")
    label.pack()
    view = boc.PinnedCown(label)          # Tk widgets stay on the main thread

    @boc.when(boc.Cown(6))
    def answer(cown):                     # a worker computes
        return cown.value * 7

    @boc.when(view, answer)
    def show(view, answer):               # the main thread draws, inside mainloop()
        view.value.config(text=str(answer.value))

    boc.tk.attach(root)
    root.mainloop()

``attach`` registers a Tk file handler on ``boc.pump_fd()``, so Tk wakes
when main-side work arrives (no polling); where Tk has no file handlers
(Windows, or a threaded Tcl that refuses them) it pumps on a short
``after`` cadence instead. Each pump has a deadline, so the GUI stays
responsive while main-side work queues up.
"""

from __future__ import annotations

import tkinter
from typing import Any, Optional

import boc

from ._hosts import claim, positive_millis, release, require_main_thread

__all__ = ["Attachment", "attach"]

#: The default pump deadline of an attachment, in milliseconds.
DEFAULT_DEADLINE_MS = 5.0

#: The `after` cadence, in milliseconds, where Tk has no file handlers.
DEFAULT_INTERVAL_MS = 5


class Attachment:
    """A Tk root pumping boc's main-side behaviors; made by :func:`attach`."""

    def __init__(self, root: tkinter.Misc, deadline_ms: float, interval_ms: int) -> None:
        self._root = root
        self._deadline_ms = deadline_ms
        self._interval_ms = interval_ms
        self._fd: Optional[int] = None
        self._after_id: Optional[str] = None
        self._attached = True
        self._pumping = False
        claim(self)
        fd = boc.pump_fd()
        try:
            root.tk.createfilehandler(fd, tkinter.READABLE, self._on_readable)
        except (AttributeError, RuntimeError, tkinter.TclError):
            # No file handlers here: pump on a cadence instead.
            self._after_id = root.after(self._interval_ms, self._on_tick)
        else:
            self._fd = fd
            # Work that arrived before attaching is signalled already; Tk
            # sees the readable descriptor at its next event check.
        self._uses_file_handler = self._fd is not None

    @property
    def uses_file_handler(self) -> bool:
        """True if Tk watches boc's descriptor; false on the ``after`` cadence."""
        return self._uses_file_handler

    @property
    def attached(self) -> bool:
        """True until :meth:`detach`."""
        return self._attached

    def _host_gone(self) -> bool:
        """True once the root was destroyed: it will never pump again."""
        try:
            return not self._root.winfo_exists()
        except tkinter.TclError:  # the application was destroyed
            return True

    def _pump(self) -> None:
        # A main-side body may run a nested Tk loop (root.update(), a modal
        # dialog): boc is not pumped again from inside it.
        if self._pumping:
            return
        self._pumping = True
        try:
            boc.pump(deadline_ms=self._deadline_ms)
        finally:
            self._pumping = False

    def _on_readable(self, fd: int, mask: int) -> None:
        # The descriptor stays readable while work is left; unwatched while
        # pumping, so a loop nested in a body does not spin on it.
        self._root.tk.deletefilehandler(fd)
        try:
            self._pump()
        finally:
            if self._attached and self._fd is not None:
                self._root.tk.createfilehandler(fd, tkinter.READABLE, self._on_readable)

    def _on_tick(self) -> None:
        self._after_id = None
        if not self._attached:
            return
        try:
            self._pump()
        finally:
            if self._attached:
                self._after_id = self._root.after(self._interval_ms, self._on_tick)

    def detach(self) -> None:
        """Stop pumping from Tk. Harmless to call twice, or after the root
        was destroyed."""
        if not self._attached:
            return
        self._attached = False
        release(self)
        try:
            if self._fd is not None:
                self._root.tk.deletefilehandler(self._fd)
            if self._after_id is not None:
                self._root.after_cancel(self._after_id)
        except tkinter.TclError:  # the root is gone already
            pass
        self._fd = None
        self._after_id = None

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.detach()

    def __repr__(self) -> str:
        how = "file handler" if self.uses_file_handler else f"every {self._interval_ms} ms"
        state = "attached" if self._attached else "detached"
        return f"<boc.tk.Attachment {state} ({how}), deadline {self._deadline_ms} ms>"


def attach(
    root: tkinter.Misc,
    *,
    deadline_ms: float = DEFAULT_DEADLINE_MS,
    interval_ms: int = DEFAULT_INTERVAL_MS,
) -> Attachment:
    """Make Tk's event loop (``root.mainloop()``) pump boc's main-side work.

    Call it on the main thread, where Tk runs. Each pump lasts at most
    ``deadline_ms`` milliseconds (a running behavior is never interrupted);
    ``interval_ms`` is the cadence used only where Tk cannot watch a file
    descriptor. Returns an :class:`Attachment`; ``detach()`` stops it. One
    loop pumps at a time: attaching while another attachment (``boc.aio``
    or ``boc.tk``) is active raises ``RuntimeError``.
    """
    require_main_thread("boc.tk.attach()")
    if not isinstance(root, tkinter.Misc):
        raise TypeError(f"boc.tk.attach() takes a Tk root or widget, not {type(root).__name__}")
    deadline_ms = positive_millis("deadline_ms", deadline_ms)
    if isinstance(interval_ms, bool) or not isinstance(interval_ms, int):
        raise TypeError(f"interval_ms must be a positive int of milliseconds, not {type(interval_ms).__name__}")
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be a positive int of milliseconds, not {interval_ms}")
    return Attachment(root, deadline_ms, interval_ms)
