"""MQTT started by the server's lifecycle: events of the runtime's bus reach the broker, the status
and metrics show the connection (never the password), and shutdown publishes ``offline``.

Events are published onto the runtime's bus by the test: the producers (tracking, zones) live in
another area of issue 16."""

from __future__ import annotations

import json

from aisp.events import Event
from tests.api.conftest import start_app
from tests.delivery.mqtt_client import Subscriber, wait_until


def test_server_publishes_events_and_goes_offline_at_shutdown(mqtt_auth_broker, tmp_path):
    url = f"mqtt://aisp:s3cret-pw@127.0.0.1:{mqtt_auth_broker.port}"
    sub = Subscriber(mqtt_auth_broker.port, ["site/#"], username="reader", password="reader-pw")
    try:
        assert sub.connected.wait(10)
        gen = start_app(tmp_path, mqtt_url=url, mqtt_topic_prefix="site", mqtt_client_id="aisp-app")
        api = next(gen)
        try:
            service = api.ctx.delivery
            assert service is not None and service.mqtt is not None
            assert service.mqtt.wait_connected(10)
            event = Event("cross", "gate", 5.0, label="car", zone="line1", direction="in")
            api.ctx.runtime.events.publish(event)
            assert sub.wait_for(lambda ms: any(m.topic == "site/events" for m in ms))
            (msg,) = sub.on("site/events")
            assert json.loads(msg.payload)["id"] == event.id
            status = api.client.get("/api/status")
            assert status.status_code == 200
            mqtt = status.json()["delivery"]["mqtt"]
            assert mqtt["connected"] is True
            assert mqtt["url"] == f"mqtt://aisp:***@127.0.0.1:{mqtt_auth_broker.port}"
            assert wait_until(
                lambda: api.client.get("/api/delivery").json()["mqtt"]["events"]["delivered"] == 1)
            assert "s3cret-pw" not in status.text and "s3cret-pw" not in api.client.get("/api/delivery").text
            metrics = api.client.get("/metrics").text
            assert "aisp_mqtt_connected 1.0" in metrics
            assert 'aisp_delivery_events_total{outcome="delivered",target="mqtt"} 1.0' in metrics
        finally:
            next(gen, None)  # leaves the app: the lifecycle shuts down
        assert sub.wait_for(
            lambda ms: [m.payload for m in ms if m.topic == "site/available"][-1:] == [b"offline"])
    finally:
        sub.close()


def test_a_real_stream_feeds_frame_counts(mqtt_broker, tmp_path):
    """A running stream (demo source, the ``fake`` model: one ``fake`` box per frame) publishes its
    per-frame count on ``aisp/<stream>/<label>``; stopping it publishes 0 through a stream event."""
    sub = Subscriber(mqtt_broker.port, ["aisp/#"])
    try:
        assert sub.connected.wait(10)
        gen = start_app(tmp_path, mqtt_url=mqtt_broker.url, mqtt_client_id="aisp-frames")
        api = next(gen)
        try:
            assert api.ctx.delivery.mqtt.wait_connected(10)
            spec = {"id": "cam1", "source": "demo:live", "models": ["fake"], "max_fps": 30}
            r = api.client.post("/api/streams", json=spec)
            assert r.status_code == 201, r.text
            def last(ms: list) -> list[bytes]:
                return [m.payload for m in ms if m.topic == "aisp/cam1/fake"][-1:]

            assert sub.wait_for(lambda ms: last(ms) == [b"1"])
            assert wait_until(lambda: api.client.get("/api/streams/cam1").json()["stats"]["frames_out"] >= 30)
            assert len(sub.on("aisp/cam1/fake")) == 1  # only changes are published, not one per frame
            # a stream state change (published by the stream area's producers) zeroes the counts
            api.ctx.runtime.events.publish(Event("stream", "cam1", 1.0, state="stopped"))
            assert sub.wait_for(lambda ms: last(ms) == [b"0"])
            api.client.delete("/api/streams/cam1")
        finally:
            next(gen, None)
    finally:
        sub.close()


def test_mqtt_that_cannot_start_leaves_webhooks_running(tmp_path):
    gen = start_app(tmp_path, mqtt_url="mqtts://127.0.0.1:8883", mqtt_ca_file=str(tmp_path / "missing.pem"))
    api = next(gen)
    try:
        status = api.client.get("/api/status").json()
        assert status["components"]["delivery"] == "failed"
        assert "missing.pem" in status["errors"]["delivery"] or "No such file" in status["errors"]["delivery"]
        assert status["delivery"]["mqtt"] is None and status["delivery"]["webhooks"] is not None
        assert api.client.get("/api/webhooks").status_code == 200
    finally:
        next(gen, None)
