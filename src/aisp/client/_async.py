""":class:`AsyncClient`: the asyncio client (httpx ``AsyncClient``), the same calls awaited."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx

from aisp.client import _calls as C
from aisp.client import _watch as W
from aisp.client._config import ClientConfig, RetryPolicy
from aisp.client._encode import ImageInput, encode_image
from aisp.client._errors import RemoteUnavailableError, WaitTimeoutError, error_from_response
from aisp.client._resources import Cache, Models, StreamsBase, TasksBase
from aisp.client._sync import _filters, _may_retry, _retry_after, _unavailable
from aisp.client._types import FrameResult, StreamResult, TaskInfo
from aisp.errors import AISPError

__all__ = ["AsyncClient"]

log = logging.getLogger("aisp.client")


class AsyncClient:
    """The :class:`~aisp.client.Client` for asyncio: every call is awaited
    (``await client.process(...)``, ``await client.streams.list()``), ``streams.watch`` and
    ``events`` are async iterators. Use ``async with AsyncClient(...) as client``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Any = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(
            base_url, api_key, timeout=timeout, connect_timeout=connect_timeout, retry=retry, environ=environ
        )
        self._sleep = sleep
        self._clock = clock
        self._ticket_route: bool | None = None
        self._http = httpx.AsyncClient(
            base_url=self.config.base_url,
            headers=self.config.headers(),
            timeout=httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout),
            transport=transport,
            follow_redirects=False,
            limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        self.models = Models(self)
        self.cache = Cache(self)
        self.streams = AsyncStreams(self)
        self.tasks = AsyncTasks(self)
        self.events = AsyncEvents(self)

    def __repr__(self) -> str:
        key = "set" if self.config.api_key else "none"
        return f"AsyncClient(base_url={self.config.base_url!r}, api_key={key})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def health(self) -> dict[str, Any]:
        return await self._call(C.get("/health"))

    async def status(self) -> dict[str, Any]:
        return await self._call(C.get("/api/status"))

    async def whoami(self) -> dict[str, Any]:
        return await self._call(C.get("/api/auth/whoami"))

    async def process(
        self,
        image: ImageInput,
        models: Sequence[str] | str,
        *,
        annotate: bool = False,
        format: str = "jpeg",
        quality: int = 90,
        reduced_decode: bool | None = None,
    ) -> FrameResult:
        """See :meth:`aisp.client.Client.process`."""
        body, ctype = encode_image(image, format=format, quality=quality)
        call = C.frames(body, ctype, models, annotate=annotate, reduced_decode=reduced_decode)
        return await self._call(call)

    async def _call(self, call: C.Call) -> Any:
        return call.parse(await self._send(call))

    async def _send(self, call: C.Call) -> C.Reply:
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self._http.request(
                    call.method, call.path, params=call.params, json=call.json, content=call.content,
                    headers=call.headers,
                )
            except httpx.TransportError as exc:
                if _may_retry(call, exc) and attempt < policy.attempts:
                    delay = policy.delay(attempt)
                    log.debug("%s %s: %s; retry %d in %.2f s", call.method, call.path, type(exc).__name__,
                             attempt, delay)
                    await self._sleep(delay)
                    continue
                raise _unavailable(exc, self.config.base_url, call) from None
            if resp.status_code < 400:
                return C.Reply(resp.status_code, resp.headers, resp.content)
            err = error_from_response(resp.status_code, resp.content, resp.headers,
                                      method=call.method, url=call.path)
            if resp.status_code == 503 and call.idempotent and attempt < policy.attempts:
                delay = policy.delay(attempt, _retry_after(resp.headers))
                log.debug("%s %s: 503 %s; retry %d in %.2f s", call.method, call.path, err.name, attempt,
                         delay)
                await self._sleep(delay)
                continue
            raise err

    async def _download(self, path: str, dest: Path | None) -> bytes | Path:
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._http.stream("GET", path) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        err = error_from_response(resp.status_code, resp.content, resp.headers,
                                                  method="GET", url=path)
                        if resp.status_code == 503 and attempt < policy.attempts:
                            await self._sleep(policy.delay(attempt, _retry_after(resp.headers)))
                            continue
                        raise err
                    if dest is None:
                        return await resp.aread()
                    dest = Path(dest).expanduser()
                    tmp = dest.with_name(dest.name + ".part")
                    try:
                        with open(tmp, "wb") as f:  # noqa: ASYNC230 - local file, small writes
                            async for chunk in resp.aiter_bytes():
                                f.write(chunk)
                        tmp.replace(dest)
                    finally:
                        tmp.unlink(missing_ok=True)
                    return dest
            except httpx.TransportError as exc:
                if attempt < policy.attempts:
                    await self._sleep(policy.delay(attempt))
                    continue
                raise _unavailable(exc, self.config.base_url, C.get(path)) from None

    async def _ws_auth(self, path: str, query: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
        if self._ticket_route is not False and self.config.api_key:
            try:
                ticket = await self._call(C.ws_ticket(path))
                self._ticket_route = True
                return W.ticket_url(self.config.ws_base, path, str(ticket["ticket"]), query), {}
            except AISPError as exc:
                if exc.status_code not in W.TICKET_ABSENT:
                    raise
                self._ticket_route = False
        headers = {"X-API-Key": self.config.api_key} if self.config.api_key else {}
        return W.ticket_url(self.config.ws_base, path, None, query), headers


class AsyncStreams(StreamsBase):
    __doc__ = StreamsBase.__doc__

    def watch(
        self,
        stream_id: str,
        *,
        reconnect: bool = True,
        max_reconnects: int | None = None,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        open_timeout: float = 10.0,
    ) -> AsyncIterator[StreamResult]:
        """See :meth:`aisp.client._sync.Streams.watch`; an async iterator."""
        path = f"/ws/streams/{C.seg(stream_id, 'stream_id')}"
        return _follow(self._client, path, None, W.parse_message, f"stream '{stream_id}'",
                       reconnect, max_reconnects, backoff, max_backoff, open_timeout)


async def _follow(
    client: AsyncClient,
    path: str,
    query: dict[str, str] | None,
    parse: Callable[[str | bytes], Any],
    what: str,
    reconnect: bool,
    max_reconnects: int | None,
    backoff: float,
    max_backoff: float,
    open_timeout: float,
) -> AsyncIterator[Any]:
    """See :func:`aisp.client._sync._follow`."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

    failures = 0
    while True:
        url, headers = await client._ws_auth(path, query)
        try:
            async with connect(url, **W.connect_kwargs(headers, open_timeout)) as ws:
                async for raw in ws:
                    item = parse(raw)
                    if item is W.END:
                        return
                    if item is not None:
                        failures = 0
                        yield item
            lost: Exception = ConnectionError("the server closed the WebSocket")
        except InvalidURI as exc:
            raise RemoteUnavailableError(f"bad WebSocket URL: {exc}") from None
        except InvalidHandshake as exc:
            err = W.handshake_error(exc, path)
            if err is not None:
                raise err from None
            lost = exc
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            lost = exc
        failures += 1
        if not reconnect or (max_reconnects is not None and failures > max_reconnects):
            raise RemoteUnavailableError(
                f"{what}: WebSocket lost ({type(lost).__name__}) and not reopened", url=client.config.base_url
            )
        delay = W.backoff(failures, backoff, max_backoff)
        log.info("%s: WebSocket lost (%s); reconnecting in %.1f s", what, type(lost).__name__, delay)
        await client._sleep(delay)


class AsyncTasks(TasksBase):
    __doc__ = TasksBase.__doc__

    async def wait(
        self,
        task_id: str,
        *,
        progress: Callable[[TaskInfo], Any] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
    ) -> TaskInfo:
        """See :meth:`aisp.client._sync.Tasks.wait`; ``progress`` may be a coroutine function."""
        client: AsyncClient = self._client
        deadline = None if timeout is None else client._clock() + timeout
        last = None
        while True:
            info: TaskInfo = await self.get(task_id)
            mark = (info.state, info.progress, info.frames_done)
            if progress is not None and mark != last:
                out = progress(info)
                if hasattr(out, "__await__"):
                    await out
            last = mark
            if info.done:
                return info
            left = None if deadline is None else deadline - client._clock()
            if left is not None and left <= 0:
                raise WaitTimeoutError(
                    f"task '{task_id}' still {info.state} at {info.progress:.1f}% after {timeout} s",
                    details={"task": task_id, "state": info.state},
                )
            await client._sleep(poll if left is None else min(poll, left))

    async def download_events(
        self, task_id: str, path: str | Path | None = None
    ) -> list[StreamResult] | Path:
        dest = None if path is None else Path(path)
        data = await self._client._download(C.task_download_path(task_id, "events"), dest)
        if isinstance(data, Path):
            return data
        return C.parse_task_lines(data.splitlines())

    async def download_video(self, task_id: str, path: str | Path) -> Path:
        return await self._client._download(C.task_download_path(task_id, "video"), Path(path))


class AsyncEvents:
    """``GET /api/events`` (see :class:`aisp.client._sync.Events`), as an async iterator."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def page(
        self,
        *,
        stream: str | None = None,
        label: str | None = None,
        type: str | None = None,
        since: Any = None,
        until: Any = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> C.EventsPage:
        params = C.events_params(stream=stream, label=label, type=type, since=since, until=until,
                                 limit=limit, cursor=cursor)
        return await self._client._call(C.events_page(params))

    async def __call__(
        self,
        *,
        stream: str | None = None,
        label: str | None = None,
        type: str | None = None,
        since: Any = None,
        until: Any = None,
        page_size: int = 100,
        max_events: int | None = None,
    ) -> AsyncIterator[Any]:
        cursor, seen = None, 0
        while True:
            page = await self.page(stream=stream, label=label, type=type, since=since, until=until,
                                   limit=page_size, cursor=cursor)
            for event in page.events:
                yield event
                seen += 1
                if max_events is not None and seen >= max_events:
                    return
            if not page.next_cursor or not page.events:
                return
            if page.next_cursor == cursor:
                raise RemoteUnavailableError(f"GET /api/events returned the same cursor twice ({cursor!r})")
            cursor = page.next_cursor

    iter = __call__

    def watch(
        self,
        *,
        stream: str | None = None,
        label: str | None = None,
        type: str | None = None,
        reconnect: bool = True,
        max_reconnects: int | None = None,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        open_timeout: float = 10.0,
    ) -> AsyncIterator[Any]:
        """See :meth:`aisp.client._sync.Events.watch`; an async iterator."""
        query = _filters(stream=stream, label=label, type=type)
        return _follow(self._client, "/ws/events", query, W.parse_event_message, "events",
                       reconnect, max_reconnects, backoff, max_backoff, open_timeout)
