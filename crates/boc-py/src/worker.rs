//! The worker side: how a pool thread runs Python behaviors.
//!
//! A worker attaches to the interpreter once, for its whole life, through
//! PyO3 (`Python::attach`, so PyO3's own count of the attachment is right),
//! and keeps that attachment across consecutive bodies (SPEC §5 rule 4). It
//! runs each behavior and releases its cowns as soon as the body returns,
//! still attached (rules 1 and 2). It detaches only to park (rule 3),
//! through [`crate::exit::detach`], which never re-attaches once the
//! interpreter is finalizing.

use crate::behavior;
use crate::exit;
use crate::fork;
use crate::primitive::Unpoisoned;
use crate::primitive::{AtomicBool, AtomicUsize, Ordering};
use boc::engine::Ready;
use boc::engine::Runner;
use pyo3::prelude::*;
use std::cell::Cell;
use std::os::raw::c_ulong;
use std::sync::{Mutex, MutexGuard};

/// The worker side of the runtime, shared by every pool.
pub(crate) struct Workers;

thread_local! {
    /// This worker thread is attached for its loop (false only when the
    /// interpreter could not be attached to: behaviors are then dropped).
    static ATTACHED: Cell<bool> = const { Cell::new(false) };
    /// [`fork::generation`] when this worker started.
    static STARTED_AFTER_FORKS: Cell<usize> = const { Cell::new(0) };
}

/// In a forked child: forgets the workers it does not have (all of them
/// but the forking thread, when a body forked).
pub(crate) fn after_fork_in_child() {
    let ident = crate::thread::thread_ident();
    THREADS.lock().unpoisoned().retain(|(thread, _)| *thread == ident);
}

/// [`THREADS`]'s lock, which workers take detached as they start and end,
/// held across a fork by [`crate::fork`].
pub(crate) fn hold_for_fork() -> MutexGuard<'static, Vec<(c_ulong, String)>> {
    THREADS.lock().unpoisoned()
}

/// Whether this worker thread is a forked child's copy of a worker (the
/// child of a fork made inside a behavior). Its pool has no other thread
/// there, and the behaviors queued in it are the parent's.
fn forked() -> bool {
    STARTED_AFTER_FORKS.with(Cell::get) != fork::generation()
}

/// Set by the exit path after an interrupt: workers drop the behaviors
/// they take instead of running them. Written (Relaxed) once by the main
/// thread; read (Relaxed) per behavior: a behavior that starts after the
/// interrupt is harmless, the flag only shortens the exit.
static DISCARDING: AtomicBool = AtomicBool::new(false);

/// Behaviors dropped unrun because of [`DISCARDING`], for the exit report.
/// Incremented (Relaxed) by the threads that drop them; read after they
/// are counted out, which orders it.
static N_DISCARDED: AtomicUsize = AtomicUsize::new(0);

/// The running workers' thread identities and names (for the exit path's
/// report of what is still running).
static THREADS: Mutex<Vec<(c_ulong, String)>> = Mutex::new(Vec::new());

/// From now on, workers drop the behaviors they take.
pub(crate) fn discard_from_now() {
    DISCARDING.store(true, Ordering::Relaxed);
}

/// Counts `n` behaviors dropped unrun (by the main thread's discard).
pub(crate) fn count_discarded(n: usize) {
    N_DISCARDED.fetch_add(n, Ordering::Relaxed);
}

/// Behaviors dropped unrun since [`discard_from_now`].
pub(crate) fn n_discarded() -> usize {
    N_DISCARDED.load(Ordering::Relaxed)
}

/// `(threading ident, thread name)` of each live worker.
pub(crate) fn threads() -> Vec<(c_ulong, String)> {
    THREADS.lock().unpoisoned().clone()
}

/// Keeps this thread in [`THREADS`] while it lives.
struct Registered(c_ulong);

impl Registered {
    fn new() -> Self {
        let ident = crate::thread::thread_ident();
        let name = std::thread::current().name().unwrap_or("boc-worker").to_owned();
        THREADS.lock().unpoisoned().push((ident, name));
        Self(ident)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        THREADS.lock().unpoisoned().retain(|(ident, _)| *ident != self.0);
    }
}

/// Wraps a non-`Send` closure for `exit::detach`, whose `Send` bound only
/// keeps Python tokens out of detached code: the closure runs on this same
/// thread.
struct SameThread<'a>(&'a mut dyn FnMut());

// SAFETY: never sent anywhere: `Python::detach` runs its closure on the
// calling thread, and the wrapped closure holds no Python token.
unsafe impl Send for SameThread<'_> {}

impl SameThread<'_> {
    fn call(self) {
        (self.0)();
    }
}

impl Runner<Ready> for Workers {
    fn worker_thread(&self, work: &mut dyn FnMut()) {
        STARTED_AFTER_FORKS.with(|forks| forks.set(fork::generation()));
        let _registered = Registered::new();
        exit::as_worker(|| {
            let attached = exit::attach_worker(|py| {
                ATTACHED.with(|attached| attached.set(true));
                work();
                ATTACHED.with(|attached| attached.set(false));
                behavior::clear_code_facts(py);
            });
            if attached.is_none() {
                // The interpreter is finalizing (or gone): run the loop
                // without Python; `run` drops what it is given.
                work();
            }
        });
    }

    fn run(&self, behavior: Ready) {
        if !ATTACHED.with(Cell::get) {
            // Dropped detached: PyO3 defers the Python references it held.
            drop(behavior);
            return;
        }
        // SAFETY: attached by `worker_thread` for the whole loop, through
        // PyO3, which therefore counts the attachment.
        let py = unsafe { Python::assume_attached() };
        if forked() {
            // The parent's work: the parent runs it.
            behavior::deferring(py, || drop(behavior));
            return;
        }
        if DISCARDING.load(Ordering::Relaxed) {
            N_DISCARDED.fetch_add(1, Ordering::Relaxed);
            behavior::deferring(py, || drop(behavior));
            return;
        }
        behavior::run_and_release(py, behavior);
    }

    fn park(&self, park: &mut dyn FnMut()) {
        if forked() {
            // A child forked inside a behavior, whose body has returned: it
            // ends, as a child ends when the `threading.Thread` that forked
            // it returns (its only thread ends: exit status 0, no
            // finalization).
            std::process::exit(0);
        }
        if !ATTACHED.with(Cell::get) {
            park();
            return;
        }
        // SAFETY: as in `run`.
        let py = unsafe { Python::assume_attached() };
        let park = SameThread(park);
        exit::detach(py, move || park.call());
    }
}

/// The stack of a worker when neither `threading.stack_size()` nor the
/// platform says more: what glibc gives a thread when `RLIMIT_STACK` is
/// unlimited is less, what CPython asks for on macOS more.
const DEFAULT_STACK_SIZE: usize = 8 << 20;

/// The smallest worker stack boc asks for, whatever the limits say.
const MIN_STACK_SIZE: usize = 1 << 20;

/// The stack a `threading.Thread` started now would get (SPEC §5 rule 5):
/// `threading.stack_size()` when set, else the platform's default for new
/// threads (CPython leaves it to the platform on Linux, where glibc uses
/// the `RLIMIT_STACK` soft limit; it asks for 16 MiB on macOS).
pub(crate) fn python_thread_stack_size(py: Python<'_>) -> Option<usize> {
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
