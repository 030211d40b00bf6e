//! `start`, `wait`, `quiesce` and `stop`: starting the runtime and waiting
//! for it, on the main thread through boc-pin's wait loop (pumping), off it
//! on the current pool's count; and `_state`.

use crate::args::{Timeout, Workers, given};
use crate::behavior;
use crate::errors;
use crate::exit;
use crate::primitive::Unpoisoned;
use crate::pump::pump_main;
use crate::runtime::{RUNTIME, Runtime, already_running, drain_graveyard, runtime};
use crate::thread::{SIGNAL_CHECK_INTERVAL, is_main_thread};
use boc::Budget;
use boc::engine::Ready;
use boc::engine::{HomeWait, MainQueue, WaitEnd, WaitOutcome};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::time::{Duration, Instant};

/// Start the runtime with `workers` worker threads.
///
/// `None` means the default: the `BOC_WORKERS` environment variable, else
/// the available parallelism minus one (at least one). `0` runs every
/// behavior on the main thread, during `pump()` or `wait()`. Optional:
/// `@when` starts the runtime itself, with the count the last `start` asked
/// for (`start()` goes back to the default). Calling it while running with
/// the same count does nothing; with a different count it raises
/// `RuntimeError` (call `wait()` or `stop()` first).
#[pyfunction]
#[pyo3(signature = (workers = None))]
pub(crate) fn start(py: Python<'_>, workers: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    exit::call(py, || {
        if behavior::in_behavior() {
            return Err(PyRuntimeError::new_err(
                "start() cannot be called from inside a behavior; the runtime is already running there",
            ));
        }
        let n_workers = given::<Workers>(workers)?.map(|Workers(n_workers)| n_workers);
        exit::gate_schedule(py, "start")?;
        let runtime = runtime()?;
        if let Some(running) = runtime.current().filter(|running| !running.is_closed()) {
            return match n_workers {
                Some(n_workers) if n_workers != running.n_workers() => {
                    Err(already_running(running.n_workers(), n_workers))
                }
                _ => {
                    if n_workers.is_some() {
                        *runtime.n_workers.lock().unpoisoned() = n_workers;
                    }
                    Ok(())
                }
            };
        }
        *runtime.n_workers.lock().unpoisoned() = n_workers;
        runtime.start_pool(py, "start", runtime.n_workers()?, n_workers.is_some()).map(drop)
    })
}

/// Block until every scheduled behavior has finished, then stop the worker
/// pool (the next `@when` starts it again).
///
/// On the main thread it runs main-side behaviors while it waits (it
/// pumps), so batch programs need nothing else. `timeout` is in seconds;
/// on expiry `TimeoutError` says what is still waiting. `RuntimeError`
/// inside a behavior. Releases the GIL while blocked; Ctrl-C interrupts it.
#[pyfunction]
#[pyo3(signature = (timeout = None))]
pub(crate) fn wait(py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    exit::call(py, || wait_for_all(py, &Waiting::new("wait", Timeout::of(timeout)?, true)))
}

/// Like `wait()`, but leave the worker pool running.
#[pyfunction]
#[pyo3(signature = (timeout = None))]
pub(crate) fn quiesce(py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    exit::call(py, || wait_for_all(py, &Waiting::new("quiesce", Timeout::of(timeout)?, false)))
}

/// Finish all scheduled work (pumping on the main thread), then stop the
/// worker pool. Loses nothing. Called automatically at interpreter exit.
#[pyfunction]
pub(crate) fn stop(py: Python<'_>) -> PyResult<()> {
    exit::call(py, || wait_for_all(py, &Waiting::new("stop", None, true)))
}

