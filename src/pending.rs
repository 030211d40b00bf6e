//! The result handle of a behavior.

use crate::Error;
use crate::primitive::Unpoisoned;
use boc_core::Watch;
use std::marker::PhantomData;
use std::sync::{Mutex, MutexGuard};

/// What a finished behavior left: its return value or its panic message.
pub(crate) type Outcome<R> = Result<R, String>;

/// Where a behavior leaves its outcome: inside its own payload, so a
/// behavior and its result are one allocation.
pub(crate) enum Outcomes<R> {
    /// The body has not run (yet, or ever, if the behavior was dropped).
    NotRun,
    Done(Outcome<R>),
    Taken,
}

/// Finds the outcome slot in a done behavior's payload.
pub(crate) type Locate<R> = unsafe fn(&Watch) -> Option<&Mutex<Outcomes<R>>>;

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
    watch: Watch,
    locate: Locate<R>,
    /// `Send` and `Sync` exactly when `R: Send`, like the `Mutex` it reads.
    _outcome: PhantomData<Mutex<R>>,
}

impl<R> Pending<R> {
    /// # Safety
    ///
    /// `locate` must be sound for the payload type `watch` was scheduled
    /// with, and only read the outcome slot (which is `Sync` for `R: Send`).
    pub(crate) unsafe fn new(watch: Watch, locate: Locate<R>) -> Self {
        Self { watch, locate, _outcome: PhantomData }
    }

    fn outcomes(&self) -> Option<MutexGuard<'_, Outcomes<R>>> {
        // SAFETY: `new`'s contract.
        let slot = unsafe { (self.locate)(&self.watch) }?;
        // The critical sections are single moves: a panic cannot leave the
        // state half-written, so a poisoned lock is still consistent.
        Some(slot.lock().unpoisoned())
    }

    /// True once the behavior has run (or panicked) and released its cowns.
    pub fn is_finished(&self) -> bool {
        self.watch.is_done()
    }

    /// True if the behavior's body panicked (and the result was not taken).
    pub fn is_panicked(&self) -> bool {
        self.outcomes().is_some_and(|outcomes| matches!(*outcomes, Outcomes::Done(Err(_))))
    }

    /// Takes the behavior's return value.
    ///
    /// # Errors
    ///
    /// [`Error::NotFinished`] if it has not run yet, [`Error::Panicked`] if
    /// its body panicked, [`Error::AlreadyTaken`] on a second call,
    /// [`Error::NotRun`] if it was dropped without running.
    pub fn take(&self) -> Result<R, Error> {
        let Some(mut outcomes) = self.outcomes() else { return Err(Error::NotFinished) };
        match std::mem::replace(&mut *outcomes, Outcomes::Taken) {
            Outcomes::Done(outcome) => outcome.map_err(Error::Panicked),
            Outcomes::Taken => Err(Error::AlreadyTaken),
            Outcomes::NotRun => {
                *outcomes = Outcomes::NotRun;
                Err(Error::NotRun)
            }
        }
    }
}

impl<R> std::fmt::Debug for Pending<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("finished", &self.is_finished()).finish()
    }
}
