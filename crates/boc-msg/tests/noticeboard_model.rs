//! Random sequences of noticeboard operations against a `HashMap` model,
//! with snapshots taken along the way that must keep showing the model as
//! it was when they were taken.

use boc_msg::{Change, Noticeboard, Snapshot};
use proptest::prelude::*;
use std::collections::HashMap;

/// Few keys, so operations often meet on one.
const N_KEYS: u8 = 4;

/// What an update function answers, given the current value.
#[derive(Clone, Debug)]
enum Answer {
    /// `Set(current + delta)`, or `Set(delta)` if absent.
    Add(i32),
    Set(i32),
    Remove,
    Keep,
    /// An error (`try_update` only).
    Fail,
}

#[derive(Clone, Debug)]
enum Op {
    Write(u8, i32),
    Delete(u8),
    Read(u8),
    Update(u8, Answer),
    TryUpdate(u8, Answer),
    TakeSnapshot,
    DropSnapshot(usize),
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        (-5..5_i32).prop_map(Answer::Add),
        (-5..5_i32).prop_map(Answer::Set),
        Just(Answer::Remove),
        Just(Answer::Keep),
        Just(Answer::Fail),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..N_KEYS;
    prop_oneof![
        3 => (key.clone(), any::<i32>()).prop_map(|(key, value)| Op::Write(key, value)),
        2 => key.clone().prop_map(Op::Delete),
        2 => key.clone().prop_map(Op::Read),
        3 => (key.clone(), answer()).prop_map(|(key, answer)| Op::Update(key, answer)),
        2 => (key, answer()).prop_map(|(key, answer)| Op::TryUpdate(key, answer)),
        1 => Just(Op::TakeSnapshot),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
    ]
}

/// The change `answer` asks for, or `Err` for a failure.
fn decide(answer: &Answer, current: Option<&i32>) -> Result<Change<i32>, &'static str> {
    Ok(match *answer {
        Answer::Add(delta) => Change::Set(current.copied().unwrap_or(0).wrapping_add(delta)),
        Answer::Set(value) => Change::Set(value),
        Answer::Remove => Change::Remove,
        Answer::Keep => Change::Keep,
        Answer::Fail => return Err("failed"),
    })
}

/// The model's `update`: the value after it.
fn model_update(model: &mut HashMap<u8, i32>, key: u8, change: Change<i32>) -> Option<i32> {
    match change {
        Change::Set(value) => {
            model.insert(key, value);
            Some(value)
        }
        Change::Remove => {
            model.remove(&key);
            None
        }
        Change::Keep => model.get(&key).copied(),
    }
}

fn contents(snapshot: &Snapshot<u8, i32>) -> HashMap<u8, i32> {
    let by_iter: HashMap<_, _> = snapshot.iter().map(|(&key, &value)| (key, value)).collect();
    let by_get: HashMap<_, _> = (0..N_KEYS).filter_map(|key| snapshot.get(&key).map(|&value| (key, value))).collect();
    assert_eq!(by_iter, by_get);
    assert_eq!(snapshot.len(), by_iter.len());
    assert_eq!(snapshot.keys().count(), by_iter.len());
    assert_eq!(snapshot.is_empty(), by_iter.is_empty());
    for key in 0..N_KEYS {
        assert_eq!(snapshot.contains_key(&key), by_iter.contains_key(&key));
    }
    by_iter
}

proptest! {
    #[test]
    fn the_board_behaves_like_a_map(ops in prop::collection::vec(op(), 1..80)) {
        let board = Noticeboard::new();
        let mut model = HashMap::new();
        let mut snapshots: Vec<(Snapshot<u8, i32>, HashMap<u8, i32>)> = Vec::new();
        for op in ops {
            match op {
                Op::Write(key, value) => prop_assert_eq!(board.write(key, value), model.insert(key, value)),
                Op::Delete(key) => prop_assert_eq!(board.delete(&key), model.remove(&key)),
                Op::Read(key) => prop_assert_eq!(board.read(&key), model.get(&key).copied()),
                Op::Update(key, answer) => {
                    let mut n_calls = 0;
                    let after = board.update(key, |current| {
                        n_calls += 1;
                        decide(&answer, current).unwrap_or(Change::Keep)
                    });
                    let change = decide(&answer, model.get(&key)).unwrap_or(Change::Keep);
                    prop_assert_eq!(after, model_update(&mut model, key, change));
                    prop_assert_eq!(n_calls, 1, "no conflicting write, no retry");
                }
                Op::TryUpdate(key, answer) => {
                    let result = board.try_update(key, |current| decide(&answer, current));
                    let expected = decide(&answer, model.get(&key)).map(|change| model_update(&mut model, key, change));
                    prop_assert_eq!(result, expected);
                }
                Op::TakeSnapshot => snapshots.push((board.snapshot(), model.clone())),
                Op::DropSnapshot(idx) => {
                    if !snapshots.is_empty() {
                        let idx = idx % snapshots.len();
                        snapshots.swap_remove(idx);
                    }
                }
            }
            prop_assert_eq!(board.len(), model.len());
            prop_assert_eq!(board.is_empty(), model.is_empty());
        }
        prop_assert_eq!(contents(&board.snapshot()), model);
        for (snapshot, model_then) in &snapshots {
            prop_assert_eq!(&contents(snapshot), model_then);
        }
    }
}
