"""The Python benchmarks (``cargo xtask bench --python``): each row a ratio of two
medians measured in this one invocation, written to the Python section of
BENCHMARKS.md.

1. boc against bocpy, on the same classic CPython (3.12; both installed in one
   environment), 1 worker each, 20,000 null behaviors:

   - chain: all on one cown;
   - fanout: each on its own cown;
   - pinned: all on one pinned cown, run on the main thread while it waits;
   - mixed: each on its own pair of a cown and a pinned cown.

   The speedup is bocpy's time over boc's. Goals: at least 5x on chain and
   fanout, at least 3x on pinned and mixed.

2. boc on the free-threaded CPython 3.13t: 32 CPU-bound pure-Python behaviors,
   each on its own cown, 2 workers against 1. The speedup is the 1-worker time
   over the 2-worker time. Goal: at least 1.6x. Skipped without ``--ft-python``.

Every sample is a fresh process (``boc_side.py`` or ``bocpy_side.py``, through
``harness.py``) that warms up, then times scheduling the behaviors and waiting
for them; the two sides of a row alternate (ABBA) over the repeats, and each
side's median is reported. The Rust section of BENCHMARKS.md
(``cargo xtask bench``, benches/runtime.rs) is left as it is: this script
rewrites only the text between its two markers, which that benchmark keeps.

Usage (xtask passes the interpreters)::

    python run.py --bocpy-python PY --boc-python PY [--ft-python PY]
                  [--quick] [--repeats N] [--no-write | --out PATH]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]

#: The Python section of BENCHMARKS.md lies between these lines; benches/runtime.rs
#: uses the same two when it rewrites the Rust section.
SECTION_BEGIN = "<!-- python benchmarks: begin -->"
SECTION_END = "<!-- python benchmarks: end -->"

#: No single sample may take longer than this (seconds): a hang fails the run.
SAMPLE_TIMEOUT = 600


@dataclass
class Side:
    """One side of a ratio: an interpreter running one side script."""

    python: str
    script: str
    workers: int

    def measure(self, workload, n, warmup, iterations):
        """Runs one sample in a fresh process; returns the JSON it reports."""
        command = [self.python, str(HERE / self.script), workload, f"--n={n}",
                   f"--workers={self.workers}", f"--warmup={warmup}"]
        if iterations is not None:
            command.append(f"--iterations={iterations}")
        try:
            done = subprocess.run(command, cwd=HERE, capture_output=True, text=True,
                                  timeout=SAMPLE_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            sys.exit(f"bench: `{' '.join(command)}` took more than {SAMPLE_TIMEOUT} s")
        reports = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not reports:
            sys.exit(f"bench: `{' '.join(command)}` failed (exit code {done.returncode}):\n"
                     f"{done.stdout[-2000:]}{done.stderr[-4000:]}")
        return json.loads(reports[-1])


@dataclass
class Row:
    """One row of the report: a workload timed on two sides."""

    name: str
    workload: str
    n: int
    warmup: int
    baseline: Side
    candidate: Side
    goal: float
    iterations: int = None


def per_behavior(seconds, n):
    """`12.3 ms (0.62 µs/behavior)`; slow bodies in ms: `676.6 ms (21.1 ms/behavior)`."""
    each = seconds / n
    each = f"{each * 1e3:.1f} ms" if each >= 1e-3 else f"{each * 1e6:.2f} µs"
    return f"{seconds * 1e3:.1f} ms ({each}/behavior)"


def compare(row, repeats):
    """Times both sides of `row`, alternating (ABBA); returns their medians and the
    last report of each side."""
    samples = {"baseline": [], "candidate": []}
    reports = {}
    for repeat in range(repeats):
        order = ["baseline", "candidate"] if repeat % 2 == 0 else ["candidate", "baseline"]
        for role in order:
            side = getattr(row, role)
            report = side.measure(row.workload, row.n, row.warmup, row.iterations)
            samples[role].append(report["seconds"])
            reports[role] = report
            print(f"  {row.workload:<7} {side_name(side, report):<26} {report['seconds'] * 1e3:9.1f} ms",
                  flush=True)
    baseline = statistics.median(samples["baseline"])
    candidate = statistics.median(samples["candidate"])
    return baseline, candidate, reports


def side_name(side, report):
    """`bocpy 0.14.0, 1 worker`."""
    return f"{report['runtime']}, {side.workers} worker{'' if side.workers == 1 else 's'}"


def machine():
    """CPU model and count, as benches/runtime.rs reports them."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {sys.platform}"


