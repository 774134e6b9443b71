"""The cluster app (``create_cluster_app``) served by uvicorn on a free loopback port in this
process, which is the Ray driver of the test cluster; keys created in its PostgreSQL store.
Always stopped (the lifespan deletes the Serve app and closes the cluster service)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.outputs.live_app import LiveApp, serve_app


class ClusterApp(LiveApp):
    def h(self, key: str | None) -> dict[str, str]:
        return {} if key is None else {"X-API-Key": key}


@contextmanager
def cluster_app(settings: Any, *, start_timeout: float = 180.0) -> Iterator[ClusterApp]:
    from aisp.cluster import create_cluster_app

    with serve_app(create_cluster_app(settings), start_timeout=start_timeout, stop_timeout=60.0,
                   cls=ClusterApp) as live:
        assert isinstance(live, ClusterApp)
        yield live
