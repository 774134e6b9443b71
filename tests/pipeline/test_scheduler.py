from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from aisp.pipeline.reorder import ReorderBuffer
from aisp.pipeline.scheduler import Scheduler


def item(i: int):
    return SimpleNamespace(index=i, seq=-1)


def add(s: Scheduler, sid: str, **kw):
    args = {"priority": 0, "capacity": 4, "live": False, "drop_policy": "drop_oldest", "max_inflight": 100,
            "max_batch": 1, "on_drained": None}
    args.update(kw)
    return s.add(sid, **args)


def test_fifo_and_sequence_numbers() -> None:
    s = Scheduler()
    q = add(s, "a")
    for i in range(3):
        assert s.put(q, item(i)) == 0
    got = [s.get(timeout=0)[1][0] for _ in range(3)]
    assert [g.index for g in got] == [0, 1, 2]
    assert [g.seq for g in got] == [0, 1, 2]


def test_live_drop_oldest_and_newest() -> None:
    s = Scheduler()
    old = add(s, "old", live=True, capacity=2)
    new = add(s, "new", live=True, capacity=2, drop_policy="drop_newest")
    drops_old = sum(s.put(old, item(i)) for i in range(5))
    drops_new = sum(s.put(new, item(i)) for i in range(5))
    assert drops_old == 3 and drops_new == 3
    assert [x.index for x in old.items] == [3, 4]
    assert [x.index for x in new.items] == [0, 1]


def test_bad_drop_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="drop_policy expected"):
        add(Scheduler(), "a", drop_policy="random")


def test_file_put_blocks_until_a_worker_takes() -> None:
    s = Scheduler()
    q = add(s, "f", capacity=1)
    s.put(q, item(0))
    done = threading.Event()

    def producer():
        s.put(q, item(1))  # blocks: the queue is full
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert not done.wait(0.05)
    s.get(timeout=1)
    assert done.wait(5)
    t.join(5)
    assert [x.index for x in q.items] == [1]


def test_close_wakes_a_blocked_producer_and_fires_drained() -> None:
    totals = []
    s = Scheduler()
    q = add(s, "f", capacity=1, on_drained=totals.append)
    s.put(q, item(0))
    t = threading.Thread(target=s.put, args=(q, item(1)))
    t.start()
    s.clear(q)
    s.close(q)
    t.join(5)
    assert not t.is_alive()
    assert totals == [0]


def test_higher_priority_first() -> None:
    s = Scheduler()
    low = add(s, "low", priority=0)
    high = add(s, "high", priority=5)
    for i in range(3):
        s.put(low, item(i))
        s.put(high, item(i))
    order = [s.get(timeout=0)[0].stream_id for _ in range(6)]
    assert order == ["high"] * 3 + ["low"] * 3


def test_equal_priorities_share_fairly() -> None:
    s = Scheduler()
    queues = [add(s, name, capacity=100) for name in "abc"]
    for q in queues:
        for i in range(30):
            s.put(q, item(i))
    order = [s.get(timeout=0)[0].stream_id for _ in range(30)]
    assert {order.count(n) for n in "abc"} == {10}
    # round robin: no stream is served twice before the others got a turn
    assert all(len(set(order[i : i + 3])) == 3 for i in range(0, 30, 3))


def test_idle_stream_rejoins_without_a_burst() -> None:
    s = Scheduler()
    a, b = add(s, "a", capacity=100), add(s, "b", capacity=100)
    for i in range(20):
        s.put(a, item(i))
    for _ in range(10):
        s.get(timeout=0)
    for i in range(5):
        s.put(b, item(i))
    order = [s.get(timeout=0)[0].stream_id for _ in range(6)]
    assert order.count("a") == 3 and order.count("b") == 3


def test_inflight_limit_and_batches() -> None:
    s = Scheduler()
    q = add(s, "a", capacity=10, max_inflight=3, max_batch=2)
    for i in range(6):
        s.put(q, item(i))
    _, b1 = s.get(timeout=0)
    _, b2 = s.get(timeout=0)
    assert [len(b1), len(b2)] == [2, 1]
    assert s.get(timeout=0) is None  # in-flight limit reached
    s.done(q, 2)
    _, b3 = s.get(timeout=0)
    assert [x.seq for x in b3] == [3, 4]


def test_memory_pressure_shrinks_live_queues() -> None:
    s = Scheduler()
    live = add(s, "live", live=True, capacity=4)
    file_q = add(s, "file", capacity=4)
    for i in range(4):
        s.put(live, item(i))
        s.put(file_q, item(i))
    assert s.set_pressure(True) == {"live": 3}
    assert len(live.items) == 1 and len(file_q.items) == 4
    assert s.put(live, item(9)) == 1
    s.set_pressure(False)
    assert live.capacity == 4


def test_shutdown_releases_waiting_workers() -> None:
    s = Scheduler()
    results = []
    t = threading.Thread(target=lambda: results.append(s.get()))
    t.start()
    s.shutdown()
    t.join(5)
    assert results == [None]


def test_reorder_buffer_releases_in_order() -> None:
    r = ReorderBuffer()
    r.push(2, "c")
    r.push(0, "a")
    assert r.pop(timeout=0) == "a"
    with pytest.raises(TimeoutError, match="sequence number 1"):
        r.pop(timeout=0)
    r.push(1, "b")
    r.finish(3)
    assert [r.pop(timeout=0), r.pop(timeout=0), r.pop(timeout=0)] == ["b", "c", None]
    with pytest.raises(ValueError, match="already pushed"):
        r.push(1, "again")


def test_reorder_buffer_abort_ends_waiting() -> None:
    r = ReorderBuffer()
    out = []
    t = threading.Thread(target=lambda: out.append(r.pop()))
    t.start()
    r.abort()
    t.join(5)
    assert out == [None]
