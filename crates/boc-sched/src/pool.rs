//! The pool: the [`Runner`] trait, [`Pool`] (start, spawn, shutdown) and
//! the state its workers share.
//!
//! Spawning is lock-free: a push onto a queue, then the wake check of
//! `idle` (a fence and one load while every worker is busy). Locks appear
//! only in [`Pool::new`] and [`Pool::shutdown`].

use crate::idle::{Idle, MAX_WORKERS};
use crate::park::Parker;
use crate::primitive::Unpoisoned;
use crate::primitive::{AtomicBool, AtomicUsize, Ordering};
use crate::{Error, worker};
use crossbeam_deque::{Injector, Stealer, Worker};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// Runs tasks of type `T` on a worker pool.
///
/// Generic so another runtime can reuse the pool: boc's runner runs a
/// behavior and releases its cowns; a test runner may just call a closure.
///
/// # Example
///
/// ```
/// use boc_sched::{Pool, Runner};
/// use std::sync::{Arc, mpsc};
///
/// struct Double(mpsc::Sender<u64>);
///
/// impl Runner<u64> for Double {
///     fn run(&self, task: u64) {
///         self.0.send(task * 2).unwrap();
///     }
/// }
///
/// let (sender, receiver) = mpsc::channel();
/// let pool = Pool::new(2, Arc::new(Double(sender)))?;
/// pool.spawn(21);
/// assert_eq!(receiver.recv().unwrap(), 42);
/// # Ok::<(), boc_sched::Error>(())
/// ```
pub trait Runner<T>: Send + Sync + 'static {
    /// Runs one task on the calling worker thread.
    ///
    /// Implementations are expected to catch panics of the code they run
    /// (boc records a panicking behavior in its result). A panic that
    /// escapes anyway is caught by the pool, counted in
    /// [`Pool::n_panics`], and the worker lives on.
    fn run(&self, task: T);

    /// Runs a worker thread's whole life: `work` is the worker loop, which
    /// returns when the pool shuts down. Called once per worker, on its
    /// thread, and must call `work` exactly once. Default: calls `work`.
    ///
    /// A binding sets up per-thread state here that should last across
    /// tasks (the Python binding attaches the thread to the interpreter for
    /// its whole life and detaches only while it parks, see [`park`]).
    ///
    /// [`park`]: Runner::park
    fn worker_thread(&self, work: &mut dyn FnMut()) {
        work();
    }

    /// Blocks the calling worker, which found no work anywhere, until it is
    /// woken: `park` is the blocking step and must be called exactly once.
    /// Default: calls `park`.
    ///
    /// A binding wraps it to leave a context it must not block in (the
    /// Python binding detaches from the interpreter around it). It is only
    /// called when the worker really sleeps, not when its last look finds
    /// work, so the wrapper's cost is paid once per sleep.
    fn park(&self, park: &mut dyn FnMut()) {
        park();
    }
}

/// How a [`Pool`]'s threads are made.
///
/// ```
/// use boc_sched::PoolOptions;
///
/// let options = PoolOptions::default().stack_size(8 << 20);
/// assert_eq!(options.stack_size_bytes(), Some(8 << 20));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolOptions {
    stack_size: Option<usize>,
}

impl PoolOptions {
    /// Each worker thread gets a stack of `bytes` (rounded up by the
    /// operating system to its granularity). Default: the Rust standard
    /// library's (2 MiB unless `RUST_MIN_STACK` says otherwise), which is
    /// smaller than a C or Python thread's on most systems: a runtime whose
    /// tasks recurse deeply (a Python binding) should ask for what the
    /// host's own threads get.
    pub fn stack_size(self, bytes: usize) -> Self {
        Self { stack_size: Some(bytes) }
    }

    /// The stack size asked for, if any.
    pub fn stack_size_bytes(&self) -> Option<usize> {
        self.stack_size
    }
}

