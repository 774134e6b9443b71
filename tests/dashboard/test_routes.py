"""The dashboard's routes without a browser: the open page and assets, and the ``/ws/live`` feed.

They run on the real app (``create_app``) with a real store in a temporary directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

STATIC = Path(__file__).resolve().parents[2] / "src" / "aisp" / "api" / "static"


def _client(settings: Any) -> Iterator[Any]:
    from aisp.api import create_app
    from tests.api.conftest import local_client

    app = create_app(settings)
    with local_client(app) as client:
        assert app.state.lifecycle.wait_started(60), "startup did not finish"
        assert app.state.ctx.components["store"] == "done", app.state.ctx.errors
        yield client


@pytest.fixture
def auth_on(tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    from aisp.settings import load_settings, set_settings

    settings = load_settings(environ={}, data_dir=tmp_path / "data", auth="on")
    set_settings(settings)
    for client in _client(settings):
        store = client.app.state.ctx.store
        _, admin = store.keys.create("admin", "t-admin")
        _, viewer = store.keys.create("viewer", "t-viewer")
        yield client, admin, viewer


@pytest.fixture
def auth_off(tmp_path: Path) -> Iterator[Any]:
    from aisp.settings import load_settings, set_settings

    settings = load_settings(environ={}, data_dir=tmp_path / "data", auth="off")
    set_settings(settings)
    yield from _client(settings)


def test_page_is_open_and_tells_the_auth_mode(auth_on: tuple[Any, str, str]) -> None:
    client, _, _ = auth_on
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert 'data-auth="on"' in r.text
    has_history = "/api/history" in client.app.openapi()["paths"]
    assert f'data-history="{"on" if has_history else "off"}"' in r.text
    assert "{{" not in r.text
    csp = r.headers["content-security-policy"]  # the browser itself refuses any remote asset
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "http" not in csp


def test_page_in_auth_off_mode(auth_off: Any) -> None:
    assert 'data-auth="off"' in auth_off.get("/").text


@pytest.mark.parametrize(
    ("name", "media"),
    [("app.js", "text/javascript"), ("app.css", "text/css"), ("favicon.svg", "image/svg+xml"),
     ("linechart.js", "text/javascript")],
)
def test_assets_have_their_media_type(auth_on: tuple[Any, str, str], name: str, media: str) -> None:
    client, _, _ = auth_on
    r = client.get(f"/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(media)
    assert r.content == (STATIC / name).read_bytes()


@pytest.mark.parametrize("path", ["/static/%2e%2e/routers/dashboard.py", "/static/nope.js", "/static/"])
def test_missing_or_outside_asset_is_a_unified_404(auth_on: tuple[Any, str, str], path: str) -> None:
    client, _, _ = auth_on
    r = client.get(path)
    assert r.status_code == 404
    body = r.json()
    assert body["status"] == "error" and body["error"]["name"] == "NOT_FOUND"
    assert "def " not in r.text


def test_every_referenced_asset_is_served_and_nothing_is_remote(auth_on: tuple[Any, str, str]) -> None:
    """Works offline: each file the page loads comes from /static, and no asset names a remote host."""
    client, _, _ = auth_on
    html = client.get("/").text
    refs = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html))
    for js in STATIC.glob("*.js"):
        refs |= {f"/static/{m}" for m in re.findall(r'from "\./([\w.-]+)"', js.read_text())}
        refs |= set(re.findall(r'"(/static/[\w./-]+)"', js.read_text()))  # loaded on demand (hls.js)
    assert {"/static/app.js", "/static/app.css", "/static/linechart.js", "/static/vendor/hls.min.js"} <= refs
    for ref in refs:
        assert client.get(ref).status_code == 200, ref
    for f in STATIC.rglob("*"):  # vendored files too
        if f.is_file():
            assert not re.search(r"(src|href|url)\s*[=(]\s*[\"']?https?://", f.read_text()), f.name


def test_live_feed_refuses_a_missing_or_wrong_key(auth_on: tuple[Any, str, str]) -> None:
    from starlette.websockets import WebSocketDisconnect

    client, _, viewer = auth_on
    for url in ("/ws/live", "/ws/live?key=aisp_wrong", f"/ws/live?key={viewer}", "/ws/live?ticket=tkt_wrong"):
        with client.websocket_connect(url, headers={"X-API-Key": ""}) as ws:
            assert ws.receive_json()["error"]["name"] == "UNAUTHORIZED", url
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_json()
        assert info.value.code == 4401, url


def _ticket(client: Any, key: str, path: str = "/ws/live") -> str:
    r = client.post("/api/auth/ticket", json={"path": path}, headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    return r.json()["ticket"]


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_live_feed_pushes_summaries(auth_on: tuple[Any, str, str], role: str) -> None:
    client, admin, viewer = auth_on
    key = admin if role == "admin" else viewer
    with client.websocket_connect(f"/ws/live?ticket={_ticket(client, key)}") as ws:
        first = ws.receive_json()
        second = ws.receive_json()
    assert first["type"] == "summary"
    assert set(first) == {"type", "time", "system", "alerts", "cache", "streams", "tasks", "cluster"}
    assert first["cluster"] is None  # one machine: the page hides its Cluster section
    assert second["time"] > first["time"]
    sys_ = first["system"]
    assert sys_["ready"] is True and sys_["uptime_s"] >= 0 and sys_["rss_mb"] > 0
    cpu = second["system"]["cpu_percent"]  # the first sample of a process may be null, later ones not
    assert isinstance(cpu, float) and cpu >= 0.0
    assert first["cache"]["max_size"] == client.app.state.ctx.settings.cache_max_size


def test_live_feed_shows_a_loaded_model_and_a_stream(auth_off: Any) -> None:
    client = auth_off
    assert client.post("/api/models/fake/load").status_code == 200
    spec = {"id": "s1", "source": "demo", "live": True, "models": ["fake"], "priority": 3}
    r = client.post("/api/streams", json=spec)
    assert r.status_code in (200, 201), r.text
    with client.websocket_connect("/ws/live") as ws:
        msg = ws.receive_json()
    models = {m["name"]: m for m in msg["cache"]["models"]}
    assert "fake" in models and models["fake"]["instances"] >= 1
    assert models["fake"]["load_ms"] is not None
    streams = {s["id"]: s for s in msg["streams"]}
    assert streams["s1"]["models"] == ["fake"] and streams["s1"]["priority"] == 3
    assert streams["s1"]["state"] in ("starting", "running")
    client.delete("/api/streams/s1")


def test_live_feed_reports_a_low_hit_rate_alert(tmp_path: Path) -> None:
    from aisp.settings import load_settings, set_settings

    settings = load_settings(environ={}, data_dir=tmp_path / "data", auth="off",
                             cache_hit_rate_threshold=0.9, cache_hit_rate_min_requests=2)
    set_settings(settings)
    for client in _client(settings):
        for name in ("fake", "motion"):  # two loads: two misses, hit rate 0% < 90%
            assert client.post(f"/api/models/{name}/load").status_code == 200
        with client.websocket_connect("/ws/live") as ws:
            msg = ws.receive_json()
        cache_alerts = [a for a in msg["alerts"] if a["source"] == "cache"]
        assert len(cache_alerts) == 1, msg["alerts"]
        assert cache_alerts[0]["level"] == "warning"
        assert "below 90%" in cache_alerts[0]["message"]
        assert msg["cache"]["recent_hit_rate"] == 0.0


def test_open_pages_share_one_summary_per_interval(auth_off: Any) -> None:
    from aisp.api.routers.dashboard_summary import SharedSummary

    now = [100.0]
    shared = SharedSummary(auth_off.app.state.ctx, max_age_s=0.5, clock=lambda: now[0])
    first = shared.get()
    now[0] += 0.4
    assert shared.get() is first  # a second page within the interval reuses it
    now[0] += 0.1
    fresh = shared.get()
    assert fresh is not first and fresh["time"] >= first["time"]


def test_live_feed_ends_when_its_key_is_revoked(auth_on: tuple[Any, str, str]) -> None:
    from starlette.websockets import WebSocketDisconnect

    client, admin, viewer = auth_on
    headers = {"X-API-Key": admin}
    keys = client.get("/api/auth/keys", headers=headers).json()["keys"]
    viewer_id = next(k["id"] for k in keys if k["name"] == "t-viewer")
    with client.websocket_connect(f"/ws/live?ticket={_ticket(client, viewer)}") as ws:
        assert ws.receive_json()["type"] == "summary"
        assert client.delete(f"/api/auth/keys/{viewer_id}", headers=headers).status_code == 200
        with pytest.raises(WebSocketDisconnect) as info:
            for _ in range(3):  # at most the summary already on its way, then the close
                ws.receive_json()
    assert info.value.code == 4401
