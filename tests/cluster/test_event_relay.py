"""The event relay: events that stream actors stored reach the API's event bus, once each.

Unit level, against a real store (SQLite and PostgreSQL): rows inserted by another writer, out of
time order and in several transactions (on PostgreSQL also committed out of ``seq`` order), reach
a bus subscriber exactly once and never the ``store`` subscriber; events stored before the relay
started are not sent; events this process published itself are not sent again; a store outage
is survived. Then one integration test on the 3-node cluster: a file stream on a stream actor,
and a ``WS /ws/events`` client and a bus subscriber of the API that receive its stored events.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.test_streams import cluster_api, wait_for

log = logging.getLogger("tests.cluster")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str, settings: Any) -> Iterator[Any]:
    from aisp.store import Store

    s = Store(db_url, settings=settings, event_flush_interval=0.05).open()
    s.retention.stop()  # it must not delete the test's rows
    yield s
    s.close()


@pytest.fixture
def writer(db_url: str, settings: Any) -> Iterator[Any]:
    """Another writer on the same database (as a stream actor on another node is)."""
    from aisp.store import Store

    s = Store(db_url, settings=settings).open(migrate=False, background=False)
    yield s
    s.close()


class Recorder:
    """A bus subscriber that keeps what it got."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def ids(self) -> list[str]:
        with self._lock:
            return [e.id for e in self.events]


def ev(stream: str, t: float, **kw: Any) -> Any:
    from aisp.events import Event, new_event_id

    return Event("appeared", stream, t, label="face", track_id=1, id=new_event_id(t), **kw)


@pytest.fixture
def bus() -> Iterator[Any]:
    from aisp.events import EventBus

    b = EventBus()
    yield b
    b.close()


def drain(bus: Any, *names: str) -> None:
    """Let the named subscribers deliver what is queued (close delivers, then stops the thread)."""
    for name in names:
        bus.unsubscribe(name)


def test_rows_of_other_writers_reach_the_bus_once_and_never_the_store_subscriber(store, writer, bus):
    from aisp.cluster.event_relay import EventRelay

    now = time.time()
    before = [ev("cam", now - 10), ev("cam", now - 9)]
    writer.event_records.insert_many(before)  # stored before the API started: not sent again
    to_store, consumer = Recorder(), Recorder()
    bus.subscribe("store", to_store)
    bus.subscribe("ws", consumer)
    relay = EventRelay(store.event_records, bus, batch_size=2).attach()
    assert relay.poll() == 0

    # three transactions, the later ones holding the events that happened first (their ids and
    # times sort before those already relayed): a cursor on id or time would miss them
    batches = [[ev("a", now + 5), ev("b", now + 6), ev("a", now + 7)],
               [ev("b", now + 1)],
               [ev("a", now + 2), ev("c", now + 3)]]
    sent: list[str] = []
    for batch in batches:
        writer.event_records.insert_many(batch)
        sent += [e.id for e in batch]
        relay.poll()  # a whole batch (2) leaves the rest for the next pass
    while relay.poll():
        pass
    writer.event_records.insert_many(batches[0][:1])  # a retried commit: the id is skipped
    assert relay.poll() == 0
    drain(bus, "ws", "store")
    assert consumer.ids() == sent  # each once, in commit order
    assert to_store.ids() == []
    assert consumer.events[3] == batches[1][0]  # the whole event, as stored
    stats = relay.stats()
    assert stats["relayed"] == len(sent) and stats["errors"] == 0


@pytest.mark.postgres
def test_a_transaction_that_commits_after_a_later_numbered_one_is_not_missed(pg_url, settings, bus):
    """PostgreSQL numbers rows at insert: the row of a slower transaction appears below the cursor."""
    from sqlalchemy.orm import Session

    from aisp.cluster.event_relay import EventRelay
    from aisp.store import Store
    from aisp.store.event_records import insert_events

    with Store(pg_url, settings=settings).open(background=False) as st:
        consumer = Recorder()
        bus.subscribe("ws", consumer)
        relay = EventRelay(st.event_records, bus).attach()
        now = time.time()
        slow, fast = ev("slow", now), ev("fast", now + 1)
        with Session(st.db.engine) as slow_tx:
            insert_events(slow_tx, "postgresql", [slow])  # takes its seq, does not commit yet
            st.event_records.insert_many([fast])  # the next seq, committed
            assert relay.poll() == 1
            assert relay.stats()["gaps"] == 1
            slow_tx.commit()
        assert relay.poll() == 1
        assert relay.stats()["gaps"] == 0
        drain(bus, "ws")
        assert consumer.ids() == [fast.id, slow.id]


