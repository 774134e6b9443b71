"""BootApp: /health answers while the real app is still being built; the lifespan is bridged."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aisp.api.boot import BootApp


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


async def _get(app: BootApp, path: str) -> tuple[int, dict[str, Any]]:
    rec = _Recorder()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, rec)
    return rec.messages[0]["status"], json.loads(rec.messages[1]["body"])


def test_health_before_the_app_is_built_and_lifespan_bridge() -> None:
    gate = threading.Event()
    events: list[str] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.startup"
            events.append("startup")
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            events.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps({"real": scope["path"]}).encode()})

    def factory() -> Any:
        assert gate.wait(30)
        return inner

    boot = BootApp(factory)

    async def scenario() -> None:
        lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        out = _Recorder()
        lifespan_in.put_nowait({"type": "lifespan.startup"})
        task = asyncio.ensure_future(boot({"type": "lifespan"}, lifespan_in.get, out))
        while not out.messages:
            await asyncio.sleep(0)  # yield to the bridge: it acknowledges startup without the app
        assert out.messages[0]["type"] == "lifespan.startup.complete"
        status, body = await _get(boot, "/health")
        assert status == 200 and body["status"] == "ok"
        status, body = await _get(boot, "/ready")
        assert status == 503 and "app" in body["pending"]
        gate.set()
        status, body = await _get(boot, "/api/x")  # waits for the app, then forwards
        assert (status, body) == (200, {"real": "/api/x"})
        assert (await _get(boot, "/health"))[1] == {"real": "/health"}
        lifespan_in.put_nowait({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 30)
        assert out.messages[-1]["type"] == "lifespan.shutdown.complete"

    asyncio.run(scenario())
    assert events == ["startup", "shutdown"]


def test_build_failure_is_reported() -> None:
    failures: list[BaseException] = []

    def factory() -> Any:
        raise ImportError("broken install (test)")

    boot = BootApp(factory, on_failure=failures.append)
    boot.start()
    assert boot.built.wait(30)
    assert boot.app is None and isinstance(failures[0], ImportError)
