//! The bank: many accounts, a million transfers from two threads; money is
//! conserved and every transfer runs exactly once.

use boc::{Cown, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const N_ACCOUNTS: usize = 1_000;
const N_TRANSFERS: usize = 1_000_000;
const INITIAL: i64 = 1_000;

/// A small deterministic generator, so a failure reproduces.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn transfers_conserve_money_and_run_once() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let accounts: Arc<Vec<Cown<i64>>> = Arc::new((0..N_ACCOUNTS).map(|_| Cown::new(INITIAL)).collect());
    let ran = Arc::new(AtomicUsize::new(0));
    let scheduled: usize = std::thread::scope(|scope| {
        let producers: Vec<_> = (0..2u64)
            .map(|seed| {
                let (handle, accounts, ran) = (rt.handle(), Arc::clone(&accounts), Arc::clone(&ran));
                scope.spawn(move || {
                    let mut state = 0x9E37_79B9_7F4A_7C15 ^ (seed + 1);
                    let mut n_scheduled = 0;
                    for _ in 0..N_TRANSFERS / 2 {
                        let from = (next(&mut state) % N_ACCOUNTS as u64) as usize;
                        let to = (next(&mut state) % N_ACCOUNTS as u64) as usize;
                        if from == to {
                            continue;
                        }
                        let amount = (next(&mut state) % 50) as i64;
                        let ran = Arc::clone(&ran);
                        handle.when((&accounts[from], &accounts[to]), move |(from, to)| {
                            *from -= amount;
                            *to += amount;
                            ran.fetch_add(1, Ordering::Relaxed);
                        });
                        n_scheduled += 1;
                    }
                    n_scheduled
                })
            })
            .collect();
        producers.into_iter().map(|p| p.join().unwrap()).sum()
    });
    rt.quiesce().unwrap();
    assert!(scheduled > N_TRANSFERS * 99 / 100);
    assert_eq!(ran.load(Ordering::Relaxed), scheduled, "every transfer ran exactly once");
    let total = rt.when(&*accounts, |slots| slots.iter().sum::<i64>());
    rt.quiesce().unwrap();
    assert_eq!(total.take().unwrap(), INITIAL * N_ACCOUNTS as i64);
    assert!(accounts.iter().all(Cown::is_idle));
}
