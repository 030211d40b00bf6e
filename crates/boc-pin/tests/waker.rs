//! The waker: the callback and the file descriptor are signalled when the
//! queue goes from empty to non-empty and when a pump leaves work behind,
//! pump clears the descriptor, and no wakeup is lost across threads (stress
//! tests that block in `poll(2)` on the descriptor, as an event loop does).

#![cfg(all(target_os = "linux", not(boc_loom)))]

mod common;

use boc_pin::{Budget, MainConfig, MainQueue, Outcome, PumpError};
use common::PushOnDrop;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

fn quiet() -> MainConfig {
    MainConfig { watchdog: None }
}

/// Blocks until `fd` is readable or `timeout_ms` passed (0: just looks).
fn wait_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> bool {
    let mut poll_fd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: `poll_fd` is one valid, exclusively borrowed `struct pollfd`
        // for the whole call, and `fd` is borrowed from the queue, so open.
        let n_ready = unsafe { libc::poll(&mut poll_fd, 1, timeout_ms) };
        if n_ready >= 0 {
            return n_ready > 0 && poll_fd.revents & libc::POLLIN != 0;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "poll failed: {err}");
    }
}

fn is_readable(queue: &MainQueue<impl Send + 'static>) -> bool {
    wait_readable(queue.waker_fd().unwrap(), 0)
}

/// A waker callback that counts its calls.
fn counting_waker(queue: &MainQueue<impl Send + 'static>) -> Arc<AtomicUsize> {
    let n_calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&n_calls);
    queue.set_waker(Some(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    })));
    n_calls
}

fn drain<T: Send + 'static>(queue: &MainQueue<T>) -> usize {
    queue.pump(&|_: T| Outcome::Ok, Budget::unbounded()).unwrap().executed
}

#[test]
fn callback_fires_on_the_empty_to_non_empty_transition_only() {
    let queue = MainQueue::new(quiet()).unwrap();
    let n_calls = counting_waker(&queue);
    queue.push(1, None);
    queue.push(2, None);
    assert_eq!(n_calls.load(Ordering::SeqCst), 1);
    assert_eq!(drain(&queue), 2);
    assert_eq!(n_calls.load(Ordering::SeqCst), 1, "a pump that drains does not signal");
    thread::scope(|scope| scope.spawn(|| queue.push(3, None)).join().unwrap());
    assert_eq!(n_calls.load(Ordering::SeqCst), 2, "called from the pushing thread");
    drain(&queue);
}

#[test]
fn callback_set_while_work_waits_is_called_at_once_and_none_removes_it() {
    let queue = MainQueue::new(quiet()).unwrap();
    queue.push(1, None);
    let n_calls = counting_waker(&queue);
    assert_eq!(n_calls.load(Ordering::SeqCst), 1);
    drain(&queue);
    queue.set_waker(None);
    queue.push(2, None);
    assert_eq!(n_calls.load(Ordering::SeqCst), 1);
}

#[test]
fn fd_is_readable_after_a_push_and_cleared_by_a_draining_pump() {
    let queue = MainQueue::new(quiet()).unwrap();
    let fd = queue.waker_fd().unwrap().as_raw_fd();
    assert_eq!(queue.waker_fd().unwrap().as_raw_fd(), fd, "created once");
    assert!(!is_readable(&queue));
    queue.push(1, None);
    assert!(is_readable(&queue));
    queue.push(2, None);
    assert_eq!(drain(&queue), 2);
    assert!(!is_readable(&queue), "cleared by pump");
    // An empty pump clears a spurious signal too, and stays clear.
    assert_eq!(drain(&queue), 0);
    assert!(!is_readable(&queue));
}

#[test]
fn fd_created_while_work_waits_is_readable_at_once() {
    let queue = MainQueue::new(quiet()).unwrap();
    queue.push(1, None);
    assert!(is_readable(&queue));
    drain(&queue);
    assert!(!is_readable(&queue));
}

#[test]
fn a_pump_that_leaves_work_signals_again() {
    let queue = MainQueue::new(quiet()).unwrap();
    let n_calls = counting_waker(&queue);
    for task in 0..3 {
        queue.push(task, None);
    }
    assert_eq!(n_calls.load(Ordering::SeqCst), 1);
    let report = queue.pump(&|_: i32| Outcome::Ok, Budget::count(1)).unwrap();
    assert_eq!(report.pending, 2);
    assert!(is_readable(&queue), "the event loop must come back");
    assert_eq!(n_calls.load(Ordering::SeqCst), 2);
    let report = queue.pump(&|_: i32| Outcome::Ok, Budget::until(std::time::Instant::now())).unwrap();
    assert!(report.deadline_reached);
    assert!(is_readable(&queue));
    assert_eq!(n_calls.load(Ordering::SeqCst), 3);
    drain(&queue);
    assert!(!is_readable(&queue));
    assert_eq!(n_calls.load(Ordering::SeqCst), 3);
}

