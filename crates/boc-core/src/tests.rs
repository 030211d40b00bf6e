//! Unit tests of the protocol through the public API. Small enough for Miri.

use crate::{CownHeader, Dispatch, Payload, Ready, schedule};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Queues ready behaviors; the test decides when each runs.
#[derive(Default)]
struct Queue(Mutex<VecDeque<Ready>>);

impl Dispatch for Queue {
    fn dispatch(&self, behavior: Ready) {
        self.0.lock().unwrap().push_back(behavior);
    }
}

impl Queue {
    fn pop(&self) -> Option<Ready> {
        self.0.lock().unwrap().pop_front()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn run_all(&self) {
        while let Some(behavior) = self.pop() {
            behavior.run();
        }
    }
}

/// Runs behaviors on the dispatching thread.
struct Inline;

impl Dispatch for Inline {
    fn dispatch(&self, behavior: Ready) {
        behavior.run();
    }
}

type Log = Arc<Mutex<Vec<u32>>>;

/// Appends its id to a log when it runs; counts its drops.
struct Record {
    id: u32,
    log: Log,
    drops: Option<Arc<Mutex<u32>>>,
}

impl Record {
    fn new(id: u32, log: &Log) -> Self {
        Self { id, log: Arc::clone(log), drops: None }
    }
}

impl Payload for Record {
    fn run(&mut self) {
        self.log.lock().unwrap().push(self.id);
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if let Some(drops) = &self.drops {
            *drops.lock().unwrap() += 1;
        }
    }
}

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

#[test]
fn keys_increase() {
    let a = CownHeader::new();
    let b = CownHeader::new();
    assert!(a.key() < b.key());
}

#[test]
fn single_cown_runs_once_and_goes_idle() {
    let (cown, queue, log) = (CownHeader::new(), Queue::default(), log());
    // SAFETY: cown and queue outlive the behavior, run before they drop.
    unsafe { schedule([&cown], Record::new(1, &log), 7, &queue) };
    assert!(!cown.is_idle());
    let behavior = queue.pop().expect("a free cown makes the behavior ready at once");
    assert_eq!(behavior.flags(), 7);
    assert_eq!(behavior.n_cowns(), 1);
    behavior.run();
    assert!(cown.is_idle());
    assert_eq!(*log.lock().unwrap(), [1]);
}

#[test]
fn chain_on_one_cown_waits_and_keeps_order() {
    let (cown, queue, log) = (CownHeader::new(), Queue::default(), log());
    for id in 0..5 {
        // SAFETY: cown and queue outlive the behaviors.
        unsafe { schedule([&cown], Record::new(id, &log), 0, &queue) };
    }
    for id in 0..5 {
        assert_eq!(queue.len(), 1, "exactly one behavior holds the cown");
        queue.pop().unwrap().run();
        assert_eq!(log.lock().unwrap().last(), Some(&id));
    }
    assert_eq!(queue.len(), 0);
    assert!(cown.is_idle());
}

#[test]
fn multi_cown_behavior_waits_for_every_cown() {
    let (a, b, c) = (CownHeader::new(), CownHeader::new(), CownHeader::new());
    let (queue, log) = (Queue::default(), log());
    // SAFETY: cowns and queue outlive the behaviors.
    unsafe {
        schedule([&a], Record::new(1, &log), 0, &queue);
        schedule([&c], Record::new(2, &log), 0, &queue);
        schedule([&c, &b, &a], Record::new(3, &log), 0, &queue);
    }
    let first = queue.pop().unwrap();
    let second = queue.pop().unwrap();
    assert_eq!(queue.len(), 0, "behavior 3 needs a and c");
    first.run();
    assert_eq!(queue.len(), 0, "behavior 3 still needs c");
    second.run();
    let third = queue.pop().expect("both predecessors released");
    assert_eq!(third.n_cowns(), 3);
    third.run();
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
    assert!(a.is_idle() && b.is_idle() && c.is_idle());
}

#[test]
fn successor_on_several_cowns_is_resolved_in_one_batch() {
    let (a, b) = (CownHeader::new(), CownHeader::new());
    let (queue, log) = (Queue::default(), log());
    // SAFETY: cowns and queue outlive the behaviors.
    unsafe {
        schedule([&a, &b], Record::new(1, &log), 0, &queue);
        schedule([&b, &a], Record::new(2, &log), 0, &queue);
    }
    let first = queue.pop().unwrap();
    assert_eq!(queue.len(), 0);
    first.run();
    queue.pop().expect("released both cowns of the successor").run();
    assert_eq!(*log.lock().unwrap(), [1, 2]);
    assert!(a.is_idle() && b.is_idle());
}

#[test]
fn duplicates_are_acquired_once() {
    let (a, b) = (CownHeader::new(), CownHeader::new());
    let (queue, log) = (Queue::default(), log());
    // SAFETY: cowns and queue outlive the behaviors.
    unsafe {
        schedule([&a, &b, &a, &a], Record::new(1, &log), 0, &queue);
        schedule([&b, &b], Record::new(2, &log), 0, &queue);
    }
    let first = queue.pop().expect("duplicates must not wait for themselves");
    assert_eq!(first.n_cowns(), 2);
    assert_eq!(queue.len(), 0);
    first.run();
    let second = queue.pop().unwrap();
    assert_eq!(second.n_cowns(), 1);
    second.run();
    assert_eq!(*log.lock().unwrap(), [1, 2]);
    assert!(a.is_idle() && b.is_idle());
}

#[test]
fn empty_request_set_is_ready_at_once() {
    let (queue, log) = (Queue::default(), log());
    // SAFETY: no cowns; the queue outlives the behavior.
    unsafe { schedule(std::iter::empty::<&CownHeader>(), Record::new(9, &log), 0, &queue) };
    let behavior = queue.pop().unwrap();
    assert_eq!(behavior.n_cowns(), 0);
    behavior.run();
    assert_eq!(*log.lock().unwrap(), [9]);
}

#[test]
fn dropping_a_ready_behavior_releases_without_running() {
    let (cown, queue, log) = (CownHeader::new(), Queue::default(), log());
    let drops = Arc::new(Mutex::new(0));
    let mut first = Record::new(1, &log);
    first.drops = Some(Arc::clone(&drops));
    // SAFETY: cown and queue outlive the behaviors.
    unsafe {
        schedule([&cown], first, 0, &queue);
        schedule([&cown], Record::new(2, &log), 0, &queue);
    }
    drop(queue.pop().unwrap());
    assert_eq!(*drops.lock().unwrap(), 1, "the payload is dropped");
    queue.run_all();
    assert_eq!(*log.lock().unwrap(), [2], "the body did not run, the successor did");
    assert!(cown.is_idle());
}

#[test]
fn payload_drops_once_after_run() {
    let (cown, log) = (CownHeader::new(), log());
    let drops = Arc::new(Mutex::new(0));
    let mut record = Record::new(1, &log);
    record.drops = Some(Arc::clone(&drops));
    // SAFETY: cown and dispatcher outlive the behavior, run inline.
    unsafe { schedule([&cown], record, 0, &Inline) };
    assert_eq!(*drops.lock().unwrap(), 1);
    assert_eq!(*log.lock().unwrap(), [1]);
}

struct Panics;

impl Payload for Panics {
    fn run(&mut self) {
        panic!("body failed");
    }
}

#[test]
fn panicking_body_still_releases() {
    let (cown, queue, log) = (CownHeader::new(), Queue::default(), log());
    // SAFETY: cown and queue outlive the behaviors.
    unsafe {
        schedule([&cown], Panics, 0, &queue);
        schedule([&cown], Record::new(2, &log), 0, &queue);
    }
    let failing = queue.pop().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| failing.run()));
    assert!(result.is_err());
    queue.run_all();
    assert_eq!(*log.lock().unwrap(), [2]);
    assert!(cown.is_idle());
}

