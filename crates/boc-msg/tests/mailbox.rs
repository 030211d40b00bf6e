//! The mailbox's promises: FIFO per tag, global send order across tags,
//! blocking receive woken from another thread, timeouts, drain, and every
//! message received exactly once under many producers and consumers.

use boc_msg::Mailbox;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Long enough that only a lost wakeup reaches it.
const LOST_WAKEUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a receiver that must not return is watched for.
const EARLY_RETURN_WINDOW: Duration = Duration::from_millis(50);

/// A receiver on its own thread, reporting what it got on a channel.
fn spawn_receiver(
    mailbox: &Arc<Mailbox<&'static str, u32>>,
    tags: &'static [&'static str],
    timeout: Option<Duration>,
) -> mpsc::Receiver<Option<(&'static str, u32)>> {
    let (sender, receiver) = mpsc::channel();
    let mailbox = Arc::clone(mailbox);
    thread::spawn(move || sender.send(mailbox.receive(tags, timeout)).unwrap());
    receiver
}

#[test]
fn mailboxes_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Mailbox<String, Vec<u8>>>();
    assert_send_sync::<Mailbox<u64, std::cell::Cell<u8>>>(); // contents need only be `Send`
}

#[test]
fn messages_under_one_tag_come_out_first_in_first_out() {
    let mailbox = Mailbox::new();
    for idx in 0..100 {
        mailbox.send("tag", idx);
    }
    assert_eq!(mailbox.len(), 100);
    for idx in 0..100 {
        assert_eq!(mailbox.receive(&["tag"], None), Some(("tag", idx)));
    }
    assert!(mailbox.is_empty());
}

#[test]
fn receive_over_several_tags_follows_the_global_send_order() {
    let mailbox = Mailbox::new();
    let tags = ["a", "b", "c"];
    for idx in 0..30 {
        mailbox.send(tags[(idx * 7) % 3], idx);
    }
    mailbox.send("d", 1000);
    for idx in 0..30 {
        // The order of `tags` in the request does not matter.
        assert_eq!(mailbox.receive(&["c", "a", "b"], None), Some((tags[(idx * 7) % 3], idx)));
    }
    assert_eq!(mailbox.try_receive(&["a", "b", "c"]), None);
    assert_eq!(mailbox.len(), 1, "the message under another tag stays");
}

#[test]
fn receive_takes_only_the_tags_it_asks_for() {
    let mailbox = Mailbox::new();
    mailbox.send("a", 1);
    mailbox.send("b", 2);
    mailbox.send("a", 3);
    assert_eq!(mailbox.try_receive(&["b"]), Some(("b", 2)));
    assert_eq!(mailbox.try_receive(&["b"]), None);
    assert_eq!(mailbox.try_receive(&["a", "a"]), Some(("a", 1)), "a duplicate tag is fine");
    assert_eq!(mailbox.try_receive(&[]), None);
    assert_eq!(mailbox.len(), 1);
}

#[test]
fn a_blocked_receive_is_woken_by_a_send_from_another_thread() {
    let mailbox = Arc::new(Mailbox::new());
    let result = spawn_receiver(&mailbox, &["a", "b"], None);
    assert!(result.recv_timeout(EARLY_RETURN_WINDOW).is_err(), "receive returned with nothing to receive");
    let sender = {
        let mailbox = Arc::clone(&mailbox);
        thread::spawn(move || mailbox.send("b", 42))
    };
    assert_eq!(result.recv_timeout(LOST_WAKEUP_TIMEOUT).unwrap(), Some(("b", 42)));
    sender.join().unwrap();
    assert!(mailbox.is_empty());
}

#[test]
fn a_send_under_another_tag_does_not_end_the_wait() {
    let mailbox = Arc::new(Mailbox::new());
    let result = spawn_receiver(&mailbox, &["wanted"], Some(LOST_WAKEUP_TIMEOUT));
    mailbox.send("other", 1);
    assert!(result.recv_timeout(EARLY_RETURN_WINDOW).is_err(), "receive returned a message it did not ask for");
    mailbox.send("wanted", 2);
    assert_eq!(result.recv_timeout(LOST_WAKEUP_TIMEOUT).unwrap(), Some(("wanted", 2)));
    assert_eq!(mailbox.try_receive(&["other"]), Some(("other", 1)));
}