/// State shared by the pool handle and its workers.
pub(crate) struct Shared<T: Send + 'static, R: Runner<T>> {
    /// Tasks spawned from threads that are not workers of this pool.
    pub(crate) injector: Injector<T>,
    /// The stealing ends of the workers' deques, indexed by worker index.
    pub(crate) stealers: Box<[Stealer<T>]>,
    pub(crate) idle: Idle,
    /// Set once by shutdown, never cleared.
    ///
    /// Written (SeqCst store) by `begin_shutdown`, before `Idle::notify_all`;
    /// read (SeqCst load) by workers at step P4 of the idle protocol, after
    /// their P3 fence: either a worker reads `true` or shutdown's scan sees
    /// it `SLEEPING` and wakes it. The store also releases every spawn that
    /// happened before `shutdown` to the workers that read it.
    pub(crate) is_shutdown: AtomicBool,
    /// Panics that escaped the runner's hooks (`Runner::run`, `park`,
    /// `worker_thread`).
    ///
    /// Incremented by workers, read by [`Pool::n_panics`]; Relaxed, it is a
    /// statistic and orders nothing.
    pub(crate) n_panics: AtomicUsize,
    /// Whether the one-time stderr note about escaped panics was printed.
    ///
    /// Swapped to true by the first worker that records a panic; Relaxed,
    /// only the swap's atomicity matters.
    panic_reported: AtomicBool,
    pub(crate) runner: Arc<R>,
}

impl<T: Send + 'static, R: Runner<T>> Shared<T, R> {
    /// Identity of this pool, used by the thread-local that tells a worker's
    /// own pool from any other. Unique while any worker runs, because every
    /// worker holds an `Arc` to this allocation.
    pub(crate) fn addr(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }

    fn begin_shutdown(&self) {
        self.is_shutdown.store(true, Ordering::SeqCst);
        self.idle.notify_all();
    }

    #[cold]
    pub(crate) fn record_panic(&self, what: &str) {
        self.n_panics.fetch_add(1, Ordering::Relaxed);
        if !self.panic_reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "boc-sched: a panic escaped {what}; the worker keeps running \
                 (further escaped panics are only counted, see Pool::n_panics)"
            );
        }
    }
}

/// A pool of worker threads running tasks of type `T` with a [`Runner`].
///
/// Each worker has a local deque and a "next" slot; tasks spawned from
/// outside go to a shared injector; idle workers steal from each other and
/// park when there is nothing to do (they burn no CPU while parked).
///
/// Dropping the pool calls [`Pool::shutdown`].
///
/// # Example
///
/// ```
/// use boc_sched::{Pool, Runner, Terminator};
/// use std::sync::Arc;
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct Sum {
///     total: Mutex<u64>,
///     in_flight: Terminator,
/// }
///
/// impl Runner<u64> for Sum {
///     fn run(&self, n: u64) {
///         *self.total.lock().unwrap() += n;
///         self.in_flight.decrement();
///     }
/// }
///
/// let sum = Arc::new(Sum::default());
/// let pool = Pool::new(2, sum.clone())?;
/// for n in 1..=100 {
///     sum.in_flight.increment();
///     pool.spawn(n);
/// }
/// assert!(sum.in_flight.wait_idle(None));
/// assert_eq!(*sum.total.lock().unwrap(), 5050);
/// # Ok::<(), boc_sched::Error>(())
/// ```
pub struct Pool<T: Send + 'static, R: Runner<T>> {
    shared: Arc<Shared<T, R>>,
    /// Join handles of the workers, taken (and joined under the lock) by
    /// the first `shutdown` called off the pool's own workers.
    handles: Mutex<Vec<JoinHandle<()>>>,
    n_workers: usize,
}

