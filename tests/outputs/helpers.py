"""Helpers for the video-out tests: a paced live source whose frames carry their index as a
barcode (so a decoded frame tells which source frame it was), and its decoder."""

from __future__ import annotations

import threading
import time

import numpy as np

from aisp.pipeline.sources import Source, SourceFrame

BITS = 16
BLOCK = 16


def barcode_image(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """An RGB frame: a gradient background, and ``index`` as 16 black/white blocks on the top row."""
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 1] = np.linspace(40, 200, width, dtype=np.uint8)[None, :]
    img[..., 2] = (index * 7) % 256
    for bit in range(BITS):
        value = 255 if (index >> bit) & 1 else 0
        img[BLOCK:2 * BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = value
    return img


def read_barcode(rgb: np.ndarray) -> int:
    """The index drawn by :func:`barcode_image` (the middle of each block, robust to H.264 loss)."""
    index = 0
    for bit in range(BITS):
        block = rgb[BLOCK + 4:2 * BLOCK - 4, bit * BLOCK + 4:(bit + 1) * BLOCK - 4]
        if block.mean() > 128:
            index |= 1 << bit
    return index


class CounterSource(Source):
    """A live source producing barcode frames at ``fps`` in real time (like a camera)."""

    def __init__(self, fps: float = 30.0, width: int = 320, height: int = 240, name: str = "counter") -> None:
        super().__init__(name)
        self.live = True
        self.fps = fps
        self.width, self.height = width, height
        self._wake = threading.Event()
        self._t0: float | None = None
        self._images = [barcode_image(i, width, height) for i in range(64)]

    def open(self) -> None:
        self._wake.clear()

    def read(self) -> SourceFrame | None:
        if self._t0 is None:
            self._t0 = time.monotonic()
        due = self._t0 + self.frames_read / self.fps
        left = due - time.monotonic()
        if left > 0 and self._wake.wait(left):  # the camera's frame clock, not a test wait
            return None
        index = self.frames_read
        image = self._images[index % 64].copy()
        for bit in range(BITS):
            image[BLOCK:2 * BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 255 if (index >> bit) & 1 else 0
        self.frames_read += 1
        return SourceFrame(image, index / self.fps)

    def interrupt(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._wake.set()


def wait_until(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes (then fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        threading.Event().wait(interval)
