//! Interpreter exit (SPEC §5, rule 5): the phases boc goes through while
//! the interpreter shuts down, the one way a boc call detaches and
//! re-attaches, and the gates that keep other threads out once the
//! exit-time stop has begun.
//!
//! # Why
//!
//! Once CPython is finalizing, a thread that tries to attach is made to
//! exit from inside the attach (`pthread_exit` on 3.11 to 3.13). Its stack
//! unwinds through whatever called the attach; through Rust frames that is
//! an abort ("FATAL: exception not rethrown"). So no thread may re-attach
//! inside a boc call once finalization has begun, and boc must know when
//! that is before CPython does: its own exit-time stop (an `atexit`
//! handler) runs before the interpreter's finalizing flag is set.
//!
//! # Phases
//!
//! [`RUNNING`] → [`EXITING`] (the exit-time stop has begun) → [`CLOSED`]
//! (it has ended; finalization follows). Only the main thread's exit-time
//! stop moves the phase, forward only.
//!
//! * From `EXITING` on, `@when` and `start()` from a *foreign* thread
//!   (neither the main thread nor a boc worker) that already existed when
//!   the stop began raise `RuntimeError`. CPython joins the non-daemon
//!   threads before `atexit`, so such a thread is a daemon thread; without
//!   this, one that schedules in a loop would keep the stop from ever
//!   finishing. Refusing (rather than parking it) lets it unwind, releasing
//!   any lock that a behavior still running may need. Threads started
//!   during the stop (by behaviors still in flight) may schedule: their
//!   work is part of what the stop waits for.
//! * At `CLOSED` no boc thread re-attaches: a wait that ends parks instead
//!   of returning, a foreign thread entering boc parks (detached, forever:
//!   it dies with the process), and the waker and watchdog threads stop
//!   calling Python. `@when` on the main thread (from a later `atexit`
//!   handler, or a `__del__` during finalization) raises `RuntimeError`.

//! # The attach window
//!
//! A thread re-attaching after a detached wait checks the phase and then
//! attaches; the main thread could move to `CLOSED` and finalize between
//! the two. So the check and the attach form a window, counted in
//! [`N_ATTACHING`]: a thread increments it, then reads the phase; the main
//! thread stores `CLOSED`, then waits (detached) until the count is zero.
//! Both sides use SeqCst (a store-load pair on each side, Dekker style):
//! either the thread reads `CLOSED` and parks, or the main thread sees its
//! increment and waits for it to attach and leave the window.
//!
//! A foreign thread running Python from inside a boc call is just as
//! exposed: the Python may release the GIL (a `__del__` run by a drop, a
//! logging handler, an import), and re-taking it during finalization
//! unwinds through the boc call. So a foreign thread holds a window for
//! the whole of every boc call that may run Python ([`enter`]), except
//! while it waits detached, and so does a Rust thread calling Python (the
//! waker's callback, the watchdog's sink: [`attach`]). The main thread's
//! close waits for all of them (for at most [`WINDOW_PATIENCE`]).

use crate::errors;
use crate::primitive::Unpoisoned;
use crate::primitive::{AtomicU8, AtomicUsize, Ordering};
use pyo3::prelude::*;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Before the exit-time stop.
pub(crate) const RUNNING: u8 = 0;
/// The exit-time stop is running.
pub(crate) const EXITING: u8 = 1;
/// The exit-time stop is over; the interpreter finalizes next.
pub(crate) const CLOSED: u8 = 2;

/// The phase. Written (SeqCst) only by the main thread's exit-time stop,
/// forward only; read by every gate (SeqCst: the `CLOSED` read pairs with
/// the window protocol above; the others only need to see the phase
/// eventually, and SeqCst costs a plain load on the platforms we run on).
static PHASE: AtomicU8 = AtomicU8::new(RUNNING);

/// Threads inside an attach window (module docs). Incremented (SeqCst) by
/// a thread before it reads the phase, decremented (SeqCst) once it is
/// attached (or has given up); read (SeqCst) by the main thread after it
/// stores `CLOSED`.
static N_ATTACHING: AtomicUsize = AtomicUsize::new(0);

/// How long the main thread waits at `CLOSED` for threads inside an attach
/// window (a waker callback that never returns must not hang the exit).
const WINDOW_PATIENCE: Duration = Duration::from_secs(10);

