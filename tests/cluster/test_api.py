"""The API on a real 3-node Ray cluster with PostgreSQL: ``GET /api/cluster``, the frames API
answered by Ray Serve replicas on the nodes (with the unified error body kept), auth, per-node
metrics, and the dashboard's Cluster section in a real browser.

One app for the module (Serve's deploy, three replicas building their runtimes, is the slow part),
served by uvicorn in this process, which is the cluster's driver.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import assert_error
from tests.cluster.live import ClusterApp, cluster_app
from tests.dashboard.conftest import browser  # noqa: F401 - the Chromium fixture

pytestmark = pytest.mark.timeout(600)

URL = "/api/frames/process"


@pytest.fixture(scope="module")
def live(ray_cluster: Any, pg_module_url: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterApp]:
    from aisp.settings import load_settings

    data_dir = tmp_path_factory.mktemp("cluster-api") / "data"
    settings = load_settings(
        environ={}, data_dir=data_dir, ray_address=ray_cluster.address, database_url=pg_module_url,
        ray_frames="serve", prewarm=["face_detection"], inference_threads=2, drain_timeout_seconds=30.0,
        snapshot_interval_seconds=3600.0,
    )
    with cluster_app(settings) as app:
        assert app.ctx.components.get("cluster") == "done", app.ctx.errors
        yield app


def _alive_node_ids() -> set[str]:
    import ray

    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def _face_jpeg() -> bytes:
    import cv2
    import skimage.data

    bgr = cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (640, 480)), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def _post(live: ClusterApp, data: bytes, query: str = "models=face_detection", key: str | None = "admin",
          ctype: str = "image/jpeg") -> httpx.Response:
    headers = {"Content-Type": ctype, **live.h(live.admin if key == "admin" else key)}
    return httpx.post(f"{live.url}{URL}?{query}", content=data, headers=headers, timeout=60)


def _results(body: dict[str, Any]) -> dict[str, Any]:
    """The models' results without their timings."""
    return {name: {k: v for k, v in res.items() if k != "inference_ms"}
            for name, res in body["models"].items()}


class _Spy:
    """Counts the calls of the app's ``cluster.frames.process`` and what each raised."""

    def __init__(self, frames: Any) -> None:
        self.inner = frames.process
        self.calls = 0
        self.raised: list[BaseException] = []

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        try:
            return await self.inner(*args, **kwargs)
        except BaseException as exc:
            self.raised.append(exc)
            raise


@pytest.fixture
def spy(live: ClusterApp, monkeypatch: pytest.MonkeyPatch) -> _Spy:
    frames = live.ctx.cluster.frames
    s = _Spy(frames)
    monkeypatch.setattr(frames, "process", s)
    return s


def test_cluster_lists_the_three_alive_nodes_with_resources(live: ClusterApp) -> None:
    r = httpx.get(f"{live.url}/api/cluster", headers=live.h(live.viewer), timeout=30)  # a read: viewer
    assert r.status_code == 200, r.text
    body = r.json()
    alive = [n for n in body["nodes"] if n["alive"]]
    assert {n["node_id"] for n in alive} == _alive_node_ids() and len(alive) == 3
    assert body["nodes"][0]["is_head"] and sum(n["is_head"] for n in body["nodes"]) == 1
    for n in alive:
        assert n["resources"]["CPU"] == 1.0 and n["resources"]["stream_slot"] == 2.0, n
        assert n["address"] and isinstance(n["streams"], list) and isinstance(n["tasks"], list)
    assert body["frames"] == {"path": "serve", "replicas": 3}
    import ray

    actors = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    assert "SERVE_CONTROLLER_ACTOR" in actors
    assert not [a for a in actors if "PROXY" in a]  # no Serve HTTP proxy: the AISP API is the ingress


