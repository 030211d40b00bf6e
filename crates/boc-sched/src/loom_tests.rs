//! loom models of the idle protocol (`idle.rs`): every interleaving, up to
//! the preemption bound, of spawners pushing onto a queue and notifying
//! while workers search, announce idle, re-check and park; and of the
//! keep-alive (`keep_alive.rs`, at the end).
//!
//! Run with
//! `RUSTFLAGS="--cfg boc_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p boc-sched --lib loom_`
//! (or `cargo xtask loom`).
//!
//! A lost wakeup shows up as a deadlock: the models never rely on shutdown
//! to wake a worker that should have been woken by a spawn, so if every
//! thread ends up blocked (a worker parked, the main thread waiting for the
//! task it never runs) loom reports it. The queue stands in for the
//! crossbeam queues: a count written with a release read-modify-write (as
//! crossbeam publishes a slot) and read by the re-check with a relaxed
//! load, so only the protocol's own fences can make a push visible.

use crate::idle::{Idle, Wake};
use crate::park::Parker;
use crate::primitive::{AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};
use crate::{KeepAlive, Terminator};
use loom::sync::Arc;
use loom::thread;

/// A queue of indistinguishable tasks.
struct Queue {
    n_tasks: AtomicUsize,
}

impl Queue {
    fn push(&self) {
        self.n_tasks.fetch_add(1, Ordering::Release);
    }

    fn try_take(&self) -> bool {
        let mut n_tasks = self.n_tasks.load(Ordering::Acquire);
        while n_tasks > 0 {
            match self.n_tasks.compare_exchange(n_tasks, n_tasks - 1, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => n_tasks = actual,
            }
        }
        false
    }

    fn is_empty(&self) -> bool {
        self.n_tasks.load(Ordering::Relaxed) == 0
    }
}

/// What the model threads share.
struct Model {
    idle: Idle,
    queue: Queue,
    is_shutdown: AtomicBool,
    /// Tasks run so far, with a condition variable for the main thread.
    n_ran: Mutex<usize>,
    ran: Condvar,
}

impl Model {
    fn new(parkers: &[Parker]) -> Arc<Self> {
        Arc::new(Self {
            idle: Idle::new(parkers.iter().map(|parker| parker.unparker().clone())),
            queue: Queue { n_tasks: AtomicUsize::new(0) },
            is_shutdown: AtomicBool::new(false),
            n_ran: Mutex::new(0),
            ran: Condvar::new(),
        })
    }

    fn spawn(&self) {
        self.queue.push();
        self.idle.notify_one();
    }

    /// The worker loop of `worker.rs`, reduced to one queue.
    fn work(&self, worker_idx: usize, parker: &Parker) {
        let mut searching = false;
        loop {
            if self.queue.try_take() {
                if searching {
                    searching = false;
                    self.idle.stop_searching(!self.queue.is_empty());
                }
                *self.n_ran.lock().unwrap() += 1;
                self.ran.notify_all();
                continue;
            }
            let wake = self.idle.park(
                worker_idx,
                searching,
                parker,
                || self.is_shutdown.load(Ordering::SeqCst),
                || !self.queue.is_empty(),
                |park| park(),
            );
            match wake {
                Wake::Work { searching: now } => searching = now,
                Wake::Exit => return,
            }
        }
    }

    /// Blocks until `n_tasks` tasks have run: deadlocks (and loom says so)
    /// if a wakeup was lost.
    fn wait_ran(&self, n_tasks: usize) {
        let mut n_ran = self.n_ran.lock().unwrap();
        while *n_ran < n_tasks {
            n_ran = self.ran.wait(n_ran).unwrap();
        }
    }

    fn shutdown(&self) {
        self.is_shutdown.store(true, Ordering::SeqCst);
        self.idle.notify_all();
    }
}

fn start_workers(n_workers: usize) -> (Arc<Model>, Vec<thread::JoinHandle<()>>) {
    let parkers: Vec<Parker> = (0..n_workers).map(|_| Parker::new()).collect();
    let model = Model::new(&parkers);
    let workers = parkers
        .into_iter()
        .enumerate()
        .map(|(worker_idx, parker)| {
            let model = Arc::clone(&model);
            thread::spawn(move || model.work(worker_idx, &parker))
        })
        .collect();
    (model, workers)
}

fn finish(model: &Model, workers: Vec<thread::JoinHandle<()>>, n_tasks: usize) {
    model.wait_ran(n_tasks);
    model.shutdown();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(*model.n_ran.lock().unwrap(), n_tasks);
    assert!(model.queue.is_empty());
}

