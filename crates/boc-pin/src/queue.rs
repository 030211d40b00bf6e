//! The main-side queue: [`MainQueue`], its configuration, pushing from any
//! thread, and the home thread's blocking [`MainQueue::wait_for_work`].
//!
//! # Representation
//!
//! One `Mutex<State>` holds a `VecDeque` of entries (task, label, enqueue
//! instant) together with every flag the protocols decide on. A lock rather
//! than a lock-free MPSC list, because:
//!
//! * the watchdog must read the labels and ages of the entries that are
//!   waiting, which a lock-free list only offers to its consumer;
//! * the waker, the blocking wait and the watchdog all hinge on the
//!   transition "empty -> non-empty", and observing it under the same lock as
//!   the push makes each of their lost-wakeup arguments a few lines long
//!   (`waker.rs`);
//! * main-side work is the rare path (behaviors on pinned cowns), and the
//!   lock is held for O(1) work only: no task body, task drop, waker
//!   callback or watchdog sink ever runs under it.
//!
//! A mirror of the length in an atomic (`n_queued`) makes [`MainQueue::len`]
//! and [`MainQueue::is_empty`] lock-free. Producers take the lock once per
//! push; the consumer once per task taken.
//!
//! # The blocking wait
//!
//! * **W1.** The home thread, holding the lock, returns if the queue is
//!   non-empty or the wake token is set (consuming it); otherwise it sets
//!   `home_waiting` and sleeps on `home_wakeup`, which releases the lock.
//! * **W2.** A push that makes the queue non-empty, or a `wake` (which sets
//!   the token), reads `home_waiting` under the lock and, if set, notifies
//!   after releasing it.
//!
//! The lock orders W2's critical section before W1's check (which then sees
//! the work or the token) or after the home thread is asleep (the lock is
//! only released by the sleep), so the notification reaches it. A push into
//! a non-empty queue needs no notification: the home thread only sleeps on
//! an empty one. Spurious returns loop back to W1. No timer is involved
//! beyond the caller's timeout.

use crate::error::Error;
use crate::primitive::Unpoisoned;
use crate::primitive::{AtomicBool, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering, ThreadId, current_thread};
use crate::waker::Signal;
use crate::watchdog::{self, WatchdogConfig};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a [`MainQueue`] is set up.
///
/// The default turns the watchdog on with its default threshold (2 s) and
/// sink (standard error).
///
/// ```
/// use boc_pin::{MainConfig, MainQueue, WatchdogConfig};
/// use std::time::Duration;
///
/// let quiet = MainQueue::<u32>::new(MainConfig { watchdog: None })?;
/// let impatient = MainQueue::<u32>::new(MainConfig {
///     watchdog: Some(WatchdogConfig::new(Duration::from_millis(500))),
/// })?;
/// # Ok::<(), boc_pin::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MainConfig {
    /// The starvation watchdog, or `None` for none. See [`MainQueue::set_watchdog`].
    pub watchdog: Option<WatchdogConfig>,
}

impl Default for MainConfig {
    fn default() -> Self {
        Self { watchdog: Some(WatchdogConfig::default()) }
    }
}

/// Why [`MainQueue::wait_for_work`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitOutcome {
    /// The queue is not empty.
    Work,
    /// [`MainQueue::wake`] was called (since the last wait that returned
    /// `Woken`).
    Woken,
    /// The timeout passed with neither.
    TimedOut,
}

/// One queued task.
pub(crate) struct Entry<T> {
    pub(crate) task: T,
    /// What the watchdog names the task by.
    pub(crate) label: Option<Arc<str>>,
    pub(crate) enqueued_at: Instant,
}

/// Everything behind the queue's lock.
pub(crate) struct State<T> {
    /// Ready tasks, oldest first.
    pub(crate) entries: VecDeque<Entry<T>>,
    /// When pump last took a task: the watchdog measures starvation from
    /// the later of this and the oldest entry's enqueue instant.
    pub(crate) last_take: Option<Instant>,
    /// Whether the watchdog has reported the current starvation episode.
    /// Set by the watchdog; cleared when pump takes a task (which ends the
    /// episode, the queue drained or not) and by [`MainQueue::clear`].
    pub(crate) episode_reported: bool,
    /// [`MainQueue::wake`]'s token, consumed by `wait_for_work`.
    pub(crate) wake_token: bool,
    /// The home thread is blocked on `home_wakeup` in `wait_for_work`.
    pub(crate) home_waiting: bool,
    /// The waker callback.
    pub(crate) waker: Option<Arc<dyn Fn() + Send + Sync>>,
    /// The watchdog's configuration; `None` disables it.
    pub(crate) watchdog: Option<WatchdogConfig>,
    /// Whether the watchdog thread was started (it lives until shutdown).
    pub(crate) watchdog_started: bool,
    /// The watchdog thread sleeps with no deadline (disabled, empty queue,
    /// or episode already reported) and needs a notification to look again.
    pub(crate) watchdog_parked: bool,
    /// The queue was dropped: the watchdog thread exits.
    pub(crate) shutdown: bool,
}