#[test]
fn a_stop_and_an_escaped_panic_leave_the_waker_armed() {
    let queue = MainQueue::new(quiet()).unwrap();
    for task in 0..4 {
        queue.push(task, None);
    }
    assert!(is_readable(&queue));
    let stopped =
        queue.pump(&|task: i32| if task == 0 { Outcome::Stop(Box::new(())) } else { Outcome::Ok }, Budget::unbounded());
    assert!(matches!(stopped, Err(PumpError::Stopped { .. })));
    assert!(is_readable(&queue));

    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        queue.pump(&|_: i32| -> Outcome { panic!("escaped") }, Budget::unbounded())
    }));
    std::panic::set_hook(hook);
    assert!(unwound.is_err());
    assert_eq!(queue.len(), 2);
    assert!(is_readable(&queue));
    drain(&queue);
    assert!(!is_readable(&queue));
}

#[test]
fn pushes_made_inside_pump_do_not_signal() {
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    let n_calls = counting_waker(&queue);
    queue.push(0, None);
    let runner = |link: u32| {
        if link < 10 {
            queue.push(link + 1, None);
        }
        Outcome::Ok
    };
    assert_eq!(queue.pump(&runner, Budget::unbounded()).unwrap().executed, 11);
    assert_eq!(n_calls.load(Ordering::SeqCst), 1, "only the first push, from outside pump");
    assert!(!is_readable(&queue));

    // With a budget, the link pushed by the last task run is announced on return.
    queue.push(0, None);
    let report = queue.pump(&runner, Budget::count(3)).unwrap();
    assert_eq!(report.pending, 1);
    assert_eq!(n_calls.load(Ordering::SeqCst), 3);
    assert!(is_readable(&queue));
    drain(&queue);
}

#[test]
fn a_push_from_another_thread_during_pump_is_announced_when_pump_returns() {
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    let n_calls = counting_waker(&queue);
    queue.push(0, None);
    let runner = |task: u32| {
        if task == 0 {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.push(1, None)).join().unwrap();
        }
        Outcome::Ok
    };
    let report = queue.pump(&runner, Budget::count(1)).unwrap();
    assert_eq!(report.pending, 1);
    assert!(is_readable(&queue));
    // The push during the pump skipped the waker; the pump's return signalled.
    assert_eq!(n_calls.load(Ordering::SeqCst), 2);
    drain(&queue);
    assert!(!is_readable(&queue));
}

#[test]
fn a_replaced_callback_is_dropped_outside_the_lock() {
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    let on_drop = PushOnDrop(Arc::downgrade(&queue));
    queue.set_waker(Some(Box::new(move || {
        let _ = &on_drop;
    })));
    // Would deadlock if the old callback were dropped under the lock.
    queue.set_waker(None);
    assert_eq!(queue.len(), 1);
    drain(&queue);
}

#[test]
fn a_panicking_callback_is_caught_and_the_push_completes() {
    let queue = MainQueue::new(quiet()).unwrap();
    let n_calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&n_calls);
    queue.set_waker(Some(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        panic!("the waker panics");
    })));
    // From another thread, as a worker releasing a behavior would push.
    thread::scope(|scope| {
        scope.spawn(|| queue.push(1, None));
    });
    assert_eq!(n_calls.load(Ordering::SeqCst), 1);
    assert_eq!(queue.len(), 1);
    assert!(is_readable(&queue), "the descriptor is raised before the callback");
    // A pump that leaves work signals again: caught there too.
    let report = queue.pump(&|_: i32| Outcome::Ok, Budget::count(0)).unwrap();
    assert_eq!(report.pending, 1);
    assert_eq!(n_calls.load(Ordering::SeqCst), 2);
    assert_eq!(drain(&queue), 1);
}

#[test]
fn clear_leaves_the_fd_clear() {
    let queue = MainQueue::new(quiet()).unwrap();
    queue.push(1, None);
    assert!(is_readable(&queue));
    assert_eq!(queue.clear(), 1);
    assert!(!is_readable(&queue));
}

