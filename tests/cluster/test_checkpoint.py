"""The stream actor's checkpoint (events + window summaries + position in one commit), without Ray."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aisp.cluster.checkpoint import CheckpointSink, LedgerBus, StreamLedger
from aisp.events import Event


class Commits:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[int | None, int, list[Event], list[dict[str, Any]]]] = []
        self.fail = fail

    def __call__(self, position, frames, events, summaries) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database away")
        self.calls.append((position, frames, list(events), list(summaries)))


def ev(frame: int | None, kind: str = "appeared") -> Event:
    now = time.time()  # the store's retention deletes old events: these are new
    if frame is None:
        return Event("stream", "s1", now, state="running")
    return Event(kind, "s1", now, frame_index=frame, track_id=1, label="x")


@pytest.fixture
def ledger_and_commits():
    commits = Commits()
    ledger = StreamLedger(commits, interval=3600.0)  # the test drives the commits
    yield ledger, commits
    ledger.close(timeout=1.0)


def test_only_sealed_frames_are_committed_with_their_position(ledger_and_commits):
    ledger, commits = ledger_and_commits
    ledger.add(ev(None))
    ledger.add(ev(0))
    ledger.frame_done(0)  # not sealed: only the frame-less stream event may go
    assert ledger.flush()
    assert [(c[0], [e.type for e in c[2]]) for c in commits.calls] == [(None, ["stream"])]
    summaries: list[dict[str, Any]] = []
    ledger.add(ev(1))
    ledger.add(ev(2))  # recorded before frame 1 was sealed: it belongs to frame 2
    ledger.frame_done(1, seal=lambda: summaries.append({"frames": 2}) or ledger.submit({"frames": 2}))
    assert ledger.flush()
    position, frames, events, sums = commits.calls[-1]
    assert position == 2 and frames == 2
    assert sorted(e.frame_index for e in events) == [0, 1] and sums == [{"frames": 2}]
    assert ledger.position == 2
    ledger.frame_done(2)
    ledger.close(timeout=1.0)  # the stream's end seals the rest
    position, frames, events, _ = commits.calls[-1]
    assert position == 3 and frames == 3 and [e.frame_index for e in events] == [2]


def test_a_failed_commit_is_kept_and_retried_whole():
    commits = Commits(fail=1)
    ledger = StreamLedger(commits, position=10, frames=10, interval=3600.0)
    try:
        ledger.add(ev(10))
        ledger.frame_done(10, seal=lambda: None)
        assert not ledger.flush() and ledger.failures == 1 and ledger.position == 10
        ledger.add(ev(11))
        ledger.frame_done(11, seal=lambda: None)
        assert ledger.flush()
        assert len(commits.calls) == 1
        position, frames, events, _ = commits.calls[0]
        assert position == 12 and frames == 12 and [e.frame_index for e in events] == [10, 11]
    finally:
        ledger.close(timeout=1.0)


def test_the_bus_records_synchronously_and_the_sink_marks_frames(ledger_and_commits):
    from aisp.pipeline.frame_types import Frame, FrameResult

    ledger, commits = ledger_and_commits
    bus = LedgerBus()
    bus.ledger = ledger
    bus.publish(ev(0))
    flushed: list[int] = []

    class Windows:
        def flush(self) -> None:
            flushed.append(1)

    sink = CheckpointSink(ledger, Windows())
    import numpy as np

    sink.write(FrameResult(Frame("s1", 0, None, 0.0, np.zeros((2, 2, 3), np.uint8))))
    ledger.seal()
    assert ledger.flush()
    assert commits.calls[-1][0] == 1 and [e.frame_index for e in commits.calls[-1][2]] == [0]
    sink.close()
    assert sink.closed_at is not None
    bus.close()


def test_the_store_commits_atomically_and_never_twice(tmp_path):
    from aisp.settings import load_settings
    from aisp.store import Store

    settings = load_settings(environ={}, data_dir=tmp_path)
    with Store(settings=settings).open(background=False) as store:
        repo = store.stream_positions
        events = [ev(0), ev(1, "gone")]
        start = float(int(time.time()))
        summary = {"stream_id": "s1", "window_start": start, "window_end": start + 1.0, "frames": 2,
                   "detections": 2, "labels": {"x": 2}}
        repo.commit("s1", 2, 2, events, [summary])
        repo.commit("s1", 2, 2, events)  # a retry after a lost acknowledgement: no event twice
        assert store.event_records.count(stream_id="s1") == 2
        assert sum(w.frames for w in store.event_log.query(stream_id="s1")) == 2
        repo.commit("s1", 1, 1, [])  # a late, older batch never moves the position back
        saved = repo.get("s1")
        assert saved is not None and (saved.position, saved.frames) == (2, 2)
        assert repo.clear("s1") and repo.get("s1") is None
