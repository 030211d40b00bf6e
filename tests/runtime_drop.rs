//! Dropping a `Runtime` where its drop cannot wait: inside one of its own
//! main-side behaviors (a `PinnedCown` may hold a non-`Send` value, so it
//! can hold the runtime itself). No safe program may make the runtime
//! dispatch through freed memory, and the behaviors queued behind still
//! run (issue 15, `runtime_dropped_in_own_behavior_{uaf,hang}.rs`).
//!
//! `cargo xtask miri` runs this file under Miri (Tree Borrows), all but
//! the looping test.

use boc::{Budget, Cown, Error, PinnedCown, Runtime};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

fn runtime(n_workers: usize) -> Runtime {
    Runtime::builder().workers(n_workers).watchdog(None).build().unwrap()
}

/// The use-after-free repro: a behavior waits behind a `try_with` hold on
/// another thread while the runtime is dropped inside its own main-side
/// behavior and every handle is gone; the hold's release then dispatches
/// the waiting behavior. Before the fix the dispatcher was freed memory
/// (a segfault in release, a Miri report in `dispatch_to`).
#[test]
fn a_runtime_dropped_inside_its_own_behavior_outlives_the_behaviors_queued_behind_a_hold() {
    let rt = runtime(1);
    let h = rt.handle();
    let c = Cown::new(0_u64);
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let c = c.clone();
        thread::spawn(move || {
            c.try_with(|_| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
            .unwrap();
        })
    };
    held_rx.recv().unwrap();
    // Waits behind the hold; dispatched through the runtime when it drops.
    let pending = h.when(&c, |value| {
        *value += 1;
        *value
    });
    let slot = PinnedCown::new(&h, Some(rt)).unwrap();
    h.when(&slot, |rt| drop(rt.take()));
    h.pump(Budget::unbounded()).unwrap();
    drop(slot);
    drop(h); // the last handle: only what the behavior keeps alive is left
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !pending.is_finished() {
        assert!(std::time::Instant::now() < deadline, "the behavior behind the hold never ran");
        thread::yield_now();
    }
    assert_eq!(pending.take().unwrap(), 1);
    assert_eq!(c.try_with(|value| *value).unwrap(), 1);
}

/// The hang repro: the behaviors queued behind the one that drops the
/// runtime still run, and the handles can still quiesce.
#[test]
fn behaviors_queued_behind_the_one_that_drops_the_runtime_still_run() {
    let rt = runtime(2);
    let h = rt.handle();
    let c = Cown::new(0_u64);
    let slot = PinnedCown::new(&h, Some(rt)).unwrap();
    h.when((&slot, &c), |(rt, _)| drop(rt.take()));
    let later: Vec<_> = (0..10)
        .map(|_| {
            h.when(&c, |value| {
                *value += 1;
                *value
            })
        })
        .collect();
    h.pump(Budget::unbounded()).unwrap();
    h.quiesce_timeout(Duration::from_secs(30)).unwrap();
    let results: Vec<u64> = later.iter().map(|pending| pending.take().unwrap()).collect();
    assert_eq!(results, (1..=10).collect::<Vec<_>>());
    assert_eq!(h.n_in_flight(), 0);
    assert!(matches!(h.try_when(&c, |value| *value), Err(Error::ShutDown)), "a dropped runtime takes no new work");
}

/// The same drop with main-side work queued behind it: it runs when the
/// home thread next pumps through a handle.
#[test]
fn main_side_work_queued_behind_the_drop_runs_when_a_handle_pumps() {
    let rt = runtime(1);
    let h = rt.handle();
    let pin = PinnedCown::new(&h, 0_u32).unwrap();
    let slot = PinnedCown::new(&h, Some(rt)).unwrap();
    h.when((&slot, &pin), |(rt, _)| drop(rt.take()));
    let after: Vec<_> = (0..3)
        .map(|_| {
            h.when(&pin, |n| {
                *n += 1;
                *n
            })
        })
        .collect();
    h.pump(Budget::count(1)).unwrap();
    assert!(!after[0].is_finished());
    h.quiesce().unwrap();
    let results: Vec<u32> = after.iter().map(|pending| pending.take().unwrap()).collect();
    assert_eq!(results, [1, 2, 3]);
}

/// Repeats the use-after-free scenario; under a sanitizer-free release
/// build a dangling dispatch crashed within a few runs.
#[test]
#[cfg_attr(miri, ignore = "looping is for native runs; Miri runs the single case")]
fn the_drop_inside_a_behavior_is_sound_across_many_runs() {
    for _ in 0..20 {
        a_runtime_dropped_inside_its_own_behavior_outlives_the_behaviors_queued_behind_a_hold();
        behaviors_queued_behind_the_one_that_drops_the_runtime_still_run();
    }
}

/// A runtime dropped mid-flight from outside any behavior waits for all
/// its work, which keeps holding.
#[test]
fn a_runtime_dropped_with_work_queued_waits_for_it() {
    let rt = runtime(1);
    let c = Cown::new(0_u64);
    let pin = PinnedCown::new(&rt, 0_u64).unwrap();
    let mut results = Vec::new();
    for _ in 0..20 {
        results.push(rt.when(&c, |n| {
            *n += 1;
            *n
        }));
        rt.when((&pin, &c), |(p, n)| *p = *n);
    }
    drop(rt);
    assert_eq!(results.last().unwrap().take().unwrap(), 20);
    assert_eq!(c.try_with(|n| *n).unwrap(), 20);
    assert_eq!(pin.try_with(|p| *p).unwrap(), 20);
}
