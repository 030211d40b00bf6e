//! Keeping alive the owner of a [`Terminator`] while work is counted in on
//! it, without a reference per unit of work.
//!
//! A runtime's dispatcher (the `Arc`-owned value that holds the terminator
//! and the pool) must outlive every behavior counted in on it. An `Arc`
//! clone per behavior does that, at the price of two more read-modify-writes
//! on a contended line per behavior. These rules make the count itself the
//! reference:
//!
//! 1. *Open, owned.* While the terminator is open, the owner's owner (a
//!    runtime, an engine's current slot) holds an `Arc` of it, and gives
//!    it up only after closing it.
//! 2. *Closing keeps it.* [`KeepAlive::close`] stores a clone of the
//!    owner's `Arc` in the [`KeepAlive`] (a cycle, on purpose) before it
//!    sets the terminator's closed flag, then takes it back if it sees the
//!    count at zero. Once closed, the count only goes down.
//! 3. *The last count-out lets go.* A count-out
//!    ([`KeepAlive::count_out_or_hold`]) that leaves others in flight is a
//!    single compare-and-swap, its last touch of the owner, which may be
//!    freed the moment it is done. One that may be the last holds an `Arc`
//!    first (the owner is alive: its unit is still counted), then does the
//!    decrement; if that reached zero, [`KeepAlive::release`] gives it the
//!    clone of rule 2 (taken under the slot's lock, so the closer and the
//!    count-out cannot both miss it, and whichever comes second finds
//!    nothing), which it drops after its last touch, with its own `Arc`.
//!
//! A refused `try_increment` undoes its `+1` with a plain decrement that
//! may be the one to reach zero: its caller, which holds an `Arc` of the
//! owner to count in at all, does what the last count-out would
//! ([`KeepAlive::release`]) when it then sees zero.
//!
//! The loom models in `loom_tests.rs` run these functions, with the real
//! terminator, against a close and a drop of the owner's `Arc`.

use crate::Terminator;
use crate::primitive::{Arc, Mutex, Unpoisoned};

/// The owner's own `Arc` while its terminator is closed with work in
/// flight (see the [module docs](self)).
pub struct KeepAlive<T> {
    /// Written under its lock by [`KeepAlive::close`] (store, then perhaps
    /// take back) and by [`KeepAlive::release`] (take).
    slot: Mutex<Option<Arc<T>>>,
}

impl<T> KeepAlive<T> {
    /// An empty keep-alive, for an open terminator.
    pub fn new() -> Self {
        Self { slot: Mutex::new(None) }
    }

    /// Closes `terminator` (no more `try_increment`s), keeping `owner`
    /// (whose `Arc` owns both `self` and `terminator`) alive until the last
    /// unit in flight is counted out. Idempotent.
    pub fn close(&self, terminator: &Terminator, owner: &Arc<T>) {
        let mut slot = self.slot.lock().unpoisoned();
        if terminator.is_closed() {
            return;
        }
        // Before the flag: a count-out that sees the flag finds the clone.
        *slot = Some(Arc::clone(owner));
        terminator.close();
        // Nothing in flight: no count-out will take it.
        let taken = if terminator.count() == 0 { slot.take() } else { None };
        drop(slot);
        // Not the last `Arc`: `owner` is another.
        drop(taken);
    }

    /// After the count of `terminator` was seen at zero by a caller that
    /// holds the owner: if it is closed, the owner's own `Arc` (rule 2),
    /// which the caller drops after its last touch of the owner; else
    /// `None`.
    pub fn release(&self, terminator: &Terminator) -> Option<Arc<T>> {
        if terminator.is_closed() { self.slot.lock().unpoisoned().take() } else { None }
    }

    /// Counts out one unit of the terminator at `terminator`, inside the
    /// owner at `owner`, unless it may be the last: then counts nothing
    /// out and returns the owner, held, for the caller to count the unit
    /// out with [`Terminator::decrement`] and, if that reached zero, to let
    /// go with [`release`](Self::release). `None`: counted out, others are
    /// in flight, and the caller must not touch the owner again.
    ///
    /// # Safety
    ///
    /// `owner` is the pointer of an `Arc<T>` (`Arc::as_ptr`) that follows
    /// the module's rules, `terminator` points into it, and the caller
    /// holds a unit counted in on `terminator` that this call (or, on
    /// `Some`, the caller) counts out.
    pub unsafe fn count_out_or_hold(owner: *const T, terminator: *const Terminator) -> Option<Arc<T>> {
        // SAFETY: alive until the decrement (the caller's unit); only the
        // count is borrowed, for its compare-and-swap.
        if unsafe { Terminator::decrement_unless_last(terminator) } {
            return None;
        }
        // SAFETY: alive (the unit is still counted) and owned by `Arc`s
        // (rules 1 and 2), so its strong count is at least one; the count
        // taken here is the returned `Arc`'s.
        unsafe {
            Arc::increment_strong_count(owner);
            Some(Arc::from_raw(owner))
        }
    }
}

impl<T> Default for KeepAlive<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for KeepAlive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepAlive").finish_non_exhaustive()
    }
}
