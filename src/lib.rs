//! boc: behavior-oriented concurrency.
//!
//! Shared state lives in [`Cown`]s (concurrently-owned values). Work is a
//! *behavior*: a closure plus the set of cowns it needs, scheduled with
//! [`Handle::when`]. A behavior runs once it holds every cown of its set,
//! exclusively; behaviors that share a cown run in the order they were
//! scheduled; there are no locks in user code and no deadlocks among
//! behaviors. (A thread that *waits* for behaviors can still block itself
//! where they need it: waits inside a behavior or a `try_with` closure are
//! refused; two runtimes sharing a home thread and a cown are not detected,
//! see [`Handle::quiesce`].)
//!
//! ```
//! use boc::{Cown, Runtime};
//! # fn main() -> Result<(), boc::Error> {
//! let rt = Runtime::builder().workers(2).build()?;
//! let accounts: Vec<_> = (0..10).map(|_| Cown::new(100_i64)).collect();
//! for i in 0..1000 {
//!     let (from, to) = (&accounts[i % 10], &accounts[(i * 7 + 1) % 10]);
//!     if from != to {
//!         rt.when((from, to), |(from, to)| {
//!             *from -= 1;
//!             *to += 1;
//!         });
//!     }
//! }
//! let total = rt.when(&accounts, |slots| slots.iter().sum::<i64>());
//! rt.quiesce()?;
//! assert_eq!(total.take()?, 1000);
//! # Ok(()) }
//! ```
//!
//! The protocol is in `boc-core`, the worker pool in `boc-sched`, the home
//! thread's queue in `boc-pin`; [`engine`] assembles them into a runtime,
//! and [`Runtime`]/[`Handle`] are a typed layer over it.

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The user guide's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct GuideDoctests;

mod cown;
pub mod engine;
mod error;
mod pending;
mod pinned;
mod primitive;
mod runtime;
pub mod set;
mod unwind;

pub use boc_msg::{Change, Mailbox, Noticeboard, Snapshot};
pub use boc_pin::{Budget, PumpReport, StarvationReport, WatchdogConfig};
pub use cown::Cown;
pub use error::Error;
pub use pending::Pending;
pub use pinned::PinnedCown;
pub use runtime::{Builder, Handle, Runtime};
pub use set::{CownSet, Slots};
