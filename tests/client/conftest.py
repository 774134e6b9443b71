"""A real ``aisp serve`` (auth on, loopback, free port, temporary data dir) shared by the client
tests of one module, with its first admin key read from its log and a viewer key created through
the API; the server is always stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.test_server import KEY_RE, ServerProcess, free_port, spawn


@dataclass
class Remote:
    server: ServerProcess
    admin: str
    viewer: str
    media: Path

    @property
    def url(self) -> str:
        return self.server.base


def start_remote(tmp: Path) -> Iterator[Remote]:
    media = tmp / "media"
    media.mkdir()
    srv = spawn(tmp / "data", free_port(), env_extra={"AISP_MEDIA_DIRS": str(media)})
    try:
        srv.wait_for(r"Uvicorn running on", timeout=120)
        admin = srv.wait_for(KEY_RE, timeout=120).group(1)
        r = httpx.post(f"{srv.base}/api/auth/keys", json={"role": "viewer", "name": "client-tests"},
                       headers={"X-API-Key": admin}, timeout=30)
        assert r.status_code == 201, r.text
        yield Remote(srv, admin, r.json()["key"], media)
    finally:
        if srv.proc.poll() is None:
            srv.proc.terminate()
            try:
                srv.proc.wait(30)
            except Exception:
                srv.proc.kill()
                srv.proc.wait(30)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    yield from start_remote(tmp_path_factory.mktemp("remote"))


def astronaut() -> object:
    """A 512x512 RGB photo with one face (scikit-image)."""
    from skimage import data

    return data.astronaut()
