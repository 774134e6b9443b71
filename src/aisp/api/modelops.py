"""Model operations shared by the routes and the lifespan: name checks, load, unload, prewarm.

Each works on the app's own runtime (its registry and cache), handed in by the caller. Name checks
are a dict lookup per name and import no backend, so routes call them on the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from aisp.errors import AISPError, ForbiddenError, ValidationError

if TYPE_CHECKING:  # pulls numpy: the app module stays light
    from aisp.models import ModelRegistry
    from aisp.runtime import Runtime

__all__ = [
    "check_models",
    "parse_model_list",
    "load",
    "unload",
    "prewarm_models",
    "prewarm_api_instances",
    "held_keys",
    "api_instance",
    "check_onnx_path",
    "ONNX_PREFIX",
]

log = logging.getLogger("aisp.api")

#: The registry's prefix of file models (``aisp.models.ONNX_PREFIX``; spelled here so that the
#: name checks do not import the models package).
ONNX_PREFIX = "onnx:"


def parse_model_list(raw: str | None, *, field: str = "models") -> list[str]:
    names = [part.strip() for part in (raw or "").split(",") if part.strip()]
    if not names:
        raise ValidationError(
            f"missing {field}: expected a comma-separated list of model names, e.g. ?{field}=face_detection",
            field=field,
            value=raw,
            expected="comma-separated model names",
        )
    return list(dict.fromkeys(names))


def check_models(names: Iterable[str], model_dir: Path) -> list[str]:
    """The names, de-duplicated; raises ``NotFoundError`` for an unknown one, naming the known ones,
    and ``ForbiddenError`` for an ``onnx:`` path outside ``model_dir``."""
    from aisp.models import get_spec

    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise ValidationError("expected at least one model name", field="models", expected="non-empty list")
    for name in wanted:
        check_onnx_path(name, model_dir)
        get_spec(name)
    return wanted


def check_onnx_path(name: str, model_dir: Path) -> None:
    """API callers may load ``onnx:<path>`` models only from the model directory.

    The CLI trusts its user with any path; the API does not let a client make the server open
    (or probe) arbitrary files: the path must resolve inside ``model_dir``
    (``settings.resolved_model_dir``).
    """
    if not isinstance(name, str) or not name.startswith(ONNX_PREFIX):
        return
    path = Path(name[len(ONNX_PREFIX) :]).expanduser()
    resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not resolved.is_relative_to(model_dir):
        raise ForbiddenError(
            f"model '{name}': ONNX models are loaded only from the model directory {model_dir} "
            f"(AISP_MODEL_DIR); got a path outside it",
            details={"field": "models", "model_dir": str(model_dir)},
        )


def api_instance(thread_index: int) -> str:
    """The instance name of the frames route's pool thread ``thread_index`` (``"api0"``, ...)."""
    return f"api{thread_index}"


def held_keys(runtime: Runtime, name: str) -> list[str]:
    """Cache keys held for ``name`` (shared and per-thread instances), as text."""
    return [str(key) for key in runtime.cache.keys() if key.name == name]


def load(runtime: Runtime, name: str) -> tuple[float, list[str]]:
    """Load ``name`` into the cache; returns (milliseconds, cache keys now held)."""
    check_models([name], runtime.settings.resolved_model_dir)
    t0 = time.perf_counter()
    runtime.models.load(name)
    ms = (time.perf_counter() - t0) * 1000
    return ms, held_keys(runtime, name)


def unload(runtime: Runtime, name: str) -> list[str]:
    check_models([name], runtime.settings.resolved_model_dir)
    return [str(key) for key in runtime.cache.keys() if key.name == name and runtime.cache.invalidate(key)]


def prewarm_models(runtime: Runtime, names: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Load the models through the cache's prewarm (parallel, recorded for the warm state).

    Returns (loaded names, {name: error}); one failing model never stops the others.
    """
    from aisp.models import get_spec

    wanted = list(dict.fromkeys(names))
    failed: dict[str, str] = {}
    for name in wanted:
        try:
            check_onnx_path(name, runtime.settings.resolved_model_dir)
            get_spec(name)
        except AISPError as exc:
            failed[name] = exc.message
    todo = [n for n in wanted if n not in failed]
    if not todo:
        return [], failed
    report = runtime.prewarm(todo)
    failed.update(report.failed)
    for name in report.loaded:
        log.info("prewarmed %s", name)
    return list(report.loaded), failed


def prewarm_api_instances(models: ModelRegistry, names: Iterable[str], threads: int, *,
                          capacity: int) -> list[str]:
    """Load the frames route's per-thread instances (``name#api<i>``) of the models the registry
    keeps one per caller for (non-thread-safe models; ONNX models when the CPU plan gives each
    thread its own session).

    Only as many as fit in the cache beside what it holds (``capacity`` = cache_max_size), so
    prewarming never evicts models. Returns the cache keys loaded, as text.
    """
    cache = models.cache
    assert cache is not None  # the app's registry is always bound to the app's cache
    held = set(cache.keys())
    room = capacity - len(held)
    loaded: list[str] = []
    for name in names:
        if models.key(name, api_instance(0)).instance is None:
            continue  # one shared instance serves every thread
        for i in range(threads):
            key = models.key(name, api_instance(i))
            if key in held:
                continue
            if room <= 0:
                log.info("prewarm: no cache room for more API instances (cache_max_size=%s)", capacity)
                return loaded
            try:
                models.load(name, instance=api_instance(i))
            except AISPError as exc:
                log.warning("prewarm of %s failed: %s", key, exc.message)
                break
            loaded.append(str(key))
            room -= 1
    return loaded
