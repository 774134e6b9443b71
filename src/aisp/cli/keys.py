"""``aisp keys create|list|revoke``: manage API keys in the store (works while the server runs)."""

from __future__ import annotations

import typer

from aisp.cli._common import console, settings_from_context

app = typer.Typer(
    help="Manage API keys (stored hashed; a key is shown only when created).", no_args_is_help=True
)


def _store(ctx: typer.Context):  # -> aisp.store.Store
    from aisp.store import Store

    settings = settings_from_context(ctx)
    return Store(settings.resolved_database_url, settings=settings).open(background=False)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@app.command("create")
def create(
    ctx: typer.Context,
    role: str = typer.Option("viewer", "--role", help="admin (everything) or viewer (read only)."),
    name: str = typer.Option("", "--name", help="A label for the key, e.g. who uses it."),
) -> None:
    """Create a key and print it once."""
    store = _store(ctx)
    try:
        rec, token = store.keys.create(role, name)
    finally:
        store.close()
    console.print(
        f"created {rec.role} key [bold]{rec.id}[/] ({rec.name or 'no name'}); store it now, "
        "it is not shown again:",
        highlight=False,
    )
    typer.echo(token)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    all_keys: bool = typer.Option(True, "--all/--active", help="Include revoked keys."),
) -> None:
    """List keys (ids, roles, names; never the keys themselves)."""
    from rich.table import Table

    store = _store(ctx)
    try:
        recs = store.keys.list(include_revoked=all_keys)
    finally:
        store.close()
    table = Table("id", "role", "name", "created (UTC)", "last used (UTC)", "state")
    for r in recs:
        table.add_row(
            r.id,
            r.role,
            r.name or "",
            _when(r.created_at),
            _when(r.last_used_at),
            "revoked" if r.revoked_at is not None else "active",
        )
    console.print(table)
    if not recs:
        console.print(
            "no keys yet: 'aisp serve' creates an admin key at first start, or run "
            "'aisp keys create --role admin --name me'"
        )


@app.command("revoke")
def revoke(
    ctx: typer.Context, key_id: str = typer.Argument(..., help="The key id (from 'aisp keys list').")
) -> None:
    """Revoke a key. A running server stops accepting it within 5 seconds."""
    store = _store(ctx)
    try:
        rec = store.keys.revoke(key_id)
    finally:
        store.close()
    console.print(f"revoked {rec.role} key {rec.id} ({rec.name or 'no name'})", highlight=False)
