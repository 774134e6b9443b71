"""``aisp serve``: start the API server (uvicorn) with the settings from ``--config``/``AISP_*``."""

from __future__ import annotations

import typer

from aisp.cli._common import settings_from_context


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Address to bind (default AISP_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port to listen on (default AISP_PORT, 8000)."
    ),
) -> None:
    """Serve the API, the dashboard and the live streams until SIGTERM or Ctrl-C.

    On the first start with auth on, an admin API key is created and logged once.
    """
    from aisp.server import serve as run_server

    settings = settings_from_context(ctx)
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
    run_server(settings)
