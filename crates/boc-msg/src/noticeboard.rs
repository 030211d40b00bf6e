//! The noticeboard: [`Noticeboard`], its [`Snapshot`]s and [`Change`].
//!
//! The board is `Mutex<Arc<HashMap<K, Entry<V>>>>`: the lock guards which
//! map is current, and the map itself is immutable while shared. A reader
//! takes a snapshot by cloning the `Arc` (under the lock, O(1)) and then
//! reads it without any lock for as long as it likes. A writer changes the
//! current map through `Arc::make_mut`: in place when no snapshot of it is
//! alive, otherwise on a fresh copy, which becomes current while the
//! snapshots keep the old one.
//!
//! Each entry holds its value behind an `Arc`, so a copy duplicates the
//! table (the keys and one pointer per entry), never the values, and
//! carries a *version*: a number drawn from one counter per board, unique
//! to the write that stored the entry.
//!
//! # Cost
//!
//! * `snapshot`: the lock and an `Arc` clone. `Snapshot::get`: a hash
//!   lookup, no lock.
//! * `read`: the lock, a lookup, then a clone of the value (after the lock).
//! * `write`, `delete`, a changing `update`: the lock and O(1) while no
//!   snapshot of the current map is alive; **O(keys) while one is** (the
//!   table is copied, keys cloned, values shared). Read-mostly state is the
//!   intended use; drop snapshots promptly when writes are frequent.
//! * A snapshot keeps the map it was taken from, and the values in it,
//!   alive until it is dropped.
//!
//! # The update conflict rule
//!
//! `update(key, f)` reads the key's value and version under the lock,
//! releases the lock, calls `f`, then retakes the lock and commits `f`'s
//! answer only if the key's version is unchanged: the same entry is still
//! there, or it was absent and still is. Otherwise it calls `f` again with
//! the value now current. Versions are unique per write, so any write to
//! the key in between (a `write`, a `delete` of a present key, a `Set` or
//! `Remove` of another `update`) forces a retry, and writes to other keys
//! never do. A key that was written and deleted again while `f` ran is
//! absent, as `f` saw it, so `f`'s answer stands. The update takes effect
//! at its commit, where the key holds exactly what `f` was given: it is
//! atomic. Under constant contention on one key a given update may retry
//! many times, but each retry means another write to it succeeded.

use crate::primitive::Unpoisoned;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::hash::Hash;
use std::iter::FusedIterator;
use std::sync::{Arc, Mutex, MutexGuard};

/// A process-wide key/value board for read-mostly state, with
/// copy-on-write snapshots.
///
/// Every operation is atomic. [`snapshot`](Self::snapshot) gives an
/// immutable, consistent view of the whole board that later writes do not
/// change; [`update`](Self::update) is an atomic read-modify-write of one
/// key whose function runs without the board's lock. There is no fixed
/// limit on the number of keys.
///
/// The cost model (a write while a snapshot is alive copies the map:
/// O(keys)) and the conflict rule of `update` are in the module docs
/// (`src/noticeboard.rs`).
///
/// `Noticeboard` is `Send` and `Sync` when the keys and values are `Send`
/// and `Sync`; share it with an `Arc` or a `static`.
///
/// ```
/// use boc_msg::{Change, Noticeboard};
///
/// let board = Noticeboard::new();
/// board.write("mode".to_owned(), "fast");
/// let before = board.snapshot();
/// board.write("mode".to_owned(), "safe");
/// assert_eq!(before.get("mode"), Some(&"fast"));
/// assert_eq!(board.read("mode"), Some("safe"));
/// assert_eq!(board.update("mode".to_owned(), |_| Change::Remove), None);
/// assert!(board.is_empty());
/// ```
pub struct Noticeboard<K, V> {
    state: Mutex<Board<K, V>>,
}

/// Everything behind the board's lock.
struct Board<K, V> {
    /// The current map. Shared with every snapshot taken since the last
    /// write; changed only through `Arc::make_mut`.
    map: Arc<Map<K, V>>,
    /// The version the next write stamps on its entry.
    next_version: u64,
}

type Map<K, V> = HashMap<K, Entry<V>>;

/// One key's value, and the write that stored it.
struct Entry<V> {
    /// Shared, so copying the map never clones a value.
    value: Arc<V>,
    /// Unique per write: `update` compares it to detect a conflict.
    version: u64,
}

impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Self { value: Arc::clone(&self.value), version: self.version }
    }
}

