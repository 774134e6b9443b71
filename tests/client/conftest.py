"""A real ``aisp serve`` (auth on, loopback, free port, temporary data dir) shared by the client
tests of one module (:mod:`tests.api.server_proc`), with its first admin key and a viewer key
created through the API; the server is always stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.server_proc import ServerProc, running_server


@dataclass
class Remote:
    server: ServerProc
    admin: str
    viewer: str
    media: Path

    @property
    def url(self) -> str:
        return self.server.base


def start_remote(tmp: Path) -> Iterator[Remote]:
    media = tmp / "media"
    media.mkdir()
    with running_server(tmp / "data", env={"AISP_MEDIA_DIRS": str(media)}) as srv:
        r = httpx.post(f"{srv.base}/api/auth/keys", json={"role": "viewer", "name": "client-tests"},
                       headers=srv.auth, timeout=30)
        assert r.status_code == 201, r.text
        yield Remote(srv, srv.admin_key, r.json()["key"], media)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    yield from start_remote(tmp_path_factory.mktemp("remote"))


def astronaut() -> object:
    """A 512x512 RGB photo with one face (scikit-image)."""
    from skimage import data

    return data.astronaut()
