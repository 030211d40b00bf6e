//! Request sets: what [`Handle::when`](crate::Handle::when) accepts, and
//! what the body receives for each.
//!
//! | request set | the body receives |
//! |---|---|
//! | `&Cown<A>` or `&PinnedCown<A>` | `&mut A` |
//! | `(&Cown<A>, &PinnedCown<B>, ...)`, 1 to 8, any mix | `(&mut A, &mut B, ...)` |
//! | `&[Cown<T>]`, `&[Cown<T>; N]`, `&Vec<Cown<T>>`, `Vec<Cown<T>>` | [`Slots<T>`] |
//!
//! A set with any [`PinnedCown`] runs on the runtime's home thread.

use crate::{Cown, Error, PinnedCown};
use boc_core::CownHeader;

/// One sealing trait per public trait, so the blanket impls cannot clash.
mod sealed {
    pub trait Set {}
    pub trait Member {}
    pub trait Owned {}
    pub trait Acquired {}
}

/// The cown handles a scheduled behavior keeps, and the access its body
/// gets to their values. Implemented for the owned forms of every
/// [`CownSet`]; not implementable outside this crate.
pub trait Acquired: Send + 'static + sealed::Acquired {
    /// What the body receives.
    type Refs<'a>;

    /// The body's view of the values.
    ///
    /// # Safety
    ///
    /// The calling behavior holds every cown in the set, for at least `'a`,
    /// and runs on the home thread if any of them is pinned.
    #[doc(hidden)]
    unsafe fn refs<'a>(&'a mut self) -> Self::Refs<'a>;

    /// Drops the handles one by one, each under `catch_unwind`, as the
    /// behavior lets go of its cowns: the last handle of a cown drops its
    /// value, whose `Drop` may panic; the others are still dropped.
    #[doc(hidden)]
    fn drop_each(self)
    where
        Self: Sized,
    {
        crate::unwind::drop_reporting("the drop of a cown's value", self);
    }
}

/// A request set: the cowns a behavior needs. See the [module
/// docs](self) for every form and what its body receives. Not implementable
/// outside this crate.
pub trait CownSet: sealed::Set {
    /// The handles the behavior keeps until it is released.
    type Owned: Acquired;

    /// Clones the handles.
    #[doc(hidden)]
    fn to_owned(&self) -> Self::Owned;

    /// Checks the set can be handed to a body: tuples refuse duplicates,
    /// pinned cowns must belong to the runtime `home` identifies.
    #[doc(hidden)]
    fn check(&self, home: HomeId) -> Result<(), Error>;

    /// True if any cown of the set is pinned (the behavior runs on the
    /// home thread).
    #[doc(hidden)]
    fn is_pinned(&self) -> bool;

    /// The protocol headers of the cowns, with duplicates.
    #[doc(hidden)]
    fn headers(&self) -> impl ExactSizeIterator<Item = &CownHeader>;
}

/// Identifies a runtime, for checking that a pinned cown is scheduled on
/// the runtime whose home thread owns it.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HomeId(pub(crate) usize);

/// One cown of a tuple request set: a `&Cown<T>` or a `&PinnedCown<T>`.
/// Not implementable outside this crate.
pub trait Member: sealed::Member {
    /// The handle the behavior keeps.
    type Owned: OwnedMember;

    /// Clones the handle.
    #[doc(hidden)]
    fn to_owned(&self) -> Self::Owned;

    /// The protocol header.
    #[doc(hidden)]
    fn header(&self) -> &CownHeader;

    /// The runtime a pinned cown belongs to; `None` for ordinary cowns.
    #[doc(hidden)]
    fn home(&self) -> Option<HomeId>;
}

/// A cown handle kept by a behavior. Not implementable outside this crate.
pub trait OwnedMember: Send + 'static + sealed::Owned {
    /// The type of the cown's value.
    type Value: 'static;

    /// A pointer to the value.
    #[doc(hidden)]
    fn value_ptr(&self) -> *mut Self::Value;
}

impl<A: Send + 'static> sealed::Member for &Cown<A> {}

impl<A: Send + 'static> Member for &Cown<A> {
    type Owned = Cown<A>;

    fn to_owned(&self) -> Cown<A> {
        (*self).clone()
    }

    fn header(&self) -> &CownHeader {
        Cown::header(self)
    }

    fn home(&self) -> Option<HomeId> {
        None
    }
}

impl<A: Send + 'static> sealed::Owned for Cown<A> {}

impl<A: Send + 'static> OwnedMember for Cown<A> {
    type Value = A;

    fn value_ptr(&self) -> *mut A {
        Cown::value_ptr(self)
    }
}

