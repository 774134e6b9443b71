"""``aisp db upgrade`` and ``aisp db current``: the database schema (Alembic migrations).

The server migrates by itself at startup; these commands do it, or show where it stands,
without starting the server. The URL is ``AISP_DATABASE_URL`` (``--url`` overrides it);
empty means SQLite in the data directory. SQLAlchemy is imported inside the commands only.
"""

from __future__ import annotations

import typer

from aisp.cli._common import console, settings_from_context

app = typer.Typer(help="Database schema: apply migrations, show the current revision.", no_args_is_help=True)

_URL = typer.Option(None, "--url",
                    help="SQLAlchemy URL; default: AISP_DATABASE_URL or SQLite in the data dir.")


def _database(ctx: typer.Context, url: str | None):  # -> aisp.store.Database
    from aisp.store.db import Database

    return Database(url or settings_from_context(ctx).resolved_database_url)


@app.command("upgrade")
def upgrade(ctx: typer.Context, url: str | None = _URL) -> None:
    """Apply every pending migration (idempotent)."""
    from aisp.store.db import redact_url
    from aisp.store.migrate import upgrade as run_upgrade

    db = _database(ctx, url)
    try:
        before, after = run_upgrade(db)
    finally:
        db.dispose()
    where = redact_url(db.url)
    if before == after:
        console.print(f"{where}: already at revision {after}", highlight=False)
    else:
        console.print(f"{where}: upgraded from {before or 'an empty database'} to revision {after}",
                      highlight=False)


@app.command("current")
def current(ctx: typer.Context, url: str | None = _URL) -> None:
    """Show the database's schema revision and the newest one this version knows."""
    from aisp.store.db import redact_url
    from aisp.store.migrate import current_revision, head_revision

    db = _database(ctx, url)
    try:
        rev = current_revision(db)
    finally:
        db.dispose()
    head = head_revision()
    state = "up to date" if rev == head else "run `aisp db upgrade`"
    console.print(f"{redact_url(db.url)}: revision {rev or 'none'} (head {head}; {state})", highlight=False)
