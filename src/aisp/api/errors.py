"""Exception handlers: every error leaves the API in the one unified body.

One handler per base class (:class:`aisp.errors.AISPError`, Starlette's ``HTTPException``,
FastAPI's ``RequestValidationError``). Request validation errors are answered **400
VALIDATION_ERROR** (not FastAPI's default 422), the same status that AISP's own
:class:`~aisp.errors.ValidationError` has, so a client sees one code for "your input is wrong"
whether pydantic or AISP caught it. :func:`invalid_request` builds that error from pydantic's
errors, for the handler and for :meth:`aisp.api.schemas.FramesQuery.parse` (the fast path's
reading of the frames query), so both word it the same. Unexpected exceptions are turned into
500 by the request middleware (:mod:`aisp.api.middleware`), which logs them with the request id;
no stack trace reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException as StarletteHTTPException

from aisp.errors import AISPError, ValidationError, error_body

__all__ = ["install_error_handlers", "error_response", "aisp_error_response", "invalid_request", "HTTP_NAMES"]

log = logging.getLogger("aisp.api")

HTTP_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA",
    422: "UNPROCESSABLE",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _aisp_headers(exc: AISPError) -> dict[str, str] | None:
    retry = exc.details.get("retry_after") if exc.status_code in (429, 503) else None
    if retry is None and exc.status_code == 503:
        retry = 1
    return {"Retry-After": str(max(1, int(round(float(retry)))))} if retry is not None else None


def aisp_error_response(exc: AISPError, *, path: str, method: str) -> JSONResponse:
    """The unified answer for an AISP error (5xx ones are logged)."""
    if exc.status_code >= 500:
        log.warning("%s %s -> %s %s: %s", method, path, exc.status_code, exc.name, exc)
    return error_response(exc.status_code, exc.to_body(path=path, method=method), _aisp_headers(exc))


async def _aisp_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AISPError)
    return aisp_error_response(exc, path=request.url.path, method=request.method)


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) else HTTP_NAMES.get(code, "error")
    if code == 404 and message == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    elif code == 405 and message == "Method Not Allowed":
        message = f"method {request.method} is not allowed on {request.url.path}"
    body = error_body(
        code=code,
        name=HTTP_NAMES.get(code, f"HTTP_{code}"),
        message=message,
        path=request.url.path,
        method=request.method,
    )
    return error_response(code, body, dict(exc.headers) if exc.headers else None)


def invalid_request(errors: Iterable[ErrorDetails], *, loc: Sequence[str] = ()) -> ValidationError:
    """The 400 ``VALIDATION_ERROR`` for pydantic's ``errors()``, each location prefixed by ``loc``
    (e.g. ``("query",)``); the message names the first five, ``details`` has the field of the first
    and every error as ``{"loc", "msg", "type"}``."""
    cleaned = [
        {
            "loc": [*loc, *(str(x) for x in err["loc"])],
            "msg": err["msg"],
            "type": err["type"],
        }
        for err in errors
    ]
    parts = [f"{'.'.join(e['loc']) or 'request'}: {e['msg']}" for e in cleaned[:5]]
    first = cleaned[0]["loc"] if cleaned else []
    field = ".".join(first[1:] if len(first) > 1 else first) or None
    return ValidationError(
        "invalid request: " + "; ".join(parts), details={"field": field, "errors": cleaned}
    )


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return aisp_error_response(invalid_request(exc.errors()), path=request.url.path, method=request.method)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AISPError, _aisp_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
