"""``aisp bench outputs``: what video out costs, on one 640x480 30 FPS live stream.

The stream is ``demo:live`` (640x480, paced at 30 FPS) through the engine with ``face_detection``;
the frames the encoder gets are the pipeline's annotated frames. Three set-ups, alternated in the
same run (``rounds`` times each, medians reported), each for ``seconds``:

* ``off``: the stream with its encode sink attached but no consumer (what every stream pays);
* ``hls_push``: HLS being watched (requests keep it alive) and a push to a local FFmpeg RTMP
  receiver (``ffmpeg -listen 1 ... -f null``; skipped without ffmpeg);
* ``clips``: the clip recorder's pre-roll ring, with an event every 3 s writing clips (its rule
  selects every label, so faces in view keep a clip going: the recorder's per-frame detection
  check is in the measure).

``encoder_options`` first encodes the same 640x480 demo frames with x264 presets and thread
counts side by side (wall and CPU ms per frame, size), the measurement behind the defaults.

Figures: the pipeline's processed FPS (ratio to ``off``; goal >= 0.9), the CPU of the encoder and
push threads (per-thread CPU time over wall time, in % of one core; goal <= 15 for HLS and push
together), the whole process's CPU, frames dropped at the encoder hand-off, and the HLS
glass-to-playlist latency: for each segment, from the capture of its first (oldest) frame to the
moment it is listed in the playlist (goal <= 3 s with 1 s segments).
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from aisp.events import Event
from aisp.pipeline import StreamSpec
from aisp.pipeline.clip_index import ClipLibrary
from aisp.pipeline.clips import ClipRule
from aisp.pipeline.video_out import StreamVideo
from aisp.runtime import build
from aisp.settings import Settings, load_settings

__all__ = ["run"]

MODEL = "face_detection"
GOAL_FPS_RATIO = 0.9
GOAL_ENCODE_CPU_PCT = 15.0
GOAL_HLS_LATENCY_S = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _thread_cpu(native_ids: set[int]) -> float:
    """User + system CPU seconds of this process's threads with these native ids."""
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id in native_ids)


def _native_ids(prefixes: tuple[str, ...]) -> set[int]:
    return {t.native_id for t in threading.enumerate() if t.name.startswith(prefixes) and t.native_id}


