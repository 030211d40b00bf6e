//! `boc::engine`, the one engine under the facade (and, next, the Python
//! binding): epochs, counting in and out, tickets that keep their epoch
//! alive, pinned work sent home.
//!
//! `cargo xtask miri` runs this file under Miri (Tree Borrows).

use boc::engine::{
    Config, CownHeader, Engine, Home, MainConfig, MainRunner, Outcome, Payload, PlainWorkers, PoolOptions, Ready,
    Retired, WaitOutcome,
};
use boc::{Budget, Cown, Error, Runtime};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

fn engine() -> Engine<PlainWorkers> {
    let config = Config { home: Home::Current, main: MainConfig { watchdog: None } };
    Engine::new(config, Arc::new(PlainWorkers)).unwrap()
}

/// Runs main-side behaviors for `Engine::pump`.
struct RunAll;

impl MainRunner<Ready> for RunAll {
    fn run(&self, behavior: Ready) -> Outcome {
        behavior.run();
        Outcome::Ok
    }
}

/// A payload that records the thread it ran on.
struct RecordThread(mpsc::Sender<thread::ThreadId>);

impl Payload for RecordThread {
    fn run(&mut self) {
        self.0.send(thread::current().id()).unwrap();
    }
}

#[test]
fn start_keeps_a_live_epoch_of_the_same_size_and_refuses_another() {
    let engine = engine();
    assert!(matches!(engine.count_in(), Err(Error::ShutDown)), "no epoch yet");
    let first = engine.start(2, PoolOptions::default()).unwrap();
    let again = engine.start(2, PoolOptions::default()).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(first.n_workers(), 2);
    assert!(matches!(engine.start(3, PoolOptions::default()), Err(Error::AlreadyRunning { live: 2, asked: 3 })));
    engine.shut_down();
    assert!(matches!(engine.start(2, PoolOptions::default()), Err(Error::ShutDown)));
    assert!(matches!(engine.count_in(), Err(Error::ShutDown)));
}

#[test]
fn a_dropped_ticket_counts_out_and_wakes_the_home_thread() {
    let engine = engine();
    engine.start(1, PoolOptions::default()).unwrap();
    let ticket = engine.count_in().unwrap();
    assert_eq!(engine.n_in_flight(), 1);
    drop(ticket);
    assert_eq!(engine.n_in_flight(), 0);
    // The count-out that reached zero left a wake for the home thread.
    assert_eq!(engine.main().wait_for_work(Some(Duration::ZERO)).unwrap(), WaitOutcome::Woken);
}

/// Sent home: counted (waits wait for it), queued for the home thread
/// (signalled like any main-side work), run there by a pump.
#[test]
fn send_home_is_counted_signalled_and_run_at_home() {
    let engine = engine();
    engine.start(1, PoolOptions::default()).unwrap();
    let n_wakes = Arc::new(AtomicUsize::new(0));
    let waker_wakes = Arc::clone(&n_wakes);
    engine.main().set_waker(Some(Box::new(move || {
        waker_wakes.fetch_add(1, Ordering::SeqCst);
    })));
    let (ran_on, ran) = mpsc::channel();
    let engine = Arc::new(engine);
    let sender = Arc::clone(&engine);
    thread::spawn(move || assert!(sender.send_home(RecordThread(ran_on)).is_ok())).join().unwrap();
    assert_eq!(engine.n_in_flight(), 1);
    assert_eq!(engine.main().len(), 1);
    assert_eq!(n_wakes.load(Ordering::SeqCst), 1);
    assert_eq!(engine.pump(&RunAll, Budget::unbounded()).unwrap().executed, 1);
    assert_eq!(ran.recv().unwrap(), thread::current().id());
    assert_eq!(engine.n_in_flight(), 0);
}

#[test]
fn send_home_gives_the_payload_back_when_nothing_can_be_counted_in() {
    let engine = engine();
    let (ran_on, _ran) = mpsc::channel();
    assert!(engine.send_home(RecordThread(ran_on.clone())).is_err(), "no epoch started");
    engine.start(1, PoolOptions::default()).unwrap();
    engine.shut_down();
    assert!(engine.send_home(RecordThread(ran_on)).is_err(), "shut down");
    assert_eq!(engine.main().len(), 0);
}

/// A behavior counted in on an epoch keeps it alive: dropping the engine
/// (shut down first, or not: the drop closes the epoch itself) while the
/// behavior waits behind a hold on another thread is sound, and the
/// behavior still runs on the epoch's workers when the hold ends; its
/// count-out, the last, lets go of the epoch there.
#[test]
fn a_behavior_keeps_its_epoch_alive_after_the_engine_is_dropped() {
    behind_a_hold_the_engine_drops(true);
}

#[test]
fn a_behavior_keeps_its_epoch_alive_after_an_engine_never_shut_down_is_dropped() {
    behind_a_hold_the_engine_drops(false);
}

