//! loom models of the two-phase-locking protocol: every interleaving (up to
//! the preemption bound) of a few small schedules, checking mutual
//! exclusion, per-cown FIFO, deadlock freedom, that every behavior runs
//! once and that every cown ends idle; and one model of [`crate::Watch`].
//!
//! Run with `cargo xtask loom`, or by hand:
//! `RUSTFLAGS="--cfg boc_loom" CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true LOOM_MAX_PREEMPTIONS=3
//! cargo test --release -p boc-core --lib loom_`.
//!
//! Each cown's value is a log in a `loom::cell::UnsafeCell` that bodies
//! append to, so loom itself reports a data race if two behaviors holding
//! the same cown were ever not ordered by happens-before. Bookkeeping that
//! is not part of the protocol (which behaviors ran) uses std types, which
//! loom does not see and so cannot mask a race.
//!
//! Every model has at most two runnable threads. With three, two of them can
//! spin-wait (yielding) on the third, and loom counts no preemption for a
//! switch after a yield, so it explores the two spinners alternating
//! without end and fails on `LOOM_MAX_BRANCHES` (see
//! [`loom_three_cown_chain`]).
//!
//! Not checkable here: the Release/Acquire pair on `Request::scheduled`.
//! It orders a predecessor's swaps on later cowns before ours in each cown's
//! modification order (so we cannot overtake it there), but loom executes
//! read-modify-writes in one total order, so weakening it to Relaxed goes
//! unnoticed by these models.

use crate::{CownHeader, Dispatch, Payload, Ready, schedule};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A test cown: the protocol header and a log of the behaviors that held it.
struct TestCown {
    header: CownHeader,
    log: UnsafeCell<Vec<u32>>,
}

// SAFETY: `log` is only touched by behaviors holding this cown (which the
// protocol orders; loom checks it) or after every thread has been joined.
unsafe impl Sync for TestCown {}

impl TestCown {
    fn new() -> Arc<Self> {
        Arc::new(Self { header: CownHeader::new(), log: UnsafeCell::new(Vec::new()) })
    }

    /// The log, read once every behavior has run and every thread joined.
    fn log(&self) -> Vec<u32> {
        // SAFETY: no behavior on this cown is left, and the joins order their
        // writes before this read (loom checks that too).
        self.log.with(|log| unsafe { (*log).clone() })
    }
}

/// Which behaviors ran, in the order they ran (std, per run).
type Ran = std::sync::Arc<std::sync::Mutex<Vec<u32>>>;

/// A behavior body: appends its id to the log of every cown it was given,
/// duplicates included (a duplicate is held once, so its two appends are
/// adjacent), and to `ran`.
struct Body {
    id: u32,
    cowns: Vec<Arc<TestCown>>,
    ran: Ran,
}

impl Payload for Body {
    fn run(&mut self) {
        for cown in &self.cowns {
            // SAFETY: the behavior holds every cown of its request set; if the
            // protocol broke exclusion, loom reports this access as a race.
            cown.log.with_mut(|log| unsafe { (*log).push(self.id) });
        }
        self.ran.lock().unwrap().push(self.id);
    }
}

/// Schedules `Body { id }` on `cowns` (in the given order, duplicates kept).
fn when(cowns: &[&Arc<TestCown>], id: u32, ran: &Ran, dispatcher: &impl Dispatch) {
    let body = Body { id, cowns: cowns.iter().map(|&cown| Arc::clone(cown)).collect(), ran: ran.clone() };
    // SAFETY: the payload owns the cowns; every dispatcher here is either a
    // `'static` unit or held by the model until every behavior has run.
    unsafe { schedule(cowns.iter().map(|cown| &cown.header), body, 0, dispatcher) };
}

/// Runs a ready behavior on the thread that completed its acquisition: the
/// scheduler, or the releaser of the last cown it waited for.
struct Inline;

impl Dispatch for Inline {
    fn dispatch(&self, behavior: Ready) {
        behavior.run();
    }
}

/// Queues ready behaviors; the model's threads drain the queue.
#[derive(Default)]
struct Queue(Mutex<Vec<Ready>>);

impl Dispatch for Queue {
    fn dispatch(&self, behavior: Ready) {
        self.0.lock().unwrap().push(behavior);
    }
}

