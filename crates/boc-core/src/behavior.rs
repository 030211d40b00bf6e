//! Behaviors: one allocation holding the header, the payload and the
//! requests inline; the two-phase-locking schedule and the release.
//!
//! The protocol itself, step by step with its memory-ordering argument, is in
//! `PROTOCOL.md` beside this crate's sources.

use crate::cown::CownHeader;
use crate::primitive::{AtomicUsize, Backoff, Ordering};
use crate::request::Request;
use std::alloc::Layout;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// What a behavior carries: its body and whatever the body needs.
///
/// The payload lives inside the behavior's single allocation. It is dropped
/// after the behavior has been released, so a payload that owns handles to
/// the cowns of its request set keeps them alive for as long as the protocol
/// needs them (this is the usual way to meet [`schedule`]'s contract).
pub trait Payload: Send + 'static {
    /// Runs the body. Called at most once, by [`Ready::run`], while the
    /// behavior holds every cown of its request set exclusively. A panic
    /// unwinds through [`Ready::run`]; the cowns are still released.
    fn run(&mut self);

    /// Called once the behavior has released its cowns (whether or not it
    /// ran), before its [`Watch`] (if any) sees it done. A payload that owns
    /// its cowns can drop them here, so a long-lived `Watch` does not keep
    /// them alive. Default: nothing.
    ///
    /// Should not unwind: it runs inside the release, and a panic here (a
    /// dropped value's `Drop`, say) leaves the behavior never done for its
    /// [`Watch`] and its allocation unfreed. A payload that
    /// drops user values here catches their panics (the `boc` facade does).
    fn released(&mut self) {}

    /// After [`run`](Self::run): whether the body failed (for a runtime
    /// that records failures as results rather than unwinding). Read by
    /// [`Ready::run`]. Default: never.
    fn failed(&self) -> bool {
        false
    }

    /// A name for the behavior in diagnostics (for example a starvation
    /// report naming the behaviors that wait). Default: none.
    fn label(&self) -> Option<Arc<str>> {
        None
    }
}

/// Where a behavior goes once it holds all its cowns: a worker queue, a
/// main-thread queue, or (in tests) straight to a thread.
///
/// `dispatch` is called exactly once per behavior, by whichever thread
/// completed its acquisition: the scheduling thread (every cown was free) or
/// the thread releasing the last cown it waited for. It should hand the
/// behavior off quickly; running it inline is allowed but deepens the stack.
pub trait Dispatch: Sync {
    /// Takes ownership of a ready behavior.
    fn dispatch(&self, behavior: Ready);
}

/// The type-erased operations of one `(payload, dispatcher)` pair.
struct VTable {
    /// Layout of `Block<P>`, the header and payload before the requests.
    block: Layout,
    /// Offset of the first request from the start of the block.
    requests_offset: usize,
    run: unsafe fn(NonNull<Header>),
    released: unsafe fn(NonNull<Header>),
    failed: unsafe fn(NonNull<Header>) -> bool,
    label: unsafe fn(NonNull<Header>) -> Option<Arc<str>>,
    drop_payload: unsafe fn(NonNull<Header>),
    dispatch: unsafe fn(*const (), Ready),
}

struct VTableFor<P, D>(PhantomData<(P, D)>);

impl<P: Payload, D: Dispatch> VTableFor<P, D> {
    const VTABLE: VTable = VTable {
        block: Layout::new::<Block<P>>(),
        requests_offset: requests_offset::<P>(),
        run: run_payload::<P>,
        released: released_payload::<P>,
        failed: payload_failed::<P>,
        label: payload_label::<P>,
        drop_payload: drop_payload::<P>,
        dispatch: dispatch_to::<D>,
    };
}

