//! Integration tests of `Pool` through its public API: exactly-once delivery,
//! next-slot chains, stealing, fairness of the next slot, shutdown, drop,
//! panics, parking, and lost-wakeup stress.
//!
//! No test depends on machine speed: waits that guard against a hang use
//! timeouts of at least 10 s, and the only sleeps are in polling loops of
//! diagnostics or to make an interleaving likely (never required).

use boc_sched::{Error, Pool, Runner, Terminator};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Generous bound for anything that should happen "soon".
const PATIENCE: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce() + Send>;

/// Runs boxed closures; counts them down in a terminator.
#[derive(Default)]
struct Closures {
    in_flight: Terminator,
}

impl Runner<Job> for Closures {
    fn run(&self, job: Job) {
        job();
        self.in_flight.decrement();
    }
}

type ClosurePool = Pool<Job, Closures>;

fn closure_pool(n_workers: usize) -> (Arc<ClosurePool>, Arc<Closures>) {
    let runner = Arc::new(Closures::default());
    let pool = Arc::new(Pool::new(n_workers, Arc::clone(&runner)).unwrap());
    (pool, runner)
}

fn spawn_job(pool: &ClosurePool, runner: &Closures, job: impl FnOnce() + Send + 'static) {
    runner.in_flight.increment();
    pool.spawn(Box::new(job));
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Marks each task index it runs.
struct Marks {
    hits: Vec<AtomicU8>,
    in_flight: Terminator,
}

impl Runner<usize> for Marks {
    fn run(&self, task_idx: usize) {
        self.hits[task_idx].fetch_add(1, Ordering::Relaxed);
        self.in_flight.decrement();
    }
}

#[test]
fn every_task_runs_exactly_once_with_two_spawning_threads() {
    const N_TASKS: usize = 1_000_000;
    let runner =
        Arc::new(Marks { hits: (0..N_TASKS).map(|_| AtomicU8::new(0)).collect(), in_flight: Terminator::new() });
    let pool = Arc::new(Pool::new(3, Arc::clone(&runner)).unwrap());
    let spawners: Vec<_> = (0..2)
        .map(|spawner_idx| {
            let pool = Arc::clone(&pool);
            let runner = Arc::clone(&runner);
            thread::spawn(move || {
                for task_idx in (spawner_idx..N_TASKS).step_by(2) {
                    runner.in_flight.increment();
                    pool.spawn(task_idx);
                }
            })
        })
        .collect();
    for spawner in spawners {
        spawner.join().unwrap();
    }
    assert!(runner.in_flight.wait_idle(Some(Duration::from_secs(120))));
    let wrong: Vec<_> =
        (0..N_TASKS).filter(|&task_idx| runner.hits[task_idx].load(Ordering::Relaxed) != 1).take(10).collect();
    assert!(wrong.is_empty(), "tasks not run exactly once: {wrong:?}");
    assert_eq!(pool.n_panics(), 0);
}

fn chain_link(pool: Arc<ClosurePool>, runner: Arc<Closures>, remaining: usize, ran: Arc<AtomicUsize>) {
    ran.fetch_add(1, Ordering::Relaxed);
    if remaining > 1 {
        let next_pool = Arc::clone(&pool);
        let next_runner = Arc::clone(&runner);
        spawn_job(&pool, &runner, move || chain_link(next_pool, next_runner, remaining - 1, ran));
    }
}

#[test]
fn chain_of_tasks_each_spawning_the_next_completes() {
    const N_LINKS: usize = 100_000;
    let (pool, runner) = closure_pool(2);
    let ran = Arc::new(AtomicUsize::new(0));
    {
        let (pool2, runner2, ran) = (Arc::clone(&pool), Arc::clone(&runner), Arc::clone(&ran));
        spawn_job(&pool, &runner, move || chain_link(pool2, runner2, N_LINKS, ran));
    }
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
    assert_eq!(ran.load(Ordering::Relaxed), N_LINKS);
}

#[test]
fn task_spawned_on_a_worker_runs_next_on_the_same_worker() {
    let (pool, runner) = closure_pool(3);
    let (sender, receiver) = mpsc::channel();
    for _ in 0..100 {
        let (pool2, runner2, sender) = (Arc::clone(&pool), Arc::clone(&runner), sender.clone());
        spawn_job(&pool, &runner, move || {
            let parent = thread::current().id();
            assert!(pool2.is_worker_thread());
            spawn_job(&pool2, &runner2, move || {
                sender.send((parent, thread::current().id())).unwrap();
            });
        });
    }
    for _ in 0..100 {
        let (parent, child) = receiver.recv_timeout(PATIENCE).unwrap();
        assert_eq!(parent, child, "the child left its producer's worker");
    }
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
}

#[test]
fn blocked_worker_deque_is_stolen_by_a_sibling() {
    let (pool, runner) = closure_pool(2);
    let (stolen_sender, stolen_receiver) = mpsc::channel();
    let (result_sender, result_receiver) = mpsc::channel();
    let (pool2, runner2) = (Arc::clone(&pool), Arc::clone(&runner));
    spawn_job(&pool, &runner, move || {
        let blocked = thread::current().id();
        // B goes to the next slot, then C displaces it into this worker's
        // deque, the only place a sibling can take it from.
        spawn_job(&pool2, &runner2, move || {
            stolen_sender.send(thread::current().id()).unwrap();
        });
        spawn_job(&pool2, &runner2, || {});
        // Stay busy until B has run: only a steal can run it meanwhile.
        let thief = stolen_receiver.recv_timeout(PATIENCE);
        result_sender.send((blocked, thief)).unwrap();
    });
    let (blocked, thief) = result_receiver.recv_timeout(PATIENCE * 2).unwrap();
    let thief = thief.expect("the displaced task was never stolen");
    assert_ne!(blocked, thief);
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
}

#[test]
fn next_slot_chain_does_not_starve_the_injector() {
    // One worker: a chain that always refills the next slot would run
    // forever without the next-slot budget, since the task that stops it
    // waits in the injector.
    let (pool, runner) = closure_pool(1);
    let stop = Arc::new(AtomicBool::new(false));
    let (started_sender, started_receiver) = mpsc::channel::<()>();

    fn relay(pool: Arc<ClosurePool>, runner: Arc<Closures>, stop: Arc<AtomicBool>, n_links: Arc<AtomicUsize>) {
        n_links.fetch_add(1, Ordering::Relaxed);
        if !stop.load(Ordering::Relaxed) {
            let (next_pool, next_runner) = (Arc::clone(&pool), Arc::clone(&runner));
            spawn_job(&pool, &runner, move || relay(next_pool, next_runner, stop, n_links));
        }
    }

    let n_links = Arc::new(AtomicUsize::new(0));
    {
        let (pool2, runner2, stop, n_links) =
            (Arc::clone(&pool), Arc::clone(&runner), Arc::clone(&stop), Arc::clone(&n_links));
        spawn_job(&pool, &runner, move || {
            started_sender.send(()).unwrap();
            relay(pool2, runner2, stop, n_links);
        });
    }
    started_receiver.recv_timeout(PATIENCE).unwrap();
    {
        let stop = Arc::clone(&stop);
        spawn_job(&pool, &runner, move || stop.store(true, Ordering::Relaxed));
    }
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)), "the injector task never ran: the chain starved it");
    assert!(stop.load(Ordering::Relaxed));
    assert!(n_links.load(Ordering::Relaxed) >= 1);
}

