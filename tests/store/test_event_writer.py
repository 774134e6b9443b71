"""EventWriter: non-blocking submit, batching, bounded buffer, backoff and resume.

A controllable ``write_batch`` stands in for the database where a test must make writes fail
or hang on cue; the last tests use the real store.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from aisp.errors import ValidationError
from aisp.store import EventSummary, EventWriter


def ev(i: int, stream: str = "s", base: float = 0.0) -> EventSummary:
    return EventSummary(stream, base + i, base + i + 1, frames=1, detections=i % 3, labels={"x": i % 3})


class Target:
    """A write_batch whose failures and stalls the test controls."""

    def __init__(self) -> None:
        self.batches: list[list[EventSummary]] = []
        self.fail = False
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise ConnectionError("database down")
        self.batches.append(list(batch))


def test_batches_in_order():
    t = Target()
    w = EventWriter(t, batch_size=10, flush_interval=0.01).start()
    for i in range(35):
        assert w.submit(ev(i))
    assert w.flush(5)
    w.close()
    written = [e.window_start for b in t.batches for e in b]
    assert written == [float(i) for i in range(35)]
    assert max(len(b) for b in t.batches) <= 10
    st = w.stats()
    assert (st.submitted, st.written, st.buffered, st.dropped, st.write_errors) == (35, 35, 0, 0, 0)


def test_submit_never_blocks_while_a_write_hangs():
    t = Target()
    t.gate = threading.Event()
    w = EventWriter(t, buffer_size=100, batch_size=5, flush_interval=0.01).start()
    w.submit(ev(0))
    assert t.entered.wait(5)  # the writer thread is now stuck inside write_batch
    accepted = [w.submit(ev(i)) for i in range(1, 200)]  # returns at once although the DB "hangs"
    assert accepted.count(True) == 99 and accepted.count(False) == 100
    st = w.stats()
    assert st.buffered == 100 and st.dropped == 100 and st.written == 0
    t.gate.set()
    assert w.flush(5)
    assert w.stats().written == 100
    w.close()


def test_outage_buffers_drops_beyond_bound_and_resumes(caplog):
    t = Target()
    t.fail = True
    w = EventWriter(t, buffer_size=50, batch_size=20, flush_interval=0.01, retry_initial=0.01,
                    retry_max=0.02, warn_interval=3600).start()
    with caplog.at_level(logging.WARNING, logger="aisp.store"):
        for i in range(80):
            w.submit(ev(i))
        assert w.wait_for(lambda s: s.write_errors >= 2, 5)
    st = w.stats()
    assert st.buffered == 50 and st.dropped == 30 and st.written == 0 and not st.healthy
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1  # rate limited: one warning for 30 drops
    assert any("failing" in r.getMessage() for r in caplog.records)

    t.fail = False  # the database comes back
    assert w.wait_for(lambda s: s.written == 50 and s.buffered == 0, 5)
    for i in range(100, 110):  # events submitted after the recovery are written too
        assert w.submit(ev(i))
    assert w.flush(5)
    w.close()
    written = [e.window_start for b in t.batches for e in b]
    assert written == [float(i) for i in range(50)] + [float(i) for i in range(100, 110)]
    st = w.stats()
    assert (st.submitted, st.written, st.dropped, st.healthy) == (90, 60, 30, True)


def test_backoff_is_not_cut_short_by_submits():
    t = Target()
    t.fail = True
    w = EventWriter(t, buffer_size=10_000, batch_size=2, flush_interval=0.01, retry_initial=60,
                    retry_max=60).start()
    w.submit(ev(0))
    w.submit(ev(1))
    assert w.wait_for(lambda s: s.write_errors == 1, 5)
    for i in range(2, 500):  # each one would notify the writer; it must keep waiting out its backoff
        w.submit(ev(i))
    assert not w.wait_for(lambda s: s.write_errors > 1, 0.2)
    assert t.calls == 1
    assert w.close(timeout=0.1) is False
    assert w.stats().dropped == 500


def test_close_is_idempotent_and_counts_leftovers():
    t = Target()
    w = EventWriter(t)
    w.submit(ev(1))  # never started: nothing can write it
    assert w.close(timeout=0.1) is False
    assert w.stats().dropped == 1
    assert w.close(timeout=0.1) is True


def test_submit_accepts_mappings_and_rejects_garbage():
    t = Target()
    w = EventWriter(t, flush_interval=0.01).start()
    assert w.submit({"stream_id": "a", "window_start": 1, "frames": 2, "labels": {"p": 1}})
    with pytest.raises(ValidationError, match="window_start"):
        w.submit({"stream_id": "a"})
    with pytest.raises(ValidationError):
        w.submit(42)  # type: ignore[arg-type]
    assert w.flush(5)
    w.close()
    assert t.batches[0][0] == EventSummary("a", 1.0, 1.0, 2, 0, {"p": 1}, None)


def test_real_store_writes_and_queries(store):
    t0 = float(int(time.time()))  # recent: the store's retention worker deletes old rows
    for i in range(25):
        store.events.submit(ev(i, stream="cam" + str(i % 2), base=t0))
    assert store.events.flush(10)
    assert store.event_log.count() == 25
    cam0 = store.event_log.query(stream_id="cam0")
    assert [e.window_start - t0 for e in cam0] == [float(i) for i in range(0, 25, 2)]
    assert cam0[1].labels == {"x": 2}
    got = store.event_log.query(since=t0 + 20, until=t0 + 23)
    assert [e.window_start - t0 for e in got] == [20.0, 21.0, 22.0]
