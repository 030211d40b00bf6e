"""The Python benchmarks (``cargo xtask bench --python``): each row a ratio of two
medians measured in this one invocation, written to the Python section of
BENCHMARKS.md.

1. boc against bocpy, on the same classic CPython (3.12; both installed in one
   environment), 1 worker each, 20,000 null behaviors:

   - chain: all on one cown;
   - fanout: each on its own cown;
   - pinned: all on one pinned cown, run on the main thread while it waits;
   - mixed: each on its own pair of a cown and a pinned cown.

   Messaging and the noticeboard, same setup, no goals:

   - messages, streamed: 10,000 messages sent on one tag by one worker
     behavior and received by the main thread as they arrive (bocpy holds at
     most 16,384 messages on a tag);
   - messages, queued: the same, received once the behavior has finished;
   - messages, main only: 20,000 messages sent and received by the main
     thread, 1,000 at a time;
   - notice_read: 20,000 behaviors on one cown, each reading one of the 10 keys
     on the board once (a snapshot and a read; chain is the same without it);
   - notice_read, cached: one behavior reading one key 200,000 times.

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

With ``--reference-boc-python PY`` (an environment with another build of boc,
say the commit before a change), every boc-against-bocpy row also times that
build, rotating the three sides over the repeats (ABC, CBA, BCA, ...), and a
second table compares the two builds' speedups over bocpy: a guard against a
change that costs performance. Nothing is written then (``--no-write``).

Usage (xtask passes the interpreters)::

    python run.py --bocpy-python PY --boc-python PY [--ft-python PY]
                  [--reference-boc-python PY --reference-label TEXT]
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
    #: The speedup to reach, or None for a row that only reports it.
    goal: float = None
    iterations: int = None
    #: What the per-item time is per: the workload's `n` counts these.
    unit: str = "behavior"
    #: Another build of the candidate, timed alongside (``--reference-boc-python``).
    reference: Side = None


def per_unit(seconds, n, unit):
    """`12.3 ms (0.62 µs/behavior)`; slow bodies in ms: `676.6 ms (21.1 ms/behavior)`."""
    each = seconds / n
    if each >= 1e-3:
        each = f"{each * 1e3:.1f} ms"
    else:
        each = f"{each * 1e6:.2f} µs" if each >= 1e-6 else f"{each * 1e6:.3f} µs"
    return f"{seconds * 1e3:.1f} ms ({each}/{unit})"


def rotation(roles, repeat):
    """The order of the sides in repeat `repeat`: ABBA for two sides; for three,
    each side takes each position in turn, forwards then backwards."""
    shift = (repeat // 2) % len(roles)
    order = roles[shift:] + roles[:shift]
    return order if repeat % 2 == 0 else order[::-1]


def compare(row, repeats):
    """Times the sides of `row` (baseline, candidate and a reference build if any),
    alternating them over the repeats; returns each side's samples and last report."""
    roles = ["baseline", "candidate"] + (["reference"] if row.reference else [])
    samples = {role: [] for role in roles}
    reports = {}
    for repeat in range(repeats):
        for role in rotation(roles, repeat):
            side = getattr(row, role)
            report = side.measure(row.workload, row.n, row.warmup, row.iterations)
            samples[role].append(report["seconds"])
            reports[role] = report
            name = side_name(side, report) + (" (reference)" if role == "reference" else "")
            print(f"  {row.workload:<15} {name:<38} {report['seconds'] * 1e3:9.1f} ms", flush=True)
    return samples, reports


