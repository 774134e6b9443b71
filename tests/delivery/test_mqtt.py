"""MQTT out against a real Mosquitto broker: events, counts, snapshots, availability, the last will,
authentication, and a broker restart mid-stream (nothing lost within the buffer bound)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aisp.delivery import DataDirSnapshots, MqttConfig, MqttPublisher
from aisp.events import Event, EventBus
from tests.delivery.mqtt_client import Subscriber, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _events(n: int, *, start: int = 0, stream: str = "cam1", **kw) -> list[Event]:
    return [Event("appeared", stream, 1_000.0 + i, frame_index=i, label="person", track_id=i, **kw)
            for i in range(start, start + n)]


def _publisher(port: int, **options) -> MqttPublisher:
    snapshots = options.pop("snapshots", None)
    cfg = MqttConfig.from_url(f"mqtt://127.0.0.1:{port}", client_id=options.pop("client_id", "aisp-test"),
                              reconnect_min_delay=0.1, reconnect_max_delay=0.5, **options)
    return MqttPublisher(cfg, snapshots=snapshots)


def _ids(sub: Subscriber, topic: str = "aisp/events") -> list[str]:
    return [json.loads(m.payload)["id"] for m in sub.on(topic)]


def test_events_counts_and_availability_reach_a_subscriber(mqtt_broker):
    sub = Subscriber(mqtt_broker.port, ["aisp/#"])
    bus = EventBus()
    pub = _publisher(mqtt_broker.port)
    try:
        assert sub.connected.wait(10)
        pub.start(bus)
        assert pub.wait_connected(10)
        assert sub.wait_for(lambda ms: any(m.topic == "aisp/available" and m.payload == b"online"
                                           for m in ms))
        events = _events(5)
        events.append(Event("enter", "cam1", 2_000.0, label="person", track_id=1, zone="door"))
        events.append(Event("enter", "cam1", 2_001.0, label="person", track_id=2, zone="door"))
        events.append(Event("exit", "cam1", 2_002.0, label="person", track_id=1, zone="door"))
        events.append(Event("gone", "cam1", 2_003.0, label="person", track_id=0))
        for e in events:
            bus.publish(e)
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic == "aisp/events"]) == len(events))
        got = [json.loads(m.payload) for m in sub.on("aisp/events")]
        assert [g["id"] for g in got] == [e.id for e in events]  # in publication order
        assert got[0] == events[0].to_dict()
        assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic == "aisp/cam1/person"][-1:]
                            == [b"4"])
        assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic == "aisp/cam1/door/person"][-1:]
                            == [b"1"])
        assert wait_until(lambda: pub.ledger.snapshot().delivered == len(events))
        snap = pub.ledger.snapshot()
        assert snap.balanced and snap.dropped == snap.failed == snap.pending == 0
        assert snap.latency_ms_p99 is not None
    finally:
        pub.close()
        bus.close()
        sub.close()


def test_counts_from_a_feed_and_home_assistant_discovery(mqtt_broker):
    sub = Subscriber(mqtt_broker.port, ["aisp/#", "homeassistant/#"])
    pub = _publisher(mqtt_broker.port, ha_discovery=True, client_id="aisp-node")
    try:
        assert sub.connected.wait(10)
        pub.start()
        assert pub.wait_connected(10)
        pub.set_counts("cam 1/x", {"car": 3, "dog": 1})  # a stream id that needs cleaning
        pub.set_counts("cam 1/x", {"car": 2})  # dog missing: back to 0
        topic_car = pub.topics.count("cam 1/x", "car")
        assert "/" not in topic_car[len("aisp/"):].split("/", 1)[0] and topic_car.count("/") == 2
        assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic == topic_car][-1:] == [b"2"])
        dog = pub.topics.count("cam 1/x", "dog")
        assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic == dog][-1:] == [b"0"])
        configs = [m for m in sub.messages if m.topic.startswith("homeassistant/sensor/")]
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic.startswith("homeassistant/")]) >= 2)
        configs = [json.loads(m.payload) for m in sub.messages if m.topic.startswith("homeassistant/")]
        car = next(c for c in configs if c["state_topic"] == topic_car)
        assert car["availability_topic"] == "aisp/available" and car["unique_id"].startswith("aisp_")
        assert car["device"]["identifiers"] == ["aisp-aisp-node"]
    finally:
        pub.close()
        sub.close()


def test_snapshot_is_published_retained(mqtt_broker, tmp_path):
    cv2 = pytest.importorskip("cv2")
    np = pytest.importorskip("numpy")
    ok, buf = cv2.imencode(".jpg", np.full((32, 48, 3), 127, np.uint8))
    assert ok
    jpeg = buf.tobytes()
    from aisp.events import new_event_id

    eid = new_event_id(1_764_633_600.5)  # 2025-12-02 00:00:00.5 UTC
    event = Event("appeared", "cam1", 1.0, label="person", snapshot=f"/api/events/{eid}/snapshot", id=eid)
    (tmp_path / "2025-12-02").mkdir()
    (tmp_path / "2025-12-02" / f"{eid}.jpg").write_bytes(jpeg)  # the events area's layout
    pub = _publisher(mqtt_broker.port, snapshots=DataDirSnapshots(tmp_path))
    try:
        pub.start()
        assert pub.wait_connected(10)
        pub.handle(event)
        assert wait_until(lambda: pub.ledger.snapshot().delivered == 1)
        assert wait_until(lambda: pub.stats()["messages"]["inflight"] == 0)
        late = Subscriber(mqtt_broker.port, ["aisp/cam1/snapshot"])  # connects after: gets the retained copy
        try:
            assert late.wait_for(lambda ms: len(ms) == 1)
            assert late.messages[0].payload == jpeg and late.messages[0].retain
        finally:
            late.close()
    finally:
        pub.close()


def test_snapshot_lookup_stays_inside_its_directory(tmp_path):
    root = tmp_path / "snaps"
    root.mkdir()
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8 outside")
    (root / "x.jpg").write_bytes(b"not a jpeg")
    lookup = DataDirSnapshots(root)
    assert lookup(Event("appeared", "cam1", 1.0, snapshot="../secret.jpg")) is None
    assert lookup(Event("appeared", "cam1", 1.0, snapshot="/etc/passwd")) is None
    assert lookup(Event("appeared", "cam1", 1.0, snapshot="x.jpg")) is None  # not a JPEG
    (root / "ok.jpg").write_bytes(b"\xff\xd8\xff\xe0 fine")
    assert lookup(Event("appeared", "cam1", 1.0, snapshot="ok.jpg")) == b"\xff\xd8\xff\xe0 fine"
    (root / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    assert lookup(Event("appeared", "cam1", 1.0, snapshot="link.jpg")) is None


def test_broker_restart_loses_nothing_within_the_buffer_and_counts_the_rest(mqtt_broker):
    """Stop the broker mid-stream, publish past the buffer bound, restart it on the same port."""
    bound, before, during = 50, 10, 80
    sub = Subscriber(mqtt_broker.port, ["aisp/events"], client_id="durable-reader", durable=True)
    bus = EventBus()
    pub = _publisher(mqtt_broker.port, buffer_size=bound)
    try:
        assert sub.connected.wait(10)
        pub.start(bus)
        assert pub.wait_connected(10)
        first = _events(before)
        for e in first:
            bus.publish(e)
        assert wait_until(lambda: pub.ledger.snapshot().delivered == before)
        assert wait_until(lambda: pub.stats()["messages"]["inflight"] == 0)

        mqtt_broker.stop()
        assert wait_until(lambda: not pub.connected, 10)
        second = _events(during, start=before)
        for e in second:
            bus.publish(e)  # never blocks, broker or not
        assert wait_until(lambda: pub.ledger.snapshot().accepted == before + during), json.dumps(pub.stats())
        mid = pub.ledger.snapshot()
        assert mid.pending == bound and mid.dropped == during - bound

        mqtt_broker.start()
        assert pub.wait_connected(15)
        assert wait_until(lambda: pub.ledger.snapshot().pending == 0, 20)
        final = pub.ledger.snapshot()
        assert final.balanced
        assert final.delivered == before + bound
        assert final.dropped == during - bound and final.failed == 0
        kept = [e.id for e in first + second[:bound]]  # the bound keeps the oldest: the first 50
        assert sub.wait_for(lambda ms: set(kept) <= {json.loads(m.payload)["id"] for m in ms}, 20)
        ids = _ids(sub)
        dedup = list(dict.fromkeys(ids))  # at least once: a resent message may come twice
        assert dedup == kept  # in order, nothing missing, nothing beyond the bound
        print(f"\nbroker restart: published={before + during} delivered={final.delivered} "
              f"dropped={final.dropped} (bound {bound}) retried={final.retried} failed={final.failed} "
              f"duplicates_seen={len(ids) - len(dedup)}")
    finally:
        pub.close()
        bus.close()
        sub.close()


def test_qos0_does_not_buffer_and_counts_drops(mqtt_broker):
    pub = _publisher(mqtt_broker.port, qos=0)
    try:
        pub.start()
        assert pub.wait_connected(10)
        mqtt_broker.stop()
        assert wait_until(lambda: not pub.connected, 10)
        for e in _events(5):
            pub.handle(e)
        snap = pub.ledger.snapshot()
        assert snap.dropped == 5 and snap.pending == 0 and snap.balanced
    finally:
        pub.close(timeout=1)


def test_clean_close_publishes_offline(mqtt_broker):
    pub = _publisher(mqtt_broker.port)
    pub.start()
    assert pub.wait_connected(10)
    pub.close()
    sub = Subscriber(mqtt_broker.port, ["aisp/available"])
    try:
        assert sub.wait_for(lambda ms: len(ms) == 1)
        assert sub.messages[0].payload == b"offline" and sub.messages[0].retain
    finally:
        sub.close()


_CHILD = textwrap.dedent("""
    import sys, threading
    from aisp.delivery import MqttConfig, MqttPublisher
    pub = MqttPublisher(MqttConfig.from_url(sys.argv[1], client_id="aisp-child", keepalive=5))
    pub.start()
    assert pub.wait_connected(20)
    print("connected", flush=True)
    threading.Event().wait()
