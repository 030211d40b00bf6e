//! `cargo xtask bench`: the runtime against baselines run in the same
//! invocation, medians of repeats, written to BENCHMARKS.md.
//!
//! Rows:
//! - uncontended: no-op behaviors, each on its own cown, vs the same
//!   closures pushed through the same pool with no cowns (the protocol's
//!   cost);
//! - chain: behaviors on one cown, vs the same closures through the pool;
//! - bank: two-cown transfers over 8 and over 1,000 accounts, vs the same
//!   transfers as pool tasks locking two `std::sync::Mutex` in address order;
//! - pump throughput: no-op main-only behaviors, each on its own
//!   `PinnedCown`, scheduled from the home thread and drained by one
//!   unbounded `pump`, vs the uncontended row's behaviors on ordinary cowns
//!   run by the workers (same runtime);
//! - worker→main latency, p50 and p99: a worker behavior stamps the time and
//!   schedules a behavior on a `PinnedCown`, which measures when it starts
//!   on the home thread; the home thread blocks in `poll(2)` on `pump_fd`
//!   then pumps, vs a loop that sleeps 1 ms then pumps;
//! - live PinnedCown: the uncontended workload on a runtime holding a live
//!   `PinnedCown` vs on an identical runtime without one (a throughput
//!   ratio);
//! - idle: CPU time an idle pool burns while the process sleeps.
//!
//! Arguments: `--quick` (fewer behaviors and repeats, for a smoke run),
//! `--report PATH` (also write the table there, as markdown: `cargo xtask
//! bench` puts it into BENCHMARKS.md).

use boc::{Budget, Cown, PinnedCown, Runtime};
use boc_sched::{Pool, Runner, Terminator};
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::os::fd::AsRawFd as _;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const N_WORKERS: usize = 2;

/// How long one worker→main latency sample may take before the bench fails.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);

struct Config {
    n_behaviors: usize,
    n_repeats: usize,
    /// Repeats of the live-PinnedCown row, whose expected difference is ~0.
    n_repeats_live: usize,
    /// Worker→main latency samples per home-thread loop.
    n_latency_samples: usize,
    idle_seconds: u64,
    /// Where to write the report, besides printing it.
    report: Option<String>,
}

impl Config {
    fn from_args() -> Self {
        let mut config = Self {
            n_behaviors: 1_000_000,
            n_repeats: 5,
            n_repeats_live: 9,
            n_latency_samples: 2_000,
            idle_seconds: 2,
            report: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => {
                    config.n_behaviors = 100_000;
                    config.n_repeats = 3;
                    config.n_latency_samples = 400;
                    // Runs this short are noisier than the ~0 effect: more of them.
                    config.n_repeats_live = 15;
                    config.idle_seconds = 1;
                }
                "--report" => config.report = args.next(),
                // cargo bench passes --bench.
                "--bench" => {}
                other => panic!("unknown argument {other:?}: this benchmark takes --quick and --report PATH"),
            }
        }
        config
    }
}

/// Boxed closures through the same pool, counted by the same terminator.
type Task = Box<dyn FnOnce() + Send>;

struct Closures {
    terminator: Terminator,
}

impl Runner<Task> for Closures {
    fn run(&self, task: Task) {
        task();
        self.terminator.decrement();
    }
}

struct Baseline {
    runner: Arc<Closures>,
    pool: Pool<Task, Closures>,
}

impl Baseline {
    fn new() -> Self {
        let runner = Arc::new(Closures { terminator: Terminator::new() });
        let pool = Pool::new(N_WORKERS, Arc::clone(&runner)).expect("start the baseline pool");
        Self { runner, pool }
    }

    fn spawn(&self, task: impl FnOnce() + Send + 'static) {
        self.runner.terminator.increment();
        self.pool.spawn(Box::new(task));
    }

    fn wait(&self) {
        self.runner.terminator.wait_idle(None);
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Medians of `reps` timings of each side, the two alternated within each
/// repeat so drift hits both alike; with `swap`, odd repeats run the
/// baseline first (ABBA), so an order effect cancels too.
fn medians(
    reps: usize,
    swap: bool,
    boc: &mut dyn FnMut() -> Duration,
    base: &mut dyn FnMut() -> Duration,
) -> (Duration, Duration) {
    let (mut boc_samples, mut base_samples) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        if swap && rep % 2 == 1 {
            base_samples.push(base());
            boc_samples.push(boc());
        } else {
            boc_samples.push(boc());
            base_samples.push(base());
        }
    }
    (median(boc_samples), median(base_samples))
}

fn uncontended_boc(rt: &Runtime, n: usize) -> Duration {
    let cowns: Vec<_> = (0..n).map(|_| Cown::new(0_u8)).collect();
    let start = Instant::now();
    for cown in &cowns {
        let _ = rt.when(cown, |_| {});
    }
    rt.quiesce().unwrap();
    start.elapsed()
}

fn closures_pool(pool: &Baseline, n: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        pool.spawn(|| {});
    }
    pool.wait();
    start.elapsed()
}

