"""``FramesFastPath``: ``POST /api/frames/process`` without FastAPI's per-request machinery.

The frames route is the API's hot path: a client streaming frames calls it hundreds of times a
second. Routing through the route table, building a ``Request``, solving the dependency graph
(auth, the query model), the exception and exit-stack middleware and ``Response`` cost the event
loop CPU on every request, and with several requests in flight on few cores every millisecond of
CPU per request adds to each request's latency (``docs/PERFORMANCE.md`` has the measurements).

This pure ASGI middleware sits inside :class:`aisp.api.middleware.RequestMiddleware` (so request
ids, the upload limit, per-route metrics and the last-resort 500 apply as for any route) and in
front of the router. It answers a request itself only when it can tell, from the headers and
query string alone, that the route would accept it:

* a raw image body (``image/*``, ``application/octet-stream`` or no Content-Type);
* a valid :class:`~aisp.api.schemas.FramesQuery` (the same declaration and parser as the route's)
  naming known models, with no parameter of it given twice (the route answers those);
* auth off, or an admin key already verified within the last few seconds: the key is read by
  :func:`aisp.api.auth.extract_api_key` and the role checked by :func:`aisp.api.auth.check_role`,
  as for the route, but only the authenticator's memo is asked
  (:meth:`aisp.api.auth.Authenticator.peek`, no store lookup).

Everything else (multipart uploads, a key not seen yet, a viewer key, a malformed or missing
parameter) is passed on to the route, which answers it, errors included, in the usual way. Both
do the work with :func:`aisp.api.frame_processing.process_image`, and errors raised while doing it are
answered with the same unified body (:func:`aisp.api.errors.aisp_error_response`), so a client
cannot tell which one answered except by speed. ``AISP_API_FAST_PATH=false`` turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from aisp.api import modelops
from aisp.api.auth import check_role, extract_api_key
from aisp.api.context import AppContext
from aisp.api.errors import aisp_error_response
from aisp.api.frame_processing import is_raw_image_type, process_image
from aisp.api.schemas import FramesQuery
from aisp.errors import AISPError

__all__ = ["FramesFastPath", "PATH"]

PATH = "/api/frames/process"
_QUERY_NAMES = frozenset(FramesQuery.model_fields)


@dataclass(frozen=True)
class _RouteTemplate:
    """What Starlette's routing leaves in ``scope["route"]`` that the request metrics read."""

    path: str
    methods: frozenset[str]


_ROUTE = _RouteTemplate(PATH, frozenset({"POST"}))


@dataclass(frozen=True)
class _Plan:
    names: list[str]
    query: FramesQuery


class FramesFastPath:
    def __init__(self, app: ASGIApp, *, ctx: AppContext, enabled: bool = True) -> None:
        self.app = app
        self.ctx = ctx
        self.enabled = enabled
        self.handled = 0  # requests answered here
        self.passed = 0  # requests for PATH passed on to the route
        # resolved once (a few system calls), not per request; the settings do not change
        self._model_dir = ctx.settings.resolved_model_dir
        ctx.fast_path = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        plan = self._plan(scope)
        if plan is None:
            self.passed += 1
            await self.app(scope, receive, send)
            return
        self.handled += 1
        scope["route"] = _ROUTE  # the request metrics read the route template from here
        try:
            data = await _read_body(receive)
            if data is None:  # the client went away before sending its image
                return
            answer = await process_image(
                self.ctx,
                data,
                plan.names,
                annotate=plan.query.annotate,
                reduced_decode=plan.query.reduced_decode,
            )
        except AISPError as exc:
            await aisp_error_response(exc, path=PATH, method="POST")(scope, receive, send)
            return
        headers = [
            (b"content-type", answer.media_type.encode("latin-1")),
            (b"content-length", str(len(answer.body)).encode("latin-1")),
        ]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _plan(self, scope: Scope) -> _Plan | None:
        """The checked model names and query when this request is one to answer here."""
        ctx = self.ctx
        if ctx.inference is None or ctx.auth is None:
            return None
        headers = Headers(scope=scope)
        if not is_raw_image_type(headers.get("content-type", "").split(";")[0].strip().lower()):
            return None
        # read as Starlette's QueryParams reads it (a dict of the pairs: the last value counts),
        # without building the multi-dict
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        params = dict(pairs)
        # the security gate (aisp.api.gate) has already authenticated the request
        principal = (scope.get("state") or {}).get("principal") or ctx.auth.peek(extract_api_key(headers))
        if principal is None:
            return None
        given = [name for name, _ in pairs if name in _QUERY_NAMES]
        if len(given) != len(set(given)):
            return None  # a parameter given twice: left to the route
        try:
            check_role(principal, "POST")
            query = FramesQuery.parse(params)
            names = modelops.check_models(query.names(), self._model_dir)
        except AISPError:  # the route gives the same answer, with its error body
            return None
        return _Plan(names, query)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
