//! Tagged message queues: [`Mailbox`].
//!
//! One `Mutex` guards a map from tag to that tag's queue of messages, each
//! message stamped with a sequence number from one counter for the whole
//! mailbox, so "the oldest message among these tags" is the smallest stamp
//! at the fronts of their queues. A tag with no queued message has no
//! queue, so memory follows the messages queued, not the tags ever used.
//!
//! # Waking receivers
//!
//! A receiver that finds nothing registers itself as a *waiter*, with its
//! own `Condvar`, under each tag it waits on, and sleeps on that condvar. A
//! send wakes the waiters registered under its tag and nobody else, so
//! receivers on busy tags do not disturb receivers on quiet ones.
//!
//! 1. A receiver checks the queues of its tags and, finding nothing,
//!    registers, in one hold of the lock.
//! 2. A send queues its message and wakes the waiters of its tag in one
//!    hold of the lock.
//! 3. A woken receiver (or one whose wait timed out or woke spuriously)
//!    checks the queues of its tags again before it waits again or gives
//!    up, and unregisters when it leaves.
//!
//! No wakeup is lost: a message sent before step 1 is found by its check;
//! a message sent after it finds the waiter registered (steps 1 and 2
//! exclude each other), and the waiter re-checks before it sleeps again or
//! returns, even on a timeout (step 3).
//!
//! A send wakes *every* waiter on its tag, not just one. Waking one would
//! need a hand-off: the woken receiver may take an older message of another
//! of its tags instead, or time out, and the message it was woken for would
//! then wait with other receivers asleep. Receivers that share a tag race
//! for its messages (no fairness among them); the losers sleep again.
//!
//! # Cost
//!
//! `send`: a hash lookup or two, plus one notification per receiver waiting
//! on the tag. `receive` / `try_receive`: one lookup per tag asked for; a
//! receiver that has to wait allocates its condvar and registers under each
//! of its tags. `drain`: one lookup per tag plus a sort of what it takes.
//! All of it runs under the one lock, together with the key's `Hash`, `Eq`
//! and `Clone`; message contents are only moved, never cloned or dropped
//! there.

use crate::primitive::Unpoisoned;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tagged message queues shared by any number of threads.
///
/// [`send`](Self::send) queues a message under a *tag* (a key: a string, an
/// enum, an id); [`receive`](Self::receive) takes the oldest message among
/// the tags it asks for, waiting until one arrives if need be, with an
/// optional timeout; [`drain`](Self::drain) takes them all at once.
///
/// Order: messages under one tag come out in the order they were sent; a
/// receive over several tags takes the oldest of them in the mailbox's one
/// global send order (the order in which `send` calls took the lock, which
/// for two sends from one thread is program order).
///
/// A send wakes only the receivers waiting on its tag. The wakeup design
/// and the cost of each call are in the module docs (`src/mailbox.rs`).
///
/// `Mailbox` is `Send` and `Sync` when the tags and contents are `Send`;
/// share it with an `Arc` or a `static`.
///
/// ```
/// use boc_msg::Mailbox;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let mailbox = Arc::new(Mailbox::new());
/// let worker = {
///     let mailbox = Arc::clone(&mailbox);
///     std::thread::spawn(move || {
///         mailbox.send("progress", 50);
///         mailbox.send("done", 100);
///     })
/// };
/// // Whichever of the two tags was sent first comes first.
/// assert_eq!(mailbox.receive(&["done", "progress"], None), Some(("progress", 50)));
/// assert_eq!(mailbox.receive(&["done", "progress"], Some(Duration::from_secs(10))), Some(("done", 100)));
/// worker.join().unwrap();
/// assert_eq!(mailbox.try_receive(&["done"]), None);
/// ```
pub struct Mailbox<K, T> {
    state: Mutex<State<K, T>>,
}

/// Everything behind the mailbox's lock.
struct State<K, T> {
    /// Queued messages per tag, oldest first, each with its send sequence
    /// number. A tag with no queued message has no entry.
    queues: HashMap<K, VecDeque<(u64, T)>>,
    /// Receivers waiting, per tag they wait on: each is its own condvar,
    /// registered once under each of its tags. A tag nobody waits on has no
    /// entry.
    waiters: HashMap<K, Vec<Waiter>>,
    /// The sequence number of the next send.
    next_seq: u64,
    /// Messages queued over all tags.
    n_messages: usize,
    /// Times a waiting receiver woke up (for any reason), so unit tests can
    /// check that a send on one tag leaves receivers on others asleep.
    #[cfg(test)]
    n_wakeups: usize,
}

/// [`Mailbox::hold`]'s guard: the mailbox's lock, released when it drops.
#[must_use = "the mailbox's lock is released as soon as the guard drops"]
pub struct Hold<'a, K, T> {
    _state: MutexGuard<'a, State<K, T>>,
}

