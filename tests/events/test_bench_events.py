"""``aisp bench events``'s building blocks, with the fake model and a real Mosquitto (the figures
are for ``aisp bench events``): the bench's own broker helper, the throughput run with MQTT on the
bus, and the ``live_all`` part (off against everything on, clips and MQTT included), which leaves
no thread, broker or directory behind."""

from __future__ import annotations

import json
import threading

import psutil
import pytest

from aisp.bench._mosquitto import Mosquitto, find_mosquitto, mosquitto
from aisp.bench.events import live_all, throughput_run
from aisp.bench.pipeline import make_video
from aisp.runtime import build
from tests.conftest import require_service

pytest.importorskip("paho.mqtt.client")

MOSQUITTO = find_mosquitto()


def _need_broker() -> None:
    require_service(MOSQUITTO is not None, "mosquitto is not installed (apt-get install mosquitto)")


def _leftover(before: set[threading.Thread]) -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())


def test_bench_broker_accepts_a_publish_and_leaves_nothing_behind() -> None:
    _need_broker()
    import paho.mqtt.client as mqtt

    with mosquitto() as broker:
        assert broker is not None and broker.running
        pid, directory = broker.proc.pid, broker.dir
        assert directory is not None and (directory / "mosquitto.conf").exists()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-helper-test")
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        try:
            info = client.publish("aisp/test", b"x", qos=1)
            info.wait_for_publish(10)
            assert info.is_published()
        finally:
            client.disconnect()
            client.loop_stop()
    assert not broker.running and broker.dir is None
    assert not directory.exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_bench_broker_that_cannot_start_says_why_and_cleans_up(tmp_path) -> None:
    fake = tmp_path / "mosquitto"
    fake.write_text("#!/bin/sh\necho 'no such broker' >&2\nexit 3\n")
    fake.chmod(0o755)
    broker = Mosquitto(str(fake))
    with pytest.raises(RuntimeError, match="exited at start .*no such broker"):
        broker.start()
    assert broker.proc is None and broker.dir is None


def test_throughput_run_sends_every_event_to_the_broker(settings, tmp_path) -> None:
    _need_broker()
    from tests.delivery.mqtt_client import Subscriber

    path = make_video(tmp_path / "b.mp4", 30)
    with mosquitto() as broker, build(settings, store=False) as runtime:
        assert broker is not None
        sub = Subscriber(broker.port, ["aisp/events"])
        try:
            assert sub.connected.wait(15)
            out = throughput_run(runtime, path, analytics=True, snapshot_dir=tmp_path / "snaps",
                                 mqtt_url=broker.url, model="fake")
            total = sum(out["events"].values())
            assert sub.wait_for(lambda msgs: len(msgs) >= total, timeout=15)
            received = [json.loads(m.payload)["type"] for m in sub.messages]
            off = throughput_run(runtime, path, analytics=False, snapshot_dir=tmp_path / "off",
                                 mqtt_url=broker.url, model="fake")
        finally:
            sub.client.disconnect()
            sub.client.loop_stop()
    assert out["frames"] == 30 and out["state"] == "stopped"
    assert out["events"].get("appeared", 0) >= 1  # the fake model's box: a track
    mqtt = out["mqtt"]
    assert mqtt["accepted"] == total and mqtt["delivered"] == total
    assert mqtt["dropped"] == mqtt["failed"] == mqtt["pending"] == 0
    assert sorted(received) == sorted(t for t, n in out["events"].items() for _ in range(n))
    assert "mqtt" not in off and off["frames"] == 30  # "off" never has MQTT, even with a broker


def test_live_all_off_against_everything_on(settings, tmp_path) -> None:
    _need_broker()
    before = set(threading.enumerate())
    with mosquitto() as broker, build(settings, store=False) as runtime:
        assert broker is not None
        out = live_all(runtime, settings, seconds=1.5, rounds=1, work_dir=tmp_path / "live",
                       mqtt_url=broker.url, warmup=1.0, model="fake")
    assert out["on_set"] == ["tracking", "zones", "lines", "event snapshots", "mqtt", "clip recording"]
    assert out["all_running"]
    off, on = out["runs"]["off"][0], out["runs"]["on"][0]
    for side in (off, on):
        assert side["fps"] > 0 and side["frames"] > 0 and side["dropped"] >= 0
        assert side["process_cpu_pct"] > 0 and side["cpu_ms_per_frame"] > 0
    assert out["ratio"] == pytest.approx(on["fps"] / off["fps"], abs=0.002)
    assert out["round_ratios"] == [out["ratio_median_of_rounds"]]
    assert isinstance(out["meets_goal"], bool) and isinstance(out["meets_goal_median_of_rounds"], bool)
    assert out["cpu_ms_per_frame"]["added"] == pytest.approx(
        on["cpu_ms_per_frame"] - off["cpu_ms_per_frame"], abs=0.02)
    assert set(out["process_cpu_pct"]) == {"off", "on"}
    # off: no tracking, so no object events, no clips, no MQTT
    assert "clips" not in off and "mqtt" not in off and "appeared" not in off["events"]
    # on: the box is tracked, its events reach the broker and the clip recorder
    assert on["events"].get("appeared", 0) >= 1
    assert on["clips"]["events_matched"] >= 1 and out["clips_written"] >= 1
    assert out["mqtt"]["accepted"] == sum(on["events"].values()) == out["mqtt"]["delivered"]
    assert out["mqtt"]["dropped"] == 0
    clips = list((tmp_path / "live").glob("live-on-0/clips/**/*.mp4"))
    assert len(clips) == out["clips_written"]
    assert _leftover(before) == []
