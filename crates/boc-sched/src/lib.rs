//! boc's scheduler: a pool of worker threads with per-worker queues, work
//! stealing and parking, plus the terminator that counts behaviors in
//! flight. No Python, and nothing boc-specific: the pool runs any task type
//! through a [`Runner`], so another runtime can reuse it.
//!
//! * [`Pool`]: N workers, each with a FIFO deque and a "next" slot (a task
//!   spawned on a worker runs next on that worker, for producer locality),
//!   a shared injector for tasks spawned from outside, stealing between
//!   workers, and parking when idle (no CPU burned; no lost wakeups). See
//!   the `worker` and `idle` module docs for the search order and the
//!   parking protocol with its memory-ordering argument.
//! * [`Terminator`]: counts scheduled-but-unfinished behaviors;
//!   [`Terminator::wait_idle`] blocks until zero without polling.
//! * [`default_workers`]: `BOC_WORKERS`, or available parallelism minus one.
//!
//! A panic escaping [`Runner::run`] is caught by the pool and counted
//! ([`Pool::n_panics`]); the worker lives on.
//!
//! ```
//! use boc_sched::{Pool, Runner, Terminator};
//! use std::sync::Arc;
//!
//! /// Runs boxed closures and counts them down.
//! #[derive(Default)]
//! struct Closures {
//!     in_flight: Terminator,
//! }
//!
//! type Job = Box<dyn FnOnce() + Send>;
//!
//! impl Runner<Job> for Closures {
//!     fn run(&self, job: Job) {
//!         job();
//!         self.in_flight.decrement();
//!     }
//! }
//!
//! let runner = Arc::new(Closures::default());
//! let pool = Pool::new(2, runner.clone())?;
//! for i in 0..10 {
//!     runner.in_flight.increment();
//!     pool.spawn(Box::new(move || assert!(i < 10)));
//! }
//! assert!(runner.in_flight.wait_idle(None));
//! pool.shutdown();
//! # Ok::<(), boc_sched::Error>(())
//! ```

mod error;
mod idle;
mod keep_alive;
mod park;
mod pool;
mod primitive;
mod terminator;
mod worker;

#[cfg(all(test, boc_loom))]
mod loom_tests;

pub use crate::error::Error;
pub use crate::keep_alive::KeepAlive;
pub use crate::pool::{Pool, PoolOptions, Runner, default_workers};
pub use crate::terminator::Terminator;
