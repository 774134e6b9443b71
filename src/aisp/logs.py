"""Logging for AISP: stdlib ``logging``, one logger per area, text or JSON Lines.

Loggers: ``aisp`` (root of the tree), ``aisp.cache``, ``aisp.models``, ``aisp.pipeline``,
``aisp.api``, ``aisp.store``, ``aisp.server``, ``aisp.native`` (MediaPipe/TF Lite output).

:func:`configure_logging` installs one handler on the ``aisp`` logger that writes to a
private duplicate of the process's stderr, so that :func:`capture_native_output` can
redirect file descriptor 2 while a native library talks (absl ``W0000`` lines, XNNPACK
info) without swallowing AISP's own log lines. Captured native lines are re-logged on
``aisp.native`` at DEBUG: hidden by default, visible with ``AISP_LOG_LEVEL=DEBUG``.

Every record that reaches the handler (AISP's loggers and uvicorn's) or ``logging.lastResort``
goes through :class:`SafeTextFilter`: control characters in the message (newline, CR, NUL, ESC,
C1 codes, Unicode line separators) are escaped (``\\n``, ``\\x00``), so a user value such as
a task source cannot forge log lines or send terminal escapes. Then :class:`RedactSecrets`
(below) hides keys, tickets and URL passwords.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, TextIO

__all__ = [
    "RedactSecrets",
    "redact_secrets",
    "configure_logging",
    "SafeTextFilter",
    "escape_controls",
    "capture_native_output",
    "request_id_var",
    "JsonFormatter",
    "quiet_native_env",
]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("aisp_request_id", default=None)

_HANDLER_MARK = "_aisp_handler"
_native_lock = threading.RLock()
_private_stderr: TextIO | None = None


_CONTROL_RE = None


def _control_re() -> Any:
    global _CONTROL_RE
    if _CONTROL_RE is None:
        import re

        _CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
    return _CONTROL_RE


_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b", "\x00": "\\x00"}


def escape_controls(text: str) -> str:
    """``text`` with control characters (tab excepted) written as escapes: ``\\n``, ``\\x00``."""
    rx = _control_re()
    if not rx.search(text):
        return text
    return rx.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                       else f"\\u{ord(m.group()):04x}"), text)


class SafeTextFilter(logging.Filter):
    """Escape control characters in each record's message (see the module docstring). The record
    is changed in place, so every handler sees the safe text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_aisp_safe", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: log it as it is, made safe
            message = f"{record.msg!s} {record.args!r}"
        safe = escape_controls(message)
        if safe != message or record.args:
            record.msg, record.args = safe, None
        record._aisp_safe = True
        return True


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{text} [request_id={rid}]" if rid else text


_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            payload["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def _stderr_stream() -> TextIO:
    """A private duplicate of fd 2, immune to :func:`capture_native_output` redirects."""
    global _private_stderr
    if _private_stderr is None:
        try:
            fd = os.dup(sys.stderr.fileno())
            _private_stderr = os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace")
        except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture, notebooks)
            return sys.stderr
    return _private_stderr


def configure_logging(level: str = "INFO", fmt: str = "text", *, stream: TextIO | None = None) -> None:
    """Install AISP's handler on the ``aisp`` logger (idempotent) and set the level."""
    root = logging.getLogger("aisp")
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else _stderr_stream())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(SafeTextFilter())
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(RedactSecrets())
    setattr(handler, _HANDLER_MARK, True)
    # loggers nobody configured (asyncio, websockets, ...) fall back to logging.lastResort
    if not any(isinstance(f, RedactSecrets) for f in logging.lastResort.filters):  # type: ignore[union-attr]
        logging.lastResort.addFilter(SafeTextFilter())  # type: ignore[union-attr]
        logging.lastResort.addFilter(RedactSecrets())  # type: ignore[union-attr]
    root.addHandler(handler)
    root.propagate = False
    quiet_native_env(level)
    # uvicorn's loggers go through the same handler and format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = [handler]
        lg.propagate = False
        lg.setLevel("WARNING" if name == "uvicorn.access" and level != "DEBUG" else level)


def quiet_native_env(level: str = "INFO") -> None:
    """Ask glog/absl/TF Lite for less output before MediaPipe loads (env only; cheap)."""
    if level == "DEBUG":
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def capture_native_output(logger_name: str = "aisp.native") -> Iterator[None]:
    """Redirect fd 2 to a temp file while native code runs; re-log its lines at DEBUG.

    Process-wide (file descriptors are), so it is serialised with a lock. AISP's own log
    handler writes to a private duplicate of stderr and is not affected.
    """
    logger = logging.getLogger(logger_name)
    with _native_lock:
        _stderr_stream()  # make sure the private stream exists before fd 2 moves
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        with tempfile.TemporaryFile(mode="w+b") as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                try:
                    sys.stderr.flush()
                except (AttributeError, ValueError):
                    pass
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                for raw in tmp.read().decode("utf-8", "replace").splitlines():
                    if raw.strip():
                        logger.debug("%s", raw.rstrip())


# --- secret redaction ---------------------------------------------------------------------------
# No API key, ticket, Authorization value or URL password reaches a log line, whatever the level
# and whichever library logs it (uvicorn's access log included): RedactSecrets runs on AISP's
# handler, which uvicorn's loggers share, and on logging.lastResort.

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # AISP API keys anywhere: keep the (public) key id, drop the secret
    (re.compile(r"\b(aisp_[0-9a-f]{12}_)[A-Za-z0-9_\-]+"), r"\1***"),
    # URL tickets
    (re.compile(r"\btkt_[A-Za-z0-9_\-]+"), "tkt_***"),
    # credentials in query strings
    (
        re.compile(
            r"([?&;](?:key|api_key|apikey|api-key|ticket|token|access_token|password|passwd|pwd|secret)=)"
            r"[^&\s\"'#;]+",
            re.IGNORECASE,
        ),
        r"\1***",
    ),
    # credential headers as they appear in dumps: "Authorization: Bearer x", ('x-api-key', 'x')
    (
        re.compile(
            r"((?:authorization|x-api-key|cookie|proxy-authorization)['\"]?\s*[:=,]\s*(?:b?['\"])?)"
            r"(?:(?:bearer|basic|token)\s+)?[^\s'\",)}]+",
            re.IGNORECASE,
        ),
        r"\1***",
    ),
)
_URL_WITH_USERINFO = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>@/]*@[^\s\"'<>]*")
_STD_RECORD_ATTRS = _STD_ATTRS


def redact_secrets(text: str) -> str:
    """``text`` with API keys, tickets, credential headers and query values, and URL passwords
    replaced by ``***`` (URL passwords through :func:`aisp.netpolicy.redact_url`)."""
    if not text:
        return text
    from aisp.netpolicy import redact_url

    if "://" in text and "@" in text:
        text = _URL_WITH_USERINFO.sub(lambda m: redact_url(m.group(0)), text)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """A handler filter that rewrites each record's message (and traceback, and string extras)
    with :func:`redact_secrets`; it never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: leave it to the formatter
            return True
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_secrets(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if isinstance(value, str) and name not in _STD_RECORD_ATTRS and not name.startswith("_"):
                setattr(record, name, redact_secrets(value))
        return True