#[test]
fn a_chain_refilling_the_next_slot_lets_local_tasks_run_soon() {
    // One worker: each link spawns a side task, then the next link, which
    // takes the next slot and pushes the side task to the local deque. The
    // side task must not wait for dozens of links (a Python program saw
    // short tallies starve behind a 3 ms chain).
    let (pool, runner) = closure_pool(1);
    let n_links = Arc::new(AtomicUsize::new(0));
    let side_ran_at = Arc::new(AtomicUsize::new(usize::MAX));

    fn link(pool: Arc<ClosurePool>, runner: Arc<Closures>, n_links: Arc<AtomicUsize>, side_ran_at: Arc<AtomicUsize>) {
        let n = n_links.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 {
            let (side_links, side_ran_at) = (Arc::clone(&n_links), Arc::clone(&side_ran_at));
            spawn_job(&pool, &runner, move || {
                side_ran_at.store(side_links.load(Ordering::Relaxed), Ordering::Relaxed);
            });
        }
        if n < 100 {
            let (next_pool, next_runner) = (Arc::clone(&pool), Arc::clone(&runner));
            spawn_job(&pool, &runner, move || link(next_pool, next_runner, n_links, side_ran_at));
        }
    }

    {
        let (pool2, runner2, n_links, side_ran_at) =
            (Arc::clone(&pool), Arc::clone(&runner), Arc::clone(&n_links), Arc::clone(&side_ran_at));
        spawn_job(&pool, &runner, move || link(pool2, runner2, n_links, side_ran_at));
    }
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
    let ran_at = side_ran_at.load(Ordering::Relaxed);
    assert!(ran_at <= 5, "the side task ran only after link {ran_at}");
}

