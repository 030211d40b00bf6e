//! The starvation watchdog, with short thresholds and generous waits: it
//! reports waiting work once per episode even if pump is never called,
//! names the waiting behaviors, stays silent without work, and can be
//! disabled.

#![cfg(not(boc_loom))] // loom's primitives only work inside a model

mod common;

use boc_pin::{Budget, MAX_REPORTED_LABELS, MainConfig, MainQueue, Outcome, StarvationReport, WatchdogConfig};
use common::PushOnDrop;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const THRESHOLD: Duration = Duration::from_millis(50);
/// How long a test waits for a report that must come.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a test listens for a report that must not come.
const SILENCE: Duration = Duration::from_millis(300);

/// A watchdog config whose reports arrive on the returned channel.
fn reporting(threshold: Duration) -> (WatchdogConfig, Receiver<StarvationReport>) {
    let (sender, reports) = mpsc::channel();
    let sender = Mutex::new(sender);
    let config = WatchdogConfig::new(threshold).with_sink(move |report| {
        // The receiver may be gone once the test is over.
        let _ = sender.lock().unwrap().send(report.clone());
    });
    (config, reports)
}

fn label(text: &str) -> Option<Arc<str>> {
    Some(text.into())
}

fn drain<T: Send + 'static>(queue: &MainQueue<T>) {
    queue.pump(&|_: T| Outcome::Ok, Budget::unbounded()).unwrap();
}

#[test]
fn fires_once_without_any_pump_and_names_the_waiting_behaviors() {
    let (config, reports) = reporting(THRESHOLD);
    let queue = MainQueue::new(MainConfig { watchdog: Some(config) }).unwrap();
    let pushed = Instant::now();
    queue.push(1, label("app.draw (app.py:12)"));
    queue.push(2, None);
    queue.push(3, label("app.tick (app.py:30)"));

    let report = reports.recv_timeout(REPORT_TIMEOUT).expect("the watchdog must fire without any pump");
    assert!(pushed.elapsed() >= THRESHOLD);
    assert_eq!(report.depth, 3);
    assert!(report.oldest_age >= THRESHOLD);
    assert_eq!(report.threshold, THRESHOLD);
    let labels: Vec<&str> = report.labels.iter().map(|label| &**label).collect();
    assert_eq!(labels, ["app.draw (app.py:12)", "app.tick (app.py:30)"]);
    let message = report.to_string();
    assert!(message.starts_with("3 main-side behaviors are waiting for the home thread, the oldest for "), "{message}");
    assert!(message.contains(": app.draw (app.py:12), app.tick (app.py:30) and 1 more."), "{message}");
    assert!(message.ends_with("call pump() (or wait()) on the home thread."), "{message}");

    // Once per episode: still starving, but already reported.
    assert_eq!(reports.recv_timeout(SILENCE).unwrap_err(), RecvTimeoutError::Timeout);
    drain(&queue);
}

#[test]
fn silent_with_an_empty_queue_and_with_work_pumped_in_time() {
    let (config, reports) = reporting(THRESHOLD);
    let queue = MainQueue::new(MainConfig { watchdog: Some(config) }).unwrap();
    assert_eq!(reports.recv_timeout(SILENCE).unwrap_err(), RecvTimeoutError::Timeout);

    let (config, reports) = reporting(Duration::from_secs(2));
    queue.set_watchdog(Some(config)).unwrap();
    queue.push(1, label("quick"));
    drain(&queue);
    assert_eq!(reports.recv_timeout(SILENCE).unwrap_err(), RecvTimeoutError::Timeout);
}

#[test]
fn disabled_with_none_and_enabled_again() {
    let (config, reports) = reporting(THRESHOLD);
    let queue = MainQueue::new(MainConfig { watchdog: Some(config.clone()) }).unwrap();
    queue.set_watchdog(None).unwrap();
    queue.push(1, label("ignored"));
    assert_eq!(reports.recv_timeout(SILENCE).unwrap_err(), RecvTimeoutError::Timeout);

    // Re-enabled: the work that has been waiting all along is reported.
    queue.set_watchdog(Some(config)).unwrap();
    let report = reports.recv_timeout(REPORT_TIMEOUT).unwrap();
    assert_eq!(report.depth, 1);
    assert!(report.oldest_age >= SILENCE);
    drain(&queue);
}

