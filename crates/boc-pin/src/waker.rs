//! The waker: how an event loop that owns the home thread learns that
//! main-side work is pending, without polling. Two forms, signalled at the
//! same moments: a callback ([`MainQueue::set_waker`]) and a readable file
//! descriptor ([`MainQueue::waker_fd`], one end of a non-blocking Unix
//! socket pair; the other end is written).
//!
//! # Contract
//!
//! * The waker is *signalled* (a byte written to the socket, then the
//!   callback called) when a push outside a pump makes the queue go from
//!   empty to non-empty, and when a pump returns leaving tasks queued (a
//!   budget ran out, or a task stopped it, or a push landed during the
//!   pump), so the event loop comes back for them.
//! * Pump *clears* the descriptor (reads it dry) as it returns. After a
//!   pump that leaves the queue empty, the descriptor is not readable,
//!   unless a push raced with the end of the pump.
//! * No lost wakeup: whenever the queue is non-empty outside a pump, the
//!   descriptor is readable (or a signal is on its way). Spurious
//!   wakeups are possible (a readable descriptor, an empty queue): pumping
//!   an empty queue is cheap and clears it.
//!
//! # Protocol
//!
//! The queue's lock `L` and the socket are the only shared state involved.
//!
//! * **P1.** A producer pushes under `L` and notes whether the queue was
//!   empty (the transition). After releasing `L`, if it made the
//!   transition, it signals: writes a byte (a full socket buffer is
//!   already readable and is left as it is), then calls the callback.
//! * **C1.** When pump is done taking tasks, the home thread clears: reads
//!   the socket until it would block.
//! * **C2.** Then it re-checks under `L`: if the queue is not empty, it
//!   signals as in P1.
//!
//! *Argument.* Take a pump's clear C1 and its re-check C2. If C2 sees a
//! non-empty queue, it signals after C1, so the descriptor is readable and
//! only a later pump's C1 can clear it, and that pump has its own C2. If C2
//! sees an empty queue, the next push to take `L` after C2 finds the queue
//! empty (the home thread is the only one that takes tasks, and it is done),
//! so it makes the transition and signals after its critical section: C1 →
//! C2 → (`L`) → P1's critical section → P1's write, so the write comes after
//! the clear in the socket's own order (the kernel serializes operations on
//! a socket; loom models the socket as a sequentially consistent counter).
//! Either way, work queued after C2 has a byte waiting for it. The only
//! window where the queue is non-empty and the descriptor clear is between
//! a producer's critical section and its write, and that producer is about
//! to write.
//!
//! *Skipping the signal during a pump.* A push that makes the transition
//! while a pump runs does not signal: it reads `is_pumping` under `L`, and
//! the pump stores `false` there before C1, so C2's lock orders the two.
//! A push that reads `true` took `L` before C2, which sees its task (unless
//! pump ran it); a push after C2 reads `false` and signals. This matters
//! for the commonest main-side pattern, a chain of behaviors on one pinned
//! cown: each link becomes ready, on the home thread inside pump, when the
//! previous one releases the cown, and would otherwise cost a write, a read
//! and a callback (an event-loop round trip in Python) per link.
//!
//! [`MainQueue::clear`] ends with C1 and C2 too. The argument does not need
//! a single clearer: every clear is followed by its own re-check.
//!
//! *Lazy descriptor.* The socket pair is created under `L`, by the first
//! [`MainQueue::waker_fd`], which signals it at once if the queue is not
//! empty. A push whose critical section comes later sees the descriptor
//! (the lock orders the creation before it); one that comes earlier left
//! the queue non-empty, which the creation saw.
//!
//! `loom_*` models in `loom_tests.rs` check this protocol with the socket
//! replaced by a counter of unread bytes (same code, `Signal` is the only
//! part that changes).

use crate::callback;
#[cfg(all(unix, not(boc_loom)))]
use crate::error::Error;
use crate::queue::MainQueue;
#[cfg(all(unix, not(boc_loom)))]
use std::os::fd::BorrowedFd;
use std::sync::Arc;

