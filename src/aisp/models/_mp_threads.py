"""How many executor threads a ``mediapipe.solutions`` graph gets.

A MediaPipe graph runs its calculators on a thread pool with one thread per core by default.
AISP never needs that: the pipeline and the API run one graph per worker thread, and each call
waits for its frame to leave the graph, so a frame's calculators run one after another anyway.
With the default, every graph adds a thread per core that must be woken for each calculator
step; on 2 cores with 2 API workers that is 4 graph threads competing with the workers, the event
loop and the HTTP clients. One executor thread per graph gives the same outputs (the graph and
its calculators are unchanged) for less CPU: measured on 2 cores, ``POST /api/frames/process``
with face detection at concurrency 8 took 2.8 ms of graph-thread CPU per request instead of 3.1,
and served 7% more requests per second (``docs/PERFORMANCE.md``).

``SolutionBase.__init__`` builds its ``CalculatorGraph`` itself, from the module it imported as
``calculator_graph``, and offers no way to pass executor options. :func:`graph_threads` therefore
puts a stand-in for that module into ``mediapipe.python.solution_base`` once: it forwards
everything to the real module, except that ``CalculatorGraph(graph_config=...)`` first sets the
default executor's thread count when the calling thread is inside a :func:`graph_threads` block.
Graphs built anywhere else (other code in the process, other threads) are untouched. A graph
config that already sets its own threads, or names another executor type, is left as it is. If
MediaPipe's internals are not what this expects, nothing is changed and graphs keep the default.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger("aisp.models")

__all__ = ["graph_threads", "limit_executor_threads"]

_local = threading.local()
_install_lock = threading.Lock()


class _GraphModule:
    """Stands in for ``solution_base.calculator_graph``: the real module, plus the thread cap."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def CalculatorGraph(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - MediaPipe's name
        threads = getattr(_local, "threads", 0)
        config = kwargs.get("graph_config")
        if threads > 0 and config is not None and hasattr(config, "executor"):
            limit_executor_threads(config, threads)
        return self._real.CalculatorGraph(*args, **kwargs)


def limit_executor_threads(config: Any, threads: int) -> bool:
    """Give ``config`` (a ``CalculatorGraphConfig``) a default executor of ``threads`` threads,
    unless the config chose its threads or its executor type itself. True when it was set."""
    from mediapipe.framework import thread_pool_executor_pb2

    if config.num_threads:
        return False
    defaults = [executor for executor in config.executor if not executor.name]
    if not defaults:
        config.num_threads = threads
        return True
    executor = defaults[0]
    if executor.type and executor.type != "ThreadPoolExecutor":
        return False
    options = executor.options.Extensions[thread_pool_executor_pb2.ThreadPoolExecutorOptions.ext]
    if options.num_threads:
        return False
    options.num_threads = threads
    return True


def _install() -> bool:
    """Put the stand-in into ``solution_base`` (once). False when MediaPipe differs."""
    try:
        from mediapipe.python import solution_base

        with _install_lock:
            current = solution_base.calculator_graph
            if not isinstance(current, _GraphModule):
                if not callable(getattr(current, "CalculatorGraph", None)):
                    raise AttributeError("solution_base.calculator_graph has no CalculatorGraph")
                solution_base.calculator_graph = _GraphModule(current)
        return True
    except Exception as exc:  # another mediapipe version: keep its default executor
        logger.debug(
            "cannot set mediapipe graph threads (%s: %s); using the default", type(exc).__name__, exc
        )
        return False


@contextmanager
def graph_threads(threads: int) -> Iterator[bool]:
    """Within this block, ``mediapipe.solutions`` graphs built on this thread get ``threads``
    executor threads; 0 keeps MediaPipe's default (one per core). Yields whether the cap applies."""
    active = threads > 0 and _install()
    previous = getattr(_local, "threads", 0)
    _local.threads = threads if active else 0
    try:
        yield active
    finally:
        _local.threads = previous
