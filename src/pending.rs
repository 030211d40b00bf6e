//! The result handle of a behavior.

use crate::Error;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What a finished behavior left: its return value or its panic message.
pub(crate) type Outcome<R> = Result<R, String>;

enum State<R> {
    Waiting,
    Done(Outcome<R>),
    Taken,
}

/// The slot a behavior writes its outcome into; shared with its [`Pending`].
pub(crate) struct Slot<R> {
    state: Mutex<State<R>>,
}

impl<R> Slot<R> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(State::Waiting) })
    }

    pub(crate) fn set(&self, outcome: Outcome<R>) {
        *self.lock() = State::Done(outcome);
    }

    fn lock(&self) -> MutexGuard<'_, State<R>> {
        // The critical sections are single moves: a panic cannot leave the
        // state half-written, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The result of a scheduled behavior, readable once it has run (for
/// example after [`Handle::quiesce`](crate::Handle::quiesce)).
///
/// Dropping a `Pending` does not cancel the behavior.
///
/// ```
/// # fn main() -> Result<(), boc::Error> {
/// let rt = boc::Runtime::builder().workers(1).build()?;
/// let cown = boc::Cown::new(20);
/// let doubled = rt.when(&cown, |v| *v * 2);
/// rt.quiesce()?;
/// assert!(doubled.is_finished());
/// assert_eq!(doubled.take()?, 40);
/// # Ok(()) }
/// ```
pub struct Pending<R> {
    slot: Arc<Slot<R>>,
}

impl<R> Pending<R> {
    pub(crate) fn new(slot: Arc<Slot<R>>) -> Self {
        Self { slot }
    }

    /// True once the behavior has run (or panicked).
    pub fn is_finished(&self) -> bool {
        !matches!(*self.slot.lock(), State::Waiting)
    }

    /// True if the behavior's body panicked (and the panic was not taken).
    pub fn is_panicked(&self) -> bool {
        matches!(*self.slot.lock(), State::Done(Err(_)))
    }

    /// Takes the behavior's return value.
    ///
    /// # Errors
    ///
    /// [`Error::NotFinished`] if it has not run yet, [`Error::Panicked`] if
    /// its body panicked, [`Error::AlreadyTaken`] on a second call.
    pub fn take(&self) -> Result<R, Error> {
        let mut state = self.slot.lock();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(outcome) => outcome.map_err(Error::Panicked),
            State::Taken => Err(Error::AlreadyTaken),
            State::Waiting => {
                *state = State::Waiting;
                Err(Error::NotFinished)
            }
        }
    }
}

impl<R> std::fmt::Debug for Pending<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("finished", &self.is_finished()).finish()
    }
}