/// One worker racing towards its park with one spawn from outside.
#[test]
fn loom_spawn_races_park() {
    loom::model(|| {
        let (model, workers) = start_workers(1);
        model.spawn();
        finish(&model, workers, 1);
    });
}

/// Two spawns from two threads onto one worker.
#[test]
fn loom_two_spawners_one_worker() {
    loom::model(|| {
        let (model, workers) = start_workers(1);
        let spawner = {
            let model = Arc::clone(&model);
            thread::spawn(move || model.spawn())
        };
        model.spawn();
        spawner.join().unwrap();
        finish(&model, workers, 2);
    });
}

/// Two workers parking while two tasks arrive: the searching gate must not
/// strand the second task.
#[test]
fn loom_two_workers_two_spawns() {
    loom::model(|| {
        let (model, workers) = start_workers(2);
        model.spawn();
        model.spawn();
        finish(&model, workers, 2);
    });
}

/// Shutdown racing a worker's park with nothing to do: the worker exits.
#[test]
fn loom_shutdown_races_park() {
    loom::model(|| {
        let (model, workers) = start_workers(1);
        model.shutdown();
        for worker in workers {
            worker.join().unwrap();
        }
    });
}

// The keep-alive (`keep_alive.rs`): the owner of a terminator, freed only
// once its count is zero and every `Arc` is gone, raced by count-outs, a
// close and a refused count-in. The owner's drop asserts that nothing is
// counted in on it any more (a use-after-free would come right after), and
// each model ends by checking that it was dropped (the keep-alive's cycle
// broken, not leaked).

/// Stands in for an epoch: a terminator, the keep-alive, and a flag set
/// when it is dropped.
struct Owner {
    terminator: Terminator,
    keep_alive: KeepAlive<Owner>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        assert_eq!(self.terminator.count(), 0, "an owner freed with work counted in on it");
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// An owner with `n_units` counted in, and its dropped flag.
fn owner(n_units: usize) -> (Arc<Owner>, Arc<AtomicBool>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let owner =
        Arc::new(Owner { terminator: Terminator::new(), keep_alive: KeepAlive::new(), dropped: Arc::clone(&dropped) });
    for _ in 0..n_units {
        assert!(owner.terminator.try_increment());
    }
    (owner, dropped)
}

/// Counts one unit out of the owner at `owner` as the engine does
/// (`Epoch::count_out`): no reference to it is kept but the held one.
fn count_out(owner: *const Owner) {
    // SAFETY: the caller's unit keeps the owner alive until the decrement.
    let held = unsafe { KeepAlive::count_out_or_hold(owner, &raw const (*owner).terminator) };
    let Some(held) = held else { return };
    if held.terminator.decrement() {
        let kept = held.keep_alive.release(&held.terminator);
        drop(kept);
    }
}

/// A raw pointer that crosses into a model thread (as a ticket does).
struct Unit(*const Owner);

// SAFETY: the owner is `Sync`; the pointer is only used to count out once.
unsafe impl Send for Unit {}

/// Two count-outs race the close and the drop of the owner's last outside
/// `Arc` (the engine's current slot): whichever of the three comes last
/// frees it, and none touches it afterwards.
#[test]
fn loom_count_outs_race_the_close() {
    loom::model(|| {
        let (owner, dropped) = owner(2);
        let counters: Vec<_> = (0..2)
            .map(|_| {
                let unit = Unit(Arc::as_ptr(&owner));
                thread::spawn(move || {
                    let unit = unit;
                    count_out(unit.0);
                })
            })
            .collect();
        owner.keep_alive.close(&owner.terminator, &owner);
        drop(owner);
        for counter in counters {
            counter.join().unwrap();
        }
        assert!(dropped.load(Ordering::SeqCst), "the keep-alive was never let go of");
    });
}

/// A count-in refused by the close, whose undo may be the decrement that
/// reaches zero (it then lets go, as `Epoch::refused` does), races the
/// last count-out.
#[test]
fn loom_refused_count_in_races_the_last_count_out() {
    loom::model(|| {
        let (owner, dropped) = owner(1);
        owner.keep_alive.close(&owner.terminator, &owner);
        let unit = Unit(Arc::as_ptr(&owner));
        let counter = thread::spawn(move || {
            let unit = unit;
            count_out(unit.0);
        });
        // The refused count-in holds an `Arc` (it counts in through one).
        let refused = Arc::clone(&owner);
        drop(owner);
        if refused.terminator.try_increment() {
            panic!("a closed terminator refuses");
        }
        if refused.terminator.count() == 0 {
            drop(refused.keep_alive.release(&refused.terminator));
        }
        drop(refused);
        counter.join().unwrap();
        assert!(dropped.load(Ordering::SeqCst), "the keep-alive was never let go of");
    });
}
