//! loom models of the wakeup protocol (`waker.rs`) and of the home thread's
//! blocking wait: every interleaving, up to the preemption bound, of
//! producers pushing while the home thread pumps or waits.
//!
//! Run with
//! `RUSTFLAGS="--cfg boc_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p boc-pin --lib loom_`
//! (or `cargo xtask loom`).
//!
//! The waker's socket is the `Signal` model of `waker.rs`, a count of unread
//! bytes; everything else is the production code on loom's mutex and
//! condition variables. The invariant checked at the end of each pump model,
//! once every thread is done: the queue is empty, or the signal is raised.
//! A lost wakeup of `wait_for_work` shows up as a deadlock, which loom
//! reports.

use crate::primitive::{AtomicBool, Ordering};
use crate::{Budget, MainConfig, MainQueue, Outcome, WaitOutcome};
use loom::thread;
use std::sync::Arc;

fn new_queue() -> Arc<MainQueue<u32>> {
    Arc::new(MainQueue::new(MainConfig { watchdog: None }).unwrap())
}

fn spawn_producer(queue: &Arc<MainQueue<u32>>, tasks: &'static [u32]) -> thread::JoinHandle<()> {
    let queue = Arc::clone(queue);
    thread::spawn(move || {
        for &task in tasks {
            queue.push(task, None);
        }
    })
}

fn run_all(_task: u32) -> Outcome {
    Outcome::Ok
}

/// The end state every pump model must reach: work left queued has a
/// signal waiting for it; and a final pump, alone, drains and clears.
fn assert_no_stranded_work(queue: &MainQueue<u32>, n_pushed: usize, n_executed: usize) {
    let n_queued = queue.len();
    assert_eq!(n_executed + n_queued, n_pushed, "tasks lost or duplicated");
    assert!(n_queued == 0 || queue.signal.is_raised(), "lost wakeup: {n_queued} task(s) queued, waker clear");
    let report = queue.pump(&run_all, Budget::unbounded()).unwrap();
    assert_eq!(report.executed, n_queued);
    assert!(!queue.signal.is_raised(), "a lone draining pump leaves the waker clear");
}

/// One push racing a draining pump: before it (P1's signal), during it
/// (skipped, C2 must cover it) or against its end (C1 and C2 against P1).
#[test]
fn loom_push_races_pump_end() {
    loom::model(|| {
        let queue = new_queue();
        let producer = spawn_producer(&queue, &[1]);
        let report = queue.pump(&run_all, Budget::unbounded()).unwrap();
        producer.join().unwrap();
        assert_no_stranded_work(&queue, 1, report.executed);
    });
}

/// Two pushes racing a pump whose budget ends it with work possibly left
/// (the re-arm path of C2).
#[test]
fn loom_two_pushes_race_budgeted_pump() {
    loom::model(|| {
        let queue = new_queue();
        let producer = spawn_producer(&queue, &[1, 2]);
        let report = queue.pump(&run_all, Budget::count(1)).unwrap();
        producer.join().unwrap();
        assert_no_stranded_work(&queue, 2, report.executed);
    });
}

/// Two producers, each making or missing the transition, racing a pump
/// that may stop with work left.
#[test]
fn loom_two_producers_race_budgeted_pump() {
    loom::model(|| {
        let queue = new_queue();
        let producers = [spawn_producer(&queue, &[1]), spawn_producer(&queue, &[2])];
        let report = queue.pump(&run_all, Budget::count(1)).unwrap();
        for producer in producers {
            producer.join().unwrap();
        }
        assert_no_stranded_work(&queue, 2, report.executed);
    });
}

/// A task pushing from inside pump (no signal: the pump's own C2 covers it)
/// while another thread pushes; the budget leaves the inner push queued.
#[test]
fn loom_push_inside_pump_races_producer() {
    loom::model(|| {
        let queue = new_queue();
        queue.push(0, None);
        let producer = spawn_producer(&queue, &[1]);
        let inner = Arc::clone(&queue);
        let runner = move |task: u32| {
            if task == 0 {
                inner.push(10, None);
            }
            Outcome::Ok
        };
        let report = queue.pump(&runner, Budget::count(1)).unwrap();
        producer.join().unwrap();
        assert_no_stranded_work(&queue, 3, report.executed);
    });
}

/// A push racing the home thread into `wait_for_work`: it must return
/// (a lost wakeup deadlocks the model).
#[test]
fn loom_push_wakes_wait_for_work() {
    loom::model(|| {
        let queue = new_queue();
        let producer = spawn_producer(&queue, &[1]);
        assert_eq!(queue.wait_for_work(None).unwrap(), WaitOutcome::Work);
        producer.join().unwrap();
    });
}

/// `wake` racing the home thread into `wait_for_work`.
#[test]
fn loom_wake_races_wait_for_work() {
    loom::model(|| {
        let queue = new_queue();
        let waker = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.wake())
        };
        assert_eq!(queue.wait_for_work(None).unwrap(), WaitOutcome::Woken);
        waker.join().unwrap();
    });
}

/// The runtime's wait loop with one producer: pump, stop when the producer
/// is done and nothing is queued, else wait. The producer pushes, then
/// announces it is done with `wake`.
#[test]
fn loom_pump_until_quiescent() {
    loom::model(|| {
        let queue = new_queue();
        let is_done = Arc::new(AtomicBool::new(false));
        let producer = {
            let queue = Arc::clone(&queue);
            let is_done = Arc::clone(&is_done);
            thread::spawn(move || {
                queue.push(1, None);
                is_done.store(true, Ordering::SeqCst);
                queue.wake();
            })
        };
        let mut n_executed = 0;
        loop {
            n_executed += queue.pump(&run_all, Budget::unbounded()).unwrap().executed;
            if is_done.load(Ordering::SeqCst) && queue.is_empty() {
                break;
            }
            queue.wait_for_work(None).unwrap();
        }
        producer.join().unwrap();
        assert_eq!(n_executed, 1);
    });
}
