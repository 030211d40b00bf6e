//! `PinnedCown<T>`: a cown whose value lives on, and is only ever touched
//! from, its runtime's home thread.

use crate::Error;
use crate::cown::Hold;
use crate::runtime::{FacadeEngine, Handle};
use crate::set::HomeId;
use crate::unwind;
use boc_core::{CownHeader, Payload};
use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Weak};
use std::thread::ThreadId;

/// A value that may only be touched, including dropped, on one thread.
///
/// Dropped anywhere else it is leaked rather than dropped; the owners below
/// arrange for that never to happen while the runtime lives.
struct HomeOnly<T> {
    value: ManuallyDrop<T>,
    home: ThreadId,
}

// SAFETY: the value is only created, accessed and dropped on `home` (the
// pinned cown's accessors are reached only from main-side behaviors, which
// the runtime runs on the home thread; `Drop` checks the thread); moving
// the bytes between threads without touching them is all that is shared.
unsafe impl<T> Send for HomeOnly<T> {}
// SAFETY: as above; no `&T` is handed out off the home thread.
unsafe impl<T> Sync for HomeOnly<T> {}

impl<T> Drop for HomeOnly<T> {
    fn drop(&mut self) {
        if std::thread::current().id() == self.home {
            // SAFETY: dropped once, here, on the home thread.
            unsafe { ManuallyDrop::drop(&mut self.value) };
        }
        // Elsewhere: leaked; dropping would touch the value off its thread.
    }
}

struct PinnedInner<T: 'static> {
    header: CownHeader,
    /// Reached only through raw pointers (no reference to the whole cell is
    /// ever made, so a body's `&mut T` is the only reference while it runs);
    /// taken out once, by `Drop`.
    value: UnsafeCell<ManuallyDrop<T>>,
    home_thread: ThreadId,
    /// Where a last handle dropped off the home thread sends the value to
    /// be dropped at home.
    runtime: Weak<FacadeEngine>,
    home: HomeId,
}

// SAFETY: the value is reached only by main-side behaviors (run on the home
// thread, one at a time by the protocol) and by `Drop` (which drops it at
// home or sends it there); the rest is `Sync`.
unsafe impl<T: 'static> Sync for PinnedInner<T> {}
// SAFETY: as above.
unsafe impl<T: 'static> Send for PinnedInner<T> {}

impl<T: 'static> Drop for PinnedInner<T> {
    fn drop(&mut self) {
        // SAFETY: the last handle is gone; the value is taken exactly once.
        let value = unsafe { ManuallyDrop::take(self.value.get_mut()) };
        let value = HomeOnly { value: ManuallyDrop::new(value), home: self.home_thread };
        if std::thread::current().id() == self.home_thread {
            return; // `value` drops here, at home.
        }
        // Off the home thread: a main-side behavior with no cowns drops it
        // there, counted and signalled (`Engine::send_home`). If the runtime
        // is gone or shut down, `HomeOnly` leaks it instead (the refused
        // payload drops here, off home).
        if let Some(engine) = self.runtime.upgrade() {
            let _ = engine.send_home(DropAtHome(Some(value)));
        }
    }
}

/// A main-side behavior that drops a pinned value on the home thread.
struct DropAtHome<T>(Option<HomeOnly<T>>);

impl<T> Drop for DropAtHome<T> {
    /// Unrun (dropped with the main queue's leftovers): on the home thread
    /// the value's `Drop` runs here, and is caught like in `run`.
    fn drop(&mut self) {
        unwind::drop_reporting("the drop of a pinned cown's value", self.0.take());
    }
}

impl<T: 'static> Payload for DropAtHome<T> {
    fn run(&mut self) {
        // User code inside a pump: a panicking `Drop` is caught and reported.
        unwind::drop_reporting("the drop of a pinned cown's value", self.0.take());
    }

    fn label(&self) -> Option<Arc<str>> {
        Some("drop of a pinned cown's value".into())
    }
}

