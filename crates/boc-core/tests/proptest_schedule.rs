//! Property test of the protocol against a reference model: random request
//! sets scheduled from several threads and run by a small worker pool; the
//! run is then checked for mutual exclusion, per-cown FIFO of each thread's
//! schedules, serializability (the per-cown orders have no cycle) and that
//! every behavior ran exactly once and every cown ended idle.

use boc_core::{CownHeader, Dispatch, Payload, Ready, Watch, schedule, schedule_watched};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a run may go without any behavior finishing before it counts
/// as a deadlock (or a lost behavior). A healthy run finishes in
/// milliseconds; the margin is for a loaded machine.
const STALL: Duration = Duration::from_secs(3);

/// Runs per case: a scheduling bug shows up only in some interleavings, and
/// repeating keeps shrinking on track.
const N_REPEATS: usize = 32;

/// One behavior of the generated program.
#[derive(Clone, Debug)]
struct Spec {
    /// Indices of the cowns in its request set, in the order named
    /// (duplicates allowed).
    cowns: Vec<usize>,
    /// Scheduled through the `*_watched` entry points; the test then reads
    /// the payload back through the watch.
    watched: bool,
}

/// The generated program: per scheduling thread, its behaviors in schedule
/// order.
#[derive(Clone, Debug)]
struct Program {
    n_cowns: usize,
    n_workers: usize,
    threads: Vec<Vec<Spec>>,
}

fn program() -> impl Strategy<Value = Program> {
    (2usize..8, 2usize..=3).prop_flat_map(|(n_cowns, n_workers)| {
        let spec = (prop::collection::vec(0..n_cowns, 1..=4), any::<bool>())
            .prop_map(|(cowns, watched)| Spec { cowns, watched });
        prop::collection::vec(prop::collection::vec(spec, 0..24), 2..=4).prop_map(move |threads| Program {
            n_cowns,
            n_workers,
            threads,
        })
    })
}

/// A test cown: the protocol header, a flag a holder sets while its body
/// runs, and the ids of the behaviors that held it, in order.
struct TestCown {
    idx: usize,
    header: CownHeader,
    busy: AtomicBool,
    log: Mutex<Vec<usize>>,
}

/// What the run observed, checked after it.
#[derive(Default)]
struct Observed {
    /// How many times each behavior ran.
    n_runs: Vec<AtomicUsize>,
    /// Violations seen inside bodies (a body must not panic: that would
    /// kill a worker instead of failing the case cleanly).
    errors: Mutex<Vec<String>>,
    /// Behaviors finished, for the main thread's wait.
    n_done: Mutex<usize>,
    done: Condvar,
}

struct Body {
    id: usize,
    /// The distinct cowns of the request set.
    cowns: Vec<Arc<TestCown>>,
    observed: Arc<Observed>,
}

impl Payload for Body {
    fn run(&mut self) {
        for cown in &self.cowns {
            if cown.busy.swap(true, Ordering::AcqRel) {
                self.observed
                    .errors
                    .lock()
                    .unwrap()
                    .push(format!("behavior {} started on cown {} while another behavior held it", self.id, cown.idx));
            }
        }
        for cown in &self.cowns {
            cown.log.lock().unwrap().push(self.id);
        }
        // Widen the window in which an overlapping behavior would be seen.
        thread::yield_now();
        for cown in &self.cowns {
            cown.busy.store(false, Ordering::Release);
        }
        self.observed.n_runs[self.id].fetch_add(1, Ordering::Relaxed);
        *self.observed.n_done.lock().unwrap() += 1;
        self.observed.done.notify_all();
    }
}

/// A run queue shared by the workers.
#[derive(Default)]
struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Ready>,
    shut_down: bool,
}

impl Dispatch for Pool {
    fn dispatch(&self, behavior: Ready) {
        self.state.lock().unwrap().queue.push_back(behavior);
        self.ready.notify_one();
    }
}

impl Pool {
    fn work(&self) {
        loop {
            let behavior = {
                let mut state = self.state.lock().unwrap();
                loop {
                    if let Some(behavior) = state.queue.pop_front() {
                        break behavior;
                    }
                    if state.shut_down {
                        return;
                    }
                    state = self.ready.wait(state).unwrap();
                }
            };
            behavior.run();
        }
    }

    fn shut_down(&self) {
        self.state.lock().unwrap().shut_down = true;
        self.ready.notify_all();
    }
}

