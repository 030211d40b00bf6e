//! `Runtime`, its builder and its `Handle`: the glue between the protocol
//! (boc-core) and the worker pool (boc-sched).

use crate::Error;
use crate::pending::{Outcome, Outcomes, Pending};
use crate::set::{Acquired, CownSet};
use boc_core::{Dispatch, Payload, Ready, Watch};
use boc_sched::{Pool, Runner, Terminator};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Runs ready behaviors on the pool's workers and counts them out.
struct Exec {
    terminator: Terminator,
}

impl Runner<Ready> for Exec {
    fn run(&self, behavior: Ready) {
        /// Counts the behavior out even if `run` unwinds.
        struct Done<'a>(&'a Terminator);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.decrement();
            }
        }
        let _done = Done(&self.terminator);
        behavior.run();
    }
}

/// State shared by a runtime and its handles; the dispatcher of every
/// behavior scheduled through them.
struct Shared {
    exec: Arc<Exec>,
    pool: Pool<Ready, Exec>,
}

impl Dispatch for Shared {
    fn dispatch(&self, behavior: Ready) {
        self.pool.spawn(behavior);
    }
}

/// What a behavior scheduled by the facade carries.
struct Body<O, F, R> {
    /// Keeps the cowns alive until the behavior is released, then dropped
    /// in `released`: this is how `schedule`'s contract is met.
    cowns: Option<O>,
    body: Option<F>,
    /// Read by the behavior's `Pending` once it is done.
    outcome: Mutex<Outcomes<R>>,
}

impl<O, F, R> Payload for Body<O, F, R>
where
    O: Acquired,
    F: for<'a> FnOnce(O::Refs<'a>) -> R + Send + 'static,
    R: Send + 'static,
{
    fn run(&mut self) {
        let (Some(body), Some(cowns)) = (self.body.take(), self.cowns.as_mut()) else { return };
        // SAFETY: `Payload::run` is called only while the behavior holds
        // every cown of its set, and the references do not outlive the call.
        let refs = unsafe { cowns.refs() };
        let outcome: Outcome<R> = catch_unwind(AssertUnwindSafe(move || body(refs))).map_err(panic_message);
        *self.outcome.get_mut().unwrap_or_else(PoisonError::into_inner) = Outcomes::Done(outcome);
    }

    fn released(&mut self) {
        self.cowns = None;
    }
}

/// Finds the outcome in a done `Body<O, F, R>`.
///
/// # Safety
///
/// `watch` belongs to a behavior scheduled with a `Body<O, F, R>` payload.
unsafe fn locate_outcome<O, F, R>(watch: &Watch) -> Option<&Mutex<Outcomes<R>>>
where
    O: Acquired,
    F: for<'a> FnOnce(O::Refs<'a>) -> R + Send + 'static,
    R: Send + 'static,
{
    // SAFETY: the caller vouches for the payload type; only the outcome
    // (a `Mutex`, `Sync` for `R: Send`) is reached through the shared ref.
    unsafe { watch.payload::<Body<O, F, R>>() }.map(|body| &body.outcome)
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "a panic with a non-string payload".to_owned(),
        },
    }
}

/// Configures and starts a [`Runtime`].
///
/// ```
/// let rt = boc::Runtime::builder().workers(2).build()?;
/// assert_eq!(rt.n_workers(), 2);
/// # Ok::<(), boc::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    workers: Option<usize>,
}

