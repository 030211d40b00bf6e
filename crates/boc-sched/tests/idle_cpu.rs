//! Measures that parked workers burn no CPU: the CPU time the kernel charges
//! to the `boc-worker-*` threads of an idle pool must not grow.
//!
//! Linux only (reads `/proc/self/task/*/stat`). In its own test binary, so no
//! other test's pool (same thread names) runs in this process.

#![cfg(target_os = "linux")]

use boc_sched::{Pool, Runner, Terminator};
use std::fs;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Nothing {
    in_flight: Terminator,
}

impl Runner<u32> for Nothing {
    fn run(&self, _task: u32) {
        self.in_flight.decrement();
    }
}

/// CPU time (user + system, in clock ticks) of this process's threads whose
/// name starts with `boc-worker-`, and how many there are.
fn worker_cpu_ticks() -> (u64, usize) {
    let mut ticks = 0;
    let mut n_threads = 0;
    for entry in fs::read_dir("/proc/self/task").unwrap() {
        let task_dir = entry.unwrap().path();
        let Ok(name) = fs::read_to_string(task_dir.join("comm")) else {
            continue; // the thread exited meanwhile
        };
        if !name.starts_with("boc-worker-") {
            continue;
        }
        let Ok(stat) = fs::read_to_string(task_dir.join("stat")) else {
            continue;
        };
        // Fields after the parenthesized name start at field 3 (state);
        // utime and stime are fields 14 and 15.
        let after_name = &stat[stat.rfind(')').unwrap() + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let utime: u64 = fields[14 - 3].parse().unwrap();
        let stime: u64 = fields[15 - 3].parse().unwrap();
        ticks += utime + stime;
        n_threads += 1;
    }
    (ticks, n_threads)
}

#[test]
fn parked_workers_burn_no_cpu() {
    const N_WORKERS: usize = 2;
    let runner = Arc::new(Nothing::default());
    let pool = Pool::new(N_WORKERS, Arc::clone(&runner)).unwrap();
    for task in 0..100_000 {
        runner.in_flight.increment();
        pool.spawn(task);
    }
    assert!(runner.in_flight.wait_idle(Some(Duration::from_secs(60))));
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.n_parked() < N_WORKERS {
        assert!(Instant::now() < deadline, "workers never parked");
        thread::sleep(Duration::from_millis(1));
    }

    let (before, n_threads) = worker_cpu_ticks();
    assert_eq!(n_threads, N_WORKERS);
    thread::sleep(Duration::from_secs(1));
    let (after, _) = worker_cpu_ticks();
    // A spinning worker would be charged ~100 ticks per second; a parked one
    // none. One tick of slack for accounting granularity.
    assert!(after - before <= 1, "idle workers used {} clock ticks in 1 s", after - before);
    assert_eq!(pool.n_parked(), N_WORKERS);
}
