//! The pump: the home thread running queued main-side tasks, cooperatively,
//! within a [`Budget`].
//!
//! # Contract
//!
//! 1. Only the home thread pumps ([`Error::NotHomeThread`] elsewhere), and
//!    not from inside a task that a pump is running ([`Error::Reentrant`]).
//!    A refused call changes nothing.
//! 2. Tasks run one at a time, oldest first, on the calling thread, through
//!    the caller's [`MainRunner`].
//! 3. Before each task, pump stops if the budget's count is used up, or if
//!    the queue is empty, or if the deadline has passed (then
//!    [`PumpReport::deadline_reached`] is set). The deadline only gates
//!    starting a task: a running task is never interrupted, so a pump can
//!    return after its deadline by up to one task's duration.
//! 4. With no count and no deadline, pump drains the queue, including tasks
//!    pushed while it runs (by its own tasks, such as the next link of a
//!    chain on one pinned cown, or by other threads).
//! 5. [`Outcome::Failed`] counts in [`PumpReport::raised`] and pump goes
//!    on. [`Outcome::Stop`] counts too, and pump returns right after that
//!    task with [`PumpError::Stopped`], carrying the report and the task's
//!    payload; the rest stays queued. A panic escaping the runner unwinds
//!    out of pump the same way (the rest stays queued, the next pump works).
//! 6. On return, however it returns, pump clears the waker and re-arms it
//!    if tasks are left (steps C1 and C2 in `waker.rs`), and
//!    [`PumpReport::pending`] says how many are left.
//!
//! A host event loop calls pump with a budget every iteration, so main-side
//! work never freezes the loop for long:
//!
//! ```
//! use boc_pin::{Budget, MainConfig, MainQueue, Outcome};
//! use std::time::Duration;
//!
//! let queue = MainQueue::new(MainConfig::default())?;
//! for frame in 0..3 {
//!     queue.push(frame, Some(format!("draw frame {frame}").into()));
//! }
//! let runner = |frame: u32| {
//!     println!("drawing frame {frame}");
//!     Outcome::Ok
//! };
//! let mut n_drawn = 0;
//! while n_drawn < 3 {
//!     // ... handle window events, then spend at most 2 ms or 2 behaviors on boc:
//!     let budget = Budget::within(Duration::from_millis(2)).with_max_behaviors(2);
//!     let report = queue.pump(&runner, budget).unwrap();
//!     n_drawn += report.executed;
//! }
//! assert!(queue.is_empty());
//! # Ok::<(), boc_pin::Error>(())
//! ```

#[cfg(doc)]
use crate::error::Error;
use crate::error::PumpError;
use crate::primitive::Ordering;
use crate::queue::MainQueue;
use std::any::Any;
use std::time::{Duration, Instant};

/// Runs main-side tasks on the home thread, for [`MainQueue::pump`].
///
/// Closures `Fn(T) -> Outcome` are runners. A runner is used on the home
/// thread only, so it need not be `Send` or `Sync`.
///
/// ```
/// use boc_pin::{Budget, MainConfig, MainQueue, MainRunner, Outcome};
/// use std::cell::Cell;
///
/// /// Runs boxed closures, turning a panic into a failure.
/// #[derive(Default)]
/// struct Closures {
///     n_panicked: Cell<usize>,
/// }
///
/// impl MainRunner<Box<dyn FnOnce() + Send>> for Closures {
///     fn run(&self, task: Box<dyn FnOnce() + Send>) -> Outcome {
///         match std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)) {
///             Ok(()) => Outcome::Ok,
///             Err(_) => {
///                 self.n_panicked.set(self.n_panicked.get() + 1);
///                 Outcome::Failed
///             }
///         }
///     }
/// }
///
/// let queue = MainQueue::<Box<dyn FnOnce() + Send>>::new(MainConfig::default())?;
/// queue.push(Box::new(|| println!("fine")), None);
/// # let hook = std::panic::take_hook();
/// # std::panic::set_hook(Box::new(|_| {}));
/// queue.push(Box::new(|| panic!("oops")), None);
/// let runner = Closures::default();
/// let report = queue.pump(&runner, Budget::unbounded()).unwrap();
/// # std::panic::set_hook(hook);
/// assert_eq!((report.executed, report.raised), (2, 1));
/// assert_eq!(runner.n_panicked.get(), 1);
/// # Ok::<(), boc_pin::Error>(())
/// ```
pub trait MainRunner<T> {
    /// Runs one task, on the home thread, and says how it went.
    ///
    /// Expected to catch the task's failures (a panic, a Python exception)
    /// and report them as [`Outcome::Failed`], or as [`Outcome::Stop`] when
    /// the caller of pump must see them. A panic that escapes anyway
    /// unwinds out of [`MainQueue::pump`], leaving the queue usable.
    fn run(&self, task: T) -> Outcome;
}

