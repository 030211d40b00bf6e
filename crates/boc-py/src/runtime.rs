//! The process-wide runtime behind the Python API: the main-side queue,
//! the worker pools and routing between them, counting behaviors in and
//! out, pinned values sent home, and what a fork leaves the child. The
//! functions that drive it are in `lifecycle.rs` (`start`, `wait`, ...),
//! `pump.rs` and `host.rs` (the waker, the descriptor, the watchdog).
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

use crate::args::MAX_WORKERS;
use crate::behavior::PinnedDrop;
use crate::errors;
use crate::exit;
use crate::host::{WakerThread, log_starvation};
use crate::primitive::Unpoisoned;
use crate::primitive::{AtomicBool, Ordering};
use crate::thread::{is_attached, is_main_thread};
use crate::worker::{Workers, python_thread_stack_size};
use boc::WatchdogConfig;
use boc::engine::{
    Config, Engine, EngineHold, Epoch, Home, MainConfig, MainQueue, PoolOptions, Ready, Retired, Ticket,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The `flags` bit of a behavior whose request set holds a pinned cown.
pub(crate) use boc::engine::PINNED;

/// How long the exit-time stop waits before it says what it waits for,
/// when the watchdog is off (otherwise the watchdog's threshold).
pub(crate) const DEFAULT_EXIT_GRACE: Duration = WatchdogConfig::DEFAULT_THRESHOLD;

pub(crate) static RUNTIME: OnceLock<Runtime> = OnceLock::new();

static RUNTIME_INIT: Mutex<()> = Mutex::new(());

/// An epoch of the engine: a worker pool and the count of the behaviors
/// counted in on it.
pub(crate) type Running = Epoch<Workers>;

/// The process-wide part of the runtime: the engine (one main queue for
/// the process, whose home is the interpreter's main thread, and pool
/// epochs that come and go) and what only Python needs.
pub(crate) struct Runtime {
    pub(crate) engine: Engine<Workers>,
    pub(crate) waker: Mutex<Option<Arc<WakerThread>>>,
    /// The worker count the last `start(workers=n)` asked for: pools that
    /// `@when` starts later (after a `wait`) get it too.
    pub(crate) n_workers: Mutex<Option<usize>>,
}

/// The runtime, created on first use.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let _init = RUNTIME_INIT.lock().unpoisoned();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let watchdog = WatchdogConfig::default().with_sink(log_starvation(None));
    let config = Config {
        home: Home::Check { is_home: is_main_thread, name: "the main thread" },
        main: MainConfig { watchdog: Some(watchdog) },
    };
    let engine = Engine::new(config, Arc::new(Workers))
        .map_err(|error| PyRuntimeError::new_err(format!("cannot start the boc runtime: {error}")))?;
    let runtime = Runtime { engine, waker: Mutex::new(None), n_workers: Mutex::new(None) };
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// The runtime, if it was ever used.
pub(crate) fn get() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// The runtime, and a new behavior counted in on its live epoch.
pub(crate) fn enter() -> PyResult<(&'static Runtime, Ticket<Workers>)> {
    let runtime = runtime()?;
    Ok((runtime, runtime.enter()?))
}

impl Runtime {
    /// The main queue.
    pub(crate) fn main(&self) -> &MainQueue<Ready> {
        self.engine.main()
    }

    pub(crate) fn current(&self) -> Option<Arc<Running>> {
        self.engine.current()
    }

    /// Whether main-side behaviors are worth labelling: a watchdog is
    /// configured to report them (boc-pin's one copy of that fact).
    pub(crate) fn labels_wanted(&self) -> bool {
        self.main().labels_wanted()
    }

    /// How long the exit-time stop waits before it reports what it waits
    /// for: the watchdog's threshold, or [`DEFAULT_EXIT_GRACE`] when it is
    /// off.
    pub(crate) fn exit_grace(&self) -> Duration {
        self.main().watchdog_threshold().unwrap_or(DEFAULT_EXIT_GRACE)
    }

    /// Counts a new behavior in on the current pool, starting one if none
    /// runs (with the count `start` last asked for, else the default). May
    /// detach, to start the pool.
    fn enter(&self) -> PyResult<Ticket<Workers>> {
        // SAFETY: every caller is attached (`@when`, and `drop_pinned` only
        // when attached).
        let py = unsafe { Python::assume_attached() };
        loop {
            if let Ok(ticket) = self.engine.count_in() {
                return Ok(ticket);
            }
            // None running, or the current one closed by a stop in progress
            // (it is idle): start a fresh one.
            self.start_pool(py, "when", self.n_workers()?, false)?;
        }
    }

    /// The size of the next pool: what `start` last asked for, else the
    /// default (`BOC_WORKERS`, held to the same bound as `start`).
    pub(crate) fn n_workers(&self) -> PyResult<usize> {
        if let Some(n_workers) = *self.n_workers.lock().unpoisoned() {
            return Ok(n_workers);
        }
        let n_workers = boc::engine::default_workers();
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
    pub(crate) fn stop_if_idle(&self, py: Python<'_>) -> bool {
        match self.engine.retire_if_idle() {
            Retired::NoEpoch => true,
            Retired::Busy => false,
            Retired::Retired(running) => {
                // Joined even when another thread is stopping it
                // (`shutdown` returns once the workers are gone, whoever
                // joins them): the exit-time stop must not close while
                // workers still exit.
                join(py, &running);
                // Its workers may have started a fresh one as they exited:
                // a pinned value whose last handle one of them dropped goes
                // home as a counted behavior (on 3.13t, a deallocation can
                // wait for the thread that owns the object, and run as that
                // thread ends).
                self.current().is_none()
            }
        }
    }

    pub(crate) fn n_in_flight(&self) -> usize {
        self.engine.n_in_flight()
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
    exit::detach(py, || running.join());
    POOLS.lock().unpoisoned().started.retain(|pool| !Arc::ptr_eq(pool, running));
}

/// Lets no pool start from now on, waits for the starts in progress, and
/// joins every pool not joined yet that has nothing in flight (the
/// exit-time stop, once nothing is in flight). False if one had: a start
/// that was in progress has since counted in a behavior (from a thread
/// that called `@when` before the stop began), which the stop must wait
/// for, and then call this again.
pub(crate) fn join_all_pools(py: Python<'_>) -> bool {
    let pools = exit::detach(py, || {
        let mut pools = POOLS.lock().unpoisoned();
        pools.closed = true;
        while pools.n_starting > 0 {
            pools = POOL_STARTED.wait(pools).unpoisoned();
        }
        pools.started.clone()
    });
    let mut all_idle = true;
    for running in &pools {
        // Closed once idle, so nothing counts in on it any more (a closed
        // pool is already stopping).
        if running.close_if_idle() {
            join(py, running);
        } else {
            all_idle = false;
        }
    }
    all_idle
}

pub(crate) fn already_running(live: usize, asked: usize) -> PyErr {
    PyRuntimeError::new_err(format!(
        "boc is already running with {live} workers, so it cannot start with {asked}. Call boc.wait() or boc.stop() \
         first, then boc.start(workers={asked})."
    ))
}

impl Runtime {
    /// Starts an epoch of `n_workers` threads, each with the stack a Python
    /// thread would get, for `operation` (named in the error once the
    /// exit-time stop has joined the pools); with `exact`, a live epoch of
    /// another size is an error, else any live epoch will do.
    ///
    /// The threads attach to the interpreter as they start, so the caller
    /// detaches while it spawns them: if a later spawn fails, the pool joins
    /// the workers already started, which must be able to attach (and
    /// leave) meanwhile; a fresh pool that lost a race with another thread's
    /// start is joined detached too. The start is announced in [`POOLS`]
    /// before the first spawn, so the exit-time stop, which may run
    /// meanwhile, joins this pool too.
    pub(crate) fn start_pool(
        &self,
        py: Python<'_>,
        operation: &str,
        n_workers: usize,
        exact: bool,
    ) -> PyResult<Arc<Running>> {
        let options = python_thread_stack_size(py)
            .map_or_else(PoolOptions::default, |size| PoolOptions::default().stack_size(size));
        {
            let mut pools = POOLS.lock().unpoisoned();
            if pools.closed {
                drop(pools);
                // A daemon thread that passed the gate before the exit-time
                // stop began and reaches here only now: refused as the gate
                // would refuse it now (or parked).
                exit::gate_schedule(py, operation)?;
                return Err(errors::shut_down(operation));
            }
            pools.n_starting += 1;
        }
        exit::detach(py, || {
            let started = if exact {
                self.engine.start(n_workers, options)
            } else {
                self.engine.ensure_started(n_workers, options)
            };
            let mut pools = POOLS.lock().unpoisoned();
            pools.n_starting -= 1;
            if let Ok(running) = &started
                && !pools.started.iter().any(|pool| Arc::ptr_eq(pool, running))
            {
                pools.started.push(Arc::clone(running));
            }
            drop(pools);
            POOL_STARTED.notify_all();
            started
        })
        .map_err(|error| match error {
            boc::Error::AlreadyRunning { live, asked } => already_running(live, asked),
            boc::Error::Pool(error) => PyRuntimeError::new_err(format!("cannot start the boc worker threads: {error}")),
            other => PyRuntimeError::new_err(format!("cannot start the boc worker threads: {other}")),
        })
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
        let ticket = if attached { runtime.enter().ok() } else { runtime.engine.count_in().ok() };
        if let Some(ticket) = ticket {
            let payload = PinnedDrop::new(value.take().expect("taken once"));
            // SAFETY: an empty request set.
            unsafe { runtime.engine.schedule(ticket, std::iter::empty(), payload, PINNED) };
        }
    }
    if let Some(value) = value {
        bury(Graveyard { value: Some(value), pinned: true, report: false, origin: None });
    }
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
    GRAVEYARD.lock().unpoisoned().push(entry);
    GRAVEYARD_NONEMPTY.store(true, Ordering::Release);
}

/// Finishes what `bury` could not: reports, and on the main thread pinned
/// values. Attached.
pub(crate) fn drain_graveyard(py: Python<'_>, on_main: bool) {
    if !GRAVEYARD_NONEMPTY.load(Ordering::Acquire) {
        return;
    }
    let entries = {
        let mut graveyard = GRAVEYARD.lock().unpoisoned();
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

/// This module's locks that threads may take while detached, held across
/// a fork by [`crate::fork`] (which says why), in the order taken.
pub(crate) struct ForkHold {
    _pools: MutexGuard<'static, Pools>,
    /// The current epoch's lock, then the main queue's.
    _engine: Option<EngineHold<'static, Workers>>,
    _graveyard: MutexGuard<'static, Vec<Graveyard>>,
}

/// Takes this module's part of [`crate::fork`]'s locks.
pub(crate) fn hold_for_fork() -> ForkHold {
    let pools = POOLS.lock().unpoisoned();
    let engine = RUNTIME.get().map(|runtime| runtime.engine.hold());
    let graveyard = GRAVEYARD.lock().unpoisoned();
    ForkHold { _pools: pools, _engine: engine, _graveyard: graveyard }
}

/// In a forked child (attached, its only thread): forgets the worker pools
/// it inherited, which have no threads there (joining them would hang; the
/// next `@when` starts a fresh one), with the behaviors in flight at the
/// fork (on workers or queued main-side) and the cowns they hold; forgets what the graveyard held for the
/// parent (its values are dropped and its failures reported there); and
/// removes the pump waker, whose thread the child does not have.
pub(crate) fn after_fork_in_child() {
    {
        let mut pools = POOLS.lock().unpoisoned();
        std::mem::forget(std::mem::take(&mut pools.started));
        // A start in progress was on another thread: it is not in the child.
        pools.n_starting = 0;
    }
    {
        let mut graveyard = GRAVEYARD.lock().unpoisoned();
        std::mem::forget(std::mem::take(&mut *graveyard));
        GRAVEYARD_NONEMPTY.store(false, Ordering::Relaxed);
    }
    let Some(runtime) = RUNTIME.get() else { return };
    // The current epoch, and the ready main-side behaviors, which are in
    // flight too: run here, they would run in both processes.
    runtime.engine.forget_after_fork();
    if let Some(waker) = runtime.waker.lock().unpoisoned().take() {
        // Its thread is the parent's: the callback would never be called
        // (the next `set_pump_waker` starts the child's own).
        std::mem::forget(waker);
        runtime.main().set_waker(None);
    }
}
