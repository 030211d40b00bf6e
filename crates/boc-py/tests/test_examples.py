"""The examples in crates/boc-py/examples run, pass their own checks, and exit 0.

Each runs as a subprocess of this interpreter, so it uses the installed package
the tests use. The Tk one runs under a private Xvfb when there is no display.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import helpers
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT_SECONDS = 90


def run_example(name: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Runs an example; fails unless it exits 0. Returns its standard output."""
    process = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        env=env,
        cwd=cwd,
    )
    assert process.returncode == 0, f"{name} exited {process.returncode}\n{process.stdout}\n{process.stderr}"
    assert "all checks passed" in process.stdout, process.stdout
    return process.stdout


def test_bank(tmp_path):
    out = run_example("bank.py", cwd=tmp_path)
    assert "ok   total 20,000 (expected 20,000)" in out


def test_philosophers(tmp_path):
    out = run_example("philosophers.py", "--philosophers", "5", "--meals", "50", cwd=tmp_path)
    assert "ok   every philosopher ate 50 times (250 meals)" in out


def test_aio_service(tmp_path):
    out = run_example("aio_service.py", "--requests", "100", cwd=tmp_path)
    assert "ok   100 answers, all correct" in out


def test_demo(tmp_path):
    out = run_example("demo.py", "--seconds", "2", cwd=tmp_path)
    assert "money conserved" in out


@pytest.fixture(scope="module")
def display_env():
    """An environment for subprocesses with a display: ours, or a private Xvfb's."""
    with helpers.display() as name:
        if name is None:
            pytest.skip("no display and no Xvfb (apt-get install xvfb), or Xvfb did not start")
        yield {**os.environ, "DISPLAY": name}


def png_colors(path: Path) -> tuple[int, int, int]:
    """(width, height, number of distinct colors) of an 8-bit RGB PNG without interlacing."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks[kind] = chunks.get(kind, b"") + data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, color_type, interlace) == (8, 2, 0), "the example writes 8-bit RGB"
    rows = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + 3 * width
    assert len(rows) == stride * height
    # The example writes filter type 0 (none), so the bytes are the pixels.
    pixels = b"".join(rows[y * stride + 1 : (y + 1) * stride] for y in range(height))
    return width, height, len({pixels[i : i + 3] for i in range(0, len(pixels), 3)})


def test_tk_live_view(display_env, tmp_path):
    pytest.importorskip("tkinter")
    screenshot = tmp_path / "live_view.png"
    out = run_example(
        "tk_live_view.py", "--seconds", "2", "--screenshot", str(screenshot), env=display_env, cwd=tmp_path
    )
    assert "frames drawn, one pinned behavior each, all on the main thread" in out
    assert f"screenshot: {screenshot}" in out
    width, height, n_colors = png_colors(screenshot)
    assert (width, height) == (560, 360)
    assert n_colors >= 2, "the screenshot is one flat color"
