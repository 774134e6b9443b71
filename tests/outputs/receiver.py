"""A real push receiver on loopback: FFmpeg in listen mode (RTSP ``-rtsp_flags listen`` or RTMP
``-listen 1``) recording what it gets to an MPEG-TS file. Always stopped by the test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import require_service


def require_ffmpeg() -> None:
    require_service(shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None,
                    "ffmpeg/ffprobe not installed (Debian package ffmpeg)")


class Receiver:
    def __init__(self, scheme: str, port: int, out: Path) -> None:
        self.scheme, self.port, self.out = scheme, port, out
        self.url = (f"rtsp://127.0.0.1:{port}/live/cam" if scheme == "rtsp"
                    else f"rtmp://127.0.0.1:{port}/live/cam")
        listen = ["-rtsp_flags", "listen"] if scheme == "rtsp" else ["-listen", "1"]
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *listen,
             "-i", self.url, "-c", "copy", "-f", "mpegts", "-y", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening(self) -> bool:
        """True once FFmpeg listens (read from /proc: connecting to probe would take its one client)."""
        if self.proc.poll() is not None:
            raise AssertionError(f"receiver exited: {self.proc.stderr.read().decode(errors='replace')}")
        wanted = f":{self.port:04X}"
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if fields[1].endswith(wanted) and fields[3] == "0A":  # 0A: LISTEN
                    return True
        return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)
