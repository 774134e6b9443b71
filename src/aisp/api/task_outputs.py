"""A task's output files: the events parts folded into ``events.jsonl``, the resume point read
from them, and the video segments joined (:mod:`aisp.api.videojoin`).

Each attempt of a task writes ``events.part-<start>.jsonl`` and, with a video,
``annotated.mp4`` (the first attempt) or ``annotated.part-<start>.mp4``. Between attempts,
:func:`fold_events` appends every complete line of the parts to ``events.jsonl`` (a line cut by
a crash is dropped), :func:`resume_point` reads where to go on, :func:`cut_events` cuts the
events back to the frames the video holds when a kill cost the video's last fragment, and
:func:`prepare_video` / :func:`join_video` join the segments into ``annotated.mp4``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aisp.api.videojoin import cut_for_resume, join_segments

__all__ = ["EVENTS", "VIDEO", "fold_events", "resume_point", "cut_events", "prepare_video", "join_video"]

log = logging.getLogger("aisp.api")

EVENTS = "events.jsonl"
VIDEO = "annotated.mp4"


def fold_events(task_dir: Path) -> None:
    """Append the complete lines of each ``events.part-*.jsonl`` to ``events.jsonl``, in order.

    A line without its newline was cut by a crash (the sink writes whole lines) and is dropped.
    """
    parts = sorted(task_dir.glob("events.part-*.jsonl"))
    if not parts:
        return
    with open(task_dir / EVENTS, "a", encoding="utf-8") as dst:
        for part in parts:
            with open(part, encoding="utf-8", errors="replace") as src:
                for line in src:
                    if line.endswith("\n") and line.strip():
                        dst.write(line)
            dst.flush()
            part.unlink()


def resume_point(task_dir: Path, every: int = 1) -> tuple[int, int]:
    """(next source frame to process, number of saved events), after folding the parts.

    The next frame is the last saved index + ``every``: the engine keeps frames where
    ``(index - start_frame) % every == 0``, so this stays on the first attempt's grid.
    """
    fold_events(task_dir)
    path = task_dir / EVENTS
    if not path.exists():
        return 0, 0
    count, last = 0, -1
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                last = int(json.loads(line)["index"])
            except (ValueError, KeyError, TypeError):
                continue
            count += 1
    return (last + every if count else 0), count


def cut_events(task_dir: Path, keep: int) -> None:
    """Keep the first ``keep`` lines of ``events.jsonl`` (the frames the video also holds)."""
    path = task_dir / EVENTS
    if not path.exists():
        return
    tmp = path.with_suffix(".cut")
    with open(path, encoding="utf-8", errors="replace") as src, open(tmp, "w", encoding="utf-8") as dst:
        for n, line in enumerate(src):
            if n >= keep:
                break
            dst.write(line)
    tmp.replace(path)
    log.info("task %s: events cut to the %s frames the video holds; the rest are processed again",
             task_dir.name, keep)


def prepare_video(task_dir: Path, kept: int) -> None:
    """Before an attempt: join what earlier attempts left (a crash leaves a segment unjoined),
    cut to the ``kept`` frames whose events were saved, so the resumed attempt's frames follow on
    without a gap or a repeat."""
    try:
        skipped = cut_for_resume(task_dir / VIDEO, kept)
    except Exception:  # noqa: BLE001 - the events are the primary output
        log.exception("could not prepare the video of %s for the resumed attempt", task_dir.name)
        return
    for seg in skipped:
        log.warning("task %s: video segment %s is unreadable; its frames are left out",
                    task_dir.name, seg.name)


def join_video(task_dir: Path) -> list[str]:
    """Append this attempt's video segment(s) to ``annotated.mp4``; returns skipped segment names."""
    parts = sorted(task_dir.glob("annotated.part-*.mp4"))
    if not parts:
        return []

    main = task_dir / VIDEO
    segments = ([main] if main.exists() else []) + parts
    try:
        _joined, skipped = join_segments(segments, main)
    except Exception:  # noqa: BLE001 - the events are the primary output; keep the parts for inspection
        log.exception("could not join the video segments of %s", task_dir.name)
        return [p.name for p in parts]
    for seg in skipped:
        log.warning("task %s: video segment %s is unreadable (the process died while writing it); "
                    "the annotated video leaves its frames out", task_dir.name, seg.name)
    for part in parts:
        part.unlink(missing_ok=True)
    return [seg.name for seg in skipped]
