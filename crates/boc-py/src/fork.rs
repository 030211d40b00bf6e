//! `os.fork()`: the child gets a runtime no vanished thread holds locked.
//!
//! # Why
//!
//! A forked child has only the thread that forked. A lock that another
//! thread held at the fork stays held in the child forever, by a thread
//! it does not have, and the child blocks on it the first time it needs it.
//!
//! CPython forks with no other thread attached: it holds the GIL, or (on a
//! free-threaded build) it has stopped the world. None of the binding's
//! critical sections runs Python or lets go of the thread's attachment
//! inside, so the ones entered attached are never cut in half by a fork.
//! The ones entered *detached* can be: a worker registers in
//! [`crate::worker`]'s list as it starts and leaves it as it ends, a pool
//! start records itself in `POOLS`, a receiver re-takes the mailbox's lock
//! as it wakes up, the watchdog thread looks at the main queue, a value
//! dropped detached goes to the graveyard (or, pinned, to the main queue
//! through the current pool), and a thread that parks forever at exit
//! notes it in `FOREIGN`.
//!
//! # How
//!
//! A `pthread_atfork` handler takes those locks just before the fork, from
//! inside `fork()` itself: after CPython's own preparation (so on a
//! free-threaded build the world is already stopped, and no attached thread
//! can be blocked on a lock held here, which the stop would wait for).
//! Their holders are detached threads that wait for nothing while they hold
//! one and hold at most one at a time, so taking them, in a fixed order,
//! cannot deadlock. After the fork, both sides let them go (the child's
//! handler does nothing else: it also runs between `fork` and `exec` in
//! subprocesses). Then `os.register_at_fork`'s `after_in_child` hook,
//! [`_after_fork_in_child`], makes the child's runtime its own: no pools
//! (the next `@when` starts a fresh one), no worker or foreign thread but
//! itself, no pump waker.
//!
//! The pump waker's thread is signalled without a lock, for the same reason.
//!
//! A child forked inside a callback that one of boc's threads runs (a
//! body on a worker, the pump waker, the watchdog's sink) has that thread
//! as its only one; it ends when the callback returns
//! ([`end_if_forked_since`]).
//!
//! What a fork does not give the child: behaviors in flight at the fork
//! (lost there, with the cowns they hold), the pump waker (call
//! `set_pump_waker` again), the watchdog's thread (no starvation reports in
//! the child), a main thread when it forked from another one (boc's home
//! stays the parent's main thread). The pump descriptor is the parent's (a
//! socket pair shared across the fork). See docs/python-misuse.md, rows
//! 113 and 149.

use crate::primitive::{AtomicUsize, Ordering};
use pyo3::prelude::*;
use std::cell::RefCell;

/// Forks this process has gone through, counted in each child by
/// [`_after_fork_in_child`]. Written (Relaxed) by the forking thread in the
/// child, before it runs anything else; read (Relaxed) by boc's threads to
/// learn whether a callback they ran forked (then they are the child's
/// only thread, and that thread is the reader).
static FORKS: AtomicUsize = AtomicUsize::new(0);

/// How many forks this process has gone through.
pub(crate) fn generation() -> usize {
    FORKS.load(Ordering::Relaxed)
}

/// Ends the process if it forked since [`generation`] returned `before`
/// on this thread, which is then a forked child's only thread: a boc
/// thread (waker, watchdog) whose Python callback forked. Nothing in the
/// child would ever wake it again, so the child ends as it would had a
/// `threading.Thread` forked and returned (exit status 0, without
/// finalizing). A worker does the same once its body returns.
pub(crate) fn end_if_forked_since(before: usize) {
    if generation() != before {
        std::process::exit(0);
    }
}

/// Every lock [`prepare`] takes, in the order taken (the struct's field
/// order, which is also the order they are released in).
struct Held {
    _runtime: crate::runtime::ForkHold,
    _workers: std::sync::MutexGuard<'static, Vec<(std::os::raw::c_ulong, String)>>,
    _foreign: std::sync::MutexGuard<'static, Vec<(std::os::raw::c_ulong, crate::exit::Activity)>>,
    _mailbox: boc::engine::MailboxHold<'static, String, Py<PyAny>>,
}

thread_local! {
    /// The locks [`prepare`] took, on the forking thread, until [`release`]
    /// (on that thread in the parent; in the child, on its only thread,
    /// which is the same one).
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Registers the fork handlers, once per process.
pub(crate) fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    #[cfg(unix)]
    INSTALLED.call_once(|| {
        unsafe extern "C" {
            fn pthread_atfork(
                prepare: Option<unsafe extern "C" fn()>,
                parent: Option<unsafe extern "C" fn()>,
                child: Option<unsafe extern "C" fn()>,
            ) -> std::os::raw::c_int;
        }
        // SAFETY: the three handlers are functions of this extension, which
        // CPython never unloads, and none of them unwinds (they cannot
        // panic: every lock is taken through its poison).
        // An error (ENOMEM) leaves forks as they were before this module.
        let _ = unsafe { pthread_atfork(Some(prepare), Some(release), Some(release)) };
    });
}

/// Before `fork()`: takes the locks (module docs).
extern "C" fn prepare() {
    let held = Held {
        _runtime: crate::runtime::hold_for_fork(),
        _workers: crate::worker::hold_for_fork(),
        _foreign: crate::exit::hold_for_fork(),
        _mailbox: crate::messages::hold_for_fork(),
    };
    // A thread whose thread-locals are gone (one forking as it ends) keeps
    // nothing: the locks are released here, as before this module.
    let _ = HELD.try_with(|slot| *slot.borrow_mut() = Some(held));
}

/// After `fork()`, in the parent and in the child: releases the locks.
extern "C" fn release() {
    let _ = HELD.try_with(|slot| slot.borrow_mut().take());
}

/// `_after_fork_in_child()`, registered with `os.register_at_fork`: makes
/// the runtime the child's own (module docs). A child forked inside a
/// behavior ends when that body returns (see `worker::forked`).
#[pyfunction]
pub(crate) fn _after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
    crate::worker::after_fork_in_child();
    crate::exit::after_fork_in_child();
    crate::runtime::after_fork_in_child();
}
