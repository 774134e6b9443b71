"""The database connection: one SQLAlchemy engine and session factory per :class:`Database`.

SQLite (the default, a file in the data directory) is opened in WAL mode with a busy timeout,
``check_same_thread=False`` and ``BEGIN IMMEDIATE`` transactions, so the server, its background
writers and a second process (``aisp keys create``) can share the file. PostgreSQL is used through psycopg 3
(``postgresql+psycopg://user@host:port/db``); stale pooled connections are detected with
``pool_pre_ping`` so the store recovers by itself after the server comes back.

Driver errors never leave this module raw: :meth:`Database.session` turns a lost or refused
connection into :class:`aisp.errors.StoreError` (HTTP 503) and a constraint violation into
:class:`aisp.errors.ConflictError` (HTTP 409).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from aisp.errors import ConfigError, ConflictError, StoreError

__all__ = ["Database", "redact_url", "SQLITE_BUSY_TIMEOUT_MS"]

log = logging.getLogger("aisp.store")

SQLITE_BUSY_TIMEOUT_MS = 10_000


def redact_url(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, start transactions (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def _sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write transaction waits for
    # another writer (busy_timeout) instead of failing with SQLITE_BUSY when it upgrades its
    # lock, which a deferred BEGIN does under WAL when another thread committed meanwhile.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine plus a session factory for one database URL."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigError(
                f"invalid database_url {url!r}: expected an SQLAlchemy URL such as "
                "'sqlite:///path/aisp.db' or 'postgresql+psycopg://user@host:5432/db'",
                field="database_url",
                value=url,
                expected="an SQLAlchemy URL",
            ) from None
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"unsupported database_url {redact_url(url)!r}: expected sqlite:// or postgresql+psycopg://, "
                f"got the '{self.dialect}' dialect",
                field="database_url",
                value=redact_url(url),
                expected="sqlite or postgresql",
            )
        self.engine = self._create_engine(parsed)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _create_engine(self, parsed: Any) -> Engine:
        try:
            if self.dialect == "sqlite":
                db = parsed.database
                memory = not db or db == ":memory:" or "mode=memory" in str(parsed)
                kwargs: dict[str, Any] = {
                    "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                }
                if memory:
                    # one shared connection, else each thread would see its own empty database
                    kwargs["poolclass"] = StaticPool
                else:
                    Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(parsed, **kwargs)
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "begin", _sqlite_begin)
                return engine
            if parsed.get_driver_name() not in ("psycopg", "psycopg_async"):
                raise ConfigError(
                    f"unsupported PostgreSQL driver in database_url {redact_url(self.url)!r}: "
                    f"expected 'postgresql+psycopg://', got '{parsed.drivername}://'",
                    field="database_url",
                    value=redact_url(self.url),
                    expected="postgresql+psycopg://...",
                )
            from aisp._lazy import require

            require("psycopg")
            return create_engine(
                parsed,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=5,
                pool_timeout=10,
                connect_args={"connect_timeout": 5},
            )
        except NoSuchModuleError as exc:
            raise ConfigError(
                f"cannot use database_url {redact_url(self.url)!r}: {exc}",
                field="database_url",
                value=redact_url(self.url),
            ) from None

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        Raises :class:`StoreError` when the database cannot be reached and
        :class:`ConflictError` on a constraint violation.
        """
        try:
            with self._sessions.begin() as session:
                yield session
        except IntegrityError as exc:
            raise ConflictError(f"database constraint violated: {exc.orig}") from exc
        except DBAPIError as exc:
            text = str(exc.orig).strip() if exc.orig is not None else ""
            reason = text.splitlines()[0] if text else str(exc)
            raise StoreError(
                f"database unavailable ({self.dialect}): {reason}",
                details={"dialect": self.dialect},
            ) from exc

    def ping(self) -> bool:
        """True when a trivial query succeeds."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except DBAPIError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