fn behind_a_hold_the_engine_drops(shut_down: bool) {
    /// Owns a handle to its cown until it is freed, after its release
    /// (`schedule`'s contract: the cown outlives the behavior).
    struct Bump(Arc<AtomicUsize>, mpsc::Sender<()>, #[allow(dead_code)] Arc<CownHeader>);

    impl Payload for Bump {
        fn run(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            self.1.send(()).unwrap();
        }
    }

    let cown = Arc::new(CownHeader::new());
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let cown = Arc::clone(&cown);
        thread::spawn(move || {
            let hold = cown.try_acquire().unwrap();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            drop(hold);
        })
    };
    held_rx.recv().unwrap();
    let engine = engine();
    engine.start(1, PoolOptions::default()).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let ticket = engine.count_in().unwrap();
    // SAFETY: the payload owns a handle to the cown until it is freed.
    unsafe { engine.schedule(ticket, [&*cown].into_iter(), Bump(Arc::clone(&ran), done_tx, Arc::clone(&cown)), 0) };
    if shut_down {
        engine.shut_down();
    }
    drop(engine); // the behavior is still linked behind the hold
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    done_rx.recv_timeout(Duration::from_secs(60)).expect("the behavior behind the hold never ran");
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

/// A ticket outlives its engine: counted in, then the engine shut down and
/// dropped, then the ticket dropped unscheduled. Its count kept the epoch
/// alive, and its count-out, the last, lets go of it.
#[test]
fn a_ticket_keeps_its_epoch_alive_after_the_engine_is_dropped() {
    for shut_down in [true, false] {
        let engine = engine();
        engine.start(1, PoolOptions::default()).unwrap();
        let ticket = engine.count_in().unwrap();
        let epoch = Arc::downgrade(&engine.current().unwrap());
        if shut_down {
            engine.shut_down();
        }
        drop(engine);
        assert!(epoch.upgrade().is_some(), "the ticket's count keeps the epoch");
        assert!(ticket.epoch().is_closed());
        assert_eq!(ticket.epoch().n_in_flight(), 1);
        drop(ticket);
        assert!(epoch.upgrade().is_none(), "the last count-out lets go of the epoch");
    }
}

/// Counting in and out on many threads while the engine shuts down and
/// drops: every count-out either leaves others in flight (and touches the
/// epoch no more) or may be the last (and holds it), and whichever is last
/// lets go of it. Miri checks that none reads it after it is freed.
#[test]
fn counting_races_the_engine_going_away() {
    let n_rounds = if cfg!(miri) { 3 } else { 200 };
    let n_threads = if cfg!(miri) { 3 } else { 4 };
    for _ in 0..n_rounds {
        let engine = Arc::new(engine());
        let epoch = Arc::downgrade(&engine.start(1, PoolOptions::default()).unwrap());
        let start = Arc::new(std::sync::Barrier::new(n_threads + 1));
        let counters: Vec<_> = (0..n_threads)
            .map(|_| {
                let engine = Arc::clone(&engine);
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    let mut tickets = std::collections::VecDeque::new();
                    start.wait();
                    // Until refused: counting in and out across the shutdown.
                    for idx in 0..10_000 {
                        match engine.count_in() {
                            Ok(ticket) => tickets.push_back(ticket),
                            Err(error) => {
                                assert!(matches!(error, Error::ShutDown));
                                break;
                            }
                        }
                        if idx % 2 == 1 {
                            drop(tickets.pop_front());
                        }
                    }
                    drop(engine);
                    // Counted out after the engine may be gone.
                    for ticket in tickets {
                        thread::yield_now();
                        drop(ticket);
                    }
                })
            })
            .collect();
        start.wait();
        thread::yield_now();
        engine.shut_down();
        drop(engine);
        for counter in counters {
            counter.join().unwrap();
        }
        assert!(epoch.upgrade().is_none(), "the last count-out let go of the epoch");
    }
}

/// Counting out comes after the behavior is done: a result is readable as
/// soon as a wait sees quiescence (looped, the window is a few
/// instructions wide).
#[test]
fn a_result_is_readable_as_soon_as_quiesce_returns() {
    let rt = Runtime::builder().workers(2).watchdog(None).build().unwrap();
    let cown = Cown::new(0_u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    let n_rounds = if cfg!(miri) { 20 } else { 2_000 };
    for round in 0..n_rounds {
        let result = rt.when(&cown, move |value| {
            *value += 1;
            round
        });
        rt.quiesce().unwrap();
        assert_eq!(result.take().unwrap(), round, "not finished when quiesce returned");
        assert!(Instant::now() < deadline);
    }
}

/// The binding's epochs: retired once idle (joined by the caller), and the
/// next one may have another worker count.
#[test]
fn an_idle_epoch_retires_and_the_next_may_have_another_count() {
    let engine = engine();
    assert!(matches!(engine.retire_if_idle(), Retired::NoEpoch));
    let first = engine.start(1, PoolOptions::default()).unwrap();
    let ticket = engine.count_in().unwrap();
    assert!(matches!(engine.retire_if_idle(), Retired::Busy));
    drop(ticket);
    let Retired::Retired(retired) = engine.retire_if_idle() else { panic!("an idle epoch retires") };
    assert!(Arc::ptr_eq(&retired, &first));
    assert!(retired.is_closed());
    retired.join();
    assert!(engine.current().is_none());
    assert!(matches!(engine.count_in(), Err(Error::ShutDown)), "nothing counts in on a retired epoch");
    let second = engine.ensure_started(3, PoolOptions::default()).unwrap();
    assert_eq!(second.n_workers(), 3);
    let same = engine.ensure_started(5, PoolOptions::default()).unwrap();
    assert!(Arc::ptr_eq(&same, &second), "ensure_started keeps a live epoch of any count");
}