/// An immutable view of the board at one instant (cheap to take: an Arc clone).
///
/// Later writes to the board do not show in it. Reading it takes no lock.
/// Cloning it is an `Arc` clone. While it is alive, the next write to the
/// board copies the board's map (see [`Noticeboard`]).
///
/// ```
/// let board = boc_msg::Noticeboard::new();
/// board.write(1, "one");
/// board.write(2, "two");
/// let snapshot = board.snapshot();
/// board.delete(&1);
/// assert_eq!(snapshot.len(), 2);
/// assert_eq!(snapshot.get(&1), Some(&"one"));
/// let mut keys: Vec<_> = snapshot.keys().copied().collect();
/// keys.sort();
/// assert_eq!(keys, [1, 2]);
/// ```
pub struct Snapshot<K, V> {
    map: Arc<Map<K, V>>,
}

/// What an [`update`](Noticeboard::update) function wants done with its key.
///
/// ```
/// use boc_msg::{Change, Noticeboard};
///
/// let board = Noticeboard::new();
/// let bump = |count: Option<&u32>| match count {
///     Some(&count) if count >= 2 => Change::Remove,
///     Some(&count) => Change::Set(count + 1),
///     None => Change::Set(1),
/// };
/// assert_eq!(board.update("visits", bump), Some(1));
/// assert_eq!(board.update("visits", bump), Some(2));
/// assert_eq!(board.update("visits", bump), None);
/// assert_eq!(board.update("visits", |_| Change::Keep), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change<V> {
    /// Store this value under the key (inserting it if absent).
    Set(V),
    /// Remove the key (nothing happens if it is absent).
    Remove,
    /// Leave the key as it is; not a write.
    Keep,
}

impl<K: Eq + Hash + Clone, V: Clone> Noticeboard<K, V> {
    /// An empty board.
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::<String, i64>::new();
    /// assert!(board.is_empty());
    /// ```
    pub fn new() -> Self {
        Self { state: Mutex::new(Board { map: Arc::default(), next_version: 0 }) }
    }

    /// An immutable view of the whole board now; later writes do not show
    /// in it.
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// board.write("a", 1);
    /// let snapshot = board.snapshot();
    /// board.write("b", 2);
    /// assert!(!snapshot.contains_key("b"));
    /// assert_eq!(board.snapshot().len(), 2);
    /// ```
    pub fn snapshot(&self) -> Snapshot<K, V> {
        Snapshot { map: Arc::clone(&self.lock().map) }
    }

