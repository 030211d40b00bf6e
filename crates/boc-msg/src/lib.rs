//! Communication between behaviors, and between behaviors and the threads
//! around them, that does not go through a cown: tagged message queues and
//! a key/value noticeboard for read-mostly shared state.
//!
//! * [`Mailbox`]: any thread [`send`](Mailbox::send)s a message under a
//!   *tag*; any thread [`receive`](Mailbox::receive)s the oldest message
//!   among a set of tags, waiting (with an optional timeout) until one
//!   arrives, or [`drain`](Mailbox::drain)s them all. A send wakes only the
//!   receivers waiting on its tag.
//! * [`Noticeboard`]: a map whose readers take an immutable [`Snapshot`]
//!   (an `Arc` clone) and whose writers copy the map only while a snapshot
//!   of it is still alive. [`update`](Noticeboard::update) is an atomic
//!   read-modify-write of one key whose function runs without the board's
//!   lock, retried only when another write to the same key lands meanwhile;
//!   it says what to do with a [`Change`].
//!
//! Both are plain `Mutex`-protected structures, generic over the key and
//! the value, with no threads of their own and no dependency on the rest of
//! boc: a runtime (or its Python binding) keeps one of each, process wide.
//! The cost models are in the `mailbox` and `noticeboard` module docs.
//!
//! ```
//! use boc_msg::{Change, Mailbox, Noticeboard};
//! use std::sync::Arc;
//! use std::thread;
//!
//! let mailbox = Arc::new(Mailbox::new());
//! let board = Arc::new(Noticeboard::new());
//! board.write("scale", 10);
//! let workers: Vec<_> = (0..4)
//!     .map(|worker_idx| {
//!         let (mailbox, board) = (Arc::clone(&mailbox), Arc::clone(&board));
//!         thread::spawn(move || {
//!             let scale = board.read("scale").unwrap_or(1);
//!             board.update("done", |done| Change::Set(done.copied().unwrap_or(0) + 1));
//!             mailbox.send("result", worker_idx * scale);
//!         })
//!     })
//!     .collect();
//! let mut results: Vec<_> = (0..4).map(|_| mailbox.receive(&["result"], None).unwrap().1).collect();
//! results.sort();
//! assert_eq!(results, [0, 10, 20, 30]);
//! for worker in workers {
//!     worker.join().unwrap();
//! }
//! assert_eq!(board.read("done"), Some(4));
//! ```

mod mailbox;
mod noticeboard;
mod primitive;

pub use mailbox::{Hold, Mailbox};
pub use noticeboard::{Change, Noticeboard, Snapshot};
