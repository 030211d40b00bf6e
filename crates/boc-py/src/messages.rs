//! `send`, `receive`, `drain` and `TIMEOUT`: tagged message queues shared
//! by every thread of the process (boc-msg's `Mailbox`), carrying plain
//! Python objects (never pickled, never copied).

use crate::args::{After, Timeout, given, type_name};
use crate::thread::SIGNAL_CHECK_INTERVAL;
use boc::Mailbox;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyString, PyTuple};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Longest a key or tag may be, in UTF-8 bytes.
pub(crate) const MAX_KEY_BYTES: usize = 255;

static MAILBOX: LazyLock<Mailbox<String, Py<PyAny>>> = LazyLock::new(Mailbox::new);

/// The mailbox's lock, which a receiver takes detached as it wakes up,
/// held across a fork by [`crate::fork`]. The child keeps the messages.
pub(crate) fn hold_for_fork() -> boc::engine::MailboxHold<'static, String, Py<PyAny>> {
    MAILBOX.hold()
}

/// `TIMEOUT`, what `receive` returns in place of a tag when it times out.
static TIMEOUT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A named, unique marker object (`boc.TIMEOUT`, `boc.REMOVED`).
#[pyclass(name = "Sentinel", module = "boc", frozen)]
pub(crate) struct Sentinel {
    name: &'static str,
}

#[pymethods]
impl Sentinel {
    fn __repr__(&self) -> String {
        format!("boc.{}", self.name)
    }

    fn __reduce__(&self) -> &'static str {
        // Pickles by name, so the sentinel stays unique.
        self.name
    }
}

/// A new sentinel object named `name`.
pub(crate) fn sentinel(py: Python<'_>, name: &'static str) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, Sentinel { name })?.into_any())
}

/// Adds `TIMEOUT` to the module.
pub(crate) fn init(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let timeout = TIMEOUT.get_or_try_init(py, || sentinel(py, "TIMEOUT"))?;
    module.add("TIMEOUT", timeout.clone_ref(py))
}

/// A tag or key: a non-empty `str` of at most [`MAX_KEY_BYTES`] bytes.
pub(crate) fn key_arg(what: &str, key: &Bound<'_, PyAny>) -> PyResult<String> {
    let Ok(key) = key.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!("{what} must be a str, not {}", type_name(key))));
    };
    let key = key.to_str()?;
    if key.is_empty() {
        return Err(PyValueError::new_err(format!("{what} must not be empty")));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(PyValueError::new_err(format!(
            "{what} must be at most {MAX_KEY_BYTES} bytes in UTF-8, not {} ({}...)",
            key.len(),
            key.chars().take(20).collect::<String>()
        )));
    }
    Ok(key.to_owned())
}

/// `tags`: one tag, or a non-empty list or tuple of them.
fn tags_arg(tags: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if tags.is_instance_of::<PyString>() {
        return Ok(vec![key_arg("a tag", tags)?]);
    }
    let items = if let Ok(list) = tags.cast::<PyList>() {
        list.iter().collect::<Vec<_>>()
    } else if let Ok(tuple) = tags.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return Err(PyTypeError::new_err(format!(
            "tags must be a str or a list or tuple of str, not {}",
            type_name(tags)
        )));
    };
    if items.is_empty() {
        return Err(PyValueError::new_err("tags must name at least one tag"));
    }
    items.iter().map(|tag| key_arg("each tag", tag)).collect()
}

/// Sends a message: queues `contents` (any object, passed as is) under
/// `tag` (a non-empty str), for a `receive` on that tag from any thread.
#[pyfunction]
pub(crate) fn send(py: Python<'_>, tag: &Bound<'_, PyAny>, contents: Py<PyAny>) -> PyResult<()> {
    crate::exit::call(py, || {
        MAILBOX.send(key_arg("tag", tag)?, contents);
        Ok(())
    })
}

/// Receives a message: the oldest one queued under any of `tags` (a str, or
/// a list or tuple of str), as `(tag, contents)`.
///
/// Blocks until one arrives, releasing the GIL, for at most `timeout`
/// seconds (`None`: forever). On timeout it returns `after()` if `after` is
/// given, else `(TIMEOUT, None)`. Works anywhere, including inside
/// behaviors; inside a main-side behavior it blocks the host's event loop
/// meanwhile, so give it a timeout there. Ctrl-C interrupts it on the main
/// thread.
#[pyfunction]
#[pyo3(signature = (tags, timeout = None, after = None))]
pub(crate) fn receive(
    py: Python<'_>,
    tags: &Bound<'_, PyAny>,
    timeout: Option<&Bound<'_, PyAny>>,
    after: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    crate::exit::call(py, || {
        let tags = tags_arg(tags)?;
        let timeout = Timeout::of(timeout)?;
        let after = given::<After<'_>>(after)?;
        let message = match MAILBOX.try_receive(&tags) {
            Some(message) => Some(message),
            None if timeout == Some(Duration::ZERO) => None,
            None => wait_for_message(py, &tags, timeout)?,
        };
        match message {
            Some((tag, contents)) => Ok((tag, contents).into_pyobject(py)?.into_any().unbind()),
            None => match after {
                Some(After(after)) => Ok(after.call0()?.unbind()),
                None => {
                    let timeout = TIMEOUT.get(py).expect("TIMEOUT is made at import").clone_ref(py);
                    Ok((timeout, py.None()).into_pyobject(py)?.into_any().unbind())
                }
            },
        }
    })
}

/// Blocks (detached) until a message for `tags` arrives or `timeout`
/// passes; on the main thread, in slices, looking for signals between them.
fn wait_for_message(
    py: Python<'_>,
    tags: &[String],
    timeout: Option<Duration>,
) -> PyResult<Option<(String, Py<PyAny>)>> {
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    let on_main = crate::thread::is_main_thread();
    loop {
        let remaining = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        let slice = if on_main {
            Some(remaining.map_or(SIGNAL_CHECK_INTERVAL, |remaining| remaining.min(SIGNAL_CHECK_INTERVAL)))
        } else {
            remaining
        };
        if let Some(message) = crate::exit::detach(py, || MAILBOX.receive(tags, slice)) {
            return Ok(Some(message));
        }
        if remaining.is_some_and(|remaining| remaining <= slice.unwrap_or(Duration::MAX)) {
            return Ok(None);
        }
        if on_main {
            py.check_signals()?;
        }
    }
}

/// Removes every message queued under any of `tags` (a str, or a list or
/// tuple of str) and returns them as a list of `(tag, contents)`, oldest
/// first.
#[pyfunction]
pub(crate) fn drain<'py>(py: Python<'py>, tags: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    crate::exit::call(py, || {
        let tags = tags_arg(tags)?;
        let messages = MAILBOX.drain(&tags);
        PyList::new(py, messages)
    })
}
