//! The crate's error types: [`Error`] for refused calls and failed setup,
//! [`PumpError`] for a [`pump`](crate::MainQueue::pump) that was refused or
//! stopped by a task.

use crate::primitive::ThreadId;
use crate::pump::PumpReport;
use std::any::Any;
use std::fmt;

/// Why a call on a [`MainQueue`](crate::MainQueue) was refused, or why one
/// could not be set up.
///
/// ```
/// use boc_pin::{Error, MainConfig, MainQueue};
///
/// let queue = MainQueue::<u32>::new(MainConfig { watchdog: None })?;
/// let err = std::thread::scope(|scope| {
///     scope.spawn(|| queue.pump(&|_: u32| boc_pin::Outcome::Ok, boc_pin::Budget::unbounded())).join().unwrap()
/// })
/// .unwrap_err();
/// assert!(matches!(err.refusal(), Some(Error::NotHomeThread { .. })));
/// assert!(err.to_string().starts_with("pump called off the home thread"));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A home-thread-only operation was called from another thread.
    #[error("{operation} called off the home thread: the home thread is {}, the caller is {}",
        ThreadLabel(*home, home_name.as_deref()), ThreadLabel(Some(*caller), caller_name.as_deref()))]
    NotHomeThread {
        /// The refused operation (`"pump"`, `"wait_for_work"`, `"wait"`).
        operation: &'static str,
        /// The home thread; `None` when the queue's home is defined by a
        /// check ([`MainQueue::with_home_check`](crate::MainQueue::with_home_check)).
        home: Option<ThreadId>,
        /// Its name, if it has one (for a checked home, the check's).
        home_name: Option<String>,
        /// The thread that made the call.
        caller: ThreadId,
        /// Its name, if it has one.
        caller_name: Option<String>,
    },
    /// A home-thread operation was called from inside a task that
    /// [`pump`](crate::MainQueue::pump) is running (pump is not re-entrant).
    #[error("{operation} called from inside a task run by pump (pump is not re-entrant)")]
    Reentrant {
        /// The refused operation (`"pump"`, `"wait_for_work"`, `"wait"`).
        operation: &'static str,
    },
    /// The waker's socket pair could not be created.
    #[error("cannot create the waker file descriptor: {0}")]
    WakerFd(#[source] std::io::Error),
    /// The operating system refused to start the watchdog thread.
    #[error("cannot spawn the watchdog thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Why [`pump`](crate::MainQueue::pump) returned early: it was refused (no
/// task ran), or a task asked it to stop with [`Outcome::Stop`](crate::Outcome::Stop).
///
/// ```
/// use boc_pin::{Budget, MainConfig, MainQueue, Outcome, PumpError};
///
/// let queue = MainQueue::new(MainConfig { watchdog: None })?;
/// queue.push("fine", None);
/// queue.push("fatal", None);
/// queue.push("later", None);
/// let runner = |task: &str| match task {
///     "fatal" => Outcome::Stop(Box::new("interrupted")),
///     _ => Outcome::Ok,
/// };
/// match queue.pump(&runner, Budget::unbounded()) {
///     Err(PumpError::Stopped { report, payload }) => {
///         assert_eq!((report.executed, report.raised, report.pending), (2, 1, 1));
///         assert_eq!(*payload.downcast::<&str>().unwrap(), "interrupted");
///     }
///     other => panic!("expected a stop, got {other:?}"),
/// }
/// # Ok::<(), boc_pin::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PumpError {
    /// The call was refused before any task ran (off the home thread, or
    /// re-entrant). The queue is untouched.
    #[error(transparent)]
    Refused(#[from] Error),
    /// A task returned [`Outcome::Stop`](crate::Outcome::Stop): pump stopped
    /// right after it. The rest of the queue is left for the next pump.
    #[error("pump stopped by a task after {} task(s), {} left queued", report.executed, report.pending)]
    Stopped {
        /// What the call did, the stopping task included (it counts in
        /// `executed` and in `raised`).
        report: PumpReport,
        /// The stopping task's payload, for the caller to re-raise (for
        /// example with [`std::panic::resume_unwind`]).
        payload: Box<dyn Any + Send>,
    },
}

impl PumpError {
    /// The refusal, if this error is one.
    pub fn refusal(&self) -> Option<&Error> {
        match self {
            Self::Refused(err) => Some(err),
            Self::Stopped { .. } => None,
        }
    }
}

/// Formats a thread as `ThreadId(1) "main"`, or `ThreadId(7)` when unnamed,
/// or a checked home by its name.
struct ThreadLabel<'a>(Option<ThreadId>, Option<&'a str>);

impl fmt::Display for ThreadLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(id), Some(name)) => write!(f, "{id:?} {name:?}"),
            (Some(id), None) => write!(f, "{id:?}"),
            (None, Some(name)) => f.write_str(name),
            (None, None) => f.write_str("another thread"),
        }
    }
}
