"""A throwaway Mosquitto broker for the benchmarks (Debian's ``mosquitto`` package).

:class:`Mosquitto` writes a configuration (anonymous, no persistence, no log) to a temporary
directory, runs ``mosquitto -c <conf>`` on a free loopback port and waits until the port accepts
connections; :meth:`Mosquitto.stop` terminates it (SIGKILL if it hangs) and removes the directory.
:func:`mosquitto` is the context manager the benchmarks use: it yields None when no binary is
installed, and always stops the broker. The tests have their own, richer helper
(``tests/delivery/mosquitto.py``: users, TLS, restarts with persistence).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Mosquitto", "find_mosquitto", "mosquitto", "port_open"]

log = logging.getLogger("aisp.bench")


def find_mosquitto() -> str | None:
    """The ``mosquitto`` binary: on the PATH, or Debian's ``/usr/sbin/mosquitto``."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on ``127.0.0.1:port`` (the tests' brokers use it too)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto:
    """One broker on ``127.0.0.1:<port>``; :meth:`start`, then :meth:`stop`."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.dir: Path | None = None
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start and wait until the port accepts connections; RuntimeError (broker stopped, its
        directory removed) if it exits or does not listen within ``timeout``."""
        if self.proc is not None:
            raise RuntimeError("mosquitto is already running")
        self.dir = Path(tempfile.mkdtemp(prefix="aisp-bench-mqtt-"))
        self.port = _free_port()
        conf = self.dir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        f"user {pwd.getpwuid(os.getuid()).pw_name}\nlog_dest none\n"
                        "max_queued_messages 100000\n")
        try:
            self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            deadline = time.monotonic() + timeout
            while not port_open(self.port):
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
                    code = self.proc.returncode
                    raise RuntimeError(f"mosquitto exited at start (code {code}): {err[-300:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout} s")
                time.sleep(0.05)  # polling a port with a deadline: mosquitto has no readiness signal
        except BaseException:
            self.stop()
            raise
        log.debug("bench broker: mosquitto pid %s on %s", self.proc.pid, self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the broker (SIGKILL after ``timeout``) and remove its directory. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
            if proc.stderr is not None:
                proc.stderr.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@contextmanager
def mosquitto(binary: str | None = None) -> Iterator[Mosquitto | None]:
    """A started broker (None when no ``mosquitto`` binary is installed), stopped on exit."""
    binary = binary or find_mosquitto()
    if binary is None:
        yield None
        return
    broker = Mosquitto(binary)
    try:
        yield broker.start()
    finally:
        broker.stop()
