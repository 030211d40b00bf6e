//! One behavior's claim on one cown: a node in that cown's MCS-style queue.

use crate::behavior::Header;
use crate::cown::CownHeader;
use crate::primitive::{AtomicBool, AtomicPtr};
use std::ptr::{self, NonNull};

/// A node in a cown's request queue. Requests live inline in their
/// behavior's allocation and are freed with it, after the release.
pub(crate) struct Request {
    /// The successor in this cown's queue, or null while there is none.
    ///
    /// Written once, by the successor's scheduler in phase 1 after it swapped
    /// itself into the cown's tail (Release: publishes the successor's
    /// `behavior` field). Read by this request's owner at release (Acquire,
    /// pairs with that store) while it spins waiting for a late link.
    pub(crate) next: AtomicPtr<Request>,
    /// Set when the owner behavior has finished phase 1 on every cown.
    ///
    /// Written once, by the owner's scheduler in phase 2 (Release). Read by
    /// a successor's scheduler in phase 1, which spins until it is set before
    /// linking and moving on (Acquire, pairs with that store). This wait is
    /// what keeps two behaviors from overtaking each other on a later cown.
    pub(crate) scheduled: AtomicBool,
    /// The cown this request queues on. The scheduler's contract keeps the
    /// cown alive until the behavior has been released.
    pub(crate) cown: NonNull<CownHeader>,
    /// The behavior this request belongs to. Immutable after construction.
    pub(crate) behavior: NonNull<Header>,
}

impl Request {
    pub(crate) fn new(cown: &CownHeader, behavior: NonNull<Header>) -> Self {
        Self {
            next: AtomicPtr::new(ptr::null_mut()),
            scheduled: AtomicBool::new(false),
            cown: NonNull::from(cown),
            behavior,
        }
    }

    /// The cown's position in the acquisition order.
    pub(crate) fn key(&self) -> u64 {
        // SAFETY: the scheduler's contract keeps the cown alive until the
        // behavior is released, and requests die with the behavior.
        unsafe { self.cown.as_ref() }.key()
    }
}