""")


def test_last_will_is_offline_when_the_client_dies(mqtt_broker):
    sub = Subscriber(mqtt_broker.port, ["aisp/available"])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, mqtt_broker.url], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    try:
        assert sub.connected.wait(10)
        assert child.stdout is not None and child.stdout.readline().strip() == b"connected"
        assert sub.wait_for(lambda ms: [m.payload for m in ms][-1:] == [b"online"])
        child.kill()  # SIGKILL: no DISCONNECT, the broker publishes the will
        child.wait(10)
        assert sub.wait_for(lambda ms: [m.payload for m in ms][-1:] == [b"offline"])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
        sub.close()


def test_password_auth_and_no_password_in_logs_or_stats(mqtt_auth_broker, caplog):
    caplog.set_level(logging.DEBUG, logger="aisp")
    logging.getLogger("aisp").propagate = True
    good = MqttPublisher(MqttConfig.from_url(f"mqtt://aisp:s3cret-pw@127.0.0.1:{mqtt_auth_broker.port}",
                                             client_id="aisp-auth"))
    bad = MqttPublisher(MqttConfig.from_url(f"mqtt://aisp:wrong-pw@127.0.0.1:{mqtt_auth_broker.port}",
                                            client_id="aisp-bad", reconnect_min_delay=0.2))
    sub = Subscriber(mqtt_auth_broker.port, ["aisp/events"], username="reader", password="reader-pw")
    try:
        good.start()
        bad.start()
        assert sub.connected.wait(10)
        assert good.wait_connected(10)
        good.handle(_events(1)[0])
        assert sub.wait_for(lambda ms: len(ms) == 1)
        assert wait_until(lambda: (bad.stats()["last_error"] or "").startswith("connection refused"))
        assert not bad.connected
        stats = json.dumps([good.stats(), bad.stats()])
        assert "aisp:***@" in stats
        assert "s3cret-pw" not in stats and "wrong-pw" not in stats
        assert "s3cret-pw" not in repr(good) + repr(good.config) and "wrong-pw" not in repr(bad.config)
    finally:
        good.close()
        bad.close(timeout=1)
        sub.close()
    assert caplog.records and "s3cret-pw" not in caplog.text and "wrong-pw" not in caplog.text


def test_mqtts_with_a_private_ca(mqtt_tls_broker, tmp_path):
    """``mqtts://`` verifies the broker's certificate against ``mqtt_ca_file``; without the CA
    (system trust only) the connection is refused and nothing is sent in clear."""
    good = MqttPublisher(MqttConfig.from_url(mqtt_tls_broker.url, client_id="aisp-tls",
                                             ca_file=mqtt_tls_broker.ca_file))
    untrusted = MqttPublisher(MqttConfig.from_url(mqtt_tls_broker.url, client_id="aisp-tls-bad",
                                                  reconnect_min_delay=0.2))
    try:
        good.start()
        untrusted.start()
        assert good.wait_connected(15)
        good.handle(_events(1)[0])
        assert wait_until(lambda: good.ledger.snapshot().delivered == 1)
        assert wait_until(lambda: untrusted.stats()["last_error"] is not None)
        assert not untrusted.connected
    finally:
        good.close()
        untrusted.close(timeout=1)


def test_close_publishes_what_the_bus_still_holds(mqtt_broker):
    sub = Subscriber(mqtt_broker.port, ["aisp/events"])
    bus = EventBus()
    pub = _publisher(mqtt_broker.port)
    try:
        assert sub.connected.wait(10)
        pub.start(bus)
        assert pub.wait_connected(10)
        events = _events(200)
        for e in events:
            bus.publish(e)
        pub.close()  # right away: the queued events go out before 'offline'
        snap = pub.ledger.snapshot()
        assert snap.delivered == 200 and snap.failed == 0 and snap.balanced
        assert sub.wait_for(lambda ms: len(ms) >= 200)
        assert list(dict.fromkeys(_ids(sub))) == [e.id for e in events]
    finally:
        pub.close()
        bus.close()
        sub.close()
