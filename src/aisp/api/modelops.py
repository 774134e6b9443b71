"""Model operations shared by the routes and the lifespan: name checks, load, unload, prewarm.

Imports :mod:`aisp.models` lazily (it pulls numpy), so the app module stays light.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from aisp.errors import AISPError, ForbiddenError, ValidationError

__all__ = [
    "known_models",
    "check_models",
    "parse_model_list",
    "load",
    "unload",
    "prewarm_models",
    "cache_keys",
    "check_onnx_path",
]

log = logging.getLogger("aisp.api")


def known_models() -> dict[str, Any]:
    from aisp.models import list_models

    return {info.name: info for info in list_models()}


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


def check_models(names: Iterable[str]) -> list[str]:
    """The names, de-duplicated; raises ``NotFoundError`` for an unknown one, naming the known ones.

    Cheap (a dict lookup per name, no import of a backend), so routes call it on the event loop.
    """
    from aisp.models import get_spec

    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise ValidationError("expected at least one model name", field="models", expected="non-empty list")
    for name in wanted:
        check_onnx_path(name)
        get_spec(name)
    return wanted


def check_onnx_path(name: str) -> None:
    """API callers may load ``onnx:<path>`` models only from the model directory.

    The CLI trusts its user with any path; the API does not let a client make the server open
    (or probe) arbitrary files: the path must resolve inside ``settings.resolved_model_dir``.
    """
    from pathlib import Path

    from aisp.models.registry import ONNX_PREFIX
    from aisp.settings import get_settings

    if not isinstance(name, str) or not name.startswith(ONNX_PREFIX):
        return
    root = get_settings().resolved_model_dir
    path = Path(name[len(ONNX_PREFIX) :]).expanduser()
    resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not resolved.is_relative_to(root):
        raise ForbiddenError(
            f"model '{name}': ONNX models are loaded only from the model directory {root} "
            f"(AISP_MODEL_DIR); got a path outside it",
            details={"field": "models", "model_dir": str(root)},
        )


def cache_keys(name: str) -> list[str]:
    """Cache keys held for ``name``: ``name`` and its per-thread instances ``name#i``."""
    from aisp.cache import get_model_cache

    return [k for k in get_model_cache().names() if k == name or k.startswith(f"{name}#")]


def load(name: str) -> tuple[float, list[str]]:
    """Load ``name`` into the cache; returns (milliseconds, cache keys now held)."""
    from aisp.models import load_model

    check_models([name])
    t0 = time.perf_counter()
    load_model(name)
    ms = (time.perf_counter() - t0) * 1000
    return ms, cache_keys(name)


def unload(name: str) -> list[str]:
    from aisp.cache import get_model_cache

    check_models([name])
    cache = get_model_cache()
    removed = []
    for key in cache_keys(name):
        if cache.invalidate(key) is not False:
            removed.append(key)
    return removed


def prewarm_models(names: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Load the models through the cache's prewarm (parallel, recorded for ``is_warmed_up``).

    Returns (loaded names, {name: error}); one failing model never stops the others.
    """
    import aisp.models  # noqa: F401 - installs the registry as the cache's name resolver
    from aisp.cache import get_model_cache
    from aisp.models import get_spec

    wanted = list(dict.fromkeys(names))
    failed: dict[str, str] = {}
    for name in wanted:
        try:
            check_onnx_path(name)
            get_spec(name)
        except AISPError as exc:
            failed[name] = exc.message
    todo = [n for n in wanted if n not in failed]
    if not todo:
        return [], failed
    report = get_model_cache().prewarm(todo)
    failed.update(report.failed)
    for name in report.loaded:
        log.info("prewarmed %s", name)
    return list(report.loaded), failed


def prewarm_api_instances(names: Iterable[str], threads: int, *, capacity: int) -> list[str]:
    """Load the frames route's per-thread instances (``name#api<i>``) of non-thread-safe models.

    Only as many as fit in the cache beside what it holds (``capacity`` = cache_max_size), so
    prewarming never evicts models. Returns the cache keys loaded.
    """
    from aisp.cache import get_model_cache
    from aisp.models import get_spec, load_model

    cache = get_model_cache()
    room = capacity - len(cache.names())
    loaded: list[str] = []
    for name in names:
        if get_spec(name).thread_safe:
            continue  # one shared instance serves every thread
        for i in range(threads):
            key = f"{name}#api{i}"
            if key in cache.names():
                continue
            if room <= 0:
                log.info("prewarm: no cache room for more API instances (cache_max_size=%s)", capacity)
                return loaded
            try:
                load_model(name, instance=f"api{i}")
            except AISPError as exc:
                log.warning("prewarm of %s failed: %s", key, exc.message)
                break
            loaded.append(key)
            room -= 1
    return loaded
