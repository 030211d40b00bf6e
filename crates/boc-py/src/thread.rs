//! The interpreter's threads as boc sees them: boc's one notion of the
//! main thread (CPython's thread identity of `threading.main_thread()`,
//! read at import; also the main queue's home), attachment, whether the
//! GIL is on, and how often a blocked main thread looks for signals.

use crate::primitive::{AtomicBool, Ordering};
use pyo3::prelude::*;
use std::os::raw::c_ulong;
use std::sync::OnceLock;
use std::time::Duration;

unsafe extern "C" {
    /// CPython's thread identity (`threading.get_ident()`); callable
    /// without attachment.
    fn PyThread_get_thread_ident() -> c_ulong;
}

/// How often a call blocked on the main thread (`wait`, `receive`) looks
/// for signals, so Ctrl-C interrupts it; what it waits for wakes it at once.
pub(crate) const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// `threading.main_thread().ident`, read when the module is imported.
static MAIN_IDENT: OnceLock<c_ulong> = OnceLock::new();

/// False on a free-threaded build running without the GIL. Written once
/// at import (Relaxed: read as a hint only).
static GIL_ENABLED: AtomicBool = AtomicBool::new(true);

/// True unless this is a free-threaded build running without the GIL.
pub(crate) fn gil_enabled() -> bool {
    GIL_ENABLED.load(Ordering::Relaxed)
}

/// Called once at import.
pub(crate) fn init(py: Python<'_>) -> PyResult<()> {
    let sys = py.import("sys")?;
    if let Ok(is_gil_enabled) = sys.getattr("_is_gil_enabled") {
        GIL_ENABLED.store(is_gil_enabled.call0()?.is_truthy()?, Ordering::Relaxed);
    }
    let ident: c_ulong = py.import("threading")?.call_method0("main_thread")?.getattr("ident")?.extract()?;
    // Imported now, on the main thread, so that starting a pool later (on
    // any thread) finds it in `sys.modules` instead of running the import
    // machinery's Python code inside a boc call (see `exit`).
    let _ = py.import("resource");
    let _ = MAIN_IDENT.set(ident);
    Ok(())
}

/// True on the interpreter's main thread: boc's one notion of it, which is
/// also the main queue's home (`MainQueue::with_home_check`), so the
/// runtime can be created on any thread.
pub(crate) fn is_main_thread() -> bool {
    MAIN_IDENT.get().is_some_and(|main| thread_ident() == *main)
}

/// The calling thread's identity as `threading.get_ident()` gives it.
pub(crate) fn thread_ident() -> c_ulong {
    // SAFETY: `PyThread_get_thread_ident` has no preconditions.
    unsafe { PyThread_get_thread_ident() }
}

/// Whether this thread is attached to the interpreter. CPython's own
/// answer; it is always "yes" in a process that created a
/// sub-interpreter, which boc's module cannot be imported into.
pub(crate) fn is_attached() -> bool {
    // SAFETY: no preconditions; callable detached.
    unsafe { pyo3::ffi::PyGILState_Check() != 0 }
}
