"""Helpers shared by the test modules (imported as `helpers`: pytest puts
this folder on `sys.path`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Optional

#: How long a helper waits for a thread or a server before calling it hung.
PATIENCE = 20


def run_in_thread(function: Callable[[], object]) -> Optional[BaseException]:
    """Runs `function` on a plain `threading.Thread`; returns the exception
    it raised (or None) once the thread has finished."""
    caught = []

    def target():
        try:
            function()
        except BaseException as error:  # noqa: BLE001 (the test asserts on it)
            caught.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(PATIENCE)
    assert not thread.is_alive(), "the call hung"
    return caught[0] if caught else None


@contextlib.contextmanager
def display() -> Iterator[Optional[str]]:
    """The X display to use: ours if `DISPLAY` is set, else a private Xvfb's
    (`:N`) for the duration; None if there is neither."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        yield None
        return
    read_end, write_end = os.pipe()
    # -displayfd: Xvfb picks a free display number and writes it to the pipe once it is ready.
    process = subprocess.Popen(
        [xvfb, "-displayfd", str(write_end), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        number = b""
        deadline = time.monotonic() + 30
        with os.fdopen(read_end, "rb") as pipe:
            while not number.endswith(b"\n") and time.monotonic() < deadline:
                byte = pipe.read(1)
                if not byte:  # Xvfb exited
                    break
                number += byte
        yield f":{number.decode().strip()}" if number.strip() else None
    finally:
        process.terminate()
        process.wait(10)
