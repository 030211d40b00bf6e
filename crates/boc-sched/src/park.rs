//! Blocking a worker thread: a per-worker [`Parker`] and its [`Unparker`].
//!
//! Both have token semantics (like `std::thread::park`): an `unpark` that
//! arrives before `park` makes the next `park` return at once, so the order
//! of the two never loses a wakeup. `park` may also return spuriously; the
//! caller (`Idle::park`) loops on its own state word, never on the token.
//!
//! Normally these are crossbeam-utils' parkers (a futex-backed fast path and
//! a mutex/condvar slow path). Under `cfg(boc_loom)` they are a small
//! mutex/condvar pair built on loom's primitives so the model checker can
//! see every blocking step.

#[cfg(not(boc_loom))]
pub(crate) use crossbeam_utils::sync::{Parker, Unparker};

#[cfg(boc_loom)]
pub(crate) use self::loom_parker::{Parker, Unparker};

#[cfg(boc_loom)]
mod loom_parker {
    use crate::primitive::{Condvar, Mutex};
    use loom::sync::Arc;

    /// The blocking half, owned by the worker thread.
    pub(crate) struct Parker {
        unparker: Unparker,
    }

    /// The waking half, shared with every thread that may notify the worker.
    #[derive(Clone)]
    pub(crate) struct Unparker {
        inner: Arc<Inner>,
    }

    struct Inner {
        /// The token: set by `unpark`, consumed by `park`.
        notified: Mutex<bool>,
        condvar: Condvar,
    }

    impl Parker {
        pub(crate) fn new() -> Self {
            Self {
                unparker: Unparker { inner: Arc::new(Inner { notified: Mutex::new(false), condvar: Condvar::new() }) },
            }
        }

        pub(crate) fn unparker(&self) -> &Unparker {
            &self.unparker
        }

        pub(crate) fn park(&self) {
            let inner = &self.unparker.inner;
            let mut notified = inner.notified.lock().unwrap();
            while !*notified {
                notified = inner.condvar.wait(notified).unwrap();
            }
            *notified = false;
        }
    }

    impl Unparker {
        pub(crate) fn unpark(&self) {
            *self.inner.notified.lock().unwrap() = true;
            self.inner.condvar.notify_one();
        }
    }
}
