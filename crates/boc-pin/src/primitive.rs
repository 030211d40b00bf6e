//! The one place that names the atomics, the blocking primitives and thread
//! identity: `std` normally, loom's under `cfg(boc_loom)`, so the wakeup
//! protocol (`waker.rs`) and the home-thread checks can be model-checked
//! unchanged.
//!
//! Thread identity is part of the shim because loom runs every model thread
//! on one OS thread: `std::thread::current()` would call the producer of a
//! model the home thread.
//!
//! Every other module imports `AtomicUsize`, `Mutex`, `current_thread`, ...
//! from here; the tidy check rejects `std::sync::atomic` anywhere else.

#[cfg(boc_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(boc_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(boc_loom)]
pub(crate) use loom::thread::{ThreadId, current as current_thread};

#[cfg(not(boc_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(boc_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(boc_loom))]
pub(crate) use std::thread::{ThreadId, current as current_thread};

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
