//! Behaviors communicating through a `Mailbox` and a `Noticeboard`: results
//! sent from worker behaviors to the test thread, per-cown order carried
//! into a tag's order, a main-side behavior receiving from a worker one,
//! and behaviors reading snapshots and updating the board.

use boc::{Change, Cown, Mailbox, Noticeboard, PinnedCown, Runtime};
use std::sync::Arc;
use std::time::Duration;

/// Long enough that only a lost message reaches it.
const LOST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::builder().workers(2).watchdog(None).build().unwrap()
}

#[test]
fn worker_behaviors_send_results_that_the_test_thread_receives() {
    let rt = runtime();
    let mailbox = Arc::new(Mailbox::new());
    let cowns: Vec<_> = (0..8_u64).map(Cown::new).collect();
    for cown in &cowns {
        let mailbox = Arc::clone(&mailbox);
        rt.when(cown, move |value| {
            *value *= 10;
            mailbox.send("result", *value);
        });
    }
    // No quiesce: receive itself waits for the behaviors.
    let mut results: Vec<_> = (0..cowns.len())
        .map(|_| mailbox.receive(&["result"], Some(LOST_MESSAGE_TIMEOUT)).expect("a result was lost").1)
        .collect();
    results.sort_unstable();
    assert_eq!(results, (0..8).map(|value| value * 10).collect::<Vec<_>>());
    rt.quiesce().unwrap();
    assert!(mailbox.is_empty());
}

#[test]
fn messages_sent_by_behaviors_on_one_cown_arrive_in_schedule_order() {
    let rt = runtime();
    let mailbox = Arc::new(Mailbox::new());
    let (log, other) = (Cown::new(()), Cown::new(()));
    for idx in 0..1_000_u32 {
        let mailbox = Arc::clone(&mailbox);
        if idx % 2 == 0 {
            rt.when(&log, move |()| mailbox.send("log", idx));
        } else {
            rt.when((&log, &other), move |_| mailbox.send("log", idx));
        }
    }
    rt.quiesce().unwrap();
    let received: Vec<_> = mailbox.drain(&["log"]).into_iter().map(|(_, idx)| idx).collect();
    assert_eq!(received, (0..1_000).collect::<Vec<_>>());
}

#[test]
fn a_main_side_behavior_receives_what_a_worker_behavior_sends() {
    let rt = runtime();
    let mailbox = Arc::new(Mailbox::new());
    let window = PinnedCown::new(&rt, Vec::<String>::new()).unwrap();
    let worker_cown = Cown::new(0_u32);
    let title = {
        let mailbox = Arc::clone(&mailbox);
        // Blocks the home thread while it waits: pass a timeout.
        rt.when(&window, move |window| {
            let (_, title) = mailbox.receive(&["title"], Some(LOST_MESSAGE_TIMEOUT)).expect("the worker's message");
            window.push(title);
            window.join(",")
        })
    };
    {
        let mailbox = Arc::clone(&mailbox);
        rt.when(&worker_cown, move |count| {
            *count += 1;
            mailbox.send("title", format!("computed {count}"));
        });
    }
    rt.quiesce().unwrap(); // pumps the main-side behavior here
    assert_eq!(title.take().unwrap(), "computed 1");
}

#[test]
fn a_behavior_scheduled_after_a_write_sees_it_and_its_snapshot_stays_put() {
    let rt = runtime();
    let board = Arc::new(Noticeboard::new());
    board.write("threshold".to_owned(), 5_u64);
    let cown = Cown::new(vec![1_u64, 7, 3, 9]);
    let seen = {
        let board = Arc::clone(&board);
        rt.when(&cown, move |values| {
            let snapshot = board.snapshot();
            // The behavior's own write does not show in its snapshot.
            board.write("threshold".to_owned(), 0);
            let threshold = *snapshot.get("threshold").unwrap();
            values.iter().copied().filter(|&value| value > threshold).collect::<Vec<_>>()
        })
    };
    rt.quiesce().unwrap();
    assert_eq!(seen.take().unwrap(), [7, 9]);
    assert_eq!(board.read("threshold"), Some(0));
}

#[test]
fn parallel_behaviors_update_one_board_key_without_losing_any() {
    const N_BEHAVIORS: u64 = 400;
    let rt = runtime();
    let board = Arc::new(Noticeboard::new());
    let cowns: Vec<_> = (0..8).map(|_| Cown::new(0_u64)).collect();
    for idx in 0..N_BEHAVIORS {
        let board = Arc::clone(&board);
        rt.when(&cowns[idx as usize % cowns.len()], move |mine| {
            *mine += 1;
            board.update("total".to_owned(), |total| Change::Set(total.copied().unwrap_or(0) + 1));
            board.update(format!("max from {}", idx % 8), |max| match max {
                Some(&max) if max >= idx => Change::Keep,
                _ => Change::Set(idx),
            });
        });
    }
    rt.quiesce().unwrap();
    let snapshot = board.snapshot();
    assert_eq!(snapshot.get("total"), Some(&N_BEHAVIORS));
    for residue in 0..8 {
        assert_eq!(snapshot.get(&format!("max from {residue}")), Some(&(N_BEHAVIORS - 8 + residue)));
    }
    assert_eq!(snapshot.len(), 9);
}
