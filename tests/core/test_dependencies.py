"""The dependency set resolves as promised: one OpenCV wheel, a headless cv2, MediaPipe's pins."""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys


def _dist_names() -> list[str]:
    return sorted({(d.metadata["Name"] or "").lower() for d in md.distributions()})


def test_exactly_one_opencv_wheel() -> None:
    wheels = [n for n in _dist_names() if n.startswith("opencv")]
    assert wheels == ["opencv-contrib-python"], wheels


def test_cv2_imports_without_a_display() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run(
        [sys.executable, "-c", "import cv2; print(cv2.__version__)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("4.")


def test_mediapipe_pins_hold() -> None:
    assert md.version("mediapipe") == "0.10.21"
    assert int(md.version("protobuf").split(".")[0]) < 5
    assert int(md.version("numpy").split(".")[0]) < 2
