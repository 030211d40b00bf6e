//! The engine: the one place where the lower crates are assembled into a
//! runtime. [`Runtime`](crate::Runtime) and [`Handle`](crate::Handle) are a
//! typed layer over it; a binding to another language uses it directly (its
//! payloads, its worker hooks, its home thread).
//!
//! * **Routing**: a ready behavior whose flags have [`PINNED`], or any
//!   behavior when the epoch has no workers, goes to the home thread's
//!   [`MainQueue`]; the rest to the epoch's worker pool
//!   ([`Affinity::classify`]).
//! * **Counting in and out**: [`Engine::count_in`] counts a behavior in on
//!   the live epoch and returns its [`Ticket`]; [`Engine::schedule`] puts
//!   the ticket inside the behavior, which counts it out once it is done:
//!   after its release and, when it ran, after its `Watch` saw it done (so a
//!   result is readable as soon as a wait sees quiescence). The count-out
//!   that reaches zero wakes the home thread (`MainQueue::count_out`).
//! * **Epochs**: a pool of workers with its count. [`Engine::start`] starts
//!   one; a behavior is dispatched through the epoch it was counted in on,
//!   and its count keeps that epoch alive (below), so no behavior is ever
//!   dispatched through freed memory, whatever happens to the engine.
//! * **Pinned drops at home**: [`Engine::send_home`] runs a payload on the
//!   home thread as a counted, signalled main-side behavior with no cowns.
//!
//! # Keeping an epoch alive
//!
//! A behavior points to its epoch without owning a reference to it: an
//! `Arc` per behavior, cloned by the scheduling thread and dropped by a
//! worker, cost more than the rest of the count (BENCHMARKS.md). The count
//! keeps the epoch alive instead, by `boc_sched::KeepAlive`'s rules (its
//! docs, and its loom models): while open, an epoch is owned by the
//! engine's current slot, which gives it up only once it is closed (or, when
//! the engine drops, closes it first); closing it with behaviors in flight
//! stores its own `Arc` in it, which the count-out that takes it to zero
//! lets go of; and a count-out that leaves others in flight touches it no
//! more, while one that may be the last holds an `Arc` across what follows.
//! Counting in takes no reference either: it happens through an epoch the
//! caller holds (a handle's, or the current slot's under its lock).
//!
//! # Counting out after the release
//!
//! A behavior's ticket leaves its payload in [`Payload::released`], which
//! runs inside the release, before the behavior's `Watch` (if any) sees it
//! done. Counted out there, a wait could see quiescence while a result is
//! not yet readable. So the runners the engine gives the pool and the pump
//! run each behavior inside a *count-out scope* ([`deferring_count_out`]):
//! a ticket released inside one is counted out when the outermost scope on
//! that thread ends, after `Ready::run` has returned. A behavior dropped
//! unrun outside any scope (a queue cleared at shutdown) is counted out at
//! once. A host that drops behaviors itself (discarding queued work) wraps
//! that in a scope too, if what the drops leave must be dealt with before
//! the count goes down.

use crate::Error;
use crate::primitive::{AtomicBool, Ordering, Unpoisoned};
use crate::unwind;
use boc_core::Dispatch;
use boc_pin::{Affinity, Budget, PumpReport};
use boc_sched::{KeepAlive, Pool, Terminator};

// What a client of the engine names: the protocol's payloads and behaviors,
// the main queue and its runner, the pool's options and worker hooks, and a
// mailbox's lock guard (a host holds it across `fork`).
pub use boc_core::{CownHeader, Payload, Ready, Watch};
pub use boc_msg::Hold as MailboxHold;
pub use boc_pin::{
    Error as PinError, HomeWait, MAX_REPORTED_LABELS, MainConfig, MainQueue, MainRunner, Outcome, PumpError, WaitEnd,
    WaitOutcome,
};
pub use boc_sched::{PoolOptions, Runner, default_workers};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The `flags` bit of a behavior whose request set holds a pinned cown: it
/// runs on the home thread.
pub const PINNED: u32 = 1;

/// Which thread is the engine's home (the only one that runs main-side
/// behaviors).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Home {
    /// The thread that creates the engine.
    Current,
    /// Whichever thread `is_home` accepts, called `name` in errors
    /// (`MainQueue::with_home_check`): for a host whose home thread is
    /// defined by the host, such as an interpreter's main thread.
    Check {
        /// Cheap, non-blocking, true on exactly one thread at a time.
        is_home: fn() -> bool,
        /// What errors call the home thread.
        name: &'static str,
    },
}

/// How an [`Engine`] is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The home thread.
    pub home: Home,
    /// The main queue's configuration (its watchdog).
    pub main: MainConfig,
}