impl Builder {
    /// Sets the number of worker threads. The default is the `BOC_WORKERS`
    /// environment variable, else the available parallelism minus one (at
    /// least one).
    pub fn workers(mut self, n_workers: usize) -> Self {
        self.workers = Some(n_workers);
        self
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for zero workers (a runtime without workers needs
    /// the main-thread pump of pinned cowns, which this release does not
    /// have yet); [`Error::Pool`] if a thread cannot be started.
    pub fn build(self) -> Result<Runtime, Error> {
        let n_workers = self.workers.unwrap_or_else(boc_sched::default_workers);
        if n_workers == 0 {
            return Err(Error::Config("a runtime needs at least one worker"));
        }
        let exec = Arc::new(Exec { terminator: Terminator::new() });
        let pool = Pool::new(n_workers, Arc::clone(&exec))?;
        Ok(Runtime { handle: Handle { shared: Arc::new(Shared { exec, pool }) } })
    }
}

/// A behavior-oriented concurrency runtime: a pool of worker threads that
/// runs behaviors once they hold their cowns.
///
/// Dropping the runtime waits for every scheduled behavior to finish, then
/// stops the workers. A `Runtime` dereferences to its [`Handle`], which
/// carries the scheduling API; clone a handle (see [`Runtime::handle`]) to
/// schedule from inside behaviors or from other threads.
///
/// ```
/// use boc::{Cown, Runtime};
/// # fn main() -> Result<(), boc::Error> {
/// let rt = Runtime::builder().workers(2).build()?;
/// let (a, b) = (Cown::new(100_i64), Cown::new(0_i64));
/// let moved = rt.when((&a, &b), |(a, b)| {
///     *a -= 10;
///     *b += 10;
///     *b
/// });
/// rt.quiesce()?;
/// assert_eq!(moved.take()?, 10);
/// # Ok(()) }
/// ```
pub struct Runtime {
    handle: Handle,
}

impl Runtime {
    /// A runtime with the default number of workers.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    pub fn new() -> Result<Self, Error> {
        Builder::default().build()
    }

    /// A builder to configure a runtime.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A cloneable handle that schedules on this runtime.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

impl std::ops::Deref for Runtime {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let shared = &self.handle.shared;
        shared.exec.terminator.close();
        if shared.pool.is_worker_thread() {
            // Dropped inside one of its own behaviors: waiting would wait for
            // ourselves. The workers finish what is queued and exit; the
            // shared state must outlive them and any behavior still in
            // flight (they dispatch through it), so it is leaked.
            shared.pool.shutdown();
            std::mem::forget(Arc::clone(shared));
            return;
        }
        shared.exec.terminator.wait_idle(None);
        shared.pool.shutdown();
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("n_workers", &self.n_workers()).finish_non_exhaustive()
    }
}

/// Schedules behaviors on a [`Runtime`]. Cheap to clone, `Send` and `Sync`:
/// capture one in a behavior to schedule more work from inside it.
///
/// ```
/// # fn main() -> Result<(), boc::Error> {
/// let rt = boc::Runtime::builder().workers(2).build()?;
/// let log = boc::Cown::new(Vec::new());
/// let handle = rt.handle();
/// let inner_log = log.clone();
/// rt.when(&log, move |log| {
///     log.push("outer");
///     // Scheduled from inside a behavior: runs after this one releases `log`.
///     handle.when(&inner_log, |log| log.push("inner"));
/// });
/// rt.quiesce()?;
/// let lines = rt.when(&log, |log| log.clone());
/// rt.quiesce()?;
/// assert_eq!(lines.take()?, ["outer", "inner"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Schedules `body` to run once it holds every cown in `cowns`, and
    /// returns a handle to its result.
    ///
    /// Behaviors that share a cown run one at a time, in the order they
    /// were scheduled; the others may run in parallel. The body receives
    /// `&mut` access to each value (see [`CownSet`] for the forms a request
    /// set can take). A panic in the body is caught: the cowns are released
    /// and the panic is recorded in the result.
    ///
    /// ```
    /// # fn main() -> Result<(), boc::Error> {
    /// let rt = boc::Runtime::builder().workers(2).build()?;
    /// let (name, count) = (boc::Cown::new(String::from("boc")), boc::Cown::new(0_usize));
    /// // One cown: the body gets `&mut String`.
    /// rt.when(&name, |name| name.push_str("!"));
    /// // A tuple: the body gets a tuple of `&mut`, in the tuple's order.
    /// let len = rt.when((&count, &name), |(count, name)| {
    ///     *count = name.len();
    ///     *count
    /// });
    /// rt.quiesce()?;
    /// assert_eq!(len.take()?, 4);
    /// # Ok(()) }
    /// ```
    ///
    /// # Panics
    ///
    /// If the runtime has shut down, or if a tuple request set names one
    /// cown twice (the body would get two `&mut` to one value). Use
    /// [`try_when`](Self::try_when) to get these as errors.
    pub fn when<C, F, R>(&self, cowns: C, body: F) -> Pending<R>
    where
        C: CownSet,
        F: for<'a> FnOnce(<C::Owned as Acquired>::Refs<'a>) -> R + Send + 'static,
        R: Send + 'static,
    {
        match self.try_when(cowns, body) {
            Ok(pending) => pending,
            Err(error) => panic!("cannot schedule the behavior: {error}"),
        }
    }

    /// [`when`](Self::when), reporting misuse as an error.
    ///
    /// ```
    /// # fn main() -> Result<(), boc::Error> {
    /// let rt = boc::Runtime::builder().workers(1).build()?;
    /// let cown = boc::Cown::new(1);
    /// let twice = rt.try_when((&cown, &cown), |(a, b)| *a + *b);
    /// assert!(matches!(twice, Err(boc::Error::DuplicateCown { .. })));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateCown`] if a tuple request set names a cown twice;
    /// [`Error::ShutDown`] if the runtime was dropped.
    pub fn try_when<C, F, R>(&self, cowns: C, body: F) -> Result<Pending<R>, Error>
    where
        C: CownSet,
        F: for<'a> FnOnce(<C::Owned as Acquired>::Refs<'a>) -> R + Send + 'static,
        R: Send + 'static,
    {
        cowns.check()?;
        let shared = &*self.shared;
        if !shared.exec.terminator.try_increment() {
            return Err(Error::ShutDown);
        }
        let payload = Body { cowns: Some(cowns.to_owned()), body: Some(body), outcome: Mutex::new(Outcomes::NotRun) };
        // SAFETY: the payload owns a handle to every cown until it is
        // released, so they outlive the behavior; `shared` outlives every
        // behavior in flight because the runtime's drop waits for the
        // terminator (or leaks `shared`).
        let watch = unsafe {
            match cowns.single() {
                Some(header) => boc_core::schedule_one_watched(header, payload, 0, shared),
                None => boc_core::schedule_watched(cowns.headers(), payload, 0, shared),
            }
        };
        // SAFETY: `locate_outcome` is instantiated with the payload's type.
        Ok(unsafe { Pending::new(watch, locate_outcome::<C::Owned, F, R>) })
    }

    /// Waits until every behavior scheduled so far (and every behavior they
    /// schedule) has finished. Blocks without polling.
    ///
    /// ```
    /// # fn main() -> Result<(), boc::Error> {
    /// let rt = boc::Runtime::builder().workers(2).build()?;
    /// let cown = boc::Cown::new(0);
    /// for _ in 0..10 {
    ///     rt.when(&cown, |n| *n += 1);
    /// }
    /// rt.quiesce()?;
    /// assert_eq!(rt.n_in_flight(), 0);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::WaitInsideBehavior`] when called from inside a behavior of
    /// this runtime, which could never see quiescence.
    pub fn quiesce(&self) -> Result<(), Error> {
        self.wait(None)
    }

    /// [`quiesce`](Self::quiesce) with a time limit.
    ///
    /// # Errors
    ///
    /// As [`quiesce`](Self::quiesce), and [`Error::Timeout`] if behaviors
    /// are still in flight after `timeout`.
    pub fn quiesce_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.wait(Some(timeout))
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let shared = &*self.shared;
        if shared.pool.is_worker_thread() {
            return Err(Error::WaitInsideBehavior);
        }
        if shared.exec.terminator.wait_idle(timeout) {
            Ok(())
        } else {
            Err(Error::Timeout(timeout.unwrap_or_default(), shared.exec.terminator.count()))
        }
    }

    /// The number of worker threads.
    pub fn n_workers(&self) -> usize {
        self.shared.pool.n_workers()
    }

    /// Behaviors scheduled but not yet finished (a snapshot).
    pub fn n_in_flight(&self) -> usize {
        self.shared.exec.terminator.count()
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("n_workers", &self.n_workers()).finish_non_exhaustive()
    }
}