impl Queue {
    /// Runs queued behaviors until the queue is empty. Every dispatch
    /// happens on a thread that drains afterwards (its scheduler, or a
    /// releaser inside `run`), so once all threads are done it stays empty.
    fn drain(&self) {
        loop {
            let next = self.0.lock().unwrap().pop();
            match next {
                Some(behavior) => {
                    behavior.run();
                }
                None => return,
            }
        }
    }
}

fn new_ran() -> Ran {
    std::sync::Arc::new(std::sync::Mutex::new(Vec::new()))
}

/// Asserts that each id in `ids` ran exactly once and nothing else ran.
fn assert_ran_once(ran: &Ran, ids: &[u32]) {
    let mut ran = ran.lock().unwrap().clone();
    ran.sort_unstable();
    assert_eq!(ran, ids, "every behavior runs exactly once");
}

fn assert_idle(cowns: &[&Arc<TestCown>]) {
    for cown in cowns {
        assert!(cown.header.is_idle(), "a cown is left held after every behavior ran");
    }
}

/// Asserts that `log` is a permutation of `ids` (each id repeated as often
/// as the behavior named the cown).
fn assert_log_holds(log: &[u32], ids: &[u32]) {
    let mut sorted = log.to_vec();
    sorted.sort_unstable();
    let mut expected = ids.to_vec();
    expected.sort_unstable();
    assert_eq!(sorted, expected, "cown log {log:?}");
}

/// Two behaviors over the same two cowns, named in opposite orders: the
/// acquisition order (by key) must make them queue consistently.
fn overlapping_opposite_order(queued: bool) {
    let a = TestCown::new();
    let b = TestCown::new();
    let ran = new_ran();
    let queue = Arc::new(Queue::default());
    let spawned = {
        let (a, b, ran, queue) = (a.clone(), b.clone(), ran.clone(), queue.clone());
        thread::spawn(move || {
            if queued {
                when(&[&a, &b], 1, &ran, &*queue);
                queue.drain();
            } else {
                when(&[&a, &b], 1, &ran, &Inline);
            }
        })
    };
    if queued {
        when(&[&b, &a], 2, &ran, &*queue);
        queue.drain();
    } else {
        when(&[&b, &a], 2, &ran, &Inline);
    }
    spawned.join().unwrap();
    assert!(queue.0.lock().unwrap().is_empty());
    assert_ran_once(&ran, &[1, 2]);
    let (log_a, log_b) = (a.log(), b.log());
    assert_log_holds(&log_a, &[1, 2]);
    // Two-phase locking: both cowns saw the two behaviors in the same order.
    assert_eq!(log_a, log_b);
    assert_idle(&[&a, &b]);
}

#[test]
fn loom_overlapping_opposite_order() {
    loom::model(|| overlapping_opposite_order(false));
}

/// As above with a queueing dispatcher: the ready behavior crosses threads
/// through the queue instead of running where it was completed.
#[test]
fn loom_overlapping_opposite_order_queued() {
    loom::model(|| overlapping_opposite_order(true));
}

/// One thread schedules on `a` (the fast path) and the behavior runs inline
/// and releases while the other thread schedules on `a` (the general path):
/// the release may find the successor swapped into the tail but not linked,
/// fail its CAS and wait for the link.
#[test]
fn loom_release_races_late_link() {
    loom::model(|| {
        let a = TestCown::new();
        let ran = new_ran();
        // Set once a schedule has returned: read before the other schedule,
        // it tells whether the two schedules were ordered by happens-before.
        let done_1 = Arc::new(AtomicBool::new(false));
        let done_2 = Arc::new(AtomicBool::new(false));
        let spawned = {
            let (a, ran, done_1, done_2) = (a.clone(), ran.clone(), done_1.clone(), done_2.clone());
            thread::spawn(move || {
                let after_2 = done_2.load(Ordering::Acquire);
                let body = Body { id: 1, cowns: vec![a.clone()], ran };
                // SAFETY: the payload owns the cown; `Inline` is a unit.
                unsafe { schedule([&a.header], body, 0, &Inline) };
                done_1.store(true, Ordering::Release);
                after_2
            })
        };
        let after_1 = done_1.load(Ordering::Acquire);
        when(&[&a], 2, &ran, &Inline);
        done_2.store(true, Ordering::Release);
        let after_2 = spawned.join().unwrap();
        assert_ran_once(&ran, &[1, 2]);
        let log = a.log();
        assert_log_holds(&log, &[1, 2]);
        if after_1 {
            assert_eq!(log, [1, 2], "a schedule ordered after another runs after it");
        }
        if after_2 {
            assert_eq!(log, [2, 1], "a schedule ordered after another runs after it");
        }
        assert_idle(&[&a]);
    });
}

