//! A pump waker or a watchdog sink that captures a `Handle` makes a cycle
//! (the runtime's shared state owns the callback, which owns a handle to
//! it). The runtime's drop breaks it, so the watchdog thread and the rest
//! are freed (issue 15, `waker_captures_handle_leak.rs`).
//!
//! One test in this binary, so the thread count is not disturbed by others
//! running in parallel.

#![cfg(target_os = "linux")]

use boc::{Runtime, WatchdogConfig};
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
