//! The pump contract: budgets, draining, the report, failures and stops,
//! and the refused calls (off the home thread, re-entrant).

#![cfg(not(boc_loom))] // loom's primitives only work inside a model

use boc_pin::{Budget, Error, MainConfig, MainQueue, Outcome, PumpError, WaitOutcome};
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

fn quiet() -> MainConfig {
    MainConfig { watchdog: None }
}

/// A runner that records the tasks it ran, in order.
fn recording(ran: &RefCell<Vec<u32>>) -> impl Fn(u32) -> Outcome + '_ {
    move |task| {
        ran.borrow_mut().push(task);
        Outcome::Ok
    }
}

#[test]
fn count_budget_runs_that_many_oldest_first() {
    let queue = MainQueue::new(quiet()).unwrap();
    for task in 0..5 {
        queue.push(task, None);
    }
    let ran = RefCell::new(Vec::new());
    let report = queue.pump(&recording(&ran), Budget::count(2)).unwrap();
    assert_eq!((report.executed, report.raised, report.pending, report.deadline_reached), (2, 0, 3, false));
    assert_eq!(*ran.borrow(), [0, 1]);
    assert_eq!(queue.len(), 3);
    let report = queue.pump(&recording(&ran), Budget::count(10)).unwrap();
    assert_eq!((report.executed, report.pending), (3, 0));
    assert_eq!(*ran.borrow(), [0, 1, 2, 3, 4]);
}

#[test]
fn zero_count_runs_nothing() {
    let queue = MainQueue::new(quiet()).unwrap();
    queue.push(1, None);
    let report = queue.pump(&|_: u32| Outcome::Ok, Budget::count(0)).unwrap();
    assert_eq!((report.executed, report.pending), (0, 1));
}

#[test]
fn deadline_gates_starting_a_task_and_never_interrupts_one() {
    let queue = MainQueue::new(quiet()).unwrap();
    for task in 0..3 {
        queue.push(task, None);
    }
    let slow = |_: u32| {
        thread::sleep(Duration::from_millis(20));
        Outcome::Ok
    };
    let started = Instant::now();
    let report = queue.pump(&slow, Budget::within(Duration::from_millis(10))).unwrap();
    assert_eq!((report.executed, report.pending), (1, 2));
    assert!(report.deadline_reached);
    // The one task ran to completion past the deadline.
    assert!(started.elapsed() >= Duration::from_millis(20));
}

#[test]
fn past_deadline_runs_nothing_and_says_so_only_if_work_waits() {
    let queue = MainQueue::new(quiet()).unwrap();
    let report = queue.pump(&|_: u32| Outcome::Ok, Budget::until(Instant::now())).unwrap();
    assert_eq!(report.executed, 0);
    assert!(!report.deadline_reached, "an empty queue is drained, not cut short");

    queue.push(1, None);
    let report = queue.pump(&|_: u32| Outcome::Ok, Budget::until(Instant::now())).unwrap();
    assert_eq!((report.executed, report.pending), (0, 1));
    assert!(report.deadline_reached);
}

#[test]
fn count_and_deadline_together_stop_at_the_first_limit() {
    let queue = MainQueue::new(quiet()).unwrap();
    for task in 0..5 {
        queue.push(task, None);
    }
    let budget = Budget::within(Duration::from_secs(60)).with_max_behaviors(3);
    let report = queue.pump(&|_: u32| Outcome::Ok, budget).unwrap();
    assert_eq!((report.executed, report.pending, report.deadline_reached), (3, 2, false));
}

#[test]
fn unbounded_pump_drains_a_chain_pushed_by_its_own_tasks() {
    const CHAIN_LEN: u32 = 100;
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    queue.push(0, None);
    let ran = RefCell::new(Vec::new());
    let runner = |link: u32| {
        ran.borrow_mut().push(link);
        if link + 1 < CHAIN_LEN {
            queue.push(link + 1, Some("next link".into()));
        }
        Outcome::Ok
    };
    let report = queue.pump(&runner, Budget::unbounded()).unwrap();
    assert_eq!((report.executed, report.pending), (CHAIN_LEN as usize, 0));
    assert_eq!(*ran.borrow(), (0..CHAIN_LEN).collect::<Vec<_>>());
}