thread_local! {
    /// This thread is a boc worker (set for the whole worker loop).
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
    /// Attach windows this thread is inside (0 or 1; nesting is allowed).
    static WINDOWS: Cell<usize> = const { Cell::new(0) };
}

/// The current phase.
pub(crate) fn phase() -> u8 {
    PHASE.load(Ordering::SeqCst)
}

/// Marks the calling thread as a boc worker for the duration of `f`.
pub(crate) fn as_worker<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            IS_WORKER.with(|worker| worker.set(false));
        }
    }
    IS_WORKER.with(|worker| worker.set(true));
    let _reset = Reset;
    f()
}

/// Whether the calling thread is a boc worker.
pub(crate) fn on_worker() -> bool {
    IS_WORKER.with(Cell::get)
}

/// A thread that is neither the main thread nor a boc worker.
fn is_foreign() -> bool {
    !crate::thread::is_main_thread() && !IS_WORKER.with(Cell::get)
}

/// Enters an attach window; false (and no window) once the phase is
/// `CLOSED`.
fn enter_window() -> bool {
    N_ATTACHING.fetch_add(1, Ordering::SeqCst);
    if PHASE.load(Ordering::SeqCst) == CLOSED {
        N_ATTACHING.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    WINDOWS.with(|windows| windows.set(windows.get() + 1));
    true
}

fn leave_window() {
    WINDOWS.with(|windows| windows.set(windows.get() - 1));
    N_ATTACHING.fetch_sub(1, Ordering::SeqCst);
}

/// What a foreign thread that has called into boc is doing, as far as boc
/// knows (for [`settle_foreign`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activity {
    /// In a boc call, or back in its own Python since the last one.
    Python,
    /// Detached in a boc wait: it will not run Python again once closed.
    Waiting,
    /// Parked forever.
    Parked,
}

/// Foreign threads that have called into boc (`threading` identities), with
/// what each was last seen doing. Written by those threads (under the lock),
/// read by the main thread's close.
static FOREIGN: std::sync::Mutex<Vec<(std::os::raw::c_ulong, Activity)>> = std::sync::Mutex::new(Vec::new());

/// [`FOREIGN`]'s lock, which a thread takes detached as it parks forever,
/// held across a fork by [`crate::fork`].
pub(crate) fn hold_for_fork() -> std::sync::MutexGuard<'static, Vec<(std::os::raw::c_ulong, Activity)>> {
    FOREIGN.lock().unpoisoned()
}

/// In a forked child, whose only thread is the forking one: forgets the
/// other threads' attach windows (the exit-time stop would wait for them)
/// and what they were doing.
pub(crate) fn after_fork_in_child() {
    N_ATTACHING.store(WINDOWS.with(Cell::get), Ordering::SeqCst);
    let ident = crate::thread::thread_ident();
    FOREIGN.lock().unpoisoned().retain(|(thread, _)| *thread == ident);
}

/// How long the close waits for foreign threads running Python to reach
/// boc (where they park) or to end.
const SETTLE_PATIENCE: Duration = Duration::from_millis(500);

/// Records what the calling (foreign) thread is doing.
fn note_activity(activity: Activity) {
    let ident = crate::thread::thread_ident();
    let mut foreign = FOREIGN.lock().unpoisoned();
    match foreign.iter_mut().find(|(thread, _)| *thread == ident) {
        Some((_, seen)) => *seen = activity,
        None => foreign.push((ident, activity)),
    }
}

/// Never returns: the thread stays detached, asleep, until the process
/// ends. For threads that may no longer take part (module docs).
fn sleep_forever() -> ! {
    if is_foreign() {
        note_activity(Activity::Parked);
    }
    // Leave any window this thread is in: the main thread waits for them.
    let n_windows = WINDOWS.with(|windows| windows.replace(0));
    N_ATTACHING.fetch_sub(n_windows, Ordering::SeqCst);
    loop {
        std::thread::park();
    }
}

/// Parks the calling (attached) thread forever, detached.
fn park_forever(py: Python<'_>) -> ! {
    py.detach(|| sleep_forever())
}

/// A boc call from Python in progress; on a foreign thread, an attach
/// window (module docs). Made by [`enter`] or [`try_enter`].
pub(crate) struct Entered {
    counted: bool,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if self.counted {
            leave_window();
        }
    }
}