/// The baseline again, but each closure is as large as a behavior's block
/// (it captures 128 bytes), so its box is one allocation by the scheduling
/// thread freed by a worker, as a behavior's is: separates the allocator's
/// share from the protocol's.
fn allocating_closures_pool(pool: &Baseline, n: usize) -> Duration {
    let start = Instant::now();
    for idx in 0..n {
        let block = [idx as u64; 16];
        pool.spawn(move || {
            std::hint::black_box(&block);
        });
    }
    pool.wait();
    start.elapsed()
}

fn chain_boc(rt: &Runtime, n: usize) -> Duration {
    let cown = Cown::new(0_u64);
    let start = Instant::now();
    for _ in 0..n {
        let _ = rt.when(&cown, |v| *v += 1);
    }
    rt.quiesce().unwrap();
    start.elapsed()
}

/// Transfer endpoints, precomputed so both sides do the same work.
fn transfers(n_accounts: usize, n: usize) -> Vec<(usize, usize)> {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut step = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n_accounts as u64) as usize
    };
    (0..n)
        .map(|_| {
            loop {
                let (from, to) = (step(), step());
                if from != to {
                    break (from, to);
                }
            }
        })
        .collect()
}

fn bank_boc(rt: &Runtime, n_accounts: usize, plan: &[(usize, usize)]) -> Duration {
    let accounts: Vec<_> = (0..n_accounts).map(|_| Cown::new(1_000_i64)).collect();
    let start = Instant::now();
    for &(from, to) in plan {
        let _ = rt.when((&accounts[from], &accounts[to]), |(from, to)| {
            *from -= 1;
            *to += 1;
        });
    }
    rt.quiesce().unwrap();
    start.elapsed()
}

fn bank_mutex(pool: &Baseline, n_accounts: usize, plan: &[(usize, usize)]) -> Duration {
    let accounts: Arc<Vec<Mutex<i64>>> = Arc::new((0..n_accounts).map(|_| Mutex::new(1_000)).collect());
    let start = Instant::now();
    for &(from, to) in plan {
        let accounts = Arc::clone(&accounts);
        pool.spawn(move || {
            // Address order (here: index order) keeps the locks deadlock free.
            let (first, second) = if from < to { (from, to) } else { (to, from) };
            let mut a = accounts[first].lock().unwrap();
            let mut b = accounts[second].lock().unwrap();
            let (from_balance, to_balance) = if from < to { (&mut *a, &mut *b) } else { (&mut *b, &mut *a) };
            *from_balance -= 1;
            *to_balance += 1;
        });
    }
    pool.wait();
    start.elapsed()
}

/// No-op main-only behaviors, each on its own pinned cown, scheduled from
/// the home thread, then run there by one unbounded pump. Returns the whole
/// time and the pump's share of it.
fn pump_drain(rt: &Runtime, n: usize) -> (Duration, Duration) {
    let cowns: Vec<_> = (0..n).map(|_| PinnedCown::new(rt, 0_u64).expect("on the home thread")).collect();
    let start = Instant::now();
    for cown in &cowns {
        let _ = rt.when(cown, |_| {});
    }
    let pump_start = Instant::now();
    let report = rt.pump(Budget::unbounded()).expect("pump on the home thread");
    let end = Instant::now();
    assert_eq!((report.executed, report.pending, rt.n_in_flight()), (n, 0, 0), "one pump drains every behavior");
    (end - start, end - pump_start)
}

/// How the home thread waits between pumps in the latency rows.
#[derive(Clone, Copy, Debug)]
enum HomeLoop {
    /// Block in `poll(2)` until `pump_fd` is readable, then pump.
    Fd,
    /// Sleep 1 ms, then pump.
    Polling,
}

