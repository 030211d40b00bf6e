//! The terminator: a count of scheduled-but-unfinished behaviors, and a
//! blocking wait for it to reach zero (what `quiesce` is built on).
//!
//! # Protocol
//!
//! The count is one atomic, so `increment` and `decrement` are a single
//! read-modify-write each and never touch the lock while nobody waits.
//! Waiters register in `n_waiters` and sleep on a condition variable; the
//! decrement that reaches zero wakes them only if it sees a waiter:
//!
//! * **W1.** A waiter locks `zero_epoch`, reads the epoch,
//!   `n_waiters += 1` (SeqCst), then loads the count (SeqCst). Zero: done.
//!   Otherwise it waits on the condition variable (releasing the lock) until
//!   the epoch changes or the count is zero.
//! * **D1.** A decrement does `count -= 1` (SeqCst). If that reached zero it
//!   loads `n_waiters` (SeqCst); if nonzero it locks `zero_epoch`, bumps it
//!   and notifies every waiter.
//!
//! All four operations are SeqCst, so they are totally ordered. If D1's load
//! of `n_waiters` precedes W1's increment, then D1's decrement precedes W1's
//! load of the count, which therefore reads zero (or a later increment: the
//! count went back up, and the waiter was concurrent with that zero anyway).
//! Otherwise D1 sees the waiter and needs the lock, which W1 holds from before
//! its registration until it is waiting, so the epoch bump comes after the
//! waiter read the epoch, and the notification after it started waiting.
//! The epoch also catches a zero that the count has already left again
//! by the time the woken waiter looks.
//! [`Terminator::decrement_unless_last`] is a decrement that never reaches
//! zero (it refuses to), so it has no D1 part: it never needs to wake
//! anyone.
//!
//! # Closing
//!
//! The top bit of the count word is a *closed* flag, so that a runtime
//! shutting down can refuse new work without a lock: [`Terminator::close`]
//! sets it (`fetch_or`), [`Terminator::try_increment`] adds one and looks
//! at the flag in the value it replaced. Both are read-modify-writes of the
//! same word, so each `try_increment` is ordered before the close (counted,
//! and waited for by a `wait_idle` after the close) or after it (refused,
//! and its `+1` undone through the ordinary decrement path, which wakes
//! any waiter that saw it).

use crate::primitive::Unpoisoned;
use crate::primitive::{AtomicUsize, Condvar, Mutex, Ordering};
use std::time::{Duration, Instant};

/// The closed flag: the top bit of the count word.
const CLOSED: usize = 1 << (usize::BITS - 1);
/// The count: every other bit.
const COUNT_MASK: usize = !CLOSED;

/// Counts scheduled-but-unfinished work; [`Terminator::wait_idle`] blocks
/// (no polling, no sleep loop) until the count is zero.
///
/// Contract: [`increment`](Terminator::increment) before a behavior is
/// scheduled, [`decrement`](Terminator::decrement) after it has run and
/// released its cowns. A behavior that schedules another increments for
/// the child before its own decrement, so the count cannot touch zero while
/// work is still reachable.
///
/// ```
/// use boc_sched::Terminator;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let in_flight = Arc::new(Terminator::new());
/// in_flight.increment();
/// assert!(!in_flight.wait_idle(Some(Duration::from_millis(10))));
///
/// let worker = {
///     let in_flight = Arc::clone(&in_flight);
///     std::thread::spawn(move || in_flight.decrement())
/// };
/// assert!(in_flight.wait_idle(None));
/// assert_eq!(in_flight.count(), 0);
/// worker.join().unwrap();
/// ```
///
/// A runtime shutting down closes the terminator first, so that no new work
/// slips in while it waits for the count to reach zero:
///
/// ```
/// use boc_sched::Terminator;
///
/// let in_flight = Terminator::new();
/// assert!(in_flight.try_increment());
/// in_flight.close();
/// assert!(!in_flight.try_increment());
/// in_flight.decrement();
/// assert!(in_flight.wait_idle(None));
/// ```
#[repr(C)] // `count` first: an embedding type may put it beside its own hot fields.
pub struct Terminator {
    /// Scheduled-but-unfinished work in the low bits, and the [`CLOSED`]
    /// flag in the top bit.
    ///
    /// Incremented by schedulers, decremented by workers, read by waiters
    /// and [`Terminator::count`]. SeqCst: the reaching-zero decrement (D1)
    /// and a waiter's registration (W1) must be totally ordered (module
    /// doc); the decrement's release half also publishes the finished
    /// work to a waiter that loads zero.
    count: AtomicUsize,
    /// Threads inside `wait_idle`'s slow path.
    ///
    /// Incremented and decremented by waiters under `zero_epoch`'s lock,
    /// read by the reaching-zero decrement (D1). SeqCst, pairing with
    /// `count` as above.
    n_waiters: AtomicUsize,
    /// Bumped, under its own lock, by each reaching-zero decrement that saw
    /// a waiter.
    zero_epoch: Mutex<u64>,
    /// Signalled after each bump of `zero_epoch`.
    reached_zero: Condvar,
}

impl Terminator {
    /// A terminator with count zero.
    pub fn new() -> Self {
        Self {
            count: AtomicUsize::new(0),
            n_waiters: AtomicUsize::new(0),
            zero_epoch: Mutex::new(0),
            reached_zero: Condvar::new(),
        }
    }

