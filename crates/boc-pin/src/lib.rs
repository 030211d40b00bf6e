//! Main-thread affinity for behavior-oriented concurrency: classification of
//! request sets, the main-side queue, the pump, the waker and the watchdog.
//!
//! This crate is a skeleton in this release; the pinned-cown work fills it in.