/// Blocks until `fd` is readable or `deadline` passes (then returns too:
/// the caller re-checks).
fn wait_readable(fd: i32, deadline: Instant) {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let timeout_ms = remaining.as_micros().div_ceil(1_000).min(100) as i32;
    let mut entry = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one `struct pollfd`, valid and exclusively borrowed for the
    // call; `fd` is the runtime's waker descriptor, open while the runtime
    // lives, and only polled here.
    let rc = unsafe { libc::poll(&mut entry, 1, timeout_ms) };
    if rc < 0 {
        let error = std::io::Error::last_os_error();
        assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "poll on the pump fd failed: {error}");
    }
}

/// Worker→main latencies, one sample at a time, alternating the two home
/// loops in blocks; returns (fd waker, 1 ms polling) samples, `n` each.
///
/// Per sample: a behavior on an ordinary cown sleeps a pseudo-random 0 to
/// 1 ms on its worker (so a sample lands at a random phase of the polling
/// loop rather than right after the home thread went to sleep), stamps the
/// time and schedules, through a captured `Handle`, a behavior on a pinned
/// cown, which records how long after the stamp it started on the home
/// thread. The home thread waits for that sample before sending the next.
fn worker_to_main(n: usize) -> (Vec<Duration>, Vec<Duration>) {
    const BLOCK: usize = 50;
    let rt = Runtime::builder().workers(N_WORKERS).watchdog(None).build().expect("start the latency runtime");
    let fd = rt.pump_fd().expect("the pump fd").as_raw_fd();
    let source = Cown::new(());
    let samples = Rc::new(RefCell::new(Vec::with_capacity(2 * n)));
    let sink = PinnedCown::new(&rt, Rc::clone(&samples)).expect("on the home thread");
    let mut jitter_state = 0x9E37_79B9_7F4A_7C15_u64;
    let (mut fd_samples, mut polling_samples) = (Vec::with_capacity(n), Vec::with_capacity(n));
    while fd_samples.len() < n || polling_samples.len() < n {
        for (mode, out) in [(HomeLoop::Fd, &mut fd_samples), (HomeLoop::Polling, &mut polling_samples)] {
            for _ in 0..BLOCK.min(n - out.len()) {
                jitter_state ^= jitter_state << 13;
                jitter_state ^= jitter_state >> 7;
                jitter_state ^= jitter_state << 17;
                let jitter = Duration::from_micros(jitter_state % 1_000);
                let before = samples.borrow().len();
                let (handle, sink) = (rt.handle(), sink.clone());
                let _ = rt.when(&source, move |_| {
                    std::thread::sleep(jitter);
                    let sent = Instant::now();
                    let _ = handle.when(&sink, move |samples| samples.borrow_mut().push(sent.elapsed()));
                });
                let deadline = Instant::now() + SAMPLE_TIMEOUT;
                while samples.borrow().len() == before {
                    assert!(
                        Instant::now() < deadline,
                        "worker→main latency ({mode:?}): sample {} did not arrive within {SAMPLE_TIMEOUT:?} \
                         ({} in flight, {} waiting for the home thread)",
                        out.len(),
                        rt.n_in_flight(),
                        rt.n_main_pending(),
                    );
                    match mode {
                        HomeLoop::Fd => wait_readable(fd, deadline),
                        HomeLoop::Polling => std::thread::sleep(Duration::from_millis(1)),
                    }
                    rt.pump(Budget::unbounded()).expect("pump on the home thread");
                }
                out.push(*samples.borrow().last().expect("a sample arrived"));
            }
        }
    }
    (fd_samples, polling_samples)
}

/// The `p`-th percentile (nearest rank) of `samples`.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: `rusage` is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid, exclusively borrowed buffer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let micros = |tv: libc::timeval| Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64);
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

fn idle_cpu(seconds: u64) -> (Duration, Duration) {
    let rt = Runtime::builder().workers(N_WORKERS).build().unwrap();
    // Wake the workers once so they go through a real park.
    let _ = rt.when(&Cown::new(()), |_| {});
    rt.quiesce().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let before = cpu_time();
    std::thread::sleep(Duration::from_secs(seconds));
    let idle = cpu_time() - before;
    drop(rt);
    // Baseline: the same process with no pool at all, sleeping as long.
    let before = cpu_time();
    std::thread::sleep(Duration::from_secs(seconds));
    (idle, cpu_time() - before)
}

struct Row {
    name: String,
    boc: String,
    baseline_name: &'static str,
    baseline: String,
    ratio: String,
    target: &'static str,
}

fn per_behavior(total: Duration, n: usize) -> String {
    format!("{:.1} ns", total.as_nanos() as f64 / n as f64)
}

