"""A bare ASGI server doing exactly the frames route's work: the floor ``aisp bench api`` compares
AISP's API against.

No FastAPI, no middleware, no auth, no metrics: read the raw body, check the image header
(:func:`aisp.api.frame_processing.check_image`), then on a pool thread decode and infer
(:func:`aisp.api.frame_processing.infer_image`, one model instance per thread) and build the same JSON
(:func:`aisp.api.frame_processing.json_body`). It runs under uvicorn with the same loop and HTTP parser as
``aisp serve``. Whatever latency this server shows under the benchmark's load is what the work
itself costs on the machine; the API's figures beside it show what AISP adds.

Run as ``python -m aisp.bench._bare_app --port N --threads N`` (the benchmark does this); it
answers ``GET /ready`` once its models are loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aisp.api.frame_processing import check_image, infer_image, json_body
from aisp.api.modelops import api_instance
from aisp.errors import AISPError
from aisp.models import ModelRegistry
from aisp.runtime import build
from aisp.settings import load_settings

__all__ = ["BareApp", "main"]


class BareApp:
    def __init__(self, model: str, threads: int, models: ModelRegistry) -> None:
        self.model = model
        self.models = models
        self.threads = threads
        self._local = threading.local()
        self._next = iter(range(1 << 30))
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(threads, initializer=self._init_thread)
        self.ready = False

    def _init_thread(self) -> None:
        with self._lock:
            self._local.index = next(self._next)

    def _load(self) -> None:
        self.models.load(self.model, instance=api_instance(self._local.index))

    async def _load_everywhere(self) -> None:
        """One load on each pool thread, so every thread has its own model instance."""
        barrier = threading.Barrier(self.threads)

        def load_here() -> None:
            barrier.wait()  # each thread takes exactly one of these
            self._load()

        loop = asyncio.get_running_loop()
        await asyncio.gather(*[loop.run_in_executor(self._pool, load_here) for _ in range(self.threads)])

    def _job(self, data: bytes) -> tuple[int, bytes]:
        try:
            info = check_image(data, max_pixels=50_000_000)
            outcome = infer_image(data, info, [self.model], models=self.models, annotate=False,
                                  instance=self._local.index)
        except AISPError as exc:
            return exc.status_code, str(exc).encode()
        return 200, json_body(info, outcome)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        loop = asyncio.get_running_loop()
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self._load_everywhere()
                    self.ready = True
                    await send({"type": "lifespan.startup.complete"})
                else:
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if scope["method"] == "GET":
            status, body = (200, b"ready") if self.ready else (503, b"loading")
        else:
            status, body = await loop.run_in_executor(self._pool, self._job, b"".join(chunks))
        ctype = b"application/json" if status == 200 and scope["method"] == "POST" else b"text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--model", default="face_detection")
    args = parser.parse_args(argv)
    # the server's model settings (AISP_* in the environment), as `aisp serve` would read them
    with build(load_settings(), store=False) as runtime:
        uvicorn.run(
            BareApp(args.model, args.threads, runtime.models),
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            http="httptools" if importlib.util.find_spec("httptools") else "h11",
            loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            lifespan="on",
        )


if __name__ == "__main__":
    main()
