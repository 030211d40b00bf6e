//! What a host (an event loop) uses to learn about main-side work: the
//! pump descriptor, the pump waker (a thread of its own that calls the
//! Python callback) and the starvation watchdog.

use crate::args::{OnStarve, Unconverted, WarnMs, given, type_name};
use crate::exit;
use crate::primitive::Unpoisoned;
use crate::primitive::{AtomicBool, Ordering};
use crate::runtime::runtime;
use boc::{StarvationReport, WatchdogConfig};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};

/// A watchdog sink: the message goes to `on_starve(message)`, or to the
/// `boc` logger as a warning.
pub(crate) fn log_starvation(on_starve: Option<Py<PyAny>>) -> impl Fn(&StarvationReport) + Send + Sync + 'static {
    move |report| {
        let message = report.to_string();
        // The watchdog's own thread, outside any protocol; nothing to do
        // once boc has shut down for interpreter exit.
        let before = crate::fork::generation();
        exit::attach(|py| {
            let delivered = match &on_starve {
                Some(on_starve) => on_starve.call1(py, (message,)).map(drop),
                None => py
                    .import("logging")
                    .and_then(|logging| logging.call_method1("getLogger", ("boc",)))
                    .and_then(|logger| logger.call_method1("warning", (message,)))
                    .map(drop),
            };
            if let Err(error) = delivered {
                error.write_unraisable(py, None);
            }
        });
        crate::fork::end_if_forked_since(before);
    }
}

/// Configure the starvation watchdog.
///
/// It reports (once per episode) main-side behaviors that waited longer
/// than `warn_ms` milliseconds without the main thread pumping, naming
/// them by qualname and file:line. `warn_ms=None` turns it off; the
/// default is 2000. `on_starve(message)` receives the report instead of
/// the `boc` logger (WARNING). It warns; it never raises.
#[pyfunction]
#[pyo3(signature = (warn_ms = Some(Unconverted::Default), on_starve = None))]
pub(crate) fn set_pump_watchdog(
    py: Python<'_>,
    warn_ms: Option<Unconverted<'_>>,
    on_starve: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    exit::call(py, || {
        let threshold = match warn_ms {
            None => None,
            Some(Unconverted::Default) => Some(WatchdogConfig::DEFAULT_THRESHOLD),
            Some(Unconverted::Given(warn_ms)) => given::<WarnMs>(Some(&warn_ms))?.map(|WarnMs(threshold)| threshold),
        };
        let on_starve = given::<OnStarve<'_>>(on_starve)?;
        let config = if let Some(threshold) = threshold {
            let sink = log_starvation(on_starve.map(|OnStarve(callback)| callback.unbind()));
            Some(WatchdogConfig::new(threshold).with_sink(sink))
        } else {
            None
        };
        let runtime = runtime()?;
        runtime.main().set_watchdog(config).map_err(|error| PyRuntimeError::new_err(format!("{error}")))
    })
}

/// A file descriptor that is readable while main-side work waits: watch it
/// in an event loop (for example `loop.add_reader`) and call `pump()` when
/// it fires. `pump()` clears it; never read it yourself.
#[pyfunction]
pub(crate) fn pump_fd() -> PyResult<i32> {
    use std::os::fd::AsRawFd;
    let runtime = runtime()?;
    let fd = runtime.main().waker_fd().map_err(|error| PyRuntimeError::new_err(format!("{error}")))?;
    Ok(fd.as_raw_fd())
}

/// Calls the Python pump waker on its own thread: the runtime signals it
/// from inside the protocol, which must not call Python (SPEC §5 rule 2).
/// One thread for the runtime's life, started by the first
/// `set_pump_waker` with a callback; later calls only swap the callback.
///
/// Signalled without a lock (a flag and the thread's park token), and its
/// callback's lock is only ever taken attached, so a fork never leaves the
/// child one of them held by a thread it does not have (see `fork`). Every
/// callback is dropped attached, by the thread that replaces it or by the
/// waker thread once it has called it.
pub(crate) struct WakerThread {
    /// The current callback (`None` once removed).
    callback: Mutex<Option<Py<PyAny>>>,
    /// A wake not yet handled. Set (Release) by `wake`; swapped to false
    /// (Acquire) by the waker thread before it calls the callback, so a
    /// wake after that swap calls it again.
    pending: AtomicBool,
    /// The waker thread, set by `set_pump_waker` right after spawning it
    /// and before it publishes the waker (under the main queue's lock), so
    /// every `wake` finds it.
    thread: OnceLock<std::thread::Thread>,
}

impl WakerThread {
    fn run(&self) {
        loop {
            if !self.pending.swap(false, Ordering::Acquire) {
                // `unpark` after the flag's store makes this return (a
                // token left by an earlier `unpark` makes it return early:
                // the loop looks again).
                std::thread::park();
                continue;
            }
            let before = crate::fork::generation();
            let attached = exit::attach(|py| {
                let callback = self.callback.lock().unpoisoned().as_ref().map(|callback| callback.clone_ref(py));
                if let Some(callback) = callback
                    && let Err(error) = callback.call0(py)
                {
                    error.write_unraisable(py, None);
                }
            });
            crate::fork::end_if_forked_since(before);
            if attached.is_none() {
                // The interpreter is finalizing: no callback runs any more.
                return;
            }
        }
    }

    fn wake(&self) {
        self.pending.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// Set `callback()` to be called when main-side work arrives in an empty
/// queue, or remove it with `None`. It is called on a boc thread, never
/// the main thread: it must only post work to the host loop (for example
/// `loop.call_soon_threadsafe(...)`), never pump itself.
#[pyfunction]
pub(crate) fn set_pump_waker(py: Python<'_>, callback: &Bound<'_, PyAny>) -> PyResult<()> {
    crate::exit::call(py, || {
        let runtime = runtime()?;
        let callback = if callback.is_none() {
            None
        } else if !callback.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "set_pump_waker() takes a callable with no arguments (or None to remove it), not {}",
                type_name(callback)
            )));
        } else {
            Some(callback.clone().unbind())
        };
        let mut slot = runtime.waker.lock().unpoisoned();
        let waker = match (&*slot, &callback) {
            (Some(waker), _) => Arc::clone(waker),
            // Removed before any was set: nothing to start.
            (None, None) => return Ok(()),
            (None, Some(_)) => {
                let waker = Arc::new(WakerThread {
                    callback: Mutex::new(None),
                    pending: AtomicBool::new(false),
                    thread: OnceLock::new(),
                });
                let thread_waker = Arc::clone(&waker);
                let handle = std::thread::Builder::new()
                    .name("boc-pump-waker".into())
                    .spawn(move || thread_waker.run())
                    .map_err(|error| {
                        PyRuntimeError::new_err(format!("cannot start the pump waker's thread: {error}"))
                    })?;
                // Before the waker is published below: see `WakerThread::thread`.
                let _ = waker.thread.set(handle.thread().clone());
                *slot = Some(Arc::clone(&waker));
                waker
            }
        };
        drop(slot);
        let signal = callback.is_some().then(|| {
            let waker = Arc::clone(&waker);
            Box::new(move || waker.wake()) as Box<dyn Fn() + Send + Sync>
        });
        let previous = std::mem::replace(&mut *waker.callback.lock().unpoisoned(), callback);
        // Dropped here, attached (outside the lock: it may run Python).
        drop(previous);
        runtime.main().set_waker(signal);
        Ok(())
    })
}