/// Entering a boc call that may run Python (a drop's `__del__`, a user
/// callback, logging): on a foreign thread, once the exit-time stop has
/// closed, the thread parks forever instead; otherwise the returned guard
/// holds a window until the call returns.
pub(crate) fn enter(py: Python<'_>) -> Entered {
    try_enter().unwrap_or_else(|| park_forever(py))
}

/// [`enter`], but `None` instead of parking (for code that must go on, such
/// as a finalizer, and can skip its Python part).
pub(crate) fn try_enter() -> Option<Entered> {
    if !is_foreign() {
        return Some(Entered { counted: false });
    }
    note_activity(Activity::Python);
    // `then`, not `then_some`: an `Entered` made eagerly and then dropped
    // would leave a window it never entered.
    enter_window().then(|| Entered { counted: true })
}

/// `py.detach(f)` for every boc call that detaches (SPEC §5 rule 3): runs
/// `f` detached (out of any window, so the main thread's close does not
/// wait for it); then, unless the exit-time stop has closed, re-attaches
/// (back in its windows) and returns `f`'s value. Once it has closed, the
/// thread never re-attaches: it parks forever, detached, since the
/// interpreter may be finalizing.
pub(crate) fn detach<T, F>(py: Python<'_>, f: F) -> T
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    if crate::thread::is_main_thread() {
        // The main thread is the one that closes, and the one that
        // finalizes: its re-attach is always safe.
        return py.detach(f);
    }
    let foreign = is_foreign();
    if foreign {
        note_activity(Activity::Waiting);
    }
    let held = WINDOWS.with(|windows| windows.replace(0));
    let value = py.detach(|| {
        // Out of its windows only now, once fully detached: CPython's
        // `drop_gil` still reads this thread's state after handing the GIL
        // over, and a main thread let go by this decrement any earlier
        // could finalize and free that state in between.
        N_ATTACHING.fetch_sub(held, Ordering::SeqCst);
        let value = f();
        // The windows it held, plus one for the re-attach itself.
        N_ATTACHING.fetch_add(held + 1, Ordering::SeqCst);
        if PHASE.load(Ordering::SeqCst) == CLOSED {
            N_ATTACHING.fetch_sub(held + 1, Ordering::SeqCst);
            sleep_forever();
        }
        value
    });
    WINDOWS.with(|windows| windows.set(held));
    N_ATTACHING.fetch_sub(1, Ordering::SeqCst);
    if foreign {
        note_activity(Activity::Python);
    }
    value
}

/// Runs `f` attached, from a thread that is not attached (the waker's and
/// the watchdog's threads, and a worker's loop): `None`, without calling
/// `f`, once the exit-time stop has closed or when the interpreter cannot
/// be attached to. The thread stays inside an attach window while `f` runs
/// (module docs), so `f` must be short.
pub(crate) fn attach<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    if !enter_window() {
        return None;
    }
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            leave_window();
        }
    }
    let _leave = Leave;
    Python::try_attach(f)
}

/// Like [`attach`], but leaves the window as soon as the thread is
/// attached: for a worker's loop, which runs Python for as long as the
/// pool lives and re-attaches only through [`detach`]. The exit-time stop
/// joins every pool before it closes.
pub(crate) fn attach_worker<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    if !enter_window() {
        return None;
    }
    let mut f = Some(f);
    let mut left = false;
    let result = Python::try_attach(|py| {
        leave_window();
        left = true;
        f.take().map(|f| f(py))
    });
    if !left {
        leave_window();
    }
    result.flatten()
}

/// The gate of `@when` and `start()` (module docs): during the exit-time
/// stop, refused on a foreign thread that existed when it began; after it,
/// refused on the main thread and a foreign thread parks.
pub(crate) fn gate_schedule(py: Python<'_>, operation: &str) -> PyResult<()> {
    match phase() {
        RUNNING => Ok(()),
        EXITING if is_foreign() && existed_at_exit() => {
            REFUSED.lock().unpoisoned().push(crate::thread::thread_ident());
            Err(errors::exiting(operation))
        }
        EXITING => Ok(()),
        _ if is_foreign() => park_forever(py),
        _ => Err(errors::shut_down(operation)),
    }
}

