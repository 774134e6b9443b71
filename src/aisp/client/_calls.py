"""Each API call as data: a :class:`Call` says what to send and how to read the answer.

The sync and async clients both execute these (``Client._call`` / ``AsyncClient._call``), so the
paths, parameters, retry rules and parsing are written once. ``idempotent`` marks the calls that
may be repeated after a 503 or a broken connection: every ``GET``, and ``POST
/api/frames/process`` (it changes nothing on the server: the same image gives the same answer,
and an ``OVERLOADED`` refusal is answered before any work). Writes (create, start, stop, delete,
load, cancel, submit) are sent once; a connection that could not be opened at all is retried for
every call, since nothing reached the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from aisp.client import _types as T
from aisp.errors import ValidationError

__all__ = ["Call", "Reply", "frames", "seg", "events_params", "parse_events_page", "EventsPage"]


@dataclass(frozen=True)
class Reply:
    """What a transport hands to a parser: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise ValidationError(
                f"the server's answer is not JSON ({len(self.body)} bytes, "
                f"{self.headers.get('content-type', 'no content type')})"
            ) from None


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] | None = None
    idempotent: bool = False
    parse: Callable[[Reply], Any] = Reply.json
    #: sent through the client's lean keep-alive channel when it has one (:mod:`aisp.client._wire`)
    fast: bool = False


def seg(value: str, what: str) -> str:
    """One path segment (an id or a name), percent-encoded so it can never leave its place."""
    if not isinstance(value, str) or not value or len(value) > 256:
        raise ValidationError(f"{what}: expected a non-empty string of at most 256 characters, got {value!r}",
                              field=what)
    return quote(value, safe="")


def _models(models: Sequence[str] | str) -> list[str]:
    names = [models] if isinstance(models, str) else list(models)
    names = [n.strip() for n in names if isinstance(n, str) and n.strip()]
    if not names:
        raise ValidationError("models: expected at least one model name", field="models",
                              expected="e.g. ['face_detection']")
    return names


# --- status ------------------------------------------------------------------------------
def get(path: str) -> Call:
    return Call("GET", path, idempotent=True)


# --- frames ------------------------------------------------------------------------------
def frames(
    body: bytes,
    content_type: str,
    models: Sequence[str] | str,
    *,
    annotate: bool,
    reduced_decode: bool | None,
) -> Call:
    params: dict[str, Any] = {"models": ",".join(_models(models))}
    if annotate:
        params["annotate"] = "true"
    if reduced_decode is not None:
        params["reduced_decode"] = "true" if reduced_decode else "false"

    def parse(reply: Reply) -> T.FrameResult:
        ctype = reply.headers.get("content-type", "")
        if ctype.startswith("image/"):
            total = reply.headers.get("x-inference-ms")
            return T.FrameResult(results={}, annotated=reply.body, total_ms=float(total) if total else None)
        return T.FrameResult.from_dict(reply.json())

    return Call(
        "POST",
        "/api/frames/process",
        params=params,
        content=body,
        headers={"Content-Type": content_type},
        idempotent=True,
        parse=parse,
        fast=True,
    )


# --- models and cache --------------------------------------------------------------------
def models_list() -> Call:
    return Call("GET", "/api/models", idempotent=True,
                parse=lambda r: [T.model_info(m) for m in r.json().get("models", [])])


def model_load(name: str) -> Call:
    return Call("POST", f"/api/models/{seg(name, 'model')}/load")


def model_unload(name: str) -> Call:
    return Call("DELETE", f"/api/models/{seg(name, 'model')}", parse=lambda r: list(r.json()["unloaded"]))


def models_prewarm(names: Sequence[str] | str) -> Call:
    return Call("POST", "/api/models/prewarm", json={"models": _models(names)})


def cache_stats() -> Call:
    return Call("GET", "/api/cache/stats", idempotent=True, parse=lambda r: T.CacheReport.from_dict(r.json()))


def cache_clear() -> Call:
    return Call("POST", "/api/cache/clear", parse=lambda r: int(r.json()["cleared"]))


# --- streams -----------------------------------------------------------------------------
def _stream(reply: Reply) -> T.StreamInfo:
    return T.StreamInfo.from_dict(reply.json())


