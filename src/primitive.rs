//! The one place that names the standard atomics (the workspace's tidy
//! rule), and this crate's poison-tolerant locking.

pub(crate) use std::sync::atomic::{AtomicBool, Ordering};

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
