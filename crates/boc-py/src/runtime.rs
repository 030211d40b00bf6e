//! The process-wide runtime behind the Python API, and the functions that
//! drive it: `start`, `wait`, `quiesce`, `stop`, `pump`, the waker and the
//! watchdog.
//!
//! One main-side queue lives for the whole process (its waker descriptor
//! must not change under a host loop that watches it); its home is the
//! interpreter's main thread. Worker pools come and go: `wait` stops the
//! pool once everything has finished, and the next `@when` starts a fresh
//! one ([`Running`]).
//!
//! Threading (SPEC §5): bodies, two-phase locking and releases all run
//! attached (the protocol calls no Python, see docs/python.md); a
//! behavior's cowns are released as soon as its body returns; every
//! blocking wait detaches, through [`crate::exit::detach`]. The worker side
//! is in `worker.rs`, the exit path in `exit.rs`.

use crate::behavior::{self, Counted, MainContext, PinnedDrop};
use crate::errors;
use crate::exit;
use crate::primitive::{AtomicBool, Ordering};
use crate::worker::Workers;
use boc_core::Ready;
use boc_pin::{
    Affinity, Budget, HomeWait, MainConfig, MainQueue, MainRunner, Outcome, PumpError, StarvationReport, WaitEnd,
    WaitOutcome, WatchdogConfig,
};
use boc_sched::{Pool, PoolOptions, Terminator};
use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt};
use std::os::raw::c_ulong;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

unsafe extern "C" {
    /// CPython's thread identity (`threading.get_ident()`); callable
    /// without attachment.
    fn PyThread_get_thread_ident() -> c_ulong;
}

/// The `flags` bit of a behavior whose request set holds a pinned cown.
pub(crate) const PINNED: u32 = 1;

/// How often a call blocked on the main thread (`wait`, `receive`) looks
/// for signals, so Ctrl-C interrupts it; what it waits for wakes it at once.
pub(crate) const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Most workers `start` accepts: far beyond any useful count, short of
/// exhausting threads.
const MAX_WORKERS: usize = 1024;

/// The stack of a worker when neither `threading.stack_size()` nor the
/// platform says more: what glibc gives a thread when `RLIMIT_STACK` is
/// unlimited is less, what CPython asks for on macOS more.
const DEFAULT_STACK_SIZE: usize = 8 << 20;

/// The smallest worker stack boc asks for, whatever the limits say.
const MIN_STACK_SIZE: usize = 1 << 20;

/// How long the exit-time stop waits before it says what it waits for,
/// when the watchdog is off (otherwise the watchdog's threshold).
pub(crate) const DEFAULT_EXIT_GRACE: Duration = WatchdogConfig::DEFAULT_THRESHOLD;

/// `threading.main_thread().ident`, read when the module is imported.
static MAIN_IDENT: OnceLock<c_ulong> = OnceLock::new();

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static RUNTIME_INIT: Mutex<()> = Mutex::new(());

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

/// The process-wide part of the runtime.
pub(crate) struct Runtime {
    pub(crate) main: MainQueue<Ready>,
    running: RwLock<Option<Arc<Running>>>,
    waker: Mutex<Option<Arc<WakerThread>>>,
    /// The worker count the last `start(workers=n)` asked for: pools that
    /// `@when` starts later (after a `wait`) get it too.
    n_workers: Mutex<Option<usize>>,
}

/// A worker pool and the count of behaviors it is responsible for.
pub(crate) struct Running {
    terminator: Terminator,
    pool: Pool<Ready, Workers>,
    pub(crate) n_workers: usize,
}

impl Running {
    /// Counts a behavior out (after it was released); the last one wakes
    /// the main thread if it waits.
    pub(crate) fn finished(&self) {
        match RUNTIME.get() {
            Some(runtime) => {
                runtime.main.count_out(|| self.terminator.decrement());
            }
            // No runtime, so no main thread waiting in it.
            None => {
                self.terminator.decrement();
            }
        }
    }

    pub(crate) fn is_main_side(&self, pinned: bool) -> bool {
        Affinity::classify([pinned], self.n_workers) == Affinity::Main
    }
}