/// Runs the program for real and checks it; `Err` describes a violation.
fn run_and_check(program: &Program) -> Result<(), String> {
    let cowns: Vec<Arc<TestCown>> = (0..program.n_cowns)
        .map(|idx| {
            Arc::new(TestCown { idx, header: CownHeader::new(), busy: AtomicBool::new(false), log: Mutex::default() })
        })
        .collect();
    // Behavior ids: consecutive per thread, in schedule order.
    let mut first_ids = Vec::new();
    let mut n_behaviors = 0;
    for behaviors in &program.threads {
        first_ids.push(n_behaviors);
        n_behaviors += behaviors.len();
    }
    let observed =
        Arc::new(Observed { n_runs: (0..n_behaviors).map(|_| AtomicUsize::new(0)).collect(), ..Observed::default() });
    let pool = Arc::new(Pool::default());
    let workers: Vec<_> = (0..program.n_workers)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || pool.work())
        })
        .collect();
    // The schedulers start together, so their schedules overlap.
    let start = Arc::new(Barrier::new(program.threads.len()));
    let schedulers: Vec<_> = program
        .threads
        .iter()
        .zip(&first_ids)
        .map(|(behaviors, &first_id)| {
            let (behaviors, cowns, observed, pool) = (behaviors.clone(), cowns.clone(), observed.clone(), pool.clone());
            let start = start.clone();
            thread::spawn(move || -> Vec<(usize, Watch)> {
                start.wait();
                let mut watches = Vec::new();
                for (seq, spec) in behaviors.iter().enumerate() {
                    let id = first_id + seq;
                    let mut distinct = spec.cowns.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    let body = Body {
                        id,
                        cowns: distinct.iter().map(|&idx| cowns[idx].clone()).collect(),
                        observed: observed.clone(),
                    };
                    let headers = spec.cowns.iter().map(|&idx| &cowns[idx].header);
                    // SAFETY: the payload owns its cowns; the pool outlives
                    // every behavior (the main thread holds it until all ran).
                    unsafe {
                        match (spec.cowns.as_slice(), spec.watched) {
                            ([only], false) => schedule([&cowns[*only].header], body, 0, &*pool),
                            ([only], true) => {
                                watches.push((id, schedule_watched([&cowns[*only].header], body, 0, &*pool)))
                            }
                            (_, false) => schedule(headers, body, 0, &*pool),
                            (_, true) => watches.push((id, schedule_watched(headers, body, 0, &*pool))),
                        }
                    }
                }
                watches
            })
        })
        .collect();

    // Wait for every behavior; a run that stops making progress stands in
    // for a deadlock. (A wakeup is no proof of progress: a body's notify can
    // arrive after its count was already seen.)
    {
        let mut n_done = observed.n_done.lock().unwrap();
        let mut n_seen = *n_done;
        let mut progress_at = Instant::now();
        while *n_done < n_behaviors {
            n_done = observed.done.wait_timeout(n_done, STALL.saturating_sub(progress_at.elapsed())).unwrap().0;
            if *n_done != n_seen {
                n_seen = *n_done;
                progress_at = Instant::now();
            } else if progress_at.elapsed() >= STALL {
                let n_done = *n_done;
                // Threads may be stuck inside the protocol: leak everything
                // rather than drop cowns that behaviors still hold.
                std::mem::forget((cowns, pool, workers, schedulers));
                let waiting: Vec<String> = program
                    .threads
                    .iter()
                    .flatten()
                    .enumerate()
                    .filter(|(id, _)| observed.n_runs[*id].load(Ordering::Relaxed) == 0)
                    .map(|(id, spec)| format!("{id} on {:?}", spec.cowns))
                    .collect();
                return Err(format!(
                    "only {n_done} of {n_behaviors} behaviors ran; none finished for {STALL:?}; never ran: {}",
                    waiting.join(", ")
                ));
            }
        }
    }
    let mut watches = Vec::new();
    for scheduler in schedulers {
        watches.extend(scheduler.join().expect("a scheduling thread panicked"));
    }
    pool.shut_down();
    for worker in workers {
        worker.join().expect("a worker panicked");
    }

    // (0) No body saw another behavior on one of its cowns.
    let errors = observed.errors.lock().unwrap();
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    // (a) Every behavior ran exactly once.
    for (id, n_runs) in observed.n_runs.iter().enumerate() {
        let n_runs = n_runs.load(Ordering::Relaxed);
        if n_runs != 1 {
            return Err(format!("behavior {id} ran {n_runs} times"));
        }
    }
    for (id, watch) in &watches {
        // SAFETY: every watched behavior carries a `Body`; only this thread
        // reads it, after the run.
        match unsafe { watch.payload::<Body>() } {
            Some(body) if body.id == *id => {}
            Some(body) => return Err(format!("the watch of behavior {id} shows behavior {}", body.id)),
            None => return Err(format!("the watch of behavior {id} is not done after it ran")),
        }
    }
    drop(watches);
    let logs: Vec<Vec<usize>> = cowns.iter().map(|cown| cown.log.lock().unwrap().clone()).collect();
    let thread_of: Vec<usize> = program
        .threads
        .iter()
        .enumerate()
        .flat_map(|(thread_idx, behaviors)| behaviors.iter().map(move |_| thread_idx))
        .collect();
    for (cown_idx, log) in logs.iter().enumerate() {
        // Each behavior naming the cown appears once (duplicates held once).
        let mut expected: Vec<usize> = Vec::new();
        for (thread_idx, behaviors) in program.threads.iter().enumerate() {
            for (seq, spec) in behaviors.iter().enumerate() {
                if spec.cowns.contains(&cown_idx) {
                    expected.push(first_ids[thread_idx] + seq);
                }
            }
        }
        let mut sorted = log.clone();
        sorted.sort_unstable();
        if sorted != expected {
            return Err(format!("cown {cown_idx} was held by {log:?}, expected each of {expected:?} once"));
        }
        // (b) Per thread, the cown saw its behaviors in schedule order (ids
        // increase with schedule order within a thread).
        for thread_idx in 0..program.threads.len() {
            let from_thread: Vec<usize> = log.iter().copied().filter(|&id| thread_of[id] == thread_idx).collect();
            if !from_thread.is_sorted() {
                return Err(format!(
                    "cown {cown_idx}: thread {thread_idx}'s behaviors ran as {from_thread:?}, not in schedule order"
                ));
            }
        }
    }
    // (c) Serializable: "held the cown just before" edges form no cycle.
    if let Some(cycle) = find_cycle(n_behaviors, &logs) {
        return Err(format!("the per-cown orders {logs:?} form a cycle through behaviors {cycle:?}"));
    }
    // (d) Every cown is idle.
    for (cown_idx, cown) in cowns.iter().enumerate() {
        if !cown.header.is_idle() {
            return Err(format!("cown {cown_idx} is not idle after every behavior ran"));
        }
    }
    Ok(())
}

