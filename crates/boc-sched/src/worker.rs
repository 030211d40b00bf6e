//! One worker thread: its local queues, the order in which it looks for
//! work, and the thread-local through which [`crate::Pool::spawn`] finds
//! those queues when it is called from inside a task.
//!
//! # Where a worker looks, in order
//!
//! 1. Its **next slot**: the task most recently spawned on this worker (a
//!    behavior made ready by the release of the one that just ran, so its
//!    cowns are hot in this core's cache). Not stealable: the worker comes
//!    back to it right after the current task (until the budget below is
//!    spent). The price, as with tokio's LIFO slot: if the task that filled
//!    the slot keeps running for long, the slot's task waits for it; a
//!    second spawn moves the first into the deque, where it can be stolen.
//! 2. Its **local deque** (FIFO). The next slot already provides the
//!    locality a LIFO deque would; the deque's job is fairness: tasks
//!    displaced from the next slot run in the order they were made ready, so
//!    none waits behind an unbounded stream of newer ones. Stealers take from
//!    the same end, so a thief also gets the oldest work.
//! 3. The shared **injector** (tasks spawned from outside the pool), taking
//!    a batch into the local deque (`steal_batch_and_pop`).
//! 4. **Siblings' deques**, starting at a random sibling, again by batch.
//! 5. Otherwise it parks (`Idle::park`, which re-checks all of the above).
//!
//! # Fairness bounds
//!
//! * A chain of behaviors that always refills the next slot would starve
//!   the deque and the injector. After [`MAX_NEXT_RUNS`] consecutive runs
//!   from the next slot, the slot's task is demoted to the back of the local
//!   deque (where siblings can steal it) and the worker polls the injector
//!   before its deque.
//! * A worker with an ever-full local deque would starve the injector, so
//!   every [`INJECTOR_INTERVAL`] tasks taken from outside the next slot it
//!   polls the injector first (tokio uses the same interval for its global
//!   queue). The next slot itself is not interrupted by this tick (its own
//!   budget bounds it), so a task spawned on a worker runs next on that
//!   worker, deterministically, unless the budget is spent.

use crate::Runner;
use crate::idle::Wake;
use crate::park::Parker;
use crate::pool::Shared;
use crate::primitive::{Backoff, Ordering};
use crossbeam_deque::{Steal, Worker};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

/// Consecutive tasks a worker takes from its next slot before it demotes
/// the slot's task to its deque and looks at the injector. Three, as
/// tokio's LIFO slot: a chain of long behaviors that refills the slot at
/// every step (each readies the next as it releases) then lets the other
/// ready work on this worker run every fourth step, rather than every
/// 33rd (found by a Python program whose short tallies starved behind a
/// self-rescheduling 3 ms chain).
pub(crate) const MAX_NEXT_RUNS: u32 = 3;

/// Every this many tasks a worker polls the injector before its deque.
pub(crate) const INJECTOR_INTERVAL: u32 = 61;

/// The queues a worker owns. Shared (through an `Rc`) between the worker
/// loop and the thread-local, so a task running on the worker can push.
pub(crate) struct Local<T> {
    /// Identity of the pool this worker belongs to (see `pool_addr`).
    pool_addr: usize,
    deque: Worker<T>,
    next: Cell<Option<T>>,
}

impl<T> Local<T> {
    /// Puts `task` in the next slot. Returns true if the previous occupant
    /// was moved to the deque, where siblings can now steal it.
    fn push_next(&self, task: T) -> bool {
        match self.next.replace(Some(task)) {
            Some(previous) => {
                self.deque.push(previous);
                true
            }
            None => false,
        }
    }

    fn has_next(&self) -> bool {
        let next = self.next.take();
        let has_next = next.is_some();
        self.next.set(next);
        has_next
    }
}

/// The worker running on this thread, if any, type-erased so one
/// thread-local serves every `Pool<T, R>`.
struct Current {
    pool_addr: usize,
    local: Rc<dyn Any>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Clears [`CURRENT`] when the worker loop ends, however it ends.
struct CurrentGuard;

impl CurrentGuard {
    fn enter(pool_addr: usize, local: Rc<dyn Any>) -> Self {
        CURRENT.with(|current| *current.borrow_mut() = Some(Current { pool_addr, local }));
        CurrentGuard
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        // Take the value out first so `Local` (and any task still in it) is
        // dropped after the borrow ends.
        let current = CURRENT.with(|current| current.borrow_mut().take());
        drop(current);
    }
}

/// If the calling thread is a worker of the pool at `pool_addr`, puts `task`
/// in its next slot and returns whether a task was displaced into its deque;
/// otherwise gives `task` back.
pub(crate) fn push_local<T: 'static>(pool_addr: usize, task: T) -> Result<bool, T> {
    let mut task = Some(task);
    let pushed = CURRENT
        .try_with(|current| {
            let current = current.borrow();
            let local = current
                .as_ref()
                .filter(|current| current.pool_addr == pool_addr)
                .and_then(|current| current.local.downcast_ref::<Local<T>>())?;
            task.take().map(|task| local.push_next(task))
        })
        .ok()
        .flatten();
    match (pushed, task) {
        (Some(displaced), _) => Ok(displaced),
        (None, Some(task)) => Err(task),
        (None, None) => unreachable!("a task is either pushed or given back"),
    }
}

/// True iff the calling thread is a worker of the pool at `pool_addr`.
pub(crate) fn is_worker_of(pool_addr: usize) -> bool {
    CURRENT
        .try_with(|current| current.borrow().as_ref().is_some_and(|current| current.pool_addr == pool_addr))
        .unwrap_or(false)
}

