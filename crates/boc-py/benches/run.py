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
side's median is reported.

With ``--reference-boc-python PY`` (an environment with another build of boc,
say the commit before a change), every boc-against-bocpy row also times that
build. The option may be given several times, one build each (an A/B of
several variants); ``--reference-label`` names them, paired by position (the
first label with the first build; a build without one is "reference N", N
counted from 1). All the sides of a row are rotated over the repeats so that
each takes each position in turn (``rotation``: ABC, CBA, BCA, ... for three).
Two more tables follow: each side's median time and spread, and the speedups
over bocpy of this build and of each reference, with this build's change
against each: a guard against a change that costs performance. No report is
written then.

The script prints; with ``--report PATH`` it also writes the Python section of
BENCHMARKS.md to PATH, which ``cargo xtask bench --python`` puts into that
file (xtask/src/bench.rs, the one writer of BENCHMARKS.md).

Usage (xtask passes the interpreters)::

    python run.py --bocpy-python PY --boc-python PY [--ft-python PY]
                  [--reference-boc-python PY [--reference-label TEXT]]...
                  [--quick] [--repeats N] [--report PATH]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]

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
    #: Other builds of the candidate, timed alongside (``--reference-boc-python``):
    #: (label, side) pairs.
    references: list = field(default_factory=list)

    def sides(self):
        """(label, side) of every side: baseline, candidate (both unlabelled), then
        the references."""
        return [(None, self.baseline), (None, self.candidate), *self.references]


def per_unit(seconds, n, unit):
    """`12.3 ms (0.62 µs/behavior)`; slow bodies in ms: `676.6 ms (21.1 ms/behavior)`."""
    each = seconds / n
    if each >= 1e-3:
        each = f"{each * 1e3:.1f} ms"
    else:
        each = f"{each * 1e6:.2f} µs" if each >= 1e-6 else f"{each * 1e6:.3f} µs"
    return f"{seconds * 1e3:.1f} ms ({each}/{unit})"


