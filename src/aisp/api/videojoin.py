"""Join the MP4 segments of a resumed task into one file, without re-encoding (PyAV remux).

Each attempt of a task writes its own segment (``annotated.mp4`` from frame 0,
``annotated.part-<start>.mp4`` after a resume). Segments come from the same encoder settings, so
their packets can be copied into one container, each segment's timestamps shifted to follow the
previous one. A segment that cannot be read (the process was killed before the MP4 index was
written) is skipped and reported.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["join_segments"]

log = logging.getLogger("aisp.api")


def join_segments(segments: list[Path], out: Path) -> tuple[list[Path], list[Path]]:
    """Write ``out`` from the readable ``segments`` in order; returns (joined, skipped)."""
    import av

    readable: list[Path] = []
    skipped: list[Path] = []
    for seg in segments:
        try:
            with av.open(str(seg)) as src:
                if src.streams.video and src.streams.video[0].frames != 0:
                    readable.append(seg)
                    continue
        except (av.error.FFmpegError, OSError):  # type: ignore[attr-defined]
            pass
        skipped.append(seg)
    if not readable:
        return [], skipped
    tmp = out.with_suffix(".joining.mp4")
    with av.open(str(tmp), "w") as dst:
        ostream = None
        offset = 0
        for seg in readable:
            with av.open(str(seg)) as src:
                istream = src.streams.video[0]
                if ostream is None:
                    ostream = dst.add_stream_from_template(istream)
                end = offset
                for packet in src.demux(istream):
                    if packet.dts is None:
                        continue
                    packet.dts += offset
                    if packet.pts is not None:
                        packet.pts += offset
                        end = max(end, packet.pts + (packet.duration or 0))
                    packet.stream = ostream
                    dst.mux(packet)
                offset = end
    tmp.replace(out)
    return readable, skipped