impl boc_core::Dispatch for Running {
    fn dispatch(&self, behavior: Ready) {
        if self.is_main_side(behavior.flags() & PINNED != 0) {
            let runtime = RUNTIME.get().expect("a behavior is only scheduled once the runtime exists");
            runtime.main.push_labeled(behavior, Ready::label);
        } else {
            self.pool.spawn(behavior);
        }
    }
}

/// The runtime, created on first use.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let _init = RUNTIME_INIT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let watchdog = WatchdogConfig::default().with_sink(log_starvation(None));
    let main = MainQueue::with_home_check(MainConfig { watchdog: Some(watchdog) }, is_main_thread, "the main thread")
        .map_err(|error| PyRuntimeError::new_err(format!("cannot start the boc runtime: {error}")))?;
    let runtime = Runtime { main, running: RwLock::new(None), waker: Mutex::new(None), n_workers: Mutex::new(None) };
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// The runtime, if it was ever used.
pub(crate) fn get() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// The runtime and the pool a new behavior goes to, counted in.
pub(crate) fn enter() -> PyResult<(&'static Runtime, Arc<Running>)> {
    let runtime = runtime()?;
    Ok((runtime, runtime.enter()?))
}

impl Runtime {
    fn current(&self) -> Option<Arc<Running>> {
        self.running.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether main-side behaviors are worth labelling: a watchdog is
    /// configured to report them (boc-pin's one copy of that fact).
    pub(crate) fn labels_wanted(&self) -> bool {
        self.main.labels_wanted()
    }

    /// How long the exit-time stop waits before it reports what it waits
    /// for: the watchdog's threshold, or [`DEFAULT_EXIT_GRACE`] when it is
    /// off.
    pub(crate) fn exit_grace(&self) -> Duration {
        self.main.watchdog_threshold().unwrap_or(DEFAULT_EXIT_GRACE)
    }

    /// Counts a new behavior in on the current pool, starting one if none
    /// runs (with the count `start` last asked for, else the default). May
    /// detach, to start the pool.
    fn enter(&self) -> PyResult<Arc<Running>> {
        // SAFETY: every caller is attached (`@when`, and `drop_pinned` only
        // when attached).
        let py = unsafe { Python::assume_attached() };
        loop {
            if let Some(running) = self.current()
                && running.terminator.try_increment()
            {
                return Ok(running);
            }
            // None running, or the current one closed by a stop in progress
            // (it is idle): start a fresh one.
            self.install(py, start_pool(py, "when", self.n_workers()?)?, None)?;
        }
    }

    /// Makes `fresh` the current pool unless a live one is current already
    /// (another thread started it meanwhile: `fresh` is then stopped).
    /// With `n_workers`, a live one of another size is an error.
    fn install(&self, py: Python<'_>, fresh: Arc<Running>, n_workers: Option<usize>) -> PyResult<()> {
        let mut state = self.running.write().unwrap_or_else(PoisonError::into_inner);
        let live = state.as_ref().filter(|running| !running.terminator.is_closed()).map(|running| running.n_workers);
        match live {
            None => {
                *state = Some(fresh);
                Ok(())
            }
            Some(live) => {
                drop(state);
                join(py, &fresh);
                match n_workers {
                    Some(n_workers) if n_workers != live => Err(already_running(live, n_workers)),
                    _ => Ok(()),
                }
            }
        }
    }

    /// The size of the next pool: what `start` last asked for, else the
    /// default (`BOC_WORKERS`, held to the same bound as `start`).
    fn n_workers(&self) -> PyResult<usize> {
        if let Some(n_workers) = *self.n_workers.lock().unwrap_or_else(PoisonError::into_inner) {
            return Ok(n_workers);
        }
        let n_workers = boc_sched::default_workers();
        if n_workers > MAX_WORKERS {
            return Err(PyValueError::new_err(format!(
                "BOC_WORKERS asks for {n_workers} workers, more than the {MAX_WORKERS} boc can start. Set it to a \
                 count between 0 and {MAX_WORKERS} (or unset it for one per CPU but one)."
            )));
        }
        Ok(n_workers)
    }

    /// Stops the current pool if nothing is in flight. True if no pool is
    /// left running.
    fn stop_if_idle(&self, py: Python<'_>) -> bool {
        let Some(running) = self.current() else { return true };
        // Closed: another thread is stopping it. It is joined below all the
        // same (`shutdown` returns once the workers are gone, whoever joins
        // them): the exit-time stop must not close while workers still exit.
        if !running.terminator.is_closed() && !running.terminator.try_close_idle() {
            return false;
        }
        {
            let mut state = self.running.write().unwrap_or_else(PoisonError::into_inner);
            if state.as_ref().is_some_and(|current| Arc::ptr_eq(current, &running)) {
                *state = None;
            }
        }
        join(py, &running);
        // Its workers may have started a fresh one as they exited: a
        // pinned value whose last handle one of them dropped goes home as a
        // counted behavior (on 3.13t, a deallocation can wait for the
        // thread that owns the object, and run as that thread ends).
        self.current().is_none()
    }

    pub(crate) fn n_in_flight(&self) -> usize {
        self.current().map_or(0, |running| running.terminator.count())
    }
}

/// Every pool started and not joined yet, so that the exit-time stop can
/// join them all: a pool that another thread is stopping may no longer be
/// the current one.
static POOLS: Mutex<Pools> = Mutex::new(Pools { started: Vec::new(), n_starting: 0, closed: false });

/// Signalled when a pool start ends ([`Pools::n_starting`] went down).
static POOL_STARTED: Condvar = Condvar::new();

pub(crate) struct Pools {
    /// Started, not joined yet.
    started: Vec<Arc<Running>>,
    /// Pools being started now (their threads spawn detached, and may
    /// attach before the start returns): the exit-time stop waits for
    /// them before it joins `started`.
    n_starting: usize,
    /// Set by the exit-time stop's [`join_all_pools`]: no pool starts any
    /// more.
    closed: bool,
}

/// Stops `running`'s workers and joins them (detached: each attaches once
/// more as it exits, to drop its thread state). Returns once they are gone,
/// also when another thread joins them.
fn join(py: Python<'_>, running: &Arc<Running>) {
    exit::detach(py, || running.pool.shutdown());
    POOLS.lock().unwrap_or_else(PoisonError::into_inner).started.retain(|pool| !Arc::ptr_eq(pool, running));
}

/// Lets no pool start from now on, waits for the starts in progress, and
/// joins every pool not joined yet that has nothing in flight (the
/// exit-time stop, once nothing is in flight). False if one had: a start
/// that was in progress has since counted in a behavior (from a thread
/// that called `@when` before the stop began), which the stop must wait
/// for, and then call this again.
pub(crate) fn join_all_pools(py: Python<'_>) -> bool {
    let pools = exit::detach(py, || {
        let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        pools.closed = true;
        while pools.n_starting > 0 {
            pools = POOL_STARTED.wait(pools).unwrap_or_else(PoisonError::into_inner);
        }
        pools.started.clone()
    });
    let mut all_idle = true;
    for running in &pools {
        // Closed once idle, so nothing counts in on it any more (a closed
        // pool is already stopping).
        if running.terminator.is_closed() || running.terminator.try_close_idle() {
            join(py, running);
        } else {
            all_idle = false;
        }
    }
    all_idle
}

fn already_running(live: usize, asked: usize) -> PyErr {
    PyRuntimeError::new_err(format!(
        "boc is already running with {live} workers, so it cannot start with {asked}. Call boc.wait() or boc.stop() \
         first, then boc.start(workers={asked})."
    ))
}

/// Starts a pool of `n_workers` threads, each with the stack a Python
/// thread would get, for `operation` (named in the error once the
/// exit-time stop has joined the pools).
///
/// The threads attach to the interpreter as they start, so the caller
/// detaches while it spawns them: if a later spawn fails, the pool joins
/// the workers already started, which must be able to attach (and leave)
/// meanwhile. The start is announced in [`POOLS`] before the first spawn,
/// so the exit-time stop, which may run meanwhile, joins this pool too.
fn start_pool(py: Python<'_>, operation: &str, n_workers: usize) -> PyResult<Arc<Running>> {
    let options =
        python_thread_stack_size(py).map_or_else(PoolOptions::default, |size| PoolOptions::default().stack_size(size));
    {
        let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        if pools.closed {
            drop(pools);
            // A daemon thread that passed the gate before the exit-time stop
            // began and reaches here only now: refused as the gate would
            // refuse it now (or parked).
            exit::gate_schedule(py, operation)?;
            return Err(errors::shut_down(operation));
        }
        pools.n_starting += 1;
    }
    exit::detach(py, || {
        let pool = Pool::with_options(n_workers, Arc::new(Workers), options);
        let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        pools.n_starting -= 1;
        let running = pool.map(|pool| Arc::new(Running { terminator: Terminator::new(), pool, n_workers }));
        if let Ok(running) = &running {
            pools.started.push(Arc::clone(running));
        }
        drop(pools);
        POOL_STARTED.notify_all();
        running
    })
    .map_err(|error| PyRuntimeError::new_err(format!("cannot start the boc worker threads: {error}")))
}

/// The stack a `threading.Thread` started now would get (SPEC §5 rule 5):
/// `threading.stack_size()` when set, else the platform's default for new
/// threads (CPython leaves it to the platform on Linux, where glibc uses
/// the `RLIMIT_STACK` soft limit; it asks for 16 MiB on macOS).
fn python_thread_stack_size(py: Python<'_>) -> Option<usize> {
    let asked: usize = py.import("threading").ok()?.call_method0("stack_size").ok()?.extract().ok()?;
    if asked > 0 {
        return Some(asked);
    }
    if cfg!(target_os = "macos") {
        return Some(16 << 20);
    }
    let platform = (|| -> PyResult<Option<usize>> {
        let resource = py.import("resource")?;
        let (soft, _hard): (i128, i128) =
            resource.call_method1("getrlimit", (resource.getattr("RLIMIT_STACK")?,))?.extract()?;
        let infinity: i128 = resource.getattr("RLIM_INFINITY")?.extract()?;
        Ok((soft > 0 && soft != infinity).then(|| usize::try_from(soft).unwrap_or(usize::MAX)))
    })()
    .ok()
    .flatten();
    Some(platform.unwrap_or(DEFAULT_STACK_SIZE).max(MIN_STACK_SIZE))
}

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
        let n_workers = match workers.filter(|workers| !workers.is_none()) {
            None => None,
            Some(workers) => Some(worker_count(workers)?),
        };
        exit::gate_schedule(py, "start")?;
        let runtime = runtime()?;
        if let Some(running) = runtime.current().filter(|running| !running.terminator.is_closed()) {
            return match n_workers {
                Some(n_workers) if n_workers != running.n_workers => Err(already_running(running.n_workers, n_workers)),
                _ => {
                    if n_workers.is_some() {
                        *runtime.n_workers.lock().unwrap_or_else(PoisonError::into_inner) = n_workers;
                    }
                    Ok(())
                }
            };
        }
        *runtime.n_workers.lock().unwrap_or_else(PoisonError::into_inner) = n_workers;
        runtime.install(py, start_pool(py, "start", runtime.n_workers()?)?, n_workers)
    })
}

