//! Exceptions nobody retrieved from a result cown, reported on logger
//! `boc` as asyncio reports a task's: when the cown is finalized (by
//! reference counting or by the cycle collector), or at interpreter exit
//! if it is still alive then (SPEC §5).
//!
//! The cycle collector is the delicate case. A result cown, its exception
//! and the exception's traceback often form a cycle (a main-side body that
//! raised during `pump()` has a traceback reaching the frame that holds
//! the cown). The collector clears such a cycle's objects in any order
//! (`tp_clear`), so a report written after that would read an exception
//! whose `args` are gone. The report is therefore written from the cown's
//! `tp_finalize` (PEP 442), which the collector calls for every object of
//! the cycle before it clears any; a handler that keeps the log record
//! resurrects the cycle, which PEP 442 allows. After the report the
//! exception counts as retrieved, so nothing reports it again.

use crate::cown::{CownCore, PyCown, PyPinnedCown};
use crate::primitive::Unpoisoned;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use std::sync::{Arc, Mutex, Weak};

/// Result cowns that received an exception, for the report at exit.
struct Failed {
    cowns: Vec<Weak<CownCore>>,
    /// The length at which dead entries are pruned next (doubles, so
    /// pruning costs O(1) per entry, amortized).
    prune_at: usize,
}

static FAILED: Mutex<Failed> = Mutex::new(Failed { cowns: Vec::new(), prune_at: 64 });

/// Remembers `core`, which just received an exception, for
/// [`report_alive_at_exit`].
pub(crate) fn note_failed(core: &Arc<CownCore>) {
    let mut failed = FAILED.lock().unpoisoned();
    if failed.cowns.len() >= failed.prune_at {
        failed.cowns.retain(|cown| cown.strong_count() > 0);
        failed.prune_at = (failed.cowns.len() * 2).max(64);
    }
    failed.cowns.push(Arc::downgrade(core));
}

/// Reports `core`'s exception if it holds one nobody retrieved, marking it
/// retrieved. Does nothing if a behavior holds or waits for the cown (its
/// exception, if any, is reported later). Attached.
pub(crate) fn report_if_unretrieved(py: Python<'_>, core: &CownCore) {
    if let Some((exception, origin)) = core.take_unretrieved(py) {
        // A `Bound`, so that it is released at once even where PyO3 does not
        // count the thread attached (a `tp_finalize`): a `Py` would go to
        // PyO3's deferred decrefs, which boc never uses (see `fork`).
        let exception = exception.into_bound(py);
        report(py, &exception, origin.as_deref());
    }
}

/// Writes the report: logger `boc`, ERROR, with the exception's traceback.
/// A logging failure is written as unraisable. Attached.
pub(crate) fn report(py: Python<'_>, exception: &Bound<'_, PyAny>, origin: Option<&str>) {
    // Logging runs Python, which a daemon thread must not do once boc has
    // shut down for exit (`exit`'s docs): the report is lost then.
    let Some(_entered) = crate::exit::try_enter() else { return };
    let origin = origin.map_or_else(String::new, |origin| format!(" {origin}"));
    let message = format!("exception in behavior{origin} was never retrieved");
    let logged = (|| -> PyResult<()> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("exc_info", exception)?;
        py.import("logging")?.call_method1("getLogger", ("boc",))?.call_method("error", (message,), Some(&kwargs))?;
        Ok(())
    })();
    if let Err(error) = logged {
        error.write_unraisable(py, None);
    }
}

/// At interpreter exit: reports every exception still alive on a result
/// cown that nobody retrieved.
pub(crate) fn report_alive_at_exit(py: Python<'_>) {
    let cowns = std::mem::take(&mut FAILED.lock().unpoisoned().cowns);
    for cown in cowns.iter().filter_map(Weak::upgrade) {
        report_if_unretrieved(py, &cown);
    }
}

/// Installs [`finalize_cown`] as the `tp_finalize` of `Cown` and
/// `PinnedCown` (PyO3 0.28 has no `__del__` for pyclasses). Called once,
/// at import, before any subclass of them can exist (subclasses made later
/// inherit the slot).
pub(crate) fn install_finalizer(py: Python<'_>) {
    for cown_type in [py.get_type::<PyCown>(), py.get_type::<PyPinnedCown>()] {
        set_finalizer(&cown_type);
    }
}

fn set_finalizer(cown_type: &Bound<'_, PyType>) {
    // SAFETY: a live heap type made by PyO3 (not the limited API, so the
    // full `PyTypeObject` is there); attached, at import, before any object
    // of the type exists on another thread. The collector and
    // `subtype_dealloc` read `tp_finalize` directly.
    unsafe { (*cown_type.as_type_ptr()).tp_finalize = Some(finalize_cown) };
}

/// `tp_finalize` of a cown: reports an unretrieved exception (module docs).
unsafe extern "C" fn finalize_cown(object: *mut ffi::PyObject) {
    // A finalizer runs attached (the collector or a deallocation calls it),
    // but PyO3 does not count it so (and cannot be asked to during
    // finalization): nothing here drops a `Py`, only `Bound`s.
    // SAFETY: see above; the token does not outlive the call.
    let py = unsafe { Python::assume_attached() };
    // PEP 442: a finalizer keeps the exception being raised, if any.
    let (mut kind, mut value, mut traceback) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: attached; the three out-pointers are valid.
    #[allow(deprecated)]
    unsafe {
        ffi::PyErr_Fetch(&mut kind, &mut value, &mut traceback)
    };
    let reported = std::panic::catch_unwind(|| {
        // SAFETY: `object` is the live object being finalized; borrowed, so
        // no reference of ours outlives the call.
        let object = unsafe { Bound::from_borrowed_ptr(py, object) };
        if let Ok(cown) = object.cast::<PyCown>() {
            report_if_unretrieved(py, &cown.get().core);
        }
    });
    if reported.is_err() {
        eprintln!("boc: internal error while finalizing a cown (a panic); its exception, if any, is not reported");
    }
    // SAFETY: attached; gives back the references taken by the fetch.
    #[allow(deprecated)]
    unsafe {
        ffi::PyErr_Restore(kind, value, traceback)
    };
}
