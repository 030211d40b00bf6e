//! Classification of a request set: does the behavior run on the home
//! thread (*main*) or on the worker pool?

/// Where a ready behavior runs.
///
/// Decided once per behavior, when it becomes ready (at dispatch), so the
/// core acquisition protocol is untouched: a behavior is [`Affinity::Main`]
/// iff its request set holds at least one pinned cown, or there are no
/// workers at all.
///
/// ```
/// use boc_pin::Affinity;
///
/// // Request set of two ordinary cowns and one pinned cown:
/// assert_eq!(Affinity::classify([false, true, false], 4), Affinity::Main);
/// assert_eq!(Affinity::classify([false, false], 4), Affinity::Worker);
/// // `workers=0`: everything runs on the home thread.
/// assert_eq!(Affinity::classify([false], 0), Affinity::Main);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Affinity {
    /// On the home thread, through the [`MainQueue`](crate::MainQueue).
    Main,
    /// On the worker pool.
    Worker,
}

impl Affinity {
    /// Classifies a request set given, for each of its cowns, whether it is
    /// pinned, and the number of worker threads.
    pub fn classify(is_pinned: impl IntoIterator<Item = bool>, n_workers: usize) -> Self {
        if n_workers == 0 || is_pinned.into_iter().any(|is_pinned| is_pinned) { Self::Main } else { Self::Worker }
    }
}
