"""``open_source(spec)``: the source a spec names (a path, a URL, a camera index, ``demo``).

The dispatch sits in its own module because it needs every kind of source: the ones in
:mod:`aisp.pipeline.sources` and :class:`~aisp.pipeline.demo.DemoSource`, which is itself built on
:class:`~aisp.pipeline.sources.Source`. With the dispatch here, ``demo`` imports ``sources`` and
this module imports both: no cycle.
"""

from __future__ import annotations

import glob as globmod
import os
from pathlib import Path
from typing import Any

from aisp.errors import SourceError
from aisp.pipeline.demo import DemoSource
from aisp.pipeline.sources import (
    IMAGE_EXTENSIONS,
    CameraSource,
    ImageSource,
    Source,
    UrlSource,
    VideoFileSource,
)

__all__ = ["open_source", "URL_SCHEMES"]

URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def open_source(spec: str | int | os.PathLike[str], *, live: bool | None = None, **options: Any) -> Source:
    """Build the source a spec names (not yet opened; the engine opens it).

    ``spec``: a video file, an image, a folder or glob of images, ``/dev/videoN`` or a camera
    index, an ``rtsp://``/``http(s)://`` URL, or ``demo``. ``live`` overrides the default
    (files are not live; cameras and URLs are; ``demo`` is finite unless ``live=True``).
    Raises SourceError(phase="open") for a path that does not exist or holds no images.
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec), **options)
    text = os.fspath(spec).strip() if not isinstance(spec, str) else spec.strip()
    if not text:
        raise SourceError("empty source (expected a path, URL, camera or 'demo')", source=text,
                          details={"phase": "open"})
    if text == "demo" or text.startswith("demo:"):
        return DemoSource(live=bool(live) or text == "demo:live", **options)
    if text.startswith("/dev/video"):
        return CameraSource(text, **options)
    if text.lower().startswith(URL_SCHEMES):
        return UrlSource(text, live=True if live is None else live, **options)
    path = Path(text).expanduser()
    if path.is_dir():
        images = _images_in(path)
        if not images:
            raise SourceError(f"no images in folder {path} (expected {sorted(IMAGE_EXTENSIONS)})",
                              source=text, details={"phase": "open"})
        return ImageSource(images, name=text, **options)
    if any(ch in text for ch in "*?["):
        matches = sorted(Path(p) for p in globmod.glob(os.path.expanduser(text)))
        images = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise SourceError(f"no images match {text!r}", source=text, details={"phase": "open"})
        return ImageSource(images, name=text, **options)
    if not path.exists():
        raise SourceError(f"source not found: {text} (no such file)", source=text, details={"phase": "open"})
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource([path], **options)
    source = VideoFileSource(path, **options)
    if live:
        source.live = True
    return source
