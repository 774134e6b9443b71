"""Fixtures for the dashboard's browser tests: a real ``aisp serve`` process and headless Chromium.

The server runs with the demo stream, auth on, and two keys (admin, viewer) created with
``aisp keys create`` before it starts. Chromium is the system one (``AISP_TEST_CHROMIUM``, default
``/usr/bin/chromium``), driven by Playwright; no browser is ever downloaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.ports import free_port as _free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("AISP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
START_TIMEOUT_S = 90.0


@dataclass
class Server:
    url: str
    admin_key: str
    viewer_key: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"



def _create_key(env: dict[str, str], role: str) -> str:
    """``aisp keys create`` against the server's data dir; the key is the last line it prints."""
    out = subprocess.run(
        [sys.executable, "-m", "aisp", "keys", "create", "--role", role, "--name", f"dashboard-test-{role}"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, f"aisp keys create failed ({out.returncode}): {out.stderr[-2000:]}"
    token = out.stdout.strip().splitlines()[-1].strip()
    assert token.startswith("aisp_"), f"unexpected key output: {out.stdout!r}"
    return token


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll ``/ready`` until 200; the pause between polls is a wait on the process itself."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url + "/ready", timeout=2.0)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:300]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.25)
        if proc.poll() is not None:
            raise RuntimeError(f"aisp serve exited with code {proc.returncode} before it was ready")
    raise RuntimeError(f"aisp serve not ready after {timeout:.0f} s: {last}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    data_dir.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "AISP_DEMO": "1",
        "AISP_AUTH": "on",
        "AISP_DATA_DIR": str(data_dir),
        "AISP_HOST": "127.0.0.1",
        "AISP_PORT": str(port),
        "AISP_SNAPSHOT_INTERVAL_SECONDS": "1",
        "AISP_LOG_LEVEL": "INFO",
    }
    env.pop("AISP_CONFIG", None)
    admin, viewer = _create_key(env, "admin"), _create_key(env, "viewer")
    log_path = data_dir.parent / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aisp", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir.parent,
        )
    srv = Server(f"http://127.0.0.1:{port}", admin, viewer, data_dir, log_path, proc)
    try:
        _wait_ready(srv.url, proc, START_TIMEOUT_S)
    except RuntimeError as exc:
        proc.kill()
        proc.wait()
        pytest.fail(f"{exc}\n--- server log ---\n{srv.log_tail()}")
    yield srv
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"aisp serve did not stop within 30 s of SIGTERM\n{srv.log_tail()}")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    exe = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    require_service(exe is not None, f"Chromium not found at {CHROMIUM} (set AISP_TEST_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service(False, "playwright is not installed (pip install 'aisp[dev]')")
        raise
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()