/// What the epochs and the tickets share with the engine: the main queue,
/// and whether the engine was shut down.
struct HomeSide {
    main: MainQueue<Ready>,
    /// Set once by [`Engine::shut_down`] (SeqCst, as the terminator close
    /// that follows it); read by the count-out that reaches zero on a
    /// closed epoch, which then lets go of the host's callbacks.
    shut_down: AtomicBool,
    /// The callbacks were let go of (once).
    released_callbacks: AtomicBool,
}

impl HomeSide {
    /// Drops the waker and the watchdog's sink, once: host callbacks that
    /// may own a handle to the engine, a cycle through the main queue
    /// otherwise. A panic in their `Drop` is caught and reported.
    fn release_callbacks(&self) {
        if self.released_callbacks.swap(true, Ordering::SeqCst) {
            return;
        }
        unwind::catch_reporting("the drop of the pump waker", || self.main.set_waker(None));
        unwind::catch_reporting("the drop of the watchdog's sink", || {
            // Turning the watchdog off never starts its thread: no error.
            let _ = self.main.set_watchdog(None);
        });
    }
}

/// One pool of workers and the count of the behaviors counted in on it:
/// the dispatcher of those behaviors, which their count keeps alive (see
/// [Keeping an epoch alive](self#keeping-an-epoch-alive)).
///
/// Laid out for the cache lines each behavior touches. The count changes
/// for every behavior, on the scheduling thread and then on a worker; the
/// `Arc`'s own strong count only when a count-out may be the last one.
/// `repr(C)` with the terminator first (its count first in it, also
/// `repr(C)`) puts the count right after the `Arc`'s counts. What
/// dispatching reads (the pool, the worker count, the home side) is never
/// written after the start, so it lives apart, in a `Dispatcher` of its
/// own allocation and cache lines: on the count's line, every dispatch
/// would miss on it after each count-out.
#[repr(C)]
pub struct Epoch<W: Runner<Ready>> {
    terminator: Terminator,
    dispatcher: Box<Dispatcher<W>>,
}

/// The part of an [`Epoch`] that dispatching reads: the behaviors it
/// schedules are dispatched through it. Aligned to two cache lines (the
/// pair that x86 prefetches together, as `crossbeam_utils::CachePadded`),
/// so no counter written per behavior shares a line with it.
#[repr(align(128))]
struct Dispatcher<W: Runner<Ready>> {
    pool: Pool<Ready, EpochWorkers<W>>,
    n_workers: usize,
    home: Arc<HomeSide>,
    /// The epoch's own `Arc` while it is closed with behaviors in flight
    /// ([`Epoch::close`], [`Epoch::after_zero`]).
    keep_alive: KeepAlive<Epoch<W>>,
}

impl<W: Runner<Ready>> Epoch<W> {
    /// Whether a behavior runs on the home thread in this epoch: pinned,
    /// or no workers to run it.
    pub fn runs_at_home(&self, pinned: bool) -> bool {
        self.dispatcher.runs_at_home(pinned)
    }

    /// The epoch's worker count.
    pub fn n_workers(&self) -> usize {
        self.dispatcher.n_workers
    }

    /// Behaviors counted in and not finished (a snapshot).
    pub fn n_in_flight(&self) -> usize {
        self.terminator.count()
    }

    /// Whether the epoch refuses new behaviors (shut down or retired).
    pub fn is_closed(&self) -> bool {
        self.terminator.is_closed()
    }

    /// Blocks until nothing is in flight on this epoch, or `timeout` passes
    /// (`None`: no timeout); true if the count reached zero. A host that
    /// must not block in some context wraps the call.
    pub fn wait_idle(&self, timeout: Option<Duration>) -> bool {
        self.terminator.wait_idle(timeout)
    }

    /// Closes the epoch if nothing is in flight on it; true if it is closed
    /// (now, or already). A closed epoch counts nothing in any more, so a
    /// host may join it.
    pub fn close_if_idle(&self) -> bool {
        self.terminator.is_closed() || self.terminator.try_close_idle()
    }

    /// Counts a behavior in on this epoch, unless it is closed (retired or
    /// shut down). For a host that keeps its epoch: [`Engine::count_in`]
    /// finds the live one under a lock.
    ///
    /// # Errors
    ///
    /// [`Error::ShutDown`] when the epoch is closed.
    pub fn count_in(self: &Arc<Self>) -> Result<Ticket<W>, Error> {
        self.try_count_in().ok_or_else(|| self.refused())
    }

