//! How the runtime's errors reach Python: built-in exception types with
//! messages that say what went wrong and what to do.

use pyo3::exceptions::{PyRuntimeError, PyTimeoutError, PyTypeError};
use pyo3::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// A pinned cown refusing to be copied or pickled.
pub(crate) fn pinned_copy(how: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "a PinnedCown cannot be {how}: its value must stay on the main thread, and a copy would be a second, \
         unsynchronized owner of it. Pass the handle itself (it can go anywhere), or copy the value inside a behavior \
         scheduled on the cown."
    ))
}

/// A main-thread operation refused by boc-pin (off the home thread, or
/// nested inside a main-side behavior).
pub(crate) fn pin(operation: &str, error: &boc::engine::PinError) -> PyErr {
    match error {
        boc::engine::PinError::NotHomeThread { .. } => off_main(operation),
        boc::engine::PinError::Reentrant { .. } => PyRuntimeError::new_err(format!(
            "{operation}() cannot be called from inside a behavior running on the main thread (pumping is not \
             re-entrant). Schedule more work with @when and return instead."
        )),
        other => PyRuntimeError::new_err(format!("{operation}() failed: {other}")),
    }
}

/// A main-thread operation called on another thread.
pub(crate) fn off_main(operation: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{operation}() must be called on the main thread, where pinned cowns live; it was called from another \
         thread. Call it from the main thread (for example from its event loop)."
    ))
}

/// A timed wait that ran out: how much is in flight, and which main-side
/// behaviors wait for the main thread (by name, where known).
pub(crate) fn timeout(
    operation: &str,
    timeout: Duration,
    n_in_flight: usize,
    main_side: &[Arc<str>],
    n_main: usize,
) -> PyErr {
    let mut message = format!(
        "{operation}() timed out after {:.3} s with {n_in_flight} behaviors still scheduled or running.",
        timeout.as_secs_f64()
    );
    if n_main > 0 {
        message.push_str(&format!(
            " {n_main} of them are ready main-side behaviors (holding a PinnedCown), which run only when the main \
             thread calls pump() or wait()"
        ));
        if !main_side.is_empty() {
            let names = main_side.iter().map(|label| &**label).collect::<Vec<_>>().join(", ");
            message.push_str(&format!(": {names}"));
            if n_main > main_side.len() {
                message.push_str(&format!(" and {} more", n_main - main_side.len()));
            }
        }
        message.push('.');
    }
    PyTimeoutError::new_err(message)
}

/// Waiting from inside a behavior, which could never see quiescence.
pub(crate) fn wait_inside_behavior(operation: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{operation}() cannot be called from inside a behavior: it would wait for the behavior itself. Schedule the \
         follow-up work with @when instead."
    ))
}

/// A wait refused on a thread that is finishing behaviors: run from a `__del__`
/// of something a behavior left, before the engine counted that behavior out.
pub(crate) fn wait_while_finishing(operation: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{operation}() cannot be called while this thread is finishing behaviors (here, from code run when \
         something a behavior left behind was freed, such as a __del__): those behaviors are not counted out until \
         it returns, so it would wait for them. Schedule the follow-up work with @when instead."
    ))
}

/// A call refused because boc has stopped for interpreter exit.
pub(crate) fn shut_down(operation: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{operation}() was called after boc shut down for interpreter exit: its workers are gone and nothing \
         scheduled now could run. Schedule work before the program ends (an atexit handler registered after \
         `import boc` runs before boc shuts down)."
    ))
}

/// Runs `f`, turning a Rust panic into `RuntimeError`: no panic reaches
/// Python as PyO3's `PanicException`, a `BaseException` that `except
/// Exception` would not catch (SPEC §5 rule 6). A backstop: every bound is
/// checked where it is read, so a panic here is a bug in boc.
pub(crate) fn boundary<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|message| (*message).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        Err(PyRuntimeError::new_err(format!(
            "internal error in boc: {message}. This is a bug in boc; please report it with the program that \
             triggered it."
        )))
    })
}

/// A call refused on a daemon thread while boc stops for interpreter exit.
pub(crate) fn exiting(operation: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{operation}() was called from a daemon thread while boc stops for interpreter exit: the program has \
         ended, and boc finishes what was scheduled before, not new work from threads still running. Schedule \
         work before the program ends, or join this thread before exiting."
    ))
}

/// Waiting on a boc worker outside any behavior (from code a behavior left
/// behind, such as a `__del__` run by the release).
pub(crate) fn wait_on_worker(operation: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{operation}() cannot be called on a boc worker thread (here, outside any behavior: from code run as a \
         behavior finished, such as a __del__): the worker would wait for itself. Schedule the follow-up work \
         with @when instead."
    ))
}
