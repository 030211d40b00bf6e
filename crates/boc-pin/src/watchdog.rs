//! The starvation watchdog: a thread (named `boc-watchdog`) that reports
//! main-side work waiting too long for the home thread to pump it, the usual
//! symptom of a program that never calls pump, or whose event loop is stuck.
//! It only reports, through a configurable sink; it never raises, and never
//! touches the tasks.
//!
//! # Episodes
//!
//! The queue *starves* while it holds tasks and pump takes none. Starvation
//! is measured from `since`, the later of the oldest entry's enqueue instant
//! and the last time pump took a task. Once `now - since` reaches the
//! threshold, the watchdog reports, once: depth, age of the oldest entry
//! (its full age, which may exceed `now - since`), and the labels of the
//! oldest entries. The *episode* ends when pump takes a task (whether or not
//! that drains the queue) or the queue is cleared; a new one needs another
//! full threshold without progress.
//!
//! So a program that never pumps gets exactly one report until it does, and
//! a program that pumps regularly gets none even while a backlog is
//! deeper than one pump's budget: it is not starving the queue, and its
//! backlog shows in [`PumpReport::pending`](crate::PumpReport::pending).
//!
//! # Cost
//!
//! Nothing while no main-side work exists: the thread sleeps on a condition
//! variable with no timeout (*parked*) while the watchdog is disabled, the
//! queue is empty, or the episode is already reported, and only the push
//! that makes the queue non-empty (or the take that ends a reported episode
//! while tasks remain, or a configuration change, or the queue's drop)
//! wakes it, each only if `watchdog_parked` says it is parked. With work
//! queued it sleeps until `since + threshold`; if pump made progress
//! meanwhile, it wakes once at the old deadline and sleeps again.
//!
//! The thread is started with the first enabled configuration and lives
//! until the queue is dropped (disabling only parks it). It holds the
//! queue's shared state, not the queue: dropping the queue sets `shutdown`
//! and notifies it, and it exits without the dropping thread waiting for it
//! (a sink blocked on a lock the dropping thread holds, a language runtime's
//! global lock for one, would otherwise deadlock the drop).

use crate::callback;
use crate::error::Error;
use crate::primitive::Ordering;
use crate::primitive::Unpoisoned;
use crate::queue::{MainQueue, Shared, State, spawn_watchdog};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many labels go into a [`StarvationReport`].
pub const MAX_REPORTED_LABELS: usize = 10;

/// The watchdog's settings: how long work may wait, and where reports go.
///
/// ```
/// use boc_pin::{MainConfig, MainQueue, WatchdogConfig};
/// use std::time::Duration;
///
/// let config = WatchdogConfig::new(Duration::from_millis(500))
///     .with_sink(|report| eprintln!("main thread is not pumping: {report}"));
/// let queue = MainQueue::<u32>::new(MainConfig { watchdog: Some(config) })?;
/// # Ok::<(), boc_pin::Error>(())
/// ```
#[derive(Clone)]
pub struct WatchdogConfig {
    /// How long main-side work may starve before it is reported (default
    /// [`WatchdogConfig::DEFAULT_THRESHOLD`]).
    pub threshold: Duration,
    /// Receives each report, on the watchdog thread. Must not block for
    /// long (the watchdog reports nothing else meanwhile); a panic in it is
    /// caught and reported. Default: prints `boc: {report}` to standard error.
    pub sink: Arc<dyn Fn(&StarvationReport) + Send + Sync>,
}

impl WatchdogConfig {
    /// The default threshold: 2 seconds.
    pub const DEFAULT_THRESHOLD: Duration = Duration::from_millis(2000);

    /// A watchdog with this threshold and the default sink (standard error).
    pub fn new(threshold: Duration) -> Self {
        Self { threshold, sink: Arc::new(|report| eprintln!("boc: {report}")) }
    }

    /// Replaces the sink.
    pub fn with_sink(self, sink: impl Fn(&StarvationReport) + Send + Sync + 'static) -> Self {
        Self { sink: Arc::new(sink), ..self }
    }
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self::new(Self::DEFAULT_THRESHOLD)
    }
}

impl fmt::Debug for WatchdogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchdogConfig").field("threshold", &self.threshold).finish_non_exhaustive()
    }
}

/// What the watchdog reports about one starvation episode. Its `Display` is
/// a one-paragraph message for a log.
///
/// ```
/// use boc_pin::{MainConfig, MainQueue, StarvationReport, WatchdogConfig};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let (sender, reports) = mpsc::channel::<StarvationReport>();
/// let sender = std::sync::Mutex::new(sender);
/// let config = WatchdogConfig::new(Duration::from_millis(20))
///     .with_sink(move |report| sender.lock().unwrap().send(report.clone()).unwrap());
/// let queue = MainQueue::new(MainConfig { watchdog: Some(config) })?;
/// queue.push((), Some("app.redraw (app.py:12)".into()));
///
/// let report = reports.recv_timeout(Duration::from_secs(10)).unwrap();
/// assert_eq!(report.depth, 1);
/// assert!(report.oldest_age >= Duration::from_millis(20));
/// assert!(report.to_string().contains("app.redraw (app.py:12)"));
/// assert!(report.to_string().contains("call pump() (or wait()) on the home thread"));
/// # Ok::<(), boc_pin::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StarvationReport {
    /// Tasks waiting in the queue.
    pub depth: usize,
    /// How long the oldest of them has waited.
    pub oldest_age: Duration,
    /// The threshold that was crossed.
    pub threshold: Duration,
    /// Labels of the oldest waiting tasks, oldest first: those of the first
    /// [`MAX_REPORTED_LABELS`] entries that have one.
    pub labels: Vec<Arc<str>>,
}