/// Entry point of worker thread `worker_idx`.
pub(crate) fn run<T: Send + 'static, R: Runner<T>>(
    shared: Arc<Shared<T, R>>,
    worker_idx: usize,
    deque: Worker<T>,
    parker: Parker,
) {
    let local = Rc::new(Local { pool_addr: shared.addr(), deque, next: Cell::new(None) });
    let _current = CurrentGuard::enter(local.pool_addr, local.clone());
    let runner = Arc::clone(&shared.runner);
    let mut worker = WorkerThread {
        shared,
        local,
        worker_idx,
        parker,
        searching: false,
        n_next_runs: 0,
        tick: 0,
        rng: XorShift::new(worker_idx),
    };
    let mut work = || worker.run_loop();
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| runner.worker_thread(&mut work))) {
        // The loop itself does not panic (it catches the runner's panics);
        // this one came from the hook, which can no longer run the loop.
        worker.shared.record_panic("Runner::worker_thread");
        drop(payload);
    }
}

struct WorkerThread<T: Send + 'static, R: Runner<T>> {
    shared: Arc<Shared<T, R>>,
    local: Rc<Local<T>>,
    worker_idx: usize,
    parker: Parker,
    /// Holds a search unit (see `idle`): woken to look for work.
    searching: bool,
    /// Consecutive tasks taken from the next slot.
    n_next_runs: u32,
    /// Tasks taken from outside the next slot so far (wrapping), for
    /// [`INJECTOR_INTERVAL`].
    tick: u32,
    rng: XorShift,
}

impl<T: Send + 'static, R: Runner<T>> WorkerThread<T, R> {
    fn run_loop(&mut self) {
        loop {
            if let Some(task) = self.next_task() {
                if self.searching {
                    self.searching = false;
                    let more_work = !self.local.deque.is_empty() || !self.shared.injector.is_empty();
                    self.shared.idle.stop_searching(more_work);
                }
                self.run_task(task);
                continue;
            }
            let wake = self.shared.idle.park(
                self.worker_idx,
                self.searching,
                &self.parker,
                || self.shared.is_shutdown.load(Ordering::SeqCst),
                || self.has_work(),
                |park| Self::park_through(&self.shared, park),
            );
            match wake {
                Wake::Work { searching } => self.searching = searching,
                Wake::Exit => return,
            }
        }
    }

    /// Steps 1–4 of the module doc, with the fairness bounds.
    fn next_task(&mut self) -> Option<T> {
        if let Some(task) = self.local.next.take() {
            if self.n_next_runs < MAX_NEXT_RUNS {
                self.n_next_runs += 1;
                return Some(task);
            }
            // Budget spent: demote the slot's task behind the older ones,
            // where a sibling may steal it, and give the injector a turn.
            self.n_next_runs = 0;
            self.local.deque.push(task);
            self.shared.idle.notify_one();
            if let Some(task) = self.steal_injector() {
                return Some(task);
            }
        }
        self.n_next_runs = 0;
        self.tick = self.tick.wrapping_add(1);
        if self.tick % INJECTOR_INTERVAL == 0 {
            if let Some(task) = self.steal_injector() {
                return Some(task);
            }
        }
        self.local.deque.pop().or_else(|| self.steal_injector()).or_else(|| self.steal_siblings())
    }

    fn steal_injector(&self) -> Option<T> {
        let backoff = Backoff::new();
        loop {
            match self.shared.injector.steal_batch_and_pop(&self.local.deque) {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => backoff.snooze(),
            }
        }
    }

    fn steal_siblings(&mut self) -> Option<T> {
        let stealers = &self.shared.stealers;
        let n_workers = stealers.len();
        if n_workers <= 1 {
            return None;
        }
        let backoff = Backoff::new();
        loop {
            let mut retry = false;
            let start = self.rng.next_below(n_workers);
            for offset in 0..n_workers {
                let victim_idx = (start + offset) % n_workers;
                if victim_idx == self.worker_idx {
                    continue;
                }
                match stealers[victim_idx].steal_batch_and_pop(&self.local.deque) {
                    Steal::Success(task) => return Some(task),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
            backoff.snooze();
        }
    }

    /// The P4 re-check: is there a task anywhere this worker could take?
    fn has_work(&self) -> bool {
        self.local.has_next()
            || !self.local.deque.is_empty()
            || !self.shared.injector.is_empty()
            || self.shared.stealers.iter().any(|stealer| !stealer.is_empty())
    }

    fn run_task(&self, task: T) {
        let runner = &self.shared.runner;
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| runner.run(task))) {
            self.shared.record_panic("Runner::run");
            drop(payload);
        }
    }

    /// Blocks through the runner's [`Runner::park`] hook. A hook that
    /// panics, or returns without calling `park`, must not leave the worker
    /// spinning: it then parks here.
    fn park_through(shared: &Shared<T, R>, park: &mut dyn FnMut()) {
        let mut parked = false;
        let mut park_once = || {
            parked = true;
            park();
        };
        let hooked = panic::catch_unwind(AssertUnwindSafe(|| shared.runner.park(&mut park_once)));
        if let Err(payload) = hooked {
            shared.record_panic("Runner::park");
            drop(payload);
        }
        if !parked {
            park();
        }
    }
}

/// Picks the first sibling to steal from, so thieves spread out.
struct XorShift(u32);

impl XorShift {
    fn new(seed: usize) -> Self {
        // Odd multiplier keeps distinct seeds distinct; `| 1` keeps it nonzero.
        Self((seed as u32).wrapping_mul(0x9E37_79B9) | 1)
    }

    fn next_below(&mut self, bound: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x as usize % bound
    }
}
