//! `Runtime`, its builder and its `Handle`: the glue between the protocol
//! (boc-core), the worker pool (boc-sched) and the main-side queue
//! (boc-pin).

use crate::Error;
use crate::engine::{Config, Counted, Engine, Epoch, Home, PINNED, PlainWorkers};
use crate::pending::{Outcome, Outcomes, Pending};
use crate::primitive::Unpoisoned;
use crate::set::{Acquired, CownSet, HomeId};
use crate::unwind;
use boc_core::{Payload, Ready, Watch};
use boc_pin::{Budget, HomeWait, MainConfig, MainQueue, MainRunner, PumpError, PumpReport, WaitEnd, WatchdogConfig};
use boc_sched::PoolOptions;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The facade's engine: plain worker threads.
pub(crate) type FacadeEngine = Engine<PlainWorkers>;

/// Runs the facade's main-side behaviors for `pump` and `quiesce`: a
/// panicking body is recorded in its result and reported as failed.
struct MainSide;

impl MainRunner<Ready> for MainSide {
    fn run(&self, behavior: Ready) -> boc_pin::Outcome {
        if behavior.run() { boc_pin::Outcome::Failed } else { boc_pin::Outcome::Ok }
    }
}

/// Where a behavior was scheduled, or what its scheduler called it: the
/// name the starvation watchdog gives it.
#[derive(Clone)]
enum Label {
    Caller(&'static Location<'static>),
    Text(Arc<str>),
}

/// What a behavior scheduled by the facade carries.
struct Body<O, F, R> {
    /// Keeps the cowns alive until the behavior is released, then dropped
    /// in `released`: this is how `schedule`'s contract is met.
    cowns: Option<O>,
    body: Option<F>,
    /// Read by the behavior's `Pending` once it is done.
    outcome: Mutex<Outcomes<R>>,
    /// Whether the body panicked: set by `run`, read by `failed` right
    /// after it on the same thread (no lock for what `run` just decided).
    panicked: bool,
    label: Label,
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
        // every cown of its set, on the home thread if any is pinned (the
        // dispatcher routes PINNED behaviors there), and the references do
        // not outlive the call.
        let refs = unsafe { cowns.refs() };
        let outcome: Outcome<R> = unwind::catch(move || body(refs));
        self.panicked = outcome.is_err();
        *self.outcome.get_mut().unpoisoned() = Outcomes::Done(outcome);
    }

    fn released(&mut self) {
        // A value whose last handle this was is dropped here, inside the
        // protocol's release: a panicking `Drop` is caught and reported, and
        // the result keeps the body's outcome.
        if let Some(cowns) = self.cowns.take() {
            cowns.drop_each();
        }
    }

    fn failed(&self) -> bool {
        self.panicked
    }

    fn label(&self) -> Option<Arc<str>> {
        Some(match &self.label {
            Label::Caller(location) => format!("behavior at {location}").into(),
            Label::Text(text) => Arc::clone(text),
        })
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
    unsafe { watch.payload::<Counted<Body<O, F, R>>>() }.map(|counted| &counted.payload().outcome)
}

impl<O, F, R> Drop for Body<O, F, R> {
    /// Runs where the behavior is freed: inside a release when its
    /// `Pending` is already gone, so the result (or the unrun body) is user
    /// code dropped in the middle of the protocol's work.
    fn drop(&mut self) {
        unwind::drop_reporting("the drop of a behavior's cowns", self.cowns.take());
        unwind::drop_reporting("the drop of a behavior's unrun body", self.body.take());
        let outcome = std::mem::replace(self.outcome.get_mut().unpoisoned(), Outcomes::Taken);
        unwind::drop_reporting("the drop of a behavior's result", outcome);
    }
}

/// Configures and starts a [`Runtime`].
///
/// ```
/// let rt = boc::Runtime::builder().workers(2).build()?;
/// assert_eq!(rt.n_workers(), 2);
/// # Ok::<(), boc::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Builder {
    workers: Option<usize>,
    watchdog: Option<Option<WatchdogConfig>>,
}

