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

/// The types below are the rules for the kinds of argument of the API, one
/// each, as `FromPyObject` impls. The functions take each argument raw
/// (`Option<&Bound<PyAny>>`, absent and `None` alike being `None`) and convert
/// it with [`given`] inside `exit::call`, not through their signatures, for two
/// reasons: a conversion may run Python (an `int` subclass's `__gt__` or
/// `__str__`), which a foreign thread must only do inside its exit window
/// (see `exit.rs`: re-taking the GIL during finalization unwinds the thread);
/// and PyO3 would put `argument '<name>': ` before a `TypeError` from a
/// conversion it runs itself, where every message of the API names its
/// argument in one way: `timeout must be a number of seconds (or None to wait
/// forever), not str`.
macro_rules! from_py {
    ($type:ty, |$value:ident| $body:expr) => {
        impl<'a, 'py> FromPyObject<'a, 'py> for $type {
            type Error = PyErr;

            fn extract(value: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                let $value: &Bound<'py, PyAny> = &value;
                $body
            }
        }
    };
}

/// `value` converted by `T`'s rule; `None` if the argument was absent or `None`
/// (what that means is the function's to say).
pub(crate) fn given<'py, T>(value: Option<&Bound<'py, PyAny>>) -> PyResult<Option<T>>
where
    T: for<'a> FromPyObject<'a, 'py, Error = PyErr>,
{
    value.filter(|value| !value.is_none()).map(|value| value.extract()).transpose()
}

/// `start`'s `workers`: an `int` from 0 to [`MAX_WORKERS`], never a `bool`.
/// (`None`: the default count.)
pub(crate) struct Workers(pub(crate) usize);

from_py!(Workers, |workers| {
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
        .map(Workers)
        .ok_or_else(|| PyValueError::new_err(format!("workers must be between 0 and {MAX_WORKERS}, not {workers}")))
});

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

/// A `timeout` in seconds, a number >= 0; `Timeout(None)` if it is too large
/// to represent (`inf`, `1e300`, `10**400`): as good as forever, as is the
/// argument `None` (see [`Timeout::of`]).
pub(crate) struct Timeout(Option<Duration>);

impl Timeout {
    /// How long a `timeout` argument waits: `None` is forever.
    pub(crate) fn of(timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
        Ok(given::<Self>(timeout)?.and_then(|Self(within)| within))
    }
}

from_py!(Timeout, |timeout| {
    let seconds = number("timeout", "a number of seconds (or None to wait forever)", timeout)?;
    if seconds.is_nan() || seconds < 0.0 {
        return Err(PyValueError::new_err(format!(
            "timeout must be a number of seconds >= 0 (or None to wait forever), not {timeout}"
        )));
    }
    Ok(Self(Duration::try_from_secs_f64(seconds).ok()))
});

/// A positive number of milliseconds; `None` if it is too large to
/// represent (`inf`, `1e300`, `10**400`), which callers read as unbounded.
fn millis(name: &str, value: &Bound<'_, PyAny>, none_means: &str) -> PyResult<Option<Duration>> {
    let what = format!("a positive number of milliseconds (or None {none_means})");
    let millis = number(name, &what, value)?;
    if millis.is_nan() || millis <= 0.0 {
        return Err(PyValueError::new_err(format!("{name} must be {what}, not {value}")));
    }
    Ok(Duration::try_from_secs_f64(millis / 1000.0).ok())
}

/// `pump`'s `deadline_ms`: a positive number of milliseconds; `DeadlineMs(None)`
/// if too large to represent, which is no deadline (as is the argument `None`).
pub(crate) struct DeadlineMs(pub(crate) Option<Duration>);

from_py!(DeadlineMs, |deadline_ms| Ok(Self(millis("deadline_ms", deadline_ms, "for no deadline")?)));

/// `pump`'s `max_behaviors`: a positive `int`, never a `bool`; one too large
/// for a count is no practical limit. (`None`: no limit.)
pub(crate) struct MaxBehaviors(pub(crate) usize);

from_py!(MaxBehaviors, |bound| {
    let what = "a positive int (or None for no limit)";
    if bound.is_instance_of::<PyBool>() || !bound.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("max_behaviors must be {what}, not {}", type_name(bound))));
    }
    if !bound.gt(0)? {
        return Err(PyValueError::new_err(format!("max_behaviors must be {what}, not {bound}")));
    }
    Ok(Self(bound.extract::<usize>().unwrap_or(usize::MAX)))
});

/// `pump`'s `raise_on_error`: a `bool`, nothing merely truthy. (`None`: `False`.)
pub(crate) struct RaiseOnError(pub(crate) bool);

from_py!(RaiseOnError, |flag| match flag.cast::<PyBool>() {
    Ok(flag) => Ok(Self(flag.is_true())),
    Err(_) => Err(PyTypeError::new_err(format!("raise_on_error must be a bool, not {}", type_name(flag)))),
});

/// `set_pump_watchdog`'s `warn_ms`: a threshold; one too large to represent
/// is never reached. (`None`: the watchdog off; absent: the default, see
/// [`Unconverted`].)
pub(crate) struct WarnMs(pub(crate) Duration);

from_py!(WarnMs, |warn_ms| Ok(Self(millis("warn_ms", warn_ms, "to turn the watchdog off")?.unwrap_or(Duration::MAX))));

/// An argument whose default is not `None` (`warn_ms`), taken raw in the
/// signature, to be converted by [`given`] later: `Default` when absent. Its
/// own conversion runs no Python.
pub(crate) enum Unconverted<'py> {
    Default,
    Given(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Unconverted<'py> {
    type Error = PyErr;

    fn extract(value: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Self::Given(value.to_owned()))
    }
}

/// A callable argument; `what` says what it must be, for the `TypeError`.
fn callable<'py>(value: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyAny>> {
    if value.is_callable() {
        Ok(value.clone())
    } else {
        Err(PyTypeError::new_err(format!("{what}, not {}", type_name(value))))
    }
}

/// `receive`'s `after`: called when the timeout expires. (`None`: none.)
pub(crate) struct After<'py>(pub(crate) Bound<'py, PyAny>);

impl<'a, 'py> FromPyObject<'a, 'py> for After<'py> {
    type Error = PyErr;

    fn extract(value: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        callable(&value, "after must be a callable taking no arguments (or None)").map(Self)
    }
}

/// `set_pump_watchdog`'s `on_starve`: called with each report. (`None`: the
/// `boc` logger.)
pub(crate) struct OnStarve<'py>(pub(crate) Bound<'py, PyAny>);

impl<'a, 'py> FromPyObject<'a, 'py> for OnStarve<'py> {
    type Error = PyErr;

    fn extract(value: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        callable(&value, "on_starve must be a callable taking the message (or None for the boc logger)").map(Self)
    }
}
