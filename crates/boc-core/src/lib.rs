//! The core of behavior-oriented concurrency: cowns, behaviors and the
//! lock-free two-phase-locking protocol that runs a behavior only once it
//! holds every cown of its request set.
//!
//! No threads and no scheduler live here. A runtime embeds a [`CownHeader`]
//! in each of its cowns, gives [`schedule`] a [`Payload`] (what a behavior
//! carries) and a [`Dispatch`] (where a ready behavior goes), and runs the
//! [`Ready`] behaviors it is handed. Behaviors that share a cown never
//! overlap and run in the order they were scheduled; behaviors over
//! disjoint cowns may run in parallel; no set of behaviors can deadlock.
//!
//! The protocol, with the memory-ordering argument for every atomic, is in
//! `PROTOCOL.md` next to this crate's sources.
//!
//! ```
//! use boc_core::{CownHeader, Dispatch, Payload, Ready, schedule};
//! use std::sync::mpsc;
//!
//! /// Dispatches ready behaviors into a channel drained by this thread.
//! struct Queue(mpsc::Sender<Ready>);
//! // mpsc::Sender is Sync since Rust 1.72.
//! impl Dispatch for Queue {
//!     fn dispatch(&self, behavior: Ready) { self.0.send(behavior).unwrap() }
//! }
//! struct Hello;
//! impl Payload for Hello {
//!     fn run(&mut self) { println!("hello from a behavior") }
//! }
//!
//! let (tx, rx) = mpsc::channel();
//! let queue = Queue(tx);
//! let cown = CownHeader::new();
//! // SAFETY: `cown` and `queue` outlive the behavior, run below.
//! unsafe { schedule([&cown], Hello, 0, &queue) };
//! rx.recv().unwrap().run();
//! assert!(cown.is_idle());
//! ```

mod alloc;
mod behavior;
mod cown;
mod primitive;
mod request;

#[cfg(all(test, boc_loom))]
mod loom_tests;
#[cfg(test)]
mod tests;

pub use behavior::{Dispatch, Payload, Ready, Watch, schedule, schedule_watched};
pub use cown::{CownHeader, Held};
