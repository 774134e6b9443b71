"""Must show: SIGKILL a real ``aisp serve`` in the middle of a task, restart it, find the task
``interrupted`` with its progress kept, and complete it with ``POST /api/tasks/{id}/retry``.

Also checks that nothing accepted is lost: the task's events file holds every frame exactly once
after the resumed attempt. Waits poll HTTP with deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from aisp.store import Store
from tests.ports import free_port as _free_port

ROOT = Path(__file__).resolve().parents[2]
FRAMES = 300
COST_MS = 20.0
DEADLINE = 90.0



def _poll(fn, what: str, timeout: float = DEADLINE, interval: float = 0.05):
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        threading.Event().wait(interval)  # polling a remote condition with a deadline


class Server:
    def __init__(self, data_dir: Path, port: int, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
        env.update({"AISP_DATA_DIR": str(data_dir), "AISP_PORT": str(port), "AISP_WORKERS": "1",
                    "AISP_AUTH": "on", "AISP_SNAPSHOT_INTERVAL_SECONDS": "3600"})
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "store" / "slow_serve.py"), str(COST_MS), "serve"],
            env=env, cwd=str(data_dir), stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{port}"

    def wait_ready(self, client: httpx.Client) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}"
            try:
                return client.get(f"{self.base}/ready").status_code == 200
            except httpx.TransportError:
                return False

        _poll(ready, "the server to be ready", interval=0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        finally:
            self.log.close()


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory):
    """Run the scenario once: start, submit, SIGKILL mid-task, restart, retry, wait for the end."""
    from aisp.settings import load_settings
    from tests.pipeline.helpers import write_video

    tmp_path = tmp_path_factory.mktemp("crash")
    data_dir = tmp_path / "data"
    (data_dir / "media").mkdir(parents=True)  # the API opens files only inside AISP_MEDIA_DIRS
    video = write_video(data_dir / "media" / "long.mp4", n=FRAMES)
    with Store(settings=load_settings(environ={}, data_dir=data_dir)) as store:
        _, key = store.keys.create("admin", "crash-test")
    log_path = tmp_path / "server.log"
    client = httpx.Client(headers={"X-API-Key": key}, timeout=10)
    server = Server(data_dir, _free_port(), log_path)
    out: dict = {"log": log_path}
    try:
        server.wait_ready(client)
        r = client.post(f"{server.base}/api/tasks", json={"source": str(video), "models": ["slow_fake"],
                                                          "video": False})
        assert r.status_code == 201, r.text
        task_id = r.json()["id"]

        def mid_way():
            body = client.get(f"{server.base}/api/tasks/{task_id}").json()
            running = body["state"] == "running" and body["frames_done"] >= FRAMES // 10
            return body if running and body["progress"] < 60 else None

        out["seen"] = _poll(mid_way, "the task to be part done")
        os.kill(server.proc.pid, signal.SIGKILL)
        out["kill_rc"] = server.stop()

        server = Server(data_dir, _free_port(), log_path)
        server.wait_ready(client)
        out["after"] = client.get(f"{server.base}/api/tasks/{task_id}").json()
        r = client.post(f"{server.base}/api/tasks/{task_id}/retry")
        out["retry"] = (r.status_code, r.json())

        def finished():
            body = client.get(f"{server.base}/api/tasks/{task_id}").json()
            return body if body["state"] in ("completed", "failed", "cancelled", "interrupted") else None

        out["done"] = _poll(finished, "the retried task to finish")
        ev = client.get(f"{server.base}/api/tasks/{task_id}/events")
        out["events"] = (ev.status_code, ev.text)
        out["term_rc"] = server.stop()
    finally:
        if server.proc.poll() is None:
            server.stop(signal.SIGKILL)
        client.close()
    return out


@pytest.mark.slow
def test_sigkill_mid_task_then_restart_finds_it_interrupted_and_retry_completes(crash_run):
    seen, after = crash_run["seen"], crash_run["after"]
    assert crash_run["kill_rc"] == -signal.SIGKILL
    assert after["state"] == "interrupted", after
    # progress kept
    assert FRAMES // 10 <= seen["frames_done"] <= after["frames_done"] < FRAMES, (seen, after)
    assert after["progress"] == pytest.approx(100.0 * after["frames_done"] / FRAMES, abs=0.01)
    assert after["frames_total"] == FRAMES and after["attempts"] == 1 and "running" in after["error"]

    status, body = crash_run["retry"]
    assert status == 200 and body["state"] in ("queued", "running"), body
    done = crash_run["done"]
    assert done["state"] == "completed", done
    assert done["progress"] == 100.0 and done["frames_done"] == FRAMES and done["attempts"] == 2
    assert crash_run["term_rc"] == 0  # and the restarted server still shuts down cleanly


@pytest.mark.slow
def test_no_frame_is_lost_or_doubled_across_the_crash(crash_run):
    status, text = crash_run["events"]
    assert status == 200
    indices = [json.loads(line)["index"] for line in text.splitlines() if line.strip()]
    missing = sorted(set(range(FRAMES)) - set(indices))
    assert sorted(indices) == list(range(FRAMES)), (
        f"missing {len(missing)} frames {missing[:10]}..., duplicated {len(indices) - len(set(indices))}; "
        f"resumed at {crash_run['after']['frames_done']}")