/// What the queue shares with its watchdog thread. The thread holds an
/// `Arc` of this, never of the [`MainQueue`], so dropping the queue drops
/// the tasks on the dropping thread and tells the watchdog to exit.
pub(crate) struct Shared<T> {
    pub(crate) state: Mutex<State<T>>,
    /// The watchdog thread sleeps on this, with `state`'s lock.
    pub(crate) watchdog_wakeup: Condvar,
    /// Times the watchdog thread woke up, so tests can check that it sleeps.
    /// Incremented (Relaxed) by the watchdog thread, read (Relaxed) by unit
    /// tests; a statistic that orders nothing. Unit tests only.
    #[cfg(test)]
    pub(crate) n_watchdog_wakeups: AtomicUsize,
}

impl<T> Shared<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under the lock, so poisoning can only come from
        // an allocation failure in a push; the state is consistent anyway.
        self.state.lock().unpoisoned()
    }
}

/// Which thread is a queue's home.
#[derive(Debug)]
pub(crate) enum HomeThread {
    /// This thread (the creating one, or one given by its handle).
    Id { id: ThreadId, name: Option<String> },
    /// Whichever thread `is_home` accepts ([`MainQueue::with_home_check`]).
    Check { is_home: fn() -> bool, name: &'static str },
}

/// The main side: a multi-producer, single-consumer queue of ready tasks
/// that only the *home thread* (the thread that created it) runs, through
/// [`pump`](MainQueue::pump).
///
/// Any thread may [`push`](MainQueue::push). The home thread drains the
/// queue cooperatively with [`pump`](MainQueue::pump), or blocks in
/// [`wait_for_work`](MainQueue::wait_for_work); an event loop learns about
/// new work through the [waker](MainQueue::set_waker) or the
/// [file descriptor](MainQueue::waker_fd). A watchdog thread reports work
/// that waits too long without being pumped.
///
/// Dropping the queue drops the tasks still queued (on the dropping thread)
/// and lets the watchdog thread exit; it does not wait for it.
///
/// ```
/// use boc_pin::{Budget, MainConfig, MainQueue, Outcome};
/// use std::sync::Arc;
///
/// let queue = Arc::new(MainQueue::new(MainConfig::default())?);
/// let producer = {
///     let queue = Arc::clone(&queue);
///     std::thread::spawn(move || queue.push(21, Some("double (example.rs:9)".into())))
/// };
/// producer.join().unwrap();
///
/// let runner = |task: u64| {
///     assert_eq!(task * 2, 42);
///     Outcome::Ok
/// };
/// let report = queue.pump(&runner, Budget::unbounded()).unwrap();
/// assert_eq!((report.executed, report.pending), (1, 0));
/// # Ok::<(), boc_pin::Error>(())
/// ```
pub struct MainQueue<T> {
    pub(crate) shared: Arc<Shared<T>>,
    /// The only thread that may pump.
    pub(crate) home: HomeThread,
    /// The home thread sleeps on this in `wait_for_work`, with the state
    /// lock. Notified by the push that makes the queue non-empty and by
    /// `wake`, each only when `home_waiting` says someone sleeps.
    pub(crate) home_wakeup: Condvar,
    /// Mirror of `entries.len()` for lock-free [`len`](MainQueue::len).
    ///
    /// Written (Relaxed store) only under the state lock, by every push and
    /// take; read (Relaxed load) by `len`/`is_empty` from any thread. It
    /// orders nothing and no protocol decision reads it: a reader gets a
    /// length the queue had at some recent moment.
    pub(crate) n_queued: AtomicUsize,
    /// Whether a watchdog is configured, so [`MainQueue::push_labeled`] can
    /// skip making labels nobody will read ([`MainQueue::labels_wanted`]). Written (Relaxed) by
    /// `set_watchdog` under the lock, read (Relaxed) by `push_labeled`
    /// outside it; orders nothing (a label is advisory: a push racing the
    /// watchdog's first configuration may go unlabelled). The one copy of
    /// the fact: runtimes read it through `labels_wanted`.
    pub(crate) watchdog_on: AtomicBool,
    /// The home thread is inside `pump`.
    ///
    /// Written (Relaxed) only by the home thread: `true` when a pump
    /// starts, `false` when it is done taking tasks, just before its steps
    /// C1 and C2 (`waker.rs`). Read (Relaxed) by the home thread for the
    /// re-entrancy check (its own writes), and by a push that makes the
    /// queue non-empty, *under the state lock*, to skip signalling the
    /// waker during a pump. That read needs no stronger ordering because
    /// C2 takes the lock after the `false` store: a push whose critical
    /// section follows C2 is ordered after that store and reads `false`
    /// (or the `true` of a later pump, whose C2 is still to come); a push
    /// that reads `true` holds the lock before that pump's C2, which will
    /// see its task. loom checks this (`loom_tests.rs`).
    pub(crate) is_pumping: AtomicBool,
    /// The waker's readable file descriptor (a counter under loom).
    pub(crate) signal: Signal,
    /// Times `wait_for_work` returned from its condition variable, so tests
    /// can check that it sleeps. Incremented (Relaxed) by the home thread,
    /// read (Relaxed) by [`MainQueue::n_wait_wakeups`]; orders nothing.
    pub(crate) n_wait_wakeups: AtomicUsize,
}

/// [`MainQueue::hold`]'s guard: the queue's lock, released when it drops.
#[must_use = "the queue's lock is released as soon as the guard drops"]
pub struct Hold<'a, T> {
    state: MutexGuard<'a, State<T>>,
    n_queued: &'a AtomicUsize,
}