fn worker_count(workers: &Bound<'_, PyAny>) -> PyResult<usize> {
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
fn millis_arg(name: &str, value: &Bound<'_, PyAny>, none_means: &str) -> PyResult<Option<Duration>> {
    let what = format!("a positive number of milliseconds (or None {none_means})");
    let millis = number(name, &what, value)?;
    if millis.is_nan() || millis <= 0.0 {
        return Err(PyValueError::new_err(format!("{name} must be {what}, not {value}")));
    }
    Ok(Duration::try_from_secs_f64(millis / 1000.0).ok())
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
    exit::call(py, || wait_for_all(py, &Waiting::new("wait", timeout_arg(timeout)?, true)))
}

/// Like `wait()`, but leave the worker pool running.
#[pyfunction]
#[pyo3(signature = (timeout = None))]
pub(crate) fn quiesce(py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    exit::call(py, || wait_for_all(py, &Waiting::new("quiesce", timeout_arg(timeout)?, false)))
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
    let Some(runtime) = RUNTIME.get() else { return Ok(()) };
    let deadline = waiting.timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    let end = if is_main_thread() {
        let mut hooks = MainWait { py, runtime, waiting, started: Instant::now(), patience: waiting.patience };
        runtime.main.wait_until(&mut hooks, deadline).map_err(|error| match error {
            MainWaitError::Py(error) => error,
            MainWaitError::Refused(error) => errors::pin(operation, &error),
        })?
    } else {
        wait_off_main(py, runtime, waiting, deadline)
    };
    match end {
        WaitEnd::Done => Ok(()),
        WaitEnd::TimedOut => {
            let (n_in_flight, n_main) = (runtime.n_in_flight(), runtime.main.len());
            let labels = runtime.main.labels(boc_pin::MAX_REPORTED_LABELS);
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
/// work or by the count-out that reaches zero ([`Running::finished`]).
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
    Refused(boc_pin::Error),
}

impl From<boc_pin::Error> for MainWaitError {
    fn from(error: boc_pin::Error) -> Self {
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
            exit::detach(py, || running.terminator.wait_idle(Some(slice)));
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
            exit::detach(py, || running.terminator.wait_idle(Some(SIGNAL_CHECK_INTERVAL)));
        }
    }
}

/// Drops every queued main-side behavior unrun (the exit-time stop after an
/// interrupt), counting them. On the main thread, attached.
fn discard_main_side(py: Python<'_>, runtime: &Runtime) {
    let n_discarded = behavior::deferring(py, || runtime.main.clear());
    crate::worker::count_discarded(n_discarded);
}

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
        if let Some(bound) = max_behaviors.filter(|bound| !bound.is_none()) {
            budget = budget.with_max_behaviors(max_behaviors_arg(bound)?);
        }
        if let Some(bound) = deadline_ms.filter(|bound| !bound.is_none()) {
            // A deadline too far to represent is no deadline.
            let within = millis_arg("deadline_ms", bound, "for no deadline")?;
            if let Some(deadline) = within.and_then(|within| Instant::now().checked_add(within)) {
                budget = budget.with_deadline(deadline);
            }
        }
        let raise_on_error = match raise_on_error {
            None => false,
            Some(flag) => match flag.cast::<PyBool>() {
                Ok(flag) => flag.is_true(),
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "raise_on_error must be a bool, not {}",
                        type_name(flag)
                    )));
                }
            },
        };
        if !is_main_thread() {
            return Err(errors::off_main("pump"));
        }
        let Some(runtime) = RUNTIME.get() else { return Ok((0, false, 0, 0)) };
        drain_graveyard(py, true);
        let report = pump_main(py, runtime, budget, raise_on_error, "pump")?;
        Ok((report.executed, report.deadline_reached, report.raised, report.pending))
    })
}