impl<T: Send + 'static> MainQueue<T> {
    /// Sets (or with `None`, removes) the callback signalled when main-side
    /// work becomes pending.
    ///
    /// It is called from whichever thread pushes a task into an empty queue
    /// (a worker, usually), and from the home thread when a pump returns
    /// with tasks left. It must be quick, should not panic, and should only
    /// post a "pump soon" event to the host loop (`call_soon_threadsafe`,
    /// `PostMessage`, ...). A panic in it is caught and reported on standard
    /// error, never unwinding into the push that signalled it. If tasks are
    /// queued when it is set, it is called once at once, so no pending work
    /// goes unannounced.
    ///
    /// ```
    /// use boc_pin::{Budget, MainConfig, MainQueue, Outcome};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let queue = MainQueue::new(MainConfig::default())?;
    /// let n_signals = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&n_signals);
    /// queue.set_waker(Some(Box::new(move || {
    ///     counter.fetch_add(1, Ordering::Relaxed);
    /// })));
    /// queue.push(1, None);
    /// queue.push(2, None); // not a transition: no second signal
    /// assert_eq!(n_signals.load(Ordering::Relaxed), 1);
    /// queue.pump(&|_: i32| Outcome::Ok, Budget::unbounded()).unwrap();
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    pub fn set_waker(&self, callback: Option<Box<dyn Fn() + Send + Sync>>) {
        let callback: Option<Arc<dyn Fn() + Send + Sync>> = callback.map(Arc::from);
        let mut state = self.shared.lock();
        let previous = std::mem::replace(&mut state.waker, callback.clone());
        let call_now = !state.entries.is_empty();
        drop(state);
        // Outside the lock: dropping a callback may run arbitrary code.
        drop(previous);
        if let Some(callback) = callback.filter(|_| call_now) {
            callback::call("the pump waker", || callback());
        }
    }

    /// A file descriptor that is readable while main-side work is pending,
    /// for event loops (`asyncio`'s `add_reader`, Tk's file handlers,
    /// `poll`/`epoll`): register it, and pump when it becomes readable.
    ///
    /// Created on first call (a non-blocking Unix socket pair), readable at
    /// once if tasks are queued, and owned by the queue: it closes when the
    /// queue is dropped, so unregister it from the loop first. Do not read
    /// from it: pump clears it. See the module docs of `waker` for the
    /// exact contract.
    ///
    /// ```
    /// use boc_pin::{Budget, MainConfig, MainQueue, Outcome};
    /// use std::os::fd::AsRawFd;
    ///
    /// let queue = MainQueue::new(MainConfig::default())?;
    /// let fd = queue.waker_fd()?.as_raw_fd();
    /// assert!(fd >= 0);
    /// queue.push("work", None);
    /// // ... the event loop sees `fd` readable and pumps:
    /// queue.pump(&|_: &str| Outcome::Ok, Budget::unbounded()).unwrap();
    /// # Ok::<(), boc_pin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::WakerFd`] if the socket pair cannot be created or made
    /// non-blocking (out of file descriptors, usually).
    #[cfg(all(unix, not(boc_loom)))]
    pub fn waker_fd(&self) -> Result<BorrowedFd<'_>, Error> {
        if let Some(fd) = self.signal.fd() {
            return Ok(fd);
        }
        // Created under the lock: see "Lazy descriptor" in the module docs.
        let state = self.shared.lock();
        self.signal.create().map_err(Error::WakerFd)?;
        if !state.entries.is_empty() {
            self.signal.raise();
        }
        drop(state);
        Ok(self.signal.fd().expect("the waker socket was just created"))
    }

    /// Signals the waker: the write of P1 and C2, then the callback. A
    /// panicking callback is caught and reported: a push may be signalling
    /// from the middle of a release (a worker dispatching the behavior its
    /// release made ready), which must go on to the behavior's other cowns.
    pub(crate) fn signal_waker(&self, callback: Option<&(dyn Fn() + Send + Sync)>) {
        self.signal.raise();
        if let Some(callback) = callback {
            callback::call("the pump waker", callback);
        }
    }

    /// Steps C1 and C2: clears the waker, then signals it again if tasks
    /// are queued. Returns how many are.
    pub(crate) fn rearm_waker(&self) -> usize {
        self.signal.clear();
        let state = self.shared.lock();
        let n_pending = state.entries.len();
        let callback = if n_pending > 0 { state.waker.clone() } else { None };
        drop(state);
        if n_pending > 0 {
            self.signal_waker(callback.as_deref());
        }
        n_pending
    }
}