impl<K, T> fmt::Debug for Hold<'_, K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hold").finish_non_exhaustive()
    }
}

/// A receiver waiting in [`Mailbox::receive`], woken by sends on its tags.
type Waiter = Arc<Condvar>;

impl<K: Eq + Hash + Clone, T> Mailbox<K, T> {
    /// An empty mailbox.
    ///
    /// ```
    /// let mailbox = boc_msg::Mailbox::<&str, u32>::new();
    /// assert!(mailbox.is_empty());
    /// ```
    pub fn new() -> Self {
        let state = State {
            queues: HashMap::new(),
            waiters: HashMap::new(),
            next_seq: 0,
            n_messages: 0,
            #[cfg(test)]
            n_wakeups: 0,
        };
        Self { state: Mutex::new(state) }
    }

    /// Queues `contents` under `tag`; wakes receivers waiting on it.
    ///
    /// Never blocks (beyond the mailbox's lock) and never fails: there is
    /// no bound on the number of queued messages.
    ///
    /// ```
    /// let mailbox = boc_msg::Mailbox::new();
    /// mailbox.send("log", "started");
    /// mailbox.send("log", "stopped");
    /// assert_eq!(mailbox.len(), 2);
    /// assert_eq!(mailbox.try_receive(&["log"]), Some(("log", "started")));
    /// ```
    pub fn send(&self, tag: K, contents: T) {
        let mut state = self.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        // Waking before queueing is fine: the woken receivers look only once
        // this call has released the lock. It saves cloning the tag.
        if let Some(waiters) = state.waiters.get(&tag) {
            for waiter in waiters {
                waiter.notify_one();
            }
        }
        state.queues.entry(tag).or_default().push_back((seq, contents));
        state.n_messages += 1;
    }

    /// The oldest message (in global send order) among those queued under any of `tags`,
    /// waiting up to `timeout` (None: forever) for one to arrive. None on timeout.
    /// A zero timeout does not wait. Duplicate tags in `tags` are fine.
    ///
    /// The message comes back with its tag. Waiting handles spurious
    /// wakeups and never returns before the timeout has elapsed; a timeout
    /// too large to represent as a deadline waits forever. With no tags and
    /// no timeout it waits forever: nothing can arrive.
    ///
    /// ```
    /// use boc_msg::Mailbox;
    /// use std::time::{Duration, Instant};
    ///
    /// let mailbox = Mailbox::new();
    /// mailbox.send(2, "two");
    /// mailbox.send(1, "one");
    /// assert_eq!(mailbox.receive(&[1, 2], None), Some((2, "two")));
    /// assert_eq!(mailbox.receive(&[1, 2], None), Some((1, "one")));
    ///
    /// let started = Instant::now();
    /// assert_eq!(mailbox.receive(&[1, 2], Some(Duration::from_millis(20))), None);
    /// assert!(started.elapsed() >= Duration::from_millis(20));
    /// ```
    pub fn receive(&self, tags: &[K], timeout: Option<Duration>) -> Option<(K, T)> {
        let mut state = self.lock();
        if let Some(message) = state.take_oldest(tags) {
            return Some(message);
        }
        if timeout == Some(Duration::ZERO) {
            return None;
        }
        Self::wait(state, tags, timeout)
    }

    /// receive without waiting.
    ///
    /// Same as [`receive`](Self::receive) with a zero timeout.
    ///
    /// ```
    /// let mailbox = boc_msg::Mailbox::new();
    /// assert_eq!(mailbox.try_receive(&["a"]), None);
    /// mailbox.send("a", 1);
    /// assert_eq!(mailbox.try_receive(&["a", "b"]), Some(("a", 1)));
    /// ```
    pub fn try_receive(&self, tags: &[K]) -> Option<(K, T)> {
        self.lock().take_oldest(tags)
    }