#[test]
fn inline_dispatch_runs_chain_from_release() {
    let (a, b, log) = (CownHeader::new(), CownHeader::new(), log());
    let queue = Queue::default();
    // SAFETY: cowns and dispatchers outlive the behaviors.
    unsafe {
        schedule([&a, &b], Record::new(1, &log), 0, &queue);
        schedule([&a], Record::new(2, &log), 0, &Inline);
        schedule([&b], Record::new(3, &log), 0, &Inline);
    }
    assert!(log.lock().unwrap().is_empty());
    // Releasing behavior 1 dispatches 2 and 3 inline, each to its own dispatcher.
    queue.pop().unwrap().run();
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
}

/// Two cowns whose values are plain integers, touched only by bodies: a
/// data race here would be a protocol bug (and a Miri error).
struct Shared {
    headers: [CownHeader; 3],
    values: [std::cell::UnsafeCell<u64>; 3],
}

// SAFETY: the values are only accessed by behaviors holding the matching
// cown, which the protocol makes exclusive.
unsafe impl Sync for Shared {}

struct Transfer {
    shared: Arc<Shared>,
    from: usize,
    to: usize,
}

impl Payload for Transfer {
    fn run(&mut self) {
        // SAFETY: this behavior holds cowns `from` and `to` (distinct).
        unsafe {
            *self.shared.values[self.from].get() -= 1;
            *self.shared.values[self.to].get() += 1;
        }
    }
}