fn max_behaviors_arg(bound: &Bound<'_, PyAny>) -> PyResult<usize> {
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

/// Pumps the main-side queue on the main thread with `budget`.
fn pump_main(
    py: Python<'_>,
    runtime: &Runtime,
    budget: Budget,
    raise_on_error: bool,
    operation: &str,
) -> PyResult<boc_pin::PumpReport> {
    let runner = MainSide { py, raise_on_error };
    match runtime.main.pump(&runner, budget) {
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

/// Sends a pinned value whose cown died to the main thread to be dropped
/// there: at once if this is the main thread (attached), else as a counted
/// main-side behavior (so `pump_fd()` and the waker tell the host loop, and
/// `wait()` waits for it); if no behavior can be scheduled (interpreter
/// exit), it waits in the graveyard for the main thread.
pub(crate) fn drop_pinned(value: Py<PyAny>) {
    let attached = is_attached();
    if attached && is_main_thread() {
        drop(value);
        return;
    }
    let mut value = Some(value);
    if exit::phase() != exit::CLOSED
        && let Some(runtime) = RUNTIME.get()
    {
        // Attached, a pool may be started for it; detached (rare: a queue
        // dropping an unrun behavior), only the current one is used.
        let running = if attached {
            runtime.enter().ok()
        } else {
            runtime.current().filter(|running| running.terminator.try_increment())
        };
        if let Some(running) = running {
            let dispatcher = Arc::clone(&running);
            let payload = PinnedDrop::new(value.take().expect("taken once"), Counted(running));
            // SAFETY: an empty request set; `dispatcher` outlives the call,
            // and the behavior is dispatched (pushed to the main queue)
            // before `schedule` returns.
            unsafe { boc_core::schedule(std::iter::empty(), payload, PINNED, &*dispatcher) };
        }
    }
    if let Some(value) = value {
        bury(Graveyard { value: Some(value), pinned: true, report: false, origin: None });
    }
}

/// Whether this thread is attached to the interpreter. CPython's own
/// answer; it is always "yes" in a process that created a
/// sub-interpreter, which boc's module cannot be imported into.
pub(crate) fn is_attached() -> bool {
    // SAFETY: no preconditions; callable detached.
    unsafe { pyo3::ffi::PyGILState_Check() != 0 }
}

/// What a cown left behind that needs the interpreter (or the main thread)
/// to finish: a pinned value to drop on the main thread, or an exception
/// nobody retrieved, to report.
pub(crate) struct Graveyard {
    pub(crate) value: Option<Py<PyAny>>,
    pub(crate) pinned: bool,
    pub(crate) report: bool,
    pub(crate) origin: Option<Arc<str>>,
}

static GRAVEYARD: Mutex<Vec<Graveyard>> = Mutex::new(Vec::new());
/// Set (Release) by `bury` after its push; cleared (Relaxed, under the
/// lock) by a drain that leaves the list empty; read (Acquire) before
/// taking the lock, so an entry buried before a drain is seen by it.
static GRAVEYARD_NONEMPTY: AtomicBool = AtomicBool::new(false);

pub(crate) fn bury(entry: Graveyard) {
    GRAVEYARD.lock().unwrap_or_else(PoisonError::into_inner).push(entry);
    GRAVEYARD_NONEMPTY.store(true, Ordering::Release);
}

/// Finishes what `bury` could not: reports, and on the main thread pinned
/// values. Attached.
pub(crate) fn drain_graveyard(py: Python<'_>, on_main: bool) {
    if !GRAVEYARD_NONEMPTY.load(Ordering::Acquire) {
        return;
    }
    let entries = {
        let mut graveyard = GRAVEYARD.lock().unwrap_or_else(PoisonError::into_inner);
        let (taken, kept): (Vec<_>, Vec<_>) = graveyard.drain(..).partition(|entry| on_main || !entry.pinned);
        GRAVEYARD_NONEMPTY.store(!kept.is_empty(), Ordering::Relaxed);
        *graveyard = kept;
        taken
    };
    for entry in entries {
        if entry.report
            && let Some(exception) = &entry.value
        {
            crate::report::report(py, exception.bind(py), entry.origin.as_deref());
        }
        // Dropped here, attached (on main for a pinned value).
        drop(entry);
    }
}

/// A watchdog sink: the message goes to `on_starve(message)`, or to the
/// `boc` logger as a warning.
fn log_starvation(on_starve: Option<Py<PyAny>>) -> impl Fn(&StarvationReport) + Send + Sync + 'static {
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

/// Configure the starvation watchdog.
///
/// It reports (once per episode) main-side behaviors that waited longer
/// than `warn_ms` milliseconds without the main thread pumping, naming
/// them by qualname and file:line. `warn_ms=None` turns it off; the
/// default is 2000. `on_starve(message)` receives the report instead of
/// the `boc` logger (WARNING). It warns; it never raises.
#[pyfunction]
#[pyo3(signature = (warn_ms = WarnMs::After(WatchdogConfig::DEFAULT_THRESHOLD), on_starve = None))]
pub(crate) fn set_pump_watchdog(py: Python<'_>, warn_ms: WarnMs, on_starve: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    exit::call(py, || {
        let on_starve = optional_callable(
            on_starve,
            "on_starve must be a callable taking the message (or None for the boc logger)",
        )?;
        let config = if let WarnMs::After(threshold) = warn_ms {
            let sink = log_starvation(on_starve.map(|callback| callback.clone().unbind()));
            Some(WatchdogConfig::new(threshold).with_sink(sink))
        } else {
            None
        };
        let runtime = runtime()?;
        runtime.main.set_watchdog(config).map_err(|error| PyRuntimeError::new_err(format!("{error}")))
    })
}

/// A file descriptor that is readable while main-side work waits: watch it
/// in an event loop (for example `loop.add_reader`) and call `pump()` when
/// it fires. `pump()` clears it; never read it yourself.
#[pyfunction]
pub(crate) fn pump_fd() -> PyResult<i32> {
    use std::os::fd::AsRawFd;
    let runtime = runtime()?;
    let fd = runtime.main.waker_fd().map_err(|error| PyRuntimeError::new_err(format!("{error}")))?;
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
struct WakerThread {
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
                let callback = self
                    .callback
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    .map(|callback| callback.clone_ref(py));
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
        let mut slot = runtime.waker.lock().unwrap_or_else(PoisonError::into_inner);
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
        let previous = std::mem::replace(&mut *waker.callback.lock().unwrap_or_else(PoisonError::into_inner), callback);
        // Dropped here, attached (outside the lock: it may run Python).
        drop(previous);
        runtime.main.set_waker(signal);
        Ok(())
    })
}