/// The fixed part of a behavior, first in its allocation.
#[repr(C)]
pub(crate) struct Header {
    /// Acquisitions still outstanding, plus one held by the scheduler until
    /// phase 2 is complete.
    ///
    /// Initialised to `n_requests + 1` before any request is published.
    /// Decremented (`fetch_sub`, AcqRel) by the scheduler at the end of phase
    /// 2 (by one plus the number of cowns that were free) and by each
    /// predecessor's release (by the number of this behavior's requests it
    /// resolves). The release half publishes the decrementer's writes (a
    /// predecessor body's writes to the cown); the acquire half lets the
    /// thread that reaches zero, which dispatches, see all of them.
    pending: AtomicUsize,
    vtable: &'static VTable,
    /// The `&D` given to `schedule`, erased; only `vtable.dispatch` reads it.
    dispatcher: *const (),
    /// Requests in use, after duplicates were removed; sorted by key.
    n_requests: usize,
    /// Request slots allocated (the request set's size with duplicates).
    n_slots: usize,
    /// Caller-defined, immutable; see [`Ready::flags`].
    flags: u32,
    /// Whether a [`Watch`] was created; immutable. Unwatched behaviors never
    /// touch `completion`.
    watched: bool,
    /// [`DONE`] and [`WATCHER`] bits of a watched behavior: whoever clears
    /// the other's bit last frees the allocation.
    ///
    /// Initialised to `WATCHER` before publication. Set `DONE` (`fetch_or`)
    /// by the releasing thread after the release and `Payload::released`;
    /// cleared `WATCHER` (`fetch_and`) by the watch's drop. Both AcqRel: the
    /// release half publishes the completer's payload writes (the result)
    /// and the watcher's last reads; the acquire half lets whichever side
    /// frees see the other's. [`Watch::is_done`] loads Acquire, pairing with
    /// the completer's release.
    completion: AtomicUsize,
}

/// The behavior has been released; its payload will not be touched by the
/// protocol again.
const DONE: usize = 1;
/// A [`Watch`] still refers to the behavior.
const WATCHER: usize = 2;

#[repr(C)]
struct Block<P> {
    header: Header,
    payload: ManuallyDrop<P>,
}

const fn requests_offset<P>() -> usize {
    let size = size_of::<Block<P>>();
    let align = align_of::<Request>();
    size.div_ceil(align) * align
}

fn block_layout(vtable: &VTable, n_slots: usize) -> Layout {
    let requests = Layout::array::<Request>(n_slots).expect("request set too large");
    let (layout, offset) = vtable.block.extend(requests).expect("request set too large");
    debug_assert_eq!(offset, vtable.requests_offset);
    layout
}

/// A behavior that holds every cown of its request set and is ready to run.
///
/// Owning and type-erased: [`Dispatch`] receives it and moves it to whichever
/// thread should run it. [`run`](Self::run) runs the body and then releases
/// the cowns; dropping a `Ready` without running it releases the cowns
/// without running the body (so a shut-down queue loses no cown).
pub struct Ready {
    header: NonNull<Header>,
}

// SAFETY: a `Ready` is the unique owner of its behavior; the payload is
// `Send` (required by `Payload`), the requests are only touched through
// atomics, and the dispatcher is `Sync` (required by `Dispatch`).
unsafe impl Send for Ready {}

impl Ready {
    /// Runs the body, then releases every cown (resolving the behaviors
    /// waiting behind them) and frees the behavior; returns whether the body
    /// failed ([`Payload::failed`], read before the release). If the body
    /// panics, the cowns are released during unwinding and the panic
    /// continues.
    pub fn run(self) -> bool {
        // SAFETY: we own the behavior and it has not run yet (`run` consumes
        // the only handle); the payload is read after its run, while we still
        // own the behavior. The release happens when `self` drops, also on
        // unwind.
        unsafe {
            (self.header.as_ref().vtable.run)(self.header);
            (self.header.as_ref().vtable.failed)(self.header)
        }
    }

    /// The payload's [`label`](Payload::label).
    pub fn label(&self) -> Option<Arc<str>> {
        // SAFETY: we own the behavior; the payload is only read.
        unsafe { (self.header.as_ref().vtable.label)(self.header) }
    }

    /// The flags given to [`schedule`] (a dispatcher may use them to route
    /// the behavior, for example to a main-thread queue).
    pub fn flags(&self) -> u32 {
        // SAFETY: the header is alive while we own the behavior.
        unsafe { self.header.as_ref() }.flags
    }

