"""Store fixtures: every store test runs against SQLite and PostgreSQL.

PostgreSQL comes from the session's ``pg_url`` fixture (``tests/conftest.py``). Each test gets
its own empty database: a fresh SQLite file, or a fresh PostgreSQL schema dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


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
