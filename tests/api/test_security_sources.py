"""A real ``aisp serve`` on loopback, attacked the way issue 13 did (items 1, 8 and 9).

The server runs as a subprocess on a free port with its log at DEBUG. Its policy allows one
camera host, ``127.0.0.2`` (a loopback address of its own, so the test needs no network), and
nothing else: ``127.0.0.1`` stands for the internal services an attacker wants to reach.

- Item 1: ``/etc/passwd``, a path out of the media dir, a symlink out of it, ``tcp://...?listen=1``,
  ``http://127.0.0.1:PORT`` (with a real listener that must see no connection), ``concat:``,
  ``file:``, ``pipe:`` and ``data:`` are all refused 403 ``SOURCE_NOT_ALLOWED``, naming the
  setting; a file in the media dir (created at startup) runs; a missing file, a non-video file,
  a closed port and an open port all fail with the same text, so none of them tells anything.
- Item 8: a camera URL with a password is stored but shown and logged with ``***``: every read
  route, the dashboard feed and the whole DEBUG log are searched for the password.
- Item 9: a source with a newline and a NUL is refused, and the log has no forged line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aisp.store import Store
from tests.api.test_server import ServerProcess, spawn
from tests.pipeline.helpers import write_video
from tests.ports import free_port

PASSWORD = "s3cretPW"
DEADLINE = 90.0


def _poll(fn, what: str, timeout: float = DEADLINE):
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling a remote process's state, with a deadline


def _listener(host: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen(8)
    sock.setblocking(False)
    return sock


class _Hangup:
    """A port that is open: it accepts each connection and closes it at once (on its own thread)."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed: the test is over
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


def _closed_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, httpx.Client, Path]]:
    data_dir = tmp_path_factory.mktemp("secure")
    from aisp.settings import load_settings

    with Store(settings=load_settings(environ={}, data_dir=data_dir)) as store:
        _, key = store.keys.create("admin", "security-test")
    server = spawn(data_dir, free_port(), env_extra={
        "AISP_LOG_LEVEL": "DEBUG",
        "AISP_SOURCE_HOSTS": "127.0.0.2",
        "AISP_RECONNECT_INITIAL_DELAY_SECONDS": "0.05",
        "AISP_RECONNECT_MAX_DELAY_SECONDS": "0.1",
        "AISP_RECONNECT_MAX_ATTEMPTS": "3",
        "AISP_SNAPSHOT_INTERVAL_SECONDS": "3600",
    })
    client = httpx.Client(base_url=server.base, headers={"X-API-Key": key}, timeout=30)
    try:
        server.wait_for(r"Uvicorn running on", timeout=120)
        _poll(lambda: client.get("/ready").status_code == 200, "the server to be ready")
        yield server, client, data_dir
    finally:
        client.close()
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(30)
            except Exception:  # noqa: BLE001 - then kill it
                server.proc.kill()
                server.proc.wait(30)


def _refused(r: httpx.Response, setting: str) -> None:
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["name"] == "SOURCE_NOT_ALLOWED" and err["details"]["setting"] == setting, err
    assert setting in err["message"]


def _task_end(client: httpx.Client, task_id: str) -> dict:
    def ended():
        body = client.get(f"/api/tasks/{task_id}").json()
        return body if body["state"] in ("completed", "failed", "cancelled") else None

    return _poll(ended, f"task {task_id} to end")


def _stream_failed(client: httpx.Client, stream_id: str) -> dict:
    return _poll(lambda: (b := client.get(f"/api/streams/{stream_id}").json())["state"] == "failed" and b,
                 f"stream {stream_id} to fail")


def test_files_outside_the_media_dir_are_refused(served, tmp_path: Path) -> None:
    _server, client, data_dir = served
    media = data_dir / "media"
    assert media.is_dir()  # created at startup
    os.symlink("/etc/passwd", media / "passwd.mp4")
    for source in ("/etc/passwd", "../aisp.db", str(data_dir / "aisp.db"), "passwd.mp4", "/dev/video0"):
        _refused(client.post("/api/tasks", json={"source": source, "models": ["fake"]}), "AISP_MEDIA_DIRS")
        _refused(client.post("/api/streams", json={"source": source, "models": ["fake"]}), "AISP_MEDIA_DIRS")
    assert client.get("/api/tasks").json()["tasks"] == []  # nothing was queued


def test_schemes_and_hosts_are_refused_and_nothing_is_contacted(served) -> None:
    _server, client, _ = served
    internal = _listener("127.0.0.1")  # an internal service the attacker wants to reach
    port = internal.getsockname()[1]
    listen_port = _closed_port("127.0.0.1")
    try:
        for source in (f"tcp://127.0.0.1:{listen_port}?listen=1", f"udp://127.0.0.1:{port}",
                       "concat:/etc/passwd|/etc/hosts", "file:///etc/passwd", "pipe:0",
                       "data:text/plain,hello", f"srt://127.0.0.2:{port}"):
            _refused(client.post("/api/streams", json={"source": source, "models": ["fake"]}),
                     "AISP_SOURCE_SCHEMES")
            _refused(client.post("/api/tasks", json={"source": source, "models": ["fake"]}),
                     "AISP_SOURCE_SCHEMES")
        for source in (f"http://127.0.0.1:{port}/", f"rtsp://localhost:{port}/x", f"http://[::1]:{port}/",
                       "http://169.254.169.254/latest/meta-data/", f"http://127.0.0.1.nip.io:{port}/"):
            body = {"source": source, "models": ["fake"]}
            _refused(client.post("/api/streams", json=body), "AISP_SOURCE_HOSTS")
            _refused(client.post("/api/tasks", json=body), "AISP_SOURCE_HOSTS")
        # demuxer options in an allowed URL are refused too, by name (no setting allows them)
        body = {"source": f"rtsp://127.0.0.2:{port}/x?listen=1", "models": ["fake"]}
        r = client.post("/api/streams", json=body)
        err = r.json()["error"]
        assert r.status_code == 403 and err["name"] == "SOURCE_NOT_ALLOWED", r.text
        assert "'listen'" in err["message"] and "never accepted" in err["message"], err
        assert err["details"]["options"] == ["listen"] and "setting" not in err["details"], err
        with pytest.raises(BlockingIOError):
            internal.accept()  # no connection ever reached the internal service
        with socket.socket() as probe:  # and the server listens on no port the caller chose
            assert probe.connect_ex(("127.0.0.1", listen_port)) != 0
    finally:
        internal.close()


