//! Integration tests of `Terminator`: counting, waiting with and without a
//! timeout, several waiters, and misuse.

use boc_sched::Terminator;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn wait_idle_at_zero_returns_true_at_once() {
    let terminator = Terminator::default();
    assert_eq!(terminator.count(), 0);
    assert!(terminator.wait_idle(None));
    assert!(terminator.wait_idle(Some(Duration::ZERO)));
}

#[test]
fn wait_idle_times_out_while_nonzero() {
    let terminator = Terminator::new();
    terminator.increment();
    terminator.increment();
    assert_eq!(terminator.count(), 2);
    assert!(!terminator.wait_idle(Some(Duration::from_millis(20))));
    assert!(!terminator.wait_idle(Some(Duration::ZERO)));
    terminator.decrement();
    assert!(!terminator.wait_idle(Some(Duration::from_millis(1))));
    terminator.decrement();
    assert!(terminator.wait_idle(Some(Duration::from_millis(1))));
}

#[test]
fn the_decrement_reaching_zero_wakes_every_waiter() {
    let terminator = Arc::new(Terminator::new());
    terminator.increment();
    let ready = Arc::new(Barrier::new(5));
    let waiters: Vec<_> = (0..4)
        .map(|waiter_idx| {
            let (terminator, ready) = (Arc::clone(&terminator), Arc::clone(&ready));
            thread::spawn(move || {
                ready.wait();
                if waiter_idx % 2 == 0 { terminator.wait_idle(None) } else { terminator.wait_idle(Some(PATIENCE)) }
            })
        })
        .collect();
    ready.wait();
    // Give the waiters a chance to block first (either order must work).
    thread::sleep(Duration::from_millis(20));
    terminator.decrement();
    for waiter in waiters {
        assert!(waiter.join().unwrap());
    }
}

#[test]
fn a_waiter_sees_a_zero_even_if_the_count_rises_again() {
    // Repeated 1 -> 0 -> 1 bounces while a thread waits: the waiter must
    // return (true) at one of the zeros, not sleep through all of them.
    let terminator = Arc::new(Terminator::new());
    terminator.increment();
    let waiter = {
        let terminator = Arc::clone(&terminator);
        thread::spawn(move || terminator.wait_idle(Some(PATIENCE)))
    };
    while !waiter.is_finished() {
        terminator.increment();
        terminator.decrement();
        terminator.decrement();
        terminator.increment();
        thread::yield_now();
    }
    assert!(waiter.join().unwrap());
}

#[test]
fn huge_timeouts_wait_forever() {
    let terminator = Arc::new(Terminator::new());
    terminator.increment();
    let waiter = {
        let terminator = Arc::clone(&terminator);
        thread::spawn(move || terminator.wait_idle(Some(Duration::MAX)))
    };
    thread::sleep(Duration::from_millis(10));
    terminator.decrement();
    assert!(waiter.join().unwrap());
}

#[test]
#[should_panic(expected = "more often than increment")]
fn decrement_below_zero_panics() {
    Terminator::new().decrement();
}

#[test]
fn closing_refuses_new_work_but_still_counts_work_in_flight() {
    let terminator = Terminator::new();
    assert!(!terminator.is_closed());
    assert!(terminator.try_increment());
    terminator.close();
    terminator.close(); // idempotent
    assert!(terminator.is_closed());
    assert!(!terminator.try_increment());
    assert_eq!(terminator.count(), 1);
    // A behavior in flight may still schedule a child.
    terminator.increment();
    assert_eq!(terminator.count(), 2);
    assert!(!terminator.wait_idle(Some(Duration::from_millis(1))));
    terminator.decrement();
    terminator.decrement();
    assert_eq!(terminator.count(), 0);
    assert!(terminator.wait_idle(None));
    assert!(!terminator.try_increment());
    assert_eq!(terminator.count(), 0);
}

#[test]
fn try_increment_racing_close_is_either_counted_or_refused() {
    for _ in 0..200 {
        let terminator = Arc::new(Terminator::new());
        let start = Arc::new(Barrier::new(3));
        let schedulers: Vec<_> = (0..2)
            .map(|_| {
                let (terminator, start) = (Arc::clone(&terminator), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    (0..100).filter(|_| terminator.try_increment()).count()
                })
            })
            .collect();
        start.wait();
        terminator.close();
        let counted: usize = schedulers.into_iter().map(|s| s.join().unwrap()).sum();
        assert_eq!(terminator.count(), counted);
        for _ in 0..counted {
            terminator.decrement();
        }
        assert!(terminator.wait_idle(Some(Duration::ZERO)));
    }
}

#[test]
fn try_close_idle_closes_only_at_zero() {
    let terminator = Terminator::new();
    terminator.increment();
    assert!(!terminator.try_close_idle(), "work in flight: stays open");
    assert!(terminator.try_increment());
    terminator.decrement();
    terminator.decrement();
    assert!(terminator.try_close_idle());
    assert!(terminator.is_closed());
    assert!(!terminator.try_increment(), "closed: new work refused");
    assert_eq!(terminator.count(), 0);
}

/// `decrement_unless_last` counts out while others are in flight, closed or
/// not, and refuses (changing nothing) the decrement that would reach zero.
#[test]
fn decrement_unless_last_never_reaches_zero() {
    let in_flight = Terminator::new();
    for _ in 0..3 {
        in_flight.increment();
    }
    // SAFETY: `in_flight` is alive for every call.
    assert!(unsafe { Terminator::decrement_unless_last(&in_flight) });
    in_flight.close();
    // SAFETY: as above.
    assert!(unsafe { Terminator::decrement_unless_last(&in_flight) });
    assert_eq!(in_flight.count(), 1);
    // SAFETY: as above.
    assert!(!unsafe { Terminator::decrement_unless_last(&in_flight) }, "the last one is refused");
    assert_eq!(in_flight.count(), 1);
    assert!(in_flight.is_closed());
    assert!(in_flight.decrement(), "the plain decrement reaches zero");
    assert!(in_flight.wait_idle(Some(Duration::ZERO)));
}