    /// Counts a behavior in unless the epoch is closed. The ticket points
    /// to this epoch, which the count keeps alive from here on (module
    /// docs); the caller keeps it alive until then.
    fn try_count_in(self: &Arc<Self>) -> Option<Ticket<W>> {
        // The `Arc`'s own pointer (not one made from a reference to the
        // epoch): a count-out may rebuild an `Arc` from it, which must be
        // able to free the whole allocation.
        let epoch = NonNull::new(Arc::as_ptr(self).cast_mut()).expect("an Arc's pointer is not null");
        self.terminator.try_increment().then(|| Ticket { epoch: Some(epoch) })
    }

    /// After a refused [`try_count_in`](Self::try_count_in), by a caller
    /// that keeps this epoch alive for the call.
    fn refused(&self) -> Error {
        // The terminator undid the `+1` with a plain decrement, which may
        // have been the one to bring the count to zero after the last
        // behavior's count-out saw it above zero. Then nobody else wakes a
        // home thread waiting for zero or lets go of the keep-alive and the
        // callbacks: do it here. (Of refused increments racing each other,
        // the last to decrement sees zero here; a spurious wake is
        // harmless.) The undo is this behavior's count-out.
        if self.dispatcher.home.main.count_out(|| self.terminator.count() == 0) {
            self.after_zero();
        }
        Error::ShutDown
    }

    /// Closes the epoch, in flight or not: no behavior is counted in on it
    /// any more, and it keeps itself alive until the last one in flight is
    /// counted out (module docs). Idempotent.
    fn close(self: &Arc<Self>) {
        self.dispatcher.keep_alive.close(&self.terminator, self);
    }

    /// After this epoch's count was seen at zero, by a caller that keeps it
    /// alive for the call: a closed epoch lets go of its keep-alive (no
    /// behavior is in flight on it, and none can be counted in), and the
    /// engine's host of its callbacks once the engine is shut down.
    fn after_zero(&self) {
        let kept = self.dispatcher.keep_alive.release(&self.terminator);
        if self.terminator.is_closed() {
            after_last_count_out(&self.dispatcher.home);
        }
        // Not the last `Arc`: the caller keeps the epoch alive.
        drop(kept);
    }

    /// Counts out one behavior counted in on the epoch at `this`.
    ///
    /// # Safety
    ///
    /// `this` points to an epoch with a behavior counted in on it that
    /// this call counts out (so the epoch is alive until the call's
    /// decrement; module docs).
    unsafe fn count_out(this: NonNull<Self>) {
        let this = this.as_ptr().cast_const();
        // SAFETY: every epoch is made in an `Arc` and follows `KeepAlive`'s
        // rules (module docs); `this` is alive until the decrement (the
        // caller's contract), and no reference to it is made here, only a
        // pointer to its terminator.
        let held = unsafe { KeepAlive::count_out_or_hold(this, &raw const (*this).terminator) };
        // `None`: others are in flight, and the epoch may be freed by now.
        // `Some`: perhaps the last, held across the decrement and what
        // follows it (the wakes, the keep-alive, the callbacks).
        let Some(held) = held else { return };
        if held.dispatcher.home.main.count_out(|| held.terminator.decrement()) {
            held.after_zero();
        }
    }

    /// The payload with `ticket` moved inside it, after checking that the
    /// ticket is this epoch's.
    fn counted<P: Payload>(&self, ticket: Ticket<W>, payload: P) -> Counted<P> {
        assert!(std::ptr::eq(ticket.epoch(), self), "a ticket is scheduled through the epoch it was counted in on");
        let epoch = ticket.into_inner().cast();
        Counted { payload, ticket: Some(Counting { epoch, count_out: count_out_erased::<W> }) }
    }

