"""One daemon thread per periodic store worker (snapshots, retention), stopped through an Event."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any


class BackgroundLoop(ABC):
    """``start()`` runs :meth:`_loop` on a daemon thread; ``stop()`` sets ``_stop`` and joins it.

    ``_loop`` waits on ``self._stop`` between rounds, so ``stop()`` ends it at once.
    """

    _thread_name = "aisp-store-worker"

    def _init_loop(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _loop(self) -> None: ...

    def start(self) -> Any:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=self._thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
