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
