"""A shorter GIL switch interval while engines run.

Inference workers spend most of a frame in native code that releases the GIL, then need it back
for a few short Python steps (packets in, results out). With CPython's default 5 ms switch
interval, a worker waiting to get the GIL back from a busy Python thread (the reader, a sink)
can lose up to 5 ms per step (a convoy). Engines lower the interval while they have streams
running and put the previous value back when the last one shuts down. The side-by-side check
that motivated this is in docs/pipeline.md ("GIL switch interval").
"""

from __future__ import annotations

import sys
import threading

__all__ = ["acquire", "release"]

_lock = threading.Lock()
_users = 0
_saved: float | None = None


def acquire(interval: float | None) -> bool:
    """Lower the switch interval to ``interval`` seconds (never raise it); True if counted."""
    global _users, _saved
    if interval is None:
        return False
    if interval <= 0:
        raise ValueError(f"switch interval expected > 0 seconds, got {interval!r}")
    with _lock:
        if _users == 0:
            _saved = sys.getswitchinterval()
        _users += 1
        if sys.getswitchinterval() > interval:
            sys.setswitchinterval(interval)
    return True


def release() -> None:
    global _users, _saved
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0 and _saved is not None:
            sys.setswitchinterval(_saved)
            _saved = None
