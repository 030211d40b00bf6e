"""send / receive / drain: tagged messages between any threads, behaviors
included, carrying objects as they are."""

from __future__ import annotations

import os
import signal
import threading

import boc
import pytest
from boc import TIMEOUT, Cown, PinnedCown, drain, receive, send, wait, when


@pytest.fixture(autouse=True)
def empty_mailbox():
    yield
    drain(["a", "b", "c", "result", "handle", "from-worker", "ping", "pong"])


def test_messages_on_one_tag_arrive_in_order():
    for i in range(5):
        send("a", i)
    assert [receive("a") for _ in range(5)] == [("a", i) for i in range(5)]


def test_receive_on_several_tags_takes_the_oldest_message():
    send("b", 1)
    send("a", 2)
    send("b", 3)
    assert receive(["a", "b"]) == ("b", 1)
    assert receive(("a", "b")) == ("a", 2)
    assert receive(["b", "a"]) == ("b", 3)


def test_contents_are_the_objects_sent_not_copies():
    payload = {"big": list(range(10))}
    send("a", payload)
    tag, received = receive("a")
    assert received is payload


def test_a_timeout_returns_the_timeout_marker():
    assert receive("a", timeout=0.01) == (TIMEOUT, None)
    assert repr(TIMEOUT) == "boc.TIMEOUT"


def test_a_zero_timeout_does_not_wait():
    assert receive("a", timeout=0) == (TIMEOUT, None)
    send("a", 1)
    assert receive("a", timeout=0) == ("a", 1)


def test_after_produces_the_value_on_timeout():
    assert receive("a", timeout=0.01, after=lambda: "nothing came") == "nothing came"


def test_drain_empties_only_the_tags_given():
    send("a", 1)
    send("b", 2)
    send("a", 3)
    assert drain("a") == [("a", 1), ("a", 3)]
    assert receive("a", timeout=0) == (TIMEOUT, None)
    assert drain(["b", "c"]) == [("b", 2)]


def test_worker_behaviors_send_to_the_main_thread():
    for i in range(20):

        @when(Cown(i))
        def _(cown):
            send("result", cown.value * 2)

    received = sorted(receive("result", timeout=30)[1] for _ in range(20))
    wait()
    assert received == [i * 2 for i in range(20)]


def test_receive_blocks_until_a_message_arrives_from_another_thread():
    started = threading.Event()

    def sender():
        started.wait(30)
        send("a", "hello")

    thread = threading.Thread(target=sender)
    thread.start()
    started.set()
    assert receive("a", timeout=30) == ("a", "hello")
    thread.join()


def test_receive_releases_the_gil_while_blocked():
    # The sender must run Python while the main thread is blocked in
    # receive; under a GIL that only works if receive released it.
    def sender():
        total = sum(range(200_000))
        send("a", total)

    thread = threading.Thread(target=sender)
    thread.start()
    assert receive("a", timeout=30) == ("a", sum(range(200_000)))
    thread.join()


def test_receive_inside_a_main_side_behavior_gets_a_worker_message():
    screen = PinnedCown([])

    @when(Cown(21))
    def _(cown):
        send("from-worker", cown.value * 2)

    @when(screen)
    def got(screen):
        tag, value = receive("from-worker", timeout=30)
        screen.value.append(value)
        return threading.current_thread() is threading.main_thread()

    wait()
    assert got.value is True
    assert screen.value == [42]


def test_a_pinned_cown_handle_travels_in_a_message():
    screen = PinnedCown([])
    send("handle", screen)

    @when(Cown(0))
    def relay(cown):
        tag, handle = receive("handle", timeout=30)

        @when(handle)
        def _(handle):
            handle.value.append(threading.current_thread() is threading.main_thread())

    wait()
    assert screen.value == [True]


def test_behaviors_ping_pong():
    def ping(n):
        @when(Cown(n))
        def _(cown):
            send("ping", cown.value)

    for i in range(10):
        ping(i)
    seen = sorted(receive("ping", timeout=30)[1] for _ in range(10))
    wait()
    assert seen == list(range(10))


def test_ctrl_c_interrupts_a_blocked_receive():
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            receive("never", timeout=30)
    finally:
        timer.cancel()


def test_receive_from_many_threads_gets_each_message_once():
    n_messages = 2000
    got = []
    lock = threading.Lock()

    def consumer():
        while True:
            tag, value = receive("c", timeout=30)
            if value is None:
                return
            with lock:
                got.append(value)

    consumers = [threading.Thread(target=consumer) for _ in range(3)]
    for thread in consumers:
        thread.start()
    for i in range(n_messages):
        send("c", i)
    for _ in consumers:
        send("c", None)
    for thread in consumers:
        thread.join()
    assert sorted(got) == list(range(n_messages))
    boc.wait()