    /// A clone of the value under `key` now, or `None`.
    ///
    /// To read several keys consistently, read one [`snapshot`](Self::snapshot).
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// board.write("limit".to_owned(), 8);
    /// assert_eq!(board.read("limit"), Some(8));
    /// assert_eq!(board.read("other"), None);
    /// ```
    pub fn read<Q: ?Sized + Hash + Eq>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let value = self.lock().map.get(key).map(|entry| Arc::clone(&entry.value));
        value.map(|value| V::clone(&value))
    }

    /// Sets `key`; returns the previous value.
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// assert_eq!(board.write("k", 1), None);
    /// assert_eq!(board.write("k", 2), Some(1));
    /// ```
    pub fn write(&self, key: K, value: V) -> Option<V> {
        let value = Arc::new(value);
        let previous = self.lock().set(key, value);
        previous.map(Arc::unwrap_or_clone)
    }

    /// Removes `key`; returns the previous value.
    ///
    /// Deleting an absent key changes nothing (and copies nothing).
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// board.write("k", 1);
    /// assert_eq!(board.delete("k"), Some(1));
    /// assert_eq!(board.delete("k"), None);
    /// ```
    pub fn delete<Q: ?Sized + Hash + Eq>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let previous = self.lock().remove(key);
        previous.map(Arc::unwrap_or_clone)
    }

    /// Atomic read-modify-write of one key: `f` gets the current value (None if absent) and says
    /// what to do. `f` runs WITHOUT the board's lock held (it may be slow, or call into an
    /// interpreter), and is called again if another write to `key` landed in between, so it
    /// should depend only on its argument. Returns the value after the update (None if absent).
    /// Writes to other keys do not cause a retry.
    ///
    /// `f` may itself read and write the board (other keys freely; a write
    /// to `key` makes this update retry). The exact conflict rule is in the
    /// module docs (`src/noticeboard.rs`). If `f` panics, nothing changes
    /// and the panic propagates.
    ///
    /// ```
    /// use boc_msg::{Change, Noticeboard};
    /// use std::sync::Arc;
    ///
    /// let board = Arc::new(Noticeboard::new());
    /// let threads: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let board = Arc::clone(&board);
    ///         std::thread::spawn(move || {
    ///             for _ in 0..100 {
    ///                 board.update("count", |count| Change::Set(count.copied().unwrap_or(0) + 1));
    ///             }
    ///         })
    ///     })
    ///     .collect();
    /// for thread in threads {
    ///     thread.join().unwrap();
    /// }
    /// assert_eq!(board.read("count"), Some(400));
    /// ```
    pub fn update<F: FnMut(Option<&V>) -> Change<V>>(&self, key: K, mut f: F) -> Option<V> {
        let Ok(value) = self.try_update(key, |current| Ok::<_, Infallible>(f(current)));
        value
    }

    /// `update` whose `f` can fail; the error is returned and nothing changes.
    ///
    /// ```
    /// use boc_msg::{Change, Noticeboard};
    ///
    /// let board = Noticeboard::new();
    /// board.write("balance", 10_u32);
    /// let withdraw = |amount: u32| {
    ///     move |balance: Option<&u32>| match balance.copied().unwrap_or(0).checked_sub(amount) {
    ///         Some(left) => Ok(Change::Set(left)),
    ///         None => Err("insufficient funds"),
    ///     }
    /// };
    /// assert_eq!(board.try_update("balance", withdraw(4)), Ok(Some(6)));
    /// assert_eq!(board.try_update("balance", withdraw(7)), Err("insufficient funds"));
    /// assert_eq!(board.read("balance"), Some(6));
    /// ```
    ///
    /// # Errors
    ///
    /// The first error `f` returns; the board is then as it was.
    pub fn try_update<E, F: FnMut(Option<&V>) -> Result<Change<V>, E>>(
        &self,
        key: K,
        mut f: F,
    ) -> Result<Option<V>, E> {
        let mut observed = self.lock().entry(&key);
        loop {
            let change = match f(observed.as_ref().map(|entry| &*entry.value))? {
                Change::Set(value) => Change::Set(Arc::new(value)),
                Change::Remove => Change::Remove,
                Change::Keep => Change::Keep,
            };
            let mut board = self.lock();
            let current = board.map.get(&key);
            if current.map(|entry| entry.version) != observed.as_ref().map(|entry| entry.version) {
                // Another write to `key` landed while `f` ran: ask again.
                // The value seen before may be the last handle to it: it is
                // dropped once the lock is released (its drop may read the
                // board), as is the rejected change.
                let stale = std::mem::replace(&mut observed, current.cloned());
                drop(board);
                drop((stale, change));
                continue;
            }
            let after = match change {
                Change::Set(value) => {
                    board.set(key, Arc::clone(&value));
                    Some(value)
                }
                Change::Remove => {
                    // `observed` still holds the value, so it is dropped
                    // after the lock, with `observed`.
                    board.remove(&key);
                    None
                }
                Change::Keep => observed.map(|entry| entry.value),
            };
            drop(board);
            return Ok(after.map(|value| V::clone(&value)));
        }
    }

    /// The number of keys on the board.
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// board.write("a", ());
    /// board.write("b", ());
    /// assert_eq!(board.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the board has no key.
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// assert!(board.is_empty());
    /// board.write("a", ());
    /// assert!(!board.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Board<K, V>> {
        // The only user code under the lock is the key's `Hash`, `Eq` and
        // `Clone` (and the map's copy, which `Arc::make_mut` finishes before
        // it replaces anything), so a panic there leaves a consistent board.
        self.state.lock().unpoisoned()
    }
}

impl<K: Eq + Hash + Clone, V> Board<K, V> {
    /// The entry under `key`, shared with the map.
    fn entry<Q: ?Sized + Hash + Eq>(&self, key: &Q) -> Option<Entry<V>>
    where
        K: Borrow<Q>,
    {
        self.map.get(key).cloned()
    }

    /// Stores `value` under `key` with a fresh version; the previous value.
    fn set(&mut self, key: K, value: Arc<V>) -> Option<Arc<V>> {
        let version = self.next_version;
        self.next_version += 1;
        self.map_mut().insert(key, Entry { value, version }).map(|entry| entry.value)
    }

