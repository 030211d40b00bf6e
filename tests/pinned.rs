//! Pinned cowns end to end: main-side behaviors run on the home thread,
//! mixed with worker behaviors, pumped with budgets, watched by the
//! watchdog.

use boc::{Budget, Cown, Error, PinnedCown, Runtime, StarvationReport, WatchdogConfig};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

fn runtime(n_workers: usize) -> Runtime {
    Runtime::builder().workers(n_workers).watchdog(None).build().unwrap()
}

fn here() -> ThreadId {
    std::thread::current().id()
}

#[test]
fn request_sets_run_on_the_home_thread_iff_pinned() {
    let rt = runtime(2);
    let home = here();
    let pinned = PinnedCown::new(&rt, Rc::new(RefCell::new(0_u32))).unwrap();
    let plain: Vec<_> = (0..4).map(|_| Cown::new(0_u32)).collect();
    let mut on_main = Vec::new();
    let mut on_workers = Vec::new();
    for round in 0..50 {
        let cown = &plain[round % plain.len()];
        on_workers.push(rt.when(cown, |_| here()));
        on_workers.push(rt.when((cown, &plain[(round + 1) % plain.len()]), |_| here()));
        on_main.push(rt.when(&pinned, |value| {
            *value.borrow_mut() += 1;
            here()
        }));
        on_main.push(rt.when((cown, &pinned), |(plain, value)| {
            *plain += 1;
            *value.borrow_mut() += 1;
            here()
        }));
    }
    rt.quiesce().unwrap();
    assert!(on_main.iter().all(|result| result.take().unwrap() == home), "pinned sets run at home");
    assert!(on_workers.iter().all(|result| result.take().unwrap() != home), "the others run on workers");
    let total = rt.when(&pinned, |value| *value.borrow());
    rt.quiesce().unwrap();
    assert_eq!(total.take().unwrap(), 100);
}

#[test]
fn a_long_chain_on_a_pinned_cown_keeps_schedule_order_among_worker_behaviors() {
    let rt = runtime(2);
    let log = PinnedCown::new(&rt, Vec::new()).unwrap();
    let counters: Vec<_> = (0..8).map(|_| Cown::new(0_u64)).collect();
    for idx in 0..1_000_usize {
        let counter = &counters[idx % counters.len()];
        rt.when(counter, |n| *n += 1);
        if idx % 2 == 0 {
            rt.when(&log, move |log| log.push(idx));
        } else {
            rt.when((&log, counter), move |(log, n)| {
                *n += 1;
                log.push(idx);
            });
        }
    }
    let seen = rt.when(&log, std::mem::take);
    rt.quiesce().unwrap();
    assert_eq!(seen.take().unwrap(), (0..1_000).collect::<Vec<_>>());
}

#[test]
fn pump_with_a_count_budget_runs_that_many() {
    let rt = runtime(1);
    let pinned = PinnedCown::new(&rt, 0_u32).unwrap();
    let cowns: Vec<_> = (0..10).map(|_| PinnedCown::new(&rt, ()).unwrap()).collect();
    for cown in &cowns {
        rt.when((cown, &pinned), |(_, n)| *n += 1);
    }
    // The behaviors chain on `pinned`: each pump runs the one that is ready
    // and makes the next ready.
    let report = rt.pump(Budget::count(3)).unwrap();
    assert_eq!(report.executed, 3);
    assert!(!report.deadline_reached);
    assert_eq!(report.pending, 1, "the next link became ready");
    let rest = rt.pump(Budget::unbounded()).unwrap();
    assert_eq!(rest.executed, 7, "an unbounded pump drains, including links that became ready during it");
    assert_eq!(rest.pending, 0);
}

#[test]
fn a_deadline_gates_starting_a_behavior_and_never_interrupts_one() {
    let rt = runtime(1);
    let pinned: Vec<_> = (0..5).map(|_| PinnedCown::new(&rt, ()).unwrap()).collect();
    for cown in &pinned {
        rt.when(cown, |_| std::thread::sleep(Duration::from_millis(20)));
    }
    let report = rt.pump(Budget::within(Duration::from_millis(10))).unwrap();
    assert_eq!(report.executed, 1, "the first starts before the deadline and runs to its end");
    assert!(report.deadline_reached);
    assert_eq!(report.pending, 4);
    rt.quiesce().unwrap();
}

