"""``PolicySource``: a source named through the API, opened under the source policy.

The API (tasks, streams) never hands a caller's string to :func:`~aisp.pipeline.open_source`.
It builds a :class:`PolicySource`, which:

- checks the spec with :class:`aisp.netpolicy.SourcePolicy` when it is built (403
  ``SOURCE_NOT_ALLOWED`` for the caller) and again on every open and reconnect, so a name that
  now resolves to a refused address (DNS rebinding) or a path that became a symlink out of the
  media directories is refused then;
- opens files and URLs with PyAV and :func:`~aisp.pipeline.decode.safe_options` only (an
  explicit FFmpeg protocol whitelist, no redirects, no caller-supplied demuxer options); a file
  that FFmpeg reads as a playlist or concat script (``hls``, ``concat``, ``dash``) is refused, as
  those name other files;
- expands folders and globs itself and keeps only the images that resolve inside the media
  directories;
- reports every open failure with one generic text (:data:`OPEN_FAILED`), so that nobody who
  can read a stream's ``last_error`` or a task's error learns whether a path exists or a port is
  open; the detailed reason goes to the server log (URL passwords hidden);
- with ``finite_ends=True`` (tasks), a URL whose container announces a duration or a frame
  count is finite media: it is read once to its end, every frame, like a file; other URLs are live;
- hands its ``decode_threads`` (set by the engine from the CPU plan) on to the source it opens, so
  the codec decodes with the plan's threads.

The CLI (``aisp run``) does not use it: it runs as the local user and may open anything.
"""

from __future__ import annotations

import glob as globmod
import logging
import os
from pathlib import Path
from typing import Any

from aisp.errors import MissingDependencyError, SourceError, SourceNotAllowedError
from aisp.netpolicy import SourcePolicy, redact_url
from aisp.pipeline._describe import describe
from aisp.pipeline.decode import available_decoders, safe_options
from aisp.pipeline.demo import DemoSource
from aisp.pipeline.sources import (
    IMAGE_EXTENSIONS,
    ImageSource,
    Source,
    SourceFrame,
    UrlSource,
    VideoFileSource,
)

__all__ = ["PolicySource", "OPEN_FAILED"]

log = logging.getLogger("aisp.pipeline")

#: what a caller sees when an API-given source cannot be opened, whatever the reason
OPEN_FAILED = (
    "cannot open the source: it is missing, unreadable, not a supported image or video, or did not "
    "answer (the reason is in the server log)"
)

#: demuxers that open other files or URLs named inside the source
_PLAYLIST_FORMATS = frozenset({"hls", "applehttp", "concat", "ffconcat", "dash", "webm_dash_manifest"})


