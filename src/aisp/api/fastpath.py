"""``FramesFastPath``: ``POST /api/frames/process`` without FastAPI's per-request machinery.

The frames route is the API's hot path: a client streaming frames calls it hundreds of times a
second. Routing through the route table, building a ``Request``, solving the dependency graph
(auth, three query parameters), the exception and exit-stack middleware and ``Response`` cost
the event loop about 0.9 ms per request on the 2-core reference machine (measured: 1.6 ms of
event-loop CPU per request through the route, 0.7 ms through this). With 8 requests in flight
on 2 cores, every millisecond of CPU per request adds about 4 ms to each request's latency.

This pure ASGI middleware sits inside :class:`aisp.api.middleware.RequestMiddleware` (so request
ids, the upload limit, per-route metrics and the last-resort 500 apply as for any route) and in
front of the router. It answers a request itself only when it can tell, from the headers and
query string alone, that the route would accept it:

* a raw image body (``image/*``, ``application/octet-stream`` or no Content-Type);
* ``models`` given once and naming known models; ``annotate`` and ``reduced_decode``, if given,
  once each and ``true``/``false``/``1``/``0``;
* auth off, or an admin key already verified within the last few seconds
  (:meth:`aisp.api.auth.Authenticator.peek`, no store lookup).

Everything else (multipart uploads, a key not seen yet, a viewer key, a malformed or missing
parameter) is passed on to the route, which answers it, errors included, in the usual way. Both
do the work with :func:`aisp.api.frame_processing.process_image`, and errors raised while doing it are
answered with the same unified body (:func:`aisp.api.errors.aisp_error_response`), so a client
cannot tell which one answered except by speed. ``AISP_API_FAST_PATH=false`` turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi.security.utils import get_authorization_scheme_param

from aisp.api import modelops
from aisp.api.errors import aisp_error_response
from aisp.api.frame_processing import is_raw_image_type, process_image
from aisp.errors import AISPError

__all__ = ["FramesFastPath", "PATH"]

PATH = "/api/frames/process"
_FLAGS = {"true": True, "1": True, "false": False, "0": False}
_MAX_MODELS_LEN = 1000  # the route's max_length for ``models``


@dataclass(frozen=True)
class _RouteTemplate:
    """What Starlette's routing leaves in ``scope["route"]`` that the request metrics read."""

    path: str
    methods: frozenset[str]


_ROUTE = _RouteTemplate(PATH, frozenset({"POST"}))


class FramesFastPath:
    def __init__(self, app: Any, *, ctx: Any, enabled: bool = True) -> None:
        self.app = app
        self.ctx = ctx
        self.enabled = enabled
        self.handled = 0  # requests answered here
        self.passed = 0  # requests for PATH passed on to the route
        ctx.fast_path = self

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self.enabled or scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        plan = self._plan(scope)
        if plan is None:
            self.passed += 1
            await self.app(scope, receive, send)
            return
        self.handled += 1
        names, annotate, reduced_decode = plan
        scope["route"] = _ROUTE  # the request metrics read the route template from here
        try:
            data = await _read_body(receive)
            if data is None:  # the client went away before sending its image
                return
            answer = await process_image(
                self.ctx, data, names, annotate=annotate, reduced_decode=reduced_decode
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

    def _plan(self, scope: dict[str, Any]) -> tuple[list[str], bool, bool] | None:
        """(model names, annotate, reduced_decode) when this request is one to answer here."""
        ctx = self.ctx
        if ctx.inference is None or ctx.auth is None:
            return None
        ctype = api_key = authorization = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name == b"content-type" and ctype is None:
                ctype = value.decode("latin-1")
            elif name == b"x-api-key" and api_key is None:
                api_key = value.decode("latin-1")
            elif name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
        if not is_raw_image_type((ctype or "").split(";")[0].strip().lower()):
            return None
        principal = ctx.auth.peek(api_key or _bearer_token(authorization))
        if principal is None or principal.role != "admin":
            return None
        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
            params.setdefault(key, []).append(value)
        models = params.get("models")
        if models is None or len(models) != 1 or len(models[0]) > _MAX_MODELS_LEN:
            return None
        flags = []
        for key in ("annotate", "reduced_decode"):
            given = params.get(key)
            default = key == "reduced_decode"
            if given is None:
                flags.append(default)
            elif len(given) == 1 and given[0].lower() in _FLAGS:
                flags.append(_FLAGS[given[0].lower()])
            else:
                return None
        try:
            names = modelops.check_models(modelops.parse_model_list(models[0]))
        except AISPError:
            return None
        return names, flags[0], flags[1]


def _bearer_token(authorization: str | None) -> str | None:
    """The credentials of ``Authorization: Bearer <token>``, as FastAPI's ``HTTPBearer`` reads them."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


async def _read_body(receive: Any) -> bytes | None:
    """The whole request body, or None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