def interpreter(report):
    """`CPython 3.13.1 (free-threaded, GIL disabled)` from a sample's report."""
    text = f"CPython {report['python']}"
    if report["free_threaded"]:
        gil = "ENABLED: not a free-threaded run" if report["gil_enabled"] else "disabled"
        text += f" (free-threaded build, GIL {gil} after the run)"
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bocpy-python", required=True, help="interpreter with bocpy installed")
    parser.add_argument("--boc-python", required=True, help="interpreter with boc installed, same version")
    parser.add_argument("--ft-python", help="free-threaded interpreter with boc installed")
    parser.add_argument("--repeats", type=int, help="samples per side (default 5, --quick 3)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run: fewer behaviors and repeats")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    parser.add_argument("--out", default=str(REPO_ROOT / "BENCHMARKS.md"), help="file to write the section into")
    parser.add_argument("--invocation", help="the command to report (xtask passes its own)")
    args = parser.parse_args()

    n, warmup, repeats = (2_000, 200, 3) if args.quick else (20_000, 1_000, 5)
    repeats = args.repeats or repeats
    n_cpu, cpu_iterations = 32, (50_000 if args.quick else 300_000)
    invocation = args.invocation or " ".join(["python", *sys.argv])

    bocpy = Side(args.bocpy_python, "bocpy_side.py", workers=1)
    boc = Side(args.boc_python, "boc_side.py", workers=1)
    rows = [
        Row(f"chain: {n:,} null behaviors on one cown", "chain", n, warmup, bocpy, boc, goal=5.0),
        Row(f"fanout: {n:,} null behaviors, each on its own cown", "fanout", n, warmup, bocpy, boc, goal=5.0),
        Row(f"pinned: {n:,} null behaviors on one pinned cown, run on the main thread while it waits",
            "pinned", n, warmup, bocpy, boc, goal=3.0),
        Row(f"mixed: {n:,} null behaviors, each on its own cown + pinned cown pair",
            "mixed", n, warmup, bocpy, boc, goal=3.0),
    ]
    if args.ft_python:
        rows.append(Row(
            f"free-threaded: {n_cpu} CPU-bound pure-Python behaviors ({cpu_iterations:,}-iteration loop), "
            "each on its own cown",
            "cpu", n_cpu, 2, Side(args.ft_python, "boc_side.py", workers=1),
            Side(args.ft_python, "boc_side.py", workers=2), goal=1.6, iterations=cpu_iterations))

    started = time.perf_counter()
    table = []
    interpreters = {}
    for row in rows:
        print(f"{row.name}", flush=True)
        baseline, candidate, reports = compare(row, repeats)
        speedup = baseline / candidate
        met = "yes" if speedup >= row.goal else "NO"
        print(f"  => speedup {speedup:.2f}x (goal >= {row.goal}x: {met})", flush=True)
        for role in ("baseline", "candidate"):
            report = reports[role]
            interpreters.setdefault(report["runtime"], set()).add(interpreter(report))
        table.append(f"| {row.name} | {side_name(row.baseline, reports['baseline'])} "
                     f"| {per_behavior(baseline, row.n)} "
                     f"| {side_name(row.candidate, reports['candidate'])} | {per_behavior(candidate, row.n)} "
                     f"| {speedup:.2f}x | >= {row.goal}x | {met} |")
    if not args.ft_python:
        table.append("| free-threaded: 2 workers vs 1 | - | - | - | - | - | >= 1.6x "
                     "| skipped: no free-threaded interpreter (/opt/python-ft/bin/python3.13t) |")
    elapsed = time.perf_counter() - started

    versions = "; ".join(f"{runtime} on {', '.join(sorted(pythons))}"
                         for runtime, pythons in sorted(interpreters.items()))
    section = "\n".join([
        SECTION_BEGIN,
        "## Python",
        "",
        f"Written by `{invocation}` (crates/boc-py/benches/run.py) in {elapsed:.0f} s. "
        f"Each row times a baseline and boc in the same invocation, every sample in a fresh process, "
        f"the two alternated (ABBA) over {repeats} repeats, and reports medians. A sample warms the "
        f"runtime up ({warmup:,} behaviors; 2 for the CPU-bound row), then times scheduling the "
        f"behaviors and waiting for all of them with `quiesce()` (cowns are built beforehand; "
        f"`start()` and the final `wait()` fall outside the timer). "
        f"Speedup = baseline time / boc time. bocpy has pinned cowns too (`bocpy.PinnedCown`, drained "
        f"on the main thread by `wait`/`quiesce`), so the pinned and mixed rows run the same program "
        f"on both sides. The free-threaded row compares boc with 2 workers to boc with 1.",
        "",
        f"Machine: {machine()}",
        "",
        f"Interpreters: {versions}",
        "",
        "| benchmark | baseline | baseline median | boc | boc median | speedup | goal | met |",
        "|---|---|---|---|---|---|---|---|",
        *table,
        SECTION_END,
    ])
    print()
    print(section)
    if not args.no_write:
        write_section(Path(args.out), section)
        print(f"bench: wrote the Python section of {args.out}")


def write_section(path, section):
    """Replaces the text between the markers in `path`, or appends the section."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = "# Benchmarks\n"
    begin, end = text.find(SECTION_BEGIN), text.find(SECTION_END)
    if 0 <= begin < end:
        text = text[:begin] + section + text[end + len(SECTION_END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
