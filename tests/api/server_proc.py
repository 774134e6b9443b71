"""A real ``aisp serve`` process for tests: a free port, a temporary data dir, a known admin key,
its whole log captured, and always stopped.

Usage::

    from tests.api.server_proc import running_server

    with running_server(tmp_path, env={"AISP_LOG_LEVEL": "DEBUG"}) as srv:
        httpx.get(srv.url("/api/status"), headers=srv.auth)   # admin key in a header
        srv.wait_for(r"some log line")                        # wait on the log, never sleep
    srv.log_text()                                            # everything it logged

or as a module fixture: ``yield from serve_fixture(tmp_path_factory.mktemp("x"), env=...)``.

The admin key is the first one the server mints itself (written to ``<data_dir>/initial-admin-key``,
never logged). :meth:`ServerProc.stop` sends SIGTERM, waits, and kills after a deadline; the
context manager calls it whatever happens. The server's stdout and stderr are read on a thread
into :attr:`ServerProc.lines` (and :attr:`ServerProc.log`), so the pipe never fills.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.ports import free_port

__all__ = ["ServerProc", "free_port", "start_server", "running_server", "serve_fixture"]

KEY_FILE = "initial-admin-key"



@dataclass
class ServerProc:
    proc: subprocess.Popen
    port: int
    data_dir: Path
    host: str = "127.0.0.1"
    admin_key: str = ""
    lines: queue.Queue = field(default_factory=queue.Queue)
    log: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        """The admin key as a header."""
        return {"X-API-Key": self.admin_key}

    def url(self, path: str) -> str:
        return self.base + path

    def log_text(self) -> str:
        return "".join(self.log)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 60.0) -> re.Match[str]:
        """The first log line matching ``pattern`` (already logged, or within ``timeout``)."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        for line in list(self.log):
            if m := rx.search(line):
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                tail = "".join(self.log[-40:])
                raise AssertionError(f"no log line matching {rx.pattern!r}; log tail:\n{tail}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("the server exited; log tail:\n" + "".join(self.log[-40:]))
            if m := rx.search(line):
                return m

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(30)


def start_server(
    data_dir: Path, *, env: Mapping[str, str] | None = None, args: tuple[str, ...] = (),
    ready_timeout: float = 120.0, want_key: bool = True,
) -> ServerProc:
    """Start ``python -m aisp serve`` and wait until it listens (and has minted its admin key,
    unless ``want_key`` is false or auth is off). The caller must :meth:`ServerProc.stop` it."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    full_env.update({
        "AISP_DATA_DIR": str(data_dir),
        "AISP_LOG_LEVEL": "INFO",
        "AISP_INFERENCE_THREADS": "2",
        "AISP_SNAPSHOT_INTERVAL_SECONDS": "3600",
        "PYTHONUNBUFFERED": "1",
    })
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "aisp", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env, text=True,
        errors="replace",
    )
    srv = ServerProc(proc, port, Path(data_dir))

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            srv.log.append(line)
            srv.lines.put(line)
        srv.lines.put(None)

    threading.Thread(target=pump, name="aisp-serve-log", daemon=True).start()
    try:
        srv.wait_for(r"Uvicorn running on", timeout=ready_timeout)
        if want_key and full_env.get("AISP_AUTH", "on") != "off":
            srv.wait_for(rf"written to .*{KEY_FILE}", timeout=ready_timeout)
            srv.admin_key = (Path(data_dir) / KEY_FILE).read_text().strip()
    except BaseException:
        srv.stop(10)
        raise
    return srv


@contextmanager
def running_server(data_dir: Path, **kwargs: object) -> Iterator[ServerProc]:
    """:func:`start_server` as a context manager that always stops the server."""
    srv = start_server(data_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield srv
    finally:
        srv.stop()


def serve_fixture(data_dir: Path, **kwargs: object) -> Iterator[ServerProc]:
    """For a pytest fixture: ``yield from serve_fixture(path, env=...)``."""
    with running_server(data_dir, **kwargs) as srv:
        yield srv
