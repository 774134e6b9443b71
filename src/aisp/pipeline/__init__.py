"""The frame pipeline: sources, the engine (bounded queues, shared workers, ordered sinks),
batch jobs and the sinks; tracking, zones and lines with their events (docs/events.md). See
docs/pipeline.md and :mod:`aisp.pipeline.engine`.

The pipeline sits above the models and the cache and below the runtime: an :class:`Engine` is
handed its settings and a model loader; it never reaches for a process global.
"""

from __future__ import annotations

from aisp.pipeline.clip_index import ClipLibrary, ClipRecord
from aisp.pipeline.clips import ClipRecorder, ClipRule
from aisp.pipeline.encode import EncodedPacket, EncodeSink, VideoOutput
from aisp.pipeline.engine import Engine
from aisp.pipeline.event_producer import StreamAnalytics
from aisp.pipeline.event_sink import EventSink, SummaryWriter
from aisp.pipeline.event_snapshots import SnapshotWriter
from aisp.pipeline.frame_types import Frame, FrameResult
from aisp.pipeline.hls import HlsSegmenter, HlsSession
from aisp.pipeline.job import JobSummary, Pipeline, run_job
from aisp.pipeline.policy_source import PolicySource
from aisp.pipeline.push import PushOutput
from aisp.pipeline.sinks import (
    CallbackSink,
    JsonlSink,
    LatestResultSink,
    ListSink,
    MJPEGSink,
    Sink,
    VideoSink,
)
from aisp.pipeline.source_factory import open_source
from aisp.pipeline.sources import (
    ImageSource,
    MemorySource,
    Source,
    SourceFrame,
    UrlSource,
    VideoFileSource,
)
from aisp.pipeline.stats import LatencySummary, StreamMeter, StreamStats
from aisp.pipeline.stream import Stream, StreamSpec
from aisp.pipeline.tracking import ObjectTracker, TrackUpdate
from aisp.pipeline.video_out import StreamVideo
from aisp.pipeline.workers import Loader
from aisp.pipeline.zones import Line, Zone, ZoneTracker

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
    "PolicySource",
    "Engine",
    "Loader",
    "Stream",
    "StreamSpec",
    "StreamMeter",
    "StreamStats",
    "LatencySummary",
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
    "EventSink",
    "SummaryWriter",
    "VideoOutput",
    "EncodeSink",
    "EncodedPacket",
    "HlsSegmenter",
    "HlsSession",
    "PushOutput",
    "ClipRule",
    "ClipRecorder",
    "ClipLibrary",
    "ClipRecord",
    "StreamVideo",
    "ObjectTracker",
    "TrackUpdate",
    "Zone",
    "Line",
    "ZoneTracker",
    "StreamAnalytics",
    "SnapshotWriter",
]
