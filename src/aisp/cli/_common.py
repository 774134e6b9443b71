"""Helpers shared by the CLI commands: the Rich consoles, settings access and error exits."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from aisp.errors import (
    AISPError,
    ConfigError,
    NotFoundError,
    SourceError,
    UnsupportedMediaError,
    ValidationError,
)

if TYPE_CHECKING:  # pydantic-settings takes ~230 ms to import: `aisp --help` does not pay it
    from aisp.settings import Settings

console = Console()
err_console = Console(stderr=True)

#: Errors caused by what the user passed in: exit code 2, like a usage error.
BAD_INPUT = (ValidationError, NotFoundError, UnsupportedMediaError)


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, BAD_INPUT):
        return 2
    if isinstance(exc, SourceError) and exc.details.get("phase") == "open":
        return 2
    return 1


def print_error(message: str) -> None:
    """One ``error: ...`` line on stderr; the message is printed as text, never as Rich markup."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(exc: AISPError) -> NoReturn:
    """Print one line for an AISP error and exit, without a traceback."""
    print_error(exc.message)
    sys.exit(exit_code_for(exc))


def settings_from_context(ctx: typer.Context) -> Settings:
    """The settings the root callback loaded (``--config``, ``--log-level``, ``AISP_*``)."""
    settings = ctx.find_root().obj
    if settings is None:
        raise ConfigError("no settings: the aisp root command did not run")
    return settings
