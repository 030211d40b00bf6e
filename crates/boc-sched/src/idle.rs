//! Idle workers: which ones are parked, which are searching for work, and
//! the protocol that wakes exactly one of them when work appears, without
//! ever losing a wakeup.
//!
//! # State
//!
//! * `counts`, one word: `n_idle` in the low half (workers between steps P2
//!   and the end of P4/P5 below) and `n_searching` in the high half (*search
//!   units*: a unit is reserved by a notifier for the worker it wakes, and
//!   held by that worker until it finds a task or parks again). One word, so
//!   a single load sees both and a single compare-and-swap can gate on both.
//! * per worker, `state`: `AWAKE`, `SLEEPING` (announced idle, may be
//!   parked) or `NOTIFIED` (claimed by a notifier, which reserved a search
//!   unit for it). Only notifiers move a worker from `SLEEPING` to
//!   `NOTIFIED`; only the worker itself leaves `NOTIFIED`.
//!
//! Each worker adjusts `n_idle` for itself (up at P2, down when it leaves),
//! so the count never underflows; a search unit is added by the notifier
//! *before* it publishes `NOTIFIED`, and removed by the worker after it has
//! seen `NOTIFIED`, so `n_searching` never underflows either.
//!
//! # The protocol
//!
//! A worker that has found no task anywhere ([`Idle::park`]):
//!
//! * **P1.** `state = SLEEPING` (SeqCst store).
//! * **P2.** `counts += idle` (and `-= searching` if it held a search unit),
//!   SeqCst read-modify-write.
//! * **P3.** `fence(SeqCst)`.
//! * **P4.** Re-check: the shutdown flag, then every queue (its next slot and
//!   deque, the injector, every sibling's deque). If it finds work, or
//!   shutdown with nothing left, it *retracts*: `counts -= idle`, then
//!   compare-and-swap `state` from `SLEEPING` to `AWAKE`; if that fails a
//!   notifier got there first (`NOTIFIED`): it stores `AWAKE` and now holds
//!   the search unit the notifier reserved.
//! * **P5.** Otherwise it parks until `state == NOTIFIED`, then stores
//!   `AWAKE`, does `counts -= idle`, and searches with the reserved unit.
//!
//! A thread that has just made a task stealable ([`Idle::notify_one`]):
//!
//! * **S1.** Push the task (onto the injector or its own deque: a queue that
//!   P4 reads).
//! * **S2.** `fence(SeqCst)`.
//! * **S3.** `c = counts` (SeqCst load). If `n_searching(c) > 0` or
//!   `n_idle(c) == 0`, stop: somebody else will see the task (below). This
//!   is the whole cost of a spawn while every worker is busy.
//! * **S4.** Reserve a unit: compare-and-swap `counts` from `c` to
//!   `c + searching`; on failure go back to S3 with the value read.
//! * **S5.** Scan the workers' states; the first `SLEEPING` one whose
//!   compare-and-swap to `NOTIFIED` succeeds is unparked and given the unit.
//! * **S6.** None found (a worker retracted in between): give the unit back
//!   (`counts -= searching`), `fence(SeqCst)`, go back to S3.
//!
//! A searching worker that finds a task gives its unit back
//! ([`Idle::stop_searching`]); if it was the last searcher and more work is
//! visible, it runs S2–S6 itself, so wakeups fan out one by one.
//!
//! # Why no wakeup is lost
//!
//! The tool is the fence rule of the C++20 memory model
//! (\[atomics.order\]): if a write *A* is sequenced before a SeqCst fence
//! *X*, a read *B* is sequenced after a SeqCst fence *Y*, and *X* precedes
//! *Y* in the single total order of SeqCst operations, then *B* reads *A* or
//! a later write. Pairs: the spawner's S2 fence with the worker's P3 fence;
//! the queue index written at S1 with the P4 re-check; the P1/P2 writes with
//! the S3/S5 reads.
//!
//! Take a task pushed at S1 by a thread N whose S2 fence is *F_N*, and any
//! worker W that goes through P1–P5 with P3 fence *F_W*. If *F_N* precedes
//! *F_W*, W's P4 re-check sees the task and W does not park. So only
//! workers whose *F_W* precedes *F_N* can park without seeing it, and N's
//! reads at S3 and S5 then see those workers' P1 and P2 writes. N stops in
//! one of these ways:
//!
//! 1. **`n_idle(c) == 0`.** Every P2 visible in `c` has been undone by a
//!    retract or a wake (the worker is awake; when it next announces idle,
//!    its P2 is not visible in `c`, so its fence follows *F_N* and its P4
//!    sees the task). A worker whose P2 is not visible in `c` is in the same
//!    position. Nobody parks past the task.
//! 2. **`n_searching(c) > 0`.** The unit counted in `c` ends after `c` in
//!    `counts`' modification order, in one of three ways: P2 (that worker's
//!    P3 fence follows *F_N*, so its P4 sees the task), `stop_searching`
//!    (that worker is awake and will announce idle with a P2 later than `c`,
//!    as in 1), or S6 (that notifier re-runs S3 after a fence that follows
//!    *F_N*, so it sees at least what N saw and takes over N's duty).
//! 3. **S5 succeeds.** The claimed worker's read of `NOTIFIED` synchronizes
//!    with N's compare-and-swap, so the push at S1 happens before its search.
//! 4. **S6.** N retries from S3 with a newer view. While `n_searching == 0`
//!    every worker counted in `n_idle` is `SLEEPING` (a `NOTIFIED` worker,
//!    or one between its P5 wake and its `counts -= idle`, holds a unit), so
//!    S5 can only miss because a worker retracted meanwhile, and the retry
//!    sees the smaller `n_idle`: the loop is lock-free.
//!
//! Shutdown ([`Idle::notify_all`]) stores the flag (SeqCst), fences, and
//! claims every `SLEEPING` worker; a worker whose P1 it did not see has its
//! P3 fence after the shutdown fence, so its P4 reads the flag.
//!
//! The gate in S3 (skip while somebody searches) is tokio's: under a burst of
//! spawns only one worker is woken at a time, and each woken worker that
//! finds work wakes the next, so wakeups are not wasted on workers that
//! would find the queues already drained.