/// A cown pinned to its runtime's home thread: for resources that must
/// stay on one thread (GUI toolkits, GL contexts, event loops, thread-affine
/// C libraries), inside the same concurrency model as ordinary data.
///
/// Its value is created on the home thread and only ever touched there:
/// every behavior whose request set holds a pinned cown runs on the home
/// thread, when it [pumps](Handle::pump) or [quiesces](Handle::quiesce).
/// Such a request set may mix pinned and ordinary cowns freely. The value
/// need not be `Send`; the handle is, so workers can schedule on it.
///
/// ```
/// use boc::{Cown, PinnedCown, Runtime};
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// # fn main() -> Result<(), boc::Error> {
/// let rt = Runtime::builder().workers(2).build()?;
/// // Not `Send`: could never live in an ordinary cown.
/// let screen = PinnedCown::new(&rt, Rc::new(RefCell::new(Vec::new())))?;
/// let total = Cown::new(0_u64);
/// for frame in 0..3 {
///     // Worker side: compute.
///     rt.when(&total, move |total| *total += frame);
///     // Home side: draw, with the ordinary cown used directly.
///     rt.when((&screen, &total), |(screen, total)| screen.borrow_mut().push(*total));
/// }
/// rt.quiesce()?; // on the home thread, this runs the drawing behaviors
/// let lines = rt.when(&screen, |screen| screen.borrow().clone());
/// rt.quiesce()?;
/// assert_eq!(lines.take()?, [0, 1, 3]);
/// # Ok(()) }
/// ```
pub struct PinnedCown<T: 'static> {
    inner: Arc<PinnedInner<T>>,
}

impl<T: 'static> PinnedCown<T> {
    /// Creates a pinned cown of `handle`'s runtime holding `value`.
    ///
    /// # Errors
    ///
    /// [`Error::NotHomeThread`] off the runtime's home thread (the value is
    /// then dropped here, where it was made).
    pub fn new(handle: &Handle, value: T) -> Result<Self, Error> {
        if !handle.is_home_thread() {
            return Err(Error::NotHomeThread);
        }
        Ok(Self {
            inner: Arc::new(PinnedInner {
                header: CownHeader::new(),
                value: UnsafeCell::new(ManuallyDrop::new(value)),
                home_thread: std::thread::current().id(),
                runtime: Arc::downgrade(&handle.engine),
                home: HomeId(handle.engine.id()),
            }),
        })
    }
}

impl<T: 'static> PinnedCown<T> {
    pub(crate) fn header(&self) -> &CownHeader {
        &self.inner.header
    }

    pub(crate) fn home(&self) -> HomeId {
        self.inner.home
    }

    /// A pointer to the value.
    ///
    /// Dereferencing it is sound only inside a behavior that holds this
    /// cown, which runs on the home thread, and only for the body's
    /// duration.
    pub(crate) fn value_ptr(&self) -> *mut T {
        // `ManuallyDrop<T>` is `repr(transparent)`; no reference is made.
        self.inner.value.get().cast::<T>()
    }

    /// Runs `f` on the value now, on the home thread, from outside any
    /// behavior, if the cown is idle; behaviors scheduled on it meanwhile
    /// wait until `f` returns. It never blocks itself.
    ///
    /// ```
    /// # fn main() -> Result<(), boc::Error> {
    /// let rt = boc::Runtime::builder().workers(1).build()?;
    /// let label = boc::PinnedCown::new(&rt, std::rc::Rc::new(String::from("idle")))?;
    /// assert_eq!(label.try_with(|label| label.len())?, 4);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotHomeThread`] off the home thread (the value never leaves
    /// it); [`Error::Busy`] if a behavior holds or waits for the cown. As
    /// with [`Cown::try_with`](crate::Cown::try_with), `f` must not wait for
    /// behaviors: `quiesce` inside it is [`Error::WaitWhileHolding`].
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, Error> {
        if std::thread::current().id() != self.inner.home_thread {
            return Err(Error::NotHomeThread);
        }
        let _held = Hold::try_new(&self.inner.header)?;
        // SAFETY: on the home thread, and the hold makes this the only
        // access until it drops (see `Cown::try_with`).
        Ok(f(unsafe { &mut *self.value_ptr() }))
    }

    /// The cown's place in the global acquisition order.
    pub fn key(&self) -> u64 {
        self.inner.header.key()
    }

    /// True when no behavior holds or waits for the cown (a snapshot).
    pub fn is_idle(&self) -> bool {
        self.inner.header.is_idle()
    }
}

impl<T: 'static> Clone for PinnedCown<T> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<T: 'static> std::fmt::Debug for PinnedCown<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedCown").field("key", &self.key()).field("idle", &self.is_idle()).finish_non_exhaustive()
    }
}

impl<T: 'static> PartialEq for PinnedCown<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T: 'static> Eq for PinnedCown<T> {}

impl<T: 'static> std::hash::Hash for PinnedCown<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}
