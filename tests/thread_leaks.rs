//! Dropped runtimes leave no threads behind:
//!
//! * a pump waker or a watchdog sink that captures a `Handle` makes a cycle
//!   (the runtime's shared state owns the callback, which owns a handle to
//!   it); the runtime's drop breaks it, so the watchdog thread and the rest
//!   are freed (issue 15, `waker_captures_handle_leak.rs`);
//! * a runtime dropped inside its own behavior stops its workers after the
//!   last behavior in flight, even when refused schedules race that last
//!   finish (their undo may be what takes the count to zero).
//!
//! One test in this binary, so the thread count is not disturbed by others
//! running in parallel.

#![cfg(target_os = "linux")]

use boc::{Budget, Cown, PinnedCown, Runtime, WatchdogConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn n_threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Waits up to a few seconds for the threads of dropped runtimes to exit
/// (a watchdog thread exits on its own once told, without being joined).
fn settles_to(at_most: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if n_threads() <= at_most {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn dropped_runtimes_leave_no_threads_behind() {
    callbacks_capturing_a_handle_do_not_keep_a_dropped_runtime_alive();
    an_orphaned_runtime_stops_its_workers_despite_refused_schedules();
}

/// Races refused `try_when`s against the last finish of an orphaned
/// runtime, 50 times: its worker must exit each time.
fn an_orphaned_runtime_stops_its_workers_despite_refused_schedules() {
    let before = n_threads();
    for _ in 0..50 {
        let rt = Runtime::builder().workers(1).watchdog(None).build().unwrap();
        let h = rt.handle();
        let c = Cown::new(0_u64);
        let slot = PinnedCown::new(&h, Some(rt)).unwrap();
        h.when((&slot, &c), |(rt, _)| drop(rt.take()));
        for _ in 0..20 {
            h.when(&c, |v| *v += 1);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let spammer = {
            let (h, stop) = (h.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let idle = Cown::new(());
                while !stop.load(Ordering::Relaxed) {
                    let _ = h.try_when(&idle, |_| ());
                }
            })
        };
        h.pump(Budget::unbounded()).unwrap();
        h.quiesce().unwrap();
        stop.store(true, Ordering::Relaxed);
        spammer.join().unwrap();
    }
    assert!(settles_to(before + 2), "threads: {before} before, {} after 50 orphaned runtimes", n_threads());
}

fn callbacks_capturing_a_handle_do_not_keep_a_dropped_runtime_alive() {
    let before = n_threads();
    for _ in 0..20 {
        let rt =
            Runtime::builder().workers(1).watchdog(Some(WatchdogConfig::new(Duration::from_secs(1)))).build().unwrap();
        let h = rt.handle();
        rt.set_pump_waker(Some(Box::new(move || {
            let _ = h.n_in_flight();
        })));
        let h = rt.handle();
        rt.set_watchdog(Some(WatchdogConfig::new(Duration::from_secs(1)).with_sink(move |_| {
            let _ = h.n_in_flight();
        })))
        .unwrap();
        drop(rt);
    }
    assert!(settles_to(before + 2), "threads: {before} before, {} after 20 runtimes", n_threads());
}
