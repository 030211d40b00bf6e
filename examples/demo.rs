//! The README's main job (`cargo xtask demo`): a tour of the runtime.
//!
//! A bank moves money between accounts with two-cown behaviors scheduled
//! from two threads; philosophers share forks without deadlock; a chain of
//! behaviors on one cown keeps its order. Each part prints what it checked.

use boc::{Cown, Handle, Runtime};
use std::time::Instant;

fn bank(rt: &Runtime) -> Result<(), boc::Error> {
    const N_ACCOUNTS: usize = 100;
    const N_TRANSFERS: usize = 200_000;
    let accounts: Vec<_> = (0..N_ACCOUNTS).map(|_| Cown::new(1_000_i64)).collect();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for seed in 1..=2_u64 {
            let (handle, accounts) = (rt.handle(), &accounts);
            scope.spawn(move || {
                let mut state = seed * 0x9E37_79B9_7F4A_7C15;
                for _ in 0..N_TRANSFERS / 2 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let from = (state % N_ACCOUNTS as u64) as usize;
                    let to = ((state >> 32) % N_ACCOUNTS as u64) as usize;
                    if from != to {
                        handle.when((&accounts[from], &accounts[to]), |(from, to)| {
                            let amount = (*from).clamp(0, 25);
                            *from -= amount;
                            *to += amount;
                        });
                    }
                }
            });
        }
    });
    let total = rt.when(&accounts, |slots| (slots.iter().sum::<i64>(), slots.iter().copied().min()));
    rt.quiesce()?;
    let (total, poorest) = total.take()?;
    println!(
        "bank: {N_TRANSFERS} transfers between {N_ACCOUNTS} accounts from 2 threads in {:.0?}; total {total} \
         (was {}), no account below zero (poorest {poorest:?})",
        start.elapsed(),
        N_ACCOUNTS * 1_000
    );
    assert_eq!(total, N_ACCOUNTS as i64 * 1_000);
    Ok(())
}

fn philosophers(rt: &Runtime) -> Result<(), boc::Error> {
    const N: usize = 5;
    const MEALS: u32 = 500;
    fn eat(handle: Handle, left: Cown<u32>, right: Cown<u32>, plate: Cown<u32>) {
        let next = (handle.clone(), left.clone(), right.clone(), plate.clone());
        handle.when((&left, &right, &plate), move |(left, right, eaten)| {
            *left += 1;
            *right += 1;
            *eaten += 1;
            if *eaten < MEALS {
                let (handle, left, right, plate) = next;
                eat(handle, left, right, plate);
            }
        });
    }
    let forks: Vec<_> = (0..N).map(|_| Cown::new(0)).collect();
    let plates: Vec<_> = (0..N).map(|_| Cown::new(0)).collect();
    for idx in 0..N {
        eat(rt.handle(), forks[idx].clone(), forks[(idx + 1) % N].clone(), plates[idx].clone());
    }
    let meals = rt.when(&plates, |plates| plates.iter().copied().collect::<Vec<_>>());
    rt.quiesce()?;
    println!("philosophers: {N} philosophers sharing {N} forks ate {:?} meals, no deadlock", meals.take()?);
    Ok(())
}

fn chain(rt: &Runtime) -> Result<(), boc::Error> {
    let log = Cown::new(Vec::new());
    for idx in 0..10_000 {
        rt.when(&log, move |log| log.push(idx));
    }
    let in_order = rt.when(&log, |log| log.windows(2).all(|pair| pair[0] < pair[1]) && log.len() == 10_000);
    rt.quiesce()?;
    println!("chain: 10000 behaviors on one cown ran in schedule order: {}", in_order.take()?);
    Ok(())
}

fn main() -> Result<(), boc::Error> {
    let rt = Runtime::new()?;
    println!("boc demo: a runtime with {} worker thread(s)", rt.n_workers());
    bank(&rt)?;
    philosophers(&rt)?;
    chain(&rt)?;
    let failing = rt.when(&Cown::new(()), |_| -> u32 { panic!("a body may fail") });
    rt.quiesce()?;
    println!("panics: a failing body is caught and reported: {:?}", failing.take().err());
    println!("pinned cowns (main-thread resources) and the Python package: coming in the next releases");
    Ok(())
}
