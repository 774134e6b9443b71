"""Fixtures for the API tests: one app per test module (opening the store runs the migrations,
which is the slow part), with an admin and a viewer key, and image helpers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Harness:
    app: Any
    client: Any
    admin: str
    viewer: str
    settings: Any

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx

    def h(self, key: str | None) -> dict[str, str]:
        return {} if key is None else {"X-API-Key": key}


def local_client(app: Any, **kwargs: Any) -> Any:
    """A TestClient whose requests and WebSockets go to ``localhost`` (Starlette's default host,
    ``testserver``, is not one the server's Host allow-list answers)."""
    from fastapi.testclient import TestClient

    class _LocalClient(TestClient):
        def websocket_connect(self, url: str, *args: Any, **kw: Any) -> Any:
            if url.startswith("/"):
                url = "ws://localhost" + url
            return super().websocket_connect(url, *args, **kw)

    kwargs.setdefault("base_url", "http://localhost")
    return _LocalClient(app, **kwargs)


def start_app(data_dir: Path, **overrides: Any) -> Iterator[Harness]:

    from aisp.api import create_app
    from aisp.settings import load_settings, set_settings

    opts: dict[str, Any] = {
        "data_dir": data_dir,
        "inference_threads": 2,
        "drain_timeout_seconds": 5.0,
        "snapshot_interval_seconds": 3600.0,
        # the tests' files live in pytest's temporary folders, beside the data dir: the source
        # policy's media dir is that folder (tests/api/test_security_sources.py checks the policy)
        "media_dirs": [str(data_dir.parent)],
    }
    opts.update(overrides)
    settings = load_settings(environ={}, **opts)
    set_settings(settings)
    app = create_app(settings)
    with local_client(app, raise_server_exceptions=False) as client:
        assert app.state.lifecycle.wait_started(120), "startup did not finish"
        store = app.state.ctx.store
        assert store is not None, app.state.ctx.errors
        _, admin = store.keys.create("admin", "test-admin")
        _, viewer = store.keys.create("viewer", "test-viewer")
        client.headers["X-API-Key"] = admin
        yield Harness(app, client, admin, viewer, settings)
    set_settings(None)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from start_app(tmp_path_factory.mktemp("api"))


@pytest.fixture(autouse=True)
def _module_settings(request: pytest.FixtureRequest) -> None:
    """The root conftest resets the process-wide settings after each test; put the app's back."""
    if "api" in request.fixturenames:
        from aisp.settings import set_settings

        set_settings(request.getfixturevalue("api").settings)


def encode(image: Any, ext: str = ".jpg") -> bytes:
    import cv2

    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def test_image(width: int = 320, height: int = 240) -> Any:
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (height, width, 3), dtype=np.uint8)


test_image.__test__ = False  # type: ignore[attr-defined]


def assert_error(response: Any, status: int, name: str) -> dict[str, Any]:
    """The unified error body, with the expected status and name."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    err = body["error"]
    assert err["code"] == status and err["name"] == name, err
    assert err["message"] and err["timestamp"] and "path" in err and "method" in err
    assert "Traceback" not in response.text
    assert response.headers.get("x-request-id")
    return err
