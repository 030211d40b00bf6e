//! The facade's error type.

/// Everything that can go wrong when using the runtime.
///
/// ```
/// # fn main() -> Result<(), boc::Error> {
/// let rt = boc::Runtime::builder().workers(1).build()?;
/// let failed = rt.when(&boc::Cown::new(()), |_| -> u8 { panic!("no") });
/// rt.quiesce()?;
/// match failed.take() {
///     Err(boc::Error::Panicked(message)) => assert_eq!(message, "no"),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The worker threads could not be started.
    #[error("cannot start the worker pool: {0}")]
    Pool(#[from] boc_sched::Error),
    /// A main-thread operation was refused (pump off the home thread or
    /// nested inside a main-side behavior), or its machinery (the waker's
    /// descriptor, the watchdog thread) could not be set up.
    #[error(transparent)]
    Pin(#[from] boc_pin::Error),
    /// A pinned cown was created, or its value reached, off its runtime's
    /// home thread.
    #[error(
        "a pinned cown's value can only be created or reached on its runtime's home thread (the thread that built the runtime)"
    )]
    NotHomeThread,
    /// A pinned cown was scheduled on a runtime other than the one whose
    /// home thread owns it.
    #[error("a pinned cown was scheduled on another runtime than the one it was created for")]
    ForeignPinnedCown,
    /// Workers were asked for while a pool with another count runs (an
    /// engine runs one pool at a time; wait for it to go idle first).
    #[error("the runtime already runs {live} workers, so it cannot start {asked}; wait for it to go idle first")]
    AlreadyRunning {
        /// The running pool's worker count.
        live: usize,
        /// The count asked for.
        asked: usize,
    },
    /// The runtime was dropped; its handles can no longer schedule.
    #[error("the runtime has shut down; no behavior can be scheduled on it")]
    ShutDown,
    /// A tuple request set named one cown twice, which would give the body
    /// two `&mut` to one value. Slices and `Vec`s of cowns allow duplicates.
    #[error("cown {key} appears more than once in a tuple request set; use a slice request set to name a cown twice")]
    DuplicateCown {
        /// The key of the duplicated cown.
        key: u64,
    },
    /// A cown was not idle when accessed from outside a behavior: a
    /// behavior holds it or waits for it. Schedule a behavior instead, or
    /// try again after [`quiesce`](crate::Handle::quiesce).
    #[error("the cown is busy: a behavior holds it or waits for it; schedule a behavior on it, or quiesce first")]
    Busy,
    /// The behavior has not finished yet.
    #[error("the behavior has not finished yet")]
    NotFinished,
    /// The behavior was dropped without running (its runtime shut down
    /// before the behavior could get its cowns).
    #[error("the behavior was dropped without running")]
    NotRun,
    /// The result was taken before.
    #[error("the result of this behavior was already taken")]
    AlreadyTaken,
    /// The body panicked; the message is the panic's, when it was a string.
    #[error("the behavior panicked: {0}")]
    Panicked(String),
    /// Waiting from a thread that the wait itself would need (a worker of
    /// this runtime, inside a behavior) could never finish.
    #[error("cannot wait for quiescence from inside a behavior of the same runtime")]
    WaitInsideBehavior,
    /// Waiting from inside a `try_with` closure: the thread holds a cown,
    /// and the behaviors queued behind it could only run after the wait.
    #[error(
        "cannot wait for quiescence inside a try_with closure: the cown it holds blocks the behaviors queued on it; wait after the closure returns"
    )]
    WaitWhileHolding,
    /// A timed wait ran out.
    #[error("timed out after {0:?} with {1} behaviors still in flight")]
    Timeout(std::time::Duration, usize),
}