fn main() {
    let config = Config::from_args();
    let n = config.n_behaviors;
    let reps = config.n_repeats;
    let rt = Runtime::builder().workers(N_WORKERS).build().unwrap();
    let pool = Baseline::new();
    let mut rows = Vec::new();
    eprintln!("bench: {n} behaviors per run, median of {reps}, {N_WORKERS} workers");

    // Alternate the two sides within each repeat so drift hits both alike.
    let mut paired = |name: String,
                      baseline_name: &'static str,
                      target: &'static str,
                      mut boc: Box<dyn FnMut() -> Duration + '_>,
                      mut base: Box<dyn FnMut() -> Duration + '_>| {
        let (boc_t, base_t) = medians(reps, false, &mut *boc, &mut *base);
        let ratio = boc_t.as_secs_f64() / base_t.as_secs_f64();
        eprintln!("  {name}: {} vs {} ({ratio:.2}x)", per_behavior(boc_t, n), per_behavior(base_t, n));
        rows.push(Row {
            name,
            boc: per_behavior(boc_t, n),
            baseline_name,
            baseline: per_behavior(base_t, n),
            ratio: format!("{ratio:.2}x time"),
            target,
        });
    };
    paired(
        "uncontended (each behavior on its own cown)".into(),
        "same closures through the pool, no cowns",
        "<= 1.5x",
        Box::new(|| uncontended_boc(&rt, n)),
        Box::new(|| closures_pool(&pool, n)),
    );
    paired(
        "uncontended, vs 128-byte closures (one allocation each)".into(),
        "same pool, closures capturing 128 bytes",
        "- (shows the allocator's share)",
        Box::new(|| uncontended_boc(&rt, n)),
        Box::new(|| allocating_closures_pool(&pool, n)),
    );
    paired(
        "chain (every behavior on one cown)".into(),
        "same closures through the pool, no cowns",
        "-",
        Box::new(|| chain_boc(&rt, n)),
        Box::new(|| closures_pool(&pool, n)),
    );
    let (rt_ref, pool_ref) = (&rt, &pool);
    for n_accounts in [8, 1_000] {
        let plan = transfers(n_accounts, n);
        let plan_ref = &plan;
        paired(
            format!("bank, {n_accounts} accounts (two-cown transfers)"),
            "pool tasks locking two Mutexes in address order",
            if n_accounts == 8 { ">= 1.0x speed (<= 1.0x time)" } else { "-" },
            Box::new(move || bank_boc(rt_ref, n_accounts, plan_ref)),
            Box::new(move || bank_mutex(pool_ref, n_accounts, plan_ref)),
        );
    }
    drop(rt);
    drop(pool);

    // Pump throughput: both sides on one runtime. No watchdog: on a loaded
    // machine, scheduling a million main-side behaviors before the pump may
    // take longer than its threshold, and its report would land mid-table.
    let pump_rt = Runtime::builder().workers(N_WORKERS).watchdog(None).build().unwrap();
    let pump_shares = RefCell::new(Vec::new());
    let (pump_t, workers_t) = medians(
        reps,
        false,
        &mut || {
            let (total, pump) = pump_drain(&pump_rt, n);
            pump_shares.borrow_mut().push(pump);
            total
        },
        &mut || uncontended_boc(&pump_rt, n),
    );
    drop(pump_rt);
    let pump_only = median(pump_shares.into_inner());
    let ratio = pump_t.as_secs_f64() / workers_t.as_secs_f64();
    let rate = n as f64 / pump_t.as_secs_f64() / 1e6;
    eprintln!(
        "  pump: {} ({rate:.2} M/s; pump alone {}) vs {} ({ratio:.2}x)",
        per_behavior(pump_t, n),
        per_behavior(pump_only, n),
        per_behavior(workers_t, n)
    );
    rows.push(Row {
        name: "pump throughput (each behavior on its own PinnedCown, scheduled then one unbounded pump)".into(),
        boc: format!(
            "{} ({rate:.2} M behaviors/s; the pump alone {})",
            per_behavior(pump_t, n),
            per_behavior(pump_only, n)
        ),
        baseline_name: "uncontended: ordinary cowns, run by the workers",
        baseline: format!(
            "{} ({:.2} M behaviors/s)",
            per_behavior(workers_t, n),
            n as f64 / workers_t.as_secs_f64() / 1e6
        ),
        ratio: format!("{ratio:.2}x time"),
        target: "-",
    });

    // Worker→main latency.
    let (fd_samples, polling_samples) = worker_to_main(config.n_latency_samples);
    for (label, p, target) in [("p50", 0.50, "fd p50 < polling p50"), ("p99", 0.99, "-")] {
        let (fd_t, polling_t) = (percentile(&fd_samples, p), percentile(&polling_samples, p));
        let ratio = fd_t.as_secs_f64() / polling_t.as_secs_f64();
        eprintln!("  worker→main latency {label}: fd {} vs polling {} ({ratio:.3}x)", micros(fd_t), micros(polling_t));
        rows.push(Row {
            name: format!(
                "worker→main latency {label} ({} samples; fd waker: poll(2) on pump_fd, then pump)",
                config.n_latency_samples
            ),
            boc: micros(fd_t),
            baseline_name: "1 ms polling loop (sleep 1 ms, then pump)",
            baseline: micros(polling_t),
            ratio: format!("{ratio:.3}x latency"),
            target,
        });
    }

    // Worker throughput with a live PinnedCown, vs an identical runtime
    // without one; both built the same way, alternated ABBA.
    let plain_rt = Runtime::builder().workers(N_WORKERS).build().unwrap();
    let pinned_rt = Runtime::builder().workers(N_WORKERS).build().unwrap();
    // Not `Send`, like the values pinned cowns exist for; one behavior run.
    let live = PinnedCown::new(&pinned_rt, Rc::new(Cell::new(0_u64))).unwrap();
    let ran = pinned_rt.when(&live, |value| value.set(value.get() + 1));
    pinned_rt.quiesce().unwrap();
    ran.take().unwrap();
    let (with_t, without_t) = medians(config.n_repeats_live, true, &mut || uncontended_boc(&pinned_rt, n), &mut || {
        uncontended_boc(&plain_rt, n)
    });
    let speed = without_t.as_secs_f64() / with_t.as_secs_f64();
    eprintln!(
        "  live PinnedCown: {} vs {} ({speed:.3}x throughput)",
        per_behavior(with_t, n),
        per_behavior(without_t, n)
    );
    rows.push(Row {
        name: format!("uncontended, runtime with a live PinnedCown (median of {})", config.n_repeats_live),
        boc: per_behavior(with_t, n),
        baseline_name: "same, identical runtime without a PinnedCown",
        baseline: per_behavior(without_t, n),
        ratio: format!("{speed:.3}x throughput"),
        target: ">= 0.98x throughput",
    });
    drop(live);
    drop(pinned_rt);
    drop(plain_rt);

    let (idle, sleep) = idle_cpu(config.idle_seconds);
    eprintln!("  idle: {idle:?} CPU over {}s (process without a pool: {sleep:?})", config.idle_seconds);
    rows.push(Row {
        name: format!("idle {N_WORKERS}-worker pool, CPU over {} s", config.idle_seconds),
        boc: format!("{:.3} s", idle.as_secs_f64()),
        baseline_name: "same process, no pool",
        baseline: format!("{:.3} s", sleep.as_secs_f64()),
        ratio: "-".into(),
        target: "about 0 s",
    });

    let table = render(&rows, &config);
    println!("{table}");
    if let Some(path) = &config.report {
        std::fs::write(path, table).unwrap_or_else(|error| panic!("cannot write {path}: {error}"));
        eprintln!("bench: wrote the report to {path}");
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {}, {rustc}", std::env::consts::OS)
}

fn render(rows: &[Row], config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Rust\n");
    let _ = writeln!(
        out,
        "Written by `cargo xtask bench` (benches/runtime.rs). Each row times boc and its baseline in the same \
         invocation, alternating them, {} repeats of {} behaviors each, and reports medians; the ratio is boc's \
         time over the baseline's (below 1 means boc is faster). {N_WORKERS} workers on both sides; one thread \
         schedules. The worker→main latency rows instead report percentiles of {} single samples per home-thread \
         loop (interleaved in blocks), fd over polling; the live-PinnedCown row takes {} repeats (order swapped \
         every other one) and reports a throughput ratio (above 1 means the runtime with the pinned cown is \
         faster). Timings on a shared machine are noisy: compare ratios, not absolute times.\n",
        config.n_repeats, config.n_behaviors, config.n_latency_samples, config.n_repeats_live
    );
    let _ = writeln!(out, "Machine: {}\n", machine());
    let _ = writeln!(out, "| benchmark | boc (per behavior) | baseline | baseline (per task) | ratio | target |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.name, row.boc, row.baseline_name, row.baseline, row.ratio, row.target
        );
    }
    out
}