#[test]
fn unbounded_pump_runs_tasks_pushed_by_other_threads_during_the_call() {
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    queue.push(0, None);
    let runner = |task: u32| {
        if task == 0 {
            let queue = Arc::clone(&queue);
            // Pushed from another thread while this pump runs.
            thread::spawn(move || queue.push(1, None)).join().unwrap();
        }
        Outcome::Ok
    };
    let report = queue.pump(&runner, Budget::unbounded()).unwrap();
    assert_eq!((report.executed, report.pending), (2, 0));
}

#[test]
fn failures_are_counted_and_pump_goes_on() {
    let queue = MainQueue::new(quiet()).unwrap();
    for task in 0..6 {
        queue.push(task, None);
    }
    let report =
        queue.pump(&|task: u32| if task % 2 == 0 { Outcome::Failed } else { Outcome::Ok }, Budget::unbounded());
    let report = report.unwrap();
    assert_eq!((report.executed, report.raised, report.pending), (6, 3, 0));
}

#[test]
fn stop_returns_the_payload_and_leaves_the_rest_queued() {
    let queue = MainQueue::new(quiet()).unwrap();
    for task in 0..5 {
        queue.push(task, None);
    }
    let stopping = |task: u32| match task {
        0 => Outcome::Failed,
        2 => Outcome::Stop(Box::new(format!("stopped at {task}"))),
        _ => Outcome::Ok,
    };
    let Err(PumpError::Stopped { report, payload }) = queue.pump(&stopping, Budget::unbounded()) else {
        panic!("expected a stop");
    };
    assert_eq!((report.executed, report.raised, report.pending), (3, 2, 2));
    assert_eq!(*payload.downcast::<String>().unwrap(), "stopped at 2");
    assert_eq!(queue.len(), 2);

    let ran = RefCell::new(Vec::new());
    let report = queue.pump(&recording(&ran), Budget::unbounded()).unwrap();
    assert_eq!(report.executed, 2);
    assert_eq!(*ran.borrow(), [3, 4]);
}