impl<T: Send + 'static, R: Runner<T>> Pool<T, R> {
    /// Starts `n_workers` threads, named `boc-worker-{i}`.
    ///
    /// With 0 workers, spawned tasks wait in the injector until the pool is
    /// dropped, and are then dropped unrun.
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] if the operating system refuses a thread (the
    /// workers already started are stopped and joined first);
    /// [`Error::TooManyWorkers`] above the supported maximum.
    pub fn new(n_workers: usize, runner: Arc<R>) -> Result<Self, Error> {
        Self::with_options(n_workers, runner, PoolOptions::default())
    }

    /// [`Pool::new`], with the worker threads made as `options` says.
    ///
    /// ```
    /// # use boc_sched::{Pool, PoolOptions, Runner};
    /// # use std::sync::Arc;
    /// # struct Nothing;
    /// # impl Runner<()> for Nothing { fn run(&self, _: ()) {} }
    /// let pool = Pool::with_options(1, Arc::new(Nothing), PoolOptions::default().stack_size(8 << 20))?;
    /// # Ok::<(), boc_sched::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`Pool::new`].
    pub fn with_options(n_workers: usize, runner: Arc<R>, options: PoolOptions) -> Result<Self, Error> {
        if n_workers > MAX_WORKERS {
            return Err(Error::TooManyWorkers { requested: n_workers, max: MAX_WORKERS });
        }
        let deques: Vec<Worker<T>> = (0..n_workers).map(|_| Worker::new_fifo()).collect();
        let parkers: Vec<Parker> = (0..n_workers).map(|_| Parker::new()).collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: deques.iter().map(Worker::stealer).collect(),
            idle: Idle::new(parkers.iter().map(|parker| parker.unparker().clone())),
            is_shutdown: AtomicBool::new(false),
            n_panics: AtomicUsize::new(0),
            panic_reported: AtomicBool::new(false),
            runner,
        });
        let mut handles = Vec::with_capacity(n_workers);
        for (worker_idx, (deque, parker)) in deques.into_iter().zip(parkers).enumerate() {
            let worker_shared = Arc::clone(&shared);
            let mut builder = thread::Builder::new().name(format!("boc-worker-{worker_idx}"));
            if let Some(stack_size) = options.stack_size {
                builder = builder.stack_size(stack_size);
            }
            let spawned = builder.spawn(move || worker::run(worker_shared, worker_idx, deque, parker));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    shared.begin_shutdown();
                    for handle in handles {
                        let _ = handle.join();
                    }
                    return Err(Error::Spawn(error));
                }
            }
        }
        Ok(Self { shared, handles: Mutex::new(handles), n_workers })
    }

    /// Spawns a task from any thread.
    ///
    /// On a worker thread of this pool the task goes into that worker's
    /// next slot (producer locality: a behavior made ready by a release runs
    /// next on the same worker, with its cowns still in cache), and the
    /// previous occupant of the slot moves to the worker's deque, where idle
    /// siblings can steal it. Elsewhere the task goes to the shared
    /// injector. Either way, if a task became stealable and a worker is
    /// parked while none is searching, one is woken; a spawn while every
    /// worker is busy costs a fence and one load, no wakeup.
    ///
    /// After [`Pool::shutdown`] has begun, a task spawned from outside the
    /// pool may never run; it is dropped with the pool.
    pub fn spawn(&self, task: T) {
        match worker::push_local(self.shared.addr(), task) {
            // Only the next slot changed: the current worker runs it next
            // and nobody else could take it, so there is nobody to wake.
            Ok(false) => {}
            Ok(true) => self.shared.idle.notify_one(),
            Err(task) => {
                self.shared.injector.push(task);
                self.shared.idle.notify_one();
            }
        }
    }

    /// The number of worker threads the pool was started with.
    pub fn n_workers(&self) -> usize {
        self.n_workers
    }

    /// True iff the calling thread is a worker of this pool.
    ///
    /// ```
    /// # use boc_sched::{Pool, Runner};
    /// # use std::sync::Arc;
    /// # struct Nothing;
    /// # impl Runner<()> for Nothing { fn run(&self, _: ()) {} }
    /// let pool = Pool::new(1, Arc::new(Nothing))?;
    /// assert!(!pool.is_worker_thread());
    /// # Ok::<(), boc_sched::Error>(())
    /// ```
    pub fn is_worker_thread(&self) -> bool {
        worker::is_worker_of(self.shared.addr())
    }

    /// Workers blocked in their park loop right now.
    ///
    /// Diagnostic: the value is stale as soon as it is read. A pool with
    /// no work settles at `n_parked() == n_workers()`, which is how the
    /// tests check that idle workers burn no CPU.
    pub fn n_parked(&self) -> usize {
        self.shared.idle.n_parked()
    }

    /// Panics that escaped [`Runner::run`] (or another [`Runner`] hook) and were
    /// caught by the pool. The first one also prints a note to stderr.
    pub fn n_panics(&self) -> usize {
        self.shared.n_panics.load(Ordering::Relaxed)
    }

    /// Stops the workers once they have run every task already spawned, and
    /// joins them. Idempotent; called by `Drop`.
    ///
    /// "Already spawned" means spawned before this call (in happens-before
    /// order), including everything those tasks spawn on their workers while
    /// the pool drains. Tasks spawned from outside the pool concurrently
    /// with or after shutdown may or may not run; those left over are
    /// dropped with the pool.
    ///
    /// Called from one of the pool's own worker threads (for instance when
    /// a task drops the last handle to the pool), it only signals: it does
    /// not join (a thread cannot join itself, and waiting for siblings from
    /// inside a task could deadlock). The workers, this one included, still
    /// drain the queues and exit on their own once the current task
    /// returns; if the pool is dropped there, they are detached. A later
    /// `shutdown` from another thread joins them.
    pub fn shutdown(&self) {
        self.shared.begin_shutdown();
        if self.is_worker_thread() {
            return;
        }
        // Join under the lock so a concurrent second caller also returns
        // only once the workers are gone.
        let mut handles = self.handles.lock().unpoisoned();
        for handle in handles.drain(..) {
            // Workers catch every panic of the runner; a join error could
            // only come from a bug in the pool itself, and a second panic
            // in shutdown (possibly inside Drop) would abort.
            let _ = handle.join();
        }
    }
}

