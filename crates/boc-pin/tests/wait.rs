//! The home thread's blocking wait: woken by work or by `wake`, never
//! losing either, and the production loop built from it, `wait_until`
//! ("pump until quiescent, sleeping while there is nothing to pump").

#![cfg(not(boc_loom))] // loom's primitives only work inside a model

use boc_pin::{Budget, HomeWait, MainConfig, MainQueue, Outcome, PumpError, WaitEnd, WaitOutcome};
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

/// A miniature runtime: a count of work in flight (pushed main-side tasks
/// and running workers), counted out through `count_out`; the wait ends at
/// zero. Counts the rounds, the blocks and the tasks run.
struct Quiesce<'a> {
    in_flight: &'a AtomicUsize,
    n_executed: usize,
    n_blocks: usize,
    slice: Option<Duration>,
}

impl<'a> Quiesce<'a> {
    fn new(in_flight: &'a AtomicUsize) -> Self {
        Self { in_flight, n_executed: 0, n_blocks: 0, slice: None }
    }
}

fn count_out(queue: &MainQueue<usize>, in_flight: &AtomicUsize) {
    queue.count_out(|| in_flight.fetch_sub(1, Ordering::SeqCst) == 1);
}

impl HomeWait<usize> for Quiesce<'_> {
    type Error = boc_pin::Error;

    fn pump(&mut self, queue: &MainQueue<usize>) -> Result<(), boc_pin::Error> {
        let in_flight = self.in_flight;
        let runner = |_: usize| {
            count_out(queue, in_flight);
            Outcome::Ok
        };
        match queue.pump(&runner, Budget::unbounded()) {
            Ok(report) => {
                self.n_executed += report.executed;
                Ok(())
            }
            Err(PumpError::Refused(error)) => Err(error),
            Err(other) => panic!("the runner never stops a pump: {other}"),
        }
    }

    fn is_done(&mut self) -> Result<bool, boc_pin::Error> {
        Ok(self.in_flight.load(Ordering::SeqCst) == 0)
    }

    fn before_block(&mut self) -> Result<Option<Duration>, boc_pin::Error> {
        Ok(self.slice)
    }

    fn block(&mut self, sleep: &mut (dyn FnMut() -> WaitOutcome + Send)) -> WaitOutcome {
        self.n_blocks += 1;
        sleep()
    }
}

/// The production wait loop (`wait_until`): workers push main-side tasks
/// and finish at random moments; every task runs, and the loop ends as soon
/// as the last one is counted out. A lost wakeup would leave the loop asleep
/// until the deadline.
#[test]
fn wait_until_sees_every_task_and_the_end() {
    const N_WORKERS: usize = 2;
    const N_PER_WORKER: usize = 5_000;
    let queue = Arc::new(MainQueue::new(quiet()).unwrap());
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
                count_out(&queue, &in_flight);
            })
        })
        .collect();
    let mut hooks = Quiesce::new(&in_flight);
    let deadline = Instant::now() + LOST_WAKEUP_TIMEOUT;
    let end = queue.wait_until(&mut hooks, Some(deadline)).unwrap();
    assert_eq!(end, WaitEnd::Done, "lost wakeup: {} in flight", in_flight.load(Ordering::SeqCst));
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(hooks.n_executed, N_WORKERS * N_PER_WORKER);
    assert!(queue.is_empty());
}

/// With nothing to do but wait for other threads, the loop blocks once per
/// event rather than polling: one worker finishing after 200 ms costs one
/// block (a spurious wakeup at most besides).
#[test]
fn wait_until_blocks_without_polling() {
    let queue = Arc::new(MainQueue::<usize>::new(quiet()).unwrap());
    let in_flight = Arc::new(AtomicUsize::new(1));
    let worker = {
        let (queue, in_flight) = (Arc::clone(&queue), Arc::clone(&in_flight));
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            count_out(&queue, &in_flight);
        })
    };
    let mut hooks = Quiesce::new(&in_flight);
    assert_eq!(queue.wait_until(&mut hooks, None).unwrap(), WaitEnd::Done);
    worker.join().unwrap();
    assert!(hooks.n_blocks <= 2, "{} blocks for one event", hooks.n_blocks);
}

/// The deadline ends a wait that is not done; a slice only bounds each
/// block (the loop comes back, then blocks again).
#[test]
fn wait_until_times_out_and_slices_its_blocks() {
    let queue = MainQueue::<usize>::new(quiet()).unwrap();
    let in_flight = AtomicUsize::new(1);
    let mut hooks = Quiesce::new(&in_flight);
    hooks.slice = Some(Duration::from_millis(20));
    let started = Instant::now();
    let end = queue.wait_until(&mut hooks, Some(started + Duration::from_millis(200))).unwrap();
    assert_eq!(end, WaitEnd::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(hooks.n_blocks >= 5, "{} blocks of 20 ms in 200 ms", hooks.n_blocks);
    // A deadline already past still runs one round of work, and a wait that
    // is done is not a timeout.
    queue.push(1, None);
    let mut hooks = Quiesce::new(&in_flight);
    assert_eq!(queue.wait_until(&mut hooks, Some(Instant::now())).unwrap(), WaitEnd::Done);
    assert_eq!(hooks.n_executed, 1);
}

/// The loop runs only on the home thread and never inside a pump.
#[test]
fn wait_until_is_refused_off_the_home_thread_and_inside_a_pump() {
    let queue = Arc::new(MainQueue::<usize>::new(quiet()).unwrap());
    let in_flight = AtomicUsize::new(1);
    thread::scope(|scope| {
        let refused = scope.spawn(|| queue.wait_until(&mut Quiesce::new(&in_flight), None)).join().unwrap();
        assert!(matches!(refused, Err(boc_pin::Error::NotHomeThread { operation: "wait", .. })), "{refused:?}");
    });
    queue.push(1, None);
    let inner = std::sync::Mutex::new(None);
    let runner = |_: usize| {
        *inner.lock().unwrap() = Some(queue.wait_until(&mut Quiesce::new(&in_flight), None));
        Outcome::Ok
    };
    queue.pump(&runner, Budget::unbounded()).unwrap();
    let inner = inner.into_inner().unwrap();
    assert!(matches!(inner, Some(Err(boc_pin::Error::Reentrant { operation: "wait" }))), "{inner:?}");
}