    /// How many distinct cowns the behavior holds.
    pub fn n_cowns(&self) -> usize {
        // SAFETY: the header is alive while we own the behavior.
        unsafe { self.header.as_ref() }.n_requests
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        // SAFETY: we own the behavior, which holds all its cowns; this is the
        // only place a behavior is released and freed.
        unsafe { release_and_free(self.header) };
    }
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready").field("n_cowns", &self.n_cowns()).field("flags", &self.flags()).finish()
    }
}

/// Schedules `payload` to run once it holds every cown in `cowns`.
///
/// Cowns are acquired in key order; a cown named more than once is acquired
/// once. Behaviors that share a cown run in the order they were scheduled
/// (for schedules ordered by happens-before; concurrent schedules are ordered
/// by the protocol). When the behavior holds everything it is passed to
/// `dispatcher`, possibly before this function returns. An empty request set
/// is ready at once.
///
/// # Safety
///
/// - Every cown in `cowns` must stay alive, at the same address, until the
///   behavior has been released (run or dropped). Owning handles to them in
///   the payload meets this.
/// - `dispatcher` must stay alive until this behavior has been dispatched,
///   which may happen on another thread after this call returns.
///
/// # Example
///
/// ```
/// use boc_core::{CownHeader, Dispatch, Payload, Ready, schedule};
/// use std::sync::Mutex;
///
/// struct Inline;
/// impl Dispatch for Inline {
///     fn dispatch(&self, behavior: Ready) { behavior.run(); }
/// }
/// struct Log(&'static Mutex<Vec<u32>>, u32);
/// impl Payload for Log {
///     fn run(&mut self) { self.0.lock().unwrap().push(self.1) }
/// }
///
/// static LOG: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// let (a, b) = (CownHeader::new(), CownHeader::new());
/// // SAFETY: the cowns and the dispatcher outlive both behaviors, which
/// // run inline before `schedule` returns.
/// unsafe {
///     schedule([&b, &a, &b], Log(&LOG, 1), 0, &Inline);
///     schedule([&a], Log(&LOG, 2), 0, &Inline);
/// }
/// assert_eq!(*LOG.lock().unwrap(), [1, 2]);
/// ```
pub unsafe fn schedule<'c, P, D, I>(cowns: I, payload: P, flags: u32, dispatcher: &D)
where
    P: Payload,
    D: Dispatch,
    I: IntoIterator<Item = &'c CownHeader>,
    I::IntoIter: ExactSizeIterator,
{
    // SAFETY: the caller upholds `schedule`'s contract.
    unsafe { schedule_any(cowns, payload, flags, dispatcher, false) };
}

/// [`schedule`], also returning a [`Watch`] through which the payload can be
/// read after the behavior has run.
///
/// # Safety
///
/// As for [`schedule`].
pub unsafe fn schedule_watched<'c, P, D, I>(cowns: I, payload: P, flags: u32, dispatcher: &D) -> Watch
where
    P: Payload,
    D: Dispatch,
    I: IntoIterator<Item = &'c CownHeader>,
    I::IntoIter: ExactSizeIterator,
{
    // SAFETY: the caller upholds `schedule`'s contract.
    unsafe { schedule_any(cowns, payload, flags, dispatcher, true) }.expect("a watched schedule returns a watch")
}

/// Both public schedules: a request set of exactly one cown takes the fast
/// path (no sort, no loop).
///
/// # Safety
///
/// As for [`schedule`].
#[inline]
unsafe fn schedule_any<'c, P, D, I>(cowns: I, payload: P, flags: u32, dispatcher: &D, watched: bool) -> Option<Watch>
where
    P: Payload,
    D: Dispatch,
    I: IntoIterator<Item = &'c CownHeader>,
    I::IntoIter: ExactSizeIterator,
{
    let mut cowns = cowns.into_iter();
    if cowns.len() == 1
        && let Some(cown) = cowns.next()
    {
        // SAFETY: the caller upholds `schedule`'s contract.
        return unsafe { schedule_single(cown, payload, flags, dispatcher, watched) };
    }
    // SAFETY: as above.
    unsafe { schedule_many(cowns, payload, flags, dispatcher, watched) }
}

