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

/// Waits one step in a retry loop whose exit depends on another thread
/// making progress (a queue reporting `Retry`, a sleeper half-way through a
/// transition).
///
/// Spins with exponential backoff first; past that the other thread was
/// probably preempted, and on a machine with more threads than cores
/// spinning would only delay it, so it yields. Under loom it always yields,
/// or the model would explore an unbounded number of spins.
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