#[test]
fn pump_off_the_home_thread_is_refused_and_names_both_threads() {
    let queue = MainQueue::new(quiet()).unwrap();
    queue.push(1, None);
    let home = thread::current().id();
    assert_eq!(queue.home_thread(), Some(home));
    let (caller, result) = thread::scope(|scope| {
        thread::Builder::new()
            .name("not-home".to_owned())
            .spawn_scoped(scope, || (thread::current().id(), queue.pump(&|_: u32| Outcome::Ok, Budget::unbounded())))
            .unwrap()
            .join()
            .unwrap()
    });
    let err = result.unwrap_err();
    match err.refusal() {
        Some(Error::NotHomeThread {
            operation: "pump",
            home: reported_home,
            caller: reported_caller,
            caller_name,
            ..
        }) => {
            assert_eq!(*reported_home, Some(home));
            assert_eq!(*reported_caller, caller);
            assert_eq!(caller_name.as_deref(), Some("not-home"));
        }
        other => panic!("expected NotHomeThread, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&format!("{home:?}")) && message.contains(&format!("{caller:?}")), "{message}");
    assert!(message.contains("\"not-home\""), "{message}");
    assert_eq!(queue.len(), 1, "a refused pump touches nothing");
}

thread_local! {
    static IS_HOME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn is_marked_home() -> bool {
    IS_HOME.with(std::cell::Cell::get)
}

/// A home defined by a check rather than a thread handle: the queue may be
/// created on any thread; only the thread the check accepts pumps, and the
/// refusal names the home by the check's name.
#[test]
fn a_checked_home_is_whichever_thread_the_check_accepts() {
    let queue = thread::spawn(|| MainQueue::with_home_check(quiet(), is_marked_home, "the marked thread"))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(queue.home_thread(), None);
    queue.push(1, None);
    let refused = queue.pump(&|_: u32| Outcome::Ok, Budget::unbounded()).unwrap_err();
    let message = refused.to_string();
    assert!(message.starts_with("pump called off the home thread: the home thread is the marked thread"), "{message}");
    assert!(matches!(refused.refusal(), Some(Error::NotHomeThread { home: None, .. })));
    IS_HOME.with(|is_home| is_home.set(true));
    assert!(queue.is_home_thread());
    assert_eq!(queue.pump(&|_: u32| Outcome::Ok, Budget::unbounded()).unwrap().executed, 1);
}

#[test]
fn other_home_thread_operations_are_refused_off_the_home_thread() {
    let queue = MainQueue::<u32>::new(quiet()).unwrap();
    thread::scope(|scope| {
        scope.spawn(|| {
            assert!(!queue.is_home_thread());
            let err = queue.wait_for_work(Some(Duration::ZERO)).unwrap_err();
            assert!(matches!(err, Error::NotHomeThread { operation: "wait_for_work", .. }), "{err}");
        });
    });
}

#[test]
fn nested_pump_and_wait_are_refused_and_the_outer_pump_goes_on() {
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    for task in 0..3 {
        queue.push(task, None);
    }
    let nested = RefCell::new(Vec::new());
    let runner = |_: u32| {
        let pumped = queue.pump(&|_: u32| Outcome::Ok, Budget::unbounded());
        nested.borrow_mut().push(pumped.map(|_| ()).unwrap_err().to_string());
        let waited = queue.wait_for_work(Some(Duration::ZERO));
        nested.borrow_mut().push(waited.unwrap_err().to_string());
        Outcome::Ok
    };
    let report = queue.pump(&runner, Budget::unbounded()).unwrap();
    assert_eq!((report.executed, report.pending), (3, 0));
    assert_eq!(nested.borrow().len(), 6);
    assert_eq!(nested.borrow()[0], "pump called from inside a task run by pump (pump is not re-entrant)");
    assert_eq!(nested.borrow()[1], "wait_for_work called from inside a task run by pump (pump is not re-entrant)");
    // Refusals are typed, not just strings.
    queue.push(9, None);
    let runner = |_: u32| {
        let err = queue.pump(&|_: u32| Outcome::Ok, Budget::unbounded()).unwrap_err();
        assert!(matches!(err.refusal(), Some(Error::Reentrant { operation: "pump" })));
        Outcome::Ok
    };
    queue.pump(&runner, Budget::unbounded()).unwrap();
}

#[test]
fn pumping_another_queue_from_a_task_is_allowed() {
    let outer = MainQueue::new(quiet()).unwrap();
    let inner = MainQueue::new(quiet()).unwrap();
    outer.push(1, None);
    inner.push(2, None);
    let runner = |_: u32| {
        let report = inner.pump(&|_: u32| Outcome::Ok, Budget::unbounded()).unwrap();
        assert_eq!(report.executed, 1);
        Outcome::Ok
    };
    assert_eq!(outer.pump(&runner, Budget::unbounded()).unwrap().executed, 1);
}

#[test]
fn a_panic_escaping_the_runner_unwinds_and_leaves_the_queue_usable() {
    let queue = MainQueue::new(quiet()).unwrap();
    for task in 0..3 {
        queue.push(task, None);
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        queue.pump(&|task: u32| if task == 0 { panic!("escaped") } else { Outcome::Ok }, Budget::unbounded())
    }));
    std::panic::set_hook(hook);
    assert!(unwound.is_err());
    assert_eq!(queue.len(), 2, "the rest stays queued");
    let report = queue.pump(&|_: u32| Outcome::Ok, Budget::unbounded()).expect("not left marked as pumping");
    assert_eq!(report.executed, 2);
    assert_eq!(queue.wait_for_work(Some(Duration::ZERO)).unwrap(), WaitOutcome::TimedOut);
}

#[test]
fn order_is_fifo_per_producer() {
    const N_PER_PRODUCER: u32 = 2_000;
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    let producers: Vec<_> = (0..2)
        .map(|producer_idx| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for seq in 0..N_PER_PRODUCER {
                    queue.push((producer_idx, seq), None);
                }
            })
        })
        .collect();
    let next = RefCell::new([0u32; 2]);
    let runner = |(producer_idx, seq): (usize, u32)| {
        let mut next = next.borrow_mut();
        assert_eq!(seq, next[producer_idx], "producer {producer_idx} out of order");
        next[producer_idx] += 1;
        Outcome::Ok
    };
    while producers.iter().any(|producer| !producer.is_finished()) {
        queue.pump(&runner, Budget::count(100)).unwrap();
    }
    for producer in producers {
        producer.join().unwrap();
    }
    queue.pump(&runner, Budget::unbounded()).unwrap();
    assert_eq!(*next.borrow(), [N_PER_PRODUCER; 2]);
}

