""":class:`Client`: the blocking client (httpx, one connection pool reused by every call)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from aisp.client import _calls as C
from aisp.client import _watch as W
from aisp.client._config import ClientConfig, RetryPolicy
from aisp.client._encode import ImageInput, encode_image
from aisp.client._errors import RemoteUnavailableError, WaitTimeoutError, error_from_response
from aisp.client._resources import Cache, Models, StreamsBase, TasksBase
from aisp.client._types import FrameResult, StreamResult, TaskInfo
from aisp.client._wire import WireChannel, WireError
from aisp.errors import AISPError

__all__ = ["Client"]

log = logging.getLogger("aisp.client")


class Client:
    """A blocking client of one AISP server.

    >>> with Client("http://127.0.0.1:8000", api_key="aisp_...") as client:  # doctest: +SKIP
    ...     result = client.process("photo.jpg", models=["face_detection"])
    ...     result["face_detection"].detections.xyxy

    ``base_url`` and ``api_key`` default to ``AISP_URL`` and ``AISP_API_KEY``. ``timeout`` is the
    read/write timeout of one call and ``connect_timeout`` that of opening a connection (seconds);
    ``retry`` sets the retries of idempotent calls (:class:`~aisp.client.RetryPolicy`).
    ``transport`` is an httpx transport (e.g. ``httpx.MockTransport`` in tests). The client holds a
    connection pool: use it as a context manager, or call :meth:`close`.

    :meth:`process`, the call a client makes per frame, goes through a lean keep-alive channel
    (:mod:`aisp.client._wire`, a fraction of httpx's CPU per request) unless ``fast_frames=False``
    or a ``transport`` is given; every other call goes through httpx.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        environ: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        fast_frames: bool = True,
    ) -> None:
        self.config = ClientConfig.resolve(
            base_url, api_key, timeout=timeout, connect_timeout=connect_timeout, retry=retry, environ=environ
        )
        self._wire = (
            WireChannel(self.config.base_url, self.config.headers(), timeout=self.config.timeout,
                        connect_timeout=self.config.connect_timeout)
            if fast_frames and transport is None
            else None
        )
        self._sleep = sleep
        self._clock = clock
        self._ticket_route: bool | None = None  # None: not asked yet
        self._http = httpx.Client(
            base_url=self.config.base_url,
            headers=self.config.headers(),
            timeout=httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout),
            transport=transport,
            follow_redirects=False,
        )
        self.models = Models(self)
        self.cache = Cache(self)
        self.streams = Streams(self)
        self.tasks = Tasks(self)
        self.events = Events(self)

    def __repr__(self) -> str:
        key = "set" if self.config.api_key else "none"
        return f"Client(base_url={self.config.base_url!r}, api_key={key})"

    # --- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()
        if self._wire is not None:
            self._wire.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- calls -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._call(C.get("/health"))

    def status(self) -> dict[str, Any]:
        return self._call(C.get("/api/status"))

    def whoami(self) -> dict[str, Any]:
        return self._call(C.get("/api/auth/whoami"))

    def process(
        self,
        image: ImageInput,
        models: Sequence[str] | str,
        *,
        annotate: bool = False,
        format: str = "jpeg",
        quality: int = 90,
        reduced_decode: bool | None = None,
    ) -> FrameResult:
        """Run ``models`` on one image (a path, bytes, a PIL image or a numpy RGB array; see
        :func:`aisp.client._encode.encode_image`): a :class:`~aisp.client.FrameResult` whose
        ``results[name]`` are :class:`aisp.models.ModelResult` (``.detections.xyxy`` ...). With
        ``annotate=True`` the server sends the annotated JPEG instead of results
        (``.annotated`` bytes, ``.annotated_image()`` RGB array)."""
        body, ctype = encode_image(image, format=format, quality=quality)
        return self._call(C.frames(body, ctype, models, annotate=annotate, reduced_decode=reduced_decode))

    def _call(self, call: C.Call) -> Any:
        return call.parse(self._send(call))

    def _send(self, call: C.Call) -> C.Reply:
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._roundtrip(call)
            except (httpx.TransportError, WireError) as exc:
                if _may_retry(call, exc) and attempt < policy.attempts:
                    delay = policy.delay(attempt)
                    log.debug("%s %s: %s; retry %d in %.2f s", call.method, call.path, type(exc).__name__,
                             attempt, delay)
                    self._sleep(delay)
                    continue
                raise _unavailable(exc, self.config.base_url, call) from None
            if resp.status < 400:
                return resp
            err = error_from_response(resp.status, resp.body, resp.headers, method=call.method, url=call.path)
            if resp.status == 503 and call.idempotent and attempt < policy.attempts:
                delay = policy.delay(attempt, _retry_after(resp.headers))
                log.debug("%s %s: 503 %s; retry %d in %.2f s", call.method, call.path, err.name, attempt,
                         delay)
                self._sleep(delay)
                continue
            raise err

    def _roundtrip(self, call: C.Call) -> C.Reply:
        if call.fast and self._wire is not None and call.content is not None:
            r = self._wire.request(call.method, call.path, call.params, call.content, call.headers or {})
            return C.Reply(r.status, r.headers, r.body)
        resp = self._http.request(
            call.method, call.path, params=call.params, json=call.json, content=call.content,
            headers=call.headers,
        )
        return C.Reply(resp.status_code, resp.headers, resp.content)

    def _download(self, path: str, dest: Path | None) -> bytes | Path:
        """GET ``path`` into ``dest`` (streamed, through a temporary file renamed at the end) or
        into memory; retried like any GET until the first byte arrives."""
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._http.stream("GET", path) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        err = error_from_response(resp.status_code, resp.content, resp.headers,
                                                  method="GET", url=path)
                        if resp.status_code == 503 and attempt < policy.attempts:
                            self._sleep(policy.delay(attempt, _retry_after(resp.headers)))
                            continue
                        raise err
                    if dest is None:
                        return resp.read()
                    return _write_stream(resp.iter_bytes(), dest)
            except httpx.TransportError as exc:
                if attempt < policy.attempts:
                    self._sleep(policy.delay(attempt))
                    continue
                raise _unavailable(exc, self.config.base_url, C.get(path)) from None

    def _ws_auth(self, path: str, query: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
        """The WebSocket URL and handshake headers for ``path`` (a ticket where offered)."""
        if self._ticket_route is not False and self.config.api_key:
            try:
                ticket = self._call(C.ws_ticket(path))
                self._ticket_route = True
                return W.ticket_url(self.config.ws_base, path, str(ticket["ticket"]), query), {}
            except AISPError as exc:
                if exc.status_code not in W.TICKET_ABSENT:
                    raise
                log.debug("no WebSocket tickets here (%s): using the X-API-Key header", exc.status_code)
                self._ticket_route = False
        headers = {"X-API-Key": self.config.api_key} if self.config.api_key else {}
        return W.ticket_url(self.config.ws_base, path, None, query), headers


def _may_retry(call: C.Call, exc: Exception) -> bool:
    """Idempotent calls after any transport error; others only when no connection was made."""
    if isinstance(exc, WireError):
        return call.idempotent or not exc.connected
    return call.idempotent or isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _unavailable(exc: Exception, base: str, call: C.Call) -> RemoteUnavailableError:
    return RemoteUnavailableError(
        f"cannot reach the AISP server at {base} ({call.method} {call.path}): {type(exc).__name__}"
        + (f": {exc}" if str(exc) else ""),
        url=base,
    )


def _filters(**values: str | None) -> dict[str, str] | None:
    out = {k: str(v) for k, v in values.items() if v is not None}
    return out or None


def _write_stream(chunks: Iterator[bytes], dest: Path) -> Path:
    dest = Path(dest).expanduser()
    tmp = dest.with_name(dest.name + ".part")
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


class Streams(StreamsBase):
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
    ) -> Iterator[StreamResult]:
        """Yield each frame's typed results from ``/ws/streams/{id}`` until the stream ends
        (deleted, server stopping). A lost connection is reopened with exponential backoff
        (``backoff`` doubling up to ``max_backoff`` seconds; at most ``max_reconnects`` times in a
        row when set); errors the server names (unknown stream, bad key) are raised."""
        path = f"/ws/streams/{C.seg(stream_id, 'stream_id')}"
        return _follow(self._client, path, None, W.parse_message, f"stream '{stream_id}'",
                       reconnect, max_reconnects, backoff, max_backoff, open_timeout)


