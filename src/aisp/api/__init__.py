"""The AISP HTTP API: ``create_app()`` builds the one FastAPI app (see :mod:`aisp.api.app`).

``import aisp.api`` is light; FastAPI is imported when ``create_app`` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]

if TYPE_CHECKING:  # pragma: no cover
    from aisp.api.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from aisp.api.app import create_app

        return create_app
    raise AttributeError(f"module 'aisp.api' has no attribute {name!r}")
