"""The API's side of the source policy: one :class:`~aisp.netpolicy.SourcePolicy` per app.

Every route that takes a source (``POST /api/tasks``, ``POST /api/streams``, streams restored
at startup, task retries) calls :func:`check_source` at the edge (403 ``SOURCE_NOT_ALLOWED``
naming the setting to change) and opens it through :func:`api_source`, a
:class:`~aisp.pipeline.policy_source.PolicySource` that checks it again on every (re)connect,
decodes with an explicit protocol whitelist, and reports open failures with one generic text.
The CLI never comes here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aisp.netpolicy import SourcePolicy

if TYPE_CHECKING:
    from aisp.api.context import AppContext
    from aisp.settings import Settings

__all__ = ["source_policy", "check_source", "api_source", "ensure_media_dir"]

log = logging.getLogger("aisp.api")


def ensure_media_dir(settings: Settings) -> Path | None:
    """Create the default media directory (``<data_dir>/media``) when no ``media_dirs`` are set,
    so that the operator has a place to put files the API may open."""
    if settings.media_dirs:
        return None
    media = Path(settings.data_dir) / "media"
    try:
        media.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create the media directory %s: %s", media, exc)
        return None
    return media


def source_policy(ctx: AppContext) -> SourcePolicy:
    """This app's policy, built from its settings on first use."""
    policy: SourcePolicy | None = getattr(ctx, "_source_policy", None)
    if policy is None:
        with ctx._lock:
            policy = getattr(ctx, "_source_policy", None)
            if policy is None:
                policy = SourcePolicy.from_settings(ctx.settings)
                ctx._source_policy = policy  # type: ignore[attr-defined]
    return policy


def check_source(ctx: AppContext, source: str) -> str:
    """Raise ``SourceNotAllowedError`` (403) or ``ValidationError`` (400) unless the policy allows
    ``source``; returns what it resolves to (the real path, or the URL)."""
    return source_policy(ctx).check_source(source)


def api_source(ctx: AppContext, source: str, *, live: bool | None = None, finite_ends: bool = False,
               read_timeout: float = 10.0) -> Any:
    """A :class:`~aisp.pipeline.policy_source.PolicySource` for ``source`` (not opened yet)."""
    from aisp.pipeline.policy_source import PolicySource  # the pipeline pulls numpy: imported late

    return PolicySource(source, source_policy(ctx), live=live, finite_ends=finite_ends,
                        read_timeout=read_timeout)