impl fmt::Display for StarvationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (noun, verb) = if self.depth == 1 { ("behavior", "is") } else { ("behaviors", "are") };
        write!(
            f,
            "{} main-side {noun} {verb} waiting for the home thread, the oldest for {:.1?} (threshold {:.1?})",
            self.depth, self.oldest_age, self.threshold
        )?;
        if !self.labels.is_empty() {
            f.write_str(": ")?;
            for (label_idx, label) in self.labels.iter().enumerate() {
                if label_idx > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(label)?;
            }
            let n_unnamed = self.depth - self.labels.len();
            if n_unnamed > 0 {
                write!(f, " and {n_unnamed} more")?;
            }
        }
        f.write_str(". Nothing has pumped them; call pump() (or wait()) on the home thread.")
    }
}

impl<T: Send + 'static> MainQueue<T> {
    /// Configures the watchdog, or disables it with `None`. Starts its
    /// thread on first use. The current episode, if already reported, is not
    /// reported again.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue, WatchdogConfig};
    /// use std::time::Duration;
    ///
    /// let queue = MainQueue::<u32>::new(MainConfig::default())?;
    /// queue.set_watchdog(None)?; // silence it
    /// queue.set_watchdog(Some(WatchdogConfig::new(Duration::from_secs(5))))?;
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] if the thread is needed and cannot be started; the
    /// watchdog then stays disabled.
    pub fn set_watchdog(&self, config: Option<WatchdogConfig>) -> Result<(), Error> {
        let mut state = self.shared.lock();
        if config.is_some() && !state.watchdog_started {
            spawn_watchdog(&self.shared)?;
            state.watchdog_started = true;
        }
        self.watchdog_on.store(config.is_some(), Ordering::Relaxed);
        let previous = std::mem::replace(&mut state.watchdog, config);
        drop(state);
        // Outside the lock: dropping a sink may run arbitrary code.
        drop(previous);
        self.shared.watchdog_wakeup.notify_one();
        Ok(())
    }

    /// Whether a watchdog is configured, so that queued tasks are worth
    /// labelling: what [`push_labeled`](MainQueue::push_labeled) decides by,
    /// for a runtime whose labels cost something to make before the push
    /// (a snapshot, read without locking).
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue};
    ///
    /// let queue = MainQueue::<u32>::new(MainConfig::default())?;
    /// assert!(queue.labels_wanted());
    /// queue.set_watchdog(None)?;
    /// assert!(!queue.labels_wanted());
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn labels_wanted(&self) -> bool {
        self.watchdog_on.load(Ordering::Relaxed)
    }

    /// The configured watchdog's threshold, `None` when it is off: how long
    /// work may wait unpumped before it is reported (a runtime's exit path
    /// waits as long before it says what it still waits for).
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue, WatchdogConfig};
    /// use std::time::Duration;
    ///
    /// let queue = MainQueue::<u32>::new(MainConfig::default())?;
    /// assert_eq!(queue.watchdog_threshold(), Some(WatchdogConfig::DEFAULT_THRESHOLD));
    /// queue.set_watchdog(Some(WatchdogConfig::new(Duration::from_secs(5))))?;
    /// assert_eq!(queue.watchdog_threshold(), Some(Duration::from_secs(5)));
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn watchdog_threshold(&self) -> Option<Duration> {
        self.shared.lock().watchdog.as_ref().map(|config| config.threshold)
    }
}

/// What the watchdog does next.
enum Step {
    /// Sleep until notified.
    Park,
    /// Sleep until then, or until notified.
    SleepUntil(Instant),
    /// Report this through this sink.
    Report(StarvationReport, Arc<dyn Fn(&StarvationReport) + Send + Sync>),
}

fn next_step<T>(state: &State<T>, now: Instant) -> Step {
    let (Some(config), Some(oldest)) = (&state.watchdog, state.entries.front()) else {
        return Step::Park;
    };
    if state.episode_reported {
        return Step::Park;
    }
    let since = state.last_take.map_or(oldest.enqueued_at, |last_take| last_take.max(oldest.enqueued_at));
    // A threshold past the end of time never fires.
    let Some(due) = since.checked_add(config.threshold) else {
        return Step::Park;
    };
    if now < due {
        return Step::SleepUntil(due);
    }
    let labels = state.entries.iter().take(MAX_REPORTED_LABELS).filter_map(|entry| entry.label.clone()).collect();
    let report = StarvationReport {
        depth: state.entries.len(),
        oldest_age: now.saturating_duration_since(oldest.enqueued_at),
        threshold: config.threshold,
        labels,
    };
    Step::Report(report, Arc::clone(&config.sink))
}

/// The watchdog thread's body; returns when the queue is dropped.
pub(crate) fn run<T>(shared: &Shared<T>) {
    let mut state = shared.lock();
    loop {
        if state.shutdown {
            return;
        }
        match next_step(&state, Instant::now()) {
            Step::Park => {
                state.watchdog_parked = true;
                state = shared.watchdog_wakeup.wait(state).unpoisoned();
                state.watchdog_parked = false;
            }
            Step::SleepUntil(due) => {
                let timeout = due.saturating_duration_since(Instant::now());
                state = shared.watchdog_wakeup.wait_timeout(state, timeout).unpoisoned().0;
            }
            Step::Report(report, sink) => {
                state.episode_reported = true;
                drop(state);
                callback::call("the watchdog's sink", || sink(&report));
                // Outside the lock: this may be the last reference to a sink
                // replaced meanwhile.
                drop(sink);
                state = shared.lock();
                continue;
            }
        }
        #[cfg(test)]
        shared.n_watchdog_wakeups.fetch_add(1, Ordering::Relaxed);
    }
}
