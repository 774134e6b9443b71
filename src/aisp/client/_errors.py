"""Answers in the unified error body, turned back into the :mod:`aisp.errors` tree.

The server renders every error as ``{"status": "error", "error": {"code", "name", "message",
"details", ...}}``. :func:`error_from_response` builds the same class the library raises (by
``name``: a 404 ``NOT_FOUND`` for an unknown model is a :class:`~aisp.errors.NotFoundError` with
``kind == "model"``), with its message, ``details`` and context attributes (``.field``, ``.kind``,
``.key``, ``.retry_after``, ...). A name the client does not know (a newer server, or a plain HTTP
error such as ``METHOD_NOT_ALLOWED``) maps by status code to the nearest base class and keeps the
server's ``name``. Every error made here also carries ``.status_code`` (the real one) and
``.request_id`` (the server's ``X-Request-ID``, for its logs).

:class:`RemoteUnavailableError` and :class:`WaitTimeoutError` are the client's own: the server
could not be reached or the connection broke (after the retries a call is allowed), and a wait
that ran out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aisp import errors as E

__all__ = ["RemoteUnavailableError", "WaitTimeoutError", "error_from_response", "ERROR_CLASSES"]


class RemoteUnavailableError(E.AISPError, ConnectionError):
    """The AISP server could not be reached, or the connection broke (``.url``, ``.cause``)."""

    status_code = 503
    name = "REMOTE_UNAVAILABLE"

    def __init__(
        self, message: str, *, url: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        merged = dict(details or {})
        if url is not None:
            merged.setdefault("url", url)
        super().__init__(message, details=merged)
        self.url = url


class WaitTimeoutError(E.AISPError, TimeoutError):
    """A wait (``tasks.wait(timeout=...)``) ran out; the work goes on on the server."""

    status_code = 504
    name = "WAIT_TIMEOUT"


def _classes() -> dict[str, type[E.AISPError]]:
    out: dict[str, type[E.AISPError]] = {}
    for name in E.__all__:
        obj = getattr(E, name)
        if isinstance(obj, type) and issubclass(obj, E.AISPError):
            out[obj.name] = obj
    return out


#: error ``name`` -> class, for every class of :mod:`aisp.errors`
ERROR_CLASSES: dict[str, type[E.AISPError]] = _classes()

#: status code -> class, for names the client does not know
_BY_STATUS: dict[int, type[E.AISPError]] = {
    400: E.ValidationError,
    401: E.UnauthorizedError,
    403: E.ForbiddenError,
    404: E.NotFoundError,
    409: E.ConflictError,
    413: E.PayloadTooLargeError,
    415: E.UnsupportedMediaError,
    422: E.ValidationError,
    429: E.OverloadedError,
    503: E.OverloadedError,
}

#: attribute -> the ``details`` key it is read from (see each class's constructor)
_ATTRS = {
    "field": "field",
    "value": "value",
    "expected": "expected",
    "role": "role",
    "setting": "setting",
    "kind": "kind",
    "key": "key",
    "limit": "limit",
    "actual": "actual",
    "media_type": "media_type",
    "source": "source",
    "model_name": "model",
    "path": "path",
    "module": "module",
    "extra": "extra",
    "retry_after": "retry_after",
}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date: not sent by AISP; wait the default backoff
        return None


def error_from_response(
    status: int, body: bytes, headers: Mapping[str, str], *, method: str = "", url: str = ""
) -> E.AISPError:
    """The :mod:`aisp.errors` exception for an error answer (``status`` >= 400)."""
    err: dict[str, Any] = {}
    try:
        doc = json.loads(body) if body else None
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            err = doc["error"]
    except (ValueError, UnicodeDecodeError):
        pass
    name = str(err.get("name") or "")
    message = str(err.get("message") or "") or _fallback_message(status, body, method, url)
    details = err.get("details") if isinstance(err.get("details"), dict) else {}
    cls = ERROR_CLASSES.get(name) or _BY_STATUS.get(status, E.AISPError)
    exc = cls.__new__(cls)
    E.AISPError.__init__(exc, message, details=details)
    if isinstance(exc, ImportError):
        exc.msg = message
    for attr, key in _ATTRS.items():
        if _takes(cls, attr):
            setattr(exc, attr, details.get(key))
    if isinstance(exc, E.OverloadedError) and exc.retry_after is None:
        exc.retry_after = _retry_after(headers)
    if cls.status_code != status:
        exc.status_code = status  # the real status, on the instance
    if name and name != cls.name:
        exc.name = name  # e.g. METHOD_NOT_ALLOWED, mapped to the base class of its status
    exc.request_id = headers.get("x-request-id")  # type: ignore[attr-defined]
    return exc


def _takes(cls: type, attr: str) -> bool:
    """Whether instances of ``cls`` carry ``attr`` (set by its constructor)."""
    owners = {
        "field": E.ValidationError,
        "value": E.ValidationError,
        "expected": E.ValidationError,
        "role": E.ForbiddenError,
        "setting": E.SourceNotAllowedError,
        "kind": E.NotFoundError,
        "key": E.NotFoundError,
        "limit": E.PayloadTooLargeError,
        "actual": E.PayloadTooLargeError,
        "media_type": E.UnsupportedMediaError,
        "source": E.SourceError,
        "model_name": E.ModelLoadError,
        "path": E.ModelLoadError,
        "module": E.MissingDependencyError,
        "extra": E.MissingDependencyError,
        "retry_after": E.OverloadedError,
    }
    return issubclass(cls, owners[attr])


def _fallback_message(status: int, body: bytes, method: str, url: str) -> str:
    text = body[:200].decode("utf-8", "replace").strip() if body else ""
    where = f" for {method} {url}" if method else ""
    return f"HTTP {status}{where}" + (f": {text}" if text else "")
