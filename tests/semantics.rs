//! The facade's promises: order per cown, duplicates, request-set sizes,
//! nested scheduling, panics, results, errors.

use boc::{Cown, Error, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn runtime() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

#[test]
fn behaviors_on_one_cown_run_in_schedule_order() {
    let rt = runtime();
    let log = Cown::new(Vec::new());
    let others: Vec<_> = (0..8).map(|_| Cown::new(0_u32)).collect();
    for idx in 0..10_000_usize {
        // Mix in other cowns so behaviors become ready through different paths.
        let other = &others[idx % others.len()];
        if idx % 3 == 0 {
            rt.when((&log, other), move |(log, other)| {
                log.push(idx);
                *other += 1;
            });
        } else {
            rt.when(&log, move |log| log.push(idx));
        }
    }
    let result = rt.when(&log, std::mem::take);
    rt.quiesce().unwrap();
    assert_eq!(result.take().unwrap(), (0..10_000).collect::<Vec<_>>());
}

#[test]
fn slice_request_sets_allow_duplicates() {
    let rt = runtime();
    let (a, b) = (Cown::new(0_i32), Cown::new(0_i32));
    let set = vec![a.clone(), b.clone(), a.clone(), a.clone()];
    let seen = rt.when(&set, |mut slots| {
        assert_eq!(slots.len(), 4);
        slots.for_each_mut(|_, value| *value += 1);
        slots[1] += 10;
        slots.iter().copied().collect::<Vec<_>>()
    });
    rt.quiesce().unwrap();
    // `a` was incremented once per appearance (3), `b` once plus 10.
    assert_eq!(seen.take().unwrap(), [3, 11, 3, 3]);
    assert!(a.is_idle() && b.is_idle());
    drop(set);
    assert_eq!(a.try_into_inner().ok(), Some(3), "the behavior dropped its handles");
}

#[test]
fn tuple_request_sets_refuse_duplicates() {
    let rt = runtime();
    let a = Cown::new(0_i32);
    let b = Cown::new(0_i32);
    let result = rt.try_when((&a, &b, &a), |(x, _, y)| *x + *y);
    assert!(matches!(result, Err(Error::DuplicateCown { key }) if key == a.key()));
    let message = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = rt.when((&b, &b), |(x, y)| *x + *y);
    }))
    .expect_err("when must panic on a duplicate in a tuple");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("appears more than once"), "{message}");
    rt.quiesce().unwrap();
    assert!(a.is_idle() && b.is_idle());
}

#[test]
fn request_sets_of_every_size_up_to_64() {
    let rt = runtime();
    let cowns: Vec<_> = (0..64).map(|_| Cown::new(0_usize)).collect();
    let mut results = Vec::new();
    for size in 1..=64 {
        // Overlapping windows, rotated so the sets also differ in order.
        let set: Vec<_> = (0..size).map(|idx| cowns[(idx * 7 + size) % 64].clone()).collect();
        results.push(rt.when(set, |mut slots| {
            slots.for_each_mut(|_, value| *value += 1);
            slots.len()
        }));
    }
    rt.quiesce().unwrap();
    for (idx, result) in results.iter().enumerate() {
        assert_eq!(result.take().unwrap(), idx + 1);
    }
    let total = rt.when(&cowns, |slots| slots.iter().sum::<usize>());
    rt.quiesce().unwrap();
    assert_eq!(total.take().unwrap(), (1..=64).sum::<usize>());
}

#[test]
fn tuples_of_every_arity() {
    let rt = runtime();
    let c: Vec<_> = (0..8).map(|idx| Cown::new(idx as u64)).collect();
    let one = rt.when((&c[0],), |(a,)| *a);
    let two = rt.when((&c[0], &c[1]), |(a, b)| *a + *b);
    let three = rt.when((&c[0], &c[1], &c[2]), |(a, b, c)| *a + *b + *c);
    let four = rt.when((&c[0], &c[1], &c[2], &c[3]), |(a, b, c, d)| *a + *b + *c + *d);
    let five = rt.when((&c[0], &c[1], &c[2], &c[3], &c[4]), |(a, b, c, d, e)| *a + *b + *c + *d + *e);
    let six = rt.when((&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]), |(a, b, c, d, e, f)| *a + *b + *c + *d + *e + *f);
    let seven = rt.when((&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6]), |(a, b, c, d, e, f, g)| {
        *a + *b + *c + *d + *e + *f + *g
    });
    let eight = rt.when((&c[7], &c[6], &c[5], &c[4], &c[3], &c[2], &c[1], &c[0]), |(a, b, c, d, e, f, g, h)| {
        *a + *b + *c + *d + *e + *f + *g + *h
    });
    rt.quiesce().unwrap();
    let sums: Vec<u64> = [one, two, three, four, five, six, seven, eight].iter().map(|p| p.take().unwrap()).collect();
    assert_eq!(sums, [0, 1, 3, 6, 10, 15, 21, 28]);
}

#[test]
fn behaviors_schedule_behaviors() {
    let rt = runtime();
    let counter = Cown::new(0_u32);
    let (handle, inner) = (rt.handle(), counter.clone());
    rt.when(&counter, move |n| {
        *n += 1;
        for _ in 0..100 {
            let handle2 = handle.clone();
            let inner2 = inner.clone();
            handle.when(&inner, move |n| {
                *n += 1;
                handle2.when(&inner2, |n| *n += 1);
            });
        }
    });
    rt.quiesce().unwrap();
    let total = rt.when(&counter, |n| *n);
    rt.quiesce().unwrap();
    assert_eq!(total.take().unwrap(), 201);
}