/// Three behaviors over the cowns of a cycle, a-b, b-c, c-a: no deadlock
/// (a model whose threads all spin never finishes, and loom fails it), all
/// run, and the logs are consistent with one serial order.
///
/// Two threads, one scheduling one behavior and the other the remaining two
/// in program order, for each way to split the three and both orders of the
/// pair. Three scheduling threads would be the direct model, but loom cannot
/// check it: when two threads spin-yield waiting for a third, every switch
/// after a yield is free under the preemption bound, so loom explores
/// schedules where the two spinners alternate forever and the third never
/// runs, and the path overflows `LOOM_MAX_BRANCHES` (seen: >5000 spins of one
/// wait in a path that does end). The protocol itself is fine there: the
/// waited-for thread is between two adjacent steps of phase 1.
#[test]
fn loom_three_cown_chain() {
    for alone_idx in 0..3 {
        for reverse in [false, true] {
            loom::model(move || three_cown_chain(alone_idx, reverse));
        }
    }
}

fn three_cown_chain(alone_idx: usize, reverse: bool) {
    let a = TestCown::new();
    let b = TestCown::new();
    let c = TestCown::new();
    let ran = new_ran();
    // Behavior `id` is on `sets[id - 1]`; the last is named against key
    // order, so its sort matters.
    let sets = [[&a, &b], [&b, &c], [&c, &a]];
    let mut pair: Vec<usize> = (0..3).filter(|&idx| idx != alone_idx).collect();
    if reverse {
        pair.reverse();
    }
    let spawned = {
        let [x, y] = sets[alone_idx].map(Arc::clone);
        let ran = ran.clone();
        thread::spawn(move || when(&[&x, &y], alone_idx as u32 + 1, &ran, &Inline))
    };
    for idx in pair {
        when(&sets[idx], idx as u32 + 1, &ran, &Inline);
    }
    spawned.join().unwrap();
    assert_ran_once(&ran, &[1, 2, 3]);
    let (log_a, log_b, log_c) = (a.log(), b.log(), c.log());
    assert_log_holds(&log_a, &[1, 3]);
    assert_log_holds(&log_b, &[1, 2]);
    assert_log_holds(&log_c, &[2, 3]);
    // Serializable: the three pairwise orders form no cycle.
    let one_before_two = log_b[0] == 1;
    let two_before_three = log_c[0] == 2;
    let three_before_one = log_a[0] == 3;
    assert!(
        !(one_before_two && two_before_three && three_before_one)
            && (one_before_two || two_before_three || three_before_one),
        "cyclic order: a {log_a:?}, b {log_b:?}, c {log_c:?}"
    );
    assert_idle(&[&a, &b, &c]);
}

/// Dispatches inline after checking that the behavior holds as many
/// distinct cowns as its flags say.
struct CountingInline;

impl Dispatch for CountingInline {
    fn dispatch(&self, behavior: Ready) {
        assert_eq!(behavior.n_cowns(), behavior.flags() as usize, "duplicates are acquired once");
        behavior.run();
    }
}

/// A request set naming a cown twice races an overlapping one: the
/// duplicate is acquired once (a second acquisition would queue behind
/// itself and never run), yet the body still gets the cown twice.
#[test]
fn loom_duplicates() {
    loom::model(|| {
        let a = TestCown::new();
        let b = TestCown::new();
        let ran = new_ran();
        let spawned = {
            let (a, b, ran) = (a.clone(), b.clone(), ran.clone());
            thread::spawn(move || {
                let body = Body { id: 1, cowns: vec![a.clone(), a.clone(), b.clone()], ran };
                // SAFETY: the payload owns the cowns; the dispatcher is a unit.
                unsafe { schedule([&a.header, &a.header, &b.header], body, 2, &CountingInline) };
            })
        };
        let body = Body { id: 2, cowns: vec![b.clone(), a.clone()], ran: ran.clone() };
        // SAFETY: as above.
        unsafe { schedule([&b.header, &a.header], body, 2, &CountingInline) };
        spawned.join().unwrap();
        assert_ran_once(&ran, &[1, 2]);
        let (log_a, log_b) = (a.log(), b.log());
        assert!(log_a == [1, 1, 2] || log_a == [2, 1, 1], "cown a log {log_a:?}");
        assert_log_holds(&log_b, &[1, 2]);
        assert_eq!(log_a[0], log_b[0], "both cowns saw the behaviors in one order");
        assert_idle(&[&a, &b]);
    });
}