class PolicySource(Source):
    """A source from the API, checked by ``policy`` on every open (see the module docstring)."""

    def __init__(self, spec: str, policy: SourcePolicy, *, live: bool | None = None,
                 finite_ends: bool = False, read_timeout: float = 10.0) -> None:
        target = policy.check_source(spec)  # SourceNotAllowedError / ValidationError for the caller
        super().__init__(redact_url(spec.strip()))
        self.spec = spec
        self._policy = policy
        self._read_timeout = read_timeout
        self.kind = "demo" if target.startswith("demo") else "url" if "://" in target else "file"
        default_live = self.kind == "url" or target == "demo:live"
        self._live = default_live if live is None else bool(live)
        self._decide_live = finite_ends and live is None and self.kind == "url"
        self._inner: Source | None = None

    # -- the live flag follows the inner source --------------------------------------------
    @property  # type: ignore[override]
    def live(self) -> bool:
        return self._live

    @live.setter
    def live(self, value: bool) -> None:
        self._live = bool(value)
        if self._inner is not None:
            self._inner.live = self._live

    @property  # type: ignore[override]
    def frames_read(self) -> int:
        return self._inner.frames_read if self._inner is not None else self._frames_before

    @frames_read.setter
    def frames_read(self, value: int) -> None:
        self._frames_before = value

    @property
    def is_open(self) -> bool:
        return self._inner is not None

    # -- open / read / close ---------------------------------------------------------------
    def open(self) -> None:
        """Check the policy again, then open; idempotent while open. Every failure to open is
        :data:`OPEN_FAILED` (phase "open"), except a policy refusal, which says what to change."""
        if self._inner is not None:
            return
        target = self._policy.check_source(self.spec)
        try:
            inner = self._build(target)
            inner.decode_threads = self.decode_threads  # the engine sets the plan's on this object
            inner.open()
        except Exception as exc:  # noqa: BLE001 - the caller sees one text, the log the reason
            log.warning("source %s: cannot open: %s", self.name, describe(exc))
            raise SourceError(OPEN_FAILED, source=self.name, details={"phase": "open"}) from None
        decoder = getattr(inner, "_decoder", None)
        fmt = getattr(decoder, "format_name", None) or ""
        if self.kind == "file" and _PLAYLIST_FORMATS & set(fmt.split(",")):
            inner.close()
            log.warning("source %s: refused: FFmpeg reads it as %r, which names other files", self.name, fmt)
            raise SourceError(OPEN_FAILED, source=self.name, details={"phase": "open"})
        if self._decide_live:
            self._live = not bool(getattr(decoder, "finite", False))
        inner.live = self._live
        self._inner = inner
        self.fps = inner.fps
        self.total_frames = inner.total_frames if not self._live else None

    def _build(self, target: str) -> Source:
        if self.kind == "demo":
            return DemoSource(live=self._live)
        if self.kind == "url":
            if "pyav" not in available_decoders():  # OpenCV cannot be given a protocol whitelist
                raise MissingDependencyError("av", "video")
            return UrlSource(target, live=self._live, read_timeout=self._read_timeout, decoder="pyav",
                             options=safe_options(target))
        path = Path(target)
        if path.is_dir():
            return ImageSource(self._inside(p for p in sorted(path.iterdir()) if p.is_file()), name=self.name)
        if any(ch in self.spec for ch in "*?["):
            pattern = self.spec if os.path.isabs(self.spec) else str(self._policy.media_dirs[0] / self.spec)
            return ImageSource(self._inside(Path(p) for p in sorted(globmod.glob(pattern))), name=self.name)
        if not path.is_file():
            raise SourceError(f"no such file: {path}", source=str(path), details={"phase": "open"})
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageSource([path])
        decoder = "pyav" if "pyav" in available_decoders() else "opencv"  # a resolved path has no protocol
        return VideoFileSource(path, decoder=decoder, options=safe_options(str(path)))

    def _inside(self, paths: Any) -> list[Path]:
        """The images among ``paths`` that resolve inside a media directory (symlinks followed)."""
        keep: list[Path] = []
        for p in paths:
            if p.suffix.lower() not in IMAGE_EXTENSIONS or not p.is_file():
                continue
            try:
                keep.append(self._policy.check_path(p))
            except SourceNotAllowedError:  # a symlink out of the media directories: left out
                continue
        if not keep:
            raise SourceError("no images inside the media directories", source=self.name,
                              details={"phase": "open"})
        return keep

    def seek(self, index: int) -> int:
        """The inner source's seek: a video file jumps to the keyframe before ``index`` instead of
        decoding every frame before it (a resumed task, a cluster task's frame range)."""
        inner = self._inner
        if inner is None:
            raise SourceError(f"{self.name}: source is not open", source=self.name, details={"phase": "read"})
        return inner.seek(index)

    def read(self) -> SourceFrame | None:
        inner = self._inner
        if inner is None:
            raise SourceError(f"{self.name}: source is not open", source=self.name, details={"phase": "read"})
        return inner.read()

    def close(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            self._frames_before = inner.frames_read
            inner.close()

    def interrupt(self) -> None:
        inner = self._inner
        if inner is not None:
            inner.interrupt()

    def __repr__(self) -> str:
        return f"PolicySource({self.name!r}, live={self.live})"
