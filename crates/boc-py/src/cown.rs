//! `Cown` and `PinnedCown`: Python handles to cowns whose values are Python
//! objects.
//!
//! The protocol state lives in a [`CownCore`] shared (by `Arc`) between the
//! Python object and the behaviors that request it, so releasing a cown
//! never touches a Python object. The value is a `Py<PyAny>` in the core,
//! reached only by a thread that holds the cown (a behavior whose request
//! set names it, or a short hold from outside any behavior) while attached
//! to the interpreter, and, for a pinned cown, only on the main thread.

use crate::behavior;
use crate::errors;
use crate::primitive::{AtomicBool, AtomicPtr, Ordering};
use crate::runtime::{self, Graveyard};
use boc::engine::CownHeader;
use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};
use std::cell::UnsafeCell;
use std::sync::Arc;

/// What a cown holds.
#[derive(Default)]
pub(crate) struct Slot {
    /// The value, or the exception a producing behavior raised; `None`
    /// stands for Python's `None` (a result cown stores its behavior's
    /// `None` that way, and holds it before the behavior has run).
    pub(crate) value: Option<Py<PyAny>>,
    /// `value` is an exception raised by the behavior that produced it.
    pub(crate) is_exception: bool,
    /// The exception was read (so it is not reported when dropped).
    pub(crate) retrieved: bool,
    /// The producing behavior's name, for the never-retrieved report.
    pub(crate) origin: Option<Arc<str>>,
}

/// The shared part of a cown: the protocol header and the value.
///
/// The slot is reached in three ways, none of which overlaps another:
///
/// 1. By the cown's holder ([`CownCore::slot_mut`]): a behavior whose
///    request set names it, or a short hold from outside any behavior,
///    attached, on the main thread if the cown is pinned. The protocol
///    orders holders (each sees the last one's writes).
/// 2. By the cycle collector, in `__traverse__` (reads) and `__clear__`
///    (which holds the cown, as 1). The collector runs attached while every
///    other attached thread is stopped at a safe point: on a classic build
///    it holds the GIL; on a free-threaded build it stops the world.
/// 3. By [`untrack_if_acyclic`] (reads the value's pointer), on classic
///    builds only, under the GIL.
///
/// 2 and 3 never meet a live `&mut Slot` of another thread because a
/// holder never keeps one across a call into Python or a detach (the only
/// points where it can lose the GIL or be stopped): it computes whatever
/// needs Python first, then takes the slot for plain reads and writes.
/// Keep it that way.
pub(crate) struct CownCore {
    pub(crate) header: CownHeader,
    slot: UnsafeCell<Slot>,
    /// Only ever touched on the main thread.
    pub(crate) pinned: bool,
    /// This is a result cown whose behavior has not run (and, once the
    /// behavior is released, never will). Set (Relaxed) at creation, before
    /// the cown is published; cleared (Relaxed) by the behavior as it
    /// starts, or by any holder assigning a value, while holding the cown;
    /// read (Relaxed) by holders. The protocol's acquisition orders every
    /// access after the previous holder's.
    lost: AtomicBool,
    /// The cown's Python object, while it is untracked by CPython's cycle
    /// collector (see [`untrack_if_acyclic`]); null otherwise. Written and
    /// read only by threads holding the GIL (classic builds), which orders
    /// them; Relaxed.
    wrapper: AtomicPtr<pyo3::ffi::PyObject>,
}

// SAFETY: the slot is reached only in the three ways of the type's docs,
// which never overlap: holders are exclusive and ordered by the protocol,
// and the collector's accesses (and `untrack_if_acyclic`'s) happen while no
// other thread has a live reference into the slot. The other fields are
// atomics or immutable.
unsafe impl Sync for CownCore {}

impl CownCore {
    pub(crate) fn new(value: Option<Py<PyAny>>, pinned: bool) -> Arc<Self> {
        Arc::new(Self {
            header: CownHeader::new(),
            slot: UnsafeCell::new(Slot { value, ..Slot::default() }),
            pinned,
            lost: AtomicBool::new(false),
            wrapper: AtomicPtr::new(std::ptr::null_mut()),
        })
    }

