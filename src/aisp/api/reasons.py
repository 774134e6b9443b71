"""What a failed component's reason may show, and to whom.

A startup step that fails keeps its full text in ``AppContext.errors`` (``"StoreError: cannot
migrate the database (postgresql): connection to server at "db.lan", port 5432 failed"``). That
text can hold the database host, a URL with its password, or a path, so:

- :func:`public_reason` is what the open ``/ready``, viewer keys, the dashboard's shared feed and
  every 503 message may see: the exception's type (``StoreError``) or one of the lifecycle's own
  phrases (``shutting down``), never the message;
- :func:`admin_reason` is what an admin key sees in ``/api/status``: the full text with URL
  passwords, API keys and credential values replaced by ``***`` (the log's redaction,
  :func:`aisp.logs.redact_secrets`, after :func:`aisp.netpolicy.redact_text`);
- :func:`reasons_for` picks one of the two by role.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aisp.logs import redact_secrets
from aisp.netpolicy import redact_text

__all__ = ["admin_reason", "public_reason", "reasons_for"]

#: the lifecycle's own texts (aisp.api.lifecycle); everything else is shown as an exception type
_PHRASES = frozenset({"shutting down", "the runtime could not be built", "still opening"})


def public_reason(error: str) -> str:
    """The exception's type (``OperationalError``) or one of the lifecycle's own phrases
    (``shutting down``), never the exception's message, which may hold the database host, a URL
    or a path; ``failed`` for anything else."""
    head, _, rest = error.partition(":")
    head = head.strip()
    if head in _PHRASES or (re.fullmatch(r"[A-Z][A-Za-z0-9_]{0,79}", head) and not rest.startswith("//")):
        return head
    return "failed"  # anything else may be a host, a URL or a path


def admin_reason(error: str) -> str:
    """The full text, with every password, key and credential value replaced by ``***``."""
    return redact_secrets(redact_text(error))


def reasons_for(errors: Mapping[str, str], role: str | None) -> dict[str, str]:
    """``errors`` as ``role`` may see them: :func:`admin_reason` for ``admin``, else
    :func:`public_reason`."""
    shown = admin_reason if role == "admin" else public_reason
    return {name: shown(text) for name, text in errors.items()}