def test_cluster_route_needs_a_key_and_is_documented(live: ClusterApp) -> None:
    assert_error(httpx.get(f"{live.url}/api/cluster", timeout=30), 401, "UNAUTHORIZED")
    spec = httpx.get(f"{live.url}/openapi.json", headers=live.h(live.admin), timeout=30).json()
    op = spec["paths"]["/api/cluster"]["get"]
    assert {"200", "401", "404"} <= set(op["responses"])
    assert "ClusterResponse" in spec["components"]["schemas"]


def test_frames_are_answered_by_serve_replicas_on_the_nodes(live: ClusterApp, spy: _Spy) -> None:
    jpeg = _face_jpeg()
    nodes: set[str] = set()
    pids: set[int] = set()
    alive = _alive_node_ids()
    for _ in range(24):
        r = _post(live, jpeg)
        assert r.status_code == 200, r.text
        node, _, pid = r.headers["x-aisp-replica"].partition("/")
        assert node in alive and int(pid) != os.getpid()
        nodes.add(node)
        pids.add(int(pid))
    assert spy.calls == 24 and not spy.raised
    assert len(nodes) >= 2 and len(pids) >= 2  # one replica per node: requests spread over them
    served = r.json()
    assert served["width"] == 640 and served["format"] == "jpeg"
    assert len(_results(served)["face_detection"]["detections"]) >= 1
    # the same answer this process gives on its own (frames part off for one request)
    frames, live.ctx.cluster.frames = live.ctx.cluster.frames, None
    try:
        local = _post(live, jpeg)
    finally:
        live.ctx.cluster.frames = frames
    assert local.status_code == 200 and "x-aisp-replica" not in local.headers
    assert _results(local.json()) == _results(served)