#[test]
fn threads_transferring_conserve_the_total() {
    let shared = Arc::new(Shared {
        headers: [CownHeader::new(), CownHeader::new(), CownHeader::new()],
        values: [100.into(), 100.into(), 100.into()],
    });
    let n_per_thread = if cfg!(miri) { 20 } else { 2_000 };
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for i in 0..n_per_thread {
                    let from = (t + i) % 3;
                    let to = (from + 1 + i % 2) % 3;
                    let payload = Transfer { shared: Arc::clone(&shared), from, to };
                    let cowns = [&shared.headers[from], &shared.headers[to]];
                    // SAFETY: the payload owns an Arc to the cowns; Inline is static.
                    unsafe { schedule(cowns, payload, 0, &Inline) };
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(shared.headers.iter().all(CownHeader::is_idle));
    // SAFETY: every behavior has run (inline) and all threads are joined.
    let total: u64 = shared.values.iter().map(|v| unsafe { *v.get() }).sum();
    assert_eq!(total, 300);
}

/// Leaves what its run saw in a field a watch can read.
struct Answer {
    value: Option<u32>,
    released: bool,
    drops: Arc<Mutex<u32>>,
}

impl Payload for Answer {
    fn run(&mut self) {
        self.value = Some(42);
    }
    fn released(&mut self) {
        self.released = true;
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        *self.drops.lock().unwrap() += 1;
    }
}

fn answer(drops: &Arc<Mutex<u32>>) -> Answer {
    Answer { value: None, released: false, drops: Arc::clone(drops) }
}

#[test]
fn watch_sees_the_payload_after_the_run_and_frees_last() {
    let (cown, queue) = (CownHeader::new(), Queue::default());
    let drops = Arc::new(Mutex::new(0));
    // SAFETY: cown and queue outlive the behavior.
    let watch = unsafe { crate::schedule_watched([&cown], answer(&drops), 0, &queue) };
    assert!(!watch.is_done());
    // SAFETY: `Answer` is the scheduled payload type.
    assert!(unsafe { watch.payload::<Answer>() }.is_none());
    queue.pop().unwrap().run();
    assert!(watch.is_done());
    // SAFETY: as above.
    let payload = unsafe { watch.payload::<Answer>() }.unwrap();
    assert_eq!(payload.value, Some(42));
    assert!(payload.released);
    assert_eq!(*drops.lock().unwrap(), 0, "the watch keeps the payload");
    drop(watch);
    assert_eq!(*drops.lock().unwrap(), 1);
}

#[test]
fn watch_dropped_first_lets_the_behavior_free() {
    let (a, b, queue) = (CownHeader::new(), CownHeader::new(), Queue::default());
    let drops = Arc::new(Mutex::new(0));
    // SAFETY: cowns and queue outlive the behavior.
    let watch = unsafe { crate::schedule_watched([&b, &a], answer(&drops), 0, &queue) };
    drop(watch);
    queue.pop().unwrap().run();
    assert_eq!(*drops.lock().unwrap(), 1);
    assert!(a.is_idle() && b.is_idle());
}

#[test]
fn watch_of_a_behavior_dropped_unrun_is_done_without_a_value() {
    let (cown, queue) = (CownHeader::new(), Queue::default());
    let drops = Arc::new(Mutex::new(0));
    // SAFETY: cown and queue outlive the behavior.
    let watch = unsafe { crate::schedule_watched([&cown], answer(&drops), 0, &queue) };
    drop(queue.pop().unwrap());
    assert!(watch.is_done());
    // SAFETY: `Answer` is the scheduled payload type.
    let payload = unsafe { watch.payload::<Answer>() }.unwrap();
    assert_eq!(payload.value, None);
    assert!(payload.released);
    drop(watch);
    assert_eq!(*drops.lock().unwrap(), 1);
}

#[test]
fn watch_and_run_race_from_two_threads() {
    let n = if cfg!(miri) { 10 } else { 1_000 };
    let drops = Arc::new(Mutex::new(0));
    let cown = Arc::new(CownHeader::new());
    let queue = Arc::new(Queue::default());
    for _ in 0..n {
        // SAFETY: the Arcs keep cown and queue alive past the run below.
        let watch = unsafe { crate::schedule_watched([&*cown], answer(&drops), 0, &*queue) };
        let runner = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || queue.pop().unwrap().run())
        };
        drop(watch);
        runner.join().unwrap();
    }
    assert_eq!(*drops.lock().unwrap(), n);
}

