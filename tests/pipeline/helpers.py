"""Helpers for the pipeline tests: a fake-model loader, a real registry's loader, small images,
a tiny generated video."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from aisp.cache import ModelCache
from aisp.models import Model, ModelConfig, ModelRegistry
from aisp.models.fake import FakeModel


class FakeLoader:
    """``loader(name, instance)`` handing out FakeModels; one per (name, instance) key."""

    def __init__(self, **model_kwargs):
        self.kwargs = model_kwargs
        self.per_name: dict[str, dict] = {}
        self.models: dict[tuple[str, str], FakeModel] = {}
        self._lock = threading.Lock()

    def configure(self, name: str, **kwargs) -> None:
        self.per_name[name] = kwargs

    def __call__(self, name: str, instance: str) -> FakeModel:
        kwargs = {**self.kwargs, **self.per_name.get(name, {})}
        key = (name, instance if not kwargs.get("thread_safe", True) else "shared")
        with self._lock:
            if key not in self.models:
                self.models[key] = FakeModel(name, **kwargs)
            return self.models[key]


class RegistryLoader:
    """``loader(name, instance)`` through a private :class:`ModelRegistry` and :class:`ModelCache`
    (the real models, no process global); ``close()`` releases them."""

    def __init__(self) -> None:
        self.cache = ModelCache()
        self.registry = ModelRegistry(self.cache, ModelConfig())

    def __call__(self, name: str, instance: str) -> Model:
        return self.registry.load(name, instance=instance)

    def close(self) -> None:
        self.cache.close()


def make_images(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    return [np.full((h, w, 3), i % 256, np.uint8) for i in range(n)]


def write_video(path: Path, n: int = 30, size: tuple[int, int] = (64, 48), fps: int = 30,
                codec: str = "mpeg4", faststart: bool = False) -> Path:
    """Write an n-frame video whose frame i has brightness ~ 8*i (PyAV)."""
    import av

    w, h = size
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = np.full((h, w, 3), (8 * i) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