    /// Removes `key`, copying the map only if the key is there.
    fn remove<Q: ?Sized + Hash + Eq>(&mut self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
    {
        if !self.map.contains_key(key) {
            return None;
        }
        self.map_mut().remove(key).map(|entry| entry.value)
    }

    /// The current map, copied first if a snapshot shares it.
    fn map_mut(&mut self) -> &mut Map<K, V> {
        Arc::make_mut(&mut self.map)
    }
}

impl<K: Eq + Hash, V> Snapshot<K, V> {
    /// The value under `key` when the snapshot was taken.
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// board.write("k".to_owned(), vec![1, 2]);
    /// let snapshot = board.snapshot();
    /// assert_eq!(snapshot.get("k").map(Vec::len), Some(2));
    /// ```
    pub fn get<Q: ?Sized + Hash + Eq>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(key).map(|entry| &*entry.value)
    }

    /// Whether `key` was on the board when the snapshot was taken.
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// board.write(7, ());
    /// assert!(board.snapshot().contains_key(&7));
    /// ```
    pub fn contains_key<Q: ?Sized + Hash + Eq>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.map.contains_key(key)
    }

    /// The number of keys in the snapshot.
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// board.write("a", 1);
    /// assert_eq!(board.snapshot().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the snapshot has no key.
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::<u8, u8>::new();
    /// assert!(board.snapshot().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every key and value, in no particular order (it knows its length).
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// board.write("a", 1);
    /// board.write("b", 2);
    /// let snapshot = board.snapshot();
    /// assert_eq!(snapshot.iter().map(|(_, value)| value).sum::<i32>(), 3);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&K, &V)> + FusedIterator {
        self.map.iter().map(|(key, entry)| (key, &*entry.value))
    }

    /// Every key, in no particular order (it knows its length).
    ///
    /// ```
    /// let board = boc_msg::Noticeboard::new();
    /// board.write("only", 1);
    /// assert_eq!(board.snapshot().keys().collect::<Vec<_>>(), [&"only"]);
    /// ```
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &K> + FusedIterator {
        self.map.keys()
    }
}

impl<K, V> Clone for Snapshot<K, V> {
    fn clone(&self) -> Self {
        Self { map: Arc::clone(&self.map) }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Default for Noticeboard<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Snapshot<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.map.iter().map(|(key, entry)| (key, &entry.value))).finish()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Noticeboard<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = Arc::clone(&self.state.lock().unpoisoned().map);
        f.debug_tuple("Noticeboard").field(&Snapshot { map }).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_copies_the_map_only_while_a_snapshot_shares_it() {
        let board = Noticeboard::new();
        board.write("a", 1);
        let before = Arc::as_ptr(&board.lock().map);
        board.write("b", 2);
        board.delete("a");
        board.update("c", |_| Change::Set(3));
        assert_eq!(Arc::as_ptr(&board.lock().map), before, "no snapshot: changed in place");
        let snapshot = board.snapshot();
        board.write("d", 4);
        assert_ne!(Arc::as_ptr(&board.lock().map), before, "copied for the snapshot");
        assert_eq!(Arc::as_ptr(&snapshot.map), before);
        drop(snapshot);
        let after_copy = Arc::as_ptr(&board.lock().map);
        board.write("e", 5);
        assert_eq!(Arc::as_ptr(&board.lock().map), after_copy);
    }

    #[test]
    fn deleting_an_absent_key_or_keeping_copies_nothing() {
        let board = Noticeboard::new();
        board.write("a", 1);
        let snapshot = board.snapshot();
        assert_eq!(board.delete("missing"), None);
        assert_eq!(board.update("a", |_| Change::Keep), Some(1));
        assert_eq!(board.update("missing", |_| Change::Remove), None);
        assert!(Arc::ptr_eq(&board.lock().map, &snapshot.map));
    }

    #[test]
    fn a_copy_shares_the_values() {
        let board = Noticeboard::new();
        board.write("big", vec![0_u8; 1024]);
        let snapshot = board.snapshot();
        board.write("other", vec![]);
        let current = board.snapshot();
        assert!(Arc::ptr_eq(&snapshot.map["big"].value, &current.map["big"].value));
    }

    #[test]
    fn each_write_stamps_a_new_version() {
        let board = Noticeboard::new();
        board.write("a", 1);
        let first = board.lock().map["a"].version;
        board.write("a", 1);
        board.update("a", |_| Change::Set(1));
        let third = board.lock().map["a"].version;
        assert_eq!(third, first + 2);
        board.update("a", |_| Change::Keep);
        assert_eq!(board.lock().map["a"].version, third, "keep is not a write");
    }
}