    /// Counts one more unit of work; call before it is scheduled. Counts
    /// even after [`close`](Terminator::close) (a behavior already in flight
    /// may still schedule a child; use
    /// [`try_increment`](Terminator::try_increment) for new work from
    /// outside).
    #[inline]
    pub fn increment(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts one more unit of work unless the terminator is closed.
    /// Returns whether it counted; on false, do not schedule the work.
    #[inline]
    pub fn try_increment(&self) -> bool {
        let previous = self.count.fetch_add(1, Ordering::SeqCst);
        if previous & CLOSED == 0 {
            return true;
        }
        self.decrement();
        false
    }

    /// Refuses further [`try_increment`](Terminator::try_increment)s.
    /// Idempotent; there is no reopening. Does not wake or release waiters:
    /// the count still has to reach zero.
    pub fn close(&self) {
        self.count.fetch_or(CLOSED, Ordering::SeqCst);
    }

    /// Closes the terminator only if the count is zero, in one step, and
    /// returns whether it did. Unlike [`close`](Terminator::close) after a
    /// [`wait_idle`](Terminator::wait_idle), no work can slip in between:
    /// for a runtime that stops its workers once idle and lets new work
    /// start a fresh one.
    pub fn try_close_idle(&self) -> bool {
        self.count.compare_exchange(0, CLOSED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// True once [`close`](Terminator::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.count.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Counts one unit of work as finished; call after it has run and
    /// released. The decrement that reaches zero wakes the waiters and
    /// returns true (so a caller can wake waiters of its own, such as a
    /// home thread blocked waiting for main-side work or quiescence).
    ///
    /// # Panics
    ///
    /// If the count is already zero (more decrements than increments: a bug
    /// in the caller).
    #[inline]
    pub fn decrement(&self) -> bool {
        let previous = self.count.fetch_sub(1, Ordering::SeqCst) & COUNT_MASK;
        assert!(previous != 0, "Terminator::decrement called more often than increment");
        if previous == 1 && self.n_waiters.load(Ordering::SeqCst) != 0 {
            self.wake_waiters();
        }
        previous == 1
    }

    /// [`decrement`](Terminator::decrement), unless it would take the count
    /// to zero: then it changes nothing and returns false. True if it
    /// counted one unit out (the count is still above zero).
    ///
    /// For a caller whose count keeps the memory of this terminator alive:
    /// once a decrement that leaves others in flight has happened, another
    /// thread may finish the rest and free it, so such a decrement must be
    /// the caller's last touch. This one is (a compare-and-swap, nothing
    /// after it), and it never wakes anyone (it never reaches zero); the
    /// caller does the decrement that may reach zero with
    /// [`decrement`](Terminator::decrement), having first made sure the
    /// memory outlives it.
    ///
    /// # Panics
    ///
    /// If the count is zero, as [`decrement`](Terminator::decrement).
    ///
    /// # Safety
    ///
    /// `this` points to a live terminator. It is a pointer, not a
    /// reference, because the caller's memory may be freed by another
    /// thread the moment the decrement is done, while a reference argument
    /// would promise that it stays allocated for the whole call: only the
    /// count itself is borrowed here, for its compare-and-swap (as `Arc`'s
    /// drop borrows only its strong count for its `fetch_sub`).
    #[inline]
    pub unsafe fn decrement_unless_last(this: *const Self) -> bool {
        // SAFETY: live, by the caller's contract; the borrow is of the
        // count alone, all of it inside an `UnsafeCell`.
        let count = unsafe { &(*this).count };
        // A guess rather than a load: if the count is 2 the swap below is
        // right, and if not, its failure returns the count with the cache
        // line already held for writing, where a load would fetch the line
        // shared and the swap then fetch it again (the line moves between
        // the schedulers counting in and the workers counting out).
        let mut current = 2;
        loop {
            // SeqCst, as `decrement`; a read-modify-write, so a later
            // decrement to zero still publishes this one's work to a waiter
            // (release sequence).
            match count.compare_exchange(current, current - 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
            let n_in_flight = current & COUNT_MASK;
            assert!(n_in_flight != 0, "Terminator::decrement_unless_last called more often than increment");
            if n_in_flight == 1 {
                return false;
            }
        }
    }

    #[cold]
    fn wake_waiters(&self) {
        let mut epoch = self.zero_epoch.lock().unpoisoned();
        *epoch = epoch.wrapping_add(1);
        drop(epoch);
        self.reached_zero.notify_all();
    }

    /// The current count (stale as soon as it is read).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst) & COUNT_MASK
    }

    /// Waits until the count is zero; `None` waits forever.
    ///
    /// Returns true once the count is seen at zero (it may have gone up
    /// again by the time the caller looks, if others keep scheduling), false
    /// if `timeout` elapsed first. A timeout too large to represent as an
    /// instant waits forever.
    pub fn wait_idle(&self, timeout: Option<Duration>) -> bool {
        if self.count() == 0 {
            return true;
        }
        // `None`: forever, also when `timeout` overflows an `Instant`.
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut epoch = self.zero_epoch.lock().unpoisoned();
        let start_epoch = *epoch;
        self.n_waiters.fetch_add(1, Ordering::SeqCst); // W1
        let reached = loop {
            if self.count() == 0 || *epoch != start_epoch {
                break true;
            }
            match deadline {
                None => {
                    epoch = self.reached_zero.wait(epoch).unpoisoned();
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    epoch = self.reached_zero.wait_timeout(epoch, deadline - now).unpoisoned().0;
                }
            }
        };
        self.n_waiters.fetch_sub(1, Ordering::SeqCst);
        reached
    }
}

impl Default for Terminator {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Terminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminator").field("count", &self.count()).finish_non_exhaustive()
    }
}
