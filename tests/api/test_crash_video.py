"""Item 19: the annotated video survives a SIGKILL (a real ``aisp serve``, killed at ~35%).

A 1,500-frame video carries its frame number as a row of black and white blocks (11 bits,
drawn below the fake model's box). The task runs in a real server (``tests/store/slow_serve.py``:
the production CLI plus a fake model with a cost per frame), is killed with SIGKILL once its
progress passes 35%, the server is started again, the task is retried, and the final video is
read back frame by frame: it must hold at least N - fps frames, each block number greater than
the one before (in order, no repeat). Waits poll HTTP with deadlines; nothing sleeps to
synchronise. The figures are printed (``-s`` shows them) for docs/api.md and the closing note:
the progress the API showed before the kill, the frames whose events were saved at the kill (the
retry resumes after them), the frames readable in ``annotated.mp4`` right after the kill (and the
last frame number among them), and the final video's frames, order and events.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from aisp.store import Store
from tests.ports import free_port as _free_port
from tests.store.test_crash_recovery import Server, _poll

N = 1500
FPS = 30
BITS = 11
W, H = 256, 96
BLOCK_Y = 80  # a 16-pixel row under the fake model's box (which spans 25%..75% of the height)


def _block_x(bit: int) -> int:
    return 8 + 20 * bit


def write_counter_video(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "12"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(N):
            img = np.full((H, W, 3), 90, np.uint8)
            for bit in range(BITS):
                x = _block_x(bit)
                img[BLOCK_Y:BLOCK_Y + 16, x:x + 16] = 255 if (i >> bit) & 1 else 0
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def complete_lines(paths: list[Path]) -> int:
    """Lines ended by a newline in ``paths`` (a line cut by the kill does not count)."""
    return sum(p.read_bytes().count(b"\n") for p in paths)


def read_counters(path: Path) -> list[int]:
    import av

    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            gray = frame.to_ndarray(format="gray")
            value = 0
            for bit in range(BITS):
                x = _block_x(bit)
                if gray[BLOCK_Y + 4:BLOCK_Y + 12, x + 4:x + 12].mean() > 128:
                    value |= 1 << bit
            out.append(value)
    return out


@pytest.mark.slow
def test_sigkill_at_35_percent_then_retry_keeps_the_video_in_order(tmp_path: Path) -> None:
    from aisp.api.videojoin import count_frames
    from aisp.settings import load_settings

    data_dir = tmp_path / "data"
    media = data_dir / "media"
    media.mkdir(parents=True)
    write_counter_video(media / "count.mp4")
    assert read_counters(media / "count.mp4")[:3] == [0, 1, 2]
    with Store(settings=load_settings(environ={}, data_dir=data_dir)) as store:
        _, key = store.keys.create("admin", "crash-video")
    client = httpx.Client(headers={"X-API-Key": key}, timeout=10)
    log_path = tmp_path / "server.log"
    server = Server(data_dir, _free_port(), log_path)
    t0 = time.monotonic()
    try:
        server.wait_ready(client)
        r = client.post(f"{server.base}/api/tasks", json={"source": "count.mp4", "models": ["slow_fake"]})
        assert r.status_code == 201, r.text
        task_id = r.json()["id"]

        def past_35_percent():
            body = client.get(f"{server.base}/api/tasks/{task_id}").json()
            assert body["state"] in ("queued", "running"), body
            return body if body["frames_done"] >= 0.35 * N else None

        seen = _poll(past_35_percent, "the task to pass 35%")
        os.kill(server.proc.pid, signal.SIGKILL)
        assert server.stop() == -signal.SIGKILL
        task_dir = data_dir / "tasks" / task_id
        after_kill = count_frames(task_dir / "annotated.mp4")  # readable as the kill left it
        kill_counters = read_counters(task_dir / "annotated.mp4")  # the frame numbers in it
        events_at_kill = complete_lines(sorted(task_dir.glob("events*.jsonl")))

        server = Server(data_dir, _free_port(), log_path)
        server.wait_ready(client)
        assert client.get(f"{server.base}/api/tasks/{task_id}").json()["state"] == "interrupted"
        assert client.post(f"{server.base}/api/tasks/{task_id}/retry").status_code == 200

        def finished():
            body = client.get(f"{server.base}/api/tasks/{task_id}").json()
            return body if body["state"] in ("completed", "failed", "cancelled", "interrupted") else None

        done = _poll(finished, "the retried task to finish")
        assert done["state"] == "completed" and done["frames_done"] == N, done
        video = tmp_path / "final.mp4"
        r = client.get(f"{server.base}/api/tasks/{task_id}/video")
        assert r.status_code == 200
        video.write_bytes(r.content)
        events = [line for line in client.get(f"{server.base}/api/tasks/{task_id}/events").text.splitlines()
                  if line.strip()]
        assert server.stop() == 0
    finally:
        if server.proc.poll() is None:
            server.stop(signal.SIGKILL)
        client.close()
    elapsed = time.monotonic() - t0
    counters = read_counters(video)
    in_order = all(b > a for a, b in zip(counters, counters[1:], strict=False))
    print(f"\ncrash video: SIGKILL after the API showed {seen['frames_done']}/{N} frames done; at the kill "
          f"{events_at_kill} frames had their events saved; readable right after the kill: {after_kill} "
          f"frames (decoded {len(kill_counters)}, frame numbers "
          f"{kill_counters[0] if kill_counters else None}..{kill_counters[-1] if kill_counters else None}); "
          f"after the retry: {len(counters)}/{N} frames, in order: {in_order} "
          f"({counters[0] if counters else None}..{counters[-1] if counters else None}); "
          f"events {len(events)}/{N}; {elapsed:.1f} s in all")
    assert kill_counters == list(range(len(kill_counters)))  # what the kill left is a prefix, in order
    assert len(events) == N
    assert after_kill >= seen["frames_done"] - FPS  # the kill cost at most about a second of video
    assert len(counters) >= N - FPS, len(counters)
    assert in_order, "frames out of order or repeated"
    assert counters[0] == 0 and counters[-1] == N - 1