impl<T: Send + 'static, R: Runner<T>> Drop for Pool<T, R> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl<T: Send + 'static, R: Runner<T>> std::fmt::Debug for Pool<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("n_workers", &self.n_workers)
            .field("n_parked", &self.n_parked())
            .field("n_panics", &self.n_panics())
            .finish_non_exhaustive()
    }
}

/// The default number of workers.
///
/// The `BOC_WORKERS` environment variable if it is set and parses as an
/// integer (surrounding whitespace allowed; `0` is valid and means no
/// worker threads). Otherwise, including when `BOC_WORKERS` is set but
/// invalid (it is then ignored, silently: a library should not print, and a
/// wrong count is not worth failing startup over), the available
/// parallelism minus one (a core is left for the main thread), at least 1.
///
/// ```
/// assert!(boc_sched::default_workers() >= 1 || std::env::var("BOC_WORKERS").is_ok());
/// ```
pub fn default_workers() -> usize {
    let parallelism = thread::available_parallelism().map_or(1, usize::from);
    workers_from(std::env::var("BOC_WORKERS").ok().as_deref(), parallelism)
}

/// [`default_workers`] without the environment, for tests.
fn workers_from(boc_workers: Option<&str>, parallelism: usize) -> usize {
    boc_workers
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or_else(|| parallelism.saturating_sub(1).max(1))
}

#[cfg(test)]
mod tests {
    use super::workers_from;

    #[test]
    fn workers_from_env_or_parallelism() {
        assert_eq!(workers_from(None, 8), 7);
        assert_eq!(workers_from(None, 2), 1);
        assert_eq!(workers_from(None, 1), 1);
        assert_eq!(workers_from(Some("3"), 8), 3);
        assert_eq!(workers_from(Some(" 5\n"), 8), 5);
        assert_eq!(workers_from(Some("0"), 8), 0);
        assert_eq!(workers_from(Some("many"), 8), 7);
        assert_eq!(workers_from(Some("-2"), 8), 7);
        assert_eq!(workers_from(Some(""), 4), 3);
    }
}
