//! User code that panics where the runtime calls it in the middle of its
//! own work: the pump waker, the `Drop` of cown values, of results and of
//! panic payloads. The panic is caught and reported; no cown stays held,
//! no result stays unfinished, nothing escapes `pump` or `quiesce`
//! (issue 15, `waker_panic_leaves_cowns_held.rs`, `value_drop_panic.rs`).

use boc::{Budget, Cown, Error, PinnedCown, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn runtime(n_workers: usize) -> Runtime {
    Runtime::builder().workers(n_workers).watchdog(None).build().unwrap()
}

/// Panics when dropped.
struct Bomb(u32);

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("bomb {} dropped", self.0);
    }
}

/// A worker releasing (gate, a, b) makes a main-side behavior on `a` ready
/// and pushes it, which calls the waker; the waker panics. The release must
/// still reach `b`.
#[test]
fn a_panicking_waker_never_interrupts_a_release() {
    for _ in 0..20 {
        let rt = runtime(1);
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        rt.set_pump_waker(Some(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            panic!("waker panics");
        })));
        let (a, b) = (Cown::new(0_u64), Cown::new(0_u64));
        let pin = PinnedCown::new(&rt, ()).unwrap();
        let gate = Cown::new(());
        rt.when((&gate, &a, &b), |_| std::thread::sleep(Duration::from_millis(20)));
        let m = rt.when((&pin, &a), |(_, a)| *a += 1);
        let x = rt.when(&b, |b| *b += 1);
        rt.quiesce_timeout(Duration::from_secs(30)).expect("a stranded cown would hang here");
        assert!(m.is_finished() && x.is_finished());
        assert!(a.is_idle() && b.is_idle());
        assert!(calls.load(Ordering::SeqCst) >= 1, "the waker was called");
    }
}

/// The only handle of a cown whose value panics on drop travels in the
/// behavior: the value is dropped on the worker as the behavior releases.
#[test]
fn a_value_drop_panic_on_a_worker_leaves_the_result_finished() {
    let rt = runtime(1);
    let other = Cown::new(0_u32);
    let p = rt.when((&Cown::new(Bomb(1)), &other), |(_, o)| {
        *o += 1;
        7
    });
    let after = rt.when(&other, |o| *o);
    rt.quiesce_timeout(Duration::from_secs(30)).unwrap();
    assert!(p.is_finished());
    assert_eq!(p.take().unwrap(), 7, "the body's result stands");
    assert_eq!(after.take().unwrap(), 1);
}

/// The same on the home thread: the panic must not escape `quiesce`.
#[test]
fn a_value_drop_panic_on_the_home_thread_does_not_escape_quiesce() {
    let rt = runtime(1);
    let pin = PinnedCown::new(&rt, ()).unwrap();
    let p = rt.when((&pin, &Cown::new(Bomb(2))), |_| 7);
    rt.quiesce_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(p.take().unwrap(), 7);
    let q = rt.when(&pin, |_| 1);
    rt.quiesce_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(q.take().unwrap(), 1);
    assert_eq!(rt.n_in_flight(), 0);
}

/// A tuple with two such values: each drop is caught on its own (a second
/// panic while the first unwinds would abort the process).
#[test]
fn two_value_drop_panics_in_one_release_are_each_caught() {
    let rt = runtime(1);
    let p = rt.when((&Cown::new(Bomb(3)), &Cown::new(Bomb(4))), |_| 1);
    let slots = rt.when(vec![Cown::new(Bomb(5)), Cown::new(Bomb(6))], |slots| slots.len());
    rt.quiesce_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(p.take().unwrap(), 1);
    assert_eq!(slots.take().unwrap(), 2);
}

/// A body panicking with a payload whose own `Drop` panics: the result
/// reports the panic.
#[test]
fn a_panic_payload_whose_drop_panics_is_reported_as_the_panic() {
    struct BadPayload;
    impl Drop for BadPayload {
        fn drop(&mut self) {
            panic!("payload drop");
        }
    }
    for n_workers in [1, 0] {
        let rt = runtime(n_workers);
        let c = Cown::new(0);
        let p = rt.when(&c, |_| -> u8 { std::panic::panic_any(BadPayload) });
        rt.quiesce_timeout(Duration::from_secs(30)).unwrap();
        assert!(p.is_finished());
        assert!(p.is_panicked());
        assert!(matches!(p.take(), Err(Error::Panicked(message)) if message.contains("non-string payload")));
    }
}

/// A result nobody takes (its `Pending` dropped before the behavior ran)
/// is dropped where the behavior is freed, inside the release: on a worker
/// and on the home thread. Its panic is caught there.
#[test]
fn a_result_whose_drop_panics_is_dropped_quietly_by_the_runtime() {
    for n_workers in [1, 0] {
        let rt = runtime(n_workers);
        let c = Cown::new(0_u32);
        drop(rt.when(&c, |n| {
            *n += 1;
            Bomb(7)
        }));
        let after = rt.when(&c, |n| *n);
        rt.quiesce_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(after.take().unwrap(), 1);
    }
}

/// A pinned value whose `Drop` panics, dropped on the home thread by the
/// runtime: as a behavior lets go of its last handle, and when its last
/// handle dies off the home thread (the drop is sent home and pumped).
#[test]
fn a_pinned_value_drop_panic_does_not_escape_pump() {
    let rt = runtime(1);
    let keep = PinnedCown::new(&rt, ()).unwrap();
    let p = rt.when((&keep, &PinnedCown::new(&rt, Bomb(8)).unwrap()), |_| 3);
    rt.quiesce_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(p.take().unwrap(), 3);

    let pinned = PinnedCown::new(&rt, Bomb(9)).unwrap();
    std::thread::spawn(move || drop(pinned)).join().unwrap();
    let report = rt.pump(Budget::unbounded()).unwrap();
    assert_eq!(report.executed, 1, "the drop was sent home and pumped");
    rt.quiesce_timeout(Duration::from_secs(30)).unwrap();
}
