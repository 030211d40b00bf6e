//! Request sets: what [`Handle::when`](crate::Handle::when) accepts, and
//! what the body receives for each.
//!
//! | request set | the body receives |
//! |---|---|
//! | `&Cown<A>` | `&mut A` |
//! | `(&Cown<A>, &Cown<B>, ...)`, 1 to 8 | `(&mut A, &mut B, ...)` |
//! | `&[Cown<T>]`, `&[Cown<T>; N]`, `&Vec<Cown<T>>`, `Vec<Cown<T>>` | [`Slots<T>`] |

use crate::{Cown, Error};
use boc_core::CownHeader;

mod sealed {
    pub trait Sealed {}
}

/// The cown handles a scheduled behavior keeps, and the access its body
/// gets to their values. Implemented for the owned forms of every
/// [`CownSet`]; not implementable outside this crate.
pub trait Acquired: Send + 'static + sealed::Sealed {
    /// What the body receives.
    type Refs<'a>;

    /// The body's view of the values.
    ///
    /// # Safety
    ///
    /// The calling behavior holds every cown in the set, for at least `'a`.
    #[doc(hidden)]
    unsafe fn refs<'a>(&'a mut self) -> Self::Refs<'a>;
}

/// A request set: the cowns a behavior needs. See the [module
/// docs](self) for every form and what its body receives. Not implementable
/// outside this crate.
pub trait CownSet: sealed::Sealed {
    /// The handles the behavior keeps until it is released.
    type Owned: Acquired;

    /// Clones the handles.
    #[doc(hidden)]
    fn to_owned(&self) -> Self::Owned;

    /// Checks the set can be handed to a body (tuples refuse duplicates).
    #[doc(hidden)]
    fn check(&self) -> Result<(), Error>;

    /// The protocol headers of the cowns, with duplicates.
    #[doc(hidden)]
    fn headers(&self) -> impl ExactSizeIterator<Item = &CownHeader>;

    /// The header, when the set is a single cown (the fast path).
    #[doc(hidden)]
    fn single(&self) -> Option<&CownHeader> {
        None
    }
}

impl<A: Send + 'static> sealed::Sealed for &Cown<A> {}

impl<A: Send + 'static> CownSet for &Cown<A> {
    type Owned = Cown<A>;

    fn to_owned(&self) -> Cown<A> {
        (*self).clone()
    }

    fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    fn headers(&self) -> impl ExactSizeIterator<Item = &CownHeader> {
        std::iter::once(self.header())
    }

    fn single(&self) -> Option<&CownHeader> {
        Some(self.header())
    }
}

impl<A: Send + 'static> sealed::Sealed for Cown<A> {}

impl<A: Send + 'static> Acquired for Cown<A> {
    type Refs<'a> = &'a mut A;

    unsafe fn refs(&mut self) -> &mut A {
        // SAFETY: the caller holds the cown for `'a`, so no other reference
        // to the value exists.
        unsafe { &mut *self.value_ptr() }
    }
}

/// Errors if two cowns of a tuple are the same cown.
fn check_distinct(keys: &[u64]) -> Result<(), Error> {
    for (idx, key) in keys.iter().enumerate() {
        if keys[idx + 1..].contains(key) {
            return Err(Error::DuplicateCown { key: *key });
        }
    }
    Ok(())
}

macro_rules! tuple_set {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: Send + 'static),+> sealed::Sealed for ($(&Cown<$name>,)+) {}

        impl<$($name: Send + 'static),+> CownSet for ($(&Cown<$name>,)+) {
            type Owned = ($(Cown<$name>,)+);

            fn to_owned(&self) -> Self::Owned {
                ($(self.$idx.clone(),)+)
            }

            fn check(&self) -> Result<(), Error> {
                check_distinct(&[$(self.$idx.key()),+])
            }

            fn headers(&self) -> impl ExactSizeIterator<Item = &CownHeader> {
                [$(self.$idx.header()),+].into_iter()
            }
        }

        impl<$($name: Send + 'static),+> sealed::Sealed for ($(Cown<$name>,)+) {}

        impl<$($name: Send + 'static),+> Acquired for ($(Cown<$name>,)+) {
            type Refs<'a> = ($(&'a mut $name,)+);

            unsafe fn refs<'a>(&'a mut self) -> Self::Refs<'a> {
                // SAFETY: the caller holds every cown for `'a`, and `check`
                // refused duplicates, so the references are disjoint.
                unsafe { ($(&mut *self.$idx.value_ptr(),)+) }
            }
        }
    };
}

