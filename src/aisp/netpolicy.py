"""What the API may open and reach: the source policy, and URL redaction for anything shown.

:class:`SourcePolicy` decides whether a media source given through the API (tasks, streams,
prewarm inputs), or an outbound URL AISP calls on a user's behalf (webhooks), is allowed:

- **files** must resolve, after symlinks, inside one of ``AISP_MEDIA_DIRS`` (default
  ``<data_dir>/media``); a relative path is taken inside the first one;
- **URLs** must use a scheme in ``AISP_SOURCE_SCHEMES`` and carry no query options that a
  demuxer would act on (``listen``, ...); ``tcp``, ``udp``, ``file``, ``pipe``, ``concat`` and
  ``data`` are never in the defaults;
- **hosts** must be in ``AISP_SOURCE_HOSTS`` (names or CIDRs) when it is set; when it is empty,
  any host is allowed except loopback, link-local (169.254.169.254 included), unspecified and
  multicast addresses, the cloud metadata addresses outside link-local space, and loopback
  wrapped in IPv4-mapped or 6to4 IPv6. Names are resolved, and every address they resolve to
  must pass. URLs with spaces or backslashes are refused (parsers disagree on them).

A refusal raises :class:`~aisp.errors.SourceNotAllowedError` (403 ``SOURCE_NOT_ALLOWED``) naming
the setting to change; demuxer options are refused by name, and no setting allows them. Messages
never say whether a path exists or a port is open.

The CLI does not use the policy: it runs as the local user, who may open anything.

:func:`redact_url` hides the password in a URL's userinfo (``rtsp://user:***@host/``) and is
used wherever a source or target URL is shown or logged.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from aisp.errors import SourceNotAllowedError, ValidationError

if TYPE_CHECKING:
    from aisp.settings import Settings

__all__ = ["SourcePolicy", "redact_url", "redact_text", "is_loopback_host", "Resolver"]

#: resolve a host name to its IP addresses (injected in tests)
Resolver = Callable[[str], list[str]]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: names that are local (so a "file" source) rather than URLs
_PSEUDO_SOURCES = frozenset({"demo", "demo:live"})


def _system_resolver(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def _parse_ip(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


#: cloud metadata services outside link-local space (AWS IPv6, Alibaba, Oracle's legacy address is
#: link-local already): refused by default like 169.254.169.254
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))


def _forbidden_by_default(addr: _IPAddress) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv6Address) and addr.sixtofour is not None:  # 2002:7f00:1::
        addr = addr.sixtofour
    return (addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast
            or addr in _METADATA)


def is_loopback_host(host: str, *, resolver: Resolver | None = None) -> bool:
    """True when ``host`` is a loopback address, or a name whose every address is loopback.

    Parsed with :mod:`ipaddress`, never by string prefix: ``127.0.0.1.nip.io`` is a name, and it
    counts as loopback only if it resolves to loopback addresses and nothing else.
    """
    host = (host or "").strip()
    if not host:
        return False
    addr = _parse_ip(host)
    if addr is not None:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return addr.is_loopback
    if host.lower() == "localhost":
        return True
    addrs = [a for a in (_parse_ip(x) for x in (resolver or _system_resolver)(host)) if a is not None]
    return bool(addrs) and all(
        (a.ipv4_mapped if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped else a).is_loopback
        for a in addrs
    )


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo replaced by ``***`` (the user name is kept).

    Strings that are not URLs with a userinfo come back unchanged.
    """
    if not isinstance(url, str) or "@" not in url or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" not in netloc:
        return url
    userinfo, _, hostport = netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


#: ``scheme://user:password@`` anywhere in a text (the password ends at the last "@" before the
#: host; it may hold ":" or "/" but no whitespace or quote)
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s/@:'\"]*):([^\s'\"]*)@")