#[test]
fn pump_progress_ends_an_episode_and_a_new_one_is_reported() {
    let (config, reports) = reporting(THRESHOLD);
    let queue = MainQueue::new(MainConfig { watchdog: Some(config) }).unwrap();
    for task in 0..3 {
        queue.push(task, label(&format!("task {task}")));
    }
    let first = reports.recv_timeout(REPORT_TIMEOUT).unwrap();
    assert_eq!(first.depth, 3);

    // Progress: one task taken, two still starve.
    queue.pump(&|_: i32| Outcome::Ok, Budget::count(1)).unwrap();
    let second = reports.recv_timeout(REPORT_TIMEOUT).expect("a new episode after progress");
    assert_eq!(second.depth, 2);
    assert_eq!(&*second.labels[0], "task 1");

    // Drained: silence.
    drain(&queue);
    assert_eq!(reports.recv_timeout(SILENCE).unwrap_err(), RecvTimeoutError::Timeout);

    // New work after the drain: a new episode.
    queue.push(9, label("later"));
    assert_eq!(reports.recv_timeout(REPORT_TIMEOUT).unwrap().depth, 1);
    drain(&queue);
}

#[test]
fn labels_are_capped_oldest_first() {
    let (config, reports) = reporting(THRESHOLD);
    let queue = MainQueue::new(MainConfig { watchdog: Some(config) }).unwrap();
    for task in 0..MAX_REPORTED_LABELS + 5 {
        queue.push(task, label(&format!("b{task}")));
    }
    let report = reports.recv_timeout(REPORT_TIMEOUT).unwrap();
    assert_eq!(report.depth, MAX_REPORTED_LABELS + 5);
    assert_eq!(report.labels.len(), MAX_REPORTED_LABELS);
    assert_eq!(&*report.labels[0], "b0");
    assert!(report.to_string().contains(" and 5 more."), "{report}");
    drain(&queue);
}

#[test]
fn one_behavior_reads_as_singular() {
    let (config, reports) = reporting(THRESHOLD);
    let queue = MainQueue::new(MainConfig { watchdog: Some(config) }).unwrap();
    queue.push((), None);
    let message = reports.recv_timeout(REPORT_TIMEOUT).unwrap().to_string();
    assert!(message.starts_with("1 main-side behavior is waiting for the home thread"), "{message}");
    assert!(message.contains("). Nothing has pumped them"), "{message}");
    drain(&queue);
}

#[test]
fn a_panicking_sink_does_not_stop_the_watchdog() {
    let (sender, reports) = mpsc::channel();
    let sender = Mutex::new(sender);
    let config = WatchdogConfig::new(THRESHOLD).with_sink(move |report: &StarvationReport| {
        let _ = sender.lock().unwrap().send(report.depth);
        if report.depth == 2 {
            // Unwinds into the watchdog thread (without the panic hook's
            // message), which must survive it.
            std::panic::resume_unwind(Box::new("sink failure"));
        }
    });
    let queue = MainQueue::new(MainConfig { watchdog: Some(config) }).unwrap();
    queue.push(1, None);
    queue.push(2, None);
    assert_eq!(reports.recv_timeout(REPORT_TIMEOUT).unwrap(), 2, "the report whose sink panics");
    // Progress starts a new episode, which the surviving watchdog reports.
    queue.pump(&|_: i32| Outcome::Ok, Budget::count(1)).unwrap();
    assert_eq!(reports.recv_timeout(REPORT_TIMEOUT).unwrap(), 1);
    drain(&queue);
}

#[test]
fn a_replaced_sink_is_dropped_outside_the_lock() {
    let queue = Arc::new(MainQueue::new(MainConfig { watchdog: None }).unwrap());
    let on_drop = PushOnDrop(Arc::downgrade(&queue));
    let config = WatchdogConfig::new(Duration::from_secs(60)).with_sink(move |_| {
        let _ = &on_drop;
    });
    queue.set_watchdog(Some(config)).unwrap();
    // Would deadlock if the old sink were dropped under the lock.
    queue.set_watchdog(None).unwrap();
    assert_eq!(queue.len(), 1);
    drain(&queue);
}
