"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"``, in one header.

::

    X-AISP-Signature: t=1764662400,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

``t`` is the Unix time (seconds) the request was signed; ``v1`` is the lowercase hex HMAC-SHA256
of ``f"{t}.".encode() + body`` with the webhook's secret (UTF-8) as the key. A receiver checks
the HMAC with a constant-time comparison and refuses a ``t`` too far from its own clock (five
minutes by default), which stops replays of an old delivery. Each attempt is signed anew.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_HEADER", "sign", "signature_header", "verify"]

SIGNATURE_HEADER = "X-AISP-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, now: float | None = None) -> str:
    t = int(time.time() if now is None else now)
    return f"t={t},v1={sign(secret, t, body)}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance_s: float = 300.0, now: float | None = None
) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within ``tolerance_s`` of ``now``."""
    fields: dict[str, list[str]] = {}
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    try:
        t = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        return False
    expected = sign(secret, t, body)
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))