/// Writes the block (header and payload) of a behavior whose requests are
/// already in place, creates its watch if asked, and runs two-phase locking.
///
/// # Safety
///
/// `header` was returned by `allocate(vtable_of::<P, D>, n_slots)` and its
/// first `n_requests` request slots are initialised; `schedule`'s contract.
#[inline]
unsafe fn publish<P: Payload, D: Dispatch>(
    header: NonNull<Header>,
    payload: P,
    flags: u32,
    dispatcher: &D,
    n_requests: usize,
    n_slots: usize,
    watched: bool,
) -> Option<Watch> {
    // SAFETY: the block is allocated and uninitialised; the requests only
    // hold its address.
    unsafe {
        header.cast::<Block<P>>().write(Block {
            header: Header {
                pending: AtomicUsize::new(n_requests + 1),
                vtable: &VTableFor::<P, D>::VTABLE,
                dispatcher: ptr::from_ref(dispatcher).cast(),
                n_requests,
                n_slots,
                flags,
                watched,
                completion: AtomicUsize::new(if watched { WATCHER } else { 0 }),
            },
            payload: ManuallyDrop::new(payload),
        });
    }
    // Created before the behavior can run: the WATCHER bit keeps the block
    // alive until the watch is dropped.
    let watch = watched.then_some(Watch { header });
    // SAFETY: the behavior is fully initialised and unpublished; the caller
    // keeps the cowns and the dispatcher alive.
    unsafe { acquire(header) };
    watch
}

/// # Safety
///
/// As for [`schedule`].
unsafe fn schedule_many<'c, P, D, I>(cowns: I, payload: P, flags: u32, dispatcher: &D, watched: bool) -> Option<Watch>
where
    P: Payload,
    D: Dispatch,
    I: IntoIterator<Item = &'c CownHeader>,
    I::IntoIter: ExactSizeIterator,
{
    let cowns = cowns.into_iter();
    let n_slots = cowns.len();
    let vtable = &VTableFor::<P, D>::VTABLE;
    let header = allocate(vtable, n_slots);
    // SAFETY: `allocate` returned room for `n_slots` requests at this offset.
    let requests = unsafe { header.cast::<u8>().add(vtable.requests_offset).cast::<Request>() };
    let mut n_written = 0;
    for cown in cowns.take(n_slots) {
        // SAFETY: slot `n_written < n_slots` is in bounds and uninitialised.
        unsafe { requests.add(n_written).write(Request::new(cown, header)) };
        n_written += 1;
    }
    // SAFETY: the first `n_written` slots were initialised just above and
    // nothing else can see them yet.
    let n_requests = unsafe { sort_and_dedup(requests, n_written) };
    // SAFETY: allocated for `P, D` with `n_requests` requests in place.
    unsafe { publish(header, payload, flags, dispatcher, n_requests, n_slots, watched) }
}

/// # Safety
///
/// As for [`schedule`].
#[inline]
unsafe fn schedule_single<P, D>(
    cown: &CownHeader,
    payload: P,
    flags: u32,
    dispatcher: &D,
    watched: bool,
) -> Option<Watch>
where
    P: Payload,
    D: Dispatch,
{
    let vtable = &VTableFor::<P, D>::VTABLE;
    let header = allocate(vtable, 1);
    // SAFETY: room for one request at this offset, uninitialised and
    // unpublished; then the block is written around it.
    unsafe {
        let request = header.cast::<u8>().add(vtable.requests_offset).cast::<Request>();
        request.write(Request::new(cown, header));
        publish(header, payload, flags, dispatcher, 1, 1, watched)
    }
}

fn allocate(vtable: &VTable, n_slots: usize) -> NonNull<Header> {
    // The layout has a non-zero size: it contains a `Header`.
    crate::alloc::allocate(block_layout(vtable, n_slots)).cast()
}

