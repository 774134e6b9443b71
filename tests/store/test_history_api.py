"""GET /api/history and /api/history/events: on a bare app over the store fixture (SQLite and
PostgreSQL), and once through the real ``create_app`` (router included, behind the API key)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from aisp.api.routers.history import parse_since
from aisp.errors import ValidationError


@pytest.fixture
def client(store, settings):
    from fastapi import FastAPI

    from aisp.api.context import AppContext
    from aisp.api.errors import install_error_handlers
    from aisp.api.routers.history import router
    from tests.api.conftest import local_client

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.ctx = AppContext(settings, store=store)
    with local_client(app, raise_server_exceptions=False) as c:
        yield c


def test_points_for_charts(client, store):
    now = time.time()
    for i in range(5):
        store.snapshots.add({"fps": 10.0 + i, "rss": 100.0, "latency_p99": 5.0}, ts=now - 100 + i * 10)
    store.snapshots.add({"fps": 99.0}, ts=now - 7200)  # outside the default hour
    r = client.get("/api/history", params={"metric": "fps"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metric"] == "fps" and body["unit"] == "frames/s"
    assert [p["value"] for p in body["points"]] == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert body["points"][0]["t"].endswith("Z") and abs(body["points"][0]["ts"] - (now - 100)) < 0.01
    r = client.get("/api/history", params={"metric": "fps", "since": "3h", "max_points": 2})
    assert r.status_code == 400
    r = client.get("/api/history", params={"metric": "fps", "since": "10800", "max_points": 2})
    assert len(r.json()["points"]) == 2
    iso = datetime.fromtimestamp(now - 75, timezone.utc).isoformat().replace("+00:00", "Z")
    r = client.get("/api/history", params={"metric": "fps", "since": iso})
    assert [p["value"] for p in r.json()["points"]] == [13.0, 14.0]
    r = client.get("/api/history", params={"metric": "fps", "since": "200", "until": "65"})
    assert [p["value"] for p in r.json()["points"]] == [10.0, 11.0, 12.0, 13.0]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"metric": "gpu"}, "metric"),
        ({"metric": "fps", "since": "yesterday"}, "since"),
        ({"metric": "fps", "since": "-5"}, "since"),
        ({"metric": "fps", "until": "nan"}, "until"),
    ],
)
def test_bad_parameters_are_400_in_the_unified_body(client, params, field):
    r = client.get("/api/history", params=params)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["name"] == "VALIDATION_ERROR" and err["details"]["field"] == field


def test_missing_metric_is_400(client):
    r = client.get("/api/history")
    assert r.status_code == 400 and r.json()["status"] == "error"


def test_events_endpoint(client, store):
    now = time.time()
    store.events.submit({"stream_id": "cam1", "window_start": now - 30, "window_end": now - 29, "frames": 5,
                         "detections": 3, "labels": {"face": 3}, "max_confidence": 0.9})
    store.events.submit({"stream_id": "cam2", "window_start": now - 20, "window_end": now - 19, "frames": 5})
    assert store.events.flush(10)
    r = client.get("/api/history/events", params={"stream_id": "cam1", "since": "60"})
    assert r.status_code == 200
    events = r.json()["events"]
    assert len(events) == 1 and events[0]["labels"] == {"face": 3} and events[0]["frames"] == 5
    assert len(client.get("/api/history/events").json()["events"]) == 2


def test_no_store_is_503(settings):
    from fastapi import FastAPI

    from aisp.api.context import AppContext
    from aisp.api.errors import install_error_handlers
    from aisp.api.routers.history import router
    from tests.api.conftest import local_client

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.ctx = AppContext(settings)
    with local_client(app, raise_server_exceptions=False) as c:
        r = c.get("/api/history", params={"metric": "fps"})
    assert r.status_code == 503 and r.json()["error"]["name"] == "STORE_ERROR"


def test_parse_since():
    assert parse_since(None, now=1000.0) == 1000.0 - 3600
    assert parse_since("10", now=1000.0) == 990.0
    assert parse_since("1970-01-01T00:01:40Z", now=0) == 100.0
    assert parse_since("1970-01-01T00:01:40", now=0) == 100.0  # naive means UTC
    assert parse_since("1970-01-01T01:01:40+01:00", now=0) == 100.0
    with pytest.raises(ValidationError):
        parse_since("inf", now=0)
    # out-of-range times are clamped to what can be rendered, never a 500
    assert parse_since("1e308", now=1000.0) == 0.0
    assert parse_since("0001-01-01T00:00:00+01:00", now=0) == 0.0
    assert parse_since("9999-12-31T23:59:59-14:00", now=0) == 253402300799.0
    with pytest.raises(ValidationError, match="ISO 8601"):
        parse_since("2026-02-30", now=0)


def test_extreme_times_answer_200(client):
    r = client.get("/api/history", params={"metric": "cpu", "since": "0001-01-01T00:00:00+01:00",
                                           "until": "9999-12-31T23:59:59-14:00"})
    assert r.status_code == 200 and r.json()["points"] == []


def test_included_in_the_real_app_behind_the_key(tmp_path):
    from aisp.api import create_app
    from aisp.settings import load_settings, set_settings
    from tests.api.conftest import local_client

    settings = load_settings(environ={}, data_dir=tmp_path, snapshot_interval_seconds=3600.0)
    set_settings(settings)
    app = create_app(settings)
    with local_client(app, raise_server_exceptions=False) as c:
        assert app.state.lifecycle.wait_started(120)
        store = app.state.ctx.store
        _, viewer = store.keys.create("viewer", "t")
        store.snapshots.add({"hit_rate": 0.5})
        assert c.get("/api/history", params={"metric": "hit_rate"}).status_code == 401
        r = c.get("/api/history", params={"metric": "hit_rate"}, headers={"X-API-Key": viewer})
        assert r.status_code == 200 and [p["value"] for p in r.json()["points"]] == [0.5]
