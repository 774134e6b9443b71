"""One outbound webhook request, pinned to the addresses the source policy checked.

The policy check and the connection must see the same addresses, or a name that resolves to a
public address for the check and to 127.0.0.1 for the connection (DNS rebinding) would reach
loopback. So each request resolves the host once, checks exactly those addresses
(``SourcePolicy.from_settings(settings, resolver=<those addresses>).check_url(...)``), and
connects to the first of them by IP, sending the original ``Host`` header and, for HTTPS, the
original name as SNI (certificates are verified against the name).

Redirects are followed only within the same scheme, host and port (at most three, each checked
again); a redirect elsewhere is a failed attempt. Response bodies are read up to ``excerpt``
bytes, never more.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from aisp.errors import SourceNotAllowedError, ValidationError
from aisp.netpolicy import SourcePolicy

if TYPE_CHECKING:
    import httpx

    from aisp.settings import Settings

__all__ = ["HttpResult", "PinnedSender"]

Resolver = Callable[[str], list[str]]
_MAX_REDIRECTS = 3


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]
        if addr not in seen:
            seen.append(addr)
    return seen


@dataclass(frozen=True)
class HttpResult:
    """One attempt: the answer's status (None when there was none) or the error, and how long."""

    status: int | None
    excerpt: str | None
    error: str | None
    duration_ms: float
    refused: bool = False  # the policy refused the target: do not retry
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class PinnedSender:
    def __init__(
        self,
        settings: Settings,
        client: httpx.Client,
        *,
        resolver: Resolver | None = None,
        excerpt: int = 512,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._settings = settings
        self._client = client
        self._resolve = resolver or _resolve
        self._excerpt = excerpt
        self._clock = clock

    def check(self, url: str) -> list[str]:
        """Resolve ``url``'s host and check the URL against the policy with exactly those
        addresses; returns them. Raises ``SourceNotAllowedError`` or ``ValidationError``."""
        parts = urlsplit(url)
        host = (parts.hostname or "").strip("[]")
        if not host:
            raise ValidationError("url: the URL has no host", field="url")
        literal = _is_ip(host)
        addrs = [host] if literal else self._resolve(host)
        if not addrs:
            raise ValidationError(f"url: cannot resolve the host {host!r}", field="url")
        policy = SourcePolicy.from_settings(self._settings, resolver=lambda _h: list(addrs))
        policy.check_url(url, schemes=("http", "https"), setting_for_scheme="webhook URL (http or https)")
        return addrs

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResult:
        t0 = self._clock()
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                addrs = self.check(current)
            except SourceNotAllowedError as exc:
                return HttpResult(None, None, f"SOURCE_NOT_ALLOWED: {exc}", self._ms(t0), refused=True)
            except ValidationError as exc:
                return HttpResult(None, None, str(exc), self._ms(t0))
            try:
                status, location, excerpt, retry_after = self._once(current, addrs[0], body, headers)
            except Exception as exc:  # noqa: BLE001 - httpx errors, TLS errors, ...: a failed attempt
                return HttpResult(None, None, _describe(exc), self._ms(t0))
            if status in (301, 302, 303, 307, 308) and location:
                target = urljoin(current, location)
                if not _same_origin(current, target):
                    return HttpResult(status, excerpt, f"redirect to another host not followed ({status})",
                                      self._ms(t0))
                current = target
                continue
            error = None if 200 <= status < 300 else f"HTTP {status}"
            return HttpResult(status, excerpt, error, self._ms(t0), retry_after=retry_after)
        return HttpResult(None, None, f"more than {_MAX_REDIRECTS} redirects", self._ms(t0))

    def _once(
        self, url: str, addr: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, str | None, str | None, float | None]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        ip_host = f"[{addr}]" if ":" in addr else addr
        netloc = ip_host if port == default else f"{ip_host}:{port}"
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default else f":{port}")
        send_headers = {**headers, "Host": host_header}
        auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        extensions = {"sni_hostname": host} if parts.scheme == "https" and not _is_ip(host) else {}
        with self._client.stream("POST", target, content=body, headers=send_headers, auth=auth,
                                 extensions=extensions, follow_redirects=False) as resp:
            chunks = bytearray()
            for chunk in resp.iter_bytes():
                chunks += chunk
                if len(chunks) >= self._excerpt:
                    break
            excerpt = bytes(chunks[: self._excerpt]).decode("utf-8", "replace") if chunks else None
            retry_after = _retry_after(resp.headers.get("retry-after"))
            return resp.status_code, resp.headers.get("location"), excerpt, retry_after

    def _ms(self, t0: float) -> float:
        return round((self._clock() - t0) * 1000.0, 2)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _describe(exc: Exception) -> str:
    """A short error for the log: the exception's class and first line, with no URL userinfo."""
    from aisp.netpolicy import redact_url

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    words = [redact_url(w) if "://" in w else w for w in text.split(" ")]
    return f"{type(exc).__name__}: {' '.join(words)}"[:300]