use crate::park::{Parker, Unparker};
use crate::primitive::{AtomicUsize, Backoff, Ordering, fence};
use crossbeam_utils::CachePadded;

/// `state`: running, or searching with a unit (the unit is in `counts`).
const AWAKE: usize = 0;
/// `state`: announced idle (P1); may be parked.
const SLEEPING: usize = 1;
/// `state`: claimed by a notifier, which reserved a search unit for it.
const NOTIFIED: usize = 2;

const SEARCH_SHIFT: u32 = usize::BITS / 2;
const IDLE_UNIT: usize = 1;
const SEARCH_UNIT: usize = 1 << SEARCH_SHIFT;
const IDLE_MASK: usize = SEARCH_UNIT - 1;

/// The most workers a pool may have: `n_idle` must fit in half a word, and
/// `n_searching` (at most the workers plus one unit per concurrent
/// notifier) in the other half, with room to spare.
pub(crate) const MAX_WORKERS: usize = IDLE_MASK >> 1;

#[inline]
fn n_idle(counts: usize) -> usize {
    counts & IDLE_MASK
}

#[inline]
fn n_searching(counts: usize) -> usize {
    counts >> SEARCH_SHIFT
}

/// What a worker does after [`Idle::park`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Look for work again; `searching` says whether it holds a search unit
    /// (which it must give back with [`Idle::stop_searching`] when it finds
    /// a task, or pass to the next [`Idle::park`]).
    Work { searching: bool },
    /// Shutdown was requested and no work was left: leave the loop.
    Exit,
}