/// What the exit-time stop says when it has waited long.
pub(crate) type Report<'a> = &'a dyn Fn(Python<'_>, &Runtime);

/// How [`wait_for_all`] waits.
pub(crate) struct Waiting<'a> {
    pub(crate) operation: &'a str,
    pub(crate) timeout: Option<Duration>,
    /// Stop the pool once nothing is in flight (else leave it running).
    pub(crate) stop: bool,
    /// Once the wait has lasted this long, on the main thread, calls the
    /// function once (the exit-time stop says what it waits for).
    pub(crate) patience: Option<(Duration, Report<'a>)>,
    /// Drop main-side behaviors instead of running them (the exit-time stop
    /// after an interrupt).
    pub(crate) discard: bool,
}

impl<'a> Waiting<'a> {
    pub(crate) fn new(operation: &'a str, timeout: Option<Duration>, stop: bool) -> Self {
        Self { operation, timeout, stop, patience: None, discard: false }
    }
}

/// `wait`, `quiesce`, `stop` and the exit-time stop: until nothing is in
/// flight, pumping on the main thread (blocking, woken by main-side work
/// or by the count reaching zero, never polling); then, if asked, stop the
/// pool. Off the main thread it only waits.
pub(crate) fn wait_for_all(py: Python<'_>, waiting: &Waiting<'_>) -> PyResult<()> {
    let operation = waiting.operation;
    if behavior::in_behavior() {
        return Err(errors::wait_inside_behavior(operation));
    }
    if exit::on_worker() {
        return Err(errors::wait_on_worker(operation));
    }
    if boc::engine::in_count_out_scope() {
        return Err(errors::wait_while_finishing(operation));
    }
    let Some(runtime) = RUNTIME.get() else { return Ok(()) };
    let deadline = waiting.timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    let end = if is_main_thread() {
        let mut hooks = MainWait { py, runtime, waiting, started: Instant::now(), patience: waiting.patience };
        runtime.main().wait_until(&mut hooks, deadline).map_err(|error| match error {
            MainWaitError::Py(error) => error,
            MainWaitError::Refused(error) => errors::pin(operation, &error),
        })?
    } else {
        wait_off_main(py, runtime, waiting, deadline)
    };
    match end {
        WaitEnd::Done => Ok(()),
        WaitEnd::TimedOut => {
            let (n_in_flight, n_main) = (runtime.n_in_flight(), runtime.main().len());
            let labels = runtime.main().labels(boc::engine::MAX_REPORTED_LABELS);
            Err(errors::timeout(operation, waiting.timeout.unwrap_or_default(), n_in_flight, &labels, n_main))
        }
    }
}

/// Whether [`wait_for_all`] is over: nothing in flight and, for a stop,
/// the pool stopped. Reports of exceptions dropped meanwhile are written
/// first; what they drop may schedule again (a pinned value's last handle
/// goes home as a counted behavior): then the wait goes on for that too
/// (its count-out, or its push to the main queue, wakes the main thread).
fn wait_is_over(py: Python<'_>, runtime: &Runtime, waiting: &Waiting<'_>, on_main: bool) -> bool {
    if runtime.n_in_flight() != 0 || (waiting.stop && !runtime.stop_if_idle(py)) {
        return false;
    }
    drain_graveyard(py, on_main);
    runtime.n_in_flight() == 0 && (!waiting.stop || runtime.current().is_none())
}

/// [`wait_for_all`] on the main thread: boc-pin's wait loop, pumping (or
/// discarding) main-side work, blocking detached in slices of
/// [`SIGNAL_CHECK_INTERVAL`] so Ctrl-C interrupts it, woken by main-side
/// work or by the count-out that reaches zero (a behavior's ticket, in
/// `boc::engine`).
struct MainWait<'a, 'py> {
    py: Python<'py>,
    runtime: &'a Runtime,
    waiting: &'a Waiting<'a>,
    started: Instant,
    /// The exit-time stop's report, until it is made.
    patience: Option<(Duration, Report<'a>)>,
}

/// What ends [`MainWait`] early.
enum MainWaitError {
    /// A Python exception: from a main-side body that stops the wait, or a
    /// signal handler.
    Py(PyErr),
    /// boc-pin refused the wait (off the main thread, or inside a pump).
    Refused(boc::engine::PinError),
}

impl From<boc::engine::PinError> for MainWaitError {
    fn from(error: boc::engine::PinError) -> Self {
        Self::Refused(error)
    }
}

impl From<PyErr> for MainWaitError {
    fn from(error: PyErr) -> Self {
        Self::Py(error)
    }
}

impl HomeWait<Ready> for MainWait<'_, '_> {
    type Error = MainWaitError;

    fn pump(&mut self, _queue: &MainQueue<Ready>) -> Result<(), MainWaitError> {
        drain_graveyard(self.py, true);
        if self.waiting.discard {
            discard_main_side(self.py, self.runtime);
        } else {
            pump_main(self.py, self.runtime, Budget::unbounded(), false, self.waiting.operation)?;
        }
        Ok(())
    }

    fn is_done(&mut self) -> Result<bool, MainWaitError> {
        Ok(wait_is_over(self.py, self.runtime, self.waiting, true))
    }

    fn before_block(&mut self) -> Result<Option<Duration>, MainWaitError> {
        let mut slice = SIGNAL_CHECK_INTERVAL;
        if let Some((after, report)) = self.patience {
            match after.checked_sub(self.started.elapsed()) {
                Some(left) if !left.is_zero() => slice = slice.min(left),
                _ => {
                    report(self.py, self.runtime);
                    self.patience = None;
                }
            }
        }
        Ok(Some(slice))
    }

    fn block(&mut self, sleep: &mut (dyn FnMut() -> WaitOutcome + Send)) -> WaitOutcome {
        exit::detach(self.py, sleep)
    }

    fn after_block(&mut self) -> Result<(), MainWaitError> {
        Ok(self.py.check_signals()?)
    }
}

/// [`wait_for_all`] off the main thread: waits for the current pool's
/// count, detached, in slices (a stop or a restart may replace the pool).
fn wait_off_main(py: Python<'_>, runtime: &Runtime, waiting: &Waiting<'_>, deadline: Option<Instant>) -> WaitEnd {
    loop {
        if wait_is_over(py, runtime, waiting, false) {
            return WaitEnd::Done;
        }
        let mut slice = SIGNAL_CHECK_INTERVAL;
        if let Some(deadline) = deadline {
            match deadline.checked_duration_since(Instant::now()) {
                Some(remaining) if !remaining.is_zero() => slice = slice.min(remaining),
                _ => return WaitEnd::TimedOut,
            }
        }
        if let Some(running) = runtime.current() {
            exit::detach(py, || running.wait_idle(Some(slice)));
        }
    }
}

/// The exit-time stop's last resort after internal errors: no pumping,
/// every queued behavior dropped, then the workers waited for (detached)
/// and stopped, so none runs once the interpreter finalizes.
pub(crate) fn stop_without_pumping(py: Python<'_>) {
    let Some(runtime) = RUNTIME.get() else { return };
    loop {
        discard_main_side(py, runtime);
        if runtime.n_in_flight() == 0 && runtime.stop_if_idle(py) {
            return;
        }
        if let Some(running) = runtime.current() {
            exit::detach(py, || running.wait_idle(Some(SIGNAL_CHECK_INTERVAL)));
        }
    }
}

/// Drops every queued main-side behavior unrun (the exit-time stop after an
/// interrupt), counting them. On the main thread, attached.
fn discard_main_side(py: Python<'_>, runtime: &Runtime) {
    let n_discarded = behavior::deferring(py, || runtime.main().clear());
    crate::worker::count_discarded(n_discarded);
}

/// `_state()`: a snapshot for diagnostics and tests.
#[pyfunction]
pub(crate) fn _state(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let state = PyDict::new(py);
    let current = RUNTIME.get().and_then(Runtime::current);
    state.set_item("running", current.is_some())?;
    state.set_item("workers", current.as_ref().map(|running| running.n_workers()))?;
    state.set_item("in_flight", RUNTIME.get().map_or(0, Runtime::n_in_flight))?;
    state.set_item("main_pending", RUNTIME.get().map_or(0, |runtime| runtime.main().len()))?;
    Ok(state)
}