    /// [`Engine::schedule`] through this epoch, which the caller keeps alive
    /// for the call by borrowing it (the behavior's count keeps it alive
    /// afterwards). Panics if `ticket` was counted in on another epoch.
    ///
    /// # Safety
    ///
    /// As for [`Engine::schedule`].
    pub unsafe fn schedule<'c, P: Payload>(
        &self,
        ticket: Ticket<W>,
        cowns: impl ExactSizeIterator<Item = &'c CownHeader>,
        payload: P,
        flags: u32,
    ) {
        let counted = self.counted(ticket, payload);
        // SAFETY: the cowns are the caller's contract; the dispatcher is
        // `self`'s, owned by it (freed only with it), alive for this call
        // (borrowed) and afterwards for as long as the behavior is linked
        // anywhere (its ticket, inside the payload, keeps the epoch alive
        // until it is counted out, after the release: module docs).
        unsafe { boc_core::schedule(cowns, counted, flags, &*self.dispatcher) };
    }

    /// [`schedule`](Self::schedule), returning a [`Watch`] on the behavior,
    /// whose payload is a [`Counted<P>`].
    ///
    /// # Safety
    ///
    /// As for [`Engine::schedule`].
    pub unsafe fn schedule_watched<'c, P: Payload>(
        &self,
        ticket: Ticket<W>,
        cowns: impl ExactSizeIterator<Item = &'c CownHeader>,
        payload: P,
        flags: u32,
    ) -> Watch {
        let counted = self.counted(ticket, payload);
        // SAFETY: as in `schedule`.
        unsafe { boc_core::schedule_watched(cowns, counted, flags, &*self.dispatcher) }
    }

    /// Whether the calling thread is one of this epoch's workers.
    pub fn is_worker_thread(&self) -> bool {
        self.dispatcher.pool.is_worker_thread()
    }

    /// Stops the epoch's workers and waits for them to exit (on one of its
    /// own workers it only tells them to stop). Blocks: a host that must
    /// not block in some context wraps the call. Returns once they are
    /// gone, also when another thread joins them.
    pub fn join(&self) {
        self.dispatcher.pool.shutdown();
    }
}

/// What [`Engine::retire_if_idle`] did.
#[derive(Debug)]
pub enum Retired<W: Runner<Ready>> {
    /// No epoch was current.
    NoEpoch,
    /// The current epoch has behaviors in flight: it stays.
    Busy,
    /// The current epoch was idle (or already closed): it is closed and no
    /// longer current; the caller joins it ([`Epoch::join`]) before it lets
    /// go of this handle, where joining may block (a host that must not
    /// block attached to an interpreter joins detached): dropping the last
    /// handle of an unjoined epoch joins its pool there.
    Retired(Arc<Epoch<W>>),
}

impl<W: Runner<Ready>> std::fmt::Debug for Epoch<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("n_workers", &self.n_workers())
            .field("n_in_flight", &self.n_in_flight())
            .finish_non_exhaustive()
    }
}

/// [`Epoch::count_out`] without the epoch's worker type.
///
/// # Safety
///
/// As for [`Epoch::count_out`], `epoch` pointing to an `Epoch<W>`.
unsafe fn count_out_erased<W: Runner<Ready>>(epoch: NonNull<()>) {
    // SAFETY: the caller's contract.
    unsafe { Epoch::<W>::count_out(epoch.cast()) };
}

/// After the count of a closed epoch was seen at zero: once the engine is
/// shut down, no behavior of it remains anywhere, and the host's callbacks
/// can go.
fn after_last_count_out(home: &HomeSide) {
    if home.shut_down.load(Ordering::SeqCst) {
        home.release_callbacks();
    }
}

impl<W: Runner<Ready>> Dispatcher<W> {
    fn runs_at_home(&self, pinned: bool) -> bool {
        Affinity::classify([pinned], self.n_workers) == Affinity::Main
    }
}

impl<W: Runner<Ready>> Dispatch for Dispatcher<W> {
    fn dispatch(&self, behavior: Ready) {
        if self.runs_at_home(behavior.flags() & PINNED != 0) {
            self.home.main.push_labeled(behavior, Ready::label);
        } else {
            self.pool.spawn(behavior);
        }
    }
}

/// The host's worker hooks, with each behavior run in a count-out scope.
struct EpochWorkers<W>(Arc<W>);

impl<W: Runner<Ready>> Runner<Ready> for EpochWorkers<W> {
    fn run(&self, behavior: Ready) {
        deferring_count_out(|| self.0.run(behavior));
    }

    fn worker_thread(&self, work: &mut dyn FnMut()) {
        self.0.worker_thread(work);
    }

    fn park(&self, park: &mut dyn FnMut()) {
        self.0.park(park);
    }
}

/// A behavior counted in on an epoch. Dropped, it counts the behavior out
/// (the drop that takes the count to zero wakes the home thread);
/// [`Engine::schedule`] moves it into the behavior, which drops it once it
/// is done.
#[must_use = "a ticket counts a behavior in; dropping it counts it out"]
pub struct Ticket<W: Runner<Ready>> {
    /// The epoch, kept alive by the count this ticket holds (module docs);
    /// `None` once moved into a behavior.
    epoch: Option<NonNull<Epoch<W>>>,
}

// SAFETY: a ticket is a count of an epoch, which is `Send` and `Sync`, and
// a pointer used to count it out once, from whichever thread drops it.
unsafe impl<W: Runner<Ready>> Send for Ticket<W> {}
// SAFETY: through `&Ticket` only the epoch is read, which is `Sync`.
unsafe impl<W: Runner<Ready>> Sync for Ticket<W> {}