impl<T, F: Fn(T) -> Outcome> MainRunner<T> for F {
    fn run(&self, task: T) -> Outcome {
        self(task)
    }
}

/// How one task went, as a [`MainRunner`] reports it to pump.
#[derive(Debug)]
pub enum Outcome {
    /// The task succeeded.
    Ok,
    /// The task failed; the failure is dealt with (for example recorded in
    /// the behavior's result). Counted in [`PumpReport::raised`]; pump goes on.
    Failed,
    /// The task failed and pump must stop right after it, handing this
    /// payload to its caller in [`PumpError::Stopped`] (Python's
    /// `raise_on_error`, or a `KeyboardInterrupt`). Counted in
    /// [`PumpReport::raised`]. The payload type is a panic's, so a runner
    /// can pass on a caught panic and the caller resume it.
    Stop(Box<dyn Any + Send>),
}

/// How much one [`MainQueue::pump`] call may do: an optional maximum number
/// of tasks and an optional deadline. Both unset (the default) drains the
/// queue.
///
/// ```
/// use boc_pin::Budget;
/// use std::time::{Duration, Instant};
///
/// let drain = Budget::unbounded();
/// let three = Budget::count(3);
/// let frame = Budget::within(Duration::from_millis(4));
/// let both = Budget::until(Instant::now() + Duration::from_millis(4)).with_max_behaviors(3);
/// assert_eq!(drain, Budget::default());
/// assert_eq!(three.max_behaviors, Some(3));
/// assert!(frame.deadline.is_some() && both.max_behaviors.is_some());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Budget {
    /// Run at most this many tasks. `Some(0)` runs none (pump then only
    /// re-arms the waker and reports `pending`).
    pub max_behaviors: Option<usize>,
    /// Start no task at or after this instant.
    pub deadline: Option<Instant>,
}

impl Budget {
    /// No limit: drain the queue, including tasks pushed meanwhile.
    pub const fn unbounded() -> Self {
        Self { max_behaviors: None, deadline: None }
    }

    /// At most `max_behaviors` tasks.
    pub const fn count(max_behaviors: usize) -> Self {
        Self { max_behaviors: Some(max_behaviors), deadline: None }
    }

    /// No task started at or after `deadline`.
    pub const fn until(deadline: Instant) -> Self {
        Self { max_behaviors: None, deadline: Some(deadline) }
    }

    /// No task started once `duration` has passed from now. A duration too
    /// large for an [`Instant`] means no deadline.
    pub fn within(duration: Duration) -> Self {
        Self { max_behaviors: None, deadline: Instant::now().checked_add(duration) }
    }

    /// This budget with a maximum count too.
    pub const fn with_max_behaviors(self, max_behaviors: usize) -> Self {
        Self { max_behaviors: Some(max_behaviors), ..self }
    }

    /// This budget with a deadline too.
    pub const fn with_deadline(self, deadline: Instant) -> Self {
        Self { deadline: Some(deadline), ..self }
    }
}

/// What one [`MainQueue::pump`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PumpReport {
    /// Tasks run (failed and stopping ones included).
    pub executed: usize,
    /// Whether pump stopped because the deadline passed with tasks queued.
    pub deadline_reached: bool,
    /// Tasks whose runner returned [`Outcome::Failed`] or [`Outcome::Stop`].
    pub raised: usize,
    /// Tasks left in the queue when pump returned.
    pub pending: usize,
}

/// What pump takes next.
enum Next<T> {
    Task(T),
    Empty,
    DeadlinePassed,
}