    /// The slot, for reading or writing.
    ///
    /// # Safety
    ///
    /// The caller holds the cown (its running behavior's request set names
    /// it, or it holds it from outside) for as long as the reference lives,
    /// is attached to the interpreter, and is on the main thread if the
    /// cown is pinned.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slot_mut(&self) -> &mut Slot {
        // SAFETY: the caller's hold makes this the only access.
        unsafe { &mut *self.slot.get() }
    }

    pub(crate) fn key(&self) -> u64 {
        self.header.key()
    }

    /// A result cown: empty, and lost until its behavior starts.
    pub(crate) fn new_result() -> Arc<Self> {
        let core = Self::new(None, false);
        core.lost.store(true, Ordering::Relaxed);
        core
    }

    /// Records that the behavior producing this cown has started; called
    /// by that behavior, which holds the cown.
    pub(crate) fn mark_started(&self) {
        self.lost.store(false, Ordering::Relaxed);
    }

    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// The exception on this cown and the name of the behavior that raised
    /// it, if nobody retrieved it (it counts as retrieved from now on). Holds
    /// the cown while it looks; `None` if it cannot (a behavior holds or
    /// waits for it). Attached.
    pub(crate) fn take_unretrieved(&self, py: Python<'_>) -> Option<(Py<PyAny>, Option<Arc<str>>)> {
        let held = self.header.try_acquire()?;
        let taken = {
            // SAFETY: held just above; attached; a result cown (the only kind
            // that holds an exception) is never pinned, and a pinned one is
            // only read on the main thread here. No Python runs while the
            // slot is borrowed (`clone_ref` only counts a reference).
            let slot = unsafe { self.slot_mut() };
            let unretrieved = slot.is_exception && !slot.retrieved && (!self.pinned || crate::thread::is_main_thread());
            if unretrieved {
                slot.retrieved = true;
            }
            unretrieved.then(|| slot.value.as_ref().map(|value| (value.clone_ref(py), slot.origin.clone()))).flatten()
        };
        drop(held);
        taken
    }
}

impl Drop for CownCore {
    fn drop(&mut self) {
        let slot = std::mem::take(self.slot.get_mut());
        let report = slot.is_exception && !slot.retrieved && slot.value.is_some();
        if self.pinned {
            if let Some(value) = slot.value {
                runtime::drop_pinned(value);
            }
        } else if report {
            // A report needs the interpreter, and this drop may run
            // detached: the next boc call on an attached thread writes it.
            runtime::bury(Graveyard { value: slot.value, pinned: false, report, origin: slot.origin });
        }
        // An ordinary value drops here: attached, its reference count goes
        // down now; detached, PyO3 defers that to the next attachment.
    }
}

/// Takes a cown's Python object off CPython's cycle collector while its
/// value cannot reference anything (an int, a string, None...; see
/// [`can_reference`]): programs
/// keep many cowns alive, and every full collection visited each of them.
/// [`track_if_cyclic`] puts it back when a value that can is stored.
///
/// Classic builds only, where the GIL orders this with every write of the
/// value and with the object's deallocation (which forgets it); on a
/// free-threaded build every cown stays tracked. Not for pinned cowns,
/// whose value is only looked at on the main thread.
pub(crate) fn untrack_if_acyclic(cown: &Bound<'_, PyCown>) {
    let core = &cown.get().core;
    if !crate::thread::gil_enabled() || core.pinned || !core.wrapper.load(Ordering::Relaxed).is_null() {
        return;
    }
    // SAFETY: the GIL is held (classic build, attached), so no other thread
    // writes the slot now; only the value's pointer and GC state are read.
    let acyclic = unsafe { &*core.slot.get() }.value.as_ref().is_none_or(|value| !can_reference(value.as_ptr()));
    if acyclic {
        let object = cown.as_ptr();
        // SAFETY: a live object of a GC type (ours); untracking is allowed
        // whether or not it is tracked; the GIL is held.
        unsafe { pyo3::ffi::PyObject_GC_UnTrack(object.cast()) };
        core.wrapper.store(object, Ordering::Relaxed);
    }
}

