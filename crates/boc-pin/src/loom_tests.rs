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

use crate::primitive::{AtomicUsize, Ordering};
use crate::{Budget, HomeWait, MainConfig, MainQueue, Outcome, WaitEnd, WaitOutcome};
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

/// A miniature runtime for the wait-loop models: a count of work in
/// flight, counted out through the production [`MainQueue::count_out`].
struct Quiesce {
    in_flight: Arc<AtomicUsize>,
    n_executed: usize,
}

impl Quiesce {
    fn count_out(queue: &MainQueue<u32>, in_flight: &AtomicUsize) {
        queue.count_out(|| in_flight.fetch_sub(1, Ordering::SeqCst) == 1);
    }
}

impl HomeWait<u32> for Quiesce {
    type Error = crate::Error;

    fn pump(&mut self, queue: &MainQueue<u32>) -> Result<(), crate::Error> {
        let in_flight = &*self.in_flight;
        let runner = |_task: u32| {
            Self::count_out(queue, in_flight);
            Outcome::Ok
        };
        self.n_executed += queue.pump(&runner, Budget::unbounded()).unwrap().executed;
        Ok(())
    }

    fn is_done(&mut self) -> Result<bool, crate::Error> {
        Ok(self.in_flight.load(Ordering::SeqCst) == 0)
    }
}

/// The production wait loop (`wait_until`) with one producer that counts a
/// main-side task in, pushes it, then counts itself out: every task runs,
/// and the loop ends (a lost wake would be a deadlock, which loom reports).
#[test]
fn loom_wait_until_sees_pushed_work_and_the_last_count_out() {
    loom::model(|| {
        let queue = new_queue();
        let in_flight = Arc::new(AtomicUsize::new(1));
        let producer = {
            let (queue, in_flight) = (Arc::clone(&queue), Arc::clone(&in_flight));
            thread::spawn(move || {
                in_flight.fetch_add(1, Ordering::SeqCst);
                queue.push(1, None);
                Quiesce::count_out(&queue, &in_flight);
            })
        };
        let mut hooks = Quiesce { in_flight: Arc::clone(&in_flight), n_executed: 0 };
        assert_eq!(queue.wait_until(&mut hooks, None).unwrap(), WaitEnd::Done);
        producer.join().unwrap();
        assert_eq!(hooks.n_executed, 1);
        assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    });
}

/// Work that never reaches the queue (a worker's), finished on two threads
/// racing the wait loop: only the count-out that reaches zero wakes it.
#[test]
fn loom_wait_until_wakes_on_the_count_out_that_reaches_zero() {
    loom::model(|| {
        let queue = new_queue();
        let in_flight = Arc::new(AtomicUsize::new(2));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (queue, in_flight) = (Arc::clone(&queue), Arc::clone(&in_flight));
                thread::spawn(move || Quiesce::count_out(&queue, &in_flight))
            })
            .collect();
        let mut hooks = Quiesce { in_flight: Arc::clone(&in_flight), n_executed: 0 };
        assert_eq!(queue.wait_until(&mut hooks, None).unwrap(), WaitEnd::Done);
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(hooks.n_executed, 0);
    });
}
