"""boc.tk: Tk's event loop pumps main-side work; a real window under Xvfb."""

from __future__ import annotations

import os
import threading
import time

import boc
import boc.tk
import helpers
import pytest
from boc import Cown, PinnedCown, when

tkinter = pytest.importorskip("tkinter")


@pytest.fixture(scope="module")
def display():
    """A display for this process: ours, or a private Xvfb's."""
    with helpers.display() as name:
        if name is None:
            pytest.skip("no display and no Xvfb (apt-get install xvfb)")
        had_display = "DISPLAY" in os.environ
        os.environ["DISPLAY"] = name
        try:
            yield name
        finally:
            if not had_display:
                del os.environ["DISPLAY"]


@pytest.fixture
def root(display):
    root = tkinter.Tk()
    root.withdraw()
    yield root
    root.destroy()


def run_until(root, condition, seconds=30):
    """Runs Tk's loop until `condition()` holds (or the time is up)."""
    deadline = time.monotonic() + seconds

    def check():
        if condition() or time.monotonic() > deadline:
            root.quit()
        else:
            root.after(5, check)

    root.after(5, check)
    root.mainloop()
    return condition()


def test_pinned_behaviors_fed_by_workers_update_a_widget(root):
    label = tkinter.Label(root, text="waiting")
    label.pack()
    view = PinnedCown(label)
    totals = [Cown(i) for i in range(10)]
    attachment = boc.tk.attach(root)
    assert attachment.uses_file_handler
    for total in totals:

        @when(total)
        def _(total):
            total.value = total.value * 10

    @when(view, totals)
    def _(view, totals):
        assert threading.current_thread() is threading.main_thread()
        view.value.config(text=f"sum {sum(total.value for total in totals)}")

    assert run_until(root, lambda: label.cget("text") != "waiting")
    attachment.detach()
    assert label.cget("text") == "sum 450"
    boc.wait()


def test_detach_stops_pumping(root):
    attachment = boc.tk.attach(root)
    attachment.detach()
    attachment.detach()

    @when(PinnedCown(0))
    def waiting(cown):
        return cown.value

    run_until(root, lambda: False, seconds=0.1)
    assert boc._boc._state()["main_pending"] == 1
    boc.wait()


def test_attach_checks_its_arguments(root):
    with pytest.raises(TypeError, match="Tk root"):
        boc.tk.attach("root")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="deadline_ms"):
        boc.tk.attach(root, deadline_ms=0)
    with pytest.raises(ValueError, match="interval_ms"):
        boc.tk.attach(root, interval_ms=0)


def test_a_nested_tk_loop_in_a_pinned_behavior_neither_spins_nor_raises(root):
    attachment = boc.tk.attach(root)
    screen = PinnedCown([])
    for i in range(5):

        @when(screen)
        def _(screen, i=i):
            root.update()  # a nested event loop, as a modal dialog runs
            screen.value.append(i)

    assert run_until(root, lambda: boc._boc._state()["main_pending"] == 0 and len_of(screen) == 5)
    attachment.detach()
    boc.wait()
    assert screen.value == [0, 1, 2, 3, 4]


def len_of(pinned):
    try:
        return len(pinned.value)
    except RuntimeError:  # held by a behavior right now
        return -1


def test_one_attachment_at_a_time_across_tk_and_asyncio(root):
    import asyncio

    import boc.aio

    with boc.tk.attach(root):
        with pytest.raises(RuntimeError, match="already attached"):
            boc.tk.attach(root)

        async def main():
            with pytest.raises(RuntimeError, match="already attached"):
                boc.aio.attach()

        asyncio.run(main())
    boc.tk.attach(root).detach()


def test_an_attachment_whose_root_was_destroyed_does_not_block_the_next(display):
    gone = tkinter.Tk()
    gone.withdraw()
    boc.tk.attach(gone)  # never detached
    gone.destroy()
    fresh = tkinter.Tk()
    fresh.withdraw()
    try:
        with boc.tk.attach(fresh) as attachment:
            assert attachment.attached
    finally:
        fresh.destroy()
