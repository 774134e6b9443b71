"""The frame pipeline: sources, the engine (bounded queues, shared workers, ordered sinks),
batch jobs and the sinks. See docs/pipeline.md and :mod:`aisp.pipeline.engine`."""

from __future__ import annotations

from aisp.pipeline.engine import Engine
from aisp.pipeline.frame_types import Frame, FrameResult
from aisp.pipeline.job import JobSummary, Pipeline, run_job
from aisp.pipeline.sinks import (
    CallbackSink,
    JsonlSink,
    LatestResultSink,
    ListSink,
    MJPEGSink,
    Sink,
    VideoSink,
)
from aisp.pipeline.sources import (
    ImageSource,
    MemorySource,
    Source,
    SourceFrame,
    UrlSource,
    VideoFileSource,
    open_source,
)
from aisp.pipeline.stream import Stream, StreamSpec

__all__ = [
    "Frame",
    "FrameResult",
    "Source",
    "SourceFrame",
    "MemorySource",
    "VideoFileSource",
    "ImageSource",
    "UrlSource",
    "open_source",
    "Engine",
    "Stream",
    "StreamSpec",
    "Pipeline",
    "run_job",
    "JobSummary",
    "Sink",
    "ListSink",
    "CallbackSink",
    "LatestResultSink",
    "MJPEGSink",
    "JsonlSink",
    "VideoSink",
]