/// Threads that ran Python when the exit-time stop began (`threading`
/// identities), the main thread's aside.
static EXISTED_AT_EXIT: std::sync::Mutex<Vec<std::os::raw::c_ulong>> = std::sync::Mutex::new(Vec::new());

/// Threads refused by [`gate_schedule`] during the exit-time stop.
static REFUSED: std::sync::Mutex<Vec<std::os::raw::c_ulong>> = std::sync::Mutex::new(Vec::new());

/// How long the exit-time stop waits for refused threads to end.
const REFUSED_PATIENCE: Duration = Duration::from_secs(2);

/// Before closing: waits (joining, for at most [`REFUSED_PATIENCE`]) for
/// the daemon threads that were refused during the stop, most of which end
/// on that error. A daemon thread still running Python when the interpreter
/// finalizes races with it (CPython 3.13 frees its thread state under it);
/// one that ends first does not.
fn join_refused(py: Python<'_>) {
    let mut refused = std::mem::take(&mut *REFUSED.lock().unpoisoned());
    refused.sort_unstable();
    refused.dedup();
    if refused.is_empty() {
        return;
    }
    let deadline = Instant::now() + REFUSED_PATIENCE;
    let joined = (|| -> PyResult<()> {
        for thread in py.import("threading")?.call_method0("enumerate")?.try_iter()? {
            let thread = thread?;
            let ident: Option<std::os::raw::c_ulong> = thread.getattr("ident")?.extract()?;
            if ident.is_some_and(|ident| refused.contains(&ident)) {
                let left = deadline.saturating_duration_since(Instant::now());
                thread.call_method1("join", (left.as_secs_f64(),))?;
            }
        }
        Ok(())
    })();
    if let Err(error) = joined {
        error.write_unraisable(py, None);
    }
}

/// Whether the calling thread ran Python when the exit-time stop began.
fn existed_at_exit() -> bool {
    let ident = crate::thread::thread_ident();
    EXISTED_AT_EXIT.lock().unpoisoned().contains(&ident)
}

/// Moves to [`EXITING`]: the exit-time stop begins. Notes which threads
/// exist now (every thread running Python has a frame).
pub(crate) fn begin_exit(py: Python<'_>) {
    let idents = py
        .import("sys")
        .and_then(|sys| sys.call_method0("_current_frames"))
        .and_then(|frames| frames.call_method0("keys"))
        .and_then(|keys| keys.try_iter()?.map(|ident| ident?.extract::<std::os::raw::c_ulong>()).collect());
    match idents {
        Ok(idents) => *EXISTED_AT_EXIT.lock().unpoisoned() = idents,
        Err(error) => error.write_unraisable(py, None),
    }
    PHASE.fetch_max(EXITING, Ordering::SeqCst);
}

/// Moves to [`CLOSED`], then waits (detached) until no thread is inside an
/// attach window, so none attaches once the interpreter finalizes.
pub(crate) fn close(py: Python<'_>) {
    PHASE.store(CLOSED, Ordering::SeqCst);
    let deadline = Instant::now() + WINDOW_PATIENCE;
    // Not `detach`: this thread is the one that closed, and it must come
    // back to finish the exit.
    let drained = py.detach(|| {
        while N_ATTACHING.load(Ordering::SeqCst) != 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        true
    });
    settle_foreign(py);
    if !drained {
        eprintln!(
            "boc: after {} s, a thread is still running Python inside a boc call (a notice_update function, \
             receive's after callback, a __del__ run by a drop, a pump waker or watchdog sink); the interpreter \
             finalizes anyway, and that thread may crash the process if it takes the GIL again",
            WINDOW_PATIENCE.as_secs()
        );
    }
}

/// How the process should end, decided during the exit-time stop.
#[derive(Clone, Copy, Debug)]
enum ExitStatus {
    /// A main-side body raised `SystemExit` with this code.
    Code(i32),
    /// Ctrl-C, or a main-side body raised `KeyboardInterrupt`.
    Interrupted,
}

/// Internal errors after which the exit-time stop stops pumping and only
/// waits for the workers.
const MAX_INTERNAL_ERRORS: usize = 3;

/// Set at most once, by the exit-time stop; read by [`end_process`].
static EXIT_STATUS: std::sync::Mutex<Option<ExitStatus>> = std::sync::Mutex::new(None);

