//! The one place that names the atomics and the blocking primitives:
//! `std::sync` normally, loom's under `cfg(boc_loom)`, so the idle protocol
//! and the keep-alive can be model-checked unchanged.
//!
//! Every other module imports `AtomicUsize`, `Ordering`, `fence`, `Mutex`,
//! ... from here; the tidy check rejects `std::sync::atomic` anywhere else.

#[cfg(boc_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(boc_loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex};
#[cfg(not(boc_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(not(boc_loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex};

/// Waits one step in a retry loop whose exit depends on another thread's
/// progress: crossbeam's `Backoff` (exponential spinning, then yielding to
/// the scheduler, for the other thread was probably preempted). Under loom
/// it always yields, or the model would explore an unbounded number of
/// spins.
#[cfg(not(boc_loom))]
pub(crate) use crossbeam_utils::Backoff;

/// Loom's stand-in for crossbeam's `Backoff`: every step yields to the
/// model's scheduler.
#[cfg(boc_loom)]
pub(crate) struct Backoff;

#[cfg(boc_loom)]
impl Backoff {
    pub(crate) fn new() -> Self {
        Self
    }

    /// Waits one step.
    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }
}

/// Poison-tolerant locking: `lock()`, `read()`, `write()`, `get_mut()` and
/// the condition variables' waits return a `LockResult` that is an error
/// only when a thread panicked while holding the lock. This crate's critical
/// sections run no user code and leave their data consistent at every
/// point a panic could come from (an allocation failure), so the data is
/// used anyway: `x.lock().unpoisoned()`. The one place the crate says so.
pub(crate) trait Unpoisoned<G> {
    /// The guard (or value), poisoned or not.
    fn unpoisoned(self) -> G;
}

impl<G> Unpoisoned<G> for std::sync::LockResult<G> {
    fn unpoisoned(self) -> G {
        self.unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