#[test]
fn shutdown_runs_every_task_already_spawned() {
    let (pool, runner) = closure_pool(1);
    let ran = Arc::new(AtomicUsize::new(0));
    let (release_sender, release_receiver) = mpsc::channel::<()>();
    // Hold the only worker so the rest are certainly still queued (most
    // likely when shutdown starts, too).
    spawn_job(&pool, &runner, move || release_receiver.recv().unwrap());
    for _ in 0..1000 {
        let ran = Arc::clone(&ran);
        spawn_job(&pool, &runner, move || {
            ran.fetch_add(1, Ordering::Relaxed);
        });
    }
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        release_sender.send(()).unwrap();
    });
    pool.shutdown();
    assert_eq!(ran.load(Ordering::Relaxed), 1000);
    assert_eq!(runner.in_flight.count(), 0);
    pool.shutdown(); // idempotent
    releaser.join().unwrap();
}

/// Counts its drops.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct CountRuns(AtomicUsize);

impl Runner<DropCounter> for CountRuns {
    fn run(&self, _task: DropCounter) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn dropping_a_pool_without_workers_drops_pending_tasks() {
    let runner = Arc::new(CountRuns::default());
    let drops = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(0, Arc::clone(&runner)).unwrap();
    assert_eq!(pool.n_workers(), 0);
    for _ in 0..10 {
        pool.spawn(DropCounter(Arc::clone(&drops)));
    }
    assert_eq!(drops.load(Ordering::Relaxed), 0);
    drop(pool);
    assert_eq!(drops.load(Ordering::Relaxed), 10);
    assert_eq!(runner.0.load(Ordering::Relaxed), 0);
}

/// Panics on odd tasks, without catching: the pool must.
struct PanicOnOdd {
    ran: AtomicUsize,
    in_flight: Terminator,
}

impl Runner<u32> for PanicOnOdd {
    fn run(&self, task: u32) {
        struct Done<'a>(&'a Terminator);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.decrement();
            }
        }
        let _done = Done(&self.in_flight);
        assert!(task % 2 == 0, "task {task} is odd (expected panic in a test)");
        self.ran.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_panicking_run_does_not_kill_the_worker() {
    let runner = Arc::new(PanicOnOdd { ran: AtomicUsize::new(0), in_flight: Terminator::new() });
    let pool = Pool::new(1, Arc::clone(&runner)).unwrap();
    for task in 0..20 {
        runner.in_flight.increment();
        pool.spawn(task);
    }
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
    // The terminator counted each panicking task down while it unwound,
    // before the pool caught the panic: the count may lag a little.
    wait_until("every panic to be counted", || pool.n_panics() == 10);
    assert_eq!(runner.ran.load(Ordering::Relaxed), 10);
    // The single worker is still alive.
    runner.in_flight.increment();
    pool.spawn(100);
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
    assert_eq!(runner.ran.load(Ordering::Relaxed), 11);
}

#[test]
fn idle_workers_park() {
    let (pool, runner) = closure_pool(3);
    wait_until("the fresh pool's workers to park", || pool.n_parked() == 3);
    for _ in 0..1000 {
        spawn_job(&pool, &runner, || {});
    }
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
    wait_until("every worker to park after the work", || pool.n_parked() == 3);
}

#[test]
fn no_lost_wakeups_when_spawning_onto_an_idle_pool() {
    // Every round spawns onto a pool whose workers are all going to sleep
    // or asleep; a lost wakeup leaves the task unrun and the wait times out.
    for n_workers in [1, 2, 4] {
        let (pool, runner) = closure_pool(n_workers);
        let (sender, receiver) = mpsc::channel::<()>();
        for round in 0..5_000 {
            let sender = sender.clone();
            spawn_job(&pool, &runner, move || sender.send(()).unwrap());
            receiver
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("lost wakeup in round {round} with {n_workers} workers"));
        }
        assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
    }
}

