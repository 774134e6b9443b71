"""The small parts of delivery: the ledger, topic names, the count board, the settings."""

from __future__ import annotations

import threading

import pytest

from aisp.delivery import CountBoard, DeliveryLedger, MqttConfig, Topics, topic_level
from aisp.errors import ConfigError
from aisp.events import Event
from aisp.settings import load_settings


def test_ledger_settles_each_key_once_and_balances():
    now = [100.0]
    ledger = DeliveryLedger("t", buffer_bound=2, clock=lambda: now[0])
    ledger.accept("a", 99.95)
    ledger.accept("b", 99.9)
    ledger.refuse("dropped")
    ledger.retried()
    assert ledger.settle("a", "delivered") is True
    assert ledger.settle("a", "delivered") is False  # acknowledged twice: counted once
    snap = ledger.snapshot()
    assert (snap.accepted, snap.delivered, snap.dropped, snap.pending, snap.retried) == (3, 1, 1, 1, 1)
    assert snap.duplicate_settles == 1 and snap.balanced
    assert snap.latency_ms_p50 == pytest.approx(50.0)
    assert ledger.settle_all("failed") == 1
    assert ledger.snapshot().failed == 1 and ledger.snapshot().pending == 0 and ledger.snapshot().balanced
    with pytest.raises(ValueError):
        ledger.settle("x", "lost")


def test_count_replay_never_lands_after_a_newer_value():
    """A reconnect replays the counts while a feed sets new ones: the last call per key is the newest
    value (the bug: replay read car=3, a feed published car=2, then replay published the stale 3)."""
    calls: list[tuple[str, int]] = []
    replaying = threading.Event()
    in_replay = threading.Event()
    release = threading.Event()

    def on_change(_stream: str, _zone: str | None, label: str, n: int) -> None:
        calls.append((label, n))
        if replaying.is_set() and label == "a":  # replay emits "a" first, then "car"
            in_replay.set()
            assert release.wait(10)

    board = CountBoard(on_change)
    board.set_counts("cam", {"a": 1, "car": 3})
    replaying.set()
    replay = threading.Thread(target=board.replay)
    replay.start()
    assert in_replay.wait(10)  # replay has read the values and is emitting
    feed = threading.Thread(target=board.set_counts, args=("cam", {"a": 1, "car": 2}))
    feed.start()
    feed.join(0.2)
    assert feed.is_alive()  # the feed waits for the replay instead of overtaking it
    release.set()
    replay.join(10)
    feed.join(10)
    assert [n for label, n in calls if label == "car"] == [3, 3, 2]
    assert board.get("cam", "car") == 2


@pytest.mark.parametrize(
    "name, clean",
    [
        ("cam1", "cam1"),
        ("front-door_2", "front-door_2"),
        ("a/b", None),
        ("a+b", None),
        ("a#", None),
        ("x\x00y", None),
        ("", None),
        ("events", None),
        ("available", None),
        ("é", None),
        ("a" * 200, None),
    ],
)
def test_topic_levels_are_safe(name, clean):
    level = topic_level(name)
    if clean is not None:
        assert level == clean
    else:
        assert level != name
    assert level and len(level) <= 64
    assert not any(ch in level for ch in "/+#\x00")


def test_different_names_never_share_a_topic():
    assert topic_level("a/b") != topic_level("a+b") != topic_level("a_b")
    topics = Topics("aisp")
    assert topics.count("cam1", "snapshot") != topics.snapshot("cam1")
    assert topics.count("cam1", "person", "door") == "aisp/cam1/door/person"
    assert topics.count("cam/1", "person").count("/") == 2


