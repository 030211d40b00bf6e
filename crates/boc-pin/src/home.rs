//! The home thread's wait loop ([`MainQueue::wait_until`]) and its other
//! half, counting work out ([`MainQueue::count_out`]): the one copy of
//! "wait on the home thread until everything in flight is done, running
//! main-side work meanwhile", used by every runtime built on this crate and
//! checked by the loom models as it is.
//!
//! # The protocol
//!
//! The runtime counts work in before it can reach the queue and out once it
//! is finished, wherever it ran. The loop, on the home thread:
//!
//! * **L1.** runs the main-side work that is ready ([`HomeWait::pump`]);
//! * **L2.** returns if the wait is over ([`HomeWait::is_done`]: nothing in
//!   flight, plus whatever else the caller waits for);
//! * **L3.** else blocks in `wait_for_work` until work arrives, a wake, or
//!   the deadline (or the caller's slice) passes, and goes back to L1.
//!
//! Work finished elsewhere wakes the home thread only when it takes the count
//! to zero: [`count_out`](MainQueue::count_out) calls
//! [`wake`](MainQueue::wake) after a decrement that reached zero. No wake is
//! lost: the wake token stays set until a `wait_for_work` consumes it, so a
//! decrement to zero that lands between L2 and L3 makes L3 return at once
//! (the queue's W1/W2 protocol, `queue.rs`). A decrement that does not reach
//! zero needs no wake: some other work is still in flight, and the one that
//! later reaches zero wakes. Work pushed to the queue wakes L3 by itself. An
//! extra wake costs one more round. So, with no slice, the loop blocks until
//! there is something to do: it never polls on a timer.

use crate::error::Error;
use crate::queue::{MainQueue, WaitOutcome};
use std::time::{Duration, Instant};

/// What the home thread's wait loop ([`MainQueue::wait_until`]) asks of the
/// runtime that runs it.
///
/// A runtime implements it over its own count of work in flight; a binding
/// to an interpreter also detaches from it while blocked ([`block`]), checks
/// for signals after each wake-up ([`before_block`] bounds the sleep so it
/// comes back to check) and reports a wait that takes too long.
///
/// [`block`]: HomeWait::block
/// [`before_block`]: HomeWait::before_block
pub trait HomeWait<T> {
    /// What ends the wait early; the loop's own refusals (off the home
    /// thread, inside a pump) convert into it.
    type Error: From<Error>;

    /// Step L1: one round of main-side work, normally an unbounded
    /// [`pump`](MainQueue::pump) with the runtime's runner.
    ///
    /// # Errors
    ///
    /// Whatever ends the wait: the loop returns it at once.
    fn pump(&mut self, queue: &MainQueue<T>) -> Result<(), Self::Error>;

    /// Step L2: whether the wait is over, normally "nothing is in flight".
    /// Whatever can make it true without pushing main-side work must wake
    /// the home thread ([`MainQueue::count_out`] does).
    ///
    /// # Errors
    ///
    /// Whatever ends the wait.
    fn is_done(&mut self) -> Result<bool, Self::Error>;

    /// Before each block: the longest the block may last (`None`: until
    /// work or a wake), for a caller that must come back periodically (to
    /// check for signals, or to report a long wait). The loop also bounds it
    /// by its deadline. The default blocks until work or a wake.
    ///
    /// # Errors
    ///
    /// Whatever ends the wait.
    fn before_block(&mut self) -> Result<Option<Duration>, Self::Error> {
        Ok(None)
    }

    /// Step L3's sleep: calls `sleep` exactly once and returns what it
    /// returned. The default calls it; a binding to an interpreter lets
    /// other threads run meanwhile (detaches around it).
    fn block(&mut self, sleep: &mut (dyn FnMut() -> WaitOutcome + Send)) -> WaitOutcome {
        sleep()
    }