/// One thread schedules X on {a} then Y on {a, b}; another schedules Z on
/// {b}. Program order makes X's schedule happen before Y's, so X runs
/// before Y on a, whatever Z does in between.
#[test]
fn loom_fifo_same_thread_then_other() {
    loom::model(|| {
        let a = TestCown::new();
        let b = TestCown::new();
        let ran = new_ran();
        let spawned = {
            let (a, b, ran) = (a.clone(), b.clone(), ran.clone());
            thread::spawn(move || {
                when(&[&a], 1, &ran, &Inline);
                when(&[&a, &b], 2, &ran, &Inline);
            })
        };
        when(&[&b], 3, &ran, &Inline);
        spawned.join().unwrap();
        assert_ran_once(&ran, &[1, 2, 3]);
        assert_eq!(a.log(), [1, 2], "per-cown FIFO for ordered schedules");
        assert_log_holds(&b.log(), &[2, 3]);
        assert_idle(&[&a, &b]);
    });
}

/// A payload whose body leaves a result for its watch to read back, and
/// which counts how often it is dropped.
struct Answer {
    cown: Option<Arc<TestCown>>,
    result: UnsafeCell<u32>,
    drops: std::sync::Arc<std::sync::Mutex<u32>>,
}

impl Payload for Answer {
    fn run(&mut self) {
        let cown = self.cown.as_ref().expect("the cowns are dropped only after the run");
        // SAFETY: the behavior holds the cown.
        cown.log.with_mut(|log| unsafe { (*log).push(7) });
        // SAFETY: `&mut self`; loom checks the watch's read is ordered after.
        self.result.with_mut(|result| unsafe { *result = 42 });
    }

    fn released(&mut self) {
        // Released: the protocol no longer needs the cown.
        self.cown = None;
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        *self.drops.lock().unwrap() += 1;
    }
}

/// A watched behavior runs and is released on one thread while the
/// scheduling thread reads its result through the watch and drops the
/// watch: whichever of release and drop comes last frees the behavior,
/// exactly once, and a done watch sees the body's writes.
#[test]
fn loom_watch_races_release() {
    loom::model(|| {
        let a = TestCown::new();
        let queue = Arc::new(Queue::default());
        let drops = std::sync::Arc::new(std::sync::Mutex::new(0));
        let answer = Answer { cown: Some(a.clone()), result: UnsafeCell::new(0), drops: drops.clone() };
        // SAFETY: the payload owns the cown until released; the queue is held
        // until the behavior has run.
        let watch = unsafe { crate::schedule_watched([&a.header], answer, 0, &*queue) };
        let runner = {
            let queue = queue.clone();
            thread::spawn(move || queue.drain())
        };
        // SAFETY: `Answer` is the payload type; only this thread reads it.
        if let Some(answer) = unsafe { watch.payload::<Answer>() } {
            assert!(answer.cown.is_none(), "a done behavior was released");
            // SAFETY: done: the body's write happens before this read.
            answer.result.with(|result| assert_eq!(unsafe { *result }, 42));
        }
        drop(watch);
        runner.join().unwrap();
        assert_eq!(*drops.lock().unwrap(), 1, "the payload is dropped exactly once");
        assert_eq!(a.log(), [7]);
        assert_idle(&[&a]);
    });
}

/// Flag for [`Routed`]: queue the behavior instead of running it inline.
const QUEUED: u32 = 1;

/// Queues behaviors flagged [`QUEUED`] and runs the others inline.
#[derive(Default)]
struct Routed(Queue);

impl Dispatch for Routed {
    fn dispatch(&self, behavior: Ready) {
        if behavior.flags() == QUEUED {
            self.0.dispatch(behavior);
        } else {
            behavior.run();
        }
    }
}