impl Builder {
    /// Sets the number of worker threads. The default is the `BOC_WORKERS`
    /// environment variable, else the available parallelism minus one (at
    /// least one). Zero is allowed: every behavior then runs on the home
    /// thread, when it [pumps](Handle::pump) or [quiesces](Handle::quiesce).
    pub fn workers(mut self, n_workers: usize) -> Self {
        self.workers = Some(n_workers);
        self
    }

    /// Configures the starvation watchdog, or turns it off with `None`. On
    /// by default: it reports to stderr main-side behaviors that waited more
    /// than [`WatchdogConfig::DEFAULT_THRESHOLD`] without being pumped.
    pub fn watchdog(mut self, config: Option<WatchdogConfig>) -> Self {
        self.watchdog = Some(config);
        self
    }

    /// Starts the runtime. The calling thread becomes its *home thread*:
    /// behaviors on [`PinnedCown`](crate::PinnedCown)s run there.
    ///
    /// # Errors
    ///
    /// [`Error::Pool`] or [`Error::Pin`] if a thread cannot be started.
    pub fn build(self) -> Result<Runtime, Error> {
        let n_workers = self.workers.unwrap_or_else(boc_sched::default_workers);
        let watchdog = self.watchdog.unwrap_or_else(|| MainConfig::default().watchdog);
        let config = Config { home: Home::Current, main: MainConfig { watchdog } };
        let engine = Engine::new(config, Arc::new(PlainWorkers))?;
        let epoch = engine.start(n_workers, PoolOptions::default())?;
        Ok(Runtime { handle: Handle { engine: Arc::new(engine), epoch }, _home: PhantomData })
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("workers", &self.workers).finish_non_exhaustive()
    }
}

