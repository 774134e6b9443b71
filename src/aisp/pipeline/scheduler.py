"""The shared work queue: per-stream bounded queues, priorities and fair sharing.

Each stream has its own bounded FIFO (:class:`StreamQueue`). Workers call :meth:`Scheduler.get`,
which picks, among the streams with queued frames and room in flight:

1. the highest ``priority`` first (strict);
2. among equal priorities, the stream with the smallest *pass* (stride scheduling with equal
   weights): each frame taken advances the stream's pass by one, so equal streams alternate
   and a stream that was idle re-enters at the current virtual time, not with a burst.

``put`` applies backpressure to finite sources (waits for room) and never blocks for live
ones: it drops the oldest (default) or the newest frame and reports the drop. Under memory
pressure live queues shrink to one frame. The number of frames taken but not yet released to
the sinks (``inflight``) is bounded, which bounds each stream's reorder buffer.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from aisp.pipeline.frame_types import Frame

__all__ = ["StreamQueue", "Scheduler"]


class StreamQueue:
    def __init__(
        self,
        stream_id: str,
        *,
        priority: int,
        capacity: int,
        live: bool,
        drop_policy: str,
        max_inflight: int,
        max_batch: int,
        on_drained: Callable[[int], None] | None,
        batch_delay: float = 0.0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity expected >= 1, got {capacity!r}")
        if drop_policy not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"drop_policy expected 'drop_oldest' or 'drop_newest', got {drop_policy!r}")
        self.stream_id = stream_id
        self.priority = priority
        self.capacity = capacity
        self.base_capacity = capacity
        self.live = live
        self.drop_policy = drop_policy
        self.max_inflight = max(1, max_inflight)
        self.max_batch = max(1, max_batch)
        self.batch_delay = max(0.0, batch_delay)
        self.on_drained = on_drained
        self.items: deque[Frame] = deque()
        self.closed = False
        self.inflight = 0
        self.next_seq = 0
        self.pass_ = 0.0
        self.taken = 0
        self._drained_sent = False


class Scheduler:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        self._queues: dict[str, StreamQueue] = {}
        self._vtime = 0.0
        self._shutdown = False
        self._pressure = False

    # -- streams ------------------------------------------------------------------------
    def add(
        self,
        stream_id: str,
        *,
        priority: int,
        capacity: int,
        live: bool,
        drop_policy: str,
        max_inflight: int,
        max_batch: int,
        on_drained: Callable[[int], None] | None,
        batch_delay: float = 0.0,
    ) -> StreamQueue:
        """A new queue for ``stream_id`` (see :class:`StreamQueue` for the arguments).
        ``batch_delay`` (seconds): how long a worker that finds fewer than ``max_batch`` frames
        waits for more (dynamic batching's max queue delay; 0: take what is there)."""
        q = StreamQueue(stream_id, priority=priority, capacity=capacity, live=live, drop_policy=drop_policy,
                        max_inflight=max_inflight, max_batch=max_batch, on_drained=on_drained,
                        batch_delay=batch_delay)
        with self._lock:
            if stream_id in self._queues:
                raise ValueError(f"stream {stream_id!r} already has a queue")
            if self._pressure and q.live:
                q.capacity = 1
            self._queues[stream_id] = q
        return q

    def remove(self, stream_id: str) -> None:
        with self._lock:
            self._queues.pop(stream_id, None)

    # -- producer side ------------------------------------------------------------------
    def put(self, q: StreamQueue, item: Frame) -> int:
        """Queue ``item``; returns the number of frames dropped (0 or 1). Blocks only for finite sources."""
        with self._lock:
            if q.closed or self._shutdown:
                return 0
            dropped = 0
            if q.live:
                if len(q.items) >= q.capacity:
                    if q.drop_policy == "drop_newest":
                        return 1
                    while len(q.items) >= q.capacity:
                        q.items.popleft()
                        dropped += 1
            else:
                self._space.wait_for(lambda: len(q.items) < q.capacity or q.closed or self._shutdown)
                if q.closed or self._shutdown:
                    return 0
            if not q.items:
                q.pass_ = max(q.pass_, self._vtime)
            q.items.append(item)
            if q.batch_delay > 0:
                self._work.notify_all()  # a worker filling a batch waits on this too
            else:
                self._work.notify()
        return dropped

    def close(self, q: StreamQueue) -> None:
        """No more frames will be put; the drained callback fires once the queue is empty."""
        drained: list[tuple[StreamQueue, int]] = []
        with self._lock:
            q.closed = True
            self._space.notify_all()
            self._collect_drained(q, drained)
        self._fire(drained)

    def clear(self, q: StreamQueue) -> int:
        """Discard queued frames (stop, failure); returns how many."""
        drained: list[tuple[StreamQueue, int]] = []
        with self._lock:
            n = len(q.items)
            q.items.clear()
            self._space.notify_all()
            self._collect_drained(q, drained)
        self._fire(drained)
        return n

    # -- consumer side ------------------------------------------------------------------
    def _eligible(self) -> StreamQueue | None:
        best: StreamQueue | None = None
        for q in self._queues.values():
            if not q.items or q.inflight >= q.max_inflight:
                continue
            if best is None or q.priority > best.priority or (
                q.priority == best.priority and q.pass_ < best.pass_
            ):
                best = q
        return best

    def get(self, timeout: float | None = None) -> tuple[StreamQueue, list[Frame]] | None:
        """Take a batch (up to the stream's ``max_batch``) from the stream due next.

        Returns None on shutdown or after ``timeout``. Each item gets ``.seq`` set in stream order.
        """
        drained: list[tuple[StreamQueue, int]] = []
        with self._lock:
            while True:
                self._work.wait_for(lambda: self._shutdown or self._eligible() is not None, timeout)
                if self._shutdown:
                    return None
                q = self._eligible()
                if q is None:
                    return None
                if not self._fill(q):
                    break
                if q.items and q.inflight < q.max_inflight:
                    break  # another worker may have taken them while this one waited: look again
            n = min(len(q.items), q.max_batch, q.max_inflight - q.inflight)
            batch = []
            for _ in range(n):
                item = q.items.popleft()
                item.seq = q.next_seq
                q.next_seq += 1
                batch.append(item)
            q.inflight += n
            q.taken += n
            self._vtime = q.pass_
            q.pass_ += n
            self._space.notify_all()
            self._collect_drained(q, drained)
        self._fire(drained)
        return q, batch

    def _fill(self, q: StreamQueue) -> bool:
        """Wait up to ``q.batch_delay`` for ``q`` to hold a full batch (lock held; the wait releases
        it, so producers keep putting). True if it waited."""
        want = min(q.max_batch, q.max_inflight - q.inflight, q.capacity)
        if q.batch_delay <= 0 or want <= 1 or len(q.items) >= want or q.closed:
            return False
        self._space.notify_all()  # a producer blocked on a full queue may add the missing frames
        self._work.wait_for(lambda: self._shutdown or q.closed or len(q.items) >= want, q.batch_delay)
        return True

    def done(self, q: StreamQueue, n: int = 1) -> None:
        """``n`` frames of ``q`` left the pipeline (released to the sinks)."""
        with self._lock:
            q.inflight -= n
            self._work.notify_all()

    # -- memory guard and shutdown --------------------------------------------------------
    def set_pressure(self, on: bool) -> dict[str, int]:
        """Shrink live queues to one frame (dropping the oldest) or restore them; drops per stream."""
        drops: dict[str, int] = {}
        with self._lock:
            self._pressure = on
            for q in self._queues.values():
                if not q.live:
                    continue
                q.capacity = 1 if on else q.base_capacity
                n = 0
                while len(q.items) > q.capacity:
                    q.items.popleft()
                    n += 1
                if n:
                    drops[q.stream_id] = n
        return drops

    @property
    def pressure(self) -> bool:
        return self._pressure

    def shutdown(self) -> None:
        with self._lock:
            self._shutdown = True
            self._work.notify_all()
            self._space.notify_all()

    def depth(self, q: StreamQueue) -> dict[str, int]:
        with self._lock:
            return {"input": len(q.items), "inflight": q.inflight, "capacity": q.capacity}

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _collect_drained(q: StreamQueue, out: list[tuple[StreamQueue, int]]) -> None:
        if q.closed and not q.items and not q._drained_sent:
            q._drained_sent = True
            out.append((q, q.next_seq))

    @staticmethod
    def _fire(drained: list[tuple[StreamQueue, int]]) -> None:
        for q, total in drained:
            if q.on_drained is not None:
                q.on_drained(total)
