"""Shared fixtures for the whole suite.

Services (PostgreSQL, ffmpeg, Chromium) are optional locally: a test that needs a missing one
skips with the reason. In CI ``AISP_TEST_REQUIRE_SERVICES=1`` turns those skips into failures,
because ``.ci/run`` installs and starts them.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def require_service(available: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a service a test needs is missing."""
    if available:
        return
    if os.environ.get("AISP_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def settings(tmp_path: Path):
    """Settings with a temporary data dir and no environment influence; also the settings of the
    default runtime (``aisp.load_model()``), for the tests of those conveniences."""
    from aisp.settings import load_settings, set_settings

    s = load_settings(environ={}, data_dir=tmp_path / "data")
    set_settings(s)
    yield s
    set_settings(None)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo ``configure_logging`` (the CLI's root command calls it) after each test, so that
    pytest's ``caplog`` keeps seeing the ``aisp`` loggers."""
    loggers = [logging.getLogger(n) for n in ("aisp", "uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate) for lg in loggers]
    yield
    for lg, level, handlers, propagate in saved:
        lg.setLevel(level)
        lg.handlers = handlers
        lg.propagate = propagate


@pytest.fixture(autouse=True)
def _isolate_process_defaults() -> Iterator[None]:
    """Forget the process defaults (settings, the default runtime) after each test."""
    yield
    from aisp import settings as settings_mod

    settings_mod.set_settings(None)
    if "aisp.runtime" in sys.modules:  # only a test that used the default runtime pays for it
        from aisp.runtime import reset_default_runtime

        reset_default_runtime()


# --- PostgreSQL: one throwaway server per session (tests/store/pg.py), a fresh schema per test

@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str | None]:
    url = os.environ.get("AISP_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.store.pg import start_postgres, stop_postgres

    env = start_postgres()
    try:
        yield env["AISP_TEST_POSTGRES_URL"] if env else None
    finally:
        if env:
            stop_postgres(env)


def _schema_url(base: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def fresh_schema_url(pg_base_url: str | None) -> Iterator[str]:
    """A PostgreSQL URL whose connections see only a fresh, empty schema, dropped afterwards."""
    require_service(pg_base_url is not None, "PostgreSQL not available (AISP_TEST_POSTGRES_URL unset, "
                                             ".ci/start-postgres.sh failed)")
    assert pg_base_url is not None
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_base_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield _schema_url(pg_base_url, schema)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def pg_url(pg_base_url: str | None) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema per test."""
    yield from fresh_schema_url(pg_base_url)


@pytest.fixture(scope="module")
def pg_module_url(pg_base_url: str | None) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema per module (for a module's one app)."""
    yield from fresh_schema_url(pg_base_url)