def test_a_file_in_the_media_dir_runs_and_failures_all_read_the_same(served) -> None:
    _server, client, data_dir = served
    media = data_dir / "media"
    write_video(media / "clip.mp4", n=20)
    r = client.post("/api/tasks", json={"source": "clip.mp4", "models": ["fake"]})
    assert r.status_code == 201, r.text
    done = _task_end(client, r.json()["id"])
    assert done["state"] == "completed" and done["frames_done"] == 20, done

    (media / "notes.mp4").write_bytes(os.urandom(2048))
    open_port = _Hangup("127.0.0.2")
    try:
        errors = {}
        for name, source in (("missing", "missing.mp4"), ("garbage", "notes.mp4"),
                             ("closed", f"http://127.0.0.2:{_closed_port('127.0.0.2')}/v.mjpg"),
                             ("open", f"http://127.0.0.2:{open_port.port}/v.mjpg")):
            task = client.post("/api/tasks", json={"source": source, "models": ["fake"]}).json()
            errors[name] = _task_end(client, task["id"])["error"]
        assert len(set(errors.values())) == 1, errors
        assert "missing.mp4" not in errors["missing"] and "refused" not in errors["closed"].lower()
        # streams: a closed and an open port end with the same last_error
        last = {}
        for name, port in (("closed", _closed_port("127.0.0.2")), ("open", open_port.port)):
            r = client.post("/api/streams", json={"id": f"probe-{name}", "source": f"rtsp://127.0.0.2:{port}/x",
                                                  "models": ["fake"]})
            assert r.status_code == 201, r.text
            last[name] = _stream_failed(client, f"probe-{name}")["last_error"]
        assert last["closed"] == last["open"], last
        assert open_port.accepted >= 2  # the open port was reached: the same text hid that
    finally:
        open_port.close()


def test_camera_passwords_and_control_characters_never_reach_a_reader_or_the_log(served) -> None:
    server, client, _ = served
    port = _closed_port("127.0.0.2")
    cam = f"rtsp://admin:{PASSWORD}@127.0.0.2:{port}/live"
    r = client.post("/api/streams", json={"id": "cam", "source": cam, "models": ["fake"]})
    assert r.status_code == 201 and PASSWORD not in r.text and "admin:***@" in r.text, r.text
    r = client.post("/api/tasks", json={"source": f"http://admin:{PASSWORD}@127.0.0.2:{port}/v.mp4",
                                        "models": ["fake"]})
    assert r.status_code == 201 and PASSWORD not in r.text
    task = _task_end(client, r.json()["id"])
    failed = _stream_failed(client, "cam")  # three reconnects, each logged
    assert "admin:***@" in failed["source"] and PASSWORD not in json.dumps(failed)

    # item 9: control characters in a source are refused, and forge no log line
    r = client.post("/api/tasks", json={"source": "clip.mp4\nFORGED INFO aisp: x\x00", "models": ["fake"]})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "source", r.text
    client.get("/api/streams/x%0AFORGED%00")

    bodies = [client.get(path).text for path in (
        "/api/streams", "/api/streams/cam", "/api/tasks", f"/api/tasks/{task['id']}", "/api/status",
        "/api/status/performance", "/api/history", "/api/history/events", "/metrics",
        "/api/tasks?state=failed",
    )]
    from websockets.sync.client import connect

    ws_url = server.base.replace("http://", "ws://") + "/ws/live"
    headers = {"X-API-Key": client.headers["X-API-Key"]}
    with connect(ws_url, additional_headers=headers, open_timeout=30) as ws:
        summary = ws.recv(timeout=30)
    bodies.append(str(summary))
    for body in bodies:
        assert PASSWORD not in body
    assert "admin:***@127.0.0.2" in bodies[0] and "admin:***@127.0.0.2" in bodies[-1]  # shown, redacted

    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(60)
    server.wait_for(r"shutdown finished|Finished server process", timeout=30)
    log = "".join(server.log)
    assert "admin:***@127.0.0.2" in log  # the URL was logged, redacted
    assert PASSWORD not in log
    assert not [line for line in log.splitlines() if line.startswith("FORGED")]
    assert "\x00" not in log


def test_the_cli_is_not_restricted(tmp_path: Path) -> None:
    """``aisp run`` runs as the local user: a file outside every media dir opens."""
    import subprocess
    import sys

    (tmp_path / "outside").mkdir()
    video = write_video(tmp_path / "outside" / "clip.mp4", n=7)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    env.update({"AISP_DATA_DIR": str(tmp_path / "data"), "AISP_MEDIA_DIRS": str(tmp_path / "media")})
    out = tmp_path / "events.jsonl"
    cmd = [sys.executable, "-m", "aisp", "run", str(video), "--model", "fake", "--events", str(out)]
    proc = subprocess.run(cmd,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(out.read_text().splitlines()) == 7
