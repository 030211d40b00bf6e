"""Helpers shared by the test modules (imported as `helpers`: pytest puts
this folder on `sys.path`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

#: How long a helper waits for a thread or a server before calling it hung.
PATIENCE = 20

#: How many times each racy subprocess case runs: `BOC_REPEAT` from the
#: environment, 2 by default (`cargo xtask soak` sets 20). Parametrize over
#: `range(REPEAT)` so that each run reports on its own.
REPEAT = int(os.environ.get("BOC_REPEAT", "2"))
if REPEAT < 1:
    raise ValueError(f"BOC_REPEAT must be a positive number of runs, not {REPEAT}")

#: How long a subprocess program may run before it counts as hung: far more
#: than any needs, even on the debug + ASan build (several times slower).
PROGRAM_TIMEOUT = 60

#: How much of a program's output a failure message quotes, in characters per stream.
OUTPUT_TAIL = 3000


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


@dataclass(frozen=True, repr=False)
class Finished:
    """How a subprocess program ended. Its `repr` describes it for a failure
    message (`assert ..., finished`): the status and the tail of both streams."""

    returncode: int
    """The exit status, or minus the signal number that killed the program."""
    stdout: str
    stderr: str
    hung: bool
    """True if the program was killed for outliving its timeout."""

    def status(self) -> str:
        """The way the program ended, in words."""
        if self.hung:
            return "hung (killed at its timeout)"
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"was killed by {name} (returncode {self.returncode})"
        return f"exited with status {self.returncode}"

    def __repr__(self) -> str:
        return _report(self.status(), self.stdout, self.stderr)

    def expect(self, condition: object, what: str) -> None:
        """Fails the test unless `condition` holds, with `what` went wrong, how
        the program ended and the tail of its output. (pytest cuts a plain
        `assert`'s message to a few lines: the output would be lost.)"""
        __tracebackhide__ = True
        if not condition:
            raise AssertionError(f"{what}; {self!r}")


def _report(status: str, stdout: str, stderr: str) -> str:
    """`the program <status>`, then the tail of each stream."""
    report = [f"the program {status}"]
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        cut = "[...]\n" if len(text) > OUTPUT_TAIL else ""
        report.append(f"--- {name}:\n{cut}{text[-OUTPUT_TAIL:]}" if text else f"--- {name}: (empty)")
    return "\n".join(report)


class Program:
    """A Python program run as a subprocess of this interpreter
    (`sys.executable`, the inherited environment), from a file named `name`
    in a fresh temporary folder; its output is collected as it comes, so a
    test can wait for a line, signal the program, then `finish()` it.

    Use it as a context manager: leaving the block kills the program if it
    is still running and removes the folder.
    """

    def __init__(self, source: str, name: str = "program.py") -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="boc-program-")
        self.path = Path(self._folder.name) / name
        self.path.write_text(textwrap.dedent(source))
        self._process = subprocess.Popen(
            [sys.executable, str(self.path)],
            cwd=self._folder.name,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="backslashreplace",
        )
        self._output = {"stdout": [], "stderr": []}
        self._arrived = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(stream, self._output[name]), daemon=True)
            for name, stream in (("stdout", self._process.stdout), ("stderr", self._process.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, chunks: list) -> None:
        for line in stream:
            with self._arrived:
                chunks.append(line)
                self._arrived.notify_all()
        with self._arrived:
            chunks.append("")  # end of stream
            self._arrived.notify_all()

    def output(self, stream: str = "stdout") -> str:
        """What the program has written to `stream` ("stdout" or "stderr") so far."""
        with self._arrived:
            return "".join(self._output[stream])

    def running(self) -> bool:
        """True until the program has ended."""
        return self._process.poll() is None

    def wait_for(self, text: str, stream: str = "stdout", timeout: float = PROGRAM_TIMEOUT) -> float:
        """Waits until `text` appears on `stream`; returns the `time.monotonic()`
        at which it was seen. Fails the test, with what the program printed
        and how it ended, if the stream ends or `timeout` passes first."""
        deadline = time.monotonic() + timeout
        chunks = self._output[stream]
        with self._arrived:
            while True:
                if text in "".join(chunks):
                    return time.monotonic()
                remaining = deadline - time.monotonic()
                ended = chunks and chunks[-1] == ""
                if ended or remaining <= 0:
                    break
                self._arrived.wait(remaining)
        reason = f"closed its {stream}" if ended else f"went {timeout} s"
        self.expect(False, f"the program {reason} without printing {text!r}")

    def expect(self, condition: object, what: str) -> None:
        """`Finished.expect` for a program that may still be running."""
        __tracebackhide__ = True
        if not condition:
            raise AssertionError(f"{what}; {self._describe()}")

    def send_signal(self, signum: int) -> None:
        self._process.send_signal(signum)

    def finish(self, timeout: float = PROGRAM_TIMEOUT) -> Finished:
        """Waits for the program to end (killing it after `timeout` seconds)."""
        hung = False
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            hung = True
            self._process.kill()
            self._process.wait()
        for reader in self._readers:
            reader.join(PATIENCE)
        return Finished(self._process.returncode, self.output("stdout"), self.output("stderr"), hung)

    def _describe(self) -> str:
        returncode = self._process.poll()
        status = "is still running" if returncode is None else Finished(returncode, "", "", False).status()
        return _report(status, self.output("stdout"), self.output("stderr"))

    def __enter__(self) -> "Program":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.running():
            self._process.kill()
        self._process.wait()
        for reader in self._readers:
            reader.join(PATIENCE)
        self._process.stdout.close()
        self._process.stderr.close()
        self._folder.cleanup()


def run_program(source: str, name: str = "program.py", timeout: float = PROGRAM_TIMEOUT) -> Finished:
    """Runs `source` (dedented) as a program of this interpreter, to its end
    or to `timeout` seconds; see `Program`."""
    with Program(source, name) as program:
        return program.finish(timeout)
