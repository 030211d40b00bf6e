//! The cown header: the part of a concurrently-owned object the protocol
//! needs, embedded by whatever type holds the value.

use crate::primitive::{AtomicPtr, Ordering, next_key};
use crate::request::Request;
use std::ptr;

/// The protocol state of one cown: the tail of its request queue and its key
/// in the global acquisition order.
///
/// A runtime embeds a `CownHeader` next to the value it protects (for example
/// `Arc<(CownHeader, UnsafeCell<T>)>`) and hands `&CownHeader` to
/// [`schedule`](crate::schedule). The value may be accessed by a behavior only
/// while that behavior runs: the protocol then guarantees exclusive access.
///
/// ```
/// use boc_core::CownHeader;
/// let a = CownHeader::new();
/// let b = CownHeader::new();
/// assert!(a.key() < b.key());
/// assert!(a.is_idle());
/// ```
pub struct CownHeader {
    /// The last request queued on this cown, or null when the cown is idle.
    ///
    /// Written by schedulers in phase 1 (`swap`, AcqRel: the acquire half
    /// pairs with the Release CAS of the releaser that set it to null, so the
    /// new owner sees every write the last body made; the release half
    /// publishes the new request's fields to the next swapper) and by the
    /// releasing owner (`compare_exchange` to null, Release). Read by
    /// [`is_idle`](Self::is_idle) (Acquire).
    pub(crate) last: AtomicPtr<Request>,
    /// Position in the global acquisition order. Immutable.
    key: u64,
}

impl CownHeader {
    /// Creates an idle cown header with a fresh key, greater than every key
    /// handed out before.
    pub fn new() -> Self {
        Self { last: AtomicPtr::new(ptr::null_mut()), key: next_key() }
    }

    /// This cown's key in the global acquisition order.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// True when no behavior holds or waits for this cown (a snapshot: it
    /// may change the moment it is read unless the caller prevents new
    /// schedules).
    pub fn is_idle(&self) -> bool {
        self.last.load(Ordering::Acquire).is_null()
    }
}

impl Default for CownHeader {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CownHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CownHeader").field("key", &self.key).field("idle", &self.is_idle()).finish()
    }
}

impl Drop for CownHeader {
    fn drop(&mut self) {
        debug_assert!(
            // Relaxed: `&mut self` means no other thread can touch it.
            self.last.load(Ordering::Relaxed).is_null(),
            "a cown was dropped while a behavior still held or waited for it"
        );
    }
}
