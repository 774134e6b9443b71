"""``/api/webhooks`` and ``/api/delivery`` through the real app: admin only, the secret shown once,
the source policy at creation, test-fire, the delivery log, status and metrics.

Events are published onto the app runtime's bus by the test (the event producers, tracking and
zones, live in another area of issue 16)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from aisp.delivery import verify
from aisp.events import Event
from tests.api.conftest import Harness, assert_error, start_app
from tests.delivery.mqtt_client import wait_until
from tests.delivery.receiver import Receiver


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from start_app(tmp_path_factory.mktemp("hooks"), source_hosts="127.0.0.1",
                         webhook_backoff_seconds=0.01, webhook_backoff_max_seconds=0.05)


@pytest.fixture(scope="module")
def default_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from start_app(tmp_path_factory.mktemp("hooks-default"))


def _create(api: Harness, url: str, **body) -> dict:
    r = api.client.post("/api/webhooks", json={"url": url, **body})
    assert r.status_code == 201, r.text
    return r.json()


def test_create_shows_the_secret_once_and_never_again(api, receiver, caplog):
    caplog.set_level(logging.DEBUG, logger="aisp")
    logging.getLogger("aisp").propagate = True
    created = _create(api, receiver.url(), name="alerts", event_types=["enter", "cross"], labels=["person"])
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["enabled"] is True and created["event_types"] == ["enter", "cross"]
    got = api.client.get(f"/api/webhooks/{created['id']}")
    assert got.status_code == 200 and "secret" not in got.json() and secret not in got.text
    listed = api.client.get("/api/webhooks")
    assert listed.status_code == 200 and secret not in listed.text
    assert created["id"] in {w["id"] for w in listed.json()["webhooks"]}
    given = _create(api, receiver.url(), secret="my-own-secret-0123456789")
    assert given["secret"] == "my-own-secret-0123456789"
    assert secret not in caplog.text and "my-own-secret-0123456789" not in caplog.text
    for hook in (created, given):
        assert api.client.delete(f"/api/webhooks/{hook['id']}").status_code == 204


def test_webhooks_are_admin_only(api):
    for method, path in (("get", "/api/webhooks"), ("post", "/api/webhooks"), ("get", "/api/webhooks/abc"),
                         ("delete", "/api/webhooks/abc")):
        r = getattr(api.client, method)(path, headers=api.h(api.viewer))
        assert_error(r, 403, "FORBIDDEN")
    r = api.client.get("/api/webhooks", headers={"X-API-Key": ""})
    assert r.status_code == 401


def test_loopback_is_refused_by_default(default_api, receiver):
    r = default_api.client.post("/api/webhooks", json={"url": receiver.url()})
    err = assert_error(r, 403, "SOURCE_NOT_ALLOWED")
    assert "AISP_SOURCE_HOSTS" in err["message"]
    for url in ("http://169.254.169.254/latest/meta-data", "http://localhost:9/x", "http://[::1]:9/x"):
        assert_error(default_api.client.post("/api/webhooks", json={"url": url}), 403, "SOURCE_NOT_ALLOWED")
    assert default_api.client.get("/api/webhooks").json() == {"webhooks": []}


@pytest.mark.parametrize(
    "body, status, name, field_text",
    [
        ({"url": "ftp://127.0.0.1/x"}, 403, "SOURCE_NOT_ALLOWED", "scheme"),
        ({"url": "http://127.0.0.1/x y"}, 400, "VALIDATION_ERROR", "url"),
        ({"url": "http://127.0.0.1/x#frag"}, 400, "VALIDATION_ERROR", "fragment"),
        ({"url": "http:///nohost"}, 400, "VALIDATION_ERROR", "host"),
        ({"url": "http://127.0.0.1:99999/x"}, 400, "VALIDATION_ERROR", "url"),
        ({"url": "http://[::1/x"}, 400, "VALIDATION_ERROR", "url"),
        ({"url": "http://127.0.0.1/x", "event_types": ["explode"]}, 400, "VALIDATION_ERROR", "event_types"),
        ({"url": "http://127.0.0.1/x", "secret": "short"}, 400, "VALIDATION_ERROR", "secret"),
        ({"url": "http://127.0.0.1/x", "labels": [""]}, 400, "VALIDATION_ERROR", "labels"),
        ({"url": "http://127.0.0.1/x", "colour": "red"}, 400, "VALIDATION_ERROR", "colour"),
        ({"url": "x" * 3000}, 400, "VALIDATION_ERROR", "url"),
        ({}, 400, "VALIDATION_ERROR", "url"),
    ],
)
def test_bad_input_is_a_clear_4xx(api, body, status, name, field_text):
    err = assert_error(api.client.post("/api/webhooks", json=body), status, name)
    assert field_text in json.dumps(err)


def test_unknown_ids_are_404_and_bad_ids_400(api):
    assert_error(api.client.get("/api/webhooks/0123abcd"), 404, "NOT_FOUND")
    assert_error(api.client.post("/api/webhooks/0123abcd/test"), 404, "NOT_FOUND")
    assert_error(api.client.get("/api/webhooks/0123abcd/deliveries"), 404, "NOT_FOUND")
    assert_error(api.client.delete("/api/webhooks/0123abcd"), 404, "NOT_FOUND")
    assert_error(api.client.get("/api/webhooks/not-hex;drop"), 400, "VALIDATION_ERROR")
    assert api.client.get("/api/webhooks/..%2F..%2Fetc").status_code == 404


def test_events_are_delivered_logged_and_accounted(api):
    receiver = Receiver([500])
    try:
        hook = _create(api, receiver.url("/events"), streams=["cam-e2e"])
        bus = api.ctx.runtime.events
        event = Event("enter", "cam-e2e", 1.0, label="person", track_id=3, zone="door")
        bus.publish(event)
        bus.publish(Event("enter", "other-stream", 1.0, label="person", zone="door"))  # filtered out
        assert receiver.wait_for(lambda rs: len(rs) == 2)  # 500, then the retry
        req = receiver.requests[-1]
        assert verify(hook["secret"], req.headers["x-aisp-signature"], req.body)
        assert json.loads(req.body)["event"]["id"] == event.id
        assert wait_until(lambda: api.client.get(f"/api/webhooks/{hook['id']}/deliveries")
                          .json()["deliveries"][0]["status"] == "delivered")
        (d,) = api.client.get(f"/api/webhooks/{hook['id']}/deliveries").json()["deliveries"]
        assert d["attempts"] == 2 and d["response_status"] == 200 and d["event_id"] == event.id
        failed = api.client.get(f"/api/webhooks/{hook['id']}/deliveries", params={"status": "failed"})
        assert failed.json() == {"deliveries": []}
        assert_error(api.client.get(f"/api/webhooks/{hook['id']}/deliveries", params={"status": "x"}), 400,
                     "VALIDATION_ERROR")
        target = f"webhook:{hook['id']}"
        delivery = api.client.get("/api/delivery", headers=api.h(api.viewer)).json()
        (snap,) = [t for t in delivery["webhooks"]["targets"] if t["target"] == target]
        assert snap["delivered"] == 1 and snap["retried"] == 1 and snap["accepted"] == 1
        status = api.client.get("/api/status").json()
        assert status["components"]["delivery"] == "done"
        assert any(t["target"] == target for t in status["delivery"]["webhooks"]["targets"])
        assert api.client.get(f"/api/webhooks/{hook['id']}").json()["delivery"]["delivered"] == 1
        metrics = api.client.get("/metrics").text
        assert f'aisp_delivery_events_total{{outcome="delivered",target="{target}"}} 1.0' in metrics
        assert f'aisp_delivery_retries_total{{target="{target}"}} 1.0' in metrics
        api.client.delete(f"/api/webhooks/{hook['id']}")
    finally:
        receiver.close()


def test_test_fire_update_rotate_and_delete(api, receiver):
    hook = _create(api, receiver.url(), name="x")
    r = api.client.post(f"/api/webhooks/{hook['id']}/test")
    assert r.status_code == 200 and r.json()["status"] == "delivered" and r.json()["event_type"] == "test"
    last = receiver.requests[-1]
    assert verify(hook["secret"], last.headers["x-aisp-signature"], last.body)

    r = api.client.patch(f"/api/webhooks/{hook['id']}", json={"rotate_secret": True, "name": "renamed"})
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    new_secret = r.json()["secret"]
    assert new_secret != hook["secret"]
    api.client.post(f"/api/webhooks/{hook['id']}/test")
    last = receiver.requests[-1]
    assert verify(new_secret, last.headers["x-aisp-signature"], last.body)
    assert not verify(hook["secret"], last.headers["x-aisp-signature"], last.body)

    r = api.client.patch(f"/api/webhooks/{hook['id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False and "secret" not in r.json()
    assert_error(api.client.patch(f"/api/webhooks/{hook['id']}", json={"url": "gopher://127.0.0.1/"}), 403,
                 "SOURCE_NOT_ALLOWED")
    assert_error(api.client.patch(f"/api/webhooks/{hook['id']}", json={"rotate_secret": True,
                                                                        "secret": "x" * 20}),
                 400, "VALIDATION_ERROR")
    assert api.client.delete(f"/api/webhooks/{hook['id']}").status_code == 204
    assert_error(api.client.get(f"/api/webhooks/{hook['id']}"), 404, "NOT_FOUND")
