//! Argument checks of the Python API: what each argument accepts, and the
//! `TypeError`/`ValueError` that says what was wrong.

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};
use std::time::Duration;

/// Most workers `start` accepts: far beyond any useful count, short of
/// exhausting threads.
pub(crate) const MAX_WORKERS: usize = 1024;

pub(crate) fn type_name(object: &Bound<'_, PyAny>) -> String {
    object.get_type().name().map_or_else(|_| "an object".to_owned(), |name| name.to_string())
}

/// An optional callable argument: `None` (or absent) is `None`; anything
/// else must be callable, or `TypeError` says `{expected}, not <type>`.
pub(crate) fn optional_callable<'a, 'py>(
    value: Option<&'a Bound<'py, PyAny>>,
    expected: &str,
) -> PyResult<Option<&'a Bound<'py, PyAny>>> {
    match value.filter(|value| !value.is_none()) {
        Some(value) if !value.is_callable() => {
            Err(PyTypeError::new_err(format!("{expected}, not {}", type_name(value))))
        }
        value => Ok(value),
    }
}

pub(crate) fn worker_count(workers: &Bound<'_, PyAny>) -> PyResult<usize> {
    if workers.is_instance_of::<PyBool>() || !workers.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "workers must be an int (or None for the default), not {}",
            type_name(workers)
        )));
    }
    let n_workers: i128 = workers.extract().unwrap_or(-1);
    usize::try_from(n_workers)
        .ok()
        .filter(|n| *n <= MAX_WORKERS)
        .ok_or_else(|| PyValueError::new_err(format!("workers must be between 0 and {MAX_WORKERS}, not {workers}")))
}

/// A number argument: an `int` or a `float`, never a `bool`. An `int` too
/// large for a float is an infinity of its sign: every bound of the API
/// reads "too large to represent" as "unbounded".
fn number(name: &str, what: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>() || !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>()) {
        return Err(PyTypeError::new_err(format!("{name} must be {what}, not {}", type_name(value))));
    }
    match value.extract::<f64>() {
        Err(error) if error.is_instance_of::<PyOverflowError>(value.py()) => {
            Ok(if value.gt(0)? { f64::INFINITY } else { f64::NEG_INFINITY })
        }
        other => other,
    }
}

/// A timeout in seconds: `None` (forever), or a number >= 0; one too large
/// to represent (`inf`, `1e300`, `10**400`) is as good as forever.
pub(crate) fn timeout_arg(timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(timeout) = timeout.filter(|timeout| !timeout.is_none()) else { return Ok(None) };
    let seconds = number("timeout", "a number of seconds (or None to wait forever)", timeout)?;
    if seconds.is_nan() || seconds < 0.0 {
        return Err(PyValueError::new_err(format!(
            "timeout must be a number of seconds >= 0 (or None to wait forever), not {timeout}"
        )));
    }
    Ok(Duration::try_from_secs_f64(seconds).ok())
}

/// A positive number of milliseconds; `None` if it is too large to
/// represent (`inf`, `1e300`, `10**400`), which callers read as unbounded.
pub(crate) fn millis_arg(name: &str, value: &Bound<'_, PyAny>, none_means: &str) -> PyResult<Option<Duration>> {
    let what = format!("a positive number of milliseconds (or None {none_means})");
    let millis = number(name, &what, value)?;
    if millis.is_nan() || millis <= 0.0 {
        return Err(PyValueError::new_err(format!("{name} must be {what}, not {value}")));
    }
    Ok(Duration::try_from_secs_f64(millis / 1000.0).ok())
}

pub(crate) fn max_behaviors_arg(bound: &Bound<'_, PyAny>) -> PyResult<usize> {
    let what = "a positive int (or None for no limit)";
    if bound.is_instance_of::<PyBool>() || !bound.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("max_behaviors must be {what}, not {}", type_name(bound))));
    }
    if !bound.gt(0)? {
        return Err(PyValueError::new_err(format!("max_behaviors must be {what}, not {bound}")));
    }
    // A positive int too large for a count means no practical limit.
    Ok(bound.extract::<usize>().unwrap_or(usize::MAX))
}

/// `set_pump_watchdog`'s `warn_ms`: a threshold, or `None` for off.
pub(crate) enum WarnMs {
    Off,
    After(Duration),
}

impl<'a, 'py> FromPyObject<'a, 'py> for WarnMs {
    type Error = PyErr;

    fn extract(warn_ms: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if warn_ms.is_none() {
            return Ok(Self::Off);
        }
        // A threshold too large to represent is never reached.
        Ok(Self::After(millis_arg("warn_ms", &warn_ms, "to turn the watchdog off")?.unwrap_or(Duration::MAX)))
    }
}
