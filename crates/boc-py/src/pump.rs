//! `pump`: running main-side behaviors on the main thread, within a budget.

use crate::args::{DeadlineMs, MaxBehaviors, RaiseOnError, given};
use crate::behavior::{self, MainContext};
use crate::errors;
use crate::exit;
use crate::runtime::{RUNTIME, Runtime, drain_graveyard};
use crate::thread::is_main_thread;
use boc::Budget;
use boc::engine::Ready;
use boc::engine::{MainRunner, Outcome, PumpError};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::time::Instant;

/// Run ready main-side behaviors on the main thread, within a budget, and
/// return `(executed, deadline_reached, raised, pending)`.
///
/// Use `boc.pump()`, which returns a `PumpResult`; see its docstring.
#[pyfunction]
#[pyo3(signature = (max_behaviors = None, deadline_ms = None, raise_on_error = None))]
pub(crate) fn pump(
    py: Python<'_>,
    max_behaviors: Option<&Bound<'_, PyAny>>,
    deadline_ms: Option<&Bound<'_, PyAny>>,
    raise_on_error: Option<&Bound<'_, PyAny>>,
) -> PyResult<(usize, bool, usize, usize)> {
    exit::call(py, || {
        let mut budget = Budget::unbounded();
        if let Some(MaxBehaviors(max_behaviors)) = given(max_behaviors)? {
            budget = budget.with_max_behaviors(max_behaviors);
        }
        // A deadline too far to represent is no deadline.
        let within = given(deadline_ms)?.and_then(|DeadlineMs(within)| within);
        if let Some(deadline) = within.and_then(|within| Instant::now().checked_add(within)) {
            budget = budget.with_deadline(deadline);
        }
        let raise_on_error = given(raise_on_error)?.is_some_and(|RaiseOnError(flag)| flag);
        if !is_main_thread() {
            return Err(errors::off_main("pump"));
        }
        let Some(runtime) = RUNTIME.get() else { return Ok((0, false, 0, 0)) };
        drain_graveyard(py, true);
        let report = pump_main(py, runtime, budget, raise_on_error, "pump")?;
        Ok((report.executed, report.deadline_reached, report.raised, report.pending))
    })
}

/// Pumps the main-side queue on the main thread with `budget`.
pub(crate) fn pump_main(
    py: Python<'_>,
    runtime: &Runtime,
    budget: Budget,
    raise_on_error: bool,
    operation: &str,
) -> PyResult<boc::PumpReport> {
    let runner = MainSide { py, raise_on_error };
    match runtime.engine.pump(&runner, budget) {
        Ok(report) => Ok(report),
        Err(PumpError::Refused(error)) => Err(errors::pin(operation, &error)),
        Err(PumpError::Stopped { payload, .. }) => match payload.downcast::<PyErr>() {
            Ok(error) => Err(*error),
            Err(_) => Err(PyRuntimeError::new_err("a main-side behavior stopped the pump")),
        },
        Err(other) => Err(PyRuntimeError::new_err(format!("{operation}() failed: {other}"))),
    }
}

/// Runs main-side behaviors for `pump`, on the main thread, attached.
struct MainSide<'py> {
    py: Python<'py>,
    raise_on_error: bool,
}

impl MainRunner<Ready> for MainSide<'_> {
    fn run(&self, behavior: Ready) -> Outcome {
        let context = MainContext::enter(self.raise_on_error);
        let failed = behavior::run_and_release(self.py, behavior);
        match context.take_stop() {
            Some(error) => Outcome::Stop(Box::new(error)),
            None if failed => Outcome::Failed,
            None => Outcome::Ok,
        }
    }
}
