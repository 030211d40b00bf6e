//! The noticeboard: `notice_write`, `notice_update`, `notice_delete`,
//! `notice_read`, `noticeboard()` and `REMOVED`, over boc-msg's
//! copy-on-write `Noticeboard` holding plain Python objects.
//!
//! Inside a behavior the first read takes a snapshot that the rest of the
//! behavior sees (its own writes included); the next behavior, even on the
//! same thread in the same pump, takes a fresh one ([`behavior`] clears it).
//! Outside behaviors every read is fresh.

use crate::args::type_name;
use crate::behavior;
use crate::messages::{key_arg, sentinel};
use boc::{Change, Noticeboard, Snapshot};
use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;
use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

/// A value on the board: shared by snapshots without touching Python.
type Value = Arc<Py<PyAny>>;
type BoardSnapshot = Snapshot<String, Value>;

static BOARD: LazyLock<Noticeboard<String, Value>> = LazyLock::new(Noticeboard::new);

/// `REMOVED`: returned by a `notice_update` function to delete the key.
static REMOVED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

thread_local! {
    /// The snapshot the running behavior took with its first read.
    static BEHAVIOR_SNAPSHOT: RefCell<Option<BoardSnapshot>> = const { RefCell::new(None) };
    /// The keys whose `notice_update` function is running on this thread
    /// (updates of other keys may nest inside one).
    static UPDATING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Refuses a write to `key` from inside the function of a `notice_update`
/// of that same key on this thread: each such write would make the update
/// retry, and the function write again, forever.
fn refuse_write_while_updating(key: &str) -> PyResult<()> {
    if UPDATING.with_borrow(|keys| keys.iter().any(|updating| updating == key)) {
        return Err(PyRuntimeError::new_err(format!(
            "the function given to notice_update({key:?}, ...) cannot write {key:?} itself: every write to the \
             key makes the update call the function again, so it would never finish. Return the new value \
             (or boc.REMOVED) from the function instead."
        )));
    }
    Ok(())
}

/// Marks `key` as being updated on this thread while its `notice_update`
/// runs.
struct Updating;

impl Updating {
    fn enter(key: &str) -> Self {
        UPDATING.with_borrow_mut(|keys| keys.push(key.to_owned()));
        Self
    }
}

impl Drop for Updating {
    fn drop(&mut self) {
        UPDATING.with_borrow_mut(Vec::pop);
    }
}

/// Adds `REMOVED` to the module.
pub(crate) fn init(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let removed = REMOVED.get_or_try_init(py, || sentinel(py, "REMOVED"))?;
    module.add("REMOVED", removed.clone_ref(py))
}

/// Forgets the running behavior's snapshot; called as a behavior starts
/// and ends on this thread.
pub(crate) fn forget_behavior_snapshot() {
    // `take` rather than a borrow: dropping the snapshot may drop values,
    // and their `__del__` may read the board.
    let snapshot = BEHAVIOR_SNAPSHOT.with(RefCell::take);
    drop(snapshot);
}

/// The snapshot this read sees: the behavior's (taken now if this is its
/// first read), or a fresh one outside behaviors.
fn snapshot() -> BoardSnapshot {
    if !behavior::in_behavior() {
        return BOARD.snapshot();
    }
    BEHAVIOR_SNAPSHOT.with(|cached| cached.borrow_mut().get_or_insert_with(|| BOARD.snapshot()).clone())
}

/// Writes `value` (any object, stored as is) under `key` (a non-empty str
/// of at most 255 UTF-8 bytes). Atomic; behaviors scheduled after the write
/// returns see it.
#[pyfunction]
pub(crate) fn notice_write(py: Python<'_>, key: &Bound<'_, PyAny>, value: Py<PyAny>) -> PyResult<()> {
    crate::exit::call(py, || {
        let key = key_arg("a noticeboard key", key)?;
        refuse_write_while_updating(&key)?;
        let previous = BOARD.write(key, Arc::new(value));
        drop(previous);
        Ok(())
    })
}

/// Atomically replaces the value under `key` with `fn(current)`, where
/// `current` is the value or `default` if the key is absent. If `fn`
/// returns `REMOVED` the key is deleted. `fn` runs on the calling thread,
/// without any lock held, and runs again if another write to this key
/// landed meanwhile: keep it a pure function of its argument. An exception
/// from `fn` propagates and leaves the board unchanged.
#[pyfunction]
#[pyo3(signature = (key, r#fn, default = None))]
pub(crate) fn notice_update(
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    r#fn: &Bound<'_, PyAny>,
    default: Option<Py<PyAny>>,
) -> PyResult<()> {
    crate::exit::call(py, || {
        let key = key_arg("a noticeboard key", key)?;
        if !r#fn.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "notice_update() needs a callable taking the current value and returning the new one, not {}",
                type_name(r#fn)
            )));
        }
        let default = default.unwrap_or_else(|| py.None());
        let removed = REMOVED.get(py).expect("REMOVED is made at import");
        refuse_write_while_updating(&key)?;
        let _updating = Updating::enter(&key);
        let updated = BOARD.try_update(key, |current| {
            let current = current.map_or(&default, |value| &**value);
            let new = r#fn.call1((current.clone_ref(py),))?;
            Ok::<_, PyErr>(if new.is(removed) { Change::Remove } else { Change::Set(Arc::new(new.unbind())) })
        })?;
        drop(updated);
        Ok(())
    })
}

/// Deletes `key` from the board (nothing happens if it is absent).
#[pyfunction]
pub(crate) fn notice_delete(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
    crate::exit::call(py, || {
        let key = key_arg("a noticeboard key", key)?;
        refuse_write_while_updating(&key)?;
        let previous = BOARD.delete(key.as_str());
        drop(previous);
        Ok(())
    })
}

/// The value under `key`, or `default` if it is absent. Inside a behavior
/// it reads the behavior's snapshot (taken by its first read).
#[pyfunction]
#[pyo3(signature = (key, default = None))]
pub(crate) fn notice_read(py: Python<'_>, key: &Bound<'_, PyAny>, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    crate::exit::call(py, || {
        let key = key_arg("a noticeboard key", key)?;
        Ok(match snapshot().get(key.as_str()) {
            Some(value) => value.clone_ref(py),
            None => default.unwrap_or_else(|| py.None()),
        })
    })
}

/// A read-only view of the board at one instant; `boc.noticeboard()` wraps
/// it in a `collections.abc.Mapping`.
#[pyclass(name = "NoticeboardSnapshot", module = "boc", frozen)]
pub(crate) struct PySnapshot {
    /// Dropped in an attach window: it may hold the last handles to values
    /// (`exit::DropsPython`).
    snapshot: crate::exit::DropsPython<BoardSnapshot>,
}

#[pymethods]
impl PySnapshot {
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(name) = key.extract::<&str>() else { return Err(PyKeyError::new_err(key.clone().unbind())) };
        match self.snapshot.get(name) {
            Some(value) => Ok(value.clone_ref(py)),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> bool {
        key.extract::<&str>().is_ok_and(|key| self.snapshot.contains_key(key))
    }

    fn __len__(&self) -> usize {
        self.snapshot.len()
    }

    /// The keys, as a list (the snapshot never changes).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.snapshot.keys())
    }
}

/// `_noticeboard()`: the snapshot `noticeboard()` wraps.
#[pyfunction]
pub(crate) fn _noticeboard(py: Python<'_>) -> PyResult<PySnapshot> {
    crate::exit::call(py, || Ok(PySnapshot { snapshot: crate::exit::DropsPython::new(snapshot()) }))
}
