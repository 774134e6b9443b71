"""``aisp models``: every model AISP knows, with its status (Rich table or ``--json``).

Status is ``available``, ``missing_dependency`` (with the ``pip install 'aisp[extra]'`` hint) or
``loaded`` (with size and load time). ``--load NAME`` loads models first (through the model
cache, as the server would), so their load time shows.
"""

from __future__ import annotations

import json
import sys

import typer

from aisp.cli._common import console, settings_from_context


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    load: list[str] | None = typer.Option(
        None, "--load", "-l", help="Load this model first (repeatable), e.g. --load face_detection."
    ),
) -> None:
    """List the models with backend, status, install hint, size and load time."""
    from aisp.runtime import build

    with build(settings_from_context(ctx), store=False) as runtime:
        for name in load or []:
            runtime.models.load(name)
        infos = runtime.models.list()
    if as_json:
        sys.stdout.write(json.dumps([i.to_dict() for i in infos], indent=2) + "\n")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="AISP models", title_justify="left")
    for col, kw in (
        ("name", {"style": "bold", "no_wrap": True}),
        ("backend", {"no_wrap": True}),
        ("status", {"no_wrap": True}),
        ("size", {"justify": "right", "no_wrap": True}),
        ("load", {"justify": "right", "no_wrap": True}),
        ("sharing", {"no_wrap": True}),
        ("install hint", {}),
    ):
        table.add_column(col, **kw)
    colours = {"available": "green", "loaded": "cyan", "missing_dependency": "yellow"}
    for info in infos:
        status = f"[{colours.get(info.status, 'white')}]{info.status}[/]"
        load_ms = "-" if info.load_ms is None else f"{info.load_ms:.0f} ms"
        sharing = "shared" if info.thread_safe else "per worker"
        if info.instances > 1:
            sharing += f" x{info.instances}"
        table.add_row(
            escape(info.name),
            info.backend,
            status,
            _size(info.size_bytes),
            load_ms,
            sharing,
            escape(info.install_hint or ""),
        )
    console.print(table)
