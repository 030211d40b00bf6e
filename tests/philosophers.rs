//! Dining philosophers: each philosopher needs both neighbouring forks;
//! nobody deadlocks and everybody eats the planned number of times.

use boc::{Cown, Handle, Runtime};

const N_PHILOSOPHERS: usize = 5;
const N_MEALS: usize = 1_000;

/// One meal: eat with both forks, then schedule the next meal until full.
fn dine(handle: Handle, left: Cown<usize>, right: Cown<usize>, plate: Cown<usize>) {
    let next = handle.clone();
    let forks_and_plate = (left.clone(), right.clone(), plate.clone());
    handle.when((&left, &right, &plate), move |(left, right, eaten)| {
        *left += 1;
        *right += 1;
        *eaten += 1;
        if *eaten < N_MEALS {
            let (left, right, plate) = forks_and_plate;
            dine(next, left, right, plate);
        }
    });
}

#[test]
fn every_philosopher_eats_without_deadlock() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let forks: Vec<_> = (0..N_PHILOSOPHERS).map(|_| Cown::new(0_usize)).collect();
    let plates: Vec<_> = (0..N_PHILOSOPHERS).map(|_| Cown::new(0_usize)).collect();
    for idx in 0..N_PHILOSOPHERS {
        let (left, right) = (forks[idx].clone(), forks[(idx + 1) % N_PHILOSOPHERS].clone());
        dine(rt.handle(), left, right, plates[idx].clone());
    }
    rt.quiesce_timeout(std::time::Duration::from_secs(120)).expect("the philosophers deadlocked");
    let meals = rt.when(&plates, |plates| plates.iter().copied().collect::<Vec<_>>());
    let uses = rt.when(&forks, |forks| forks.iter().copied().collect::<Vec<_>>());
    rt.quiesce().unwrap();
    assert_eq!(meals.take().unwrap(), vec![N_MEALS; N_PHILOSOPHERS]);
    assert_eq!(uses.take().unwrap(), vec![2 * N_MEALS; N_PHILOSOPHERS], "each fork serves two neighbours");
}