tuple_set!(A 0);
tuple_set!(A 0, B 1);
tuple_set!(A 0, B 1, C 2);
tuple_set!(A 0, B 1, C 2, D 3);
tuple_set!(A 0, B 1, C 2, D 3, E 4);
tuple_set!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_set!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_set!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

macro_rules! slice_set {
    ($($ty:ty $(, const $n:ident)?);+) => {$(
        impl<T: Send + 'static $(, const $n: usize)?> sealed::Sealed for $ty {}

        impl<T: Send + 'static $(, const $n: usize)?> CownSet for $ty {
            type Owned = Vec<Cown<T>>;

            fn to_owned(&self) -> Vec<Cown<T>> {
                self.to_vec()
            }

            fn check(&self) -> Result<(), Error> {
                Ok(())
            }

            fn headers(&self) -> impl ExactSizeIterator<Item = &CownHeader> {
                self.iter().map(Cown::header)
            }
        }
    )+};
}

slice_set!(&[Cown<T>]; &[Cown<T>; N], const N; &Vec<Cown<T>>; Vec<Cown<T>>);

impl<T: Send + 'static> Acquired for Vec<Cown<T>> {
    type Refs<'a> = Slots<'a, T>;

    unsafe fn refs<'a>(&'a mut self) -> Slots<'a, T> {
        Slots { cowns: self }
    }
}

/// The body's view of a slice request set: the values of the cowns, by the
/// index each cown had in the request set.
///
/// A cown may appear more than once in a slice request set; it is acquired
/// once and its value is reachable through each of its indices, one `&mut`
/// at a time (which is why access goes through this view rather than a
/// slice of `&mut T`).
///
/// ```
/// # fn main() -> Result<(), boc::Error> {
/// let rt = boc::Runtime::builder().workers(2).build()?;
/// let accounts: Vec<_> = (0..4).map(|_| boc::Cown::new(10_i64)).collect();
/// let total = rt.when(&accounts, |mut slots| {
///     slots[0] -= 5;
///     slots[3] += 5;
///     slots.iter().sum::<i64>()
/// });
/// rt.quiesce()?;
/// assert_eq!(total.take()?, 40);
/// # Ok(()) }
/// ```
pub struct Slots<'a, T> {
    cowns: &'a [Cown<T>],
}

impl<T> Slots<'_, T> {
    /// How many cowns the request set named (duplicates included).
    pub fn len(&self) -> usize {
        self.cowns.len()
    }

    /// True for an empty request set.
    pub fn is_empty(&self) -> bool {
        self.cowns.is_empty()
    }

    /// The value at `idx`.
    pub fn get(&self, idx: usize) -> Option<&T> {
        // SAFETY: the behavior holds every cown of the set while this view
        // exists; `&self` rules out a live `&mut` from this view.
        self.cowns.get(idx).map(|cown| unsafe { &*cown.value_ptr() })
    }

    /// The value at `idx`, mutably.
    pub fn get_mut(&mut self, idx: usize) -> Option<&mut T> {
        // SAFETY: as in `get`; `&mut self` makes this the only reference
        // into the set's values, even if the cown appears twice.
        self.cowns.get(idx).map(|cown| unsafe { &mut *cown.value_ptr() })
    }

    /// The values in request-set order (a duplicated cown appears at each
    /// of its indices).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        // SAFETY: as in `get`.
        self.cowns.iter().map(|cown| unsafe { &*cown.value_ptr() })
    }

    /// Calls `f` on each value in request-set order, one `&mut` at a time (a
    /// duplicated cown is visited at each of its indices).
    pub fn for_each_mut(&mut self, mut f: impl FnMut(usize, &mut T)) {
        for idx in 0..self.cowns.len() {
            // SAFETY: as in `get_mut`; each reference ends before the next.
            f(idx, unsafe { &mut *self.cowns[idx].value_ptr() });
        }
    }
}

impl<T> std::ops::Index<usize> for Slots<'_, T> {
    type Output = T;

    fn index(&self, idx: usize) -> &T {
        let len = self.len();
        self.get(idx).unwrap_or_else(|| panic!("slot index {idx} out of range for a request set of {len}"))
    }
}

impl<T> std::ops::IndexMut<usize> for Slots<'_, T> {
    fn index_mut(&mut self, idx: usize) -> &mut T {
        let len = self.len();
        self.get_mut(idx).unwrap_or_else(|| panic!("slot index {idx} out of range for a request set of {len}"))
    }
}
