//! Calling the host's callbacks, the pump waker and the watchdog's sink,
//! so that a panic in one never unwinds into the queue's callers. The waker
//! in particular runs on whichever thread makes the queue non-empty: a
//! worker in the middle of releasing a behavior's cowns, for one, whose
//! release must not be cut short.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Calls `callback`, catching a panic, which is reported on standard error
/// naming `what` (the panic hook has already printed the panic itself).
/// The panic's payload is dropped under `catch_unwind` too, and leaked if
/// its own `Drop` panics.
pub(crate) fn call(what: &str, callback: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(callback)) {
        eprintln!("boc-pin: {what} panicked; the panic was caught and the queue goes on");
        if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(second);
        }
    }
}
