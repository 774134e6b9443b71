"""``/ready`` is open (no key): it must not show the database host or a URL with credentials
(issue 13, item 15). A store that cannot open is reported by the exception's type only. The same
holds for a viewer's ``/api/status`` and for the 503 any caller gets while the store is away; an
admin's ``/api/status`` has the full text, without the password (``aisp.api.reasons``)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from aisp.api.reasons import admin_reason, public_reason
from tests.api.conftest import assert_error, local_client


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


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("StoreError: cannot open postgresql+psycopg://aisp:pw1@db.lan:5432/aisp",
         "StoreError: cannot open postgresql+psycopg://aisp:***@db.lan:5432/aisp"),
        ("ConfigError: broker mqtt://u:p@ss:w0rd@broker.lan:1883 refused",
         "ConfigError: broker mqtt://u:***@broker.lan:1883 refused"),
        ("ClusterError: ray://head.lan:10001?token=t0k3n unreachable",
         "ClusterError: ray://head.lan:10001?token=*** unreachable"),
        ("OSError: [Errno 111] Connection refused", "OSError: [Errno 111] Connection refused"),
    ],
)
def test_admin_reason_keeps_the_text_but_no_password(error: str, shown: str) -> None:
    assert admin_reason(error) == shown


def test_status_hides_the_database_host_from_viewers_and_the_password_from_everyone(tmp_path: Path) -> None:
    """A PostgreSQL URL that cannot connect, whose driver error also quotes the URL (some do):
    the 503 of a keyed request, a viewer's ``/api/status`` and the dashboard's shared summary show
    the error's type only; an admin's ``/api/status`` shows the text without the password.

    A store that failed cannot verify keys, so after startup the test gives the app a second,
    working (SQLite) store that holds a viewer and an admin key: the store's *reported* state and
    error stay those of the failed PostgreSQL store."""
    pytest.importorskip("psycopg")
    from aisp.api import create_app
    from aisp.api.routers.dashboard_summary import build_summary
    from aisp.errors import StoreError
    from aisp.settings import load_settings
    from aisp.store import Store

    port = _closed_port()
    host, password = "127.0.0.1", "s3cret-pw"
    url = f"postgresql+psycopg://aisp:{password}@{host}:{port}/aisp"
    settings = load_settings(
        environ={}, data_dir=tmp_path / "data", database_url=url, snapshot_interval_seconds=3600.0
    )

    class QuotingStore(Store):
        """The real store, whose open error also quotes the URL it was given, password included."""

        def open(self, *, migrate: bool = True, background: bool = True) -> Store:
            try:
                return super().open(migrate=migrate, background=background)
            except StoreError as exc:
                raise StoreError(f"{exc} (database_url {self.url})") from exc

    app = create_app(settings, store_factory=lambda u: QuotingStore(u, settings=settings))
    keys = Store(f"sqlite:///{tmp_path / 'keys.db'}", settings=settings).open(background=False)
    try:
        with local_client(app, raise_server_exceptions=False) as client:
            assert app.state.lifecycle.wait_started(120)
            ctx = app.state.ctx
            full = ctx.errors["store"]
            # the precondition: the real error holds the host, the port and (quoted) the password
            assert ctx.components["store"] == "failed" and ctx.store is None
            assert f'"{host}", port {port}' in full and password in full, full

            # while the store is away, any keyed request gets a 503 that names the type only
            err = assert_error(client.get("/api/status", headers={"X-API-Key": "aisp_0123456789ab_x"}),
                               503, "STORE_ERROR")
            assert "StoreError" in err["message"]
            r = client.get("/api/events", headers={"X-API-Key": "aisp_0123456789ab_x"})
            for text in (str(err), r.text):
                for secret in (host, str(port), password, "aisp:", "postgresql"):
                    assert secret not in text, (secret, text)

            _, viewer = keys.keys.create("viewer", "v")
            _, admin = keys.keys.create("admin", "a")
            ctx.store = keys  # keys can be verified now; the store's reported failure stays
            r = client.get("/api/status", headers={"X-API-Key": viewer})
            assert r.status_code == 200, r.text
            assert r.json()["errors"]["store"] == "StoreError"
            for secret in (host, str(port), password, "aisp:", "postgresql"):
                assert secret not in r.text, (secret, r.text)

            r = client.get("/api/status", headers={"X-API-Key": admin})
            assert r.status_code == 200, r.text
            shown = r.json()["errors"]["store"]
            assert f'"{host}", port {port}' in shown and "aisp:***@" in shown, shown
            assert password not in r.text

            alerts = [a for a in build_summary(ctx)["alerts"] if a["source"] == "store"]
            assert alerts == [{"level": "error", "source": "store", "message": "StoreError"}], alerts
            ctx.store = None
    finally:
        keys.close()