/// The exit-time stop: boc's `atexit` handler, registered at import, so it
/// runs before the interpreter finalizes (and before the handlers
/// registered before `import boc`).
///
/// Runs everything still scheduled, pumping main-side behaviors on the main
/// thread, then stops the workers; meanwhile foreign threads that schedule
/// or wait are parked ([`EXITING`]). If it lasts longer than the watchdog's
/// threshold, it says (logger `boc`) which behaviors it waits for, and goes
/// on waiting. A `SystemExit` raised by a main-side body does not stop it:
/// the rest runs, and the process then ends with that status. Ctrl-C (or
/// a body's `KeyboardInterrupt`) stops starting behaviors (those not
/// started are dropped, and counted in a report), waits for the bodies
/// running on workers, and the process then ends as an interrupted Python
/// does; a second Ctrl-C ends it at once. Finally it reports exceptions
/// still alive that nobody retrieved, and closes ([`CLOSED`]).
#[pyfunction]
pub(crate) fn _shutdown_at_exit(py: Python<'_>) {
    use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
    begin_exit(py);
    let mut status = None;
    let mut interrupted = false;
    let mut n_internal_errors = 0;
    let report = |py: Python<'_>, runtime: &crate::runtime::Runtime| report_waiting(py, runtime);
    loop {
        let grace = crate::runtime::get().map_or(crate::runtime::DEFAULT_EXIT_GRACE, |runtime| runtime.exit_grace());
        let mut waiting = crate::lifecycle::Waiting::new("stop", None, true);
        waiting.patience = Some((grace, &report));
        waiting.discard = interrupted;
        match errors::boundary(|| crate::lifecycle::wait_for_all(py, &waiting)) {
            // Every pool joined, also one that a thread was starting as
            // the stop began; or wait for what that one now runs.
            Ok(()) if crate::runtime::join_all_pools(py) => break,
            Ok(()) => {}
            Err(error) if error.is_instance_of::<PySystemExit>(py) => {
                if status.is_none() {
                    status = system_exit_status(py, &error).map(ExitStatus::Code);
                }
            }
            Err(error) if error.is_instance_of::<PyKeyboardInterrupt>(py) => {
                if interrupted {
                    exit_now(py, 130);
                }
                interrupted = true;
                status = Some(ExitStatus::Interrupted);
                crate::worker::discard_from_now();
                log(
                    py,
                    "warning",
                    "interrupted during interpreter exit: boc drops the behaviors that have not started and waits \
                     for the ones running now (interrupt again to exit at once)",
                );
            }
            Err(error) if !error.is_instance_of::<pyo3::exceptions::PyException>(py) => {
                // Another BaseException from a main-side body (GeneratorExit,
                // a class of the program's): reported, and the rest runs.
                log_exception(py, "a main-side behavior raised during the exit-time stop", &error);
            }
            Err(error) => {
                // Not from a body (their Exceptions land on result cowns): an
                // internal error. Still, no worker may run once the
                // interpreter finalizes: stop without pumping.
                log_exception(py, "boc could not finish its behaviors at interpreter exit", &error);
                crate::worker::discard_from_now();
                interrupted = true;
                n_internal_errors += 1;
                if n_internal_errors >= MAX_INTERNAL_ERRORS {
                    crate::lifecycle::stop_without_pumping(py);
                    break;
                }
            }
        }
    }
    let n_discarded = crate::worker::n_discarded();
    if n_discarded > 0 {
        let noun = if n_discarded == 1 { "behavior was" } else { "behaviors were" };
        log(py, "warning", &format!("interrupted at interpreter exit: {n_discarded} {noun} dropped without running"));
    }
    // After `stop_without_pumping`: workers of a pool that another thread
    // was stopping may still be exiting; none may be left once the
    // interpreter finalizes.
    crate::runtime::join_all_pools(py);
    crate::report::report_alive_at_exit(py);
    join_refused(py);
    close(py);
    if let Some(status) = status {
        set_exit_status(status);
    }
}