/// Sorts the first `n` requests by cown key and removes duplicates (the
/// first of each run stays). Returns how many remain.
///
/// # Safety
///
/// `requests[..n]` are initialised and not shared with any other thread.
unsafe fn sort_and_dedup(requests: NonNull<Request>, n: usize) -> usize {
    if n < 2 {
        return n;
    }
    // SAFETY: the caller guarantees the slots are initialised and unshared.
    let slice = unsafe { std::slice::from_raw_parts_mut(requests.as_ptr(), n) };
    slice.sort_unstable_by_key(Request::key);
    let mut n_kept = 1;
    for idx in 1..n {
        if slice[idx].key() == slice[n_kept - 1].key() {
            // SAFETY: a duplicate: dropped here and never read again (the
            // slot is either overwritten below or past `n_kept`).
            unsafe { ptr::drop_in_place(&raw mut slice[idx]) };
        } else {
            if idx != n_kept {
                // SAFETY: slot `idx` is initialised; slot `n_kept < idx` was
                // moved out of or dropped, so overwriting it leaks nothing.
                unsafe { ptr::copy_nonoverlapping(&raw const slice[idx], &raw mut slice[n_kept], 1) };
            }
            n_kept += 1;
        }
    }
    n_kept
}

/// The requests of a behavior, in key order.
///
/// # Safety
///
/// `header` is a live behavior.
unsafe fn requests<'a>(header: NonNull<Header>) -> &'a [Request] {
    // SAFETY: the caller guarantees the behavior is alive; its first
    // `n_requests` slots were initialised by `schedule`.
    unsafe {
        let h = header.as_ref();
        let first = header.cast::<u8>().add(h.vtable.requests_offset).cast::<Request>();
        std::slice::from_raw_parts(first.as_ptr(), h.n_requests)
    }
}

/// Two-phase locking (PROTOCOL.md, steps 1 to 3).
///
/// # Safety
///
/// `header` is fully initialised and not yet published; its cowns and
/// dispatcher are alive.
unsafe fn acquire(header: NonNull<Header>) {
    // SAFETY: the caller guarantees a live, initialised behavior; no other
    // thread can free it while `pending` holds the scheduler's extra one.
    let requests = unsafe { requests(header) };
    let mut n_free = 0;
    // Phase 1, in key order.
    for request in requests {
        // SAFETY: the caller keeps the cown alive.
        let cown = unsafe { request.cown.as_ref() };
        let prev = cown.last.swap(ptr::from_ref(request).cast_mut(), Ordering::AcqRel);
        if prev.is_null() {
            n_free += 1;
            continue;
        }
        // SAFETY: `prev` is alive: its owner cannot be released before it
        // resolves a successor, and we have not linked yet, so its release
        // (if it started) is waiting for our link.
        let prev = unsafe { &*prev };
        let backoff = Backoff::new();
        while !prev.scheduled.load(Ordering::Acquire) {
            backoff.snooze();
        }
        prev.next.store(ptr::from_ref(request).cast_mut(), Ordering::Release);
    }
    // Phase 2.
    for request in requests {
        request.scheduled.store(true, Ordering::Release);
    }
    // Every cown was free: no predecessor will ever decrement `pending`, so
    // nobody else can touch it and the behavior is ready now.
    // SAFETY: the behavior is alive until it is dispatched.
    let ready = n_free == requests.len()
        || unsafe { header.as_ref() }.pending.fetch_sub(n_free + 1, Ordering::AcqRel) == n_free + 1;
    if ready {
        // SAFETY: we took `pending` to zero (or nobody else could), so we
        // are the only one to dispatch it.
        unsafe { dispatch(header) };
    }
}

/// Hands a behavior whose `pending` reached zero to its dispatcher.
///
/// # Safety
///
/// Called exactly once per behavior, when it holds every cown.
unsafe fn dispatch(header: NonNull<Header>) {
    // SAFETY: the behavior is alive until dispatched; `schedule`'s contract
    // keeps the dispatcher alive until now.
    unsafe {
        let h = header.as_ref();
        (h.vtable.dispatch)(h.dispatcher, Ready { header });
    }
}

