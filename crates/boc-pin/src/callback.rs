//! Calling the host's callbacks, the pump waker and the watchdog's sink,
//! so that a panic in one never unwinds into the queue's callers. The waker
//! in particular runs on whichever thread makes the queue non-empty: a
//! worker in the middle of releasing a behavior's cowns, for one, whose
//! release must not be cut short.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Payloads dropped in a row by [`call`] before the next one is leaked:
/// each payload's `Drop` may panic with a new payload.
const MAX_PAYLOAD_DROPS: usize = 4;

/// Calls `callback`, catching a panic, which is reported on standard error
/// naming `what` (the panic hook has already printed the panic itself).
/// The panic's payload is dropped under `catch_unwind` too (its `Drop` is
/// user code), up to [`MAX_PAYLOAD_DROPS`] payloads in a row, then leaked.
pub(crate) fn call(what: &str, callback: impl FnOnce()) {
    let Err(mut payload) = catch_unwind(AssertUnwindSafe(callback)) else { return };
    eprintln!("boc-pin: {what} panicked; the panic was caught and the queue goes on");
    for _ in 0..MAX_PAYLOAD_DROPS {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    std::mem::forget(payload);
}