    /// Removes and returns every message queued under any of `tags`, in send order.
    ///
    /// Messages under other tags stay queued. Never waits; an empty vector
    /// if there is nothing to take. Duplicate tags are fine.
    ///
    /// ```
    /// let mailbox = boc_msg::Mailbox::new();
    /// mailbox.send("a", 1);
    /// mailbox.send("b", 2);
    /// mailbox.send("c", 3);
    /// mailbox.send("a", 4);
    /// assert_eq!(mailbox.drain(&["a", "c"]), [("a", 1), ("c", 3), ("a", 4)]);
    /// assert_eq!(mailbox.drain(&["b"]), [("b", 2)]);
    /// assert!(mailbox.is_empty());
    /// ```
    pub fn drain(&self, tags: &[K]) -> Vec<(K, T)> {
        let mut taken = Vec::new();
        {
            let mut state = self.lock();
            for tag in tags {
                if let Some((key, queue)) = state.queues.remove_entry(tag) {
                    state.n_messages -= queue.len();
                    taken.push((key, queue));
                }
            }
        }
        // Tagging each message, and merging the queues, happen after the
        // lock is released.
        let mut messages: Vec<(u64, K, T)> = Vec::with_capacity(taken.iter().map(|(_, queue)| queue.len()).sum());
        for (key, queue) in taken {
            messages.extend(queue.into_iter().map(|(seq, contents)| (seq, key.clone(), contents)));
        }
        // Each queue is already in order; only a multi-tag drain interleaves.
        messages.sort_unstable_by_key(|&(seq, _, _)| seq);
        messages.into_iter().map(|(_, key, contents)| (key, contents)).collect()
    }

    /// Messages queued (all tags).
    ///
    /// ```
    /// let mailbox = boc_msg::Mailbox::new();
    /// mailbox.send('x', ());
    /// mailbox.send('y', ());
    /// assert_eq!(mailbox.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().n_messages
    }

    /// Whether no message is queued, under any tag.
    ///
    /// ```
    /// let mailbox = boc_msg::Mailbox::new();
    /// assert!(mailbox.is_empty());
    /// mailbox.send("tag", 1);
    /// assert!(!mailbox.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slow path of [`receive`](Self::receive): register, sleep until
    /// woken or the deadline passes, re-check, unregister (steps 1 and 3 of
    /// the module docs). `state` is the guard under which the queues of
    /// `tags` were just found empty.
    #[cold]
    fn wait(mut state: MutexGuard<'_, State<K, T>>, tags: &[K], timeout: Option<Duration>) -> Option<(K, T)> {
        // A deadline that does not fit in an `Instant` is as good as none.
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let waiter = Waiter::default();
        state.register(tags, &waiter);
        let message = loop {
            state = match deadline {
                None => waiter.wait(state).unpoisoned(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break None;
                    }
                    waiter.wait_timeout(state, deadline - now).unpoisoned().0
                }
            };
            #[cfg(test)]
            {
                state.n_wakeups += 1;
            }
            if let Some(message) = state.take_oldest(tags) {
                break Some(message);
            }
        };
        state.unregister(tags, &waiter);
        message
    }

    /// Takes the mailbox's lock and holds it until the returned guard
    /// drops: meanwhile no other thread sends, receives or wakes up in a
    /// receive. Only the tags' `Hash`, `Eq` and `Clone` ever run under this
    /// lock, so it is never held for long.
    ///
    /// For a `fork` handler (`pthread_atfork`'s *prepare*): a lock held by
    /// another thread at the fork stays held in the child, which has only
    /// the forking thread, so the child would block on the mailbox forever.
    /// Hold it across the fork and drop the guard on both sides; the child
    /// keeps the queued messages. Calling any other method of the mailbox
    /// on the holding thread deadlocks.
    ///
    /// ```
    /// let mailbox = boc_msg::Mailbox::new();
    /// let hold = mailbox.hold();
    /// // ... fork here ...
    /// drop(hold);
    /// mailbox.send("log", "forked");
    /// ```
    pub fn hold(&self) -> Hold<'_, K, T> {
        Hold { _state: self.lock() }
    }

    fn lock(&self) -> MutexGuard<'_, State<K, T>> {
        // The only user code under the lock is the tag's `Hash`, `Eq` and
        // `Clone`, and every step that may call it leaves the state
        // consistent (at worst an empty queue or a stale waiter stays
        // behind, which the code tolerates), so a poisoned lock is usable.
        self.state.lock().unpoisoned()
    }
}

impl<K: Eq + Hash, T> State<K, T> {
    /// Takes the message with the smallest sequence number at the front of
    /// the queues of `tags`.
    fn take_oldest(&mut self, tags: &[K]) -> Option<(K, T)>
    where
        K: Clone,
    {
        let mut oldest: Option<(&K, u64)> = None;
        for tag in tags {
            if let Some(&(seq, _)) = self.queues.get(tag).and_then(VecDeque::front) {
                if oldest.is_none_or(|(_, oldest_seq)| seq < oldest_seq) {
                    oldest = Some((tag, seq));
                }
            }
        }
        let (tag, _) = oldest?;
        // Cloned first: a panicking `Clone` then loses no message.
        let key = tag.clone();
        let queue = self.queues.get_mut(tag)?;
        let (_, contents) = queue.pop_front()?;
        self.n_messages -= 1;
        if queue.is_empty() {
            self.queues.remove(tag);
        }
        Some((key, contents))
    }