def _follow(
    client: Client,
    path: str,
    query: dict[str, str] | None,
    parse: Callable[[str | bytes], Any],
    what: str,
    reconnect: bool,
    max_reconnects: int | None,
    backoff: float,
    max_backoff: float,
    open_timeout: float,
) -> Iterator[Any]:
    """Follow a WebSocket: each item ``parse`` makes of a message, reconnecting (see
    :mod:`aisp.client._watch`) until :data:`~aisp.client._watch.END`."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
    from websockets.sync.client import connect

    failures = 0
    while True:
        url, headers = client._ws_auth(path, query)
        try:
            with connect(url, **W.connect_kwargs(headers, open_timeout)) as ws:
                for raw in ws:
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
        client._sleep(delay)


class Tasks(TasksBase):
    __doc__ = TasksBase.__doc__

    def wait(
        self,
        task_id: str,
        *,
        progress: Callable[[TaskInfo], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
    ) -> TaskInfo:
        """Poll until the task is completed, failed, cancelled or interrupted and return it;
        ``progress(task)`` is called whenever its progress or state changes. Raises
        :class:`~aisp.client.WaitTimeoutError` after ``timeout`` seconds (the task keeps running)."""
        client: Client = self._client
        deadline = None if timeout is None else client._clock() + timeout
        last = None
        while True:
            info: TaskInfo = self.get(task_id)
            mark = (info.state, info.progress, info.frames_done)
            if progress is not None and mark != last:
                progress(info)
            last = mark
            if info.done:
                return info
            left = None if deadline is None else deadline - client._clock()
            if left is not None and left <= 0:
                raise WaitTimeoutError(
                    f"task '{task_id}' still {info.state} at {info.progress:.1f}% after {timeout} s",
                    details={"task": task_id, "state": info.state},
                )
            client._sleep(poll if left is None else min(poll, left))

    def download_events(self, task_id: str, path: str | Path | None = None) -> list[StreamResult] | Path:
        """The per-frame results (typed), or written to ``path`` as JSON Lines (returns the path)."""
        dest = None if path is None else Path(path)
        data = self._client._download(C.task_download_path(task_id, "events"), dest)
        if isinstance(data, Path):
            return data
        return C.parse_task_lines(data.splitlines())

    def download_video(self, task_id: str, path: str | Path) -> Path:
        """The annotated MP4, streamed to ``path``."""
        return self._client._download(C.task_download_path(task_id, "video"), Path(path))


class Events:
    """``GET /api/events``: the events the server stored, filtered, page by page."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def page(
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
        """One page (``.events``, ``.next_cursor``)."""
        params = C.events_params(stream=stream, label=label, type=type, since=since, until=until,
                                 limit=limit, cursor=cursor)
        return self._client._call(C.events_page(params))

    def __call__(
        self,
        *,
        stream: str | None = None,
        label: str | None = None,
        type: str | None = None,
        since: Any = None,
        until: Any = None,
        page_size: int = 100,
        max_events: int | None = None,
    ) -> Iterator[Any]:
        """Every matching :class:`aisp.events.Event`, following the pages' cursors (at most
        ``max_events``)."""
        cursor, seen = None, 0
        while True:
            page = self.page(stream=stream, label=label, type=type, since=since, until=until,
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
    ) -> Iterator[Any]:
        """Live events (:class:`aisp.events.Event`) from ``WS /ws/events``, filtered by the server,
        reconnecting like :meth:`Streams.watch`. Events published while the connection was down
        are not replayed here: read them with :meth:`__call__` (``since=``)."""
        query = _filters(stream=stream, label=label, type=type)
        return _follow(self._client, "/ws/events", query, W.parse_event_message, "events",
                       reconnect, max_reconnects, backoff, max_backoff, open_timeout)