#[cfg(not(boc_loom))]
pub(crate) use self::socket::Signal;

#[cfg(boc_loom)]
pub(crate) use self::model::Signal;

/// The real waker: a non-blocking Unix socket pair, created on demand.
#[cfg(not(boc_loom))]
mod socket {
    #[cfg(unix)]
    use std::io::{self, ErrorKind, Read, Write};
    #[cfg(unix)]
    use std::os::fd::{AsFd, BorrowedFd};
    #[cfg(unix)]
    use std::os::unix::net::UnixStream;
    #[cfg(unix)]
    use std::sync::OnceLock;

    /// The readable end handed out, and the end producers write to.
    #[cfg(unix)]
    struct Pair {
        reader: UnixStream,
        writer: UnixStream,
    }

    /// The waker's file descriptor, or nothing until someone asks for it.
    pub(crate) struct Signal {
        /// Set once, under the queue's lock (`MainQueue::waker_fd`); read
        /// without it by `raise` and `clear` (the lock orders the set before
        /// any push that could need it, see the module docs).
        #[cfg(unix)]
        pair: OnceLock<Pair>,
    }

    impl Signal {
        pub(crate) fn new() -> Self {
            Self {
                #[cfg(unix)]
                pair: OnceLock::new(),
            }
        }

        /// The readable end, if created.
        #[cfg(unix)]
        pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
            self.pair.get().map(|pair| pair.reader.as_fd())
        }

        /// Creates the pair if there is none. Call under the queue's lock.
        #[cfg(unix)]
        pub(crate) fn create(&self) -> io::Result<()> {
            if self.pair.get().is_none() {
                let (reader, writer) = UnixStream::pair()?;
                reader.set_nonblocking(true)?;
                writer.set_nonblocking(true)?;
                // Cannot fail: creation is serialized by the queue's lock.
                let _ = self.pair.set(Pair { reader, writer });
            }
            Ok(())
        }

        /// Makes the descriptor readable (no-op until it exists).
        pub(crate) fn raise(&self) {
            #[cfg(unix)]
            if let Some(pair) = self.pair.get() {
                loop {
                    match (&pair.writer).write(&[1]) {
                        Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                        // A full buffer (WouldBlock) is readable already;
                        // nothing else can fail while the reader lives.
                        _ => break,
                    }
                }
            }
        }

        /// Reads the descriptor dry (no-op until it exists).
        pub(crate) fn clear(&self) {
            #[cfg(unix)]
            if let Some(pair) = self.pair.get() {
                let mut buf = [0u8; 64];
                loop {
                    match (&pair.reader).read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => continue,
                        Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                        // WouldBlock: dry.
                        Err(_) => break,
                    }
                }
            }
        }
    }
}

/// The model of the waker under loom: a count of unread bytes, changed by
/// sequentially consistent operations, as the kernel serializes the
/// operations on one socket.
#[cfg(boc_loom)]
mod model {
    use crate::primitive::{AtomicUsize, Ordering};

    pub(crate) struct Signal {
        /// Bytes written and not yet read. Incremented (SeqCst) by `raise`
        /// on any thread; swapped to zero (SeqCst) by `clear` on the home
        /// thread; loaded (SeqCst) by the models' final assertions.
        n_unread: AtomicUsize,
    }

    impl Signal {
        pub(crate) fn new() -> Self {
            Self { n_unread: AtomicUsize::new(0) }
        }

        pub(crate) fn raise(&self) {
            self.n_unread.fetch_add(1, Ordering::SeqCst);
        }

        pub(crate) fn clear(&self) {
            self.n_unread.swap(0, Ordering::SeqCst);
        }

        /// Whether a byte is waiting (the models' assertions).
        #[cfg(test)]
        pub(crate) fn is_raised(&self) -> bool {
            self.n_unread.load(Ordering::SeqCst) > 0
        }
    }
}