/// A behavior waits for two predecessors released on two threads, and runs
/// inline on whichever resolves it last: the `pending` decrements must chain
/// (release sequence plus acquire), so it sees the writes of the predecessor
/// that finished on the other thread.
#[test]
fn loom_two_predecessors_on_two_threads() {
    loom::model(|| {
        let a = TestCown::new();
        let b = TestCown::new();
        let ran = new_ran();
        let routed = Arc::new(Routed::default());
        let body = |id, cowns: &[&Arc<TestCown>]| Body {
            id,
            cowns: cowns.iter().map(|&cown| Arc::clone(cown)).collect(),
            ran: ran.clone(),
        };
        // SAFETY: the payloads own their cowns; `routed` is held until all
        // behaviors have run (both runners are joined below).
        unsafe {
            schedule([&a.header], body(1, &[&a]), QUEUED, &*routed);
            schedule([&b.header], body(2, &[&b]), QUEUED, &*routed);
            schedule([&a.header, &b.header], body(3, &[&a, &b]), 0, &*routed);
        }
        let runners: Vec<_> = (0..2)
            .map(|_| {
                let routed = routed.clone();
                thread::spawn(move || {
                    let behavior = routed.0.0.lock().unwrap().pop().expect("two queued behaviors");
                    behavior.run();
                })
            })
            .collect();
        for runner in runners {
            runner.join().unwrap();
        }
        assert_ran_once(&ran, &[1, 2, 3]);
        assert_eq!(a.log(), [1, 3]);
        assert_eq!(b.log(), [2, 3]);
        assert_idle(&[&a, &b]);
    });
}

/// Two behaviors from each of two threads, chained over two cowns: X1 on
/// {a} then X2 on {a, b}; Y1 on {b} then Y2 on {b, a}. Each thread's
/// behaviors keep program order on every cown they share, and the two cown
/// logs agree on the order of X2 and Y2.
#[test]
fn loom_two_behaviors_each() {
    loom::model(|| {
        let a = TestCown::new();
        let b = TestCown::new();
        let ran = new_ran();
        let spawned = {
            let (a, b, ran) = (a.clone(), b.clone(), ran.clone());
            thread::spawn(move || {
                when(&[&a], 1, &ran, &Inline);
                when(&[&a, &b], 2, &ran, &Inline);
            })
        };
        when(&[&b], 3, &ran, &Inline);
        when(&[&b, &a], 4, &ran, &Inline);
        spawned.join().unwrap();
        assert_ran_once(&ran, &[1, 2, 3, 4]);
        let (log_a, log_b) = (a.log(), b.log());
        assert_log_holds(&log_a, &[1, 2, 4]);
        assert_log_holds(&log_b, &[2, 3, 4]);
        let position = |log: &[u32], id| log.iter().position(|&x| x == id).unwrap();
        assert!(position(&log_a, 1) < position(&log_a, 2), "FIFO on a: {log_a:?}");
        assert!(position(&log_b, 3) < position(&log_b, 4), "FIFO on b: {log_b:?}");
        assert_eq!(
            position(&log_a, 2) < position(&log_a, 4),
            position(&log_b, 2) < position(&log_b, 4),
            "a {log_a:?} and b {log_b:?} disagree on the order of 2 and 4"
        );
        assert_idle(&[&a, &b]);
    });
}

/// A hold from outside any behavior (`CownHeader::try_acquire`) races a
/// behavior scheduled on another thread: either the hold fails (the
/// behavior got there first), or the behavior queues behind it and runs
/// after the hold is dropped. The hold's write and the body's write to the
/// log are ordered either way (loom checks), and the cown ends idle.
#[test]
fn loom_hold_races_schedule() {
    loom::model(|| {
        let a = TestCown::new();
        let ran = new_ran();
        let spawned = {
            let (a, ran) = (a.clone(), ran.clone());
            thread::spawn(move || when(&[&a], 1, &ran, &Inline))
        };
        let held = a.header.try_acquire();
        let got_it = held.is_some();
        if let Some(held) = held {
            // SAFETY: the hold makes this access exclusive (loom checks).
            a.log.with_mut(|log| unsafe { (*log).push(0) });
            drop(held);
        }
        spawned.join().unwrap();
        assert_ran_once(&ran, &[1]);
        let log = a.log();
        if got_it {
            assert!(log == [0, 1] || log == [1, 0], "log {log:?}");
        } else {
            assert_eq!(log, [1]);
        }
        assert_idle(&[&a]);
    });
}
