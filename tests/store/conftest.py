"""Store fixtures: every store test runs against SQLite and PostgreSQL.

PostgreSQL comes from ``AISP_TEST_POSTGRES_URL``, else from a server this session starts with
``.ci/start-postgres.sh`` on a free port and stops when it ends; when
neither works the PostgreSQL cases skip locally and fail in CI (``require_service``). Each test
gets its own empty database: a fresh SQLite file, or a fresh PostgreSQL schema (selected with
``search_path``) dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.store.pg import start_postgres, stop_postgres


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str | None]:
    url = os.environ.get("AISP_TEST_POSTGRES_URL")
    if url:
        yield url
        return
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


@pytest.fixture
def pg_url(pg_base_url: str | None) -> Iterator[str]:
    """A PostgreSQL URL whose connections see only a fresh, empty schema."""
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str, settings) -> Iterator:
    from aisp.store import Store

    s = Store(db_url, settings=settings, event_flush_interval=0.05).open()
    # Tests write rows with small fake timestamps; stop the retention worker (its first round
    # has run when stop() returns) so it cannot delete them mid-test. Retention has its own tests.
    s.retention.stop()
    yield s
    s.close()