/// A host that blocks in `poll(2)` until the fd is readable, then pumps.
/// A lost wakeup leaves it blocked: the timeout turns that into a failure.
fn poll_and_pump_until<T: Send + 'static>(queue: &MainQueue<T>, budget: Budget, n_tasks: usize) -> usize {
    const LOST_WAKEUP_TIMEOUT_MS: i32 = 10_000;
    let fd = queue.waker_fd().unwrap();
    let mut n_executed = 0;
    let mut n_wakes = 0;
    while n_executed < n_tasks {
        assert!(
            wait_readable(fd, LOST_WAKEUP_TIMEOUT_MS),
            "lost wakeup: {n_executed} of {n_tasks} tasks run, {} queued, fd not readable",
            queue.len()
        );
        n_wakes += 1;
        n_executed += queue.pump(&|_: T| Outcome::Ok, budget).unwrap().executed;
    }
    assert_eq!(n_executed, n_tasks);
    n_wakes
}

#[test]
fn stress_every_cross_thread_push_wakes_a_poller() {
    const N_TASKS: usize = 100_000;
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    let fd = queue.waker_fd().unwrap();
    let (ack_sender, acks) = mpsc::channel::<()>();
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            for task in 0..N_TASKS {
                queue.push(task, None);
                // The next push waits until the pump that ran this one has
                // returned: every push finds the queue empty and the fd
                // clear, so each is one cross-thread wake through the fd.
                acks.recv().unwrap();
            }
        })
    };
    let mut n_executed = 0;
    let mut n_wakes = 0;
    while n_executed < N_TASKS {
        assert!(wait_readable(fd, 10_000), "lost wakeup after {n_executed} tasks");
        n_wakes += 1;
        let report = queue.pump(&|_: usize| Outcome::Ok, Budget::unbounded()).unwrap();
        assert!(!wait_readable(fd, 0) || !queue.is_empty(), "a draining pump left the fd readable");
        for _ in 0..report.executed {
            ack_sender.send(()).unwrap();
        }
        n_executed += report.executed;
    }
    producer.join().unwrap();
    assert_eq!(n_wakes, N_TASKS);
    assert!(!is_readable(&queue));
}

#[test]
fn stress_free_running_producers_never_strand_work() {
    const N_PRODUCERS: usize = 2;
    const N_PER_PRODUCER: usize = 50_000;
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    queue.waker_fd().unwrap();
    let producers: Vec<_> = (0..N_PRODUCERS)
        .map(|producer_idx| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for seq in 0..N_PER_PRODUCER {
                    queue.push(seq, None);
                    // Irregular gaps, so pushes land at every point of a pump.
                    if (seq + producer_idx) % 7 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    // Small budgets make most pumps end with work left: the re-arm path.
    poll_and_pump_until(&queue, Budget::count(5), N_PRODUCERS * N_PER_PRODUCER);
    for producer in producers {
        producer.join().unwrap();
    }
    assert!(queue.is_empty());
    drain(&queue);
    assert!(!is_readable(&queue));
}

#[test]
fn stress_pushes_aimed_at_the_end_of_pump() {
    const N_TASKS: usize = 100_000;
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    queue.waker_fd().unwrap();
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            for seq in 0..N_TASKS {
                // Push as soon as pump has taken the last task: the push
                // lands while that pump clears and re-checks the waker.
                while !queue.is_empty() {
                    std::hint::spin_loop();
                    thread::yield_now();
                }
                queue.push(seq, None);
            }
        })
    };
    poll_and_pump_until(&queue, Budget::unbounded(), N_TASKS);
    producer.join().unwrap();
    drain(&queue);
    assert!(!is_readable(&queue));
}

#[test]
fn stress_callback_wakes_are_not_lost_either() {
    const N_TASKS: usize = 20_000;
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    let (wake_sender, wakes) = mpsc::channel::<()>();
    let wake_sender = std::sync::Mutex::new(wake_sender);
    queue.set_waker(Some(Box::new(move || wake_sender.lock().unwrap().send(()).unwrap())));
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            for seq in 0..N_TASKS {
                queue.push(seq, None);
                if seq % 3 == 0 {
                    thread::yield_now();
                }
            }
        })
    };
    let mut n_executed = 0;
    while n_executed < N_TASKS {
        wakes.recv_timeout(Duration::from_secs(10)).expect("lost wakeup: the callback was not called");
        n_executed += queue.pump(&|_: usize| Outcome::Ok, Budget::count(4)).unwrap().executed;
    }
    producer.join().unwrap();
    assert!(queue.is_empty());
}
