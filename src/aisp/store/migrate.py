"""Alembic, driven from code: the migration scripts ship inside the package
(``aisp/store/migrations``), so no ``alembic.ini`` is needed in the working directory.

PostgreSQL upgrades take a transaction-scoped advisory lock, so two processes starting
together (a server and ``aisp keys create``) do not both create the tables.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from aisp.errors import StoreError
from aisp.store.db import Database

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config

__all__ = ["MIGRATIONS_DIR", "alembic_config", "upgrade", "current_revision", "head_revision"]

log = logging.getLogger("aisp.store")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_ID = 0x41495350  # "AISP"


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise StoreError(f"database unavailable ({db.dialect}): {exc.orig}") from exc


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply migrations up to ``revision``; returns (revision before, revision after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    cfg = alembic_config()
    try:
        with db.engine.begin() as conn:
            if db.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
            before = MigrationContext.configure(conn).get_current_revision()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            after = MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise StoreError(
            f"cannot migrate the database ({db.dialect}): {str(exc.orig).strip() if exc.orig else exc}",
            details={"dialect": db.dialect},
        ) from exc
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    return before, after
