"""``BootApp``: the ASGI app uvicorn serves, answering ``/health`` before the real app exists.

Importing FastAPI, pydantic and building the app's models takes most of a second on a small
machine. So ``aisp serve`` hands uvicorn this small wrapper: it starts building the real app
(:func:`aisp.api.create_app`) on a thread as soon as uvicorn starts, answers ``GET /health`` (200, the process
is alive) and ``GET /ready`` (503, ``pending: ["app", ...]``) itself until the app is built,
then forwards everything to it. Other requests that arrive meanwhile wait for the app.

The lifespan is bridged: uvicorn's ``startup`` is acknowledged at once (so the socket is bound
without waiting for the imports), the real app's lifespan startup runs as soon as it is built,
and uvicorn's ``shutdown`` runs the real app's shutdown. If building the app fails, the error
is logged and ``on_failure`` is called (the server then exits with code 1).

This module imports nothing heavy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["BootApp"]

log = logging.getLogger("aisp.server")


class BootApp:
    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        on_failure: Callable[[BaseException], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._on_failure = on_failure
        self._clock = clock
        self._t0 = clock()
        self.app: Any = None
        self.error: BaseException | None = None
        self.built = threading.Event()
        self._started = False
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """Start building the app (once). Called at lifespan startup, after uvicorn has loaded its
        protocol and loop modules, so the import thread does not slow those down (GIL)."""
        with self._start_lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._build, name="aisp-build-app", daemon=True).start()

    def _build(self) -> None:
        t0 = time.perf_counter()
        try:
            self.app = self._factory()
            log.info("app built in %.0f ms", (time.perf_counter() - t0) * 1000)
        except BaseException as exc:  # noqa: BLE001 - reported, then the server exits
            self.error = exc
            log.critical("could not build the app: %s", exc, exc_info=True)
            if self._on_failure is not None:
                self._on_failure(exc)
        finally:
            self.built.set()

    async def wait_app(self) -> Any:
        self.start()
        if not self.built.is_set():
            await asyncio.get_running_loop().run_in_executor(None, self.built.wait)
        if self.app is None:
            raise RuntimeError(f"the app could not be built: {self.error}")
        return self.app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if self.app is None and scope["type"] == "http" and scope.get("path") in ("/health", "/ready"):
            await self._answer_while_building(scope, send)
            return
        app = await self.wait_app()
        await app(scope, receive, send)

    async def _answer_while_building(self, scope: dict[str, Any], send: Any) -> None:
        uptime = round(max(0.0, self._clock() - self._t0), 3)
        if scope["path"] == "/health":
            status, body = 200, {"status": "ok", "uptime_s": uptime}
        else:
            status = 503
            body = {
                "ready": False,
                "pending": ["app", "store", "prewarm"],
                "components": {"app": "running"},
                "errors": {},
                "timings_ms": {},
            }
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", uuid.uuid4().hex[:16].encode()),
        ]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        self.start()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        inbox.put_nowait({"type": "lifespan.startup"})
        started = asyncio.Event()
        finished = asyncio.Event()

        async def inner_send(msg: dict[str, Any]) -> None:
            kind = msg["type"]
            if kind == "lifespan.startup.failed":
                log.critical("app startup failed: %s", msg.get("message"))
                if self._on_failure is not None:
                    self._on_failure(RuntimeError(msg.get("message") or "startup failed"))
            if kind.startswith("lifespan.startup."):
                started.set()
            elif kind.startswith("lifespan.shutdown."):
                finished.set()

        async def run_inner() -> None:
            try:
                app = await self.wait_app()
                await app(scope, inbox.get, inner_send)
            except Exception:  # noqa: BLE001 - logged; the bridge must still answer uvicorn
                if self.app is not None:
                    log.exception("app lifespan failed")
            finally:
                started.set()
                finished.set()

        task = asyncio.get_running_loop().create_task(run_inner())
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await started.wait()  # the app's startup must have run before its shutdown
        inbox.put_nowait({"type": "lifespan.shutdown"})
        await finished.wait()
        if not task.done():
            task.cancel()
        await send({"type": "lifespan.shutdown.complete"})