#[test]
fn receivers_on_different_tags_each_get_their_own_message() {
    let mailbox = Arc::new(Mailbox::new());
    let first = spawn_receiver(&mailbox, &["first"], None);
    let second = spawn_receiver(&mailbox, &["second"], None);
    let either = spawn_receiver(&mailbox, &["first", "second"], None);
    // Two messages per tag, so `either` may win any race and the others
    // still get one each.
    mailbox.send("second", 2);
    mailbox.send("first", 1);
    mailbox.send("second", 3);
    mailbox.send("first", 4);
    let results = [&first, &second, &either].map(|result| result.recv_timeout(LOST_WAKEUP_TIMEOUT).unwrap().unwrap());
    assert_eq!(results[0].0, "first");
    assert_eq!(results[1].0, "second");
    let mut all: Vec<_> = results.into_iter().chain(mailbox.drain(&["first", "second"])).collect();
    all.sort();
    assert_eq!(all, [("first", 1), ("first", 4), ("second", 2), ("second", 3)], "each message exactly once");
}

#[test]
fn a_timeout_returns_none_no_earlier_than_the_timeout() {
    let mailbox = Mailbox::<&str, u32>::new();
    mailbox.send("other", 1);
    for timeout in [Duration::from_millis(1), Duration::from_millis(30)] {
        let started = Instant::now();
        assert_eq!(mailbox.receive(&["tag"], Some(timeout)), None);
        assert!(started.elapsed() >= timeout, "returned after {:?}, timeout {timeout:?}", started.elapsed());
    }
    let started = Instant::now();
    assert_eq!(mailbox.receive(&[], Some(Duration::from_millis(10))), None);
    assert!(started.elapsed() >= Duration::from_millis(10));
    assert_eq!(mailbox.len(), 1);
}

#[test]
fn a_zero_timeout_does_not_wait() {
    let mailbox = Mailbox::new();
    assert_eq!(mailbox.receive(&["tag"], Some(Duration::ZERO)), None);
    assert_eq!(mailbox.try_receive(&["tag"]), None);
    mailbox.send("tag", 5);
    assert_eq!(mailbox.receive(&["tag"], Some(Duration::ZERO)), Some(("tag", 5)));
}

#[test]
fn a_timeout_too_large_for_a_deadline_waits_until_a_send() {
    let mailbox = Arc::new(Mailbox::new());
    let result = spawn_receiver(&mailbox, &["tag"], Some(Duration::MAX));
    assert!(result.recv_timeout(EARLY_RETURN_WINDOW).is_err(), "a huge timeout must not overflow into no wait");
    mailbox.send("tag", 9);
    assert_eq!(result.recv_timeout(LOST_WAKEUP_TIMEOUT).unwrap(), Some(("tag", 9)));
}

#[test]
fn a_message_sent_before_the_timeout_is_received_before_it() {
    let mailbox = Arc::new(Mailbox::new());
    let result = spawn_receiver(&mailbox, &["tag"], Some(LOST_WAKEUP_TIMEOUT));
    mailbox.send("tag", 3);
    assert_eq!(result.recv_timeout(LOST_WAKEUP_TIMEOUT).unwrap(), Some(("tag", 3)));
}

#[test]
fn drain_takes_the_given_tags_in_send_order_and_leaves_the_rest() {
    let mailbox = Mailbox::new();
    for idx in 0..20 {
        mailbox.send(idx % 4, idx);
    }
    let drained = mailbox.drain(&[3, 1, 3, 7]);
    let expected: Vec<_> = (0..20).filter(|idx| idx % 4 == 1 || idx % 4 == 3).map(|idx| (idx % 4, idx)).collect();
    assert_eq!(drained, expected);
    assert_eq!(mailbox.len(), 10);
    assert_eq!(mailbox.drain(&[1, 3]), []);
    assert_eq!(mailbox.drain(&[]), []);
    assert_eq!(mailbox.try_receive(&[0, 2]), Some((0, 0)));
    assert_eq!(mailbox.drain(&[2]).len(), 5);
    assert_eq!(mailbox.drain(&[0]).len(), 4);
    assert!(mailbox.is_empty());
}