/// Returns the behaviors left on a cycle of the graph whose edges join
/// consecutive entries of each log, or `None` if it is acyclic (Kahn).
fn find_cycle(n_behaviors: usize, logs: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut successors = vec![Vec::new(); n_behaviors];
    let mut n_predecessors = vec![0usize; n_behaviors];
    for log in logs {
        for pair in log.windows(2) {
            successors[pair[0]].push(pair[1]);
            n_predecessors[pair[1]] += 1;
        }
    }
    let mut free: Vec<usize> = (0..n_behaviors).filter(|&id| n_predecessors[id] == 0).collect();
    let mut n_ordered = 0;
    while let Some(id) = free.pop() {
        n_ordered += 1;
        for &next in &successors[id] {
            n_predecessors[next] -= 1;
            if n_predecessors[next] == 0 {
                free.push(next);
            }
        }
    }
    (n_ordered < n_behaviors).then(|| (0..n_behaviors).filter(|&id| n_predecessors[id] > 0).collect())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 64 by default; `PROPTEST_CASES` raises it for a longer soak.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(64),
        // Each case in a child process, so a memory-safety bug that crashes
        // the process, or a hang the stall check misses (the child is killed
        // at the timeout), still fails the case and shrinks like an
        // assertion.
        fork: true,
        timeout: 60_000,
        // Kept with the crate, next to its sources (the default would put
        // it beside this file).
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/proptest_schedule.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// Each case runs [`N_REPEATS`] times.
    #[test]
    fn schedules_match_the_reference_model(program in program()) {
        for _ in 0..N_REPEATS {
            if let Err(violation) = run_and_check(&program) {
                prop_assert!(false, "{}", violation);
            }
        }
    }
}

#[test]
fn find_cycle_sees_cycles() {
    assert_eq!(find_cycle(3, &[vec![0, 1], vec![1, 2]]), None);
    assert_eq!(find_cycle(3, &[vec![0, 1], vec![1, 2], vec![2, 0]]), Some(vec![0, 1, 2]));
    assert_eq!(find_cycle(3, &[vec![0, 1], vec![1, 0], vec![2]]), Some(vec![0, 1]));
}