/// This module's locks that threads may take while detached, held across
/// a fork by [`crate::fork`] (which says why), in the order taken.
pub(crate) struct ForkHold {
    _pools: MutexGuard<'static, Pools>,
    _running: Option<RwLockWriteGuard<'static, Option<Arc<Running>>>>,
    _main: Option<boc_pin::Hold<'static, Ready>>,
    _graveyard: MutexGuard<'static, Vec<Graveyard>>,
}

/// Takes this module's part of [`crate::fork`]'s locks.
pub(crate) fn hold_for_fork() -> ForkHold {
    let pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    let runtime = RUNTIME.get();
    let running = runtime.map(|runtime| runtime.running.write().unwrap_or_else(PoisonError::into_inner));
    let main = runtime.map(|runtime| runtime.main.hold());
    let graveyard = GRAVEYARD.lock().unwrap_or_else(PoisonError::into_inner);
    ForkHold { _pools: pools, _running: running, _main: main, _graveyard: graveyard }
}

/// In a forked child (attached, its only thread): forgets the worker pools
/// it inherited, which have no threads there (joining them would hang; the
/// next `@when` starts a fresh one), with the behaviors in flight at the
/// fork (on workers or queued main-side) and the cowns they hold; forgets what the graveyard held for the
/// parent (its values are dropped and its failures reported there); and
/// removes the pump waker, whose thread the child does not have.
pub(crate) fn after_fork_in_child() {
    {
        let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::forget(std::mem::take(&mut pools.started));
        // A start in progress was on another thread: it is not in the child.
        pools.n_starting = 0;
    }
    {
        let mut graveyard = GRAVEYARD.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::forget(std::mem::take(&mut *graveyard));
        GRAVEYARD_NONEMPTY.store(false, Ordering::Relaxed);
    }
    let Some(runtime) = RUNTIME.get() else { return };
    if let Some(running) = runtime.running.write().unwrap_or_else(PoisonError::into_inner).take() {
        std::mem::forget(running);
    }
    // Ready main-side behaviors are in flight too: run here, they would
    // run in both processes.
    runtime.main.hold().forget_queued();
    if let Some(waker) = runtime.waker.lock().unwrap_or_else(PoisonError::into_inner).take() {
        // Its thread is the parent's: the callback would never be called
        // (the next `set_pump_waker` starts the child's own).
        std::mem::forget(waker);
        runtime.main.set_waker(None);
    }
}

/// `_state()`: a snapshot for diagnostics and tests.
#[pyfunction]
pub(crate) fn _state(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let state = PyDict::new(py);
    let current = RUNTIME.get().and_then(Runtime::current);
    state.set_item("running", current.is_some())?;
    state.set_item("workers", current.as_ref().map(|running| running.n_workers))?;
    state.set_item("in_flight", RUNTIME.get().map_or(0, Runtime::n_in_flight))?;
    state.set_item("main_pending", RUNTIME.get().map_or(0, |runtime| runtime.main.len()))?;
    Ok(state)
}
