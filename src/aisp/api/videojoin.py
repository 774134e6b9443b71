"""Join the MP4 segments of a resumed task into one file, without re-encoding (PyAV remux).

Each attempt of a task writes its own segment (``annotated.mp4`` from frame 0,
``annotated.part-<start>.mp4`` after a resume). Segments come from the same encoder settings, so
their packets can be copied into one container, each segment's timestamps shifted to follow the
previous one. Segments are fragmented MP4: one killed mid-write is read up to its last complete
fragment (a damaged trailing packet is dropped). A segment with no readable frame is skipped and
reported. ``max_frames`` cuts the result after that many frames (the resume point of a task).
The output is fragmented too, and replaces ``out`` atomically.

Before a resumed attempt, :func:`cut_for_resume` joins what earlier attempts left and cuts it to
the frames whose events were saved; :func:`frames_in` says how many frames the segments hold, so
the task can also cut its events back to the video when the kill cost the video's last fragment.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["join_segments", "count_frames", "segments_of", "frames_in", "cut_for_resume"]

log = logging.getLogger("aisp.api")



def _packets(path: Path) -> Any:
    """The video packets of ``path`` that carry data, in order, stopping at damage."""
    import av

    with av.open(str(path)) as src:
        if not src.streams.video:
            return
        stream = src.streams.video[0]
        try:
            for packet in src.demux(stream):
                if packet.dts is None or packet.size == 0:
                    continue
                if packet.is_corrupt:
                    return
                yield stream, packet
        except (av.error.FFmpegError, OSError):  # type: ignore[attr-defined]
            return  # a truncated last fragment: keep what came before


def count_frames(path: Path) -> int:
    """Video frames (packets) readable in ``path``; 0 for an unreadable file."""
    try:
        return sum(1 for _ in _packets(path))
    except Exception:  # noqa: BLE001 - av.open failed: nothing readable
        return 0


def join_segments(segments: list[Path], out: Path, *, max_frames: int | None = None
                  ) -> tuple[list[Path], list[Path]]:
    """Write ``out`` from the readable ``segments`` in order; returns (joined, skipped)."""
    import av

    from aisp.pipeline.sinks import FRAGMENTED_MP4  # the pipeline pulls numpy: imported when needed

    readable = [seg for seg in segments if count_frames(seg) > 0]
    skipped = [seg for seg in segments if seg not in readable]
    if not readable:
        return [], skipped
    tmp = out.with_suffix(".joining.mp4")
    written = 0
    with av.open(str(tmp), "w", options=dict(FRAGMENTED_MP4)) as dst:
        ostream = None
        offset = 0
        for seg in readable:
            end = offset
            for istream, packet in _packets(seg):
                if max_frames is not None and written >= max_frames:
                    break
                if ostream is None:
                    ostream = dst.add_stream_from_template(istream)
                packet.dts += offset
                if packet.pts is not None:
                    packet.pts += offset
                    end = max(end, packet.pts + (packet.duration or 0))
                packet.stream = ostream
                dst.mux(packet)
                written += 1
            offset = end
    tmp.replace(out)
    return readable, skipped


def segments_of(main: Path) -> list[Path]:
    """``main`` (when it exists) and its ``<stem>.part-<start>.mp4`` segments, in order."""
    return ([main] if main.exists() else []) + sorted(main.parent.glob(f"{main.stem}.part-*.mp4"))


def frames_in(main: Path) -> int:
    """Frames readable in ``main`` and its segments."""
    return sum(count_frames(seg) for seg in segments_of(main))


def cut_for_resume(main: Path, kept: int) -> list[Path]:
    """Join ``main`` and its segments into ``main``, cut to ``kept`` frames (0: remove them all);
    returns the segments that were unreadable. The joined segments are removed."""
    segments = segments_of(main)
    parts = [seg for seg in segments if seg != main]
    if not segments:
        return []
    if kept <= 0:  # nothing saved: the video starts over
        for seg in segments:
            seg.unlink(missing_ok=True)
        return []
    if not parts and count_frames(main) <= kept:
        return []
    _joined, skipped = join_segments(segments, main, max_frames=kept)
    for part in parts:
        part.unlink(missing_ok=True)
    return skipped