    /// Registers `waiter` under each of `tags`, once per distinct tag.
    fn register(&mut self, tags: &[K], waiter: &Waiter)
    where
        K: Clone,
    {
        for tag in tags {
            match self.waiters.get_mut(tag) {
                // Nobody else registers while this call holds the lock, so a
                // duplicate tag finds this waiter last in the list.
                Some(waiters) if waiters.last().is_some_and(|last| Arc::ptr_eq(last, waiter)) => {}
                Some(waiters) => waiters.push(Arc::clone(waiter)),
                None => {
                    self.waiters.insert(tag.clone(), vec![Arc::clone(waiter)]);
                }
            }
        }
    }

    /// Undoes [`register`](Self::register); drops a tag's list once empty.
    fn unregister(&mut self, tags: &[K], waiter: &Waiter) {
        for tag in tags {
            if let Some(waiters) = self.waiters.get_mut(tag) {
                if let Some(waiter_idx) = waiters.iter().position(|other| Arc::ptr_eq(other, waiter)) {
                    waiters.swap_remove(waiter_idx);
                }
                if waiters.is_empty() {
                    self.waiters.remove(tag);
                }
            }
        }
    }
}

impl<K: Eq + Hash + Clone, T> Default for Mailbox<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, T> fmt::Debug for Mailbox<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock().unpoisoned();
        f.debug_struct("Mailbox")
            .field("n_messages", &state.n_messages)
            .field("n_tags_queued", &state.queues.len())
            .field("n_tags_waited_on", &state.waiters.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// Yields until a receiver is registered under `tag`.
    fn until_waiting<T>(mailbox: &Mailbox<&'static str, T>, tag: &str) {
        while !mailbox.lock().waiters.contains_key(tag) {
            thread::yield_now();
        }
    }

    #[test]
    fn empty_queues_and_waiter_lists_are_dropped() {
        let mailbox = Mailbox::new();
        for tag in 0..1000 {
            mailbox.send(tag, tag);
            assert_eq!(mailbox.try_receive(&[tag]), Some((tag, tag)));
        }
        mailbox.send(1, 1);
        mailbox.send(2, 2);
        assert_eq!(mailbox.drain(&[1, 2]).len(), 2);
        assert_eq!(mailbox.receive(&[3, 4, 3], Some(Duration::from_millis(1))), None);
        let state = mailbox.lock();
        assert!(state.queues.is_empty());
        assert!(state.waiters.is_empty());
        assert_eq!(state.n_messages, 0);
    }

    #[test]
    fn a_duplicate_tag_registers_once() {
        let mailbox = Mailbox::<u8, ()>::new();
        let waiter = Waiter::default();
        let mut state = mailbox.lock();
        state.register(&[1, 2, 1, 1, 2], &waiter);
        assert_eq!(state.waiters[&1].len(), 1);
        assert_eq!(state.waiters[&2].len(), 1);
        state.unregister(&[1, 2, 1, 1, 2], &waiter);
        assert!(state.waiters.is_empty());
    }

    #[test]
    fn sends_on_other_tags_leave_a_waiting_receiver_asleep() {
        let mailbox = Arc::new(Mailbox::new());
        let receiver = {
            let mailbox = Arc::clone(&mailbox);
            thread::spawn(move || mailbox.receive(&["wanted"], Some(Duration::from_secs(30))))
        };
        until_waiting(&mailbox, "wanted");
        for idx in 0..200 {
            mailbox.send("other", idx);
        }
        mailbox.send("wanted", 1000);
        assert_eq!(receiver.join().unwrap(), Some(("wanted", 1000)));
        // One wakeup for the wanted message; allow a spurious one or two.
        let n_wakeups = mailbox.lock().n_wakeups;
        assert!(n_wakeups <= 3, "the receiver woke {n_wakeups} times");
        assert_eq!(mailbox.len(), 200);
    }

    #[test]
    fn every_receiver_waiting_on_a_tag_is_woken_and_one_takes_the_message() {
        let mailbox = Arc::new(Mailbox::new());
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let mailbox = Arc::clone(&mailbox);
                thread::spawn(move || mailbox.receive(&["shared"], Some(Duration::from_millis(300))))
            })
            .collect();
        while mailbox.lock().waiters.get("shared").is_none_or(|waiters| waiters.len() < 2) {
            thread::yield_now();
        }
        mailbox.send("shared", 7);
        let results: Vec<_> = receivers.into_iter().map(|receiver| receiver.join().unwrap()).collect();
        assert_eq!(results.iter().flatten().count(), 1, "{results:?}");
        assert!(mailbox.lock().n_wakeups >= 2, "both receivers woke");
        assert!(mailbox.lock().waiters.is_empty());
    }
}
