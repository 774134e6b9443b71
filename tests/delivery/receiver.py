"""A real HTTP receiver on loopback for the webhook tests: records each request and answers with
the next status of a script (then ``default``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    def __init__(self, statuses: list[int] | None = None, *, default: int = 200,
                 headers: dict[str, str] | None = None, body: bytes = b"ok") -> None:
        self.requests: list[Request] = []
        self.statuses = list(statuses or [])
        self.default = default
        self.reply_headers = dict(headers or {})
        self.reply_body = body
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._cond:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append(Request(self.path, headers, body, time.time()))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                    receiver._cond.notify_all()
                self.send_response(status)
                for k, v in receiver.reply_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(receiver.reply_body)))
                self.end_headers()
                self.wfile.write(receiver.reply_body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, predicate: Callable[[list[Request]], bool], timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
