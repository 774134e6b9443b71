"""``/ready`` is open (no key): it must not show the database host or a URL with credentials
(issue 13, item 15). A store that cannot open is reported by the exception's type only."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from aisp.api.routers.status import public_reason
from tests.api.conftest import local_client


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is: connections are refused


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ('OperationalError: (psycopg.OperationalError) connection to server at "db.lan"', "OperationalError"),
        ("the runtime could not be built: ValueError: x", "the runtime could not be built"),
        ("shutting down", "shutting down"),
        ("postgresql://user:pw@db.lan/aisp is down", "failed"),
        ("user@db.lan refused", "failed"),
        ("db.lan:5432 refused", "failed"),
        ("localhost:5432 refused", "failed"),
        ("Error://x", "failed"),
        ("", "failed"),
    ],
)
def test_public_reason(error: str, shown: str) -> None:
    assert public_reason(error) == shown


def test_ready_hides_the_database_host_and_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    from aisp.api import create_app
    from aisp.settings import load_settings

    port = _closed_port()
    host, password = "127.0.0.1", "s3cret-pw"
    url = f"postgresql+psycopg://aisp:{password}@{host}:{port}/aisp"
    settings = load_settings(
        environ={}, data_dir=tmp_path, database_url=url, snapshot_interval_seconds=3600.0
    )
    app = create_app(settings)
    with local_client(app, raise_server_exceptions=False) as client:
        assert app.state.lifecycle.wait_started(120)
        assert app.state.ctx.components["store"] == "failed"
        r = client.get("/ready")
        assert r.status_code == 503
        body = r.json()
        assert body["errors"]["store"] and "store" in body["pending"]
        for secret in (host, str(port), password, "aisp:", "postgresql"):
            assert secret not in r.text, (secret, r.text)
        # the full reason stays available to key holders and operators
        assert host in app.state.ctx.errors["store"] or str(port) in app.state.ctx.errors["store"]
