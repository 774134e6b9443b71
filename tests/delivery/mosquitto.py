"""Throwaway Mosquitto brokers for the delivery tests (Debian's ``mosquitto`` package).

Each :class:`Broker` gets a free port and a temporary directory with its own configuration,
persistence file and log; :meth:`Broker.stop` stops it, and :meth:`Broker.start` after a stop
brings it back on the same port with its persisted state (retained messages, durable sessions),
which is how the tests take the broker away mid-stream. :func:`broker` is the context manager the
fixtures use: it always stops the broker and deletes the directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aisp.bench._mosquitto import find_mosquitto
from aisp.bench._mosquitto import port_open as _port_open
from tests.ports import free_port

MOSQUITTO = find_mosquitto()
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
OPENSSL = shutil.which("openssl")


class Broker:
    def __init__(self, *, users: dict[str, str] | None = None, tls: bool = False) -> None:
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="aisp-mqtt-test-"))
        self.port = free_port()
        self.users = users or {}
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if self.users else 'true'}",
            "persistence true",
            f"persistence_location {self.dir}/",
            "persistence_file broker.db",
            f"log_dest file {self.dir}/broker.log",
            "log_type all",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "max_queued_messages 100000",
        ]
        if self.users:
            if MOSQUITTO_PASSWD is None:
                raise RuntimeError("mosquitto_passwd is not installed")
            pw = self.dir / "passwd"
            pw.touch(mode=0o600)
            for user, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(pw), user, password], check=True,
                               capture_output=True, timeout=30)
            lines.append(f"password_file {pw}")
        self.tls = tls
        if tls:
            self._make_certificates()
            lines += [f"cafile {self.dir / 'ca.pem'}", f"certfile {self.dir / 'server.pem'}",
                      f"keyfile {self.dir / 'server.key'}", "tls_version tlsv1.2"]
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def _make_certificates(self) -> None:
        """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
        if OPENSSL is None:
            raise RuntimeError("openssl is not installed")
        d = self.dir

        def run(*args: str) -> None:
            subprocess.run([OPENSSL, *args], check=True, capture_output=True, timeout=60, cwd=d)

        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=aisp-test-ca")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
        (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Broker:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                raise RuntimeError(f"mosquitto exited at start: {err.strip()} {self.log()[-500:]}")
            if _port_open(self.port):
                return self
            time.sleep(0.05)  # polling a port with a deadline: mosquitto has no readiness signal
        self.stop()
        raise RuntimeError("mosquitto did not listen in time")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file), then wait; SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        if proc.stderr:
            proc.stderr.close()

    def log(self) -> str:
        path = self.dir / "broker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def broker(**options: object) -> Iterator[Broker]:
    b = Broker(**options)  # type: ignore[arg-type]
    try:
        yield b.start()
    finally:
        b.cleanup()
