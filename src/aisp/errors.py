"""The AISP exception tree.

Every error AISP raises on purpose derives from :class:`AISPError`. Each class has a
stable ``name`` (used in the HTTP error body and in logs) and an HTTP ``status_code``,
and carries its context as attributes and in ``details``::

    AISPError                         500 INTERNAL_ERROR
    ├── ValidationError               400 VALIDATION_ERROR    (.field, .value, .expected)
    │   └── ConfigError               400 CONFIG_ERROR        (bad settings; the CLI exits 2)
    ├── UnauthorizedError             401 UNAUTHORIZED
    ├── ForbiddenError                403 FORBIDDEN           (.role)
    │   └── SourceNotAllowedError     403 SOURCE_NOT_ALLOWED  (.setting)
    ├── NotFoundError                 404 NOT_FOUND           (.kind, .key)
    ├── ConflictError                 409 CONFLICT
    ├── PayloadTooLargeError          413 PAYLOAD_TOO_LARGE   (.limit, .actual)
    ├── UnsupportedMediaError         415 UNSUPPORTED_MEDIA   (.media_type)
    ├── SourceError                   422 SOURCE_ERROR        (.source)
    ├── ModelLoadError                500 MODEL_LOAD_ERROR    (.model_name, .path)
    │   ├── InvalidModelError         422 INVALID_MODEL       (a model file the caller named is unusable)
    │   └── MissingDependencyError    501 MISSING_DEPENDENCY  (.module, .extra)
    ├── StoreError                    503 STORE_ERROR
    ├── ClusterError                  503 CLUSTER_ERROR       (.address: the Ray cluster is unreachable)
    └── OverloadedError               503 OVERLOADED          (.retry_after)

The HTTP API renders any of them with :meth:`AISPError.to_body` into the one error
format used everywhere::

    {"status": "error",
     "error": {"code": 400, "name": "VALIDATION_ERROR", "message": "...",
               "timestamp": "2026-01-01T12:00:00Z", "details": {},
               "path": "/api/...", "method": "POST"}}
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

__all__ = [
    "AISPError",
    "ValidationError",
    "ConfigError",
    "UnauthorizedError",
    "ForbiddenError",
    "SourceNotAllowedError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "UnsupportedMediaError",
    "SourceError",
    "ModelLoadError",
    "InvalidModelError",
    "MissingDependencyError",
    "StoreError",
    "ClusterError",
    "OverloadedError",
    "error_body",
]


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_body(
    *,
    code: int,
    name: str,
    message: str,
    details: dict[str, Any] | None = None,
    path: str | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    """Build the unified HTTP error body."""
    return {
        "status": "error",
        "error": {
            "code": code,
            "name": name,
            "message": message,
            "timestamp": _utc_now(),
            "details": details or {},
            "path": path,
            "method": method,
        },
    }


class AISPError(Exception):
    """Base of every AISP error."""

    status_code: int = 500
    name: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_body(self, *, path: str | None = None, method: str | None = None) -> dict[str, Any]:
        return error_body(
            code=self.status_code,
            name=self.name,
            message=self.message,
            details=self.details,
            path=path,
            method=method,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ValidationError(AISPError, ValueError):
    """Input that does not have the expected type, shape or value."""

    status_code = 400
    name = "VALIDATION_ERROR"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: Any = None,
        expected: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if field is not None:
            merged.setdefault("field", field)
        if expected is not None:
            merged.setdefault("expected", expected)
        if value is not None:
            merged.setdefault("value", _short_repr(value))
        super().__init__(message, details=merged)
        self.field = field
        self.value = value
        self.expected = expected


class ConfigError(ValidationError):
    """Invalid settings (environment, TOML file or arguments)."""

    name = "CONFIG_ERROR"


class UnauthorizedError(AISPError):
    status_code = 401
    name = "UNAUTHORIZED"


class ForbiddenError(AISPError):
    status_code = 403
    name = "FORBIDDEN"

    def __init__(self, message: str, *, role: str | None = None, details: dict[str, Any] | None = None):
        merged = dict(details or {})
        if role is not None:
            merged.setdefault("role", role)
        super().__init__(message, details=merged)
        self.role = role


class SourceNotAllowedError(ForbiddenError):
    """A source, path or outbound URL that the source policy refuses; ``setting`` names the
    ``AISP_*`` setting that would allow it, or is None when no setting does (demuxer options in a
    URL). The message never says whether a path exists."""

    name = "SOURCE_NOT_ALLOWED"

    def __init__(self, message: str, *, setting: str | None, details: dict[str, Any] | None = None) -> None:
        merged = dict(details or {})
        if setting is not None:
            merged.setdefault("setting", setting)
        super().__init__(message, details=merged)
        self.setting = setting


class NotFoundError(AISPError, LookupError):
    status_code = 404
    name = "NOT_FOUND"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        key: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if kind is not None:
            merged.setdefault("kind", kind)
        if key is not None:
            merged.setdefault("key", key)
        super().__init__(message, details=merged)
        self.kind = kind
        self.key = key


class ConflictError(AISPError):
    status_code = 409
    name = "CONFLICT"


class PayloadTooLargeError(AISPError):
    status_code = 413
    name = "PAYLOAD_TOO_LARGE"

    def __init__(
        self,
        message: str,
        *,
        limit: int | None = None,
        actual: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if limit is not None:
            merged.setdefault("limit", limit)
        if actual is not None:
            merged.setdefault("actual", actual)
        super().__init__(message, details=merged)
        self.limit = limit
        self.actual = actual


class UnsupportedMediaError(AISPError):
    status_code = 415
    name = "UNSUPPORTED_MEDIA"

    def __init__(
        self, message: str, *, media_type: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        merged = dict(details or {})
        if media_type is not None:
            merged.setdefault("media_type", media_type)
        super().__init__(message, details=merged)
        self.media_type = media_type


class SourceError(AISPError):
    """A frame source that cannot be opened or read."""

    status_code = 422
    name = "SOURCE_ERROR"

    def __init__(self, message: str, *, source: str | None = None, details: dict[str, Any] | None = None):
        merged = dict(details or {})
        if source is not None:
            merged.setdefault("source", source)
        super().__init__(message, details=merged)
        self.source = source


class ModelLoadError(AISPError):
    """A model that cannot be loaded (missing or corrupt file, bad spec, backend failure)."""

    status_code = 500
    name = "MODEL_LOAD_ERROR"

    def __init__(
        self,
        message: str,
        *,
        model_name: str | None = None,
        path: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if model_name is not None:
            merged.setdefault("model", model_name)
        if path is not None:
            merged.setdefault("path", str(path))
        super().__init__(message, details=merged)
        self.model_name = model_name
        self.path = path


class InvalidModelError(ModelLoadError):
    """A model file the caller named (``onnx:<path>``) that exists but cannot be used: not an ONNX
    model, damaged, or of a shape AISP does not know. The caller's input, hence 422, not 500."""

    status_code = 422
    name = "INVALID_MODEL"