impl<W: Runner<Ready>> Ticket<W> {
    fn pointer(&self) -> NonNull<Epoch<W>> {
        self.epoch.expect("a ticket has its epoch until it is moved")
    }

    /// The epoch the behavior is counted in on.
    pub fn epoch(&self) -> &Epoch<W> {
        // SAFETY: alive while this ticket's count is held (module docs).
        unsafe { self.pointer().as_ref() }
    }

    /// An `Arc` of the epoch, for a caller that must keep it alive past the
    /// moment the ticket is given up.
    fn epoch_arc(&self) -> Arc<Epoch<W>> {
        let epoch = self.pointer().as_ptr();
        // SAFETY: alive while the count is held, and owned by `Arc`s
        // (module docs): `epoch` is an `Arc`'s pointer.
        unsafe {
            Arc::increment_strong_count(epoch);
            Arc::from_raw(epoch)
        }
    }

    fn into_inner(mut self) -> NonNull<Epoch<W>> {
        self.epoch.take().expect("a ticket has its epoch until it is moved")
    }
}

impl<W: Runner<Ready>> Drop for Ticket<W> {
    fn drop(&mut self) {
        if let Some(epoch) = self.epoch.take() {
            // SAFETY: this ticket's count, counted out once.
            unsafe { Epoch::count_out(epoch) };
        }
    }
}

impl<W: Runner<Ready>> std::fmt::Debug for Ticket<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").finish_non_exhaustive()
    }
}

/// A ticket inside a behavior, without its worker type: counts out on drop.
struct Counting {
    /// An `Epoch<W>`, kept alive by this count.
    epoch: NonNull<()>,
    /// `count_out_erased::<W>`.
    count_out: unsafe fn(NonNull<()>),
}

// SAFETY: as for `Ticket`: a count of a `Send + Sync` epoch, counted out
// once, by whichever thread drops it.
unsafe impl Send for Counting {}

impl Drop for Counting {
    fn drop(&mut self) {
        // SAFETY: this count, counted out once; `count_out` matches the
        // epoch's type (`Epoch::counted`).
        unsafe { (self.count_out)(self.epoch) };
    }
}

thread_local! {
    /// Tickets released inside this thread's count-out scopes, counted out
    /// when the outermost one ends. Only this thread touches them.
    static DEFERRED: RefCell<Vec<Counting>> = const { RefCell::new(Vec::new()) };
    /// Count-out scopes open on this thread.
    static SCOPES: Cell<usize> = const { Cell::new(0) };
}

/// Whether this thread is inside a count-out scope ([`deferring_count_out`]),
/// of any engine: behaviors it released may not be counted out yet, so a
/// wait for quiescence of their engine started here would wait for itself.
/// A host with one engine (the Python binding) refuses waits here, code run
/// by a drop inside the scope included. The facade does not need it: its
/// scopes are its workers' and its home thread's pump, where waits on the same
/// runtime are refused already, while a wait on *another* runtime from inside
/// a behavior is legitimate.
pub fn in_count_out_scope() -> bool {
    SCOPES.with(Cell::get) > 0
}

/// Runs `f`, in which behaviors are run or dropped, and counts out the ones
/// it released once the outermost such scope on this thread ends (see the
/// [module docs](self)). The engine's own runners use it; a host wraps
/// discards of queued behaviors in it when what those drops leave must be
/// dealt with before the count goes down.
pub fn deferring_count_out<R>(f: impl FnOnce() -> R) -> R {
    struct Scope;

    impl Drop for Scope {
        fn drop(&mut self) {
            let n_scopes = SCOPES.with(|scopes| {
                scopes.set(scopes.get() - 1);
                scopes.get()
            });
            if n_scopes == 0 {
                // One at a time: a count-out may wake another thread, never
                // run code on this one, but keep the borrow short anyway.
                while let Some(ticket) = DEFERRED.with_borrow_mut(Vec::pop) {
                    drop(ticket);
                }
            }
        }
    }

    SCOPES.with(|scopes| scopes.set(scopes.get() + 1));
    let _scope = Scope;
    f()
}

/// Counts `ticket` out now, or when this thread's count-out scope ends.
fn count_out_after_scope(ticket: Counting) {
    if SCOPES.with(Cell::get) > 0 {
        DEFERRED.with_borrow_mut(|deferred| deferred.push(ticket));
    } else {
        drop(ticket);
    }
}

/// The payload of every behavior scheduled through the engine: the host's
/// payload and the behavior's ticket.
pub struct Counted<P> {
    payload: P,
    ticket: Option<Counting>,
}

impl<P> Counted<P> {
    /// The host's payload (for example, read through a `Watch` once the
    /// behavior is done).
    pub fn payload(&self) -> &P {
        &self.payload
    }
}

