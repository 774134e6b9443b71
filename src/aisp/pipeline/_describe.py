"""``describe(exc)``: the one-line text a stream reports for an exception.

The reader (a source failed), the workers (a model failed) and the sink thread (a sink failed)
all turn exceptions into ``last_error`` text the same way, so it is written once, here:
``"<ExceptionType>: <message>"``, where the message of an :class:`~aisp.errors.AISPError` is its
``message`` (without the details), and an exception with no text is named by its type alone.
"""

from __future__ import annotations

__all__ = ["describe"]


def describe(exc: BaseException) -> str:
    """``"SourceError: cannot open 'x.mp4'"``: the type and the message of ``exc``."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"
