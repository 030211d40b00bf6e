//! Unit tests that need the queue's internals: the counters that show the
//! home thread's wait and the watchdog thread sleep rather than poll.

use crate::primitive::Ordering;
use crate::{Budget, MainConfig, MainQueue, Outcome, StarvationReport, WaitOutcome, WatchdogConfig};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn an_idle_wait_for_work_sleeps_instead_of_polling() {
    let queue = MainQueue::<u32>::new(MainConfig { watchdog: None }).unwrap();
    let started = Instant::now();
    assert_eq!(queue.wait_for_work(Some(Duration::from_secs(1))).unwrap(), WaitOutcome::TimedOut);
    assert!(started.elapsed() >= Duration::from_secs(1));
    // One return for the timeout; a spurious wakeup at most besides.
    let n_wakeups = queue.n_wait_wakeups.load(Ordering::Relaxed);
    assert!(n_wakeups <= 2, "{n_wakeups} wakeups in an idle 1 s wait");
}

#[test]
fn a_wait_for_work_wakes_once_per_push() {
    let queue = Arc::new(MainQueue::new(MainConfig { watchdog: None }).unwrap());
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            queue.push(1, None);
            // Pushes into a non-empty queue notify nobody.
            queue.push(2, None);
        })
    };
    assert_eq!(queue.wait_for_work(None).unwrap(), WaitOutcome::Work);
    producer.join().unwrap();
    assert!(queue.n_wait_wakeups.load(Ordering::Relaxed) <= 2);
}

/// A watchdog that reports on a channel.
fn reporting(threshold: Duration) -> (WatchdogConfig, mpsc::Receiver<StarvationReport>) {
    let (sender, reports) = mpsc::channel();
    let sender = Mutex::new(sender);
    let config = WatchdogConfig::new(threshold).with_sink(move |report| {
        let _ = sender.lock().unwrap().send(report.clone());
    });
    (config, reports)
}

#[test]
fn the_watchdog_sleeps_while_there_is_no_work() {
    let (config, reports) = reporting(Duration::from_millis(10));
    let queue = MainQueue::<u32>::new(MainConfig { watchdog: Some(config) }).unwrap();
    thread::sleep(Duration::from_millis(500));
    assert!(reports.try_recv().is_err());
    // At most the wakeup for its configuration, and a spurious one: no
    // timer ticking at the threshold (that would be ~50 wakeups).
    let n_wakeups = queue.shared.n_watchdog_wakeups.load(Ordering::Relaxed);
    assert!(n_wakeups <= 2, "{n_wakeups} watchdog wakeups with no work");
}

#[test]
fn the_watchdog_sleeps_until_the_threshold_then_parks_once_it_reported() {
    let threshold = Duration::from_millis(200);
    let (config, reports) = reporting(threshold);
    let queue = MainQueue::new(MainConfig { watchdog: Some(config) }).unwrap();
    queue.push(1, None);
    reports.recv_timeout(Duration::from_secs(10)).unwrap();
    let n_after_report = queue.shared.n_watchdog_wakeups.load(Ordering::Relaxed);
    // Configuration, push, threshold; plus a spurious one at most.
    assert!(n_after_report <= 4, "{n_after_report} watchdog wakeups before one report");
    // Reported: parked until the episode ends, however long work waits.
    thread::sleep(threshold * 3);
    assert!(queue.shared.n_watchdog_wakeups.load(Ordering::Relaxed) <= n_after_report + 1);
    assert!(reports.try_recv().is_err());
    queue.pump(&|_: u32| Outcome::Ok, Budget::unbounded()).unwrap();
}
