//! The one place in this crate that names the standard atomics (the
//! workspace's tidy rule). The binding has no loom models: its lock-free
//! parts are the lower crates'.

pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