/// After `value` was stored in `core`: if the cown's object was taken off
/// the cycle collector and `value` can reference other objects, puts it
/// back. Attached.
pub(crate) fn track_if_cyclic(core: &CownCore, value: &Py<PyAny>) {
    let object = core.wrapper.load(Ordering::Relaxed);
    if object.is_null() || !can_reference(value.as_ptr()) {
        return;
    }
    core.wrapper.store(std::ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: non-null only while the object is alive and untracked (its
    // deallocation nulls it), and only on classic builds, where we hold the
    // GIL: nothing deallocates it meanwhile.
    unsafe { pyo3::ffi::PyObject_GC_Track(object.cast()) };
}

/// Whether `object` may ever reference other objects: any object of a type
/// the cycle collector knows (a dict or tuple that is untracked today may
/// be tracked tomorrow); not ints, floats, strings, bytes, None.
fn can_reference(object: *mut pyo3::ffi::PyObject) -> bool {
    // SAFETY: a live object; the caller is attached.
    unsafe { pyo3::ffi::PyObject_IS_GC(object) != 0 }
}

impl Drop for PyCown {
    fn drop(&mut self) {
        // The object is being deallocated: forget it.
        self.core.wrapper.store(std::ptr::null_mut(), Ordering::Relaxed);
        if Arc::strong_count(&self.core) == 1 {
            // The last owner: report an exception nobody retrieved now, while
            // it is whole (reference counting freed this object, so nothing
            // cleared it; the collector's case is `tp_finalize`'s).
            // SAFETY: PyO3 drops a pyclass's value only attached: in its
            // `tp_dealloc`, or when an initializer fails inside a call from
            // Python.
            crate::report::report_if_unretrieved(unsafe { Python::assume_attached() }, &self.core);
        }
    }
}

/// A concurrently-owned value: shared state that behaviors reach one at a
/// time.
///
/// `Cown(value)` wraps any Python object (never copied or pickled). Read
/// and write it with `.value` inside a behavior scheduled on the cown with
/// `@when`, or outside any behavior while the cown is idle. Cowns are
/// hashable and ordered (by creation); `Cown[int]` works for type hints.
#[pyclass(name = "Cown", module = "boc", subclass, frozen, weakref)]
pub(crate) struct PyCown {
    /// Dropped in an attach window: it may own the last handle to the value,
    /// whose `__del__` then runs (on a daemon thread at exit too).
    pub(crate) core: crate::exit::DropsPython<Arc<CownCore>>,
}

impl PyCown {
    pub(crate) fn from_core(core: Arc<CownCore>) -> Self {
        Self { core: crate::exit::DropsPython::new(core) }
    }

    /// Runs `f` on the slot if this thread may touch it now: inside a
    /// behavior that holds the cown, or outside any behavior when the cown
    /// is idle (holding it meanwhile).
    fn with_slot<R>(&self, py: Python<'_>, what: &str, f: impl FnOnce(&mut Slot) -> R) -> PyResult<R> {
        let _entered = crate::exit::enter(py);
        let core = &self.core;
        if core.pinned && !crate::thread::is_main_thread() {
            return Err(PyRuntimeError::new_err(format!(
                "the {what} of {} can only be reached on the main thread, where a pinned value lives. Schedule a \
                 behavior on it with @when; it runs on the main thread when that thread calls pump() or wait().",
                describe(core)
            )));
        }
        if behavior::holds(core) {
            // SAFETY: the running behavior's request set holds the cown; we
            // are attached (we have `py`), on main if it is pinned (checked).
            return Ok(f(unsafe { core.slot_mut() }));
        }
        if behavior::in_behavior() {
            return Err(PyRuntimeError::new_err(format!(
                "{} is not in the request set of the running behavior, so its {what} cannot be reached here. \
                 Add it to the @when(...) arguments of this behavior.",
                describe(core)
            )));
        }
        let Some(held) = core.header.try_acquire() else {
            return Err(PyRuntimeError::new_err(format!(
                "{} is busy: a behavior holds it or waits for it, so its {what} cannot be reached from outside a \
                 behavior now. Read it inside a behavior (@when), or after boc.wait().",
                describe(core)
            )));
        };
        // SAFETY: held from outside any behavior until `held` drops below;
        // attached; on main if pinned (checked above).
        let result = f(unsafe { core.slot_mut() });
        // Releasing may hand the cown to a queued behavior: protocol work,
        // which calls no Python and may run attached (SPEC §5 rule 2).
        drop(held);
        Ok(result)
    }

    fn read(&self, py: Python<'_>, slot: &mut Slot) -> PyResult<Py<PyAny>> {
        if self.core.is_lost() {
            return Err(PyRuntimeError::new_err(format!(
                "{} has no value: the behavior that produces it was dropped without running (the runtime stopped \
                 before it could run)",
                describe(&self.core)
            )));
        }
        if slot.is_exception {
            slot.retrieved = true;
        }
        Ok(slot.value.as_ref().map_or_else(|| py.None(), |value| value.clone_ref(py)))
    }
}

/// `Cown #<key>` (or `PinnedCown #<key>`), how messages name a cown.
pub(crate) fn describe(core: &CownCore) -> String {
    format!("{} #{}", if core.pinned { "PinnedCown" } else { "Cown" }, core.key())
}

#[pymethods]
impl PyCown {
    #[new]
    fn new(py: Python<'_>, value: Py<PyAny>) -> Self {
        let _entered = crate::exit::enter(py);
        Self::from_core(CownCore::new(Some(value), false))
    }

    /// The value. Readable and writable inside a behavior whose request set
    /// holds the cown, or outside any behavior while no behavior holds or
    /// waits for it; otherwise `RuntimeError`.
    #[getter]
    fn get_value(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with_slot(py, "value", |slot| self.read(py, slot))?
    }

    #[setter]
    fn set_value(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<()> {
        crate::exit::call(py, || {
            let old = self.with_slot(py, "value", |slot| {
                track_if_cyclic(&self.core, &value);
                let old = slot.value.replace(value);
                slot.is_exception = false;
                slot.retrieved = false;
                self.core.lost.store(false, Ordering::Relaxed);
                old
            })?;
            // Dropped after the hold is released: a `__del__` it triggers may
            // itself use the cown.
            drop(old);
            Ok(())
        })
    }

    /// `del cown.value`: refused (a cown always holds a value). Without
    /// this deleter PyO3 0.28 answers "property has no deleter"; a setter
    /// taking `Option` would instead receive `None` for `cown.value = None`.
    #[deleter]
    fn delete_value(&self) -> PyResult<()> {
        Err(PyAttributeError::new_err(format!(
            "the value of {} cannot be deleted: a cown always holds a value. Assign None instead (cown.value = None).",
            describe(&self.core)
        )))
    }

    /// True if the value is an exception raised by the behavior that
    /// produced this cown. Looking counts as retrieving it: a program that
    /// checked is not told again that it never looked.
    #[getter]
    fn exception(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_slot(py, "exception flag", |slot| {
            slot.retrieved |= slot.is_exception;
            slot.is_exception
        })
    }

    /// The value, or raise the exception the producing behavior raised.
    fn unwrap(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (value, is_exception) =
            self.with_slot(py, "value", |slot| Ok::<_, PyErr>((self.read(py, slot)?, slot.is_exception)))??;
        if is_exception {
            return Err(PyErr::from_value(value.into_bound(py)));
        }
        Ok(value)
    }

    /// True while the running behavior on this thread holds the cown.
    #[getter]
    fn acquired(&self) -> bool {
        behavior::holds(&self.core)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        // The value's repr runs Python.
        let _entered = crate::exit::enter(py);
        let name = describe(&self.core);
        let readable = !self.core.pinned || crate::thread::is_main_thread();
        if readable && (behavior::holds(&self.core) || (!behavior::in_behavior() && self.core.header.is_idle())) {
            let value = self.with_slot(py, "value", |slot| {
                slot.value.as_ref().map(|value| value.clone_ref(py)).filter(|_| !self.core.is_lost())
            });
            if let Ok(Some(value)) = value {
                let repr = value.bind(py).repr().map_or_else(|_| "<unrepresentable>".to_owned(), |r| r.to_string());
                return format!("<{name} value={repr}>");
            }
        }
        let state = if behavior::holds(&self.core) {
            "acquired"
        } else if self.core.header.is_idle() {
            "idle"
        } else {
            "busy"
        };
        format!("<{name} {state}>")
    }

    fn __hash__(&self) -> u64 {
        self.core.key()
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: pyo3::basic::CompareOp) -> Py<PyAny> {
        let py = other.py();
        let Ok(other) = other.cast::<PyCown>() else { return py.NotImplemented() };
        let ordering = self.core.key().cmp(&other.get().core.key());
        op.matches(ordering)
            .into_pyobject(py)
            .map_or_else(|_| py.NotImplemented(), |b| b.to_owned().into_any().unbind())
    }

    /// `Cown[int]` for type checkers.
    #[classmethod]
    fn __class_getitem__(cls: &Bound<'_, PyType>, item: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = cls.py();
        let alias = py.import("types")?.getattr("GenericAlias")?;
        Ok(alias.call1((cls, item))?.unbind())
    }

    /// A cown is a handle to shared state: copying the handle names the
    /// same cown.
    fn __copy__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __deepcopy__(slf: Py<Self>, _memo: &Bound<'_, PyDict>) -> Py<Self> {
        slf
    }

    fn __reduce__(&self) -> PyResult<Py<PyTuple>> {
        Err(PyTypeError::new_err(format!(
            "{} cannot be pickled: a cown is a handle to state shared by the threads of this process, not a value. \
             Pickle its value instead (inside a behavior, or after boc.wait()).",
            describe(&self.core)
        )))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // A pinned value is shown to the collector only when it runs on the
        // main thread: elsewhere it would clear the value's cycle, off the
        // main thread. A collection on another thread sees the value as
        // held from outside; the next one on the main thread frees it.
        if self.core.pinned && !crate::thread::is_main_thread() {
            return Ok(());
        }
        // SAFETY: access 2 of `CownCore`'s docs: no other thread has a live
        // reference into the slot while the collector runs. Only the
        // value's pointer is read.
        let slot = unsafe { &*self.core.slot.get() };
        if let Some(value) = &slot.value {
            visit.call(value)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        // A pinned value is left to its core's drop, which sends it to the
        // main thread. A cown some behavior holds or waits for is left alone
        // (its holder may be about to write it).
        if self.core.pinned {
            return;
        }
        let Some(held) = self.core.header.try_acquire() else { return };
        // SAFETY: held just above; the collector's thread is attached.
        let value = unsafe { self.core.slot_mut() }.value.take();
        drop(held);
        // Dropped once the slot is no longer borrowed: it may run `__del__`.
        drop(value);
    }
}

/// A cown whose value lives on, and is only ever touched from, the main
/// thread: for GUI widgets, GL contexts, asyncio objects.
///
/// Every behavior naming a pinned cown runs on the main thread, during
/// `pump()` or `wait()` there. Constructible only on the main thread;
/// `.value` elsewhere raises `RuntimeError`; the handle itself may go
/// anywhere. Cannot be pickled or copied.
#[pyclass(name = "PinnedCown", module = "boc", extends = PyCown, frozen)]
pub(crate) struct PyPinnedCown;

#[pymethods]
impl PyPinnedCown {
    #[new]
    fn new(value: Py<PyAny>) -> PyResult<PyClassInitializer<Self>> {
        if !crate::thread::is_main_thread() {
            return Err(PyRuntimeError::new_err(
                "a PinnedCown can only be created on the main thread, where its value lives. Create it there and \
                 pass the handle to other threads (they may schedule on it; its behaviors run on the main thread).",
            ));
        }
        Ok(PyClassInitializer::from(PyCown::from_core(CownCore::new(Some(value), true))).add_subclass(Self))
    }

    fn __copy__(&self) -> PyResult<()> {
        Err(errors::pinned_copy("copied (copy.copy)"))
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(errors::pinned_copy("deep-copied (copy.deepcopy)"))
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(errors::pinned_copy("pickled"))
    }

    fn __reduce_ex__(&self, _protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(errors::pinned_copy("pickled"))
    }
}