/// The status CPython gives a `SystemExit` (`Py_HandleSystemExit`): its
/// code if an int, 0 for None, else 1 after printing the code to stderr.
/// `None` for status 0, which leaves the interpreter's own status alone.
fn system_exit_status(py: Python<'_>, error: &PyErr) -> Option<i32> {
    let code = error.value(py).getattr("code").ok()?;
    if code.is_none() {
        return None;
    }
    let status = match code.extract::<i64>() {
        Ok(code) => code as i32,
        Err(_) => {
            let printed = py.import("sys").and_then(|sys| sys.getattr("stderr")).and_then(|stderr| {
                stderr.call_method1("write", (format!("{}\n", code.str()?),))?;
                stderr.call_method0("flush")
            });
            if let Err(error) = printed {
                error.write_unraisable(py, None);
            }
            1
        }
    };
    (status != 0).then_some(status)
}

/// Records how the process must end, and has CPython call
/// [`end_process`] at the very end of finalization (an `atexit` handler
/// cannot change the exit status; a low-level exit function can end the
/// process with one once everything else is done).
fn set_exit_status(status: ExitStatus) {
    let mut slot = EXIT_STATUS.lock().unpoisoned();
    if slot.is_none() {
        *slot = Some(status);
        // SAFETY: registers a C function; no preconditions. If CPython's
        // table of them is full (32), the status is lost: said on stderr.
        if unsafe { pyo3::ffi::Py_AtExit(Some(end_process)) } != 0 {
            eprintln!("boc: cannot register the exit status {status:?} (too many Py_AtExit functions)");
        }
    }
}

/// Ends the process with the status the exit-time stop recorded; called by
/// CPython after finalization (no Python may run here).
extern "C" fn end_process() {
    let status = *EXIT_STATUS.lock().unpoisoned();
    match status {
        Some(ExitStatus::Code(code)) => std::process::exit(code),
        Some(ExitStatus::Interrupted) => {
            // As CPython ends after an unhandled KeyboardInterrupt: killed by
            // SIGINT, so a parent (a shell) sees an interrupted child.
            #[cfg(unix)]
            // SAFETY: restores the default action and raises the signal; no
            // Python runs any more.
            unsafe {
                signal(SIGINT, SIG_DFL);
                raise(SIGINT);
            }
            std::process::exit(130)
        }
        None => {}
    }
}

#[cfg(unix)]
const SIGINT: std::os::raw::c_int = 2;
#[cfg(unix)]
const SIG_DFL: usize = 0;

#[cfg(unix)]
unsafe extern "C" {
    fn signal(signum: std::os::raw::c_int, handler: usize) -> usize;
    fn raise(signum: std::os::raw::c_int) -> std::os::raw::c_int;
}

/// After the close: waits (for at most [`SETTLE_PATIENCE`]) until no
/// foreign thread that has called into boc is still running Python outside
/// it, each having parked at its next boc call, gone into a boc wait, or
/// ended. A daemon thread still running Python when the interpreter
/// finalizes races with it (CPython 3.13 frees thread states under running
/// daemon threads; 3.14 freezes them instead); one parked in boc does not.
fn settle_foreign(py: Python<'_>) {
    let deadline = Instant::now() + SETTLE_PATIENCE;
    loop {
        let running: Vec<_> = FOREIGN
            .lock()
            .unpoisoned()
            .iter()
            .filter(|(_, activity)| *activity == Activity::Python)
            .map(|(ident, _)| *ident)
            .collect();
        if running.is_empty() || Instant::now() >= deadline {
            return;
        }
        let alive = py
            .import("sys")
            .and_then(|sys| sys.call_method0("_current_frames"))
            .and_then(|frames| running.iter().map(|ident| frames.contains(*ident)).collect::<PyResult<Vec<_>>>());
        match alive {
            Ok(alive) if alive.contains(&true) => py.detach(|| std::thread::sleep(Duration::from_millis(1))),
            _ => return,
        }
    }
}

/// Ends the process at once (a second Ctrl-C during the exit-time stop):
/// bodies still run on workers, so the interpreter cannot finalize.
fn exit_now(py: Python<'_>, status: i32) -> ! {
    let _ = py.import("sys").and_then(|sys| {
        for stream in ["stdout", "stderr"] {
            sys.getattr(stream)?.call_method0("flush")?;
        }
        Ok(())
    });
    eprintln!("boc: interrupted again during interpreter exit: exiting now, without finalizing");
    let _ = py.import("os").and_then(|os| os.call_method1("_exit", (status,)));
    std::process::exit(status)
}

