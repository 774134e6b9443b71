"""``streams.watch`` against a scripted WebSocket server on loopback: a dropped connection is
reopened (with the key in the handshake header, never in the URL), results keep coming, and
``end`` stops the iterator; an error body is raised, not retried."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from aisp import errors as E
from aisp.client import AsyncClient, Client

KEY = "aisp_0123456789ab_watchsecret"


def _result(seq: int) -> str:
    det = {"box": [1, 2, 3, 4], "confidence": 0.9, "class_id": 0, "label": "fake"}
    fake = {"model": "fake", "inference_ms": 0.5, "num_detections": 1, "detections": [det]}
    return json.dumps({"type": "result", "stream": "s", "seq": seq, "state": "running", "stream_id": "s",
                       "index": seq, "pts": None, "captured_at": 1.0, "width": 8, "height": 8,
                       "num_detections": 1, "results": {"fake": fake}})


@contextmanager
def ws_server(script: Callable[[int, object], None]) -> Iterator[tuple[int, list[dict]]]:
    from websockets.sync.server import serve

    seen: list[dict] = []
    count = [0]

    def handler(ws: object) -> None:
        count[0] += 1
        req = ws.request  # type: ignore[attr-defined]
        seen.append({"path": req.path, "key": req.headers.get("X-API-Key")})
        script(count[0], ws)

    with serve(handler, "127.0.0.1", 0) as server:
        port = server.socket.getsockname()[1]
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        try:
            yield port, seen
        finally:
            server.shutdown()
            t.join(10)


def _no_tickets(request: httpx.Request) -> httpx.Response:
    body = E.error_body(code=404, name="NOT_FOUND", message="no route for POST /api/auth/ticket")
    return httpx.Response(404, json=body)


def _drop_then_end(n: int, ws: object) -> None:
    if n == 1:
        ws.send(_result(1))  # type: ignore[attr-defined]
        ws.close(1011, "going away")  # type: ignore[attr-defined]
    else:
        ws.send(_result(2))  # type: ignore[attr-defined]
        ws.send(json.dumps({"type": "end", "stream": "s"}))  # type: ignore[attr-defined]


def test_sync_watch_reconnects_after_a_drop() -> None:
    waits: list[float] = []
    with ws_server(_drop_then_end) as (port, seen):
        with Client(f"http://127.0.0.1:{port}", KEY, transport=httpx.MockTransport(_no_tickets),
                    sleep=waits.append) as c:
            got = list(c.streams.watch("s", backoff=0.2))
    assert [r.seq for r in got] == [1, 2]
    assert got[0].results["fake"].detections.xyxy.tolist() == [[1, 2, 3, 4]]
    assert len(waits) == 1 and 0.1 <= waits[0] <= 0.2
    assert seen == [{"path": "/ws/streams/s", "key": KEY}] * 2


def test_async_watch_reconnects_after_a_drop() -> None:
    import anyio

    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    async def main(port: int) -> list[int]:
        async with AsyncClient(f"http://127.0.0.1:{port}", KEY, transport=httpx.MockTransport(_no_tickets),
                               sleep=sleep) as c:
            return [r.seq async for r in c.streams.watch("s")]

    with ws_server(_drop_then_end) as (port, seen):
        assert anyio.run(main, port) == [1, 2]
    assert len(waits) == 1 and len(seen) == 2


def test_watch_gives_up_after_max_reconnects() -> None:
    def always_drop(n: int, ws: object) -> None:
        ws.close(1011, "no")  # type: ignore[attr-defined]

    waits: list[float] = []
    with ws_server(always_drop) as (port, seen):
        with Client(f"http://127.0.0.1:{port}", KEY, transport=httpx.MockTransport(_no_tickets),
                    sleep=waits.append) as c:
            with pytest.raises(E.AISPError, match="not reopened"):
                list(c.streams.watch("s", max_reconnects=2, backoff=1.0, max_backoff=1.5))
    assert len(seen) == 3 and len(waits) == 2 and all(w <= 1.5 for w in waits)


def test_an_error_body_is_raised_not_retried() -> None:
    def refuse(n: int, ws: object) -> None:
        body = E.NotFoundError("stream 's' not found", kind="stream", key="s").to_body()
        ws.send(json.dumps(body))  # type: ignore[attr-defined]
        ws.close(4404)  # type: ignore[attr-defined]

    with ws_server(refuse) as (port, seen):
        with Client(f"http://127.0.0.1:{port}", KEY, transport=httpx.MockTransport(_no_tickets),
                    sleep=lambda s: None) as c:
            with pytest.raises(E.NotFoundError) as info:
                list(c.streams.watch("s"))
    assert info.value.kind == "stream" and len(seen) == 1


def test_events_watch_with_filters_and_a_ticket(caplog: pytest.LogCaptureFixture) -> None:
    """Where the server offers tickets, the handshake carries ``?ticket=`` (asked for that path)
    and no key; the filters travel as query parameters; ``dropped`` is logged, not yielded."""
    asked: list[dict] = []

    def tickets(request: httpx.Request) -> httpx.Response:
        asked.append(json.loads(request.content))
        return httpx.Response(201, json={"ticket": f"t{len(asked)}", "expires_at": 1})

    def events(n: int, ws: object) -> None:
        ev = {"id": "e1", "type": "enter", "stream_id": "cam", "time": 5.0, "zone": "door", "label": "person"}
        ws.send(json.dumps({"type": "dropped", "count": 3}))  # type: ignore[attr-defined]
        ws.send(json.dumps({"type": "event", "event": ev}))  # type: ignore[attr-defined]
        ws.send(json.dumps({"type": "end"}))  # type: ignore[attr-defined]

    with ws_server(events) as (port, seen):
        with Client(f"http://127.0.0.1:{port}", KEY, transport=httpx.MockTransport(tickets)) as c:
            got = list(c.events.watch(stream="cam", type="enter"))
    assert [(e.id, e.type, e.zone) for e in got] == [("e1", "enter", "door")]
    assert asked == [{"path": "/ws/events"}]
    assert seen == [{"path": "/ws/events?stream=cam&type=enter&ticket=t1", "key": None}]
    assert "dropped 3 events" in caplog.text


def test_async_events_watch() -> None:
    import anyio

    def events(n: int, ws: object) -> None:
        ev = {"id": "e2", "type": "cross", "stream_id": "cam", "time": 6.0, "direction": "in"}
        ws.send(json.dumps({"type": "event", "event": ev}))  # type: ignore[attr-defined]
        ws.send(json.dumps({"type": "end"}))  # type: ignore[attr-defined]

    async def main(port: int) -> list[str]:
        mock = httpx.MockTransport(_no_tickets)
        async with AsyncClient(f"http://127.0.0.1:{port}", KEY, transport=mock) as c:
            return [e.direction async for e in c.events.watch(label="person")]

    with ws_server(events) as (port, seen):
        assert anyio.run(main, port) == ["in"]
    assert seen == [{"path": "/ws/events?label=person", "key": KEY}]