class MissingDependencyError(ModelLoadError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    status_code = 501
    name = "MISSING_DEPENDENCY"

    def __init__(
        self,
        module: str,
        extra: str | None,
        *,
        model_name: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        hint = f"pip install 'aisp[{extra}]'" if extra else f"pip install {module}"
        message = f"optional dependency '{module}' is not installed; install it with: {hint}"
        merged = dict(details or {})
        merged.setdefault("module", module)
        if extra:
            merged.setdefault("extra", extra)
        ModelLoadError.__init__(self, message, model_name=model_name, details=merged)
        self.module = module
        self.extra = extra
        # ImportError attributes
        self.msg = message


class StoreError(AISPError):
    status_code = 503
    name = "STORE_ERROR"


class ClusterError(AISPError):
    """The Ray cluster of ``AISP_RAY_ADDRESS`` cannot be reached or used."""

    status_code = 503
    name = "CLUSTER_ERROR"

    def __init__(self, message: str, *, address: str | None = None, details: dict[str, Any] | None = None):
        merged = dict(details or {})
        if address is not None:
            merged.setdefault("address", address)
        super().__init__(message, details=merged)
        self.address = address


class OverloadedError(AISPError):
    status_code = 503
    name = "OVERLOADED"

    def __init__(
        self, message: str, *, retry_after: float | None = None, details: dict[str, Any] | None = None
    ) -> None:
        merged = dict(details or {})
        if retry_after is not None:
            merged.setdefault("retry_after", retry_after)
        super().__init__(message, details=merged)
        self.retry_after = retry_after


def _short_repr(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
