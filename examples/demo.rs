//! The README's main job (`cargo xtask demo`): a tour of the runtime.
//!
//! A bank moves money between accounts with two-cown behaviors scheduled
//! from two threads; philosophers share forks without deadlock; a chain of
//! behaviors on one cown keeps its order; and a pinned cown holds a
//! "screen" that only the main thread may touch, redrawn once per frame by
//! a host loop that pumps main-side work while workers compute. Each part
//! prints what it checked.

use boc::{Budget, Cown, Handle, PinnedCown, Runtime};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

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
    // Each meal schedules the next from inside its behavior: wait for all
    // of them before reading the plates.
    rt.quiesce()?;
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

/// A stand-in for a GUI widget: not `Send`, so it could never sit in an
/// ordinary cown or a global touched by workers.
type Screen = Rc<RefCell<Vec<String>>>;

fn pinned_screen(rt: &Runtime) -> Result<(), boc::Error> {
    const N_FRAMES: usize = 5;
    const SAMPLES_PER_FRAME: u64 = 200;
    let home = std::thread::current().id();
    let screen: PinnedCown<Screen> = PinnedCown::new(rt, Rc::new(RefCell::new(Vec::new())))?;
    let histogram = Cown::new([0_u64; 8]);
    // Worker side: each sample is its own behavior on the histogram.
    // Main side: one pinned behavior per frame reads the histogram and
    // draws it (the coarse-grained pattern: per-item work on workers, one
    // main-side behavior per frame that writes back).
    for frame in 0..N_FRAMES as u64 {
        for sample in 0..SAMPLES_PER_FRAME {
            // Two pseudo-random 3-bit numbers, averaged: a peaked shape.
            let bits = (frame * SAMPLES_PER_FRAME + sample + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let value = ((bits >> 61) + ((bits >> 58) & 7)) / 2;
            rt.when(&histogram, move |bins| bins[value as usize] += 1);
        }
        rt.when((&screen, &histogram), move |(screen, bins)| {
            assert_eq!(std::thread::current().id(), home, "pinned behaviors run on the main thread");
            let tallest = bins.iter().copied().max().unwrap_or(1).max(1);
            let bars: String = bins.iter().map(|&n| char::from(b" .:-=+*#"[(n * 7 / tallest) as usize])).collect();
            screen.borrow_mut().push(format!("frame {frame}: [{bars}] {} samples", bins.iter().sum::<u64>()));
        });
    }
    // The host loop of an interactive program: its own work, then a bounded
    // slice of boc's main-side work, every frame.
    let mut frames = 0;
    while rt.n_in_flight() > 0 {
        let report = rt.pump(Budget::within(Duration::from_millis(2)))?;
        frames += 1;
        if report.executed == 0 {
            std::thread::sleep(Duration::from_millis(1)); // the host's own work
        }
    }
    let drawn = rt.when(&screen, |screen| screen.borrow().clone());
    rt.quiesce()?;
    println!(
        "pinned: a main-thread-only screen, redrawn by {N_FRAMES} pinned behaviors from a host loop ({frames} pump calls):"
    );
    for line in drawn.take()? {
        println!("  {line}");
    }
    Ok(())
}

fn main() -> Result<(), boc::Error> {
    let rt = Runtime::new()?;
    println!("boc demo: a runtime with {} worker thread(s)", rt.n_workers());
    bank(&rt)?;
    philosophers(&rt)?;
    chain(&rt)?;
    // The default hook would print the intended panic with a backtrace.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let failing = rt.when(&Cown::new(()), |_| -> u32 { panic!("a body may fail") });
    rt.quiesce()?;
    std::panic::set_hook(default_hook);
    println!("panics: a failing body is caught and reported: {:?}", failing.take().err());
    pinned_screen(&rt)?;
    println!("the Python package: coming in the next release");
    Ok(())
}
