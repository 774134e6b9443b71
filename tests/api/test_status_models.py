"""Status, readiness, performance, metrics, models and cache routes."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.api.conftest import Harness, assert_error


def test_health_and_ready(api: Harness) -> None:
    assert api.client.get("/health").json()["status"] == "ok"
    body = api.client.get("/ready").json()
    assert body["ready"] is True and body["pending"] == []
    assert body["components"]["store"] == "done"


def test_ready_is_503_listing_what_is_pending(tmp_path: Path) -> None:
    """The store opens in the background: until it has, /health is 200 and /ready is 503."""
    from aisp.api import create_app
    from aisp.settings import load_settings
    from aisp.store import Store
    from tests.api.conftest import local_client

    gate = threading.Event()

    def slow_store(url: str) -> Store:
        assert gate.wait(30)
        return Store(url, settings=settings)

    settings = load_settings(environ={}, data_dir=tmp_path, auth="off")
    app = create_app(settings, store_factory=slow_store)
    with local_client(app) as client:
        assert client.get("/health").status_code == 200
        r = client.get("/ready")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "store" in r.json()["pending"]
        r = client.get("/api/tasks")  # a route that needs the store answers 503, not a hang
        assert_error(r, 503, "STORE_ERROR")
        gate.set()
        assert app.state.lifecycle.wait_started(60)
        assert client.get("/ready").status_code == 200


def test_store_failure_is_reported(tmp_path: Path) -> None:
    from aisp.api import create_app
    from aisp.errors import StoreError
    from aisp.settings import load_settings
    from tests.api.conftest import local_client

    def broken(url: str) -> None:
        raise StoreError("database unreachable (test)")

    app = create_app(load_settings(environ={}, data_dir=tmp_path, auth="off"), store_factory=broken)
    with local_client(app) as client:
        assert app.state.lifecycle.wait_started(60)
        body = client.get("/ready").json()
        # the open /ready names the exception's type only; the message is for key holders
        assert body["components"]["store"] == "failed" and body["errors"]["store"] == "StoreError"
        assert "unreachable" in client.get("/api/status").json()["errors"]["store"]
        assert client.get("/health").status_code == 200


def test_status(api: Harness) -> None:
    body = api.client.get("/api/status").json()
    assert body["version"] and body["ready"] is True and body["auth"] == "on"
    assert body["uptime_s"] > 0 and "store" in body["timings_ms"]


def test_performance(api: Harness) -> None:
    body = api.client.get("/api/status/performance", headers=api.h(api.viewer)).json()
    assert body["rss_mb"] > 10 and body["threads"] >= 1
    assert body["inference_capacity"] == api.ctx.inference.capacity
    assert isinstance(body["streams"], list)


def test_models_list_load_unload_prewarm(api: Harness) -> None:
    names = [m["name"] for m in api.client.get("/api/models").json()["models"]]
    assert "fake" in names and "face_detection" in names
    r = api.client.post("/api/models/fake/load")
    assert r.status_code == 200 and r.json()["cached"] == ["fake"]
    assert "fake" in api.ctx.cache.names()
    r = api.client.delete("/api/models/fake")
    assert r.json()["unloaded"] == ["fake"] and "fake" not in api.ctx.cache.names()
    r = api.client.post("/api/models/prewarm", json={"models": ["fake"]})
    assert r.json()["loaded"] == ["fake"] and r.json()["failed"] == {}
    assert_error(api.client.post("/api/models/nope/load"), 404, "NOT_FOUND")
    assert_error(api.client.delete("/api/models/nope"), 404, "NOT_FOUND")
    assert_error(api.client.post("/api/models/prewarm", json={"models": ["fake", "nope"]}), 404, "NOT_FOUND")
    assert_error(api.client.post("/api/models/prewarm", json={"models": []}), 400, "VALIDATION_ERROR")


def test_cache_stats_export_clear(api: Harness) -> None:
    api.client.post("/api/models/fake/load")
    stats = api.client.get("/api/cache/stats").json()
    assert "fake" in stats["models"]
    r = api.client.get("/api/cache/stats/export?format=csv")
    assert r.headers["content-type"].startswith("text/csv") and "fake" in r.text
    r = api.client.get("/api/cache/stats/export?format=prometheus")
    assert r.status_code == 200 and "# TYPE" in r.text
    r = api.client.get("/api/cache/stats/export")
    assert r.headers["content-type"].startswith("application/json")
    assert_error(api.client.get("/api/cache/stats/export?format=xml"), 400, "VALIDATION_ERROR")
    assert api.client.post("/api/cache/clear").json()["cleared"] >= 1
    assert api.ctx.cache.names() == []


def test_metrics(api: Harness) -> None:
    api.client.post("/api/models/fake/load")
    api.client.get("/api/status")
    api.client.get("/api/streams/nope-does-not-exist")
    r = api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'aisp_http_requests_total{method="GET",route="/api/status",status="200"}' in text
    assert 'route="/api/streams/{stream_id}"' in text  # templates, not raw paths
    assert "nope-does-not-exist" not in text
    assert "aisp_http_request_duration_seconds_bucket" in text
    assert "aisp_ready 1.0" in text
    assert "aisp_cache_loads_total" in text and "aisp_cache_hit_rate" in text  # the cache's collector


def test_cluster_route_is_404_without_a_cluster(api: Harness) -> None:
    """One machine: GET /api/cluster is a clear 404 naming the setting; the dashboard's summary
    has no cluster (the page hides the section) and /metrics no per-node series."""
    from aisp.api.routers.dashboard_summary import build_summary

    err = assert_error(api.client.get("/api/cluster", headers=api.h(api.viewer)), 404, "NOT_FOUND")
    assert "AISP_RAY_ADDRESS" in err["message"] and err["details"]["setting"] == "ray_address"
    assert build_summary(api.ctx)["cluster"] is None
    assert "aisp_cluster_" not in api.client.get("/metrics").text
