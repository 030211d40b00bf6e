"""Helpers shared by the test modules (imported as `helpers`: pytest puts
this folder on `sys.path`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Optional

#: How long a helper waits for a thread or a server before calling it hung.
PATIENCE = 20

#: How many times a racy subprocess case runs: 2 in a normal run,
#: `cargo xtask soak` sets more (BOC_REPEAT=20).
REPEAT = int(os.environ.get("BOC_REPEAT", "2"))


@dataclasses.dataclass
class Finished:
    """A program run by `run_program`, after it ended."""

    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        """The status and both streams (the start and the end of a long one:
        a crash report starts with what matters), for assertion messages."""
        return f"status {self.returncode}\n--- stdout ---\n{clip(self.stdout)}\n--- stderr ---\n{clip(self.stderr)}"


def clip(text: str, keep: int = 2500) -> str:
    """`text`, or its first and last `keep` characters if it is longer."""
    if len(text) <= 2 * keep:
        return text
    return f"{text[:keep]}\n[... {len(text) - 2 * keep} characters ...]\n{text[-keep:]}"


def run_program(
    source: str, args: Sequence[str] = (), timeout: float = 60, env: Optional[dict] = None
) -> Finished:
    """Runs `source` (dedented) as a script with this interpreter in a new
    process, with this process's environment plus `env`, and returns how it
    ended. A program still running after `timeout` seconds is killed and
    the test fails."""
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "program.py")
        with open(script, "w") as file:
            file.write(textwrap.dedent(source))
        try:
            process = subprocess.run(
                [sys.executable, script, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, **(env or {})},
            )
        except subprocess.TimeoutExpired as expired:
            out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else expired.stdout or ""
            err = expired.stderr.decode() if isinstance(expired.stderr, bytes) else expired.stderr or ""
            raise AssertionError(f"the program hung (killed after {timeout} s)\n--- stdout ---\n{out}\n--- stderr ---\n{err}")
    return Finished(process.returncode, process.stdout, process.stderr)


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
