"""Where the client connects and how: the base URL, the API key, timeouts and retries.

Read from arguments first, then from ``AISP_URL`` / ``AISP_API_KEY`` (an injectable ``environ``
mapping, so tests never touch the process environment). The key is kept out of every ``repr``
and log line: it travels only in the ``X-API-Key`` header.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aisp.errors import ConfigError

__all__ = ["ClientConfig", "DEFAULT_URL", "RetryPolicy"]

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retries of idempotent calls: on a 503 (waiting its ``Retry-After``, capped at
    ``max_retry_after``) and on connection errors (exponential backoff from ``backoff``, doubling up
    to ``max_backoff`` seconds). ``attempts`` counts the first try; 1 turns retries off."""

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(
                f"RetryPolicy.attempts: expected >= 1, got {self.attempts}", field="attempts", expected=">= 1"
            )
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ConfigError("RetryPolicy: expected non-negative delays", field="backoff", expected=">= 0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` >= 1 tries made so far)."""
        backoff = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        if retry_after is not None:
            return min(self.max_retry_after, max(retry_after, 0.0))
        return backoff


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """The resolved settings of a :class:`~aisp.client.Client` (``repr`` hides the key)."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    connect_timeout: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def resolve(
        cls,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        env = os.environ if environ is None else environ
        url = (base_url or env.get("AISP_URL") or DEFAULT_URL).strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"AISP_URL: expected an http:// or https:// URL such as {DEFAULT_URL}, got {_safe(url)!r}",
                field="base_url",
                expected="http(s)://host[:port]",
            )
        if parts.username or parts.password:
            raise ConfigError(
                "AISP_URL: credentials in the URL are not accepted; pass the key as api_key or AISP_API_KEY",
                field="base_url",
                expected="a URL without user:password@",
            )
        if parts.query or parts.fragment:
            raise ConfigError(
                f"AISP_URL: expected a base URL without query or fragment, got {_safe(url)!r}",
                field="base_url",
                expected="http(s)://host[:port][/prefix]",
            )
        key = api_key if api_key is not None else env.get("AISP_API_KEY")
        key = key.strip() if key else None
        if key and not (key.isascii() and key.isprintable()):
            raise ConfigError(
                "AISP_API_KEY: expected printable ASCII (an AISP key looks like aisp_<id>_<secret>)",
                field="api_key",
            )
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if not value > 0:
                raise ConfigError(f"{name}: expected seconds > 0, got {value}", field=name, expected="> 0")
        return cls(
            base_url=url,
            api_key=key or None,
            timeout=float(timeout),
            connect_timeout=float(connect_timeout),
            retry=retry or RetryPolicy(),
        )

    @property
    def ws_base(self) -> str:
        """The base URL with ``ws://`` or ``wss://``."""
        return "ws" + self.base_url[4:] if self.base_url.startswith("http") else self.base_url

    def headers(self) -> dict[str, str]:
        out = {"User-Agent": "aisp-client", "Accept": "application/json"}
        if self.api_key:
            out["X-API-Key"] = self.api_key
        return out


def _safe(url: str) -> str:
    """``url`` with any password hidden, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
