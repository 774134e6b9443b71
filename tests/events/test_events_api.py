"""Events through the whole server: a stream over a generated video of three crossing squares,
with tracking, a zone and a line; its events stored, queried, paged, with snapshots; the live
``WS /ws/events``; zone updates; the counts in stream stats and ``/metrics`` (line crossings,
events, and the objects inside a zone now on a live stream)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from tests.api.conftest import Harness, assert_error, start_app
from tests.pipeline import shapes

DEADLINE = 90.0
ZONE = {"name": "left", "polygon": [[0, 0], [160, 0], [160, 240], [0, 240]]}
LINE = {"name": "mid", "start": [0, 0.6], "end": [1, 0.6], "relative": True}


def _poll(fn, what: str, timeout: float = DEADLINE):
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        threading.Event().wait(0.05)  # polling the server's state with a deadline


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    from aisp.models import FakeModel, register_model, unregister_model

    register_model("shapes", lambda: FakeModel("shapes", boxes=shapes.detect, label="shape"))
    data = tmp_path_factory.mktemp("events")
    (data / "media").mkdir()
    shapes.write_video(data / "media" / "shapes.mp4")
    try:
        yield from start_app(data, event_thumbnail_width=160)
    finally:
        unregister_model("shapes")


@pytest.fixture(scope="module")
def played(api: Harness) -> dict[str, Any]:
    """The shapes video played once through a tracking stream; every stored event of it."""
    c = api.client
    source = str(api.settings.data_dir / "media" / "shapes.mp4")
    r = c.post("/api/streams", json={"id": "shapes", "source": source, "models": ["shapes"],
                                     "zones": [ZONE], "lines": [LINE]})
    assert r.status_code == 201, r.text
    assert r.json()["track"] is True and r.json()["lines"][0]["name"] == "mid"
    _poll(lambda: c.get("/api/streams/shapes").json()["state"] == "stopped", "the stream to end")

    def stored() -> list[dict[str, Any]] | None:
        evs = c.get("/api/events", params={"stream": "shapes", "limit": 1000}).json()["events"]
        return evs if any(e["type"] == "stream" and e["state"] == "stopped" for e in evs) else None

    return {"events": _poll(stored, "the events to be stored"), "stream": c.get("/api/streams/shapes").json()}


def test_events_are_stored_newest_first_with_every_field(played: dict[str, Any]) -> None:
    events = played["events"]
    times = [e["time"] for e in events]
    assert times == sorted(times, reverse=True)
    kinds = {e["type"] for e in events}
    assert {"appeared", "gone", "enter", "exit", "cross", "stream"} <= kinds
    appeared = [e for e in events if e["type"] == "appeared"]
    assert len(appeared) >= 3
    for e in appeared:
        assert e["stream_id"] == "shapes" and e["label"] == "shape" and e["track_id"] > 0
        assert len(e["box"]) == 4 and 0 < e["confidence"] <= 1 and e["frame_index"] >= 0
        assert e["snapshot"] == f"/api/events/{e['id']}/snapshot"
        assert abs(e["time"] - time.time()) < 600
    cross = [e for e in events if e["type"] == "cross"]
    assert [(e["zone"], e["direction"]) for e in cross] == [("mid", "in")]
    running = [e for e in events if e["type"] == "stream" and e["state"] == "running"]
    assert running and running[0]["time"] < min(e["time"] for e in appeared)


def test_filters_and_pages(api: Harness, played: dict[str, Any]) -> None:
    c = api.client
    everything = played["events"]
    got = c.get("/api/events", params={"stream": "shapes", "type": "enter,exit"}).json()["events"]
    assert got and {e["type"] for e in got} <= {"enter", "exit"}
    assert len(got) == sum(1 for e in everything if e["type"] in ("enter", "exit"))
    assert c.get("/api/events", params={"stream": "shapes", "label": "nothing"}).json()["events"] == []
    assert c.get("/api/events", params={"stream": "other"}).json()["events"] == []
    assert len(c.get("/api/events", params={"stream": "shapes", "label": "shape"}).json()["events"]) == len(
        [e for e in everything if e.get("label") == "shape"])
    future = {"stream": "shapes", "since": "2999-01-01T00:00:00Z"}
    assert c.get("/api/events", params=future).json()["events"] == []
    # pages of 4: the same events, no repeat, no gap
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"stream": "shapes", "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = c.get("/api/events", params=params).json()
        seen.extend(e["id"] for e in page["events"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in everything]
    one = everything[0]
    assert c.get(f"/api/events/{one['id']}").json() == one
    assert c.get(f"/api/events/{one['id']}", headers=api.h(api.viewer)).status_code == 200


def test_bad_queries_are_400_naming_the_field(api: Harness) -> None:
    c = api.client
    for params, field in (({"type": "nope"}, "type"), ({"cursor": "!!"}, "cursor"),
                          ({"since": "yesterday"}, "since"), ({"limit": 0}, "limit"),
                          ({"since": "10", "until": "100"}, "until")):
        err = assert_error(c.get("/api/events", params=params), 400, "VALIDATION_ERROR")
        assert field in json.dumps(err), (params, err)
    assert_error(c.get("/api/events/not-an-id"), 400, "VALIDATION_ERROR")
    assert_error(c.get("/api/events/" + "0" * 26), 404, "NOT_FOUND")
    assert_error(c.get("/api/events", headers={"X-API-Key": ""}), 401, "UNAUTHORIZED")


def test_snapshots_and_thumbnails(api: Harness, played: dict[str, Any]) -> None:
    c = api.client
    event = next(e for e in played["events"] if e["type"] == "appeared")
    r = c.get(event["snapshot"], headers=api.h(api.viewer))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (shapes.H, shapes.W, 3)
    # the box is drawn: its left edge is the drawing colour (orange-red), not the black background
    x1, y1, x2, y2 = (int(round(v)) for v in event["box"])
    edge = img[min(y2, shapes.H - 1) - 2, max(0, x1)].astype(int)  # BGR
    assert edge[2] > 180 and edge[0] < 120, edge
    for url in (f"/api/events/{event['id']}/thumbnail", f"{event['snapshot']}?thumb=1"):
        t = c.get(url)
        assert t.status_code == 200
        assert cv2.imdecode(np.frombuffer(t.content, np.uint8), cv2.IMREAD_COLOR).shape[1] == 160
    gone = next(e for e in played["events"] if e["type"] == "gone")
    assert gone["snapshot"] is None
    assert_error(c.get(f"/api/events/{gone['id']}/snapshot"), 404, "NOT_FOUND")


def test_stream_stats_and_metrics_show_the_counts(api: Harness, played: dict[str, Any]) -> None:
    stats = played["stream"]["stats"]
    assert stats["lines"]["mid"]["in"] == 1 and stats["lines"]["mid"]["out"] == 0
    assert stats["zones"]["left"]["count"] == 0 and stats["events"]["cross"] == 1
    metrics = api.client.get("/metrics").text
    assert 'aisp_line_crossings_total{direction="in",label="shape",line="mid",stream="shapes"} 1.0' in metrics
    assert 'aisp_stream_events_total{stream="shapes",type="cross"} 1.0' in metrics
    assert 'aisp_event_deliveries_total{outcome="delivered",subscriber="store"}' in metrics


def _zone_samples(text: str) -> dict[tuple[str, str, str], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.labels["stream"], s.labels["zone"], s.labels["label"]): s.value
            for f in text_string_to_metric_families(text) if f.name == "aisp_zone_objects" for s in f.samples}


def test_zone_gauge_counts_the_objects_inside_now(api: Harness) -> None:
    """``aisp_zone_objects{stream, zone, label}``: the fake model's one box (label ``fake``, its
    anchor at the frame's bottom-centre quarter) sits inside ``hall``; ``corner`` is elsewhere and
    ``people`` covers it but keeps only ``person``, so neither has a series."""
    c = api.client
    zones = [{"name": "hall", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "relative": True},
             {"name": "corner", "polygon": [[0, 0], [0.1, 0], [0.1, 0.1]], "relative": True},
             {"name": "people", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "relative": True,
              "labels": ["person"]}]
    r = c.post("/api/streams", json={"id": "zlive", "source": "demo:live", "models": ["fake"],
                                     "max_fps": 10, "zones": zones})
    assert r.status_code == 201, r.text
    try:
        got = _poll(lambda: {k: v for k, v in _zone_samples(c.get("/metrics").text).items()
                             if k[0] == "zlive"}, "the zone gauge")
        assert got == {("zlive", "hall", "fake"): 1.0}
        stats = c.get("/api/streams/zlive").json()["stats"]
        assert stats["zones"]["hall"] == {"count": 1, "labels": {"fake": 1}}
        assert stats["zones"]["corner"]["count"] == 0 and stats["zones"]["people"]["count"] == 0
    finally:
        c.delete("/api/streams/zlive")


def test_websocket_pushes_live_events_with_filters(api: Harness) -> None:
    c = api.client
    with c.websocket_connect("/ws/events?stream=ws1&type=stream", headers={"X-API-Key": api.viewer}) as ws:
        _poll(lambda: api.ctx.event_fanout.clients >= 1, "the client to be listening")
        assert c.post("/api/streams", json={"id": "other", "source": "demo:live", "models": ["fake"],
                                            "start": False}).status_code == 201
        assert c.post("/api/streams", json={"id": "ws1", "source": "demo:live", "models": ["fake"],
                                            "max_fps": 30}).status_code == 201
        first = json.loads(ws.receive_text())
        assert first["type"] == "event"
        assert first["event"]["stream_id"] == "ws1" and first["event"]["state"] == "running"
        assert c.post("/api/streams/ws1/stop").status_code == 200
        second = json.loads(ws.receive_text())
        assert second["event"]["stream_id"] == "ws1" and second["event"]["state"] == "stopped"
    _poll(lambda: api.ctx.event_fanout.clients == 0, "the client to be removed")
    c.delete("/api/streams/ws1")
    c.delete("/api/streams/other")


@pytest.mark.parametrize(("query", "key", "code"), [
    ("", "wrong", 4401),
    ("?key={viewer}", "", 4401),  # keys are never read from URLs
    ("?type=bogus", "{viewer}", 4400),
    ("?stream=" + "x" * 129, "{viewer}", 4400),
])
def test_websocket_errors(api: Harness, query: str, key: str, code: int) -> None:
    from starlette.websockets import WebSocketDisconnect

    url = "/ws/events" + query.format(viewer=api.viewer)
    with api.client.websocket_connect(url, headers={"X-API-Key": key.format(viewer=api.viewer)}) as ws:
        body = json.loads(ws.receive_text())
        assert body["status"] == "error" and body["error"]["code"] == code - 4000
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_text()
        assert exc.value.code == code


def test_zone_updates(api: Harness) -> None:
    c = api.client
    assert c.post("/api/streams", json={"id": "z1", "source": "demo:live", "models": ["fake"],
                                        "start": False}).status_code == 201
    assert c.get("/api/streams/z1").json()["track"] is False
    body = {"zones": [{"name": "door", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]], "relative": True,
                       "labels": ["fake"], "dwell": 2}], "lines": []}
    assert_error(c.put("/api/streams/z1/zones", json=body, headers=api.h(api.viewer)), 403, "FORBIDDEN")
    r = c.put("/api/streams/z1/zones", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["track"] is True and r.json()["zones"][0]["name"] == "door"
    assert api.ctx.store.streams.get("z1").spec["zones"][0]["name"] == "door"  # persisted
    for bad, field in (
        ({"zones": [{"name": "a", "polygon": [[0, 0], [1, 1]]}]}, "polygon"),
        ({"zones": [{"name": "a b", "polygon": [[0, 0], [1, 0], [1, 1]]}]}, "name"),
        ({"zones": [{"name": "a", "polygon": [[0, 0], [2, 0], [2, 2]], "relative": True}]},
         "zones[0].polygon[1]"),
        ({"zones": [{"name": "a", "polygon": [[0, 0], [1, 0], [2, 0]]}]}, "zones[0].polygon"),
        ({"lines": [{"name": "a", "start": [0, 0], "end": [0, 0]}]}, "lines[0].end"),
        ({"zones": [{"name": "a", "polygon": [[0, 0], [9, 0], [9, 9]]}],
          "lines": [{"name": "a", "start": [0, 0], "end": [5, 5]}]}, "lines"),
        ({"zones": [], "bogus": 1}, "bogus"),
    ):
        err = assert_error(c.put("/api/streams/z1/zones", json=bad), 400, "VALIDATION_ERROR")
        assert field in json.dumps(err), (bad, err)
    assert_error(c.put("/api/streams/nope/zones", json={"zones": []}), 404, "NOT_FOUND")
    assert_error(c.post("/api/streams", json={"source": "demo", "models": ["fake"], "track": False,
                                              "lines": [LINE]}), 400, "VALIDATION_ERROR")
    c.delete("/api/streams/z1")


def test_every_published_event_is_stored_once(played: dict[str, Any], api: Harness) -> None:
    assert api.ctx.store.event_records.count(stream_id="shapes") == len(played["events"])
    assert len({e["id"] for e in played["events"]}) == len(played["events"])
    sub = next(s for s in api.ctx.runtime.events.stats() if s.name == "store")
    assert sub.dropped == 0 and sub.failed == 0


def test_zones_are_restored_after_a_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("restore")
    body = {"id": "kept", "source": "demo:live", "models": ["fake"], "start": False,
            "zones": [ZONE], "lines": [LINE]}
    for harness in start_app(data):
        assert harness.client.post("/api/streams", json=body).status_code == 201
        r = harness.client.put("/api/streams/kept/zones", json={"zones": [], "lines": [LINE]})
        assert r.status_code == 200 and r.json()["zones"] == []
    for harness in start_app(data):
        kept = harness.client.get("/api/streams/kept").json()
        assert kept["track"] is True and kept["zones"] == []
        assert [ln["name"] for ln in kept["lines"]] == ["mid"]
        assert kept["lines"][0]["relative"] is True and kept["lines"][0]["end"] == [1.0, 0.6]