def test_a_gap_that_never_fills_is_dropped_after_its_timeout(store, writer, bus):
    from aisp.cluster.event_relay import EventRelay

    clock = [100.0]
    relay = EventRelay(store.event_records, bus, gap_timeout=30.0, clock=lambda: clock[0]).attach()
    now = time.time()
    a, b, c = ev("s", now), ev("s", now + 1), ev("s", now + 2)
    for e in (a, b, c):
        writer.event_records.insert_many([e])
    from sqlalchemy import delete

    from aisp.store.tables import EventRow

    with writer.db.session() as s:  # b's number will never be read
        s.execute(delete(EventRow).where(EventRow.id == b.id))
    assert relay.poll() == 2
    assert relay.stats()["gaps"] == 1
    clock[0] += 29.0
    assert relay.poll() == 0 and relay.stats()["gaps"] == 1
    clock[0] += 2.0
    relay.poll()
    assert relay.stats()["gaps"] == 0 and relay.stats()["gaps_dropped"] == 1


def test_events_this_process_published_are_not_relayed_again(store, bus):
    """The API's own streams (the demo) publish on the bus; the store subscriber writes them."""
    from aisp.cluster.event_relay import EventRelay

    consumer = Recorder()
    bus.subscribe("store", store.event_writer.submit)
    bus.subscribe("ws", consumer)
    relay = EventRelay(store.event_records, bus).attach()
    local = ev("demo", time.time())
    bus.publish(local)
    wait_for(lambda: store.event_records.get(local.id), 10, "the store subscriber to write the event")
    assert relay.poll() == 0
    drain(bus, "ws")
    assert consumer.ids() == [local.id]  # from the bus itself, once
    assert relay.stats()["local_skipped"] == 1


def test_events_wait_for_the_consumers_and_are_not_lost(store, writer, bus):
    """The API opens the cluster before MQTT and webhooks subscribe: events committed meanwhile
    are published once ``ready()`` holds, not before, and none is lost."""
    from aisp.cluster.event_relay import EventRelay

    ready = threading.Event()
    relay = EventRelay(store.event_records, bus, interval=0.02, ready=ready.is_set).start()
    try:
        early = ev("s", time.time())
        writer.event_records.insert_many([early])
        assert relay.stats()["polls"] == 0
        consumer = Recorder()
        bus.subscribe("mqtt", consumer)  # subscribes late
        ready.set()
        wait_for(lambda: consumer.ids() == [early.id], 10, "the early event")
    finally:
        relay.close()
    assert not relay.running


def test_a_table_emptied_by_retention_is_followed_from_its_new_numbers(store, writer, bus):
    """SQLite numbers a row past the largest one left, so after retention emptied the table the
    numbers start again low: the relay follows them (PostgreSQL never goes back)."""
    from aisp.cluster.event_relay import EventRelay

    consumer = Recorder()
    bus.subscribe("ws", consumer)
    relay = EventRelay(store.event_records, bus).attach()
    now = time.time()
    old = [ev("s", now - 100), ev("s", now - 99)]
    writer.event_records.insert_many(old)
    assert relay.poll() == 2
    assert writer.event_records.delete_older_than(now) == 2
    assert relay.poll() == 0
    new = ev("s", now + 1)
    writer.event_records.insert_many([new])
    assert relay.poll() == 1
    drain(bus, "ws")
    assert consumer.ids() == [*(e.id for e in old), new.id]