impl<P: Payload> Payload for Counted<P> {
    fn run(&mut self) {
        self.payload.run();
    }

    fn released(&mut self) {
        self.payload.released();
        if let Some(ticket) = self.ticket.take() {
            count_out_after_scope(ticket);
        }
    }

    fn failed(&self) -> bool {
        self.payload.failed()
    }

    fn label(&self) -> Option<std::sync::Arc<str>> {
        self.payload.label()
    }
}

/// The host's main-side runner, with each behavior run in a count-out scope.
struct Scoped<'a, R>(&'a R);

impl<R: MainRunner<Ready>> MainRunner<Ready> for Scoped<'_, R> {
    fn run(&self, behavior: Ready) -> Outcome {
        deferring_count_out(|| self.0.run(behavior))
    }
}

/// The engine: a main queue for its home thread, and epochs of workers.
/// See the [module docs](self).
pub struct Engine<W: Runner<Ready>> {
    home: Arc<HomeSide>,
    /// The live epoch, if any (one started and not retired).
    current: RwLock<Option<Arc<Epoch<W>>>>,
    workers: Arc<W>,
}

impl<W: Runner<Ready>> Engine<W> {
    /// Creates the main queue (and its watchdog thread, if configured);
    /// starts no workers ([`start`](Self::start) does).
    ///
    /// # Errors
    ///
    /// [`Error::Pin`] if the watchdog thread cannot be started.
    pub fn new(config: Config, workers: Arc<W>) -> Result<Self, Error> {
        let main = match config.home {
            Home::Current => MainQueue::new(config.main)?,
            Home::Check { is_home, name } => MainQueue::with_home_check(config.main, is_home, name)?,
        };
        let home =
            Arc::new(HomeSide { main, shut_down: AtomicBool::new(false), released_callbacks: AtomicBool::new(false) });
        Ok(Self { home, current: RwLock::new(None), workers })
    }

    /// The main queue: pump, wait, waker, descriptor and watchdog.
    pub fn main(&self) -> &MainQueue<Ready> {
        &self.home.main
    }

    /// The live epoch, if any.
    pub fn current(&self) -> Option<Arc<Epoch<W>>> {
        self.current.read().unpoisoned().clone()
    }

    /// Starts an epoch of `n_workers` workers unless one is live: a live one
    /// with as many workers is kept; one with another count is an error.
    /// The workers are made with `options`.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyRunning`] if a live epoch has another worker count;
    /// [`Error::ShutDown`] once the engine is shut down; [`Error::Pool`] if
    /// the threads cannot be started.
    pub fn start(&self, n_workers: usize, options: PoolOptions) -> Result<Arc<Epoch<W>>, Error> {
        self.start_epoch(n_workers, options, true)
    }

    /// The live epoch, whatever its worker count, or a fresh one of
    /// `n_workers` if none is live (for counting in a behavior when the
    /// last epoch was retired).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), but never [`Error::AlreadyRunning`].
    pub fn ensure_started(&self, n_workers: usize, options: PoolOptions) -> Result<Arc<Epoch<W>>, Error> {
        self.start_epoch(n_workers, options, false)
    }

    fn start_epoch(&self, n_workers: usize, options: PoolOptions, exact: bool) -> Result<Arc<Epoch<W>>, Error> {
        if let Some(live) = self.live(n_workers, exact)? {
            return Ok(live);
        }
        // Outside the lock: starting threads takes a while, and the host's
        // worker hooks may need what the caller holds.
        let pool = Pool::with_options(n_workers, Arc::new(EpochWorkers(Arc::clone(&self.workers))), options)?;
        let dispatcher =
            Box::new(Dispatcher { pool, n_workers, home: Arc::clone(&self.home), keep_alive: KeepAlive::new() });
        let fresh = Arc::new(Epoch { terminator: Terminator::new(), dispatcher });
        let mut current = self.current.write().unpoisoned();
        if let Some(live) = current.as_ref().filter(|epoch| !epoch.is_closed()) {
            // Another thread started one meanwhile: `fresh` stops (dropped
            // below, outside the lock, which joins its idle workers).
            let live = Arc::clone(live);
            drop(current);
            drop(fresh);
            return Self::same_count(live, n_workers, exact);
        }
        if self.home.shut_down.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        // The epoch replaced (a closed one) is dropped after the lock: if
        // this were its last handle, dropping it joins its pool.
        let replaced = current.replace(Arc::clone(&fresh));
        drop(current);
        drop(replaced);
        Ok(fresh)
    }

