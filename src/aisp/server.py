"""``aisp serve``: uvicorn, run programmatically, with a graceful SIGTERM/SIGINT shutdown.

uvicorn installs the signal handlers; on the first SIGTERM or SIGINT it stops accepting
connections, lets in-flight requests finish, then runs the app's lifespan shutdown (streams
drained, models released, store closed). The app's ``stopping`` flag is set as soon as the
signal arrives, so long-lived MJPEG and WebSocket viewers end within a second instead of
holding the shutdown until uvicorn's grace period runs out.

Auth off is refused on a non-loopback address (``ConfigError``, exit code 2); "loopback" is
decided by :func:`aisp.netpolicy.is_loopback_host` (addresses parsed, names resolved), never by
a string prefix.

The HTTP protocol is uvicorn's httptools protocol with header limits and slow-client timeouts
(:mod:`aisp.api.protocol`); idle keep-alive connections close after
``AISP_HTTP_KEEPALIVE_TIMEOUT_SECONDS``. The access log (on at ``AISP_LOG_LEVEL=DEBUG``) goes
through the same redacting handler as every AISP log line (:class:`aisp.logs.RedactSecrets`).
"""

from __future__ import annotations

import logging
from typing import Any

from aisp.errors import ConfigError
from aisp.settings import Settings

__all__ = ["serve", "check_bind", "build_server"]

log = logging.getLogger("aisp.server")


def check_bind(settings: Settings) -> None:
    from aisp.netpolicy import is_loopback_host

    if settings.auth == "off" and not is_loopback_host(settings.host):
        raise ConfigError(
            f"refusing AISP_AUTH=off on non-loopback host {settings.host!r}: anyone on the network could "
            "control the server. Bind to 127.0.0.1, or keep auth on and use 'aisp keys create'.",
            field="auth",
            value="off",
            expected="'on' when host is not a loopback address",
        )


def build_server(settings: Settings) -> Any:
    """A uvicorn server for the app (built behind :class:`~aisp.api.boot.BootApp`)."""
    import importlib.util

    import uvicorn

    from aisp.api.boot import BootApp

    check_bind(settings)
    if settings.ray_address:
        from aisp.cluster.connection import check_store

        check_store(settings)  # SQLite across machines: refused before the server starts (exit 2)
    holder: dict[str, Any] = {}

    def failed(_exc: BaseException) -> None:
        server = holder.get("server")
        if server is not None:
            server.failed = True
            server.should_exit = True

    def factory() -> Any:
        if settings.ray_address:  # streams, tasks and frames on Ray (docs/cluster.md)
            from aisp.cluster import create_cluster_app

            return create_cluster_app(settings)
        from aisp.api import create_app

        return create_app(settings)

    boot = BootApp(factory, on_failure=failed)
    http: Any
    if importlib.util.find_spec("httptools"):
        from aisp.api.protocol import HttpLimits, guarded_protocol

        http = guarded_protocol(HttpLimits.from_settings(settings))
    else:  # uvicorn[standard] brings httptools; h11 bounds the header size but has no header timeout
        log.warning("httptools is not installed: request header and body timeouts are not enforced")
        http = "h11"
    config = uvicorn.Config(
        boot,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our logging (configure_logging) handles uvicorn's loggers too
        access_log=settings.log_level == "DEBUG",
        http=http,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout_seconds)),
        timeout_keep_alive=settings.http_keepalive_timeout_seconds,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=int(settings.http_max_header_kb * 1024),
        server_header=False,
    )

    class _Server(uvicorn.Server):
        failed = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                log.info("signal %s received: shutting down gracefully", sig)
            if boot.app is not None:
                boot.app.state.ctx.stopping.set()  # MJPEG/WebSocket viewers end within a second
            super().handle_exit(sig, frame)

    server = _Server(config)
    holder["server"] = server
    server.boot = boot  # type: ignore[attr-defined]
    return server


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM/SIGINT, then return (exit code 0).

    Raises ``ConfigError`` for an unsafe configuration and ``SystemExit(1)`` when the server
    could not start (uvicorn logs why: port in use, ...).
    """
    import signal

    server = build_server(settings)
    log.info("serving on http://%s:%s (auth %s, docs at /docs)", settings.host, settings.port, settings.auth)
    # uvicorn re-raises the captured signal after its graceful shutdown, with the handlers that
    # were installed before run(): make those record it, so a requested stop exits 0.
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda s, _f: received.append(s)) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started or server.failed:
        raise SystemExit(1)
    log.info("server stopped%s", f" (signal {received[0]})" if received else "")
