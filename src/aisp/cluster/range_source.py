"""``RangeSource``: frames ``[start, end)`` of a finite source, for one range of a split task.

The pipeline reads a source from ``start_frame`` to its end; a range of a split task must stop at
``end``, the first frame of the next range. This wrapper ends the source there (``read`` returns
None), so the engine, its sinks and :func:`aisp.pipeline.run_job` run unchanged: the same reader,
the same frame indexes (global, counted from the start of the file), the same outputs. The seek
goes to the wrapped source, so a video file jumps to the keyframe at the start of the range
instead of decoding the frames before it.
"""

from __future__ import annotations

from aisp.pipeline.sources import Source, SourceFrame

__all__ = ["RangeSource"]


class RangeSource(Source):
    """``inner`` up to (not including) frame ``end``; ``end=None``: to the end of ``inner``."""

    def __init__(self, inner: Source, end: int | None) -> None:
        if end is not None and end < 0:
            raise ValueError(f"end expected >= 0 or None, got {end!r}")
        super().__init__(inner.name)
        self.inner = inner
        self.end = end
        self.live = False

    def open(self) -> None:
        self.inner.decode_threads = self.decode_threads  # the engine sets the plan's on this object
        self.inner.open()
        self.fps = self.inner.fps
        total, end = self.inner.total_frames, self.end
        self.total_frames = end if total is None else (total if end is None else min(total, end))
        self.frames_read = self.inner.frames_read

    def seek(self, index: int) -> int:
        self.frames_read = self.inner.seek(index)
        return self.frames_read

    def read(self) -> SourceFrame | None:
        if self.end is not None and self.frames_read >= self.end:
            return None
        item = self.inner.read()
        if item is not None:
            self.frames_read += 1
        return item

    def close(self) -> None:
        self.inner.close()

    def interrupt(self) -> None:
        self.inner.interrupt()