impl<T> Hold<'_, T> {
    /// Forgets the queued tasks without running or dropping them (they are
    /// leaked) and returns how many there were. For a forked child, whose
    /// queued tasks are the parent's: run there, they would run twice.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// let queue = MainQueue::new(MainConfig::default())?;
    /// queue.push(String::from("the parent's"), None);
    /// assert_eq!(queue.hold().forget_queued(), 1);
    /// assert!(queue.is_empty());
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn forget_queued(&mut self) -> usize {
        let entries = std::mem::take(&mut self.state.entries);
        self.state.episode_reported = false;
        self.n_queued.store(0, Ordering::Relaxed);
        let n_forgotten = entries.len();
        std::mem::forget(entries);
        n_forgotten
    }
}

impl<T> fmt::Debug for Hold<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hold").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> MainQueue<T> {
    /// Creates a queue whose home thread is the calling thread, and starts
    /// the watchdog thread if `config` enables it.
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] if the watchdog thread cannot be started.
    pub fn new(config: MainConfig) -> Result<Self, Error> {
        let home = current_thread();
        Self::with_home_id(config, home.id(), home.name().map(str::to_owned))
    }

    /// Creates a queue whose home thread is `home`, which need not be the
    /// calling thread: for a runtime started lazily from any thread whose
    /// home must still be a particular one (a Python binding's home is the
    /// interpreter's main thread, whoever starts the runtime).
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// let home = std::thread::current();
    /// let queue = std::thread::spawn(move || MainQueue::<u32>::with_home(MainConfig { watchdog: None }, home))
    ///     .join()
    ///     .unwrap()?;
    /// assert!(queue.is_home_thread());
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] if the watchdog thread cannot be started.
    #[cfg(not(boc_loom))]
    pub fn with_home(config: MainConfig, home: std::thread::Thread) -> Result<Self, Error> {
        Self::with_home_id(config, home.id(), home.name().map(str::to_owned))
    }

    /// Creates a queue whose home thread is whichever thread `is_home` says
    /// it is, called `name` in errors: for a binding whose home is defined
    /// by its host rather than by a Rust thread handle (a Python binding's
    /// home is the interpreter's main thread, which it recognizes by
    /// CPython's thread identity, and which may not have touched Rust yet
    /// when the queue is created). `is_home` must be cheap, must not block,
    /// and must be true on exactly one thread at a time.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// fn is_main() -> bool {
    ///     std::thread::current().name() == Some("main")
    /// }
    /// let queue = std::thread::spawn(|| MainQueue::<u32>::with_home_check(MainConfig { watchdog: None }, is_main, "the main thread"))
    ///     .join()
    ///     .unwrap()?;
    /// assert!(queue.is_home_thread());
    /// assert_eq!(queue.home_thread(), None);
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] if the watchdog thread cannot be started.
    pub fn with_home_check(config: MainConfig, is_home: fn() -> bool, name: &'static str) -> Result<Self, Error> {
        Self::with_home_thread(config, HomeThread::Check { is_home, name })
    }

    fn with_home_id(config: MainConfig, id: ThreadId, name: Option<String>) -> Result<Self, Error> {
        Self::with_home_thread(config, HomeThread::Id { id, name })
    }

    fn with_home_thread(config: MainConfig, home: HomeThread) -> Result<Self, Error> {
        let queue = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    entries: VecDeque::new(),
                    last_take: None,
                    episode_reported: false,
                    wake_token: false,
                    home_waiting: false,
                    waker: None,
                    watchdog: None,
                    watchdog_started: false,
                    watchdog_parked: false,
                    shutdown: false,
                }),
                watchdog_wakeup: Condvar::new(),
                #[cfg(test)]
                n_watchdog_wakeups: AtomicUsize::new(0),
            }),
            home,
            home_wakeup: Condvar::new(),
            n_queued: AtomicUsize::new(0),
            is_pumping: AtomicBool::new(false),
            signal: Signal::new(),
            watchdog_on: AtomicBool::new(false),
            n_wait_wakeups: AtomicUsize::new(0),
        };
        if config.watchdog.is_some() {
            queue.set_watchdog(config.watchdog)?;
        }
        Ok(queue)
    }

    /// Enqueues a ready task from any thread.
    ///
    /// `label` names the task in the watchdog's reports (for example
    /// `"module.func (file.py:12)"`). If the queue was empty, the waker is
    /// signalled: the file descriptor becomes readable, the callback is
    /// called (on this thread, after the task is queued), and a home thread
    /// blocked in [`wait_for_work`](MainQueue::wait_for_work) wakes up. A
    /// push made while [`pump`](MainQueue::pump) runs (by one of its tasks,
    /// or by another thread) skips the waker: that pump runs the task, or
    /// re-arms the waker when it returns.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// let queue = MainQueue::new(MainConfig::default())?;
    /// queue.push("redraw", Some("ui.redraw (app.py:40)".into()));
    /// queue.push("log", None);
    /// assert_eq!(queue.len(), 2);
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn push(&self, task: T, label: Option<Arc<str>>) {
        let entry = Entry { task, label, enqueued_at: Instant::now() };
        let mut state = self.shared.lock();
        let was_empty = state.entries.is_empty();
        state.entries.push_back(entry);
        self.n_queued.store(state.entries.len(), Ordering::Relaxed);
        if was_empty {
            self.became_non_empty(state);
        }
    }

    /// [`push`](MainQueue::push), with the label made by `label` only if a
    /// watchdog is configured to read it (formatting one for every task
    /// would tax the hot path for nothing when the watchdog is off).
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// let queue = MainQueue::new(MainConfig { watchdog: None })?;
    /// queue.push_labeled(7_u32, |task| Some(format!("task {task}").into()));
    /// assert_eq!(queue.len(), 1);
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn push_labeled(&self, task: T, label: impl FnOnce(&T) -> Option<Arc<str>>) {
        let label = if self.labels_wanted() { label(&task) } else { None };
        self.push(task, label);
    }

    /// The transition empty -> non-empty, observed under the lock by the
    /// push that made it (step P1 of the wakeup protocol in `waker.rs`):
    /// wakes whoever sleeps, then signals the waker outside the lock.
    #[cold]
    fn became_non_empty(&self, state: MutexGuard<'_, State<T>>) {
        let notify_home = state.home_waiting;
        let notify_watchdog = state.watchdog_parked;
        // Read under the lock: `true` means a pump's C2 is still to come
        // and will see this task (see `is_pumping`), so no signal is needed.
        let during_pump = self.is_pumping.load(Ordering::Relaxed);
        let callback = if during_pump { None } else { state.waker.clone() };
        drop(state);
        if notify_home {
            self.home_wakeup.notify_one();
        }
        if notify_watchdog {
            self.shared.watchdog_wakeup.notify_one();
        }
        if !during_pump {
            self.signal_waker(callback.as_deref());
        }
    }

    /// Takes the queue's lock and holds it until the returned guard drops:
    /// meanwhile no other thread pushes, pumps, waits on or reports about
    /// the queue (the watchdog thread included). No code but the queue's
    /// own bookkeeping ever runs under this lock, so it is never held for
    /// long, and the holder of the guard waits for nothing but that.
    ///
    /// For a `fork` handler (`pthread_atfork`'s *prepare*): a lock held by
    /// another thread at the fork stays held in the child, which has only
    /// the forking thread, so the child would block on the queue forever.
    /// Hold it across the fork and drop the guard on both sides. Calling
    /// any other method of the queue on the holding thread deadlocks.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// let queue = MainQueue::<u32>::new(MainConfig::default())?;
    /// let hold = queue.hold();
    /// // ... fork here ...
    /// drop(hold);
    /// queue.push(1, None);
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn hold(&self) -> Hold<'_, T> {
        Hold { state: self.shared.lock(), n_queued: &self.n_queued }
    }

    /// The number of queued tasks, from any thread, without locking. A
    /// snapshot: other threads may push meanwhile.
    pub fn len(&self) -> usize {
        self.n_queued.load(Ordering::Relaxed)
    }

    /// The labels of the oldest `max` queued tasks that have one, oldest
    /// first: for a diagnostic of what waits for the home thread.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// let queue = MainQueue::new(MainConfig { watchdog: None })?;
    /// queue.push(1, Some("redraw (app.py:3)".into()));
    /// queue.push(2, None);
    /// assert_eq!(queue.labels(10), ["redraw (app.py:3)".into()]);
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn labels(&self, max: usize) -> Vec<Arc<str>> {
        let state = self.shared.lock();
        state.entries.iter().filter_map(|entry| entry.label.clone()).take(max).collect()
    }

    /// Whether no task is queued (a snapshot, like [`len`](MainQueue::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The home thread, the only one that may pump; `None` for a queue
    /// made by [`with_home_check`](MainQueue::with_home_check), whose home
    /// is whichever thread its check accepts.
    pub fn home_thread(&self) -> Option<ThreadId> {
        match self.home {
            HomeThread::Id { id, .. } => Some(id),
            HomeThread::Check { .. } => None,
        }
    }

    /// Whether the calling thread is the home thread.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// let queue = MainQueue::<()>::new(MainConfig::default())?;
    /// assert!(queue.is_home_thread());
    /// std::thread::scope(|scope| {
    ///     scope.spawn(|| assert!(!queue.is_home_thread()));
    /// });
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn is_home_thread(&self) -> bool {
        match self.home {
            HomeThread::Id { id, .. } => current_thread().id() == id,
            HomeThread::Check { is_home, .. } => is_home(),
        }
    }

    /// Drops every queued task, on the calling thread (at shutdown), and
    /// returns how many there were. Ends any starvation episode.
    ///
    /// Tasks pushed meanwhile, including by the drops themselves, stay
    /// queued and keep the waker signalled.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// let queue = MainQueue::new(MainConfig::default())?;
    /// queue.push(1, None);
    /// queue.push(2, None);
    /// assert_eq!(queue.clear(), 2);
    /// assert!(queue.is_empty());
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn clear(&self) -> usize {
        let entries = {
            let mut state = self.shared.lock();
            state.episode_reported = false;
            self.n_queued.store(0, Ordering::Relaxed);
            std::mem::take(&mut state.entries)
        };
        let n_cleared = entries.len();
        drop(entries);
        self.rearm_waker();
        n_cleared
    }

    /// Blocks the home thread until the queue is non-empty, or
    /// [`wake`](MainQueue::wake) was called, or `timeout` passed (`None`:
    /// no timeout). Sleeps on a condition variable: no polling.
    ///
    /// Checks in that order, so a non-empty queue wins over a pending wake,
    /// which stays pending for the next call. A wake that arrives before
    /// the call is not lost: the call returns [`WaitOutcome::Woken`] at once.
    ///
    /// This is the blocking half of "wait on the home thread", whose loop
    /// is [`wait_until`](MainQueue::wait_until): a runtime uses that rather
    /// than writing the loop again.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue, WaitOutcome};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let queue = Arc::new(MainQueue::<u32>::new(MainConfig::default())?);
    /// assert_eq!(queue.wait_for_work(Some(Duration::from_millis(1)))?, WaitOutcome::TimedOut);
    ///
    /// let producer = {
    ///     let queue = Arc::clone(&queue);
    ///     std::thread::spawn(move || queue.push(7, None))
    /// };
    /// assert_eq!(queue.wait_for_work(None)?, WaitOutcome::Work);
    /// producer.join().unwrap();
    ///
    /// queue.clear();
    /// queue.wake();
    /// assert_eq!(queue.wait_for_work(None)?, WaitOutcome::Woken);
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotHomeThread`] off the home thread, [`Error::Reentrant`]
    /// from inside a task run by [`pump`](MainQueue::pump) (the work it would
    /// wait for can only run after that task returns).
    pub fn wait_for_work(&self, timeout: Option<Duration>) -> Result<WaitOutcome, Error> {
        self.check_home("wait_for_work")?;
        self.check_not_pumping("wait_for_work")?;
        Ok(self.block_for_work(timeout))
    }

    /// [`wait_for_work`](MainQueue::wait_for_work) without its checks: the
    /// caller is on the home thread and not inside a pump.
    pub(crate) fn block_for_work(&self, timeout: Option<Duration>) -> WaitOutcome {
        // A timeout too large for an Instant is no timeout.
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut state = self.shared.lock();
        loop {
            if !state.entries.is_empty() {
                return WaitOutcome::Work;
            }
            if std::mem::take(&mut state.wake_token) {
                return WaitOutcome::Woken;
            }
            state.home_waiting = true;
            state = match deadline {
                None => self.home_wakeup.wait(state).unpoisoned(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        state.home_waiting = false;
                        return WaitOutcome::TimedOut;
                    }
                    let (state, _) = self.home_wakeup.wait_timeout(state, deadline - now).unpoisoned();
                    state
                }
            };
            state.home_waiting = false;
            self.n_wait_wakeups.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Diagnostic: how many times [`wait_for_work`](Self::wait_for_work)
    /// has woken from its sleep (by work, a wake or a timeout), so a test
    /// can check that a waiting home thread sleeps rather than polls.
    pub fn n_wait_wakeups(&self) -> usize {
        self.n_wait_wakeups.load(Ordering::Relaxed)
    }

    /// From any thread: makes the home thread's current or next
    /// [`wait_for_work`](MainQueue::wait_for_work) return
    /// [`WaitOutcome::Woken`]. Wakes that pile up before a wait count once.
    pub fn wake(&self) {
        let mut state = self.shared.lock();
        state.wake_token = true;
        let notify_home = state.home_waiting;
        drop(state);
        if notify_home {
            self.home_wakeup.notify_one();
        }
    }

    /// `Ok` on the home thread, else the error naming both threads.
    pub(crate) fn check_home(&self, operation: &'static str) -> Result<(), Error> {
        if self.is_home_thread() {
            return Ok(());
        }
        let current = current_thread();
        let (home, home_name) = match &self.home {
            HomeThread::Id { id, name } => (Some(*id), name.clone()),
            HomeThread::Check { name, .. } => (None, Some((*name).to_owned())),
        };
        Err(Error::NotHomeThread {
            operation,
            home,
            home_name,
            caller: current.id(),
            caller_name: current.name().map(str::to_owned),
        })
    }

    /// `Ok` unless the home thread is inside `pump`. Call after `check_home`.
    pub(crate) fn check_not_pumping(&self, operation: &'static str) -> Result<(), Error> {
        if self.is_pumping.load(Ordering::Relaxed) { Err(Error::Reentrant { operation }) } else { Ok(()) }
    }
}

impl<T> Drop for MainQueue<T> {
    fn drop(&mut self) {
        let (entries, waker, watchdog) = {
            let mut state = self.shared.lock();
            state.shutdown = true;
            (std::mem::take(&mut state.entries), state.waker.take(), state.watchdog.take())
        };
        self.shared.watchdog_wakeup.notify_all();
        // Dropped here, outside the lock and on the dropping thread rather
        // than on the watchdog's when it lets go of the shared state.
        drop((entries, waker, watchdog));
    }
}

impl<T> fmt::Debug for MainQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MainQueue")
            .field("home", &self.home)
            .field("len", &self.n_queued.load(Ordering::Relaxed))
            .field("is_pumping", &self.is_pumping.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Starts the watchdog thread for `shared`, which must not have one yet.
pub(crate) fn spawn_watchdog<T: Send + 'static>(shared: &Arc<Shared<T>>) -> Result<(), Error> {
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("boc-watchdog".to_owned())
        .spawn(move || watchdog::run(&shared))
        .map(drop)
        .map_err(Error::Spawn)
}