def spread(values):
    """`min/median/max` of `values`."""
    return f"{min(values):.2f}/{statistics.median(values):.2f}/{max(values):.2f}"


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
    parser.add_argument("--reference-boc-python",
                        help="interpreter with another build of boc, timed in every bocpy row too")
    parser.add_argument("--reference-label", default="reference", help="what the reference build is")
    args = parser.parse_args()
    if args.reference_boc_python:
        args.no_write = True

    n, warmup, repeats = (2_000, 200, 3) if args.quick else (20_000, 1_000, 5)
    repeats = args.repeats or repeats
    n_cpu, cpu_iterations = 32, (50_000 if args.quick else 300_000)
    # Under bocpy's 16,384 messages per tag; reads are cheap, so many of them.
    n_messages = n // 2
    n_reads = n * 10
    invocation = args.invocation or " ".join(["python", *sys.argv])

    bocpy = Side(args.bocpy_python, "bocpy_side.py", workers=1)
    boc = Side(args.boc_python, "boc_side.py", workers=1)
    reference = Side(args.reference_boc_python, "boc_side.py", workers=1) if args.reference_boc_python else None
    rows = [
        Row(f"chain: {n:,} null behaviors on one cown", "chain", n, warmup, bocpy, boc, goal=5.0),
        Row(f"fanout: {n:,} null behaviors, each on its own cown", "fanout", n, warmup, bocpy, boc, goal=5.0),
        Row(f"pinned: {n:,} null behaviors on one pinned cown, run on the main thread while it waits",
            "pinned", n, warmup, bocpy, boc, goal=3.0),
        Row(f"mixed: {n:,} null behaviors, each on its own cown + pinned cown pair",
            "mixed", n, warmup, bocpy, boc, goal=3.0),
        Row(f"messages, streamed: {n_messages:,} messages (small ints) sent on one tag by one behavior, "
            "received on the main thread as they arrive",
            "messages", n_messages, warmup, bocpy, boc, unit="message"),
        Row(f"messages, queued: {n_messages:,} messages (small ints) sent on one tag by one behavior, "
            "received on the main thread once it has finished",
            "messages_queued", n_messages, warmup, bocpy, boc, unit="message"),
        Row(f"messages, main only: {n:,} messages (small ints) sent on one tag and received by the main "
            "thread, 1,000 at a time; no behaviors",
            "messages_main", n, warmup, bocpy, boc, unit="message"),
        Row(f"notice_read: {n:,} behaviors on one cown, each reading one key of a 10-key board once "
            "(the behavior's snapshot + a read; compare chain)",
            "notice_read", n, warmup, bocpy, boc),
        Row(f"notice_read, cached: one behavior reading one key {n_reads:,} times (all but the first "
            "from its snapshot)",
            "notice_reads", n_reads, warmup, bocpy, boc, unit="read"),
    ]
    if args.ft_python:
        rows.append(Row(
            f"free-threaded: {n_cpu} CPU-bound pure-Python behaviors ({cpu_iterations:,}-iteration loop), "
            "each on its own cown",
            "cpu", n_cpu, 2, Side(args.ft_python, "boc_side.py", workers=1),
            Side(args.ft_python, "boc_side.py", workers=2), goal=1.6, iterations=cpu_iterations))

    for row in rows:
        if row.baseline is bocpy:
            row.reference = reference

    started = time.perf_counter()
    table = []
    guard = []
    interpreters = {}
    for row in rows:
        print(f"{row.name}", flush=True)
        samples, reports = compare(row, repeats)
        baseline = statistics.median(samples["baseline"])
        candidate = statistics.median(samples["candidate"])
        speedup = baseline / candidate
        if row.reference:
            earlier = baseline / statistics.median(samples["reference"])
            change = speedup / earlier - 1
            # Per-repeat ratios (samples of a repeat were taken side by side).
            now_ratios = [b / c for b, c in zip(samples["baseline"], samples["candidate"])]
            earlier_ratios = [b / r for b, r in zip(samples["baseline"], samples["reference"])]
            print(f"  => {args.reference_label} {earlier:.2f}x, this build {speedup:.2f}x ({change:+.1%})",
                  flush=True)
            guard.append(f"| {row.name.split(':')[0]} | {earlier:.2f}x ({spread(earlier_ratios)}) "
                         f"| {speedup:.2f}x ({spread(now_ratios)}) | {change:+.1%} |")
        if row.goal is None:
            goal = met = "—"
            print(f"  => speedup {speedup:.2f}x (no goal)", flush=True)
        else:
            goal, met = f">= {row.goal}x", "yes" if speedup >= row.goal else "NO"
            print(f"  => speedup {speedup:.2f}x (goal {goal}: {met})", flush=True)
        for role in ("baseline", "candidate"):
            report = reports[role]
            interpreters.setdefault(report["runtime"], set()).add(interpreter(report))
        table.append(f"| {row.name} | {side_name(row.baseline, reports['baseline'])} "
                     f"| {per_unit(baseline, row.n, row.unit)} "
                     f"| {side_name(row.candidate, reports['candidate'])} "
                     f"| {per_unit(candidate, row.n, row.unit)} "
                     f"| {speedup:.2f}x | {goal} | {met} |")
    if not args.ft_python:
        table.append("| free-threaded: 2 workers vs 1 | - | - | - | - | - | >= 1.6x "
                     "| skipped: no free-threaded interpreter (/opt/python-ft/bin/python3.13t) |")
    latency = aio_latency(args.boc_python, 500 if args.quick else 2_000)
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
        f"runtime up (the same workload with {warmup:,} behaviors, messages or reads; 2 behaviors for "
        f"the CPU-bound row), then times scheduling the behaviors (and sending and receiving the "
        f"messages) and waiting for all of them with `quiesce()` (cowns are built and the noticeboard "
        f"filled beforehand; `start()` and the final `wait()` fall outside the timer). "
        f"Speedup = baseline time / boc time. bocpy has pinned cowns too (`bocpy.PinnedCown`, drained "
        f"on the main thread by `wait`/`quiesce`), so the pinned and mixed rows run the same program "
        f"on both sides. The message and noticeboard rows have no goal and run the same program on "
        f"both sides too. bocpy's worker runs in a sub-interpreter with a GIL of its own, so in the "
        f"streamed messages row its sending behavior and the receiving main thread can run in "
        f"parallel, where boc's take turns with the one GIL of this interpreter. bocpy holds at most "
        f"16,384 messages on a tag, so the streamed and queued rows send {n_messages:,}. bocpy's "
        f"board is filled with `notice_seed` (its `notice_write` is applied later, by a noticeboard "
        f"thread), boc's with `notice_write` (applied before it returns); the values are small ints "
        f"(bocpy pickles values, boc stores the objects). The free-threaded row compares boc with 2 "
        f"workers to boc with 1.",
        "",
        f"Machine: {machine()}",
        "",
        f"Interpreters: {versions}",
        "",
        "| benchmark | baseline | baseline median | boc | boc median | speedup | goal | met |",
        "|---|---|---|---|---|---|---|---|",
        *table,
        "",
        f"Worker-to-main latency under `boc.aio.attach()` (crates/boc-py/benches/aio_latency.py, "
        f"CPython {latency['python']}, {latency['samples']:,} samples one at a time): a worker behavior "
        f"notes the time and schedules a behavior on a pinned cown, which notes it again on the main "
        f"thread inside the asyncio loop. The baseline, in the same process, is a loop that calls "
        f"`boc.pump()` every millisecond. Goal: p50 < 200 µs.",
        "",
        "| integration | p50 | p99 |",
        "|---|---|---|",
        *(f"| {name} | {latency[name]['p50_us']:.1f} µs | {latency[name]['p99_us']:.1f} µs |"
          for name in ("attach", "polling 1 ms")),
        f"| attach / polling | {latency['attach']['p50_us'] / latency['polling 1 ms']['p50_us']:.3f}x "
        f"| {latency['attach']['p99_us'] / latency['polling 1 ms']['p99_us']:.3f}x |",
        SECTION_END,
    ])
    print()
    print(section)
    if guard:
        print()
        print(f"Speedup over bocpy, {args.reference_label} against this build (median, and min/median/max "
              f"of the per-repeat ratios), {repeats} repeats, the three sides rotated:")
        print()
        print(f"| row | {args.reference_label} | this build | change |")
        print("|---|---|---|---|")
        print("\n".join(guard))
    if not args.no_write:
        write_section(Path(args.out), section)
        print(f"bench: wrote the Python section of {args.out}")


def aio_latency(python, n_samples):
    """Runs aio_latency.py once and returns its JSON report."""
    done = subprocess.run([python, str(HERE / "aio_latency.py"), f"--samples={n_samples}", "--json"],
                          cwd=HERE, capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["samples"] = n_samples
    attach, polling = report["attach"], report["polling 1 ms"]
    print(f"aio latency: attach p50 {attach['p50_us']:.1f} us, p99 {attach['p99_us']:.1f} us; "
          f"polling p50 {polling['p50_us']:.1f} us, p99 {polling['p99_us']:.1f} us", flush=True)
    return report


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