def test_multipart_upload_goes_through_the_route_to_a_replica(live: ClusterApp, spy: _Spy) -> None:
    files = {"file": ("face.jpg", _face_jpeg(), "image/jpeg")}
    r = httpx.post(f"{live.url}{URL}?models=face_detection&annotate=true", files=files,
                   headers=live.h(live.admin), timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    assert r.headers["x-aisp-replica"].partition("/")[0] in _alive_node_ids()
    assert float(r.headers["x-inference-ms"]) > 0 and spy.calls == 1


def test_bad_input_keeps_the_unified_error_body(live: ClusterApp, spy: _Spy) -> None:
    # refused by the API before any hop: not an image, an unknown model
    assert_error(_post(live, b"definitely not an image"), 415, "UNSUPPORTED_MEDIA")
    err = assert_error(_post(live, _face_jpeg(), "models=no_such_model"), 404, "NOT_FOUND")
    assert "no_such_model" in err["message"]
    assert spy.calls == 0
    # refused by a replica: a JPEG whose data ends early (the header check passes it) ...
    jpeg = _face_jpeg()
    err = assert_error(_post(live, jpeg[: len(jpeg) // 2] + b"\xff\xd9"), 400, "VALIDATION_ERROR")
    assert err["path"] == URL and err["method"] == "POST"
    # ... and an ONNX file that starts like one but cannot be loaded: 422, named relative to the
    # model directory, never by its absolute path
    model_dir: Path = live.ctx.settings.resolved_model_dir
    model_dir.mkdir(parents=True, exist_ok=True)
    bad = model_dir / "broken.onnx"
    bad.write_bytes(b"\x08\x07" + os.urandom(256))
    r = _post(live, jpeg, f"models=onnx:{bad}")
    err = assert_error(r, 422, "INVALID_MODEL")
    assert "broken.onnx" in err["message"] and str(model_dir) not in r.text
    assert spy.calls == 2 and [type(e).__name__ for e in spy.raised] == ["RemoteError", "RemoteError"]


def test_auth_still_applies_to_the_frames_route(live: ClusterApp, spy: _Spy) -> None:
    assert_error(_post(live, _face_jpeg(), key=None), 401, "UNAUTHORIZED")
    assert_error(_post(live, _face_jpeg(), key=live.viewer), 403, "FORBIDDEN")
    assert spy.calls == 0


def test_metrics_label_per_node_figures_with_node(live: ClusterApp) -> None:
    _post(live, _face_jpeg())
    text = httpx.get(f"{live.url}/metrics", headers=live.h(live.viewer), timeout=30).text
    alive = _alive_node_ids()
    found = dict(re.findall(r'^aisp_cluster_node_alive\{node="([0-9a-f]+)"\} (\S+)$', text, re.M))
    assert {k for k, v in found.items() if float(v) == 1.0} == alive
    for node in alive:
        assert f'aisp_cluster_node_resource{{node="{node}",resource="stream_slot"}} 2.0' in text
        assert f'aisp_cluster_node_streams{{node="{node}"}}' in text
    assert 'aisp_cluster_nodes{state="alive"} 3.0' in text
    served = re.search(r'^aisp_inference_seconds_count\{model="face_detection",origin="serve"\} (\S+)$',
                       text, re.M)
    assert served and float(served.group(1)) >= 1


@pytest.mark.browser
def test_dashboard_shows_the_nodes_and_their_streams(live: ClusterApp, browser: Any,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The Cluster section lists the nodes; a stream the service places on a node is shown in that
    node's row (the placement itself is the streams part's; here the description names one)."""
    from tests.dashboard.conftest import SCREENSHOTS

    port = live.ctx.cluster
    real = port.describe
    worker = sorted(_alive_node_ids())[0]

    def described() -> dict[str, Any]:
        out = real()
        for n in out["nodes"]:
            if n["node_id"] == worker:
                n["streams"] = [*n["streams"], "cam-7"]
        return out

    monkeypatch.setattr(port, "describe", described)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=live.url)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto("/")
        page.locator("#login-key").fill(live.viewer)
        page.locator("#login-form button[type=submit]").click()
        page.locator("#cluster").wait_for(state="visible")
        rows = page.locator("#cluster-table tbody tr[data-node-id]")
        page.wait_for_function(
            "() => document.querySelectorAll('#cluster-table tr[data-node-id]').length === 3")
        assert rows.count() == 3
        row = page.locator(f'#cluster-table tr[data-node-id="{worker}"]')
        row.locator('.node-chip[data-stream="cam-7"]').wait_for(state="visible")
        assert "alive" in row.locator(".state").text_content()
        assert "3 of 3 nodes alive" in page.locator("#cluster-summary").text_content()
        assert "Ray Serve, 3 replicas" in page.locator("#cluster-summary").text_content()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#cluster").screenshot(path=str(SCREENSHOTS / "dashboard-cluster.png"))
        assert errors == []
    finally:
        context.close()


def test_frames_go_on_when_a_replica_node_is_removed(live: ClusterApp, ray_cluster: Any) -> None:
    """Remove a worker node that runs a replica (``allow_graceful=False``: the node dies): every
    request meanwhile is answered 200 by another replica or 503 ``OVERLOADED`` (never a 500 or a
    hang), and within a few seconds every answer comes from the nodes left. Runs last: it leaves
    a replacement node (and Ray's record of the dead one)."""
    import time

    from tests.cluster.conftest import NODE_ARGS

    jpeg = _face_jpeg()
    served: set[str] = set()
    for _ in range(30):
        served.add(_post(live, jpeg).headers["x-aisp-replica"].partition("/")[0])
    victim = next(n for n in ray_cluster.worker_nodes if n.node_id in served)
    ray_cluster.remove_node(victim, allow_graceful=False)
    try:
        statuses: list[int] = []
        streak, deadline = 0, time.monotonic() + 60
        while streak < 15 and time.monotonic() < deadline:
            r = _post(live, jpeg)
            statuses.append(r.status_code)
            assert r.status_code in (200, 503), r.text
            if r.status_code == 503:
                assert_error(r, 503, "OVERLOADED")
                assert r.headers.get("retry-after")
                streak = 0
                continue
            node = r.headers["x-aisp-replica"].partition("/")[0]
            streak = streak + 1 if node != victim.node_id else 0
        assert streak >= 15, f"no steady answers from the other nodes: {statuses[-20:]}"
    finally:
        ray_cluster.add_node(**NODE_ARGS)
        ray_cluster.wait_for_nodes()
