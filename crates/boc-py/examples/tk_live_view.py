"""A Tk live view: workers roll dice, one pinned behavior per frame draws.

The window shows a histogram of the sums of three dice, growing as the
workers roll. It is the coarse-grained pattern for GUIs (docs/event-loops.md):

- the per-item work, rolling thousands of dice, runs on the workers, on
  ordinary cowns (one per shard, each with its own random generator);
- once per frame, one worker behavior gathers the shards' counts into its
  result cown, and ONE pinned behavior takes that result and redraws the
  Canvas. Tk widgets may only be used on the main thread, so the canvas
  lives in a PinnedCown, and boc runs the redraw there;
- `boc.tk.attach(root)` makes Tk's own loop, `root.mainloop()`, run those
  pinned behaviors (Tk watches `boc.pump_fd()`, so nothing polls), and a
  `root.after` timer starts each frame: it hands the workers the next wave of
  rolls only once the previous frame is on the screen, so the work never
  runs ahead of what the user sees.

After `--seconds` it draws a last frame, checks the counts, and exits.
`--screenshot PATH` saves a PNG of the window first: on X11 the window's
pixels are read back from the X server with Xlib (through ctypes, nothing to
install); elsewhere the bars on the canvas are drawn into the PNG instead.
Headless, run it under Xvfb: `xvfb-run python tk_live_view.py`.

    python tk_live_view.py [--seconds S] [--workers N] [--screenshot PATH]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import itertools
import math
import random
import struct
import sys
import threading
import time
import tkinter
import zlib
from dataclasses import dataclass, field

import boc
import boc.tk
from boc import Cown, PinnedCown, when
from checks import report

DICE, SIDES = 3, 6
LOWEST, HIGHEST = DICE, DICE * SIDES  # the sums a roll can have
N_SHARDS, ROLLS_PER_BATCH, FRAMES_PER_SECOND = 4, 2_000, 20
WIDTH, HEIGHT, MARGIN = 560, 360, 30
BAR_COLOR, BACKGROUND = "#3b7dd8", "#fdfdf8"


@dataclass
class Shard:
    """One worker's share of the rolling: its own generator and counts."""

    rng: random.Random
    counts: list[int] = field(default_factory=lambda: [0] * (HIGHEST - LOWEST + 1))
    rolls: int = 0


def roll(shard: Cown[Shard]) -> None:
    """Per-item work, on a worker: a batch of rolls into one shard."""

    @when(shard)
    def _(shard: Cown[Shard]) -> None:
        state = shard.value
        faces = state.rng.choices(range(1, SIDES + 1), k=DICE * ROLLS_PER_BATCH)
        for i in range(0, len(faces), DICE):
            state.counts[sum(faces[i : i + DICE]) - LOWEST] += 1
        state.rolls += ROLLS_PER_BATCH


def tally(shards: list[Cown[Shard]]) -> Cown[list[int]]:
    """One worker behavior per frame gathers every shard: an exact snapshot."""

    @when(shards)
    def counts(shards: list[Cown[Shard]]) -> list[int]:
        return [sum(column) for column in zip(*(shard.value.counts for shard in shards))]

    return counts