    /// The live epoch if it has `n_workers` (or any count, unless
    /// `exact`); `None` if none is live.
    fn live(&self, n_workers: usize, exact: bool) -> Result<Option<Arc<Epoch<W>>>, Error> {
        if self.home.shut_down.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        match self.current().filter(|epoch| !epoch.is_closed()) {
            Some(live) => Self::same_count(live, n_workers, exact).map(Some),
            None => Ok(None),
        }
    }

    fn same_count(live: Arc<Epoch<W>>, n_workers: usize, exact: bool) -> Result<Arc<Epoch<W>>, Error> {
        if !exact || live.n_workers() == n_workers {
            Ok(live)
        } else {
            Err(Error::AlreadyRunning { live: live.n_workers(), asked: n_workers })
        }
    }

    /// Closes the current epoch if nothing is in flight on it (or it is
    /// closed already) and makes it no longer current; the caller joins it.
    /// The next [`ensure_started`](Self::ensure_started) starts a fresh one.
    pub fn retire_if_idle(&self) -> Retired<W> {
        let Some(epoch) = self.current() else { return Retired::NoEpoch };
        // Closed already: another thread is retiring it (or the engine shut
        // down).
        if !epoch.close_if_idle() {
            return Retired::Busy;
        }
        let mut current = self.current.write().unpoisoned();
        // Dropped after the lock (the caller still holds `epoch` anyway).
        let replaced =
            if current.as_ref().is_some_and(|live| Arc::ptr_eq(live, &epoch)) { current.take() } else { None };
        drop(current);
        drop(replaced);
        Retired::Retired(epoch)
    }

    /// In a forked child, whose only thread is the forking one: forgets the
    /// current epoch without joining it (its workers are the parent's, so a
    /// join would wait forever) and the main-side behaviors queued at the
    /// fork (they run in the parent). Never blocks on a lock another thread
    /// held at the fork, if the host held the engine's locks across it
    /// ([`hold`](Self::hold)).
    pub fn forget_after_fork(&self) {
        if let Some(epoch) = self.current.write().unpoisoned().take() {
            std::mem::forget(epoch);
        }
        self.home.main.hold().forget_queued();
    }

