"""The noticeboard: atomic writes and updates, per-behavior snapshots."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import boc
import pytest
from boc import REMOVED, Cown, PinnedCown, notice_delete, notice_read, notice_update, notice_write, noticeboard, when
from boc import wait


@pytest.fixture(autouse=True)
def clean_board():
    yield
    for key in list(noticeboard()):
        notice_delete(key)


def test_write_read_delete():
    notice_write("config", {"depth": 3})
    assert notice_read("config") == {"depth": 3}
    notice_delete("config")
    assert notice_read("config") is None
    assert notice_read("config", default="unset") == "unset"
    notice_delete("config")  # absent: nothing happens


def test_values_are_the_objects_written():
    value = object()
    notice_write("x", value)
    assert notice_read("x") is value


def test_update_is_an_atomic_read_modify_write():
    notice_write("count", 0)

    def bump(n):
        @when(Cown(n))
        def _(cown):
            for _ in range(50):
                notice_update("count", lambda count: count + 1)

    for n in range(16):
        bump(n)

    def from_thread():
        for _ in range(200):
            notice_update("count", lambda count: count + 1)

    threads = [threading.Thread(target=from_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait()
    assert notice_read("count") == 16 * 50 + 2 * 200


def test_update_uses_the_default_for_an_absent_key():
    notice_update("tally", lambda tally: tally + [1], default=[])
    assert notice_read("tally") == [1]


def test_update_returning_removed_deletes_the_key():
    notice_write("gone", 1)
    notice_update("gone", lambda value: REMOVED)
    assert "gone" not in noticeboard()
    assert repr(REMOVED) == "boc.REMOVED"


def test_an_exception_in_update_leaves_the_board_unchanged():
    notice_write("kept", 1)

    def fail(value):
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        notice_update("kept", fail)
    assert notice_read("kept") == 1


def test_noticeboard_is_a_read_only_mapping_snapshot():
    notice_write("a", 1)
    notice_write("b", 2)
    board = noticeboard()
    assert isinstance(board, Mapping)
    assert dict(board) == {"a": 1, "b": 2}
    assert len(board) == 2 and "a" in board and "z" not in board
    assert board.get("z", 0) == 0
    with pytest.raises(KeyError):
        board["z"]
    with pytest.raises(TypeError):
        board["a"] = 5  # type: ignore[index]
    notice_write("a", 10)
    assert board["a"] == 1, "a snapshot never changes"
    assert noticeboard()["a"] == 10


def test_a_behavior_sees_one_snapshot_even_after_its_own_writes():
    notice_write("x", 1)

    @when(Cown(0))
    def seen(cown):
        first = notice_read("x")
        notice_write("x", 2)
        notice_write("y", 3)
        return first, notice_read("x"), notice_read("y"), dict(noticeboard())

    wait()
    assert seen.value == (1, 1, None, {"x": 1})
    assert notice_read("x") == 2


def test_the_next_behavior_takes_a_fresh_snapshot_on_a_worker():
    boc.start(workers=1)
    notice_write("n", 0)
    log = Cown([])
    for _ in range(20):

        @when(log)
        def _(log):
            n = notice_read("n")
            log.value.append(n)
            notice_write("n", n + 1)

    wait()
    assert log.value == list(range(20))


def test_consecutive_main_side_behaviors_in_one_pump_take_fresh_snapshots():
    notice_write("m", 0)
    screen = PinnedCown([])
    for _ in range(10):

        @when(screen)
        def _(screen):
            m = notice_read("m")
            screen.value.append(m)
            notice_write("m", m + 1)

    report = boc.pump()
    assert report.executed == 10
    assert screen.value == list(range(10))


def test_a_write_before_scheduling_is_seen_by_the_behavior():
    for i in range(50):
        notice_write("latest", i)

        @when(Cown(i))
        def _(cown):
            assert notice_read("latest") >= cown.value

    wait()


def test_a_pinned_cown_handle_on_the_board():
    screen = PinnedCown([])
    notice_write("screen", screen)

    @when(Cown(0))
    def _(cown):
        handle = notice_read("screen")

        @when(handle)
        def _(handle):
            handle.value.append(threading.current_thread() is threading.main_thread())

    wait()
    assert screen.value == [True]


def test_outside_behaviors_every_read_is_fresh():
    notice_write("k", 1)
    assert notice_read("k") == 1
    notice_write("k", 2)
    assert notice_read("k") == 2