/// A behavior-oriented concurrency runtime: a pool of worker threads that
/// runs behaviors once they hold their cowns, and a *home thread* (the one
/// that built it) that runs the behaviors holding pinned cowns.
///
/// Dropping the runtime refuses new work, waits for every scheduled
/// behavior to finish (pumping main-side work meanwhile), then stops the
/// workers. Dropped where it cannot wait (inside one of its own main-side
/// behaviors, through a [`PinnedCown`](crate::PinnedCown) that holds it, or
/// inside a `try_with`), it returns at once and the behaviors in flight still
/// run: worker-side ones on the workers, main-side ones when the home thread
/// next pumps or quiesces through a [`Handle`]; the workers stop after the
/// last one. A `Runtime` stays on its home thread (it is neither `Send` nor
/// `Sync`); it dereferences to its [`Handle`], which carries the scheduling
/// API and can be cloned to other threads and into behaviors.
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
///
/// The runtime cannot leave its home thread:
///
/// ```compile_fail
/// let rt = boc::Runtime::new().unwrap();
/// std::thread::spawn(move || drop(rt));
/// ```
pub struct Runtime {
    handle: Handle,
    /// Neither `Send` nor `Sync`: the runtime lives on its home thread.
    _home: PhantomData<*const ()>,
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

/// # Why no behavior is dispatched through freed memory
///
/// A behavior keeps a raw pointer to its dispatcher and is dispatched
/// through it by whichever thread completes its acquisition: the scheduler,
/// a releasing behavior, or the drop of a `try_with` hold on any thread. So
/// the dispatcher must outlive every behavior that is linked in any cown
/// queue. It does, because the behavior's count keeps it:
///
/// 1. *The dispatcher is an epoch*, the engine's pool of workers with its
///    count (`engine::Epoch`), owned by `Arc`s: the engine's current slot
///    and each handle's.
/// 2. *Every behavior is counted in before it is linked.* `Epoch::count_in`
///    gives a ticket (the count) before `schedule` links the behavior
///    anywhere, and `Epoch::schedule_watched` moves it into the behavior's
///    payload, dispatching through that very epoch (lent by the handle for
///    the call). The payload gives it up in `Payload::released`, the last
///    time the protocol touches the behavior, and it is counted out after.
/// 3. *The count keeps the epoch alive* (`boc::engine`'s module docs and
///    `boc_sched::KeepAlive`): the engine holds the epoch while it is open;
///    closing it with behaviors in flight (this drop's shut-down, or the
///    engine's drop) stores the epoch's own `Arc` in it, which the
///    count-out that takes the count to zero lets go of.
///
/// So dropping the `Runtime`, the engine or every handle is sound at any
/// time, on any thread, even while behaviors are linked: their count keeps
/// what they will be dispatched through. This drop refuses new work (the
/// engine is shut down) and waits; where it cannot wait (inside one of its
/// own behaviors, or inside a `try_with` hold) it returns at once, and the
/// behaviors in flight finish later, the last one letting go of the epoch.
/// Leaking the runtime (`mem::forget`) leaks the engine, which is sound too.
impl Drop for Runtime {
    fn drop(&mut self) {
        let engine = &self.handle.engine;
        engine.shut_down();
        if self.handle.wait(None).is_ok() {
            engine.stop();
        }
        // Else inside one of its own behaviors, or holding a cown: the
        // behaviors in flight finish later; the last count-out lets go of
        // the waker and the watchdog's sink.
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
    pub(crate) engine: Arc<FacadeEngine>,
    /// The engine's one epoch (a facade runtime never starts another):
    /// behaviors count in on it without looking it up, and are scheduled
    /// through it while this handle lends it (`Epoch::schedule_watched`).
    /// Closed once the runtime shuts down, which refuses new behaviors.
    epoch: Arc<Epoch<PlainWorkers>>,
}

impl Handle {
    /// Schedules `body` to run once it holds every cown in `cowns`, and
    /// returns a handle to its result.
    ///
    /// Behaviors that share a cown run one at a time, in the order they
    /// were scheduled; the others may run in parallel. The body receives
    /// `&mut` access to each value (see [`CownSet`] for the forms a request
    /// set can take). A panic in the body is caught: the cowns are released
    /// and the panic is recorded in the result. A panic in the `Drop` of a
    /// value the behavior lets go of (its last handle to a cown), or of a
    /// result nobody takes, is caught and reported on standard error; the
    /// result keeps the body's outcome. A request set with a
    /// [`PinnedCown`](crate::PinnedCown) runs on the home thread.
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
    /// The body must be `Send` (it may be scheduled on one thread and run
    /// on another), even when it runs on the home thread:
    ///
    /// ```compile_fail
    /// let rt = boc::Runtime::new().unwrap();
    /// let pinned = boc::PinnedCown::new(&rt, 0).unwrap();
    /// let not_send = std::rc::Rc::new(1);
    /// rt.when(&pinned, move |value| *value += *not_send);
    /// ```
    ///
    /// # Panics
    ///
    /// If the runtime has shut down, if a tuple request set names one cown
    /// twice (the body would get two `&mut` to one value), or if a pinned
    /// cown belongs to another runtime. Use [`try_when`](Self::try_when) to
    /// get these as errors.
    #[track_caller]
    pub fn when<C, F, R>(&self, cowns: C, body: F) -> Pending<R>
    where
        C: CownSet,
        F: for<'a> FnOnce(<C::Owned as Acquired>::Refs<'a>) -> R + Send + 'static,
        R: Send + 'static,
    {
        match self.schedule(cowns, body, Label::Caller(Location::caller())) {
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
    /// [`Error::ForeignPinnedCown`] if a pinned cown belongs to another
    /// runtime; [`Error::ShutDown`] if the runtime was dropped.
    #[track_caller]
    pub fn try_when<C, F, R>(&self, cowns: C, body: F) -> Result<Pending<R>, Error>
    where
        C: CownSet,
        F: for<'a> FnOnce(<C::Owned as Acquired>::Refs<'a>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.schedule(cowns, body, Label::Caller(Location::caller()))
    }

    /// [`try_when`](Self::try_when) with a name for the behavior, which the
    /// starvation watchdog reports if it waits on the home thread too long
    /// (by default a behavior is named by where it was scheduled).
    ///
    /// # Errors
    ///
    /// As [`try_when`](Self::try_when).
    pub fn when_labeled<C, F, R>(&self, label: &str, cowns: C, body: F) -> Result<Pending<R>, Error>
    where
        C: CownSet,
        F: for<'a> FnOnce(<C::Owned as Acquired>::Refs<'a>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.schedule(cowns, body, Label::Text(label.into()))
    }

