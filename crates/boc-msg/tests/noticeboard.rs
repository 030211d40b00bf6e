//! The noticeboard's promises: snapshot isolation, what writes return, and
//! `update`: atomic under contention, run without the lock, retried only on
//! a conflicting write to its own key, `Change` semantics, failing cleanly.

use boc_msg::{Change, Noticeboard, Snapshot};
use std::cell::Cell;
use std::sync::{Arc, Barrier};
use std::thread;

fn board_of(entries: &[(&'static str, i64)]) -> Noticeboard<&'static str, i64> {
    let board = Noticeboard::new();
    for &(key, value) in entries {
        board.write(key, value);
    }
    board
}

fn sorted<K: Ord + Copy + Eq + std::hash::Hash, V: Copy>(snapshot: &Snapshot<K, V>) -> Vec<(K, V)> {
    let mut entries: Vec<_> = snapshot.iter().map(|(&key, &value)| (key, value)).collect();
    entries.sort_by_key(|&(key, _)| key);
    entries
}

#[test]
fn boards_and_snapshots_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Noticeboard<String, Vec<u8>>>();
    assert_send_sync::<Snapshot<String, Arc<str>>>();
}

#[test]
fn a_snapshot_does_not_see_later_writes() {
    let board = board_of(&[("a", 1), ("b", 2)]);
    let snapshot = board.snapshot();
    board.write("a", 10);
    board.delete("b");
    board.write("c", 3);
    board.update("d", |_| Change::Set(4));
    assert_eq!(sorted(&snapshot), [("a", 1), ("b", 2)]);
    assert_eq!(snapshot.get("a"), Some(&1));
    assert!(snapshot.contains_key("b"));
    assert!(!snapshot.contains_key("c"));
    assert_eq!(snapshot.len(), 2);
    assert_eq!(sorted(&board.snapshot()), [("a", 10), ("c", 3), ("d", 4)]);
    let clone = snapshot.clone();
    drop(snapshot);
    assert_eq!(clone.get("b"), Some(&2), "a clone is the same view");
}

#[test]
fn a_snapshot_is_consistent_while_another_thread_writes() {
    // The writer keeps `left + right == 0`; every snapshot must see that.
    let board = Arc::new(board_of(&[("left", 0), ("right", 0)]));
    let start = Arc::new(Barrier::new(2));
    let writer = {
        let (board, start) = (Arc::clone(&board), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            for step in 1..=2_000 {
                board.update("left", |_| Change::Set(step));
                board.update("right", |_| Change::Set(-step));
            }
        })
    };
    start.wait();
    let mut n_consistent = 0;
    while !writer.is_finished() || n_consistent == 0 {
        let snapshot = board.snapshot();
        let (left, right) = (snapshot.get("left").copied().unwrap(), snapshot.get("right").copied().unwrap());
        // Between the two writes `left` is one step ahead.
        assert!(left + right == 0 || left + right == 1, "torn view: {left} {right}");
        n_consistent += 1;
    }
    writer.join().unwrap();
    assert_eq!(sorted(&board.snapshot()), [("left", 2_000), ("right", -2_000)]);
}

#[test]
fn write_and_delete_return_the_previous_value() {
    let board = Noticeboard::new();
    assert_eq!(board.write("k".to_owned(), "one"), None);
    assert_eq!(board.write("k".to_owned(), "two"), Some("one"));
    assert_eq!(board.read("k"), Some("two"));
    assert_eq!(board.delete("k"), Some("two"));
    assert_eq!(board.delete("k"), None);
    assert_eq!(board.read("k"), None);
    assert!(board.is_empty());
}

#[test]
fn concurrent_updates_of_one_key_lose_no_increment() {
    const N_THREADS: usize = 4;
    const N_INCREMENTS: usize = 2_000;
    let board = Arc::new(Noticeboard::new());
    let start = Arc::new(Barrier::new(N_THREADS));
    let threads: Vec<_> = (0..N_THREADS)
        .map(|thread_idx| {
            let (board, start) = (Arc::clone(&board), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for _ in 0..N_INCREMENTS {
                    board.update("count".to_owned(), |count| Change::Set(count.copied().unwrap_or(0) + 1));
                    // Writes to other keys interleave with the contended one.
                    board.write(format!("thread {thread_idx}"), 1);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(board.read("count"), Some(N_THREADS * N_INCREMENTS));
    assert_eq!(board.len(), N_THREADS + 1);
}

#[test]
fn update_returns_the_value_after_it() {
    let board = board_of(&[("a", 1)]);
    assert_eq!(board.update("a", |value| Change::Set(value.unwrap() * 10)), Some(10));
    assert_eq!(board.update("b", |value| Change::Set(value.copied().unwrap_or(7))), Some(7));
    assert_eq!(board.update("a", |_| Change::Keep), Some(10));
    assert_eq!(board.update("missing", |_| Change::Keep), None);
    assert_eq!(board.update("a", |_| Change::Remove), None);
}

#[test]
fn change_remove_deletes_and_change_keep_leaves_the_key() {
    let board = board_of(&[("a", 1), ("b", 2)]);
    board.update("a", |_| Change::Remove);
    board.update("b", |_| Change::Keep);
    board.update("c", |_| Change::Keep);
    board.update("d", |_| Change::Remove);
    assert_eq!(sorted(&board.snapshot()), [("b", 2)]);
}

#[test]
fn update_runs_its_function_without_the_lock() {
    let board = board_of(&[("a", 1)]);
    // Reading, and writing other keys, from inside `f` would deadlock if the
    // lock were held.
    let after = board.update("a", |value| {
        let other = board.read("a");
        board.write("b", 2);
        assert_eq!(board.snapshot().len(), 2);
        Change::Set(value.unwrap() + other.unwrap())
    });
    assert_eq!(after, Some(2));
}

#[test]
fn writes_to_other_keys_do_not_cause_a_retry() {
    let board = board_of(&[("a", 1), ("b", 1)]);
    let n_calls = Cell::new(0);
    let after = board.update("a", |value| {
        n_calls.set(n_calls.get() + 1);
        board.write("b", 5);
        board.delete("b");
        board.update("c", |_| Change::Set(3));
        Change::Set(value.unwrap() + 1)
    });
    assert_eq!(n_calls.get(), 1);
    assert_eq!(after, Some(2));
}

#[test]
fn a_write_to_the_same_key_in_between_causes_a_retry_with_the_new_value() {
    let board = board_of(&[("a", 1)]);
    let mut seen = Vec::new();
    let after = board.update("a", |value| {
        seen.push(value.copied());
        if seen.len() == 1 {
            board.write("a", 100); // lands between this call and its commit
        }
        Change::Set(value.unwrap() + 1)
    });
    assert_eq!(seen, [Some(1), Some(100)]);
    assert_eq!(after, Some(101));
    assert_eq!(board.read("a"), Some(101));
}

#[test]
fn a_write_of_the_same_value_still_causes_a_retry() {
    let board = board_of(&[("a", 1)]);
    let mut n_calls = 0;
    board.update("a", |_| {
        n_calls += 1;
        if n_calls == 1 {
            board.write("a", 1);
        }
        Change::Keep
    });
    assert_eq!(n_calls, 2, "a write is a write, whatever its value");
}

#[test]
fn a_delete_or_an_insert_in_between_causes_a_retry() {
    let board = board_of(&[("a", 1)]);
    let mut seen = Vec::new();
    board.update("a", |value| {
        seen.push(value.copied());
        match seen.len() {
            1 => drop(board.delete("a")),
            2 => drop(board.write("a", 5)),
            _ => {}
        }
        Change::Keep
    });
    assert_eq!(seen, [Some(1), None, Some(5)]);
}

#[test]
fn an_insert_and_delete_in_between_leave_an_absent_key_absent_and_need_no_retry() {
    let board = Noticeboard::<&str, i64>::new();
    let mut n_calls = 0;
    let after = board.update("a", |value| {
        n_calls += 1;
        board.write("a", 5);
        board.delete("a");
        Change::Set(value.copied().unwrap_or(0) + 1)
    });
    assert_eq!((n_calls, after), (1, Some(1)));
}

#[test]
fn a_failing_try_update_changes_nothing() {
    let board = board_of(&[("a", 1)]);
    let snapshot_before = board.snapshot();
    let result: Result<_, String> = board.try_update("a", |_| Err("no".to_owned()));
    assert_eq!(result, Err("no".to_owned()));
    let result: Result<_, String> = board.try_update("new", |_| Err("no".to_owned()));
    assert!(result.is_err());
    assert_eq!(sorted(&board.snapshot()), sorted(&snapshot_before));
    assert_eq!(board.try_update("a", |value| Ok::<_, String>(Change::Set(value.unwrap() + 1))), Ok(Some(2)));
}

#[test]
fn a_try_update_can_fail_after_a_retry() {
    let board = board_of(&[("a", 1)]);
    let mut n_calls = 0;
    let result = board.try_update("a", |value| {
        n_calls += 1;
        if n_calls == 1 {
            board.write("a", -1);
            return Ok(Change::Set(2));
        }
        if value == Some(&-1) { Err("negative") } else { Ok(Change::Keep) }
    });
    assert_eq!(result, Err("negative"));
    assert_eq!(board.read("a"), Some(-1));
}

#[test]
fn a_panicking_update_changes_nothing_and_leaves_the_board_usable() {
    let board = board_of(&[("a", 1)]);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        board.update("a", |_| panic!("boom"));
    }));
    assert!(panicked.is_err());
    assert_eq!(board.read("a"), Some(1));
    board.write("a", 2);
    assert_eq!(board.read("a"), Some(2));
}

#[test]
fn many_keys() {
    let board = Noticeboard::new();
    for key in 0..10_000_u32 {
        board.write(key, key * 2);
    }
    let snapshot = board.snapshot();
    assert_eq!(snapshot.len(), 10_000);
    assert_eq!(snapshot.get(&9_999), Some(&19_998));
    assert_eq!(snapshot.keys().len(), 10_000);
    assert_eq!(snapshot.iter().len(), 10_000);
    for key in 0..10_000_u32 {
        board.delete(&key);
    }
    assert!(board.is_empty());
    assert_eq!(snapshot.len(), 10_000);
}

/// A value whose drop reads the board it lives on (as a Python `__del__`
/// reading the noticeboard does): a drop under the board's lock would
/// deadlock.
#[derive(Clone)]
struct ReadsBoardOnDrop(Arc<()>);

static REENTRANT: std::sync::LazyLock<Noticeboard<&'static str, ReadsBoardOnDrop>> =
    std::sync::LazyLock::new(Noticeboard::new);

impl Drop for ReadsBoardOnDrop {
    fn drop(&mut self) {
        let _ = REENTRANT.len();
    }
}

#[test]
fn an_update_retry_drops_the_stale_value_outside_the_lock() {
    REENTRANT.write("k", ReadsBoardOnDrop(Arc::new(())));
    let in_update = Arc::new(Barrier::new(2));
    let written = Arc::new(Barrier::new(2));
    let writer = {
        let (in_update, written) = (Arc::clone(&in_update), Arc::clone(&written));
        thread::spawn(move || {
            in_update.wait();
            // Replaces the value the update observed: its last handle is now
            // the update's.
            drop(REENTRANT.write("k", ReadsBoardOnDrop(Arc::new(()))));
            written.wait();
        })
    };
    let first_try = Cell::new(true);
    let updated = REENTRANT.try_update("k", |_| {
        if first_try.replace(false) {
            in_update.wait();
            written.wait();
        }
        Ok::<_, ()>(Change::Set(ReadsBoardOnDrop(Arc::new(()))))
    });
    assert!(updated.is_ok());
    writer.join().unwrap();
}