#[test]
fn a_hold_from_outside_queues_behaviors_behind_it() {
    let (cown, queue, log) = (CownHeader::new(), Queue::default(), log());
    let held = cown.try_acquire().expect("idle");
    // SAFETY: cown and queue outlive the behavior.
    unsafe { schedule([&cown], Record::new(1, &log), 0, &queue) };
    assert_eq!(queue.len(), 0, "the behavior waits for the hold");
    assert!(cown.try_acquire().is_none(), "not idle: held, and a behavior waits");
    drop(held);
    queue.pop().expect("the drop handed the cown over").run();
    assert_eq!(*log.lock().unwrap(), [1]);
    assert!(cown.is_idle());
}

#[test]
fn a_hold_is_refused_while_a_behavior_holds_the_cown() {
    let (cown, queue, log) = (CownHeader::new(), Queue::default(), log());
    // SAFETY: cown and queue outlive the behavior.
    unsafe { schedule([&cown], Record::new(1, &log), 0, &queue) };
    assert!(cown.try_acquire().is_none());
    queue.run_all();
    let held = cown.try_acquire().expect("idle again after the release");
    drop(held);
    assert!(cown.is_idle());
}

#[test]
fn a_multi_cown_behavior_waits_for_a_hold_on_one_of_its_cowns() {
    let (a, b, queue, log) = (CownHeader::new(), CownHeader::new(), Queue::default(), log());
    let held = b.try_acquire().unwrap();
    // SAFETY: cowns and queue outlive the behavior.
    unsafe { schedule([&a, &b], Record::new(7, &log), 0, &queue) };
    assert_eq!(queue.len(), 0);
    assert!(a.try_acquire().is_none(), "the behavior already queued on a");
    drop(held);
    queue.run_all();
    assert_eq!(*log.lock().unwrap(), [7]);
    assert!(a.is_idle() && b.is_idle());
}

#[test]
fn holds_race_schedules_from_threads() {
    let n = if cfg!(miri) { 20 } else { 2_000 };
    let shared = Arc::new(Shared {
        headers: [CownHeader::new(), CownHeader::new(), CownHeader::new()],
        values: [100.into(), 100.into(), 100.into()],
    });
    let scheduler = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            for i in 0..n {
                let (from, to) = (i % 3, (i + 1) % 3);
                let payload = Transfer { shared: Arc::clone(&shared), from, to };
                let cowns = [&shared.headers[from], &shared.headers[to]];
                // SAFETY: the payload owns an Arc to the cowns; Inline is static.
                unsafe { schedule(cowns, payload, 0, &Inline) };
            }
        })
    };
    let mut n_held = 0;
    for i in 0..n {
        if let Some(held) = shared.headers[i % 3].try_acquire() {
            // SAFETY: the hold gives exclusive access to value `i % 3`.
            unsafe { *shared.values[i % 3].get() += 0 };
            n_held += 1;
            drop(held);
        }
    }
    scheduler.join().unwrap();
    assert!(n_held > 0 || cfg!(miri));
    assert!(shared.headers.iter().all(CownHeader::is_idle));
    // SAFETY: every behavior ran inline and all threads are joined.
    let total: u64 = shared.values.iter().map(|v| unsafe { *v.get() }).sum();
    assert_eq!(total, 300);
}
