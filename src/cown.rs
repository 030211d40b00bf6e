//! `Cown<T>`: a concurrently-owned value, reachable only from behaviors.

use crate::Error;
use boc_core::{CownHeader, Held};
use std::cell::{Cell, UnsafeCell};
use std::sync::Arc;

thread_local! {
    /// Cowns this thread holds from outside any behavior (`try_with`
    /// closures running, nested ones included). Only this thread touches it.
    static N_HOLDS: Cell<usize> = const { Cell::new(0) };
}

/// A cown held by `try_with` on this thread, counted so that a wait on this
/// thread, which could need the cown, is refused ([`holds_a_cown`]).
pub(crate) struct Hold<'a> {
    _held: Held<'a>,
}

impl<'a> Hold<'a> {
    /// Holds the cown now if it is idle, for a `try_with` closure.
    pub(crate) fn try_new(header: &'a CownHeader) -> Result<Self, Error> {
        let held = header.try_acquire().ok_or(Error::Busy)?;
        N_HOLDS.with(|n_holds| n_holds.set(n_holds.get() + 1));
        Ok(Self { _held: held })
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        // Also on unwind out of the closure; `_held` releases after this.
        N_HOLDS.with(|n_holds| n_holds.set(n_holds.get() - 1));
    }
}

/// True while the calling thread is inside a `try_with` closure: behaviors
/// queued behind the cown it holds cannot run until the closure returns, so
/// waiting for them here would never end.
pub(crate) fn holds_a_cown() -> bool {
    N_HOLDS.try_with(|n_holds| n_holds.get() > 0).unwrap_or(false)
}

pub(crate) struct CownInner<T> {
    header: CownHeader,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached by a behavior that holds the cown, and
// the protocol makes holders exclusive and orders them by happens-before; so
// sharing the handle across threads only ever moves `T` between threads
// (hence `T: Send`), never shares it.
unsafe impl<T: Send> Sync for CownInner<T> {}

/// A concurrently-owned value: a piece of shared state that behaviors
/// scheduled with [`Handle::when`](crate::Handle::when) access one at a
/// time, in the order they were scheduled.
///
/// A `Cown` is a cheap handle (an `Arc`): clone it to name the same cown
/// from several places. Its value is reachable only from the body of a
/// behavior whose request set holds it, or after every other handle is gone
/// through [`try_into_inner`](Self::try_into_inner).
///
/// Cowns are ordered (by creation), compared and hashed by identity.
///
/// ```
/// # fn main() -> Result<(), boc::Error> {
/// let rt = boc::Runtime::builder().workers(2).build()?;
/// let counter = boc::Cown::new(0_u32);
/// for _ in 0..100 {
///     rt.when(&counter, |n| *n += 1);
/// }
/// rt.quiesce()?;
/// assert_eq!(counter.try_into_inner().ok(), Some(100));
/// # Ok(()) }
/// ```
pub struct Cown<T> {
    inner: Arc<CownInner<T>>,
}

impl<T: Send + 'static> Cown<T> {
    /// Creates a cown holding `value`.
    pub fn new(value: T) -> Self {
        Self { inner: Arc::new(CownInner { header: CownHeader::new(), value: UnsafeCell::new(value) }) }
    }

    /// Returns the value if this is the last handle to the cown (no other
    /// clone and no scheduled behavior still holds it), or the handle back.
    ///
    /// # Errors
    ///
    /// The handle itself, when other handles or pending behaviors exist.
    pub fn try_into_inner(self) -> Result<T, Self> {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => Ok(inner.value.into_inner()),
            Err(inner) => Err(Self { inner }),
        }
    }
}

impl<T> Cown<T> {
    /// Runs `f` on the value now, from outside any behavior, if the cown is
    /// idle (no behavior holds or waits for it). Behaviors scheduled on the
    /// cown meanwhile wait until `f` returns. It never blocks itself.
    ///
    /// ```
    /// # fn main() -> Result<(), boc::Error> {
    /// let rt = boc::Runtime::builder().workers(2).build()?;
    /// let total = boc::Cown::new(0_u64);
    /// for n in 1..=10 {
    ///     rt.when(&total, move |total| *total += n);
    /// }
    /// rt.quiesce()?;
    /// assert_eq!(total.try_with(|total| *total)?, 55);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] if a behavior holds or waits for the cown (including
    /// when called from inside a behavior that holds it).
    ///
    /// Inside `f` the thread holds the cown, so it must not wait for
    /// behaviors: [`quiesce`](crate::Handle::quiesce) there is refused with
    /// [`Error::WaitWhileHolding`] (a behavior scheduled on the cown could
    /// only run after `f` returns), and a [`Runtime`](crate::Runtime)
    /// dropped there does not wait either (see its docs).
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, Error> {
        let _held = Hold::try_new(&self.inner.header)?;
        // SAFETY: the hold makes this the only access until it drops, after
        // `f` returns; its acquisition orders every earlier body's writes
        // before ours, and its release orders ours before later bodies.
        Ok(f(unsafe { &mut *self.value_ptr() }))
    }

    pub(crate) fn header(&self) -> &CownHeader {
        &self.inner.header
    }

    /// A pointer to the value.
    ///
    /// Dereferencing it is sound only inside a behavior that holds this
    /// cown (the protocol's exclusion), and only for the body's duration.
    pub(crate) fn value_ptr(&self) -> *mut T {
        self.inner.value.get()
    }

    /// The cown's place in the global acquisition order (its creation
    /// order). Unique among live cowns.
    pub fn key(&self) -> u64 {
        self.inner.header.key()
    }

    /// True when no behavior holds or waits for the cown. A snapshot: other
    /// threads may schedule on it the moment after.
    pub fn is_idle(&self) -> bool {
        self.inner.header.is_idle()
    }
}

impl<T> Clone for Cown<T> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<T> std::fmt::Debug for Cown<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cown").field("key", &self.key()).field("idle", &self.is_idle()).finish_non_exhaustive()
    }
}

impl<T> PartialEq for Cown<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Eq for Cown<T> {}

impl<T> PartialOrd for Cown<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Cown<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl<T> std::hash::Hash for Cown<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}