/// The idle set of one pool.
pub(crate) struct Idle {
    /// `n_idle | n_searching << SEARCH_SHIFT`.
    ///
    /// Written (SeqCst read-modify-write) by each worker for its own idle
    /// count (P2, retract, wake) and its search unit (P2, stop searching),
    /// and by notifiers reserving or returning a unit (S4, S6). Read
    /// (SeqCst) by notifiers at S3. Pairs: P2 with S3 through the P3/S2
    /// fences; see the module doc.
    counts: AtomicUsize,
    /// One per worker, indexed by worker index, each on its own cache line:
    /// a worker's park and a notifier's wake-up of another worker touch
    /// different sleepers.
    sleepers: Box<[CachePadded<Sleeper>]>,
    /// Workers blocked in P5 right now. Diagnostic only (tests and
    /// [`crate::Pool::n_parked`]); written by each worker around its park
    /// loop, read by anyone; Relaxed, it orders nothing.
    n_parked: AtomicUsize,
}

struct Sleeper {
    /// `AWAKE`, `SLEEPING` or `NOTIFIED`.
    ///
    /// Written by the worker (P1 store, retract compare-and-swap, the stores
    /// of `AWAKE` after P5 or a failed retract) and by notifiers (S5
    /// compare-and-swap `SLEEPING` to `NOTIFIED`). Read by notifiers at S5
    /// and by the worker's park loop. All SeqCst: P1 pairs with S5 through
    /// the P3/S2 fences; the S5 compare-and-swap (release) pairs with the
    /// worker's load of `NOTIFIED` (acquire), which is what makes the
    /// spawner's push visible to the worker it woke.
    state: AtomicUsize,
    unparker: Unparker,
}

impl Idle {
    pub(crate) fn new(unparkers: impl IntoIterator<Item = Unparker>) -> Self {
        let sleepers: Box<[CachePadded<Sleeper>]> = unparkers
            .into_iter()
            .map(|unparker| CachePadded::new(Sleeper { state: AtomicUsize::new(AWAKE), unparker }))
            .collect();
        debug_assert!(sleepers.len() <= MAX_WORKERS);
        Self { counts: AtomicUsize::new(0), sleepers, n_parked: AtomicUsize::new(0) }
    }

    /// Workers blocked in their park loop right now (diagnostic).
    pub(crate) fn n_parked(&self) -> usize {
        self.n_parked.load(Ordering::Relaxed)
    }

    /// Steps S2–S6: called after a task was pushed somewhere a sibling can
    /// take it. Wakes one parked worker unless every worker is busy or one is
    /// already searching. Called from any thread.
    #[inline]
    pub(crate) fn notify_one(&self) {
        fence(Ordering::SeqCst); // S2
        let counts = self.counts.load(Ordering::SeqCst); // S3
        if n_searching(counts) == 0 && n_idle(counts) > 0 {
            self.wake_one(counts);
        }
    }