class _Receiver:
    """``ffmpeg -listen 1`` RTMP receiver discarding what it gets (the media server's side)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"rtmp://127.0.0.1:{self.port}/live/bench"
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-listen", "1", "-i", self.url,
             "-c", "copy", "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening(self) -> bool:
        return any(c.laddr and c.laddr.port == self.port and c.status == psutil.CONN_LISTEN
                   for c in psutil.Process(self.proc.pid).net_connections(kind="tcp"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _one(runtime: Any, settings: Settings, mode: str, seconds: float, n: int,
         clip_dir: Path) -> dict[str, Any]:
    engine = runtime.engine
    sid = f"bench-{mode}-{n}"
    receiver = _Receiver() if mode == "hls_push" and shutil.which("ffmpeg") else None
    if receiver is not None:
        deadline = time.monotonic() + 10
        while not receiver.listening() and time.monotonic() < deadline:
            threading.Event().wait(0.05)
    rule = ClipRule(pre_seconds=5.0, post_seconds=2.0) if mode == "clips" else None
    push = receiver.url if receiver else None
    video = StreamVideo(sid, settings, hls=mode == "hls_push", push=push, push_display=push,
                        record=rule, library=ClipLibrary(clip_dir) if rule else None, clock=engine.clock)
    engine.add_stream(StreamSpec(sid, "demo:live", [MODEL]), sinks=[video.sink()], start=True)
    stream = engine.get_stream(sid)
    stop = threading.Event()
    try:
        stream.wait_for_state("running", timeout=30)
        if mode == "hls_push":
            video.hls.touch()
        stop.wait(3.0)  # warm-up: the model, the encoder and the push connection
        ids = _native_ids((f"aisp-encode-{sid}", "aisp-push"))
        proc = psutil.Process()
        cpu0, thr0 = proc.cpu_times(), _thread_cpu(ids)
        out0, t0 = stream.stats.snapshot().frames_out, time.monotonic()
        published0 = video.segmenter.published
        next_event = t0 + 1.0
        while True:
            now = time.monotonic()
            if now >= t0 + seconds:
                break
            if mode == "hls_push":
                video.hls.touch()  # a viewer polling the playlist
            if rule is not None and now >= next_event:
                video.on_event(Event(type="enter", stream_id=sid, time=time.time(),
                                     captured_at=engine.clock()))
                next_event += 3.0
            stop.wait(0.5)
        wall = time.monotonic() - t0
        ids |= _native_ids((f"aisp-encode-{sid}", "aisp-push"))
        cpu1, thr1, out1 = proc.cpu_times(), _thread_cpu(ids), stream.stats.snapshot().frames_out
        stats = video.stats()
        latencies = [s.published_at - s.first_captured_at for s in list(video.segmenter._ring)]  # noqa: SLF001
        result: dict[str, Any] = {
            "fps": round((out1 - out0) / wall, 2),
            "process_cpu_pct": round(100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / wall, 1),
            "encode_cpu_pct": round(100 * (thr1 - thr0) / wall, 2),
            "encoder_frames_dropped": stats["encoder"]["frames_dropped"],
            "encode_ms_avg": stats["encoder"]["encode_ms_avg"],
        }
        if mode == "hls_push":
            result["hls_segments"] = video.segmenter.published - published0
            result["hls_latency_s"] = {"p50": round(statistics.median(latencies), 3) if latencies else None,
                                       "max": round(max(latencies), 3) if latencies else None}
            if video.push is not None:
                push = video.push.stats()
                result["push"] = {"sent": push.sent, "dropped": push.dropped, "connected": push.connected}
            else:
                result["push"] = "skipped: ffmpeg not installed"
        if mode == "clips":
            result["clips"] = {k: stats["clips"][k] for k in ("clips_written", "ring_seconds", "ring_bytes")}
        return result
    finally:
        engine.remove_stream(sid, timeout=10)
        video.close()
        if receiver is not None:
            receiver.stop()


def encoder_options(frames: int = 150) -> dict[str, Any]:
    """x264 presets and thread counts side by side on the same 640x480 demo frames, alternated
    twice: wall ms per frame, CPU ms per frame (process time: all x264 threads), bytes per frame."""
    from aisp.pipeline.demo import DemoSource
    from aisp.pipeline.encode import EncoderOptions, H264Encoder

    demo = DemoSource(frames=frames)
    demo.open()
    images = [demo.render(i) for i in range(frames)]
    configs = [("ultrafast", 1), ("ultrafast", 2), ("superfast", 1), ("veryfast", 1), ("veryfast", 2)]
    samples: dict[str, list[tuple[float, float, int]]] = {f"{p}/{t}": [] for p, t in configs}
    for _ in range(2):
        for preset, threads in configs:
            encoder = H264Encoder(640, 480, EncoderOptions(preset=preset, threads=threads, crf=26))
            size = 0
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for i, image in enumerate(images):
                size += sum(len(p.data) for p in encoder.encode(image, i / 30, i))
            size += sum(len(p.data) for p in encoder.flush())
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            samples[f"{preset}/{threads}"].append((wall, cpu, size))
    out = {}
    for name, runs in samples.items():
        out[name] = {"wall_ms_per_frame": round(statistics.median(r[0] for r in runs) / frames * 1000, 2),
                     "cpu_ms_per_frame": round(statistics.median(r[1] for r in runs) / frames * 1000, 2),
                     "kbytes_per_frame": round(statistics.median(r[2] for r in runs) / frames / 1024, 1)}
    return out


def run(quick: bool = False, settings: Settings | None = None) -> dict[str, Any]:
    seconds = 6.0 if quick else 20.0
    rounds = 1 if quick else 3
    options = encoder_options(60 if quick else 300)
    with tempfile.TemporaryDirectory(prefix="aisp-bench-outputs-") as tmp:
        base = settings or load_settings()
        settings = base.model_copy(update={"data_dir": Path(tmp), "clip_dir": Path(tmp) / "clips"})
        runtime = build(settings)
        try:
            runs: dict[str, list[dict[str, Any]]] = {"off": [], "hls_push": [], "clips": []}
            for n in range(rounds):
                for mode in runs:
                    runs[mode].append(_one(runtime, settings, mode, seconds, n, Path(tmp) / "clips"))
        finally:
            runtime.close(timeout=10)

    def med(mode: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[mode]), 2)

    off_fps = med("off", "fps")
    latency_max = max((r["hls_latency_s"]["max"] or 0.0) for r in runs["hls_push"])
    summary = {
        "fps_off": off_fps,
        "fps_hls_push": med("hls_push", "fps"),
        "fps_clips": med("clips", "fps"),
        "fps_ratio_hls_push": round(med("hls_push", "fps") / off_fps, 3) if off_fps else None,
        "fps_ratio_clips": round(med("clips", "fps") / off_fps, 3) if off_fps else None,
        "encode_cpu_pct_hls_push": med("hls_push", "encode_cpu_pct"),
        "encode_cpu_pct_clips": med("clips", "encode_cpu_pct"),
        "process_cpu_pct": {m: med(m, "process_cpu_pct") for m in runs},
        "hls_latency_max_s": round(latency_max, 3),
    }
    summary["goals"] = {
        "fps_ratio_ge_0_9": all((summary[k] or 0) >= GOAL_FPS_RATIO
                                for k in ("fps_ratio_hls_push", "fps_ratio_clips")),
        "encode_cpu_le_15pct": summary["encode_cpu_pct_hls_push"] <= GOAL_ENCODE_CPU_PCT,
        "hls_latency_le_3s": 0 < latency_max <= GOAL_HLS_LATENCY_S,
    }
    return {"stream": "demo:live 640x480 @30 FPS, face_detection", "seconds": seconds,
            "rounds": rounds,
            "settings": {"video_preset": settings.video_preset, "video_threads": settings.video_threads,
                         "video_crf": settings.video_crf,
                         "keyframe_seconds": settings.video_keyframe_seconds},
            "summary": summary, "encoder_options": options, "runs": runs}