/// Resolves `count` of a waiting behavior's requests; dispatches it if that
/// was the last outstanding one.
///
/// # Safety
///
/// `header` is a live behavior and the caller owns `count` of its
/// outstanding acquisitions.
pub(crate) unsafe fn resolve(header: NonNull<Header>, count: usize) {
    // SAFETY: alive until `pending` reaches zero, which only happens here or
    // in its own phase 2.
    if unsafe { header.as_ref() }.pending.fetch_sub(count, Ordering::AcqRel) == count {
        // SAFETY: we took `pending` to zero.
        unsafe { dispatch(header) };
    }
}

/// Step 5 for one request: makes the cown idle again, or returns the
/// behavior queued behind it (whose acquisition the caller must resolve).
///
/// # Safety
///
/// The caller holds `request`'s cown through `request` (it is at the head
/// of the cown's queue) and releases it exactly once.
pub(crate) unsafe fn hand_over(request: &Request) -> Option<NonNull<Header>> {
    let mut next = request.next.load(Ordering::Acquire);
    if next.is_null() {
        // SAFETY: we hold the cown, so it is alive.
        let cown = unsafe { request.cown.as_ref() };
        let own = ptr::from_ref(request).cast_mut();
        if cown.last.compare_exchange(own, ptr::null_mut(), Ordering::Release, Ordering::Relaxed).is_ok() {
            return None;
        }
        // A successor swapped itself in but has not linked yet.
        let backoff = Backoff::new();
        loop {
            next = request.next.load(Ordering::Acquire);
            if !next.is_null() {
                break;
            }
            backoff.snooze();
        }
    }
    // SAFETY: the successor cannot run, so cannot be freed, before we
    // resolve it; the Acquire load above makes its fields visible.
    Some(unsafe { (*next).behavior })
}

/// Release (PROTOCOL.md, step 5), then drops the payload and frees.
///
/// # Safety
///
/// `header` is a behavior that holds all its cowns, owned by the caller,
/// released exactly once.
unsafe fn release_and_free(header: NonNull<Header>) {
    // SAFETY: the caller owns the behavior.
    let requests = unsafe { requests(header) };
    // Successors resolved so far but not yet decremented: adjacent requests
    // whose successors are one behavior are resolved in one step.
    let mut batch: Option<(NonNull<Header>, usize)> = None;
    for request in requests {
        // SAFETY: we hold the request's cown.
        let Some(successor) = (unsafe { hand_over(request) }) else { continue };
        batch = match batch {
            Some((behavior, count)) if behavior == successor => Some((behavior, count + 1)),
            Some((behavior, count)) => {
                // SAFETY: we own `count` of its acquisitions.
                unsafe { resolve(behavior, count) };
                Some((successor, 1))
            }
            None => Some((successor, 1)),
        };
    }
    if let Some((behavior, count)) = batch {
        // SAFETY: we own `count` of its acquisitions.
        unsafe { resolve(behavior, count) };
    }
    // SAFETY: released: the protocol no longer refers to this behavior, and
    // the caller still owns it. The payload (which may own the cowns) hears
    // of it only now; then a watch, if any, may see it done.
    unsafe {
        let h = header.as_ref();
        let first = header.cast::<u8>().add(h.vtable.requests_offset).cast::<Request>();
        ptr::drop_in_place(ptr::slice_from_raw_parts_mut(first.as_ptr(), h.n_requests));
        (h.vtable.released)(header);
        if !h.watched || h.completion.fetch_or(DONE, Ordering::AcqRel) & WATCHER == 0 {
            free(header);
        }
    }
}

/// Drops the payload and frees the allocation.
///
/// # Safety
///
/// `header` is a released behavior that nobody else refers to; its
/// requests were dropped.
unsafe fn free(header: NonNull<Header>) {
    // SAFETY: the caller guarantees exclusive ownership of a released block.
    unsafe {
        let vtable = header.as_ref().vtable;
        let layout = block_layout(vtable, header.as_ref().n_slots);
        (vtable.drop_payload)(header);
        crate::alloc::deallocate(header.cast(), layout);
    }
}