impl<T: Send + 'static> MainQueue<T> {
    /// Runs queued tasks on the home thread through `runner`, within
    /// `budget`, and reports what it did. See the `pump` module docs for the
    /// full contract; in short: oldest first, the deadline gates starting a
    /// task, no budget drains the queue including tasks pushed meanwhile,
    /// failures are counted, a stop returns at once leaving the rest queued.
    ///
    /// ```
    /// use boc_pin::{Budget, MainConfig, MainQueue, Outcome};
    ///
    /// let queue = MainQueue::new(MainConfig::default())?;
    /// for n in 0..5 {
    ///     queue.push(n, None);
    /// }
    /// let runner = |n: i32| if n == 1 { Outcome::Failed } else { Outcome::Ok };
    /// let report = queue.pump(&runner, Budget::count(3)).unwrap();
    /// assert_eq!((report.executed, report.raised, report.pending), (3, 1, 2));
    /// let report = queue.pump(&runner, Budget::unbounded()).unwrap();
    /// assert_eq!((report.executed, report.pending, report.deadline_reached), (2, 0, false));
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`PumpError::Refused`] with [`Error::NotHomeThread`] or
    /// [`Error::Reentrant`]; [`PumpError::Stopped`] when a task returned
    /// [`Outcome::Stop`].
    pub fn pump<R: MainRunner<T> + ?Sized>(&self, runner: &R, budget: Budget) -> Result<PumpReport, PumpError> {
        self.check_home("pump")?;
        self.check_not_pumping("pump")?;
        self.is_pumping.store(true, Ordering::Relaxed);
        let mut guard = PumpGuard { queue: self, is_finished: false };
        let mut report = PumpReport::default();
        let mut stop = None;
        while budget.max_behaviors.is_none_or(|max_behaviors| report.executed < max_behaviors) {
            let task = match self.take_next(budget.deadline) {
                Next::Task(task) => task,
                Next::Empty => break,
                Next::DeadlinePassed => {
                    report.deadline_reached = true;
                    break;
                }
            };
            report.executed += 1;
            match runner.run(task) {
                Outcome::Ok => {}
                Outcome::Failed => report.raised += 1,
                Outcome::Stop(payload) => {
                    report.raised += 1;
                    stop = Some(payload);
                    break;
                }
            }
        }
        report.pending = guard.finish();
        match stop {
            None => Ok(report),
            Some(payload) => Err(PumpError::Stopped { report, payload }),
        }
    }

    /// Takes the oldest task, unless the queue is empty or the deadline has
    /// passed. Ends a reported starvation episode.
    fn take_next(&self, deadline: Option<Instant>) -> Next<T> {
        let now = Instant::now();
        let mut state = self.shared.lock();
        if state.entries.is_empty() {
            return Next::Empty;
        }
        if deadline.is_some_and(|deadline| now >= deadline) {
            return Next::DeadlinePassed;
        }
        let entry = state.entries.pop_front().expect("the queue was checked non-empty");
        self.n_queued.store(state.entries.len(), Ordering::Relaxed);
        state.last_take = Some(now);
        // A parked watchdog must look again if the episode it reported just
        // ended with tasks still queued: a new one may start.
        let notify_watchdog =
            std::mem::take(&mut state.episode_reported) && state.watchdog_parked && !state.entries.is_empty();
        drop(state);
        if notify_watchdog {
            self.shared.watchdog_wakeup.notify_one();
        }
        Next::Task(entry.task)
    }
}

/// Ends a pump however it ends, by return or by unwinding: marks the home
/// thread as not pumping and re-arms the waker.
struct PumpGuard<'a, T: Send + 'static> {
    queue: &'a MainQueue<T>,
    is_finished: bool,
}

impl<T: Send + 'static> PumpGuard<'_, T> {
    /// The normal end; returns the number of tasks left.
    fn finish(&mut self) -> usize {
        self.is_finished = true;
        // Before the re-arm, so a waker callback that pushes is an ordinary
        // push rather than one inside pump.
        self.queue.is_pumping.store(false, Ordering::Relaxed);
        self.queue.rearm_waker()
    }
}

impl<T: Send + 'static> Drop for PumpGuard<'_, T> {
    fn drop(&mut self) {
        if !self.is_finished {
            self.finish();
        }
    }
}