#[test]
fn receive_continues_the_send_order_after_a_drain() {
    let mailbox = Mailbox::new();
    mailbox.send("keep", 1);
    mailbox.send("drop", 2);
    mailbox.send("keep", 3);
    assert_eq!(mailbox.drain(&["drop"]), [("drop", 2)]);
    mailbox.send("drop", 4);
    let received: Vec<_> = std::iter::from_fn(|| mailbox.try_receive(&["drop", "keep"])).collect();
    assert_eq!(received, [("keep", 1), ("keep", 3), ("drop", 4)]);
}

/// Tags of the stress test: data under two tags, one stop tag per group of
/// consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Tag {
    Data(usize),
    Stop(usize),
}

#[test]
fn many_producers_and_consumers_receive_every_message_exactly_once() {
    const N_PRODUCERS: usize = 4;
    const N_CONSUMERS: usize = 4;
    const N_GROUPS: usize = 2;
    const N_PER_PRODUCER: usize = 10_000;

    let mailbox = Arc::new(Mailbox::new());
    let start = Arc::new(Barrier::new(N_PRODUCERS + N_CONSUMERS));
    // Consumer `consumer_idx` takes group `consumer_idx % N_GROUPS`, whose
    // data producer `producer_idx % N_GROUPS` sends, until its group's stop
    // message: the stops are sent after all data, so a consumer gets one
    // only once its group's data is all taken (receive is oldest first).
    let consumers: Vec<_> = (0..N_CONSUMERS)
        .map(|consumer_idx| {
            let (mailbox, start) = (Arc::clone(&mailbox), Arc::clone(&start));
            thread::spawn(move || {
                let group = consumer_idx % N_GROUPS;
                let tags = [Tag::Data(group), Tag::Stop(group)];
                start.wait();
                let mut received = Vec::new();
                loop {
                    match mailbox.receive(&tags, Some(LOST_WAKEUP_TIMEOUT)) {
                        Some((Tag::Data(_), message)) => received.push(message),
                        Some((Tag::Stop(_), _)) => return received,
                        None => panic!("consumer {consumer_idx} waited {LOST_WAKEUP_TIMEOUT:?}: a lost wakeup"),
                    }
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..N_PRODUCERS)
        .map(|producer_idx| {
            let (mailbox, start) = (Arc::clone(&mailbox), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for message_idx in 0..N_PER_PRODUCER {
                    mailbox.send(Tag::Data(producer_idx % N_GROUPS), (producer_idx, message_idx));
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    for consumer_idx in 0..N_CONSUMERS {
        mailbox.send(Tag::Stop(consumer_idx % N_GROUPS), (usize::MAX, usize::MAX));
    }
    let mut all = Vec::new();
    for consumer in consumers {
        let received = consumer.join().unwrap();
        // Each producer's messages reach one consumer in the order sent.
        for producer_idx in 0..N_PRODUCERS {
            let from_producer: Vec<_> = received.iter().filter(|(from, _)| *from == producer_idx).collect();
            assert!(from_producer.is_sorted(), "consumer saw producer {producer_idx} out of order");
        }
        all.extend(received);
    }
    all.sort_unstable();
    let expected: Vec<_> =
        (0..N_PRODUCERS).flat_map(|producer_idx| (0..N_PER_PRODUCER).map(move |idx| (producer_idx, idx))).collect();
    assert_eq!(all.len(), expected.len(), "lost or duplicated messages");
    assert!(all == expected, "some message was lost and another duplicated");
    assert!(mailbox.is_empty());
}