#[test]
fn pump_inside_a_main_side_behavior_is_an_error() {
    let rt = runtime(1);
    let pinned = PinnedCown::new(&rt, ()).unwrap();
    let handle = rt.handle();
    let nested = rt.when(&pinned, move |_| {
        let pumped = handle.pump(Budget::unbounded());
        let waited = handle.quiesce();
        (pumped.map(|_| ()), waited)
    });
    rt.quiesce().unwrap();
    let (pumped, waited) = nested.take().unwrap();
    let pumped = pumped.unwrap_err();
    assert!(matches!(pumped, Error::Pin(boc_pin_error) if boc_pin_error.to_string().contains("not re-entrant")));
    assert!(matches!(waited, Err(Error::WaitInsideBehavior)));
}

#[test]
fn pump_off_the_home_thread_is_an_error() {
    let rt = runtime(1);
    let handle = rt.handle();
    let message = std::thread::spawn(move || handle.pump(Budget::unbounded()).unwrap_err().to_string()).join().unwrap();
    assert!(message.contains("off the home thread"), "{message}");
    // From a worker behavior too.
    let handle = rt.handle();
    let from_worker = rt.when(&Cown::new(()), move |_| handle.pump(Budget::unbounded()).is_err());
    rt.quiesce().unwrap();
    assert!(from_worker.take().unwrap());
}

#[test]
fn a_panicking_main_side_body_is_reported_and_pump_goes_on() {
    let rt = runtime(1);
    let pinned = PinnedCown::new(&rt, 0_u32).unwrap();
    let others: Vec<_> = (0..2).map(|_| PinnedCown::new(&rt, ()).unwrap()).collect();
    let failed = rt.when((&pinned, &others[0]), |(n, _)| {
        *n += 1;
        panic!("main-side failure");
    });
    let after = rt.when((&pinned, &others[1]), |(n, _)| {
        *n += 1;
        *n
    });
    let report = rt.pump(Budget::unbounded()).unwrap();
    assert_eq!((report.executed, report.raised, report.pending), (2, 1, 0));
    assert!(matches!(failed.take(), Err(Error::Panicked(message)) if message == "main-side failure"));
    assert_eq!(after.take().unwrap(), 2);
}

#[test]
fn pinned_cowns_are_created_only_on_the_home_thread() {
    let rt = runtime(1);
    let handle = rt.handle();
    let result = std::thread::spawn(move || PinnedCown::new(&handle, 5).map(|_| ())).join().unwrap();
    assert!(matches!(result, Err(Error::NotHomeThread)));
    let handle = rt.handle();
    let from_worker =
        rt.when(&Cown::new(()), move |_| matches!(PinnedCown::new(&handle, 5), Err(Error::NotHomeThread)));
    rt.quiesce().unwrap();
    assert!(from_worker.take().unwrap());
}

#[test]
fn pinned_cowns_of_another_runtime_are_refused() {
    let (first, second) = (runtime(1), runtime(1));
    let pinned = PinnedCown::new(&first, ()).unwrap();
    assert!(matches!(second.try_when(&pinned, |_| ()), Err(Error::ForeignPinnedCown)));
    assert!(matches!(second.try_when((&Cown::new(1), &pinned), |_| ()), Err(Error::ForeignPinnedCown)));
}

/// Records the thread its value is dropped on. The `Rc` makes it `!Send`,
/// as a thread-affine resource would be.
struct DropProbe(Arc<Mutex<Option<ThreadId>>>, #[allow(dead_code)] Rc<()>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(here());
    }
}

#[test]
fn a_pinned_value_is_dropped_on_the_home_thread_even_when_its_last_handle_dies_on_a_worker() {
    let rt = runtime(2);
    let dropped_on = Arc::new(Mutex::new(None));
    let pinned = PinnedCown::new(&rt, DropProbe(Arc::clone(&dropped_on), Rc::new(()))).unwrap();
    // The only handle left moves into a worker behavior and dies there.
    rt.when(&Cown::new(()), move |_| drop(pinned));
    rt.quiesce().unwrap();
    assert_eq!(*dropped_on.lock().unwrap(), Some(here()));
}

