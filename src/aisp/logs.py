"""Logging for AISP: stdlib ``logging``, one logger per area, text or JSON Lines.

Loggers: ``aisp`` (root of the tree), ``aisp.cache``, ``aisp.models``, ``aisp.pipeline``,
``aisp.api``, ``aisp.store``, ``aisp.server``, ``aisp.native`` (MediaPipe/TF Lite output).

:func:`configure_logging` installs one handler on the ``aisp`` logger that writes to a
private duplicate of the process's stderr, so that :func:`capture_native_output` can
redirect file descriptor 2 while a native library talks (absl ``W0000`` lines, XNNPACK
info) without swallowing AISP's own log lines. Captured native lines are re-logged on
``aisp.native`` at DEBUG: hidden by default, visible with ``AISP_LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, TextIO

__all__ = [
    "configure_logging",
    "capture_native_output",
    "request_id_var",
    "JsonFormatter",
    "quiet_native_env",
]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("aisp_request_id", default=None)

_HANDLER_MARK = "_aisp_handler"
_native_lock = threading.RLock()
_private_stderr: TextIO | None = None


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
            payload["exc_info"] = self.formatException(record.exc_info)
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
    handler.addFilter(_RequestIdFilter())
    setattr(handler, _HANDLER_MARK, True)
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