#[test]
fn no_lost_wakeups_when_workers_fan_out() {
    // Tasks on workers displace tasks into their deques while siblings are
    // parking: each round needs a wakeup from a worker, not from outside.
    let (pool, runner) = closure_pool(4);
    for _ in 0..2_000 {
        let (pool2, runner2) = (Arc::clone(&pool), Arc::clone(&runner));
        spawn_job(&pool, &runner, move || {
            for _ in 0..4 {
                spawn_job(&pool2, &runner2, || {});
            }
        });
        assert!(runner.in_flight.wait_idle(Some(PATIENCE)), "lost wakeup");
    }
}

#[test]
fn worker_identity_and_names() {
    let (pool, runner) = closure_pool(2);
    let (other_pool, other_runner) = closure_pool(1);
    assert_eq!(pool.n_workers(), 2);
    assert!(!pool.is_worker_thread());
    let (sender, receiver) = mpsc::channel();
    let (pool2, other_pool2, other_runner2) = (Arc::clone(&pool), Arc::clone(&other_pool), Arc::clone(&other_runner));
    spawn_job(&pool, &runner, move || {
        let name = thread::current().name().map(str::to_owned);
        let mine = pool2.is_worker_thread();
        let theirs = other_pool2.is_worker_thread();
        // Spawned from a worker of another pool: goes to this pool's injector
        // and runs on one of its own workers.
        let (sender2, other_pool3) = (sender.clone(), Arc::clone(&other_pool2));
        spawn_job(&other_pool2, &other_runner2, move || {
            sender2.send(Err(other_pool3.is_worker_thread())).unwrap();
        });
        sender.send(Ok((name, mine, theirs))).unwrap();
    });
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(receiver.recv_timeout(PATIENCE).unwrap());
    }
    for message in seen {
        match message {
            Ok((name, mine, theirs)) => {
                let name = name.unwrap();
                assert!(name == "boc-worker-0" || name == "boc-worker-1", "{name}");
                assert!(mine);
                assert!(!theirs);
            }
            Err(on_other_pool_worker) => assert!(on_other_pool_worker),
        }
    }
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
    assert!(other_runner.in_flight.wait_idle(Some(PATIENCE)));
}

/// Reports when it is dropped, i.e. when the pool's shared state is freed.
struct ReportDrop {
    dropped: Mutex<mpsc::Sender<()>>,
}

impl Runner<Job> for ReportDrop {
    fn run(&self, job: Job) {
        job();
    }
}

impl Drop for ReportDrop {
    fn drop(&mut self) {
        let _ = self.dropped.lock().unwrap().send(());
    }
}

#[test]
fn shutdown_or_drop_from_a_worker_thread_does_not_deadlock() {
    let (dropped_sender, dropped_receiver) = mpsc::channel();
    let runner = Arc::new(ReportDrop { dropped: Mutex::new(dropped_sender) });
    let pool = Arc::new(Pool::new(2, runner).unwrap());
    let (go_sender, go_receiver) = mpsc::channel::<()>();
    let (ran_sender, ran_receiver) = mpsc::channel::<&'static str>();
    {
        let pool2 = Arc::clone(&pool);
        let ran_sender = ran_sender.clone();
        pool.spawn(Box::new(move || {
            go_receiver.recv().unwrap();
            // Signals only: cannot join itself.
            pool2.shutdown();
            // Spawned on a worker after shutdown began: still runs (next slot).
            let ran_sender2 = ran_sender.clone();
            pool2.spawn(Box::new(move || ran_sender2.send("after").unwrap()));
            ran_sender.send("shutdown returned").unwrap();
            // `pool2` is the last handle: Pool::drop runs here, on a worker.
        }));
    }
    drop(pool);
    go_sender.send(()).unwrap();
    let mut messages = vec![ran_receiver.recv_timeout(PATIENCE).unwrap(), ran_receiver.recv_timeout(PATIENCE).unwrap()];
    messages.sort_unstable();
    assert_eq!(messages, ["after", "shutdown returned"]);
    // The workers exit on their own and free the shared state.
    dropped_receiver.recv_timeout(PATIENCE).expect("the detached workers never exited");
}