/// A task that records the thread it was dropped on.
struct DropWitness(Arc<Mutex<Vec<ThreadId>>>);

impl Drop for DropWitness {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(thread::current().id());
    }
}

#[test]
fn clear_drops_the_tasks_on_the_calling_thread() {
    let dropped_on = Arc::new(Mutex::new(Vec::new()));
    let queue = MainQueue::new(quiet()).unwrap();
    for _ in 0..3 {
        queue.push(DropWitness(Arc::clone(&dropped_on)), None);
    }
    assert_eq!(queue.len(), 3);
    thread::scope(|scope| {
        let clearer = scope.spawn(|| (thread::current().id(), queue.clear()));
        let (clearer_id, n_cleared) = clearer.join().unwrap();
        assert_eq!(n_cleared, 3);
        assert_eq!(*dropped_on.lock().unwrap(), [clearer_id; 3]);
    });
    assert!(queue.is_empty());
    assert_eq!(queue.clear(), 0);
}

#[test]
fn dropping_the_queue_drops_its_tasks_on_the_dropping_thread() {
    let dropped_on = Arc::new(Mutex::new(Vec::new()));
    let queue = MainQueue::new(MainConfig::default()).unwrap();
    queue.push(DropWitness(Arc::clone(&dropped_on)), None);
    queue.push(DropWitness(Arc::clone(&dropped_on)), None);
    drop(queue);
    assert_eq!(*dropped_on.lock().unwrap(), [thread::current().id(); 2]);
}

#[test]
fn len_and_is_empty_follow_push_and_pump() {
    let queue = MainQueue::new(quiet()).unwrap();
    assert!(queue.is_empty());
    queue.push((), None);
    queue.push((), Some("labelled".into()));
    assert_eq!(queue.len(), 2);
    assert!(!queue.is_empty());
    queue.pump(&|()| Outcome::Ok, Budget::count(1)).unwrap();
    assert_eq!(queue.len(), 1);
    queue.pump(&|()| Outcome::Ok, Budget::unbounded()).unwrap();
    assert!(queue.is_empty());
}

#[test]
fn push_labeled_makes_a_label_only_when_a_watchdog_will_read_it() {
    use boc_pin::WatchdogConfig;
    use std::cell::Cell;
    let queue = MainQueue::new(MainConfig { watchdog: None }).unwrap();
    let n_labels = Cell::new(0);
    let label = |_: &u32| {
        n_labels.set(n_labels.get() + 1);
        Some("labelled".into())
    };
    queue.push_labeled(1, label);
    assert_eq!(n_labels.get(), 0, "no watchdog: no label made");
    queue.set_watchdog(Some(WatchdogConfig::new(std::time::Duration::from_secs(60)))).unwrap();
    queue.push_labeled(2, label);
    assert_eq!(n_labels.get(), 1);
    assert_eq!(queue.len(), 2);
}
