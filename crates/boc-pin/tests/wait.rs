//! The home thread's blocking wait: woken by work or by `wake`, never
//! losing either, and the loop a runtime builds from it ("pump until
//! quiescent, sleeping while there is nothing to pump").

#![cfg(not(boc_loom))] // loom's primitives only work inside a model

use boc_pin::{Budget, MainConfig, MainQueue, Outcome, WaitOutcome};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

fn quiet() -> MainConfig {
    MainConfig { watchdog: None }
}

/// Long enough that only a lost wakeup reaches it.
const LOST_WAKEUP_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn a_push_from_another_thread_ends_the_wait() {
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            queue.push(1, None);
        })
    };
    assert_eq!(queue.wait_for_work(Some(LOST_WAKEUP_TIMEOUT)).unwrap(), WaitOutcome::Work);
    producer.join().unwrap();
}

#[test]
fn a_wake_from_another_thread_ends_the_wait() {
    let queue = Arc::new(MainQueue::<u32>::new(quiet()).unwrap());
    let waker = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            queue.wake();
        })
    };
    assert_eq!(queue.wait_for_work(Some(LOST_WAKEUP_TIMEOUT)).unwrap(), WaitOutcome::Woken);
    waker.join().unwrap();
}

#[test]
fn a_wake_before_the_wait_is_kept_and_counts_once() {
    let queue = MainQueue::<u32>::new(quiet()).unwrap();
    queue.wake();
    queue.wake();
    assert_eq!(queue.wait_for_work(None).unwrap(), WaitOutcome::Woken);
    assert_eq!(queue.wait_for_work(Some(Duration::from_millis(10))).unwrap(), WaitOutcome::TimedOut);
}

#[test]
fn queued_work_wins_over_a_pending_wake_which_stays_pending() {
    let queue = MainQueue::new(quiet()).unwrap();
    queue.wake();
    queue.push(1, None);
    assert_eq!(queue.wait_for_work(None).unwrap(), WaitOutcome::Work);
    queue.pump(&|_: u32| Outcome::Ok, Budget::unbounded()).unwrap();
    assert_eq!(queue.wait_for_work(None).unwrap(), WaitOutcome::Woken);
}

#[test]
fn the_timeout_ends_an_idle_wait() {
    let queue = MainQueue::<u32>::new(quiet()).unwrap();
    let started = Instant::now();
    assert_eq!(queue.wait_for_work(Some(Duration::from_millis(50))).unwrap(), WaitOutcome::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(queue.wait_for_work(Some(Duration::ZERO)).unwrap(), WaitOutcome::TimedOut);
    // A timeout too large for an `Instant` means none: a wake still ends it.
    queue.wake();
    assert_eq!(queue.wait_for_work(Some(Duration::MAX)).unwrap(), WaitOutcome::Woken);
}

/// The loop a runtime runs in `wait()` on the home thread: pump, stop once
/// quiescent, otherwise sleep until work arrives or quiescence is announced
/// with `wake`. Workers push main-side tasks and finish at random moments;
/// a lost wakeup would leave the loop asleep until the timeout.
#[test]
fn pump_until_quiescent_loop_sees_every_task_and_the_end() {
    const N_WORKERS: usize = 2;
    const N_PER_WORKER: usize = 5_000;
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
    // Work in flight: pushed-but-not-run main tasks plus running workers.
    let in_flight = Arc::new(AtomicUsize::new(N_WORKERS));
    let workers: Vec<_> = (0..N_WORKERS)
        .map(|worker_idx| {
            let queue = Arc::clone(&queue);
            let in_flight = Arc::clone(&in_flight);
            thread::spawn(move || {
                for seq in 0..N_PER_WORKER {
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    queue.push(seq, None);
                    if (seq + worker_idx) % 5 == 0 {
                        thread::yield_now();
                    }
                }
                if in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                    queue.wake();
                }
            })
        })
        .collect();
    let runner = |_: usize| {
        // A main-side task finishing may be what makes the runtime quiescent;
        // that is seen by the check after pump, no wake needed on this thread.
        in_flight.fetch_sub(1, Ordering::SeqCst);
        Outcome::Ok
    };
    let mut n_executed = 0;
    loop {
        n_executed += queue.pump(&runner, Budget::unbounded()).unwrap().executed;
        if in_flight.load(Ordering::SeqCst) == 0 {
            break;
        }
        let outcome = queue.wait_for_work(Some(LOST_WAKEUP_TIMEOUT)).unwrap();
        assert_ne!(outcome, WaitOutcome::TimedOut, "lost wakeup: {} in flight", in_flight.load(Ordering::SeqCst));
    }
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(n_executed, N_WORKERS * N_PER_WORKER);
    assert!(queue.is_empty());
}