/// Logs `message` on logger `boc` at `level`; a failure is unraisable.
fn log(py: Python<'_>, level: &str, message: &str) {
    let logged = py
        .import("logging")
        .and_then(|logging| logging.call_method1("getLogger", ("boc",)))
        .and_then(|logger| logger.call_method1(level, (message,)));
    if let Err(error) = logged {
        error.write_unraisable(py, None);
    }
}

/// Logs `message` with `error`'s traceback on logger `boc` (ERROR).
fn log_exception(py: Python<'_>, message: &str, error: &PyErr) {
    let logged = (|| -> PyResult<()> {
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("exc_info", error.value(py))?;
        py.import("logging")?.call_method1("getLogger", ("boc",))?.call_method("error", (message,), Some(&kwargs))?;
        Ok(())
    })();
    if let Err(error) = logged {
        error.write_unraisable(py, None);
    }
}

/// Says (logger `boc`, WARNING) what the exit-time stop still waits for:
/// the bodies running on workers (by qualname and file:line, with where
/// each is now) and the main-side behaviors queued (by label).
fn report_waiting(py: Python<'_>, runtime: &crate::runtime::Runtime) {
    let n_in_flight = runtime.n_in_flight();
    let mut parts = running_bodies(py);
    let n_main = runtime.main().len();
    if n_main > 0 {
        let labels = runtime.main().labels(boc::engine::MAX_REPORTED_LABELS);
        let mut queued = format!("{n_main} ready main-side");
        if !labels.is_empty() {
            queued.push_str(&format!(" ({})", labels.iter().map(|label| &**label).collect::<Vec<_>>().join(", ")));
        }
        parts.push(queued);
    }
    let noun = if n_in_flight == 1 { "behavior" } else { "behaviors" };
    let mut message = format!("interpreter exit is waiting for {n_in_flight} {noun} still scheduled or running");
    if !parts.is_empty() {
        message.push_str(&format!(": {}", parts.join("; ")));
    }
    message.push_str(". It keeps waiting until they finish; Ctrl-C drops the ones that have not started.");
    log(py, "warning", &message);
}

/// `qualname (file:line) on boc-worker-N, now at file:line` for each body
/// running on a worker, from the workers' Python frames.
fn running_bodies(py: Python<'_>) -> Vec<String> {
    let Ok(frames) = py.import("sys").and_then(|sys| sys.call_method0("_current_frames")) else {
        return Vec::new();
    };
    let mut bodies = Vec::new();
    for (ident, name) in crate::worker::threads() {
        let Ok(Some(innermost)) = frames.get_item(ident).map(Some).or_else(|_| Ok::<_, PyErr>(None)) else {
            continue;
        };
        let described = (|| -> PyResult<String> {
            let mut outermost = innermost.clone();
            loop {
                let back = outermost.getattr("f_back")?;
                if back.is_none() {
                    break;
                }
                outermost = back;
            }
            let body = outermost.getattr("f_code")?;
            let qualname = body.getattr("co_qualname").or_else(|_| body.getattr("co_name"))?;
            let here = innermost.getattr("f_code")?;
            Ok(format!(
                "{qualname} ({}:{}) running on {name}, now at {}:{}",
                body.getattr("co_filename")?,
                body.getattr("co_firstlineno")?,
                here.getattr("co_filename")?,
                innermost.getattr("f_lineno")?,
            ))
        })();
        if let Ok(described) = described {
            bodies.push(described);
        }
    }
    bodies
}

/// Runs a boc call from Python: inside [`enter`]'s guard, and with a Rust
/// panic turned into `RuntimeError` ([`errors::boundary`]).
pub(crate) fn call<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    let _entered = enter(py);
    errors::boundary(f)
}

/// A value whose drop may run Python (a `__del__`), held by an object
/// that any thread may free: on a foreign thread it is dropped inside an
/// attach window (module docs), so the exit-time stop's close waits for
/// that Python to finish; once the stop has closed it is leaked instead
/// (the process is ending, and that Python could no longer run safely).
pub(crate) struct DropsPython<T>(std::mem::ManuallyDrop<T>);

impl<T> DropsPython<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(std::mem::ManuallyDrop::new(value))
    }
}

impl<T> std::ops::Deref for DropsPython<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Drop for DropsPython<T> {
    fn drop(&mut self) {
        if let Some(_entered) = try_enter() {
            // SAFETY: dropped once, here; never used again.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.0) };
        }
    }
}