class Histogram:
    """The canvas and its bars: Tk objects, usable only on the main thread."""

    def __init__(self, root: tkinter.Tk) -> None:
        self.canvas = tkinter.Canvas(root, width=WIDTH, height=HEIGHT, background=BACKGROUND, highlightthickness=0)
        self.canvas.pack()
        self.slot = (WIDTH - 2 * MARGIN) / (HIGHEST - LOWEST + 1)
        self.bars = []
        for i, total in enumerate(range(LOWEST, HIGHEST + 1)):
            x = MARGIN + i * self.slot
            self.bars.append(self.canvas.create_rectangle(x + 3, HEIGHT - MARGIN, x + self.slot - 3, HEIGHT - MARGIN,
                                                          fill=BAR_COLOR, outline=""))
            self.canvas.create_text(x + self.slot / 2, HEIGHT - MARGIN / 2, text=str(total))
        self.title = self.canvas.create_text(MARGIN, MARGIN / 2, anchor="w", text="rolling...")
        self.n_frames = self.n_off_main = 0
        self.shown: list[int] = []

    def draw(self, counts: list[int], final: bool) -> None:
        self.n_off_main += threading.current_thread() is not threading.main_thread()
        self.n_frames += 1
        self.shown = counts
        top, room = max(max(counts), 1), HEIGHT - 3 * MARGIN
        for bar, count in zip(self.bars, counts):
            x0, _, x1, bottom = self.canvas.coords(bar)
            self.canvas.coords(bar, x0, bottom - room * count / top, x1, bottom)
        state = "final" if final else f"frame {self.n_frames}"
        self.canvas.itemconfigure(self.title, text=f"sums of {DICE} dice: {sum(counts):,} rolls, {state}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to roll (default 5)")
    parser.add_argument("--workers", type=int, default=None, help="worker threads (default: boc's)")
    parser.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window at the end")
    args = parser.parse_args()
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    try:
        root = tkinter.Tk()
    except tkinter.TclError as error:
        print(f"tk live view needs a display ({error}); headless, run it under xvfb-run", file=sys.stderr)
        return 2
    root.title("boc: a live histogram")
    root.resizable(False, False)

    boc.start(workers=args.workers)
    histogram = PinnedCown(Histogram(root))
    shards = [Cown(Shard(random.Random(seed))) for seed in range(N_SHARDS)]
    attachment = boc.tk.attach(root)  # Tk's loop now runs boc's main-side behaviors
    n_batches = n_scheduled = n_drawn = 0
    started = time.monotonic()
    stop_at = started + args.seconds

    def next_frame(final: bool = False) -> None:
        nonlocal n_batches, n_scheduled
        if not final:
            for shard in shards:
                roll(shard)
            n_batches += len(shards)
        counts = tally(shards)
        n_scheduled += 1

        @when(histogram, counts)  # the one pinned behavior of this frame: it runs here, in mainloop()
        def redraw(histogram: PinnedCown[Histogram], counts: Cown[list[int]]) -> None:
            nonlocal n_drawn
            histogram.value.draw(counts.value, final)
            n_drawn += 1  # main-thread state, like the frame timer that reads it
            if final:
                root.quit()

    def tick() -> None:  # the frame timer, on the main thread
        if time.monotonic() >= stop_at:
            next_frame(final=True)
        else:
            if n_drawn == n_scheduled:  # the screen has caught up: start the next frame
                next_frame()
            root.after(1000 // FRAMES_PER_SECOND, tick)

    def close() -> None:  # the window's close button: finish early
        nonlocal stop_at
        stop_at = time.monotonic()

    root.protocol("WM_DELETE_WINDOW", close)
    root.after(0, tick)
    root.mainloop()
    elapsed = time.monotonic() - started

    saved = save_screenshot(root, histogram.value, args.screenshot) if args.screenshot else None
    pumped_by = "a Tk file handler on boc.pump_fd()" if attachment.uses_file_handler else "a Tk after() cadence"
    attachment.detach()
    root.destroy()
    boc.wait()

    # Everything has run: every cown is idle, so its value is readable here.
    rolled = sum(shard.value.rolls for shard in shards)
    counts = [sum(column) for column in zip(*(shard.value.counts for shard in shards))]
    shown = histogram.value
    checks = [
        (rolled == n_batches * ROLLS_PER_BATCH == sum(counts), f"{rolled:,} rolls in {n_batches} batches, all counted"),
        (shown.shown == counts, "the last frame shows every roll"),
        (shown.n_off_main == 0 and shown.n_frames == n_drawn == n_scheduled,
         f"{shown.n_frames} frames drawn, one pinned behavior each, all on the main thread"),
        (looks_like_dice(counts), f"the histogram has the shape of {DICE} dice (within 5 standard errors)"),
    ]
    print(f"tk live view: {shown.n_frames} frames in {elapsed:.1f} s ({shown.n_frames / elapsed:.0f} per second), "
          f"pumped by {pumped_by}")
    if saved:
        print(f"screenshot: {saved}")
    return report(checks)


def looks_like_dice(counts: list[int]) -> bool:
    """Every sum's count is within 5 standard errors of what fair dice give."""
    ways = [0] * (HIGHEST - LOWEST + 1)
    for faces in itertools.product(range(1, SIDES + 1), repeat=DICE):
        ways[sum(faces) - LOWEST] += 1
    n = sum(counts)
    if n == 0:
        return False
    for count, way in zip(counts, ways):
        p = way / SIDES**DICE
        if abs(count - n * p) > 5 * math.sqrt(n * p * (1 - p)) + 1:
            return False
    return True


# The screenshot: plain Python and the X server, no image library needed.


def save_screenshot(root: tkinter.Tk, histogram: Histogram, path: str) -> str:
    """Saves the window as a PNG at `path`; returns a description of what was saved."""
    root.update()  # draw everything pending
    root.winfo_pointerxy()  # a round trip: the X server has done all of Tk's drawing
    width, height = root.winfo_width(), root.winfo_height()
    pixels = None
    if root.tk.call("tk", "windowingsystem") == "x11":
        pixels = grab_x11(root.winfo_rootx(), root.winfo_rooty(), width, height)
    how = "the window's pixels, read from the X server"
    if pixels is None:
        pixels, how = paint_bars(root, histogram, width, height), "the canvas's bars, painted from its items"
    with open(path, "wb") as file:
        file.write(png(width, height, pixels))
    return f"{path} ({width}x{height}, {how})"


class XImage(ctypes.Structure):
    """The leading fields of Xlib's XImage."""

    _fields_ = [(name, ctypes.c_int) for name in ("width", "height", "xoffset", "format")] + [
        ("data", ctypes.c_void_p)
    ] + [(name, ctypes.c_int) for name in ("byte_order", "bitmap_unit", "bitmap_bit_order", "bitmap_pad", "depth",
                                          "bytes_per_line", "bits_per_pixel")] + [
        (name, ctypes.c_ulong) for name in ("red_mask", "green_mask", "blue_mask")
    ]


def grab_x11(x: int, y: int, width: int, height: int) -> bytes | None:
    """RGB bytes of a rectangle of the screen, through Xlib; None if that fails."""
    try:
        xlib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    except OSError:
        return None
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XDefaultRootWindow.restype = ctypes.c_ulong
    xlib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    xlib.XDefaultScreen.argtypes = [ctypes.c_void_p]
    xlib.XDisplayWidth.argtypes = xlib.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XGetImage.restype = ctypes.POINTER(XImage)
    xlib.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                               ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
    xlib.XGetPixel.restype = ctypes.c_ulong
    xlib.XGetPixel.argtypes = [ctypes.POINTER(XImage), ctypes.c_int, ctypes.c_int]
    xlib.XDestroyImage.argtypes = [ctypes.POINTER(XImage)]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = xlib.XOpenDisplay(None)
    if not display:
        return None
    try:
        screen = xlib.XDefaultScreen(display)
        # The root window, not Tk's: a rectangle inside the screen is always readable.
        if x < 0 or y < 0 or x + width > xlib.XDisplayWidth(display, screen) \
                or y + height > xlib.XDisplayHeight(display, screen):
            return None
        all_planes, z_pixmap = ctypes.c_ulong(-1).value, 2
        image = xlib.XGetImage(display, xlib.XDefaultRootWindow(display), x, y, width, height, all_planes, z_pixmap)
        if not image:
            return None
        try:
            masks = [image.contents.red_mask, image.contents.green_mask, image.contents.blue_mask]
            shifts = [(mask & -mask).bit_length() - 1 for mask in masks]
            out = bytearray(width * height * 3)
            i = 0
            for row in range(height):
                for column in range(width):
                    pixel = xlib.XGetPixel(image, column, row)
                    for mask, shift in zip(masks, shifts):
                        out[i] = ((pixel & mask) >> shift) * 255 // (mask >> shift)
                        i += 1
            return bytes(out)
        finally:
            xlib.XDestroyImage(image)
    finally:
        xlib.XCloseDisplay(display)


def paint_bars(root: tkinter.Tk, histogram: Histogram, width: int, height: int) -> bytes:
    """RGB bytes of the canvas's rectangles on its background (no text): for non-X11 systems."""
    canvas = histogram.canvas

    def rgb(color: str) -> bytes:
        return bytes(channel >> 8 for channel in root.winfo_rgb(color))

    out = bytearray(rgb(BACKGROUND) * (width * height))
    for item in canvas.find_withtag("all"):
        if canvas.type(item) != "rectangle":
            continue
        x0, y0, x1, y1 = (round(v) for v in canvas.coords(item))
        color = rgb(canvas.itemcget(item, "fill"))
        for row in range(max(y0, 0), min(y1, height)):
            start, end = max(x0, 0), min(x1, width)
            out[(row * width + start) * 3 : (row * width + end) * 3] = color * (end - start)
    return bytes(out)


def png(width: int, height: int, rgb: bytes) -> bytes:
    """A PNG file of `rgb` (8-bit RGB rows, top to bottom)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    stride = width * 3
    rows = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    sys.exit(main())