/// A second owner of a behavior's allocation, returned by the `*_watched`
/// schedules: once the behavior has run and released its cowns, the payload
/// can be read through the watch (this is how a runtime hands a behavior's
/// result back without a second allocation). The allocation is freed when
/// both the behavior is done and the watch is dropped.
pub struct Watch {
    header: NonNull<Header>,
}

// SAFETY: the watch only reads `completion` (atomic) until the behavior is
// done, and then hands out `&P` through an unsafe method whose caller
// vouches for the payload type and for sharing it.
unsafe impl Send for Watch {}
// SAFETY: as for `Send`; every method takes `&self` and is read-only.
unsafe impl Sync for Watch {}

impl Watch {
    /// True once the behavior has released its cowns (it ran, or was dropped
    /// without running) and [`Payload::released`] returned.
    pub fn is_done(&self) -> bool {
        // SAFETY: the WATCHER bit keeps the header alive.
        unsafe { self.header.as_ref() }.completion.load(Ordering::Acquire) & DONE != 0
    }

    /// The payload, once the behavior is done.
    ///
    /// # Safety
    ///
    /// `P` is the payload type the behavior was scheduled with, and sharing
    /// `&P` with every thread that can reach this watch is sound for the
    /// parts of `P` the caller touches.
    pub unsafe fn payload<P: Payload>(&self) -> Option<&P> {
        if !self.is_done() {
            return None;
        }
        // SAFETY: done (Acquire above): the protocol and the runner are
        // finished with the payload, whose writes are visible; the caller
        // vouches for the type.
        Some(unsafe { &(*self.header.cast::<Block<P>>().as_ptr()).payload })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: the WATCHER bit keeps the header alive until this RMW.
        let previous = unsafe { self.header.as_ref() }.completion.fetch_and(!WATCHER, Ordering::AcqRel);
        if previous & DONE != 0 {
            // SAFETY: done, and the watch was the last owner.
            unsafe { free(self.header) };
        }
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("done", &self.is_done()).finish()
    }
}

/// # Safety
///
/// `header` is a live `Block<P>` that holds all its cowns, owned by the
/// caller; called at most once.
unsafe fn run_payload<P: Payload>(header: NonNull<Header>) {
    // SAFETY: the caller owns the block; only the payload is borrowed
    // mutably (the header stays shared).
    let payload = unsafe { &mut (*header.cast::<Block<P>>().as_ptr()).payload };
    payload.run();
}

/// # Safety
///
/// `header` is a live, released `Block<P>` owned by the caller.
unsafe fn released_payload<P: Payload>(header: NonNull<Header>) {
    // SAFETY: the caller owns the block; only the payload is borrowed.
    unsafe { (*header.cast::<Block<P>>().as_ptr()).payload.released() };
}

/// # Safety
///
/// `header` is a live `Block<P>` owned by the caller.
unsafe fn payload_failed<P: Payload>(header: NonNull<Header>) -> bool {
    // SAFETY: the caller owns the block; the payload is only read.
    unsafe { (*header.cast::<Block<P>>().as_ptr()).payload.failed() }
}

/// # Safety
///
/// `header` is a live `Block<P>` owned by the caller.
unsafe fn payload_label<P: Payload>(header: NonNull<Header>) -> Option<Arc<str>> {
    // SAFETY: the caller owns the block; the payload is only read.
    unsafe { (*header.cast::<Block<P>>().as_ptr()).payload.label() }
}

/// # Safety
///
/// `header` is a live `Block<P>` whose payload was not dropped yet.
unsafe fn drop_payload<P: Payload>(header: NonNull<Header>) {
    // SAFETY: the caller owns the block and drops the payload once.
    unsafe { ManuallyDrop::drop(&mut (*header.cast::<Block<P>>().as_ptr()).payload) };
}

/// # Safety
///
/// `dispatcher` is the `&D` given to `schedule`, still alive.
unsafe fn dispatch_to<D: Dispatch>(dispatcher: *const (), behavior: Ready) {
    // SAFETY: the caller guarantees the erased pointer is a live `&D`.
    unsafe { &*dispatcher.cast::<D>() }.dispatch(behavior);
}