    fn schedule<C, F, R>(&self, cowns: C, body: F, label: Label) -> Result<Pending<R>, Error>
    where
        C: CownSet,
        F: for<'a> FnOnce(<C::Owned as Acquired>::Refs<'a>) -> R + Send + 'static,
        R: Send + 'static,
    {
        let engine = &*self.engine;
        cowns.check(HomeId(engine.id()))?;
        let ticket = self.epoch.count_in()?;
        let flags = if cowns.is_pinned() { PINNED } else { 0 };
        let payload = Body {
            cowns: Some(cowns.to_owned()),
            body: Some(body),
            outcome: Mutex::new(Outcomes::NotRun),
            panicked: false,
            label,
        };
        // SAFETY: the payload owns a handle to every cown until it is
        // released, so they outlive the behavior; the dispatcher, the epoch,
        // is lent by this handle for the call and kept alive afterwards by the
        // behavior's count, its ticket (the argument on `Runtime`'s `Drop`).
        let watch = unsafe { self.epoch.schedule_watched(ticket, cowns.headers(), payload, flags) };
        // SAFETY: `locate_outcome` is instantiated with the payload's type.
        Ok(unsafe { Pending::new(watch, locate_outcome::<C::Owned, F, R>) })
    }

    /// Waits until every behavior scheduled so far (and every behavior they
    /// schedule) has finished. Blocks without polling.
    ///
    /// On the home thread it runs main-side behaviors while it waits (woken
    /// by either main-side work or quiescence); on any other thread it only
    /// waits, so main-side work needs the home thread to pump or quiesce.
    ///
    /// It runs this runtime's main-side work only. Two runtimes built on
    /// one thread that share a cown can block each other: if a main-side
    /// behavior of one holds or waits for a cown that a behavior of the
    /// other needs, the other's `quiesce` on that thread never returns (it
    /// is not detected; pump or quiesce the first runtime before, or give
    /// each runtime its own home thread).
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
    /// this runtime (or from a `Drop` of what one captured, which runs there
    /// too), which could never see quiescence;
    /// [`Error::WaitWhileHolding`] inside a `try_with` closure, whose cown
    /// would block the behaviors queued on it.
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
        let engine = &*self.engine;
        if engine.is_worker_thread() {
            return Err(Error::WaitInsideBehavior);
        }
        if crate::cown::holds_a_cown() {
            return Err(Error::WaitWhileHolding);
        }
        let end = if engine.main().is_home_thread() {
            let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
            engine.main().wait_until(&mut Quiesce(engine), deadline).map_err(|error| match error {
                // Inside a main-side behavior, which pump is running.
                Error::Pin(boc_pin::Error::Reentrant { .. }) => Error::WaitInsideBehavior,
                other => other,
            })?
        } else if engine.wait_idle(timeout) {
            WaitEnd::Done
        } else {
            WaitEnd::TimedOut
        };
        match end {
            WaitEnd::Done => Ok(()),
            WaitEnd::TimedOut => Err(Error::Timeout(timeout.unwrap_or_default(), engine.n_in_flight())),
        }
    }

    /// Runs ready main-side behaviors (those holding a pinned cown, or all
    /// of them with zero workers) on the calling thread, which must be the
    /// home thread, within `budget`, and reports what it did.
    ///
    /// The deadline gates *starting* a behavior and never interrupts one;
    /// an unbounded budget drains the queue, including behaviors that
    /// become ready during the call. A panicking body is reported in
    /// `raised` (and on its result) and pumping continues. An event loop
    /// calls this from its own iteration, for example:
    ///
    /// ```
    /// use boc::{Budget, PinnedCown, Runtime};
    /// use std::time::Duration;
    /// # fn main() -> Result<(), boc::Error> {
    /// let rt = Runtime::builder().workers(1).build()?;
    /// let window_title = PinnedCown::new(&rt, String::new())?;
    /// rt.when(&window_title, |title| title.push_str("ready"));
    /// // A host loop: handle its own events, then give boc a slice of time.
    /// for _frame in 0..100 {
    ///     let report = rt.pump(Budget::within(Duration::from_millis(4)))?;
    ///     if report.pending == 0 && rt.n_in_flight() == 0 {
    ///         break;
    ///     }
    ///     std::thread::sleep(Duration::from_millis(1)); // the host's own work
    /// }
    /// let title = rt.when(&window_title, |title| title.clone());
    /// rt.quiesce()?;
    /// assert_eq!(title.take()?, "ready");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Pin`] when called off the home thread or from inside a
    /// main-side behavior (pump is not re-entrant).
    pub fn pump(&self, budget: Budget) -> Result<PumpReport, Error> {
        self.engine.pump(&MainSide, budget).map_err(pump_error)
    }

    /// Main-side behaviors ready and waiting for the home thread.
    pub fn n_main_pending(&self) -> usize {
        self.engine.main().len()
    }

    /// Sets a callback called (from any thread) when main-side work arrives
    /// in an empty queue, so an event loop can schedule a pump; `None`
    /// removes it. It must only post work to the loop, never pump itself.
    /// A panic in it is caught and reported on standard error: it may be
    /// called by a worker in the middle of releasing a behavior's cowns,
    /// which goes on.
    ///
    /// The runtime's drop removes the callback (and the watchdog's sink),
    /// so one may capture a [`Handle`] without keeping the runtime alive.
    pub fn set_pump_waker(&self, callback: Option<Box<dyn Fn() + Send + Sync>>) {
        self.engine.main().set_waker(callback);
    }

    /// A file descriptor that is readable while main-side work waits, for
    /// event loops that watch descriptors; [`pump`](Self::pump) clears it.
    /// Never read it yourself.
    ///
    /// # Errors
    ///
    /// [`Error::Pin`] if the descriptor cannot be created.
    #[cfg(unix)]
    pub fn pump_fd(&self) -> Result<std::os::fd::BorrowedFd<'_>, Error> {
        Ok(self.engine.main().waker_fd()?)
    }

    /// Reconfigures the starvation watchdog, or turns it off with `None`.
    ///
    /// # Errors
    ///
    /// [`Error::Pin`] if its thread cannot be started.
    pub fn set_watchdog(&self, config: Option<WatchdogConfig>) -> Result<(), Error> {
        Ok(self.engine.main().set_watchdog(config)?)
    }

    /// The number of worker threads.
    pub fn n_workers(&self) -> usize {
        self.engine.current().map_or(0, |epoch| epoch.n_workers())
    }

    /// Behaviors scheduled but not yet finished (a snapshot).
    pub fn n_in_flight(&self) -> usize {
        self.engine.n_in_flight()
    }

    /// Diagnostic: how many times the home thread woke from a blocking
    /// wait inside [`quiesce`](Self::quiesce) (for main-side work, for
    /// quiescence, or at a timeout). An idle wait costs no wakeups: it
    /// blocks, it does not poll.
    pub fn n_home_wakeups(&self) -> usize {
        self.engine.main().n_wait_wakeups()
    }

    /// True on the runtime's home thread.
    pub fn is_home_thread(&self) -> bool {
        self.engine.main().is_home_thread()
    }
}

/// `quiesce` on the home thread: boc-pin's wait loop, pumping this
/// runtime's main-side work until nothing is in flight. Woken by main-side
/// work, or by the count-out that reaches zero.
struct Quiesce<'a>(&'a FacadeEngine);

impl HomeWait<Ready> for Quiesce<'_> {
    type Error = Error;

    fn pump(&mut self, _queue: &MainQueue<Ready>) -> Result<(), Error> {
        // `wait_until` checked it is not inside a pump: refusals are the
        // loop's to report.
        self.0.pump(&MainSide, Budget::unbounded()).map(drop).map_err(pump_error)
    }

    fn is_done(&mut self) -> Result<bool, Error> {
        Ok(self.0.n_in_flight() == 0)
    }
}

fn pump_error(error: PumpError) -> Error {
    match error {
        PumpError::Refused(error) => Error::Pin(error),
        other => unreachable!("the facade's main runner never stops a pump: {other}"),
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("n_workers", &self.n_workers()).finish_non_exhaustive()
    }
}
