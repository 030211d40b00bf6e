//! User code the runtime runs in the middle of its own work: behavior
//! bodies, and the `Drop` of cown values, results, unrun bodies, pinned
//! values and panic payloads. A panic there must never unwind through the
//! runtime (it would skip the rest of a release, leave a result unfinished,
//! or escape a `pump` or `quiesce` that did not run the code). Every such
//! call goes through this module: the panic is caught here, and reported
//! here when nobody else will see it.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, catching a panic; the message of a caught panic comes back as
/// the error.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(panic_message)
}

/// Runs `f`, catching a panic, which is reported on standard error naming
/// `what` (the panic hook has already printed the panic itself). For user
/// code whose panic has nowhere else to go: the drop of a cown's value when
/// a behavior lets go of it, of a result nobody will take, of a callback.
pub(crate) fn catch_reporting(what: &str, f: impl FnOnce()) {
    if let Err(message) = catch(f) {
        eprintln!("boc: a panic in {what} was caught; the runtime goes on: {message}");
    }
}

/// Drops `value` as [`catch_reporting`] runs code.
pub(crate) fn drop_reporting<T>(what: &str, value: T) {
    catch_reporting(what, move || drop(value));
}

/// Payloads dropped in a row by [`panic_message`] before the next one is
/// leaked: each payload's `Drop` may panic with a new payload.
const MAX_PAYLOAD_DROPS: usize = 4;

/// The message of a caught panic, when its payload is a string. Drops the
/// payload, whose own `Drop` may panic too (it is user code): that panic is
/// caught and its payload dropped the same way, up to
/// [`MAX_PAYLOAD_DROPS`] times, then leaked.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let payload = match payload.downcast::<String>() {
        Ok(message) => return *message,
        Err(payload) => payload,
    };
    let mut payload = match payload.downcast::<&'static str>() {
        Ok(message) => return (*message).to_owned(),
        Err(payload) => payload,
    };
    let mut n_drops = 0;
    loop {
        if n_drops == MAX_PAYLOAD_DROPS {
            std::mem::forget(payload);
            break;
        }
        n_drops += 1;
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => break,
            Err(next) => payload = next,
        }
    }
    if n_drops == 1 {
        "a panic with a non-string payload".to_owned()
    } else {
        "a panic with a non-string payload, whose drop panicked too".to_owned()
    }
}
