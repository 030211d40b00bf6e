//! The one place that names the atomics: `std::sync::atomic` normally, loom's
//! under `cfg(boc_loom)`, so the protocol can be model-checked unchanged.
//!
//! Every spin in the protocol goes through [`Backoff`], which yields to loom's
//! scheduler under the model checker (otherwise a spinning thread would make
//! the model explore an unbounded number of steps).

#[cfg(boc_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(not(boc_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Hands out cown keys: a creation counter gives every cown a distinct,
/// stable position in the global acquisition order.
///
/// The counter is identity, not protocol: it stays a std atomic even under
/// loom (loom atomics cannot live in a `static`). Relaxed: the key only needs
/// to be unique, which the read-modify-write guarantees.
pub(crate) fn next_key() -> u64 {
    static NEXT_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

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
