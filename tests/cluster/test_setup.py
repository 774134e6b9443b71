"""Set-up and safety of cluster mode, without a running cluster: the CLI refuses SQLite with a
cluster address (exit 2, no traceback), single-machine imports leave Ray out, an unreachable
cluster fails the "cluster" start-up step quickly (``/ready`` 503) instead of hanging in
``ray.init``, and the frames path's small pieces (path choice, errors from a replica)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aisp.errors import ClusterError
from aisp.settings import load_settings
from tests.api.conftest import assert_error, local_client
from tests.ports import free_port

pytestmark = pytest.mark.timeout(180)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AISP_", "RAY_ADDRESS"))}
    env.update({"AISP_DATA_DIR": str(tmp_path / "data"), "AISP_PORT": str(free_port()), **extra})
    return env


def test_serve_with_sqlite_and_a_cluster_address_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "aisp", "serve"], env=_env(tmp_path, AISP_RAY_ADDRESS="auto"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, (out.stdout, out.stderr)
    text = out.stdout + out.stderr
    assert "Traceback" not in text
    assert "error:" in out.stderr and "AISP_DATABASE_URL" in out.stderr and "PostgreSQL" in out.stderr


def test_single_machine_imports_leave_ray_out() -> None:
    code = (
        "import json, sys, tempfile\n"
        "import aisp.api, aisp.server, aisp.cli.main\n"
        "from aisp.api import create_app\n"
        "from aisp.settings import load_settings\n"
        "create_app(load_settings(environ={}, data_dir=tempfile.mkdtemp()))\n"
        "found = [m for m in sys.modules if m == 'ray' or m.startswith(('ray.', 'aisp.cluster'))]\n"
        "print(json.dumps(sorted(found)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_probe_refuses_a_closed_port_quickly_and_passes_an_open_one() -> None:
    from aisp.cluster.connection import probe_address

    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(ClusterError) as info:
        probe_address(f"127.0.0.1:{port}", timeout=2.0)
    assert time.monotonic() - t0 < 10
    assert info.value.status_code == 503 and "AISP_RAY_ADDRESS" in info.value.message
    assert info.value.details["address"] == f"127.0.0.1:{port}"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        probe_address(f"ray://127.0.0.1:{listener.getsockname()[1]}", timeout=2.0)


def test_unreachable_cluster_fails_the_cluster_step_and_ready_says_so(tmp_path: Path, pg_url: str) -> None:
    import ray

    from aisp.cluster import create_cluster_app

    assert not ray.is_initialized()
    address = f"127.0.0.1:{free_port()}"
    settings = load_settings(environ={}, data_dir=tmp_path / "data", ray_address=address, database_url=pg_url,
                             drain_timeout_seconds=10.0, snapshot_interval_seconds=3600.0)
    app = create_cluster_app(settings)
    t0 = time.monotonic()
    with local_client(app, raise_server_exceptions=False) as client:
        assert app.state.lifecycle.wait_started(90), "startup did not finish"
        assert time.monotonic() - t0 < 60  # bounded: ray.init alone would retry for minutes
        ctx = app.state.ctx
        assert ctx.components["cluster"] == "failed" and ctx.components["store"] == "done"
        assert "ClusterError" in ctx.errors["cluster"] and address in ctx.errors["cluster"]
        r = client.get("/ready")
        assert r.status_code == 503
        body = r.json()
        assert "cluster" in body["pending"] and body["errors"]["cluster"] == "ClusterError"
        _, admin = ctx.store.keys.create("admin", "test-admin")
        err = assert_error(client.get("/api/cluster", headers={"X-API-Key": admin}), 503, "CLUSTER_ERROR")
        assert err["details"]["state"] == "failed"
    assert not ray.is_initialized()


@pytest.mark.parametrize(("setting", "alive", "path"), [
    ("auto", 1, "local"), ("auto", 2, "serve"), ("serve", 1, "serve"), ("local", 3, "local"),
])
def test_frames_path_follows_the_setting_and_the_nodes(setting: str, alive: int, path: str,
                                                       tmp_path: Path) -> None:
    from aisp.cluster.frames import frames_path

    settings = load_settings(environ={}, data_dir=tmp_path, ray_frames=setting)
    assert frames_path(settings, alive) == path


def test_a_replica_error_keeps_its_status_name_and_details() -> None:
    from aisp.cluster.frames import remote_error
    from aisp.errors import MissingDependencyError, PayloadTooLargeError

    for exc in (PayloadTooLargeError("too big", limit=10, actual=20),
                MissingDependencyError("onnxruntime", "onnx", model_name="onnx:x.onnx")):
        sent: dict[str, Any] = {"status": exc.status_code, "name": exc.name, "message": exc.message,
                                "details": exc.details}
        back = remote_error(json.loads(json.dumps(sent)))
        a, b = back.to_body(path="/p", method="POST"), exc.to_body(path="/p", method="POST")
        a["error"].pop("timestamp"), b["error"].pop("timestamp")
        assert a == b and back.status_code == exc.status_code


def test_replica_settings_hold_no_secret(tmp_path: Path) -> None:
    from aisp.cluster.frames import replica_settings

    settings = load_settings(environ={}, data_dir=tmp_path, ray_address="auto",
                             database_url="postgresql+psycopg://aisp:s3cret@db/aisp",
                             mqtt_url="mqtt://u:hunter2@broker:1883")
    out = replica_settings(settings)
    assert out.ray_address == "" and out.data_dir.is_absolute()
    dumped = out.model_dump_json()
    assert "s3cret" not in dumped and "hunter2" not in dumped


def test_serve_on_a_local_ray_answers_frames_through_serve_and_stops_cleanly(tmp_path: Path) -> None:
    """``aisp serve`` with ``AISP_RAY_ADDRESS=local``: its own one-node Ray (even beside other Ray
    instances on this machine), the frames answered by a Serve replica, and SIGTERM a clean exit 0.
    Guards three failures seen: joining another Ray on the host, the local Ray killed when the
    start-up thread ended (PR_SET_PDEATHSIG), and SIGABRT mid-shutdown (absl's SIGTERM alarm)."""
    import signal

    import httpx

    port = int(_env(tmp_path)["AISP_PORT"])
    env = _env(tmp_path, AISP_RAY_ADDRESS="local", AISP_RAY_FRAMES="serve", AISP_AUTH="off",
               AISP_PORT=str(port), AISP_PREWARM="face_detection", RAY_AUTH_MODE="disabled")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "aisp", "serve", "--host", "127.0.0.1"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"{base}/ready", timeout=2)
                if ready.status_code == 200 or ready.json()["components"].get("cluster") == "failed":
                    break
            except httpx.HTTPError:
                pass
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        assert ready is not None and ready.status_code == 200, (ready and ready.text, log.read_text()[-3000:])
        jpeg = _jpeg()
        for _ in range(3):
            r = httpx.post(f"{base}/api/frames/process?models=face_detection", content=jpeg,
                           headers={"Content-Type": "image/jpeg"}, timeout=60)
            assert r.status_code == 200 and "x-aisp-replica" in r.headers, r.text
        described = httpx.get(f"{base}/api/cluster", timeout=10).json()
        assert described["frames"] == {"path": "serve", "replicas": 1}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert "server stopped" in text and "deleted" in text and "Traceback" not in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _jpeg() -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".jpg", np.full((240, 320, 3), 128, np.uint8))
    assert ok
    return buf.tobytes()