def rotation(roles, repeat):
    """The order of the sides in repeat `repeat`, for any number N of them: the
    roles shifted by one every two repeats, in that order in an even repeat and
    reversed in the odd one after it. ABBA for two sides; ABC, CBA, BCA, ACB, CAB,
    BAC for three. Every two repeats (an order and its reverse) put each side at
    the middle position on average; every 2N repeats each side has taken each
    position exactly twice."""
    shift = (repeat // 2) % len(roles)
    order = roles[shift:] + roles[:shift]
    return order if repeat % 2 == 0 else order[::-1]


def compare(row, repeats):
    """Times the sides of `row` (`Row.sides`: baseline, candidate, then every
    reference build), rotating them over the repeats; returns each side's samples
    and last report, in that order."""
    sides = row.sides()
    samples = [[] for _ in sides]
    reports = [None] * len(sides)
    for repeat in range(repeats):
        for side_idx in rotation(list(range(len(sides))), repeat):
            label, side = sides[side_idx]
            report = side.measure(row.workload, row.n, row.warmup, row.iterations)
            samples[side_idx].append(report["seconds"])
            reports[side_idx] = report
            name = side_name(side, report) + (f" ({label})" if label else "")
            print(f"  {row.workload:<15} {name:<38} {report['seconds'] * 1e3:9.1f} ms", flush=True)
    return samples, reports


def against_references(row, samples):
    """For a row timed with reference builds: prints each build's speedup over the
    baseline, and returns the row's lines of the two tables after the section
    (each side's time; the speedups and this build's change against each
    reference). Ratios per repeat divide samples of the same repeat, which were
    taken side by side."""
    baseline_samples, candidate_samples, *reference_samples = samples
    baseline = statistics.median(baseline_samples)
    speedup = baseline / statistics.median(candidate_samples)
    now_ratios = [b / c for b, c in zip(baseline_samples, candidate_samples)]
    summary = [f"this build {speedup:.2f}x"]
    guard = [f"{speedup:.2f}x ({spread(now_ratios)})"]
    for (label, _), reference in zip(row.references, reference_samples):
        earlier = baseline / statistics.median(reference)
        change = speedup / earlier - 1
        earlier_ratios = [b / r for b, r in zip(baseline_samples, reference)]
        changes = [now / then - 1 for now, then in zip(now_ratios, earlier_ratios)]
        summary.append(f"{label} {earlier:.2f}x ({change:+.1%})")
        guard.append(f"{earlier:.2f}x ({spread(earlier_ratios)}), this build {change:+.1%} "
                     f"({'/'.join(f'{value:+.1%}' for value in spread_values(changes))})")
    print(f"  => {'; '.join(summary)}", flush=True)
    times = [f"{statistics.median(side) * 1e3:.2f} ms ({spread([t * 1e3 for t in side])})" for side in samples]
    short_name = row.name.split(":")[0]
    return f"| {short_name} | {' | '.join(times)} |", f"| {short_name} | {' | '.join(guard)} |"


def spread_values(values):
    """(min, median, max) of `values`."""
    return min(values), statistics.median(values), max(values)


def spread(values):
    """`min/median/max` of `values`."""
    return "/".join(f"{value:.2f}" for value in spread_values(values))


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
    parser.add_argument("--report", help="file to write the Python section of BENCHMARKS.md to (xtask passes one)")
    parser.add_argument("--invocation", help="the command to report (xtask passes its own)")
    parser.add_argument("--reference-boc-python", action="append", default=[],
                        help="interpreter with another build of boc, timed in every bocpy row too; "
                             "may be given several times")
    parser.add_argument("--reference-label", action="append", default=[],
                        help="what the reference build is, one per --reference-boc-python, by position "
                             "(default: reference N)")
    args = parser.parse_args()
    if len(args.reference_label) > len(args.reference_boc_python):
        parser.error("--reference-label is given more times than --reference-boc-python")
    reference_labels = args.reference_label + [
        f"reference {idx + 1}" for idx in range(len(args.reference_label), len(args.reference_boc_python))]
    if args.reference_boc_python:
        args.report = None  # a comparison of builds, not a result to publish

    n, warmup, repeats = (2_000, 200, 3) if args.quick else (20_000, 1_000, 5)
    repeats = args.repeats or repeats
    n_cpu, cpu_iterations = 32, (50_000 if args.quick else 300_000)
    # Under bocpy's 16,384 messages per tag; reads are cheap, so many of them.
    n_messages = n // 2
    n_reads = n * 10
    invocation = args.invocation or " ".join(["python", *sys.argv])

    bocpy = Side(args.bocpy_python, "bocpy_side.py", workers=1)
    boc = Side(args.boc_python, "boc_side.py", workers=1)
    references = [(label, Side(python, "boc_side.py", workers=1))
                  for label, python in zip(reference_labels, args.reference_boc_python)]
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
            row.references = references

    started = time.perf_counter()
    table = []
    times = []
    guard = []
    interpreters = {}
    for row in rows:
        print(f"{row.name}", flush=True)
        samples, reports = compare(row, repeats)
        baseline = statistics.median(samples[0])
        candidate = statistics.median(samples[1])
        speedup = baseline / candidate
        if row.references:
            times_line, guard_line = against_references(row, samples)
            times.append(times_line)
            guard.append(guard_line)
        if row.goal is None:
            goal = met = "—"
            print(f"  => speedup {speedup:.2f}x (no goal)", flush=True)
        else:
            goal, met = f">= {row.goal}x", "yes" if speedup >= row.goal else "NO"
            print(f"  => speedup {speedup:.2f}x (goal {goal}: {met})", flush=True)
        for report in reports[:2]:
            interpreters.setdefault(report["runtime"], set()).add(interpreter(report))
        table.append(f"| {row.name} | {side_name(row.baseline, reports[0])} "
                     f"| {per_unit(baseline, row.n, row.unit)} "
                     f"| {side_name(row.candidate, reports[1])} "
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
    ])
    print()
    print(section)
    if guard:
        labels = [label for label, _ in references]
        print()
        print(f"Time per side: median, and min/median/max over the {repeats} repeats (ms), the "
              f"{2 + len(labels)} sides rotated:")
        print()
        print(f"| row | bocpy | this build | {' | '.join(labels)} |")
        print("|---" * (3 + len(labels)) + "|")
        print("\n".join(times))
        print()
        print(f"Speedup over bocpy of this build and of each reference (median, and min/median/max of the "
              f"per-repeat ratios), and this build's change against that reference (from the medians, and "
              f"min/median/max per repeat; above 0 means this build is faster), {repeats} repeats:")
        print()
        print(f"| row | this build | {' | '.join(labels)} |")
        print("|---" * (2 + len(labels)) + "|")
        print("\n".join(guard))
    if args.report:
        Path(args.report).write_text(section + "\n", encoding="utf-8")


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


if __name__ == "__main__":
    main()