    /// After each block, whatever woke it (a signal check).
    ///
    /// # Errors
    ///
    /// Whatever ends the wait.
    fn after_block(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// How [`MainQueue::wait_until`] ended, when nothing went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitEnd {
    /// [`HomeWait::is_done`] said so.
    Done,
    /// The deadline passed first.
    TimedOut,
}

impl<T: Send + 'static> MainQueue<T> {
    /// The home thread's wait loop (see the [module docs](self)): runs
    /// main-side work through `hooks` until they say the wait is done, or
    /// `deadline` passes (`None`: no deadline). Blocks without polling
    /// between rounds unless [`HomeWait::before_block`] asks for slices.
    ///
    /// The deadline is checked after each round of work and never
    /// interrupts one; once it has passed the loop returns
    /// [`WaitEnd::TimedOut`] without starting another round, unless the
    /// wait is done.
    ///
    /// ```
    /// use boc_pin::{Budget, HomeWait, MainConfig, MainQueue, Outcome, WaitEnd};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// /// A runtime in miniature: tasks counted in when pushed, out when run.
    /// struct Quiesce<'a>(&'a AtomicUsize);
    ///
    /// impl HomeWait<u32> for Quiesce<'_> {
    ///     type Error = boc_pin::Error;
    ///
    ///     fn pump(&mut self, queue: &MainQueue<u32>) -> Result<(), boc_pin::Error> {
    ///         let runner = |_task: u32| {
    ///             queue.count_out(|| self.0.fetch_sub(1, Ordering::SeqCst) == 1);
    ///             Outcome::Ok
    ///         };
    ///         queue.pump(&runner, Budget::unbounded()).map(drop).map_err(|error| match error {
    ///             boc_pin::PumpError::Refused(error) => error,
    ///             other => unreachable!("{other}"),
    ///         })
    ///     }
    ///
    ///     fn is_done(&mut self) -> Result<bool, boc_pin::Error> {
    ///         Ok(self.0.load(Ordering::SeqCst) == 0)
    ///     }
    /// }
    ///
    /// let queue = Arc::new(MainQueue::new(MainConfig { watchdog: None })?);
    /// let in_flight = Arc::new(AtomicUsize::new(1)); // the producer itself
    /// let producer = {
    ///     let (queue, in_flight) = (Arc::clone(&queue), Arc::clone(&in_flight));
    ///     std::thread::spawn(move || {
    ///         for task in 0..10 {
    ///             in_flight.fetch_add(1, Ordering::SeqCst);
    ///             queue.push(task, None);
    ///         }
    ///         queue.count_out(|| in_flight.fetch_sub(1, Ordering::SeqCst) == 1);
    ///     })
    /// };
    /// assert_eq!(queue.wait_until(&mut Quiesce(&in_flight), None)?, WaitEnd::Done);
    /// producer.join().unwrap();
    /// assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotHomeThread`] off the home thread and [`Error::Reentrant`]
    /// from inside a task run by [`pump`](MainQueue::pump), converted; and
    /// whatever a hook returns.
    pub fn wait_until<H: HomeWait<T>>(&self, hooks: &mut H, deadline: Option<Instant>) -> Result<WaitEnd, H::Error> {
        self.check_home("wait")?;
        self.check_not_pumping("wait")?;
        loop {
            hooks.pump(self)?;
            if hooks.is_done()? {
                return Ok(WaitEnd::Done);
            }
            let remaining = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(remaining) if !remaining.is_zero() => Some(remaining),
                    _ => return Ok(WaitEnd::TimedOut),
                },
            };
            let bound = match (remaining, hooks.before_block()?) {
                (Some(remaining), Some(slice)) => Some(remaining.min(slice)),
                (remaining, slice) => remaining.or(slice),
            };
            let outcome = hooks.block(&mut || self.block_for_work(bound));
            hooks.after_block()?;
            // The deadline passed while blocked: no new round of work, but
            // a wait that ended meanwhile is not a timeout.
            if outcome == WaitOutcome::TimedOut && deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(if hooks.is_done()? { WaitEnd::Done } else { WaitEnd::TimedOut });
            }
        }
    }

    /// Counts one piece of work out with `decrement`, which returns whether
    /// it took the count of work in flight to zero; if it did, wakes the
    /// home thread, which may be blocked in
    /// [`wait_until`](MainQueue::wait_until) (or in `wait_for_work`) for
    /// exactly that. Returns what `decrement` returned. From any thread.
    ///
    /// Every decrement of a count that a home-thread wait reads must go
    /// through here; see the [module docs](self) for why waking on zero
    /// only is enough.
    ///
    /// ```
    /// use boc_pin::{MainConfig, MainQueue, WaitOutcome};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let queue = MainQueue::<u32>::new(MainConfig { watchdog: None })?;
    /// let in_flight = AtomicUsize::new(2);
    /// assert!(!queue.count_out(|| in_flight.fetch_sub(1, Ordering::SeqCst) == 1));
    /// assert!(queue.count_out(|| in_flight.fetch_sub(1, Ordering::SeqCst) == 1));
    /// assert_eq!(queue.wait_for_work(None)?, WaitOutcome::Woken);
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn count_out(&self, decrement: impl FnOnce() -> bool) -> bool {
        let reached_zero = decrement();
        if reached_zero {
            self.wake();
        }
        reached_zero
    }
}
