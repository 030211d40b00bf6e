//! The one place that names the atomics and the blocking primitives:
//! `std::sync` normally, loom's under `cfg(boc_loom)`, so the idle protocol
//! can be model-checked unchanged.
//!
//! Every other module imports `AtomicUsize`, `Ordering`, `fence`, `Mutex`,
//! ... from here; the tidy check rejects `std::sync::atomic` anywhere else.

#[cfg(boc_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(boc_loom)]
pub(crate) use loom::sync::{Condvar, Mutex};
#[cfg(not(boc_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(not(boc_loom))]
pub(crate) use std::sync::{Condvar, Mutex};

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