def stream_create(spec: dict[str, Any]) -> Call:
    spec = {k: v for k, v in spec.items() if v is not None}
    spec["models"] = _models(spec.get("models") or [])
    return Call("POST", "/api/streams", json=spec, parse=_stream)


def stream_get(stream_id: str) -> Call:
    return Call("GET", f"/api/streams/{seg(stream_id, 'stream_id')}", idempotent=True, parse=_stream)


def streams_list() -> Call:
    return Call("GET", "/api/streams", idempotent=True,
                parse=lambda r: [T.StreamInfo.from_dict(s) for s in r.json().get("streams", [])])


def stream_action(stream_id: str, action: str) -> Call:
    return Call("POST", f"/api/streams/{seg(stream_id, 'stream_id')}/{action}", parse=_stream)


def stream_delete(stream_id: str) -> Call:
    return Call("DELETE", f"/api/streams/{seg(stream_id, 'stream_id')}", parse=lambda r: None)


def ws_ticket(path: str) -> Call:
    return Call("POST", "/api/auth/ticket", json={"path": path})


# --- tasks -------------------------------------------------------------------------------
def _task(reply: Reply) -> T.TaskInfo:
    return T.TaskInfo.from_dict(reply.json())


def task_submit(spec: dict[str, Any]) -> Call:
    spec = {k: v for k, v in spec.items() if v is not None}
    spec["models"] = _models(spec.get("models") or [])
    return Call("POST", "/api/tasks", json=spec, parse=_task)


def task_get(task_id: str) -> Call:
    return Call("GET", f"/api/tasks/{seg(task_id, 'task_id')}", idempotent=True, parse=_task)


def tasks_list(state: str | None, limit: int, offset: int) -> Call:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if state:
        params["state"] = state
    return Call("GET", "/api/tasks", params=params, idempotent=True,
                parse=lambda r: [T.TaskInfo.from_dict(t) for t in r.json().get("tasks", [])])


def task_action(task_id: str, action: str) -> Call:
    return Call("POST", f"/api/tasks/{seg(task_id, 'task_id')}/{action}", parse=_task)


def task_download_path(task_id: str, what: str) -> str:
    return f"/api/tasks/{seg(task_id, 'task_id')}/{what}"


def parse_task_lines(lines: Sequence[bytes]) -> list[T.StreamResult]:
    """The per-frame lines of a task's ``events.jsonl`` as typed results."""
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise ValidationError(f"task events: line {i + 1} is not JSON") from None
        out.append(T.StreamResult.from_dict({"seq": data.get("index", i), **data}))
    return out


# --- events ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventsPage:
    """One page of ``GET /api/events``: the events and the cursor of the next page (None: last)."""

    events: list[Any]  # aisp.events.Event
    next_cursor: str | None


def _when(value: Any, name: str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValidationError(f"{name}: expected a datetime, epoch seconds or an ISO 8601 string, got {value!r}",
                          field=name)


def events_params(
    *,
    stream: str | None,
    label: str | None,
    type: str | None,
    since: Any,
    until: Any,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    if not 1 <= int(limit) <= 1000:
        raise ValidationError(f"limit: expected 1..1000, got {limit}", field="limit")
    params: dict[str, Any] = {"limit": int(limit)}
    for name, value in (("stream", stream), ("label", label), ("type", type), ("cursor", cursor)):
        if value is not None:
            params[name] = str(value)
    if since is not None:
        params["since"] = _when(since, "since")
    if until is not None:
        params["until"] = _when(until, "until")
    return params


def events_page(params: Mapping[str, Any]) -> Call:
    return Call("GET", "/api/events", params=dict(params), idempotent=True, parse=parse_events_page)


def parse_events_page(reply: Reply) -> EventsPage:
    """``{"events": [...], "next_cursor": "..." | null}`` (``cursor`` or ``next`` are read too)."""
    from aisp.events import Event

    doc = reply.json()
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise ValidationError("GET /api/events: expected an object with an 'events' list")
    cursor = doc.get("next_cursor", doc.get("next", doc.get("cursor")))
    return EventsPage([Event.from_dict(e) for e in doc["events"]], str(cursor) if cursor else None)