    /// Steps S4–S6, starting from the value read at S3.
    #[cold]
    fn wake_one(&self, mut counts: usize) {
        let backoff = Backoff::new();
        loop {
            match self.counts.compare_exchange(counts, counts + SEARCH_UNIT, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    if self.claim_sleeper() {
                        return;
                    }
                    self.counts.fetch_sub(SEARCH_UNIT, Ordering::SeqCst); // S6
                    fence(Ordering::SeqCst);
                    backoff.snooze();
                    counts = self.counts.load(Ordering::SeqCst);
                }
                Err(actual) => counts = actual,
            }
            if n_searching(counts) > 0 || n_idle(counts) == 0 {
                return;
            }
        }
    }

    /// Step S5: claims the first `SLEEPING` worker and unparks it. The caller
    /// holds a reserved search unit, which goes to the claimed worker.
    fn claim_sleeper(&self) -> bool {
        for sleeper in self.sleepers.iter() {
            if sleeper.state.load(Ordering::SeqCst) == SLEEPING
                && sleeper.state.compare_exchange(SLEEPING, NOTIFIED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                sleeper.unparker.unpark();
                return true;
            }
        }
        false
    }

    /// Wakes every sleeping worker. Called by shutdown after it has stored
    /// its flag (SeqCst).
    pub(crate) fn notify_all(&self) {
        fence(Ordering::SeqCst);
        let mut any_returned = false;
        for sleeper in self.sleepers.iter() {
            // Reserve before publishing NOTIFIED, as at S4, so the woken
            // worker's later `-= searching` cannot precede this `+=`.
            self.counts.fetch_add(SEARCH_UNIT, Ordering::SeqCst);
            if sleeper.state.compare_exchange(SLEEPING, NOTIFIED, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                sleeper.unparker.unpark();
            } else {
                self.counts.fetch_sub(SEARCH_UNIT, Ordering::SeqCst);
                any_returned = true;
            }
        }
        if any_returned {
            // A concurrent notifier may have skipped at S3 because of a unit
            // that was only ours for a moment: take over its duty (case 2).
            self.notify_one();
        }
    }

    /// A searching worker found a task: gives its search unit back. If it
    /// was the last searcher and `more_work` (the caller saw more tasks
    /// queued), wakes another worker to help; otherwise a spawner that
    /// skipped S4 because of our unit is covered by our being awake.
    #[inline]
    pub(crate) fn stop_searching(&self, more_work: bool) {
        let prev = self.counts.fetch_sub(SEARCH_UNIT, Ordering::SeqCst);
        debug_assert!(n_searching(prev) > 0);
        if n_searching(prev) == 1 && more_work {
            self.notify_one();
        }
    }

    /// Steps P1–P5 for worker `worker_idx`, which found no task anywhere.
    ///
    /// `is_shutdown` and `has_work` are the P4 re-check; they are called
    /// once, in that order, after the P3 fence. `block` runs the blocking
    /// part of P5 (the closure it is given): it must call that closure
    /// exactly once, and may wrap it (a binding detaches from its
    /// interpreter around it); it is not called when the worker does not
    /// sleep. Returns when there may be work again (or the worker must
    /// exit); spurious returns are harmless since the caller looks for work
    /// and comes back here.
    pub(crate) fn park(
        &self,
        worker_idx: usize,
        was_searching: bool,
        parker: &Parker,
        is_shutdown: impl FnOnce() -> bool,
        has_work: impl FnOnce() -> bool,
        block: impl FnOnce(&mut dyn FnMut()),
    ) -> Wake {
        let state = &self.sleepers[worker_idx].state;
        state.store(SLEEPING, Ordering::SeqCst); // P1
        let delta = if was_searching { IDLE_UNIT.wrapping_sub(SEARCH_UNIT) } else { IDLE_UNIT };
        self.counts.fetch_add(delta, Ordering::SeqCst); // P2 (wrapping: no borrow, we hold a unit)
        fence(Ordering::SeqCst); // P3

        // P4. Read the flag first: a task spawned before shutdown was
        // requested happens before the flag store, hence before `has_work`.
        let shutdown = is_shutdown();
        if has_work() {
            return Wake::Work { searching: self.retract(worker_idx) };
        }
        if shutdown {
            if self.retract(worker_idx) {
                // End the unit with a fresh look, as every unit must (case 2).
                self.counts.fetch_sub(SEARCH_UNIT, Ordering::SeqCst);
                self.notify_one();
            }
            return Wake::Exit;
        }

        // P5.
        self.n_parked.fetch_add(1, Ordering::Relaxed);
        block(&mut || {
            while state.load(Ordering::SeqCst) != NOTIFIED {
                parker.park();
            }
        });
        self.n_parked.fetch_sub(1, Ordering::Relaxed);
        state.store(AWAKE, Ordering::SeqCst);
        self.counts.fetch_sub(IDLE_UNIT, Ordering::SeqCst);
        Wake::Work { searching: true }
    }

    /// Leaves the idle set after P2 without parking. Returns whether the
    /// worker now holds a search unit (a notifier claimed it meanwhile).
    fn retract(&self, worker_idx: usize) -> bool {
        self.counts.fetch_sub(IDLE_UNIT, Ordering::SeqCst);
        let state = &self.sleepers[worker_idx].state;
        match state.compare_exchange(SLEEPING, AWAKE, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => false,
            Err(_) => {
                // NOTIFIED: the notifier's unpark left a token behind; the
                // next park returns at once and loops on `state`, harmlessly.
                state.store(AWAKE, Ordering::SeqCst);
                true
            }
        }
    }
}
