"""The event model and the in-process bus: round trips, validation, ordering, drops, failures."""

from __future__ import annotations

import threading

import pytest

from aisp.errors import ValidationError
from aisp.events import Event, EventBus, new_event_id


def test_event_round_trips_through_dict():
    ev = Event("cross", "cam1", 1700000000.5, frame_index=7, label="person", track_id=3,
               confidence=0.9, box=(1, 2, 3, 4), zone="door", direction="in")
    data = ev.to_dict()
    assert data["box"] == [1.0, 2.0, 3.0, 4.0]
    assert "seconds" not in data  # None fields are left out
    assert Event.from_dict(data) == ev


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "exploded"}, "Event.type"),
        ({"stream_id": ""}, "Event.stream_id"),
        ({"box": (1, 2)}, "Event.box"),
    ],
)
def test_event_validation_names_the_field(kwargs, field):
    base = {"type": "appeared", "stream_id": "s", "time": 0.0} | kwargs
    with pytest.raises(ValidationError, match=field):
        Event(**base)


def test_ids_sort_by_time_and_are_unique():
    a, b = new_event_id(1000.0), new_event_id(1001.0)
    assert len(a) == 26 and a < b
    assert len({new_event_id(5.0) for _ in range(1000)}) == 1000


def test_bus_delivers_in_order_to_every_subscriber():
    bus = EventBus()
    got_a, got_b = [], []
    bus.subscribe("a", got_a.append)
    bus.subscribe("b", got_b.append)
    events = [Event("appeared", "s", float(i), frame_index=i) for i in range(50)]
    for ev in events:
        bus.publish(ev)
    bus.close()  # drains the queues first
    assert got_a == events and got_b == events
    assert bus.published == 50


def test_publish_can_skip_named_subscribers():
    """The cluster's relay publishes stored events: not to the store's writer again."""
    bus = EventBus()
    store, ws = [], []
    bus.subscribe("store", store.append)
    bus.subscribe("ws", ws.append)
    relayed, local = Event("appeared", "s", 1.0), Event("appeared", "s", 2.0)
    bus.publish(relayed, skip=("store",))
    bus.publish(local)
    bus.close()
    assert ws == [relayed, local] and store == [local]


def test_full_queue_drops_for_that_subscriber_only_and_counts():
    bus = EventBus()
    gate = threading.Event()
    entered = threading.Event()
    slow: list[Event] = []

    def blocked(ev):
        entered.set()
        gate.wait(10)
        slow.append(ev)

    fast: list[Event] = []
    bus.subscribe("slow", blocked, maxsize=2)
    bus.subscribe("fast", fast.append)
    bus.publish(Event("appeared", "s", 0.0))
    assert entered.wait(5)  # the slow thread holds event 0; its queue is empty again
    for i in range(1, 6):
        bus.publish(Event("appeared", "s", float(i)))
    stats = {s.name: s for s in bus.stats()}
    assert stats["slow"].dropped == 3 and stats["slow"].queued == 2
    gate.set()
    bus.close()
    assert [e.time for e in slow] == [0.0, 1.0, 2.0]
    assert len(fast) == 6


def test_a_failing_callback_is_counted_and_the_next_event_still_arrives():
    bus = EventBus()
    seen = []

    def flaky(ev):
        if ev.frame_index == 0:
            raise RuntimeError("boom")
        seen.append(ev.frame_index)

    sub = bus.subscribe("flaky", flaky)
    bus.publish(Event("appeared", "s", 0.0, frame_index=0))
    bus.publish(Event("appeared", "s", 1.0, frame_index=1))
    sub.close()
    assert seen == [1]
    stats = sub.stats()
    assert (stats.failed, stats.delivered) == (1, 1)
