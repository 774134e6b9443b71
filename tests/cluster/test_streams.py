"""Streams as Ray actors on a real 3-node cluster, through the API, with PostgreSQL.

- streams spread over the nodes; ``GET /api/streams/{id}`` and ``ClusterService.describe()`` say
  which node runs which;
- a node that runs a live stream is removed: the stream runs again on another node within 5 s,
  and its WebSocket viewer keeps receiving results after the move;
- a file stream whose node is removed mid-way resumes from its committed position: every frame is
  counted exactly once in the stored window summaries, as in a single-machine run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.api.conftest import local_client
from tests.api.test_streams_tasks import make_video
from tests.cluster.conftest import NODE_ARGS, ray

MOVE_BUDGET_S = 5.0

log = logging.getLogger("tests.cluster")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        tick.wait(step)


def kill_stream_actors() -> None:
    from aisp.cluster import NAMESPACE

    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == NAMESPACE and entry["name"].startswith("stream:"):
            ray.kill(ray.get_actor(entry["name"], namespace=NAMESPACE), no_restart=True)


@contextmanager
def cluster_api(ray_cluster: Any, pg_url: str, data_dir: Path, *, keep_streams: bool = False,
                **overrides: Any) -> Iterator[Any]:
    from aisp.api import create_app
    from aisp.cluster import ClusterService
    from aisp.settings import load_settings, set_settings

    settings = load_settings(environ={}, data_dir=data_dir, database_url=pg_url,
                             ray_address=ray_cluster.address, media_dirs=[str(data_dir.parent)],
                             drain_timeout_seconds=5.0, snapshot_interval_seconds=3600.0, **overrides)
    set_settings(settings)
    cluster = ClusterService(settings, keep_streams=keep_streams, interval=1.0, checkpoint_interval=0.25)
    app = create_app(settings, cluster=cluster)
    try:
        with local_client(app, raise_server_exceptions=False) as client:
            assert app.state.lifecycle.wait_started(120), "startup did not finish"
            store = app.state.ctx.store
            assert store is not None and app.state.ctx.cluster.streams is not None, app.state.ctx.errors
            _, admin = store.keys.create("admin", "test-admin")
            client.headers["X-API-Key"] = admin
            client.cluster = cluster
            client.store = store
            yield client
    finally:
        set_settings(None)
        if not keep_streams:
            kill_stream_actors()  # what a failed test left running


def node_of(client: Any, sid: str) -> str | None:
    r = client.get(f"/api/streams/{sid}")
    assert r.status_code == 200, r.text
    return r.json()["node_id"]


def cluster_node(ray_cluster: Any, node_id: str) -> Any:
    for node in ray_cluster.worker_nodes:
        if node.node_id == node_id:
            return node
    return None


class Viewer:
    """A WebSocket viewer on a thread: records every result message it receives."""

    def __init__(self, client: Any, sid: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, sid), daemon=True)
        self._thread.start()

    def _run(self, client: Any, sid: str) -> None:
        try:
            headers = {"X-API-Key": client.headers["X-API-Key"]}
            with client.websocket_connect(f"/ws/streams/{sid}", headers=headers) as ws:
                while not self._stop.is_set():
                    msg = json.loads(ws.receive_text())
                    with self.cond:
                        self.messages.append({**msg, "at": time.monotonic()})
                        self.cond.notify_all()
                    if msg["type"] != "result":
                        return
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def wait_count(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.messages) >= n or self.error is not None, timeout)

    def wait_after(self, t: float, timeout: float) -> dict[str, Any] | None:
        with self.cond:
            self.cond.wait_for(lambda: any(m["at"] > t for m in self.messages), timeout)
            return next((m for m in self.messages if m["at"] > t), None)

    def stop(self) -> None:
        self._stop.set()


def single_machine_run(video: Path, tmp_path: Path) -> Any:
    """The same file through the same pipeline in this process, without Ray."""
    from aisp.runtime import build
    from aisp.settings import load_settings

    settings = load_settings(environ={}, data_dir=tmp_path / "local", workers=1)
    with build(settings, store=False) as runtime:
        return runtime.run_job(str(video), ["fake"])


def test_streams_spread_over_nodes_and_move_when_a_node_dies(ray_cluster, pg_url, tmp_path):
    with cluster_api(ray_cluster, pg_url, tmp_path / "data") as client:
        ids = ["cam-a", "cam-b", "cam-c"]
        for sid in ids:
            r = client.post("/api/streams", json={"id": sid, "source": "demo:live", "models": ["fake"],
                                                  "max_fps": 10})
            assert r.status_code == 201, r.text
            assert r.json()["node_id"], r.json()
        nodes = {sid: node_of(client, sid) for sid in ids}
        assert len(set(nodes.values())) == 3, nodes  # SPREAD: one per node
        alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert set(nodes.values()) <= alive
        described = {n["node_id"]: n["streams"] for n in client.cluster.describe()["nodes"]}
        for sid, node in nodes.items():
            assert sid in described[node]
        listed = {s["id"]: s for s in client.get("/api/streams").json()["streams"]}
        assert {sid: listed[sid]["node_id"] for sid in ids} == nodes
        wait_for(lambda: all(client.get(f"/api/streams/{s}").json()["state"] == "running" for s in ids), 30,
                 "the three streams running")

        # the node of a stream that is not on the head (the driver is connected to the head)
        moved = next(sid for sid in ids if cluster_node(ray_cluster, nodes[sid]) is not None)
        viewer = Viewer(client, moved)
        try:
            assert viewer.wait_count(3, 30), (viewer.error, viewer.messages)
            seq_before = viewer.messages[-1]["seq"]
            removed_at = time.monotonic()
            ray_cluster.remove_node(cluster_node(ray_cluster, nodes[moved]))
            new_node = wait_for(
                lambda: (lambda n: n if n and n != nodes[moved] else None)(node_of(client, moved)),
                30, "the stream on another node")
            first = viewer.wait_after(removed_at, 30)
            assert first is not None, (viewer.error, viewer.messages[-3:])
            # the viewer's frames come from the new actor: later sequence numbers, running again
            wait_for(lambda: viewer.wait_after(first["at"], 0.5), 10, "frames after the move")
            took = max(first["at"] - removed_at, 0.0)
            assert new_node in {n["NodeID"] for n in ray.nodes() if n["Alive"]}
            assert viewer.messages[-1]["seq"] > seq_before
            assert took < MOVE_BUDGET_S, f"the stream ran again {took:.1f} s after its node was removed"
            log.info("stream %s: first result on its new node %.2f s after its node was removed", moved, took)
            # the MJPEG view (the object the route reads) gives the new node's JPEGs, on demand
            seq, jpeg = wait_for(lambda: client.cluster.streams.view(moved).mjpeg.wait_next(0, 1.0), 10,
                                 "a JPEG of the moved stream")
            assert jpeg[:2] == b"\xff\xd8" and seq > 0
        finally:
            viewer.stop()
            ray_cluster.add_node(**NODE_ARGS)  # three nodes again for the next test
            ray_cluster.wait_for_nodes()

        supervisor = client.cluster.streams.supervisor
        wait_for(lambda: supervisor.passes >= 2, 10, "two supervisor passes")
        log.info("supervisor: %d passes, the last took %.1f ms", supervisor.passes, supervisor.last_pass_ms)

        # video outputs are not available on the cluster: a clear 400, nothing placed
        r = client.post("/api/streams", json={"id": "out-1", "source": "demo:live", "models": ["fake"],
                                              "output": {"hls": True}})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "output", r.text
        assert "out-1" not in {e["name"][7:] for e in ray.util.list_named_actors(all_namespaces=True)}

        # zones reach the actor: the stream restarts there with tracking on
        door = {"name": "door", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]], "relative": True}
        body = {"zones": [door], "lines": []}
        r = client.put(f"/api/streams/{ids[2]}/zones", json=body)
        assert r.status_code == 200 and r.json()["track"] is True and r.json()["zones"][0]["name"] == "door"
        info = client.cluster.streams.info(ids[2])
        assert info["spec"]["track"] is True and info["spec"]["zones"][0]["name"] == "door"

        # the API's stop and delete remove the actors; the definitions follow the user
        r = client.post(f"/api/streams/{ids[0]}/stop")
        assert r.status_code == 200 and r.json()["state"] == "stopped" and r.json()["node_id"] is None, r.text
        assert client.store.streams.get(ids[0]).desired_state == "stopped"
        assert client.delete(f"/api/streams/{ids[1]}").status_code == 204
        assert client.get(f"/api/streams/{ids[1]}").status_code == 404
        names = {e["name"] for e in ray.util.list_named_actors(all_namespaces=True)}
        assert f"stream:{ids[0]}" not in names and f"stream:{ids[1]}" not in names
        assert f"stream:{ids[2]}" in names


def test_a_file_stream_resumes_on_another_node_without_doubling_or_skipping(ray_cluster, pg_url, tmp_path):
    from aisp.cluster import STREAM_SLOT

    frames = 240
    video = make_video(tmp_path / "clip.mp4", frames=frames)
    head = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "node:__internal_head__" in n["Resources"])

    @ray.remote(num_cpus=0, resources={STREAM_SLOT: NODE_ARGS["resources"][STREAM_SLOT]})
    class SlotHolder:  # keeps the head's slots busy: the stream lands on a node that can be removed
        def ping(self) -> bool:
            return True

    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    holder = SlotHolder.options(scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False)).remote()
    ray.get(holder.ping.remote(), timeout=30)
    try:
        with cluster_api(ray_cluster, pg_url, tmp_path / "data", fake_model_cost_ms=20.0) as client:
            r = client.post("/api/streams", json={"id": "file-1", "source": str(video), "models": ["fake"]})
            assert r.status_code == 201, r.text
            first_node = r.json()["node_id"]
            positions = client.store.stream_positions
            wait_for(lambda: (p := positions.get("file-1")) is not None and p.position >= 40, 30,
                     "a committed position")
            at_removal = positions.get("file-1").position
            assert at_removal < frames - 40, "the stream ran too fast to be moved mid-way"
            ray_cluster.remove_node(cluster_node(ray_cluster, first_node))
            try:
                wait_for(lambda: client.get("/api/streams/file-1").json()["state"] in ("stopped", "failed"),
                         60, "the file stream to end")
                body = client.get("/api/streams/file-1").json()
                assert body["state"] == "stopped", body
                assert body["node_id"] != first_node
            finally:
                ray_cluster.add_node(**NODE_ARGS)
                ray_cluster.wait_for_nodes()
            final = positions.get("file-1")
            windows = client.store.event_log.query(stream_id="file-1", limit=10_000)
            local = single_machine_run(video, tmp_path)
            assert local.frames == frames
            assert final.position == frames and final.frames == local.frames
            assert sum(w.frames for w in windows) == local.frames
            assert sum(w.detections for w in windows) == local.detections
    finally:
        ray.kill(holder)


def test_stream_actors_outlive_the_api_and_a_new_api_finds_them(ray_cluster, pg_url, tmp_path):
    try:
        with cluster_api(ray_cluster, pg_url, tmp_path / "data", keep_streams=True) as client:
            r = client.post("/api/streams", json={"id": "keep-1", "source": "demo:live", "models": ["fake"],
                                                  "max_fps": 5})
            assert r.status_code == 201, r.text
            first = client.cluster.streams.info("keep-1")
        # the API is gone; the detached actor runs on
        handle = ray.get_actor("stream:keep-1", namespace="aisp")
        assert ray.get(handle.info.remote(), timeout=10)["incarnation"] == first["incarnation"]
        with cluster_api(ray_cluster, pg_url, tmp_path / "data") as client:
            body = client.get("/api/streams/keep-1").json()
            assert body["node_id"] == first["node_id"]
            again = client.cluster.streams.info("keep-1")
            assert again["incarnation"] == first["incarnation"]  # found, not recreated
            wait_for(lambda: client.get("/api/streams/keep-1").json()["state"] == "running", 30, "running")
    finally:
        kill_stream_actors()
