"""The cluster app (``create_cluster_app``) served by uvicorn on a free loopback port in this
process, which is the Ray driver of the test cluster; keys created in its PostgreSQL store.
Always stopped (the lifespan deletes the Serve app and closes the cluster service)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.outputs.helpers import wait_until


@dataclass
class ClusterApp:
    url: str
    app: Any
    admin: str
    viewer: str

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx

    def h(self, key: str | None) -> dict[str, str]:
        return {} if key is None else {"X-API-Key": key}


@contextmanager
def cluster_app(settings: Any, *, start_timeout: float = 180.0) -> Iterator[ClusterApp]:
    import uvicorn

    from aisp.cluster import create_cluster_app

    app = create_cluster_app(settings)
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
        yield ClusterApp(f"http://127.0.0.1:{port}", app, admin, viewer)
    finally:
        server.should_exit = True
        thread.join(60)
        assert not thread.is_alive(), "uvicorn did not stop"
