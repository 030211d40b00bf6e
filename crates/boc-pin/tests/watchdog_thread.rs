//! The watchdog's thread: named `boc-watchdog`, started only when enabled,
//! and gone soon after its queue is dropped.
//!
//! Linux only (reads `/proc/self/task/*/comm`). In its own test binary, with
//! a single test, so no other queue's watchdog runs in this process.

#![cfg(all(target_os = "linux", not(boc_loom)))]

use boc_pin::{MainConfig, MainQueue, WatchdogConfig};
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

/// Threads of this process named `boc-watchdog`.
fn n_watchdog_threads() -> usize {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|entry| fs::read_to_string(entry.unwrap().path().join("comm")).ok())
        .filter(|name| name.trim_end() == "boc-watchdog")
        .count()
}

/// Waits (generously) until `n_watchdog_threads() == expected`.
fn wait_for_watchdogs(expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while n_watchdog_threads() != expected {
        assert!(Instant::now() < deadline, "expected {expected} watchdog thread(s), found {}", n_watchdog_threads());
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_watchdog_thread_lives_as_long_as_its_queue() {
    assert_eq!(n_watchdog_threads(), 0);
    let quiet = MainQueue::<u32>::new(MainConfig { watchdog: None }).unwrap();
    assert_eq!(n_watchdog_threads(), 0, "no thread while disabled");

    // Started on first enable, kept (parked) while disabled again.
    quiet.set_watchdog(Some(WatchdogConfig::default())).unwrap();
    wait_for_watchdogs(1);
    quiet.set_watchdog(None).unwrap();
    quiet.set_watchdog(Some(WatchdogConfig::default())).unwrap();
    assert_eq!(n_watchdog_threads(), 1);

    let watched = MainQueue::<u32>::new(MainConfig::default()).unwrap();
    watched.push(1, Some("left queued".into()));
    wait_for_watchdogs(2);

    drop(watched);
    wait_for_watchdogs(1);
    drop(quiet);
    wait_for_watchdogs(0);
}
