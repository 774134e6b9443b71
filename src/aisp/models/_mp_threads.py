"""Where a ``mediapipe.solutions`` graph runs its calculators: on the calling thread, or on a
pool of its own threads.

By default a MediaPipe graph runs its calculators on a thread pool with one thread per core.
AISP never needs that: the pipeline and the API run one graph per worker thread, and each call
waits for its frame to leave the graph (``wait_until_idle()``), so a frame's calculators run one
after another anyway. The pool only adds threads that must be woken for every calculator step:
on 2 cores with 3 API workers, 6 graph threads compete with the workers, the event loop and the
HTTP clients.

With ``threads=0`` (AISP's default, ``ModelConfig.mediapipe_graph_threads``) the graph's default
executor is MediaPipe's ``ApplicationThreadExecutor``: the calculators run on the thread that
calls ``wait_until_idle()``, with the GIL released, so a worker thread does its whole inference
itself and no graph thread exists. The graph and its calculators are unchanged, and so are the
outputs (tested bit for bit against the raw solutions); ``docs/models.md`` ("No graph threads")
has the throughput measured both ways. ``threads=N`` gives each graph a pool of N
threads instead.

``SolutionBase.__init__`` builds its ``CalculatorGraph`` itself, from the module it imported as
``calculator_graph``, and offers no way to pass executor options. :func:`graph_threads` therefore
puts a stand-in for that module into ``mediapipe.python.solution_base`` once: it forwards
everything to the real module, except that ``CalculatorGraph(graph_config=...)`` first sets the
default executor when the calling thread is inside a :func:`graph_threads` block. Graphs built
anywhere else (other code in the process, other threads) are untouched. A graph config that
already chose its threads or its executor type is left as it is. If MediaPipe's internals are
not what this expects, nothing is changed and graphs keep MediaPipe's default.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger("aisp.models")

__all__ = ["graph_threads", "set_default_executor", "CALLER"]

#: MediaPipe's executor type that runs calculators on the thread waiting for the graph.
CALLER = "ApplicationThreadExecutor"

_local = threading.local()
_install_lock = threading.Lock()


class _GraphModule:
    """Stands in for ``solution_base.calculator_graph``: the real module, plus the executor choice."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def CalculatorGraph(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - MediaPipe's name
        threads = getattr(_local, "threads", None)
        config = kwargs.get("graph_config")
        if threads is not None and config is not None and hasattr(config, "executor"):
            set_default_executor(config, threads)
        return self._real.CalculatorGraph(*args, **kwargs)


def set_default_executor(config: Any, threads: int) -> bool:
    """Make ``config``'s (a ``CalculatorGraphConfig``) default executor the calling thread
    (``threads=0``) or a pool of ``threads`` threads, unless the config chose its threads or its
    executor type itself. True when it was set."""
    from mediapipe.framework import thread_pool_executor_pb2

    if config.num_threads:
        return False
    defaults = [executor for executor in config.executor if not executor.name]
    executor = defaults[0] if defaults else None
    if executor is not None:
        if executor.type:
            return False
        options = executor.options.Extensions[thread_pool_executor_pb2.ThreadPoolExecutorOptions.ext]
        if options.num_threads:
            return False
    if threads == 0:
        if executor is None:
            executor = config.executor.add()
        executor.ClearField("options")
        executor.type = CALLER
    elif executor is None:
        config.num_threads = threads
    else:
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
            "cannot choose mediapipe graph executors (%s: %s); using the default", type(exc).__name__, exc
        )
        return False


@contextmanager
def graph_threads(threads: int) -> Iterator[bool]:
    """Within this block, ``mediapipe.solutions`` graphs built on this thread run on the calling
    thread (``threads=0``) or on a pool of ``threads`` threads. Yields whether that applies."""
    if threads < 0:
        raise ValueError(f"threads must be 0 (the calling thread) or more, got {threads}")
    active = _install()
    previous = getattr(_local, "threads", None)
    _local.threads = threads if active else None
    try:
        yield active
    finally:
        _local.threads = previous
