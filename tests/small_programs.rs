//! Small end-to-end programs over the facade's unsafe parts, sized for Miri
//! (`cargo xtask miri` runs this file and `runtime_drop.rs` under Tree
//! Borrows): ordinary cowns with tuple and slice request sets, pinned values
//! dropped at home, holds from outside behaviors, results read back.

use boc::{Budget, Cown, PinnedCown, Runtime};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;

fn runtime(n_workers: usize) -> Runtime {
    Runtime::builder().workers(n_workers).watchdog(None).build().unwrap()
}

#[test]
fn ordinary_cowns_with_tuple_and_slice_request_sets() {
    let rt = runtime(2);
    let accounts: Vec<_> = (0..3).map(|_| Cown::new(10_i64)).collect();
    for idx in 0..6 {
        let (from, to) = (&accounts[idx % 3], &accounts[(idx + 1) % 3]);
        rt.when((from, to), |(from, to)| {
            *from -= 1;
            *to += 1;
        });
    }
    let total = rt.when(&accounts, |slots| slots.iter().sum::<i64>());
    let twice = rt.when(vec![accounts[0].clone(), accounts[0].clone()], |mut slots| {
        slots[0] += 1;
        slots[1] -= 1;
        slots.len()
    });
    rt.quiesce().unwrap();
    assert_eq!(total.take().unwrap(), 30);
    assert_eq!(twice.take().unwrap(), 2);
    let panicked = rt.when(&accounts[1], |_| -> u8 { panic!("caught") });
    rt.quiesce().unwrap();
    assert!(panicked.is_panicked());
    drop(rt);
    let values: Vec<i64> = accounts.into_iter().map(|cown| cown.try_into_inner().ok().unwrap()).collect();
    assert_eq!(values.iter().sum::<i64>(), 30);
}

#[test]
fn pinned_values_are_used_and_dropped_at_home() {
    let rt = runtime(1);
    let home = thread::current().id();
    let drops = Rc::new(RefCell::new(Vec::new()));
    struct Logged(thread::ThreadId, Rc<RefCell<Vec<bool>>>);
    impl Drop for Logged {
        fn drop(&mut self) {
            self.1.borrow_mut().push(thread::current().id() == self.0);
        }
    }
    let count = Cown::new(0_u32);
    let kept = PinnedCown::new(&rt, Logged(home, Rc::clone(&drops))).unwrap();
    // Last handle released by a main-side behavior, at home.
    rt.when((&PinnedCown::new(&rt, Logged(home, Rc::clone(&drops))).unwrap(), &count), |(_, n)| *n += 1);
    // Last handle dropped on a worker: the value is sent home and pumped.
    let sent = PinnedCown::new(&rt, Logged(home, Rc::clone(&drops))).unwrap();
    rt.when(&count, move |n| {
        drop(sent);
        *n += 1;
    });
    rt.when((&kept, &count), |(_, n)| *n += 1);
    rt.quiesce().unwrap();
    rt.pump(Budget::unbounded()).unwrap();
    assert_eq!(count.try_with(|n| *n).unwrap(), 3);
    drop(kept);
    assert_eq!(*drops.borrow(), [true, true, true]);
}

#[test]
fn holds_from_outside_behaviors_queue_behaviors_behind_them() {
    let rt = runtime(1);
    let c = Cown::new(0_u32);
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let c = c.clone();
        thread::spawn(move || {
            c.try_with(|value| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                *value = 10;
            })
            .unwrap();
        })
    };
    held_rx.recv().unwrap();
    let seen = rt.when(&c, |value| *value + 1);
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    rt.quiesce().unwrap();
    assert_eq!(seen.take().unwrap(), 11);
    let pinned = PinnedCown::new(&rt, Rc::new(5)).unwrap();
    assert_eq!(pinned.try_with(|value| **value).unwrap(), 5);
}