impl<A: 'static> sealed::Member for &PinnedCown<A> {}

impl<A: 'static> Member for &PinnedCown<A> {
    type Owned = PinnedCown<A>;

    fn to_owned(&self) -> PinnedCown<A> {
        (*self).clone()
    }

    fn header(&self) -> &CownHeader {
        PinnedCown::header(self)
    }

    fn home(&self) -> Option<HomeId> {
        Some(PinnedCown::home(self))
    }
}

impl<A: 'static> sealed::Owned for PinnedCown<A> {}

impl<A: 'static> OwnedMember for PinnedCown<A> {
    type Value = A;

    fn value_ptr(&self) -> *mut A {
        PinnedCown::value_ptr(self)
    }
}

/// Errors if a pinned cown belongs to another runtime.
fn check_home(member_home: Option<HomeId>, home: HomeId) -> Result<(), Error> {
    match member_home {
        Some(member_home) if member_home != home => Err(Error::ForeignPinnedCown),
        _ => Ok(()),
    }
}

/// A single cown, not in a tuple.
impl<M: Member> sealed::Set for M {}

impl<M: Member> CownSet for M {
    type Owned = M::Owned;

    fn to_owned(&self) -> M::Owned {
        Member::to_owned(self)
    }

    fn check(&self, home: HomeId) -> Result<(), Error> {
        check_home(self.home(), home)
    }

    fn is_pinned(&self) -> bool {
        self.home().is_some()
    }

    fn headers(&self) -> impl ExactSizeIterator<Item = &CownHeader> {
        std::iter::once(self.header())
    }
}

impl<O: OwnedMember> sealed::Acquired for O {}

impl<O: OwnedMember> Acquired for O {
    type Refs<'a> = &'a mut O::Value;

    unsafe fn refs(&mut self) -> &mut O::Value {
        // SAFETY: the caller holds the cown for `'a` (on the home thread if
        // it is pinned), so no other reference to the value exists.
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
        impl<$($name: Member),+> sealed::Set for ($($name,)+) {}

        impl<$($name: Member),+> CownSet for ($($name,)+) {
            type Owned = ($($name::Owned,)+);

            fn to_owned(&self) -> Self::Owned {
                ($(Member::to_owned(&self.$idx),)+)
            }

            fn check(&self, home: HomeId) -> Result<(), Error> {
                $(check_home(self.$idx.home(), home)?;)+
                check_distinct(&[$(self.$idx.header().key()),+])
            }

            fn is_pinned(&self) -> bool {
                false $(|| self.$idx.home().is_some())+
            }

            fn headers(&self) -> impl ExactSizeIterator<Item = &CownHeader> {
                [$(self.$idx.header()),+].into_iter()
            }
        }

        impl<$($name: OwnedMember),+> sealed::Acquired for ($($name,)+) {}

        impl<$($name: OwnedMember),+> Acquired for ($($name,)+) {
            type Refs<'a> = ($(&'a mut $name::Value,)+);

            unsafe fn refs<'a>(&'a mut self) -> Self::Refs<'a> {
                // SAFETY: the caller holds every cown for `'a` (on the home
                // thread if any is pinned), and `check` refused duplicates,
                // so the references are disjoint.
                unsafe { ($(&mut *self.$idx.value_ptr(),)+) }
            }

            fn drop_each(self) {
                $(crate::unwind::drop_reporting("the drop of a cown's value", self.$idx);)+
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
        impl<T: Send + 'static $(, const $n: usize)?> sealed::Set for $ty {}

        impl<T: Send + 'static $(, const $n: usize)?> CownSet for $ty {
            type Owned = Vec<Cown<T>>;

            fn to_owned(&self) -> Vec<Cown<T>> {
                self.to_vec()
            }

            fn check(&self, _home: HomeId) -> Result<(), Error> {
                Ok(())
            }

            fn is_pinned(&self) -> bool {
                false
            }

            fn headers(&self) -> impl ExactSizeIterator<Item = &CownHeader> {
                self.iter().map(Cown::header)
            }
        }
    )+};
}

slice_set!(&[Cown<T>]; &[Cown<T>; N], const N; &Vec<Cown<T>>; Vec<Cown<T>>);

impl<T: Send + 'static> sealed::Acquired for Vec<Cown<T>> {}

impl<T: Send + 'static> Acquired for Vec<Cown<T>> {
    type Refs<'a> = Slots<'a, T>;

    unsafe fn refs<'a>(&'a mut self) -> Slots<'a, T> {
        Slots { cowns: self }
    }

    fn drop_each(self) {
        for cown in self {
            crate::unwind::drop_reporting("the drop of a cown's value", cown);
        }
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
