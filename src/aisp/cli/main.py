"""``aisp``: the root Typer app. Loads settings (``--config``), sets up logging, registers the
commands, and turns AISP errors into one line on stderr and an exit code (2 for bad input and
bad configuration), never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from aisp import __version__
from aisp.cli import bench as bench_cmd
from aisp.cli import db as db_cmd
from aisp.cli import keys as keys_cmd
from aisp.cli import models as models_cmd
from aisp.cli import remote as remote_cmd
from aisp.cli import run as run_cmd
from aisp.cli import serve as serve_cmd
from aisp.cli._common import err_console, exit_code_for, fail
from aisp.errors import AISPError

app = typer.Typer(
    name="aisp",
    help="AISP: real-time AI vision serving. A warm model cache, a frame pipeline and one API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aisp {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="TOML settings file (flat keys named like the settings).",
        envvar="AISP_CONFIG",
    ),
    log_level: str | None = typer.Option(None, "--log-level", help="Override AISP_LOG_LEVEL."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Load settings once for every command (they travel in the click context, not in a global)."""
    # imported here: pydantic-settings takes ~230 ms to import, and `aisp --help` does not need it
    from aisp.logs import configure_logging
    from aisp.settings import load_settings

    overrides = {"log_level": log_level.upper()} if log_level else {}
    settings = load_settings(config, **overrides)
    ctx.obj = settings
    configure_logging(settings.log_level, settings.log_format)


app.command("serve")(serve_cmd.serve)
app.command("run")(run_cmd.run)
app.command("models")(models_cmd.models)
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(db_cmd.app, name="db")
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(remote_cmd.app, name="remote")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, prog_name="aisp")
    except AISPError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(exit_code_for(KeyboardInterrupt()))


if __name__ == "__main__":  # pragma: no cover
    main()