def redact_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced by ``***``
    (error messages and log lines that quote a URL)."""
    if not isinstance(text, str) or "@" not in text or "://" not in text:
        return text
    return _USERINFO_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)


@dataclass(frozen=True)
class _HostRules:
    names: frozenset[str]
    networks: tuple[_IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> _HostRules:
        names: set[str] = set()
        nets: list[_IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(nets))

    @property
    def empty(self) -> bool:
        return not self.names and not self.networks

    def allows_addr(self, addr: _IPAddress) -> bool:
        return any(addr.version == net.version and addr in net for net in self.networks)


class SourcePolicy:
    """Check API-given sources and outbound URLs against the settings (see the module doc)."""

    def __init__(
        self,
        *,
        media_dirs: Sequence[Path],
        schemes: Iterable[str],
        hosts: Iterable[str] = (),
        resolver: Resolver | None = None,
    ) -> None:
        if not media_dirs:
            raise ValidationError(
                "SourcePolicy: media_dirs must name at least one directory", field="media_dirs"
            )
        self.media_dirs: tuple[Path, ...] = tuple(
            Path(os.path.realpath(Path(d).expanduser())) for d in media_dirs
        )
        self.schemes: frozenset[str] = frozenset(s.lower() for s in schemes)
        self._hosts = _HostRules.parse(hosts)
        self._resolve = resolver or _system_resolver

    @classmethod
    def from_settings(cls, settings: Settings, *, resolver: Resolver | None = None) -> SourcePolicy:
        dirs = [Path(d) for d in settings.media_dirs] or [Path(settings.data_dir) / "media"]
        return cls(
            media_dirs=dirs, schemes=settings.source_schemes, hosts=settings.source_hosts, resolver=resolver
        )

    def __repr__(self) -> str:
        return (
            f"SourcePolicy(media_dirs={[str(d) for d in self.media_dirs]}, schemes={sorted(self.schemes)}, "
            f"hosts={sorted(self._hosts.names) + [str(n) for n in self._hosts.networks]})"
        )

    # --- sources ----------------------------------------------------------------------------
    def check_source(self, source: str) -> str:
        """Return the source to open (a resolved file path, or the URL), or raise.

        Camera indexes and devices are not media the API may name: they are refused
        (``AISP_SOURCE_SCHEMES`` has no scheme for them); ``demo`` and ``demo:live`` pass unchanged.
        """
        if not isinstance(source, str) or not source.strip():
            raise ValidationError("source: expected a non-empty string", field="source")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in source):
            raise ValidationError("source: control characters are not allowed", field="source")
        text = source.strip()
        if text in _PSEUDO_SOURCES:
            return text
        if text.isdigit():
            raise SourceNotAllowedError(
                "source: local cameras cannot be opened through the API; use `aisp run` on the host",
                setting="AISP_SOURCE_SCHEMES",
            )
        if "://" in text or _looks_like_scheme(text):
            return self.check_url(text, setting_for_scheme="AISP_SOURCE_SCHEMES")
        return str(self.check_path(text))

    def check_path(self, path: str | os.PathLike[str]) -> Path:
        """The real path of ``path`` (relative paths inside the first media dir), if inside one."""
        given = Path(path).expanduser()
        candidate = given if given.is_absolute() else self.media_dirs[0] / given
        real = Path(os.path.realpath(candidate))
        for root in self.media_dirs:
            if real == root or real.is_relative_to(root):
                return real
        raise SourceNotAllowedError(
            "source: file sources must be inside a media directory (AISP_MEDIA_DIRS)",
            setting="AISP_MEDIA_DIRS",
        )

    def check_url(self, url: str, *, schemes: Iterable[str] | None = None,
                  setting_for_scheme: str = "AISP_SOURCE_SCHEMES") -> str:
        """``url`` if its scheme, options and host pass; ``schemes`` overrides the allowed set
        (webhooks pass ``("http", "https")``)."""
        if any(ch.isspace() or ch == "\\" for ch in url):  # parsers disagree on these: refuse them
            raise ValidationError("source: a URL may not contain spaces or backslashes", field="source")
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise ValidationError(f"source: not a valid URL ({exc})", field="source") from None
        scheme = parts.scheme.lower()
        allowed = self.schemes if schemes is None else frozenset(s.lower() for s in schemes)
        if scheme not in allowed:
            raise SourceNotAllowedError(
                f"source: URL scheme {scheme or '(none)'!r} is not allowed; allowed: "
                f"{', '.join(sorted(allowed)) or 'none'} ({setting_for_scheme})",
                setting=setting_for_scheme,
            )
        if parts.query:
            # Cameras may want a query as part of their path; only the keys that FFmpeg's
            # protocols act on are refused.
            _refuse_demuxer_options(parts.query)
        host = parts.hostname
        if not host:
            raise ValidationError("source: the URL has no host", field="source")
        self.check_host(host)
        return url

    def check_host(self, host: str) -> None:
        """Raise unless ``host`` (a name or an address) may be reached."""
        host = host.strip().strip("[]").lower().rstrip(".")
        if not host:
            raise ValidationError("source: empty host", field="source")
        addr = _parse_ip(host)
        addrs = [addr] if addr is not None else [a for a in map(_parse_ip, self._resolve(host)) if a]
        rules = self._hosts
        if not rules.empty:
            if host in rules.names:
                return
            if addrs and all(rules.allows_addr(a) for a in addrs):
                return
            raise SourceNotAllowedError(
                "source: this host is not in the allowed hosts (AISP_SOURCE_HOSTS)",
                setting="AISP_SOURCE_HOSTS",
            )
        if host == "localhost" or any(_forbidden_by_default(a) for a in addrs):
            raise SourceNotAllowedError(
                "source: loopback, link-local and metadata addresses are not allowed; list the host in "
                "AISP_SOURCE_HOSTS to allow it",
                setting="AISP_SOURCE_HOSTS",
            )
        # A name that does not resolve now is allowed: the open fails later with a generic
        # error, and the name is checked again then by whoever opens it.


#: query keys that make FFmpeg's protocols or demuxers act (listen on a port, run a command, ...)
_DEMUXER_OPTIONS = frozenset({
    "listen", "listen_timeout", "timeout", "rtsp_flags", "rtsp_transport", "protocol_whitelist",
    "protocol_blacklist", "reconnect", "pkt_size", "localport", "localaddr", "reuse", "buffer_size",
    "fifo_size", "overrun_nonfatal", "multiple_requests", "headers", "user_agent", "method", "cookies",
    "http_proxy", "send_expect_100", "auth_type", "follow", "seekable",
})


def _refuse_demuxer_options(query: str) -> None:
    """Refuse a query that names a demuxer or protocol option. No setting allows one: the decoder's
    options are AISP's own (protocol whitelist, transport, timeouts), never the caller's."""
    keys = {pair.split("=", 1)[0].strip().lower() for pair in query.replace(";", "&").split("&") if pair}
    bad = sorted(keys & _DEMUXER_OPTIONS)
    if bad:
        names = ", ".join(repr(k) for k in bad)
        raise SourceNotAllowedError(
            f"source: the URL's query sets the decoder option{'s' if len(bad) > 1 else ''} {names}; "
            "demuxer and protocol options from the caller are never accepted, whatever the settings: "
            "remove them from the URL",
            setting=None,
            details={"options": bad},
        )


def _looks_like_scheme(text: str) -> bool:
    """``pipe:0``, ``data:...``, ``concat:a|b``: FFmpeg protocol prefixes without ``//``."""
    head, sep, _ = text.partition(":")
    return bool(sep) and len(head) > 1 and head.isalpha()
