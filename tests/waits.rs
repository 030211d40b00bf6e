//! Waits that could never end are refused, or documented where they cannot
//! be detected (issue 15, `quiesce_inside_try_with.rs`,
//! `two_runtimes_one_thread.rs`).

use boc::{Cown, Error, PinnedCown, Runtime};
use std::time::Duration;

fn runtime(n_workers: usize) -> Runtime {
    Runtime::builder().workers(n_workers).watchdog(None).build().unwrap()
}

/// The repro: a behavior scheduled on the held cown could only run after
/// the closure returns, so the wait inside it used to hang.
#[test]
fn quiesce_inside_try_with_is_refused() {
    let rt = runtime(1);
    let c = Cown::new(0);
    let waited = c.try_with(|_| {
        rt.when(&c, |v| *v += 1);
        rt.quiesce_timeout(Duration::from_secs(30))
    });
    assert!(matches!(waited, Ok(Err(Error::WaitWhileHolding))), "{waited:?}");
    let waited = c.try_with(|_| rt.quiesce());
    assert!(matches!(waited, Err(Error::Busy)), "the behavior is queued on it now");
    rt.quiesce().unwrap();
    assert_eq!(c.try_with(|v| *v).unwrap(), 1);
    // Refused whatever the cown (the hold is this thread's), and on a
    // pinned cown's closure too; allowed again once the closure returned.
    let other = Cown::new(());
    assert!(matches!(other.try_with(|_| rt.quiesce()), Ok(Err(Error::WaitWhileHolding))));
    let pinned = PinnedCown::new(&rt, ()).unwrap();
    assert!(matches!(pinned.try_with(|_| rt.quiesce()), Ok(Err(Error::WaitWhileHolding))));
    let nested = other.try_with(|_| c.try_with(|_| ()).map(|()| rt.quiesce()));
    assert!(matches!(nested, Ok(Ok(Err(Error::WaitWhileHolding)))));
    rt.quiesce().unwrap();
}

/// A panicking closure still lets go of the count of holds.
#[test]
fn a_panicking_try_with_closure_ends_its_hold() {
    let rt = runtime(1);
    let c = Cown::new(0);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.try_with(|_| panic!("inside"))));
    assert!(unwound.is_err());
    rt.quiesce().unwrap();
}

/// A runtime dropped inside a `try_with` closure, with a behavior queued
/// behind the held cown: the drop does not wait (it would never end), and
/// the behavior runs once the closure returns.
#[test]
fn a_runtime_dropped_inside_try_with_does_not_hang() {
    let rt = runtime(1);
    let h = rt.handle();
    let c = Cown::new(0);
    let slot = PinnedCown::new(&h, Some(rt)).unwrap();
    let pending = slot
        .try_with(|rt| {
            let pending = h.when(&c, |v| {
                *v += 1;
                *v
            });
            // Queued behind the hold on `slot`: needs the closure to return.
            h.when((&slot, &c), |(_, v)| *v += 1);
            drop(rt.take());
            pending
        })
        .unwrap();
    h.quiesce_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(pending.take().unwrap(), 1);
    assert_eq!(c.try_with(|v| *v).unwrap(), 2);
}

/// Documented, not detected: two runtimes on one home thread that share a
/// cown. A main-side behavior of `rt1` holds the cown's queue; `rt2`'s
/// behavior behind it can only run after the home thread pumps `rt1`, which
/// it cannot do while it waits in `rt2.quiesce`. The timed wait shows it;
/// pumping `rt1` first resolves it.
#[test]
fn two_runtimes_on_one_home_thread_sharing_a_cown_need_both_pumped() {
    let rt1 = runtime(1);
    let rt2 = runtime(1);
    let pin1 = PinnedCown::new(&rt1, ()).unwrap();
    let c = Cown::new(0);
    rt1.when((&pin1, &c), |(_, c)| *c += 1);
    let p = rt2.when(&c, |c| {
        *c += 1;
        *c
    });
    let waited = rt2.quiesce_timeout(Duration::from_millis(200));
    assert!(matches!(waited, Err(Error::Timeout(_, 1))), "{waited:?}");
    rt1.quiesce().unwrap();
    rt2.quiesce().unwrap();
    assert_eq!(p.take().unwrap(), 2);
}

/// A value a behavior captured is dropped after the behavior, before it is
/// counted out: a wait from its `Drop` would wait for that behavior. Refused
/// on every thread that finishes behaviors: a worker, and the home thread
/// (inside its pump, and with zero workers).
#[test]
fn quiesce_in_the_drop_of_a_captured_value_is_refused() {
    use std::sync::{Arc, Mutex};

    struct WaitsWhenDropped {
        handle: boc::Handle,
        waited: Arc<Mutex<Vec<Result<(), Error>>>>,
    }

    impl Drop for WaitsWhenDropped {
        fn drop(&mut self) {
            let waited = self.handle.quiesce_timeout(Duration::from_secs(30));
            self.waited.lock().unwrap().push(waited);
        }
    }

    for n_workers in [0, 1] {
        let rt = runtime(n_workers);
        let waited = Arc::new(Mutex::new(Vec::new()));
        let ordinary = Cown::new(0);
        let pinned = PinnedCown::new(&rt, 0).unwrap();
        let on_worker = WaitsWhenDropped { handle: rt.handle(), waited: Arc::clone(&waited) };
        rt.when(&ordinary, move |_| {
            let _moved_in = &on_worker;
        });
        let at_home = WaitsWhenDropped { handle: rt.handle(), waited: Arc::clone(&waited) };
        rt.when(&pinned, move |_| {
            let _moved_in = &at_home;
        });
        rt.quiesce_timeout(Duration::from_secs(30)).unwrap();
        let waited = waited.lock().unwrap();
        assert_eq!(waited.len(), 2, "{n_workers} workers: both values dropped");
        for waited in waited.iter() {
            assert!(matches!(waited, Err(Error::WaitInsideBehavior)), "{n_workers} workers: {waited:?}");
        }
    }
}

/// Only a wait on the same runtime is refused: a behavior of one runtime may
/// wait for another (docs/guide.md), also from the home thread's pump.
#[test]
fn a_behavior_may_wait_for_another_runtime() {
    for n_workers in [0, 1] {
        let (rt1, rt2) = (runtime(n_workers), runtime(1));
        let (ordinary, pinned) = (Cown::new(0), PinnedCown::new(&rt1, 0).unwrap());
        let work = Cown::new(0);
        let (other, other_too) = (rt2.handle(), rt2.handle());
        let (work1, work2) = (work.clone(), work.clone());
        let on_worker = rt1.when(&ordinary, move |_| {
            other.when(&work1, |n| *n += 1);
            other.quiesce_timeout(Duration::from_secs(30))
        });
        let at_home = rt1.when(&pinned, move |_| {
            other_too.when(&work2, |n| *n += 1);
            other_too.quiesce_timeout(Duration::from_secs(30))
        });
        rt1.quiesce_timeout(Duration::from_secs(30)).unwrap();
        on_worker.take().unwrap().unwrap();
        at_home.take().unwrap().unwrap();
        rt2.quiesce().unwrap();
        assert_eq!(work.try_with(|n| *n).unwrap(), 2, "{n_workers} workers");
    }
}
