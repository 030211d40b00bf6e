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

/// A spin-wait on another thread's progress that every protocol wait uses.
///
/// The waits in the protocol are short (the other thread is between two
/// adjacent atomic operations), so it spins with exponential backoff first;
/// past that the other thread was probably preempted, and on a machine with
/// more threads than cores spinning would only delay it, so it yields.
pub(crate) struct Backoff {
    #[cfg_attr(boc_loom, allow(dead_code))]
    step: u32,
}

impl Backoff {
    #[cfg_attr(boc_loom, allow(dead_code))]
    const SPIN_LIMIT: u32 = 6;

    #[inline]
    pub(crate) fn new() -> Self {
        Self { step: 0 }
    }

    /// Waits one step.
    #[inline]
    pub(crate) fn snooze(&mut self) {
        #[cfg(boc_loom)]
        {
            loom::thread::yield_now();
        }
        #[cfg(not(boc_loom))]
        {
            if self.step <= Self::SPIN_LIMIT {
                for _ in 0..(1u32 << self.step) {
                    std::hint::spin_loop();
                }
                self.step += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}
