"""The real app served by uvicorn on a free loopback port, in this process (so a test can publish
events on the app's runtime bus), with an admin and a viewer key. Always stopped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.outputs.helpers import wait_until


@dataclass
class LiveApp:
    url: str
    app: Any
    admin: str
    viewer: str

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx


@contextmanager
def serve_app(app: Any, *, start_timeout: float = 120.0, stop_timeout: float = 30.0,
              cls: type[LiveApp] = LiveApp) -> Iterator[LiveApp]:
    """Serve ``app`` with uvicorn on a free loopback port until the block ends; keys in its store."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 60, message="uvicorn to start")
        assert server.started, "uvicorn did not start"
        assert app.state.lifecycle.wait_started(start_timeout), "startup did not finish"
        port = server.servers[0].sockets[0].getsockname()[1]
        store = app.state.ctx.store
        assert store is not None, app.state.ctx.errors
        _, admin = store.keys.create("admin", "test-admin")
        _, viewer = store.keys.create("viewer", "test-viewer")
        yield cls(f"http://127.0.0.1:{port}", app, admin, viewer)
    finally:
        server.should_exit = True
        thread.join(stop_timeout)
        assert not thread.is_alive(), "uvicorn did not stop"


@contextmanager
def live_app(data_dir: Path, **overrides: Any) -> Iterator[LiveApp]:
    from aisp.api import create_app
    from aisp.settings import load_settings

    settings = load_settings(environ={}, data_dir=data_dir, inference_threads=2, drain_timeout_seconds=5.0,
                             snapshot_interval_seconds=3600.0, **overrides)
    with serve_app(create_app(settings)) as live:
        yield live