#[test]
fn a_panicking_body_is_recorded_and_the_runtime_lives_on() {
    let rt = runtime();
    let cown = Cown::new(0_u32);
    let before = rt.when(&cown, |n| *n += 1);
    let failed = rt.when(&cown, |n| {
        *n += 1;
        if *n == 2 {
            panic!("body failed on purpose");
        }
    });
    let after = rt.when(&cown, |n| {
        *n += 1;
        *n
    });
    rt.quiesce().unwrap();
    assert!(before.take().is_ok());
    assert!(matches!(failed.take(), Err(Error::Panicked(message)) if message == "body failed on purpose"));
    assert_eq!(after.take().unwrap(), 3, "the cown was released and later behaviors ran");
    // Workers survived: more work still runs on both.
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..1_000 {
        let ran = Arc::clone(&ran);
        rt.when(&Cown::new(()), move |_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
    }
    rt.quiesce().unwrap();
    assert_eq!(ran.load(Ordering::Relaxed), 1_000);
}

#[test]
fn results_report_their_state() {
    let rt = runtime();
    let cown = Cown::new(5_u32);
    let result = rt.when(&cown, |n| *n * 2);
    rt.quiesce().unwrap();
    assert!(result.is_finished());
    assert_eq!(result.take().unwrap(), 10);
    assert!(matches!(result.take(), Err(Error::AlreadyTaken)));
}

#[test]
fn quiesce_inside_a_behavior_is_an_error() {
    let rt = runtime();
    let handle = rt.handle();
    let result = rt.when(&Cown::new(()), move |_| handle.quiesce());
    rt.quiesce().unwrap();
    assert!(matches!(result.take().unwrap(), Err(Error::WaitInsideBehavior)));
}

#[test]
fn handles_refuse_to_schedule_after_the_runtime_is_dropped() {
    let rt = runtime();
    let handle = rt.handle();
    let cown = Cown::new(1_u8);
    let result = handle.when(&cown, |n| *n);
    drop(rt);
    assert_eq!(result.take().unwrap(), 1, "drop waits for scheduled work");
    assert!(matches!(handle.try_when(&cown, |n| *n), Err(Error::ShutDown)));
}

#[test]
fn zero_workers_runs_everything_on_the_home_thread() {
    let rt = Runtime::builder().workers(0).build().unwrap();
    let home = std::thread::current().id();
    let cown = Cown::new(Vec::new());
    for idx in 0..100 {
        rt.when(&cown, move |log| log.push((idx, std::thread::current().id())));
    }
    assert_eq!(rt.n_main_pending(), 1, "a chain: one ready, the rest wait for the cown");
    let log = rt.when(&cown, std::mem::take);
    rt.quiesce().unwrap();
    let log = log.take().unwrap();
    assert_eq!(log.iter().map(|(idx, _)| *idx).collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
    assert!(log.iter().all(|(_, thread)| *thread == home));
}

#[test]
fn quiesce_timeout_reports_in_flight_work() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let gate = Arc::new(std::sync::Barrier::new(2));
    let inside = Arc::clone(&gate);
    let _blocked = rt.when(&Cown::new(()), move |_| {
        inside.wait();
    });
    let result = rt.quiesce_timeout(std::time::Duration::from_millis(20));
    assert!(matches!(result, Err(Error::Timeout(_, 1))), "{result:?}");
    gate.wait();
    rt.quiesce().unwrap();
}

#[test]
fn try_with_reads_and_writes_an_idle_cown_from_outside() {
    let rt = runtime();
    let cown = Cown::new(1_u32);
    assert_eq!(cown.try_with(|v| *v).unwrap(), 1);
    cown.try_with(|v| *v = 2).unwrap();
    rt.when(&cown, |v| *v *= 10);
    rt.quiesce().unwrap();
    assert_eq!(cown.try_with(|v| *v).unwrap(), 20);
    // From another thread too.
    let other = cown.clone();
    assert_eq!(std::thread::spawn(move || other.try_with(|v| *v).unwrap()).join().unwrap(), 20);
}

#[test]
fn try_with_is_busy_while_a_behavior_holds_or_waits_and_holds_off_later_ones() {
    let rt = runtime();
    let cown = Cown::new(0_u32);
    let gate = Arc::new(std::sync::Barrier::new(2));
    let inside = Arc::clone(&gate);
    rt.when(&cown, move |_| {
        inside.wait();
    });
    assert!(matches!(cown.try_with(|v| *v), Err(Error::Busy)));
    gate.wait();
    rt.quiesce().unwrap();
    // While the closure runs, a behavior scheduled on the cown waits.
    let ran = Arc::new(AtomicUsize::new(0));
    let seen_inside = cown
        .try_with(|v| {
            *v = 5;
            let ran_inside = Arc::clone(&ran);
            rt.when(&cown, move |v| {
                *v += 1;
                ran_inside.fetch_add(1, Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            ran.load(Ordering::SeqCst)
        })
        .unwrap();
    assert_eq!(seen_inside, 0, "the behavior waited for the hold");
    rt.quiesce().unwrap();
    assert_eq!(cown.try_with(|v| *v).unwrap(), 6);
    // Inside a behavior that holds it: busy, never a deadlock.
    let same = cown.clone();
    let inner = rt.when(&cown, move |_| matches!(same.try_with(|v| *v), Err(Error::Busy)));
    rt.quiesce().unwrap();
    assert!(inner.take().unwrap());
}
