"""Helpers shared by the test modules (imported as `helpers`: pytest puts
this folder on `sys.path`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Optional

#: How long a helper waits for a thread or a server before calling it hung.
PATIENCE = 20

#: How many times a racy subprocess case runs: 2 in a normal run,
#: `cargo xtask soak` sets more (BOC_REPEAT=20). Parametrize over
#: `range(REPEAT)` so that each run reports on its own.
REPEAT = int(os.environ.get("BOC_REPEAT", "2"))
if REPEAT < 1:
    raise ValueError(f"BOC_REPEAT must be a positive number of runs, not {REPEAT}")

#: This interpreter was built with AddressSanitizer (`build-python.sh asan`).
ASAN = "address-sanitizer" in (sysconfig.get_config_var("CONFIG_ARGS") or "")

#: This is a free-threaded build (3.13t).
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))

#: How long a subprocess program may run before it counts as hung: far more
#: than any needs, even on the debug + ASan build (several times slower).
PROGRAM_TIMEOUT = 60


@dataclasses.dataclass
class Finished:
    """A program run by `run_program` (or `Program`), after it ended."""

    returncode: int
    """The exit status, or minus the signal number that killed the program."""
    stdout: str
    stderr: str

    def describe(self) -> str:
        """How the program ended and both streams (the start and the end of a
        long one: a crash report starts with what matters), for assertion
        messages."""
        return _report(_status(self.returncode), self.stdout, self.stderr)

    def expect(self, condition: object, what: str) -> None:
        """Fails the test unless `condition` holds, with `what` went wrong and
        `describe()`. (pytest cuts a plain `assert`'s message to a few lines
        at default verbosity: the streams would be lost.)"""
        __tracebackhide__ = True
        if not condition:
            raise AssertionError(f"{what}; {self.describe()}")


def _status(returncode: Optional[int]) -> str:
    """How a program ended (or that it has not), in words."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name} (returncode {returncode})"
    return f"exited with status {returncode}"


def _report(status: str, stdout: str, stderr: str) -> str:
    return f"the program {status}\n--- stdout ---\n{clip(stdout)}\n--- stderr ---\n{clip(stderr)}"


def clip(text: str, keep: int = 2500) -> str:
    """`text`, or its first and last `keep` characters if it is longer."""
    if len(text) <= 2 * keep:
        return text
    return f"{text[:keep]}\n[... {len(text) - 2 * keep} characters ...]\n{text[-keep:]}"


class Program:
    """`source` (dedented) run as a script by this interpreter in a new
    process, from a file named `name` in a fresh temporary folder, with this
    process's environment plus `env`. Its output is collected as it comes,
    so a test can wait for a line, signal the program, then `finish()` it.

    Use it as a context manager: leaving the block kills the program if it
    is still running and removes the folder.
    """

    def __init__(
        self, source: str, args: Sequence[str] = (), env: Optional[dict] = None, name: str = "program.py"
    ) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="boc-program-")
        self.path = Path(self._folder.name) / name
        self.path.write_text(textwrap.dedent(source))
        self._process = subprocess.Popen(
            [sys.executable, str(self.path), *args],
            cwd=self._folder.name,
            env={**os.environ, **(env or {})},
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

    def describe(self) -> str:
        """`Finished.describe` for a program that may still be running."""
        return _report(_status(self._process.poll()), self.output("stdout"), self.output("stderr"))

    def expect(self, condition: object, what: str) -> None:
        """`Finished.expect` for a program that may still be running."""
        __tracebackhide__ = True
        if not condition:
            raise AssertionError(f"{what}; {self.describe()}")

    def wait_for(self, text: str, stream: str = "stdout", timeout: float = PROGRAM_TIMEOUT) -> float:
        """Waits until `text` appears on `stream`; returns the `time.monotonic()`
        at which it was seen. Fails the test, with what the program printed
        and how it ended, if the stream ends or `timeout` passes first."""
        __tracebackhide__ = True
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

    def send_signal(self, signum: int) -> None:
        self._process.send_signal(signum)

    def finish(self, timeout: float = PROGRAM_TIMEOUT) -> Finished:
        """Waits for the program to end and returns how it ended. A program
        still running after `timeout` seconds is killed and the test fails."""
        __tracebackhide__ = True
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            self._join_readers()
            raise AssertionError(
                f"the program hung (killed after {timeout} s)\n--- stdout ---\n{clip(self.output('stdout'))}"
                f"\n--- stderr ---\n{clip(self.output('stderr'))}"
            ) from None
        self._join_readers()
        return Finished(self._process.returncode, self.output("stdout"), self.output("stderr"))

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(PATIENCE)

    def __enter__(self) -> Program:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.running():
            self._process.kill()
        self._process.wait()
        self._join_readers()
        self._process.stdout.close()
        self._process.stderr.close()
        self._folder.cleanup()


def run_program(
    source: str,
    args: Sequence[str] = (),
    timeout: float = PROGRAM_TIMEOUT,
    env: Optional[dict] = None,
    name: str = "program.py",
) -> Finished:
    """Runs `source` (dedented) as a script with this interpreter in a new
    process and returns how it ended; see `Program`. A program still
    running after `timeout` seconds is killed and the test fails."""
    __tracebackhide__ = True
    with Program(source, args, env, name) as program:
        return program.finish(timeout)


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