    /// Takes the engine's locks (the current epoch's, then the main
    /// queue's) and holds them until the guard drops, for a `fork` handler:
    /// a lock held by another thread at the fork stays held in the child.
    /// Their holders wait for nothing while they hold them.
    pub fn hold(&self) -> EngineHold<'_, W> {
        EngineHold { _current: self.current.write().unpoisoned(), _main: self.home.main.hold() }
    }

    /// Counts a behavior in on the live epoch; never starts one.
    ///
    /// # Errors
    ///
    /// [`Error::ShutDown`] when no epoch is live (none started, retired, or
    /// the engine shut down).
    pub fn count_in(&self) -> Result<Ticket<W>, Error> {
        let current = self.current.read().unpoisoned();
        let epoch = current.as_ref().ok_or(Error::ShutDown)?;
        // Under the lock, the slot keeps the epoch alive; the count does
        // from here on.
        if let Some(ticket) = epoch.try_count_in() {
            return Ok(ticket);
        }
        // The refusal may let go of the host's callbacks: not under the lock.
        let epoch = Arc::clone(epoch);
        drop(current);
        Err(epoch.refused())
    }

    /// Schedules `payload` to run once it holds every cown in `cowns`
    /// (duplicates allowed), counted by `ticket`: on the home thread if
    /// `flags` has [`PINNED`] or the epoch has no workers, else on a worker.
    ///
    /// # Safety
    ///
    /// Every cown in `cowns` must outlive the behavior: the payload must
    /// own a handle to each until [`Payload::released`] (`boc_core::schedule`'s
    /// contract). The dispatcher is the ticket's epoch, which the behavior's
    /// count keeps alive.
    pub unsafe fn schedule<'c, P: Payload>(
        &self,
        ticket: Ticket<W>,
        cowns: impl ExactSizeIterator<Item = &'c CownHeader>,
        payload: P,
        flags: u32,
    ) {
        // A local `Arc` keeps the epoch alive for the call.
        let epoch = ticket.epoch_arc();
        // SAFETY: the caller's contract, passed on.
        unsafe { epoch.schedule(ticket, cowns, payload, flags) };
    }

    /// [`schedule`](Self::schedule), returning a [`Watch`] on the behavior,
    /// whose payload is a [`Counted<P>`].
    ///
    /// # Safety
    ///
    /// As for [`schedule`](Self::schedule).
    pub unsafe fn schedule_watched<'c, P: Payload>(
        &self,
        ticket: Ticket<W>,
        cowns: impl ExactSizeIterator<Item = &'c CownHeader>,
        payload: P,
        flags: u32,
    ) -> Watch {
        // A local `Arc` keeps the epoch alive for the call.
        let epoch = ticket.epoch_arc();
        // SAFETY: the caller's contract, passed on.
        unsafe { epoch.schedule_watched(ticket, cowns, payload, flags) }
    }

    /// Runs `payload` on the home thread as a main-side behavior with no
    /// cowns, counted in on the live epoch (so waits wait for it) and
    /// signalled like any main-side work (the waker, the descriptor): a
    /// pinned value whose last handle died elsewhere goes home this way.
    /// Gives the payload back when no epoch is live.
    ///
    /// # Errors
    ///
    /// The payload itself, when nothing can be counted in.
    pub fn send_home<P: Payload>(&self, payload: P) -> Result<(), P> {
        let Ok(ticket) = self.count_in() else { return Err(payload) };
        // SAFETY: an empty request set.
        unsafe { self.schedule(ticket, std::iter::empty(), payload, PINNED) };
        Ok(())
    }

    /// Runs ready main-side behaviors on the home thread with `runner`,
    /// within `budget` (`MainQueue::pump`), each counted out once done.
    ///
    /// # Errors
    ///
    /// As `MainQueue::pump`: refused off the home thread or inside a pump;
    /// stopped by a runner's `Outcome::Stop`.
    pub fn pump<R: MainRunner<Ready>>(&self, runner: &R, budget: Budget) -> Result<PumpReport, PumpError> {
        self.home.main.pump(&Scoped(runner), budget)
    }

    /// Behaviors counted in on the live epoch and not finished.
    pub fn n_in_flight(&self) -> usize {
        self.current().map_or(0, |epoch| epoch.n_in_flight())
    }

    /// Whether the calling thread is a worker of the live epoch.
    pub fn is_worker_thread(&self) -> bool {
        self.current().is_some_and(|epoch| epoch.is_worker_thread())
    }

    /// Waits off the home thread until the live epoch's count is zero, or
    /// `timeout` passes (`None`: no timeout); true if it reached zero.
    pub fn wait_idle(&self, timeout: Option<Duration>) -> bool {
        self.current().is_none_or(|epoch| epoch.terminator.wait_idle(timeout))
    }

    /// Refuses every later [`count_in`](Self::count_in) and
    /// [`start`](Self::start). Behaviors in flight go on: their count keeps
    /// the epoch alive, and the count-out that takes a shut-down engine's
    /// count to zero lets go of the host's callbacks (which may own a
    /// handle to the engine).
    pub fn shut_down(&self) {
        self.home.shut_down.store(true, Ordering::SeqCst);
        let Some(epoch) = self.current() else {
            self.home.release_callbacks();
            return;
        };
        epoch.close();
        // Nothing in flight: no count-out will come.
        if self.home.main.count_out(|| epoch.terminator.count() == 0) {
            epoch.after_zero();
        }
    }

    /// After [`shut_down`](Self::shut_down) and a wait that saw nothing in
    /// flight: joins the live epoch's workers (on a worker it only signals
    /// them), drops the main queue's leftovers on this thread, and lets go
    /// of the host's callbacks.
    pub fn stop(&self) {
        if let Some(epoch) = self.current() {
            epoch.join();
        }
        self.home.main.clear();
        self.home.release_callbacks();
    }

    /// An identity for the engine, for checking that a pinned cown is
    /// scheduled on the engine whose home thread owns it.
    pub fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

/// An engine dropped with its epoch open (a host that never shut it down)
/// closes it first, so the behaviors in flight keep it alive (module docs).
impl<W: Runner<Ready>> Drop for Engine<W> {
    fn drop(&mut self) {
        if let Some(epoch) = self.current.get_mut().unpoisoned().take() {
            epoch.close();
        }
    }
}

impl<W: Runner<Ready>> std::fmt::Debug for Engine<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("n_in_flight", &self.n_in_flight()).finish_non_exhaustive()
    }
}

/// [`Engine::hold`]'s guard.
#[must_use = "the engine's locks are released as soon as the guard drops"]
pub struct EngineHold<'a, W: Runner<Ready>> {
    _current: std::sync::RwLockWriteGuard<'a, Option<Arc<Epoch<W>>>>,
    _main: boc_pin::Hold<'a, Ready>,
}

impl<W: Runner<Ready>> std::fmt::Debug for EngineHold<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHold").finish_non_exhaustive()
    }
}

/// The facade's workers: plain threads that run each behavior.
#[derive(Debug, Default)]
pub struct PlainWorkers;

impl Runner<Ready> for PlainWorkers {
    fn run(&self, behavior: Ready) {
        behavior.run();
    }
}
