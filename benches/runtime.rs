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
//! - idle: CPU time an idle pool burns while the process sleeps.
//!
//! Arguments: `--quick` (fewer behaviors and repeats, for a smoke run),
//! `--no-write` (print only), `--out PATH`.

use boc::{Cown, Runtime};
use boc_sched::{Pool, Runner, Terminator};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const N_WORKERS: usize = 2;

struct Config {
    n_behaviors: usize,
    n_repeats: usize,
    idle_seconds: u64,
    write: Option<String>,
}

impl Config {
    fn from_args() -> Self {
        let mut config =
            Self { n_behaviors: 1_000_000, n_repeats: 5, idle_seconds: 2, write: Some("BENCHMARKS.md".into()) };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => {
                    config.n_behaviors = 100_000;
                    config.n_repeats = 3;
                    config.idle_seconds = 1;
                }
                "--no-write" => config.write = None,
                "--out" => config.write = args.next(),
                // cargo bench passes --bench; other flags are cargo's.
                _ => {}
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

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    #[repr(C)]
    struct Rusage {
        user: [i64; 2],
        system: [i64; 2],
        rest: [i64; 14],
    }
    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    let mut usage = Rusage { user: [0; 2], system: [0; 2], rest: [0; 14] };
    // SAFETY: RUSAGE_SELF (0) with a buffer laid out as Linux's `struct
    // rusage` on 64-bit targets (two timevals then fourteen longs).
    let rc = unsafe { getrusage(0, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let micros = |tv: [i64; 2]| Duration::from_secs(tv[0] as u64) + Duration::from_micros(tv[1] as u64);
    micros(usage.user) + micros(usage.system)
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
        let (mut boc_samples, mut base_samples) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            boc_samples.push(boc());
            base_samples.push(base());
        }
        let (boc_t, base_t) = (median(boc_samples), median(base_samples));
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
    if let Some(path) = &config.write {
        std::fs::write(path, &table).unwrap_or_else(|error| panic!("cannot write {path}: {error}"));
        eprintln!("bench: wrote {path}");
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
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `cargo xtask bench` (benches/runtime.rs). Each row times boc and its baseline in the same \
         invocation, alternating them, {} repeats of {} behaviors each, and reports medians; the ratio is boc's \
         time over the baseline's (below 1 means boc is faster). {N_WORKERS} workers on both sides; one thread \
         schedules. Timings on a shared machine are noisy: compare ratios, not absolute times.\n",
        config.n_repeats, config.n_behaviors
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