#[test]
fn workers_schedule_onto_pinned_cowns_and_quiesce_runs_it_at_home() {
    let rt = runtime(2);
    let home = here();
    let seen = PinnedCown::new(&rt, Vec::new()).unwrap();
    let handle = rt.handle();
    for idx in 0..100_u32 {
        let (handle, seen) = (handle.clone(), seen.clone());
        rt.when(&Cown::new(idx), move |value| {
            let square = *value * *value;
            handle.when(&seen, move |seen| seen.push((square, here())));
        });
    }
    let all = rt.when(&seen, std::mem::take);
    rt.quiesce().unwrap();
    // `all` was scheduled before the workers' behaviors reached `seen`, so
    // read the rest after.
    let mut squares: Vec<_> = all.take().unwrap();
    let rest = rt.when(&seen, std::mem::take);
    rt.quiesce().unwrap();
    squares.extend(rest.take().unwrap());
    assert_eq!(squares.len(), 100);
    assert!(squares.iter().all(|(_, thread)| *thread == home));
    let mut values: Vec<_> = squares.into_iter().map(|(square, _)| square).collect();
    values.sort_unstable();
    assert_eq!(values, (0..100).map(|v| v * v).collect::<Vec<_>>());
}

#[test]
fn quiesce_at_home_blocks_instead_of_polling() {
    let rt = runtime(1);
    let before = rt.n_home_wakeups();
    // One worker behavior that takes a second: the home thread has nothing
    // to pump meanwhile and must sleep until quiescence wakes it.
    rt.when(&Cown::new(()), |_| std::thread::sleep(Duration::from_secs(1)));
    let started = Instant::now();
    rt.quiesce().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let wakeups = rt.n_home_wakeups() - before;
    assert!(wakeups <= 2, "an idle second cost {wakeups} wakeups: quiesce is polling");
}

#[test]
fn quiesce_at_home_wakes_for_main_side_work_from_workers() {
    let rt = runtime(1);
    let pinned = PinnedCown::new(&rt, 0_u32).unwrap();
    let handle = rt.handle();
    let inner = pinned.clone();
    // A worker behavior that hands work to the home thread halfway through.
    rt.when(&Cown::new(()), move |_| {
        handle.when(&inner, |n| *n += 1);
        std::thread::sleep(Duration::from_millis(300));
    });
    rt.quiesce().unwrap();
    let value = rt.when(&pinned, |n| *n);
    rt.quiesce().unwrap();
    assert_eq!(value.take().unwrap(), 1);
}

fn recording_watchdog(threshold: Duration) -> (WatchdogConfig, Arc<Mutex<Vec<String>>>) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reports);
    let config = WatchdogConfig::new(threshold)
        .with_sink(move |report: &StarvationReport| sink.lock().unwrap().push(report.to_string()));
    (config, reports)
}

fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

#[test]
fn the_watchdog_fires_without_any_pump_and_names_the_waiting_behavior() {
    let (config, reports) = recording_watchdog(Duration::from_millis(50));
    let rt = Runtime::builder().workers(1).watchdog(Some(config)).build().unwrap();
    let pinned = PinnedCown::new(&rt, ()).unwrap();
    rt.when_labeled("redraw the window", &pinned, |_| ()).unwrap();
    rt.when(&pinned, |_| ()); // labelled by its call site
    assert!(wait_until(Duration::from_secs(10), || !reports.lock().unwrap().is_empty()), "the watchdog never fired");
    std::thread::sleep(Duration::from_millis(200));
    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 1, "once per episode: {reports:?}");
    assert!(reports[0].contains("redraw the window"), "{}", reports[0]);
    rt.quiesce().unwrap();
}

#[test]
fn the_watchdog_stays_silent_for_worker_only_work() {
    let (config, reports) = recording_watchdog(Duration::from_millis(50));
    let rt = Runtime::builder().workers(1).watchdog(Some(config)).build().unwrap();
    let cown = Cown::new(0_u32);
    for _ in 0..20 {
        rt.when(&cown, |n| {
            *n += 1;
            std::thread::sleep(Duration::from_millis(10));
        });
    }
    rt.quiesce().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(reports.lock().unwrap().is_empty());
}

#[test]
fn a_pinned_value_is_reachable_from_outside_only_at_home_and_when_idle() {
    let rt = runtime(1);
    let pinned = PinnedCown::new(&rt, Rc::new(RefCell::new(3_u32))).unwrap();
    assert_eq!(pinned.try_with(|value| *value.borrow()).unwrap(), 3);
    rt.when(&pinned, |value| *value.borrow_mut() += 1);
    assert!(matches!(pinned.try_with(|_| ()), Err(Error::Busy)), "a behavior waits for it");
    rt.quiesce().unwrap();
    assert_eq!(pinned.try_with(|value| *value.borrow()).unwrap(), 4);
    let elsewhere = pinned.clone();
    let result =
        std::thread::spawn(move || matches!(elsewhere.try_with(|_| ()), Err(Error::NotHomeThread))).join().unwrap();
    assert!(result);
}
