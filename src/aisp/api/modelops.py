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

from aisp.errors import (
    AISPError,
    ForbiddenError,
    InvalidModelError,
    ModelLoadError,
    NotFoundError,
    ValidationError,
)

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
    "onnx_relative_path",
    "public_load_error",
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
    """The names, de-duplicated; raises ``NotFoundError`` for an unknown name (naming the known
    ones) or a missing ``onnx:`` file, ``ForbiddenError`` for an ``onnx:`` path outside
    ``model_dir`` and ``InvalidModelError`` (422) for an ``onnx:`` file that is not an ONNX model.
    Errors name ``onnx:`` files by their path relative to ``model_dir``, never the absolute one."""
    from aisp.models import get_spec

    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise ValidationError("expected at least one model name", field="models", expected="non-empty list")
    for name in wanted:
        check_onnx_path(name, model_dir)
        get_spec(name)
    return wanted


def _resolve_onnx(name: str) -> Path:
    path = Path(name[len(ONNX_PREFIX) :]).expanduser()
    return (path if path.is_absolute() else Path.cwd() / path).resolve()


def onnx_relative_path(name: str, model_dir: Path) -> str | None:
    """An ``onnx:`` model's file as a path relative to ``model_dir`` (None when it is outside)."""
    try:
        resolved = _resolve_onnx(name)
    except (OSError, RuntimeError, ValueError):
        return None
    return resolved.relative_to(model_dir).as_posix() if resolved.is_relative_to(model_dir) else None


def check_onnx_path(name: str, model_dir: Path) -> None:
    """API callers may load ``onnx:<path>`` models only from the model directory, and only files
    that are there and start like an ONNX model.

    The CLI trusts its user with any path; the API does not let a client make the server open
    (or probe) arbitrary files: the path must resolve inside ``model_dir``
    (``settings.resolved_model_dir``), else 403 (whether it exists or not). Inside it, a missing
    file is 404 and a file that is not an ONNX model (its first bytes are not a ModelProto's
    ``ir_version``) is 422; both name the path relative to the model directory. A file that starts
    well but fails to load later is a 422 too (:func:`public_load_error`).
    """
    if not isinstance(name, str) or not name.startswith(ONNX_PREFIX):
        return
    try:
        resolved = _resolve_onnx(name)
    except (OSError, RuntimeError, ValueError):
        resolved = None
    if resolved is None or not resolved.is_relative_to(model_dir):
        raise ForbiddenError(
            "ONNX models are loaded only from the model directory (setting AISP_MODEL_DIR); "
            "the path given is outside it",
            details={"field": "models", "setting": "AISP_MODEL_DIR"},
        )
    rel = resolved.relative_to(model_dir).as_posix()
    if not resolved.is_file():
        raise NotFoundError(
            f"ONNX model file '{rel}' not found in the model directory (AISP_MODEL_DIR)",
            kind="model",
            key=f"{ONNX_PREFIX}{rel}",
            details={"field": "models", "path": rel},
        )
    try:
        with resolved.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        head = b""
    if not _looks_like_onnx(head):
        raise InvalidModelError(
            f"'{rel}' in the model directory is not an ONNX model (expected a protobuf ModelProto "
            "starting with its ir_version)",
            path=rel,
            details={"field": "models"},
        )


def _looks_like_onnx(head: bytes) -> bool:
    """An ONNX file is a ModelProto whose first field, as every exporter writes it, is
    ``ir_version`` (field 1, varint: tag 0x08) with a small positive value."""
    return len(head) >= 2 and head[0] == 0x08 and 1 <= head[1] <= 64


def public_load_error(exc: ModelLoadError, name: str, model_dir: Path | None) -> ModelLoadError:
    """The error to show a client for a failed load of ``name``: for an ``onnx:`` file inside
    ``model_dir``, a 422 :class:`InvalidModelError` naming the file relative to the model directory
    (the backend's own text is reduced to its reason, without any path); other errors as they are."""
    if model_dir is None or not name.startswith(ONNX_PREFIX) or type(exc) not in (ModelLoadError,):
        return exc
    rel = onnx_relative_path(name, model_dir)
    if rel is None:
        return exc
    reason = _strip_paths(exc.message, name, model_dir)
    return InvalidModelError(
        f"ONNX model '{rel}' in the model directory cannot be used: {reason}",
        path=rel,
        details={"field": "models"},
    )


def _strip_paths(message: str, name: str, model_dir: Path) -> str:
    """``message`` without the model's absolute path or the model directory's."""
    text = message
    raw = name[len(ONNX_PREFIX) :]
    for path in sorted({raw, str(_resolve_onnx(name)), str(model_dir)}, key=len, reverse=True):
        if path:
            text = text.replace(path, "<model>" if path != str(model_dir) else "<model_dir>")
    _, _, tail = text.partition("<model>")
    reason = tail.lstrip("': ").strip() or text
    return reason.replace(str(model_dir), "<model_dir>")


def api_instance(thread_index: int) -> str:
    """The instance name of the frames route's pool thread ``thread_index`` (``"api0"``, ...)."""
    return f"api{thread_index}"


def held_keys(runtime: Runtime, name: str) -> list[str]:
    """Cache keys held for ``name`` (shared and per-thread instances), as text."""
    return [str(key) for key in runtime.cache.keys() if key.name == name]


def load(runtime: Runtime, name: str) -> tuple[float, list[str]]:
    """Load ``name`` into the cache; returns (milliseconds, cache keys now held)."""
    model_dir = runtime.settings.resolved_model_dir
    check_models([name], model_dir)
    t0 = time.perf_counter()
    try:
        runtime.models.load(name)
    except ModelLoadError as exc:
        raise public_load_error(exc, name, model_dir) from None
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
    model_dir = runtime.settings.resolved_model_dir
    for name, message in report.failed.items():  # "ModelLoadError: <text>" for a failed load
        kind, sep, text = message.partition(": ")
        if sep and kind == "ModelLoadError":
            message = public_load_error(ModelLoadError(text), name, model_dir).message
        failed[name] = message
    for name in report.loaded:
        log.info("prewarmed %s", name)
    return list(report.loaded), failed


def prewarm_api_instances(models: ModelRegistry, names: Iterable[str], threads: int, *,
                          capacity: int) -> list[str]:
    """Load the frames route's per-thread instances (``name#api<i>``) of non-thread-safe models.

    Only as many as fit in the cache beside what it holds (``capacity`` = cache_max_size), so
    prewarming never evicts models. Returns the cache keys loaded, as text.
    """
    from aisp.models import get_spec

    cache = models.cache
    assert cache is not None  # the app's registry is always bound to the app's cache
    held = set(cache.keys())
    room = capacity - len(held)
    loaded: list[str] = []
    for name in names:
        if get_spec(name).thread_safe:
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
