from __future__ import annotations

import os
import subprocess
import sys

import pytest

from aisp.errors import ConfigError, StoreError
from aisp.store import Database, Store, current_revision, head_revision, upgrade
from aisp.store.tables import Base


def test_open_migrates_to_head_and_is_idempotent(db_url, settings):
    assert head_revision() == "0005"
    db = Database(db_url)
    try:
        assert current_revision(db) is None
        assert upgrade(db) == (None, "0005")
        assert upgrade(db) == ("0005", "0005")
    finally:
        db.dispose()
    with Store(db_url, settings=settings) as store:
        assert store.revision() == "0005"
        assert store.status()["reachable"] is True


def test_orm_tables_match_the_migrations(store):
    """The ORM classes and the migration scripts describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diffs == []


def test_sqlite_file_uses_wal_and_busy_timeout(tmp_path, settings):
    from sqlalchemy import text

    with Store(f"sqlite:///{tmp_path / 'sub' / 'a.db'}", settings=settings) as store:
        with store.db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    assert (tmp_path / "sub" / "a.db").exists()


def test_default_url_is_sqlite_in_the_data_dir(settings):
    with Store(settings=settings) as store:
        assert store.db.dialect == "sqlite"
    assert (settings.data_dir / "aisp.db").exists()


@pytest.mark.parametrize(
    "url, match",
    [
        ("not a url", "invalid database_url"),
        ("mysql://u@h/db", "expected sqlite:// or postgresql"),
        ("postgresql+asyncpg://u@h/db", "expected 'postgresql\\+psycopg://'"),
    ],
)
def test_bad_urls_are_config_errors(url, match, settings):
    with pytest.raises(ConfigError, match=match) as info:
        Store(url, settings=settings).open()
    assert info.value.field == "database_url"


def test_unreachable_database_is_a_store_error(settings):
    pytest.importorskip("psycopg")
    store = Store("postgresql+psycopg://nobody@127.0.0.1:9/none", settings=settings)
    with pytest.raises(StoreError, match="cannot migrate the database"):
        store.open()
    assert not store.is_open


def test_parts_need_an_open_store(settings, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}", settings=settings)
    with pytest.raises(StoreError, match="not open"):
        store.keys  # noqa: B018
    store.close()  # closing a store that never opened is fine


def _aisp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AISP_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "aisp", *args], capture_output=True, text=True, env=full,
                          timeout=120)


def test_cli_db_upgrade_and_current(db_url, tmp_path):
    env = {"AISP_DATABASE_URL": db_url, "AISP_DATA_DIR": str(tmp_path)}
    res = _aisp("db", "current", env=env)
    assert res.returncode == 0, res.stderr
    assert "revision none" in res.stdout and "run `aisp db upgrade`" in res.stdout
    res = _aisp("db", "upgrade", env=env)
    assert res.returncode == 0, res.stderr
    assert "upgraded from an empty database to revision 0005" in res.stdout
    res = _aisp("db", "current", env=env)
    assert res.returncode == 0 and "revision 0005 (head 0005; up to date)" in res.stdout


def test_cli_db_bad_url_is_one_line_exit_2(tmp_path):
    res = _aisp("db", "upgrade", "--url", "mysql://u@h/db", env={"AISP_DATA_DIR": str(tmp_path)})
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "expected sqlite:// or postgresql" in res.stderr


def test_sqlite_writers_in_threads_and_processes_do_not_collide(tmp_path, settings):
    """Read-then-write transactions from many threads (and a second connection pool, as a second
    process would have) all succeed: BEGIN IMMEDIATE + busy_timeout serialise them."""
    import threading

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    with Store(url, settings=settings) as a, Store(url, settings=settings) as b:
        task = a.tasks.create(source="x", models=["fake"])
        a.tasks.start(task.id, frames_total=10_000)
        errors: list[BaseException] = []
        barrier = threading.Barrier(6)

        def work(store, n):
            try:
                barrier.wait()
                for i in range(40):
                    store.tasks.update(task.id, frames_done=n * 1000 + i)  # read row, then write it
                    store.keys.create("viewer", f"k{n}-{i}")
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(a if n % 2 else b, n)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert a.keys.count() == 240