#[test]
fn absurd_worker_counts_are_an_error() {
    let error = Pool::new(usize::MAX, Arc::new(Closures::default())).unwrap_err();
    assert!(matches!(error, Error::TooManyWorkers { requested: usize::MAX, .. }));
    assert!(error.to_string().starts_with("too many workers"));
}

thread_local! {
    /// Set by `Hooked::worker_thread` around the worker loop.
    static INSIDE_HOOK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Records what the thread and park hooks see; its park hook either wraps
/// the sleep or (a buggy hook) forgets to call it.
#[derive(Default)]
struct Hooked {
    n_threads: AtomicUsize,
    n_parks: AtomicUsize,
    forget_to_park: bool,
    ran_outside_hook: AtomicBool,
    in_flight: Terminator,
}

impl Runner<Job> for Hooked {
    fn run(&self, job: Job) {
        if !INSIDE_HOOK.with(std::cell::Cell::get) {
            self.ran_outside_hook.store(true, Ordering::Relaxed);
        }
        job();
        self.in_flight.decrement();
    }

    fn worker_thread(&self, work: &mut dyn FnMut()) {
        self.n_threads.fetch_add(1, Ordering::Relaxed);
        INSIDE_HOOK.with(|inside| inside.set(true));
        work();
        INSIDE_HOOK.with(|inside| inside.set(false));
    }

    fn park(&self, park: &mut dyn FnMut()) {
        self.n_parks.fetch_add(1, Ordering::Relaxed);
        if !self.forget_to_park {
            park();
        }
    }
}

#[test]
fn hooks_wrap_each_worker_thread_and_each_sleep() {
    let runner = Arc::new(Hooked::default());
    let pool = Pool::new(2, Arc::clone(&runner)).unwrap();
    wait_until("both workers to park", || pool.n_parked() == 2);
    let parks_before = runner.n_parks.load(Ordering::Relaxed);
    assert!(parks_before >= 2, "every sleep goes through the park hook");
    for _ in 0..100 {
        runner.in_flight.increment();
        pool.spawn(Box::new(|| {}));
    }
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
    wait_until("both workers to park again", || pool.n_parked() == 2);
    pool.shutdown();
    assert_eq!(runner.n_threads.load(Ordering::Relaxed), 2, "one worker_thread call per worker");
    assert!(!runner.ran_outside_hook.load(Ordering::Relaxed), "tasks run inside worker_thread");
}

#[test]
fn a_park_hook_that_does_not_park_does_not_make_workers_spin() {
    let runner = Arc::new(Hooked { forget_to_park: true, ..Hooked::default() });
    let pool = Pool::new(2, Arc::clone(&runner)).unwrap();
    wait_until("both workers to park", || pool.n_parked() == 2);
    // Asleep, not spinning through the hook: the count of hook calls stays put.
    let parks = runner.n_parks.load(Ordering::Relaxed);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(runner.n_parks.load(Ordering::Relaxed), parks);
    runner.in_flight.increment();
    pool.spawn(Box::new(|| {}));
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
}

/// Recurses `depth` frames of `FRAME` bytes each; returns a checksum so the
/// frames are not optimized away.
#[inline(never)]
fn deep(depth: usize) -> u64 {
    const FRAME: usize = 1024;
    let mut frame = [0_u8; FRAME];
    frame[depth % FRAME] = 1;
    let frame = std::hint::black_box(frame);
    if depth == 0 { 0 } else { deep(depth - 1) + u64::from(frame[depth % FRAME]) }
}

#[test]
fn workers_get_the_stack_size_asked_for() {
    // About 6 MiB of frames: more than the standard library's default
    // 2 MiB thread stack, well within the 32 MiB asked for.
    let runner = Arc::new(Closures::default());
    let options = boc_sched::PoolOptions::default().stack_size(32 << 20);
    let pool = Pool::with_options(1, Arc::clone(&runner), options).unwrap();
    let (sender, receiver) = mpsc::channel();
    runner.in_flight.increment();
    pool.spawn(Box::new(move || sender.send(deep(6 * 1024)).unwrap()));
    assert_eq!(receiver.recv_timeout(PATIENCE).unwrap(), 6 * 1024);
    assert!(runner.in_flight.wait_idle(Some(PATIENCE)));
}
