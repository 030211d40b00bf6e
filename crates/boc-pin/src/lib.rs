//! Main-thread affinity for behavior-oriented concurrency: the main-side
//! queue of behaviors that must run on the *home thread* (the thread that
//! created the runtime), the cooperative pump that runs them there, the
//! waker that tells an event loop to pump, and the watchdog that reports a
//! forgotten pump.
//!
//! Generic over the task type and free of any runtime: a runtime classifies
//! each ready behavior with [`Affinity::classify`], sends the worker ones to
//! its pool and [`push`](MainQueue::push)es the main ones here, and its home
//! thread runs them with [`pump`](MainQueue::pump) through a [`MainRunner`].
//!
//! * [`MainQueue`]: multi-producer, single-consumer; any thread pushes, the
//!   home thread pumps. Pump errors are typed: off the home thread, or
//!   re-entrant from inside a task ([`Error`], [`PumpError`]).
//! * [`Budget`] / [`PumpReport`]: a count and a deadline that gates starting
//!   each task; no budget drains the queue, including tasks pushed during the
//!   call. The contract is in the `pump` module docs.
//! * Waker: a callback ([`MainQueue::set_waker`]) and a readable file
//!   descriptor ([`MainQueue::waker_fd`]), signalled when the queue goes
//!   from empty to non-empty and cleared by pump, with no lost wakeup (the
//!   protocol and its argument are in the `waker` module docs, and loom
//!   checks it).
//! * [`MainQueue::wait_for_work`] / [`MainQueue::wake`]: the home thread
//!   blocks, without polling, until work arrives or it is woken.
//! * [`MainQueue::wait_until`] / [`MainQueue::count_out`]: the home thread's
//!   whole wait loop ([`HomeWait`] says what it waits for), and the count-out
//!   that wakes it when the last work in flight is done.
//! * Watchdog ([`WatchdogConfig`], [`StarvationReport`]): a thread that
//!   reports, once per starvation episode, work that waits longer than a
//!   threshold without being pumped, even if pump is never called.
//!
//! See also `README.md` next to this crate's `Cargo.toml`.
//!
//! ```
//! use boc_pin::{Budget, MainConfig, MainQueue, Outcome};
//! use std::sync::Arc;
//!
//! let queue = Arc::new(MainQueue::new(MainConfig::default())?);
//! let workers: Vec<_> = (0..2)
//!     .map(|worker_idx| {
//!         let queue = Arc::clone(&queue);
//!         std::thread::spawn(move || queue.push(worker_idx, Some("from a worker".into())))
//!     })
//!     .collect();
//! for worker in workers {
//!     worker.join().unwrap();
//! }
//! // On the home thread: run them here.
//! let report = queue.pump(&|_worker_idx: i32| Outcome::Ok, Budget::unbounded()).unwrap();
//! assert_eq!(report.executed, 2);
//! # Ok::<(), boc_pin::Error>(())
//! ```

mod affinity;
mod callback;
mod error;
mod home;
mod primitive;
mod pump;
mod queue;
mod waker;
mod watchdog;

#[cfg(all(test, boc_loom))]
mod loom_tests;
#[cfg(all(test, not(boc_loom)))]
mod tests;

pub use crate::affinity::Affinity;
pub use crate::error::{Error, PumpError};
pub use crate::home::{HomeWait, WaitEnd};
pub use crate::pump::{Budget, MainRunner, Outcome, PumpReport};
pub use crate::queue::{Hold, MainConfig, MainQueue, WaitOutcome};
pub use crate::watchdog::{MAX_REPORTED_LABELS, StarvationReport, WatchdogConfig};
