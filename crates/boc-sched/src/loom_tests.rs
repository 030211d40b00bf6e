//! loom models of the idle protocol (`idle.rs`): every interleaving, up to
//! the preemption bound, of spawners pushing onto a queue and notifying
//! while workers search, announce idle, re-check and park.
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