def test_count_board_from_events_and_feed():
    changes: list[tuple] = []
    board = CountBoard(lambda *c: changes.append(c))
    board.apply(Event("appeared", "cam1", 1.0, label="person", track_id=1))
    board.apply(Event("appeared", "cam1", 1.0, label="person", track_id=2))
    board.apply(Event("gone", "cam1", 1.0, label="person", track_id=1))
    board.apply(Event("gone", "cam1", 1.0, label="dog", track_id=9))  # never below zero
    board.apply(Event("enter", "cam1", 1.0, label="person", track_id=2, zone="door"))
    assert board.get("cam1", "person") == 1 and board.get("cam1", "person", "door") == 1
    assert board.get("cam1", "dog") == 0
    board.set_counts("cam1", {"car": 2})
    assert board.get("cam1", "person") == 0 and board.get("cam1", "car") == 2
    assert board.get("cam1", "person", "door") == 1  # zones are fed apart
    board.apply(Event("stream", "cam1", 1.0, state="reconnecting"))
    assert all(n == 0 for s, _z, _l, n in board.items() if s == "cam1")
    assert changes[0] == ("cam1", None, "person", 1) and changes[-1][3] == 0
    with pytest.raises(ValueError):
        board.set_counts("cam1", {"car": -1})


@pytest.mark.parametrize(
    "url, ok",
    [
        ("mqtt://h", True),
        ("mqtts://u:p@h:8883", True),
        ("", True),
        ("http://h", False),
        ("mqtt://", False),
        ("mqtt://h/path", False),
        ("mqtt://h:99999", False),
        ("mqtt://u:hunter2-pw@h/path", False),
    ],
)
def test_mqtt_url_setting(url, ok, tmp_path):
    if ok:
        load_settings(environ={"AISP_MQTT_URL": url}, data_dir=tmp_path)
    else:
        with pytest.raises(ConfigError, match="mqtt_url") as info:
            load_settings(environ={"AISP_MQTT_URL": url}, data_dir=tmp_path)
        assert "hunter2-pw" not in str(info.value) and "hunter2-pw" not in str(info.value.details)


@pytest.mark.parametrize("prefix", ["a/#", "+", "/a", "a/", "a//b", ""])
def test_bad_topic_prefix_is_refused(prefix, tmp_path):
    with pytest.raises(ConfigError, match="mqtt_topic_prefix"):
        load_settings(environ={"AISP_MQTT_TOPIC_PREFIX": prefix}, data_dir=tmp_path)


def test_mqtt_config_from_settings(tmp_path):
    s = load_settings(environ={"AISP_MQTT_URL": "mqtts://user%40x:p%2Fw@broker.example"}, data_dir=tmp_path,
                      mqtt_qos=2, mqtt_ca_file=str(tmp_path / "ca.pem"))
    cfg = MqttConfig.from_settings(s)
    assert (cfg.host, cfg.port, cfg.tls, cfg.username, cfg.password, cfg.qos) == (
        "broker.example", 8883, True, "user@x", "p/w", 2)
    assert cfg.client_id.startswith("aisp-") and cfg.ca_file == tmp_path / "ca.pem"
    assert "p%2Fw" not in repr(cfg) and "p/w" not in repr(cfg) and "***" in cfg.display_url


def test_frame_count_feed_sends_changes_at_most_once_per_interval():
    from types import SimpleNamespace

    import numpy as np

    from aisp.api.count_feed import FrameCountFeed
    from aisp.models.results import Detections

    sent: list[tuple[str, dict]] = []

    class Target:
        def set_counts(self, stream, counts, *, zone=None):
            sent.append((stream, dict(counts)))

    now = [0.0]
    feed = FrameCountFeed(Target(), "cam1", interval=1.0, clock=lambda: now[0])

    def frame(n: int, label: str = "person"):
        det = Detections(xyxy=np.zeros((n, 4), np.float32), confidence=np.full(n, 0.9, np.float32),
                         class_id=np.zeros(n, np.int64), labels=[label] * n)
        return SimpleNamespace(results={"m": SimpleNamespace(detections=det, num_detections=n)})

    feed(frame(2))
    feed(frame(2))  # no change: nothing
    now[0] = 0.5
    feed(frame(3))  # a change within the interval: held back
    now[0] = 1.0
    feed(frame(3))  # sent now
    feed(frame(0))  # within the interval again
    now[0] = 2.5
    feed(frame(0))
    assert sent == [("cam1", {"person": 2}), ("cam1", {"person": 3}), ("cam1", {})]