class FlakyRecords:
    """The store's event records, away while ``down`` is set."""

    def __init__(self, records: Any) -> None:
        self._records = records
        self.down = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._records, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down.is_set():
                raise ConnectionError("database is away")
            return attr(*args, **kwargs)
        return call


def test_the_relay_thread_survives_a_store_outage_and_catches_up(store, writer, bus, caplog):
    from aisp.cluster.event_relay import EventRelay

    records = FlakyRecords(store.event_records)
    records.down.set()  # away from the start: the cursor is taken when it answers
    consumer = Recorder()
    bus.subscribe("ws", consumer)
    relay = EventRelay(records, bus, interval=0.02).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: relay.stats()["errors"] >= 2, 10, "failed polls")
        assert relay.stats()["healthy"] is False and relay.stats()["cursor"] is None
        assert relay.running  # no crash
        records.down.clear()
        wait_for(lambda: relay.stats()["cursor"] is not None and relay.stats()["healthy"], 15,
                 "the relay to reach the store")
        records.down.set()
        lost = [ev("s", time.time() + i) for i in range(3)]
        writer.event_records.insert_many(lost)  # committed while the relay cannot read
        errors = relay.stats()["errors"]
        wait_for(lambda: relay.stats()["errors"] > errors, 10, "a failed poll")
        records.down.clear()
        wait_for(lambda: len(consumer.ids()) == 3, 15, "the events committed during the outage")
    finally:
        relay.close()
    drain(bus, "ws")
    assert consumer.ids() == [e.id for e in lost]
    assert any("reading the store failed" in r.getMessage() for r in caplog.records)


def test_the_cluster_streams_events_reach_a_websocket_client(ray_cluster, pg_url, tmp_path):
    from tests.api.test_streams_tasks import make_video

    video = make_video(tmp_path / "clip.mp4", frames=60)
    with cluster_api(ray_cluster, pg_url, tmp_path / "data", fake_model_cost_ms=5.0) as client:
        ctx = client.app.state.ctx
        got: list[tuple[Any, float]] = []
        ctx.runtime.events.subscribe("test-relay", lambda e: got.append((e, time.time())))
        store_sub = next(s for s in ctx.runtime.events.stats() if s.name == "store")
        with client.websocket_connect("/ws/events?stream=rel-1", headers=dict(client.headers)) as ws:
            wait_for(lambda: ctx.event_fanout.clients >= 1, 10, "the WebSocket client to listen")
            r = client.post("/api/streams", json={"id": "rel-1", "source": str(video), "models": ["fake"],
                                                    "track": True})
            assert r.status_code == 201, r.text
            stopped = wait_for(lambda: [e for e in client.store.event_records.query(stream_id="rel-1").events
                                        if e.state == "stopped"], 60, "the stream's stopped event")
            stored = list(reversed(client.store.event_records.query(stream_id="rel-1", limit=1000).events))
            assert stopped and {"stream", "appeared"} <= {e.type for e in stored}, stored
            wait_for(lambda: {e.id for e, _ in got} >= {e.id for e in stored}, 10, "the relayed events")
            received = [json.loads(ws.receive_text()) for _ in stored]
        ctx.runtime.events.unsubscribe("test-relay")
        ids = [e.id for e, _ in got if e.stream_id == "rel-1"]
        assert sorted(ids) == sorted(e.id for e in stored)  # each once
        assert all(m["type"] == "event" for m in received)
        assert sorted(m["event"]["id"] for m in received) == sorted(ids)
        store_after = next(s for s in ctx.runtime.events.stats() if s.name == "store")
        assert store_after.delivered + store_after.queued == store_sub.delivered + store_sub.queued
        body = client.get("/api/cluster").json()
        assert body["events"]["relayed"] >= len(stored) and body["events"]["healthy"] is True
        metrics = client.get("/metrics").text
        assert "aisp_cluster_events_relayed_total" in metrics
        by_id = {e.id: e for e in stored}
        lat = sorted(at - by_id[e.id].time for e, at in got if e.id in by_id)
        log.info("relay: %d events of a cluster stream, capture to the API's bus median %.3f s, max %.3f s",
                 len(lat), lat[len(lat) // 2], lat[-1])
