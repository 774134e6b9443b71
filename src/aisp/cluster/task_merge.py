"""``RangeMerger``: the ranges' results, accepted once each, written in frame order.

Ranges finish in any order; the task's outputs must read as one run from the first frame. So:

- :meth:`RangeMerger.accept` takes a range's result once (a second result for the same range, a
  redo that raced the first, is dropped) and stages it under ``<task dir>/.ranges/``;
- the contiguous prefix of staged ranges is then promoted: the video segment becomes
  ``annotated.part-<range start>.mp4`` and the events are appended to the attempt's
  ``events.part-<start>.jsonl``, video first, so whatever a crash leaves holds at least as many
  video frames as events;
- at the end the task runner folds and joins them exactly as for a resumed single-machine task
  (:mod:`aisp.api.task_outputs`): ``events.jsonl`` and ``annotated.mp4``, in frame order, each
  frame once, with the frame indexes of the source (global, not per range).

What is on disk under the task's own names is always a prefix of the task, so the resume point of
an interrupted attempt (:func:`aisp.api.task_outputs.resume_point`) is right; staged ranges past
a gap are dropped at the next attempt and redone.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

from aisp.cluster.task_worker import RangeResult

__all__ = ["RangeMerger", "STAGING"]

log = logging.getLogger("aisp.cluster")

#: the task's staging folder for ranges that finished before the ones before them
STAGING = ".ranges"


class RangeMerger:
    """Accepts ranges ``0..count-1`` of one attempt that starts at source frame ``start``."""

    def __init__(self, task_dir: Path, start: int, count: int, range_starts: list[int]) -> None:
        self.task_dir = task_dir
        self.start = start
        self.count = count
        self.range_starts = range_starts
        self.staging = task_dir / STAGING
        shutil.rmtree(self.staging, ignore_errors=True)  # an earlier attempt's leftovers: redone
        self.staging.mkdir(parents=True)
        self.events_path = task_dir / f"events.part-{start:09d}.jsonl"
        self._accepted: dict[int, RangeResult] = {}
        self._promoted = 0
        self._lock = threading.Lock()

    @property
    def frames(self) -> int:
        """Frames of the accepted ranges (the task's progress)."""
        with self._lock:
            return sum(r.frames for r in self._accepted.values())

    @property
    def promoted(self) -> int:
        """How many ranges, from the first, are in the task's outputs."""
        with self._lock:
            return self._promoted

    @property
    def saved_frames(self) -> int:
        """Frames of the promoted prefix: what the task's outputs hold once folded (an attempt
        that stops early keeps these; accepted ranges past a gap are redone)."""
        with self._lock:
            return sum(self._accepted[i].frames for i in range(self._promoted))

    @property
    def done(self) -> bool:
        with self._lock:
            return self._promoted == self.count

    def accepted(self, index: int) -> bool:
        with self._lock:
            return index in self._accepted

    def accept(self, result: RangeResult) -> bool:
        """Stage and promote ``result``; False (and nothing written) if its range was already
        accepted or the result is not a complete range."""
        if not result.complete or not 0 <= result.index < self.count:
            return False
        with self._lock:
            if result.index in self._accepted:
                log.info("range %d of task %s came back twice; the second is dropped", result.index,
                         result.task_id)
                return False
            self._accepted[result.index] = result
            self._stage(result)
            self._promote()
        return True

    def _stage(self, result: RangeResult) -> None:
        base = self.staging / f"{result.index:06d}"
        if result.video:
            base.with_suffix(".mp4").write_bytes(result.video)
        base.with_suffix(".jsonl").write_bytes(result.events)
        result.events, result.video = b"", None  # written: do not hold them in memory too

    def _promote(self) -> None:
        while self._promoted < self.count and self._promoted in self._accepted:
            i = self._promoted
            base = self.staging / f"{i:06d}"
            video = base.with_suffix(".mp4")
            if video.exists():
                video.replace(self.task_dir / f"annotated.part-{self.range_starts[i]:09d}.mp4")
            events = base.with_suffix(".jsonl")
            with open(self.events_path, "ab") as dst:
                dst.write(events.read_bytes())
            events.unlink()
            self._promoted += 1

    def close(self) -> None:
        """Remove the staging folder (ranges past a gap are redone by the next attempt)."""
        shutil.rmtree(self.staging, ignore_errors=True)
