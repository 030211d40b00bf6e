//! The cown header: the part of a concurrently-owned object the protocol
//! needs, embedded by whatever type holds the value.

use crate::primitive::{AtomicPtr, Ordering, next_key};
use crate::request::Request;
use std::ptr::{self, NonNull};

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

impl CownHeader {
    /// Holds the cown now if it is idle (no behavior holds or waits for
    /// it), for access from outside any behavior; `None` if it is not.
    ///
    /// While the returned [`Held`] lives, behaviors scheduled on the cown
    /// queue behind it, exactly as behind a behavior; dropping it releases
    /// the cown to them. It never waits.
    ///
    /// ```
    /// use boc_core::CownHeader;
    /// let cown = CownHeader::new();
    /// let held = cown.try_acquire().expect("a new cown is idle");
    /// assert!(cown.try_acquire().is_none(), "held until dropped");
    /// drop(held);
    /// assert!(cown.is_idle());
    /// ```
    pub fn try_acquire(&self) -> Option<Held<'_>> {
        // Never dereferenced: a hold has no predecessor (it is taken only
        // on an idle cown), so nobody resolves it.
        let no_behavior = NonNull::dangling();
        let request = Request::new(self, no_behavior);
        // Phase 1 is already complete for a one-request "behavior" that
        // takes the cown only when free: a successor may link at once.
        request.scheduled.store(true, Ordering::Relaxed);
        // A raw pointer from the start: the queue holds this address, and a
        // `Box` moved around with the `Held` would reassert uniqueness over
        // memory that successors write through it.
        let own = Box::into_raw(Box::new(request));
        // AcqRel: Acquire pairs with the Release CAS of the last releaser
        // (its body's writes happen before our access); Release publishes
        // the request's fields to the next swapper.
        match self.last.compare_exchange(ptr::null_mut(), own, Ordering::AcqRel, Ordering::Relaxed) {
            // SAFETY: `own` is from `Box::into_raw`, so non-null.
            Ok(_) => Some(Held { request: unsafe { NonNull::new_unchecked(own) }, _cown: std::marker::PhantomData }),
            Err(_) => {
                // SAFETY: never published; we still own it.
                drop(unsafe { Box::from_raw(own) });
                None
            }
        }
    }
}

/// A cown held from outside any behavior; see [`CownHeader::try_acquire`].
/// Dropping it hands the cown to the behavior queued behind it, if any.
pub struct Held<'a> {
    /// From `Box::into_raw`: its address is in the cown's queue until the
    /// drop, which frees it.
    request: NonNull<Request>,
    _cown: std::marker::PhantomData<&'a CownHeader>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SAFETY: the hold is the head of the cown's queue and is released
        // once, here; a successor's behavior waits for this resolve. After
        // `hand_over` no other thread refers to the request, so it is freed.
        unsafe {
            if let Some(successor) = crate::behavior::hand_over(self.request.as_ref()) {
                crate::behavior::resolve(successor, 1);
            }
            drop(Box::from_raw(self.request.as_ptr()));
        }
    }
}

// SAFETY: the request is only touched through atomics and freed by the
// owner of the `Held`; the cown it borrows is `Sync`.
unsafe impl Send for Held<'_> {}

impl std::fmt::Debug for Held<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").finish_non_exhaustive()
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
