//! The crate's error type.

/// Why a [`Pool`](crate::Pool) could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused to start a worker thread.
    #[error("cannot spawn worker thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// More workers than the idle protocol can count.
    #[error("too many workers: {requested} requested, at most {max} supported")]
    TooManyWorkers {
        /// The number asked for.
        requested: usize,
        /// The largest supported number.
        max: usize,
    },
}
