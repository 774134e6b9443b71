"""``ModelCache``: a thread-safe, memory-bounded model cache with TTL, single-flight loads and stats.

Locking: one short lock guards the maps and counters; it is never held while a loader runs,
while a listener runs or while a model is closed. Concurrent requests for the same cold model
share one load (single-flight through the ``_pending`` map, one ``Event`` per load); requests
for other models go on meanwhile.

Every removal (count, memory, TTL, invalidate, clear, replace, close) goes through
:meth:`_remove_locked`, where counters, events and the retirement of the model happen. A removed
model that has ``close()``/``release()`` is retired and closed once nobody else holds it (CPython
reference count); with ``enable_weak_ref`` a retired model still held by a caller is revived on
the next request instead of being reloaded.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aisp.cache._entry import NEVER, Entry
from aisp.cache._eviction import EvictionMixin
from aisp.cache._internal import MISSING, Actions, check_config, check_name, check_ttl
from aisp.cache._loading import Flight, LoadMixin
from aisp.cache._retire import Retired, RetireMixin
from aisp.cache.alerts import AlertRecord, HitRateAlert
from aisp.cache.events import CacheEvent, Listener, dispatch
from aisp.cache.policies import make_policy
from aisp.cache.sizing import check_size, estimate_size
from aisp.cache.sweeper import SweepMixin
from aisp.errors import NotFoundError

__all__ = ["ModelCache"]

logger = logging.getLogger("aisp.cache")

#: Statistics records kept for models that are no longer cached (oldest dropped first).
MAX_RECORDS = 1024


class ModelCache(LoadMixin, RetireMixin, EvictionMixin, SweepMixin):
    """Caches any object a loader returns; see ``docs/cache.md``.

    ``max_size`` entries and ``max_memory_mb`` (``None``: no limit) bound the cache;
    ``default_ttl_seconds`` is the idle time before an entry expires (``None`` or 0: never);
    ``enable_weak_ref`` revives evicted models still held by a caller; a hit rate below
    ``hit_rate_threshold`` (0..1) over the last ``hit_rate_window`` requests, after
    ``hit_rate_min_requests``, raises the alert at most once per ``alert_cooldown_seconds``;
    ``eviction_policy`` is ``"lru"`` or ``"cost"``; ``clock`` is injectable;
    ``background_sweep=False`` runs no sweeper thread (call :meth:`sweep` yourself).
    """

    def __init__(
        self,
        max_size: int = 8,
        max_memory_mb: float | None = 2048.0,
        default_ttl_seconds: float | None = 3600.0,
        enable_weak_ref: bool = True,
        hit_rate_threshold: float = 0.5,
        eviction_policy: str = "lru",
        clock: Callable[[], float] = time.monotonic,
        *,
        hit_rate_window: int = 100,
        hit_rate_min_requests: int = 20,
        alert_cooldown_seconds: float = 300.0,
        background_sweep: bool = True,
    ) -> None:
        self.max_size, self.max_memory_bytes, self._default_ttl = check_config(
            max_size,
            max_memory_mb,
            default_ttl_seconds,
            hit_rate_threshold,
            clock,
            hit_rate_window,
            hit_rate_min_requests,
            alert_cooldown_seconds,
        )
        self.max_memory_mb = max_memory_mb
        self.enable_weak_ref = bool(enable_weak_ref)
        self.hit_rate_threshold = float(hit_rate_threshold)
        self._policy = make_policy(eviction_policy)
        self.eviction_policy = self._policy.name
        self._tracks_hits = self._policy.tracks_hits
        self._clock = clock
        self._background_sweep = background_sweep

        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Entry] = OrderedDict()  # cached, least recent first
        self._records: dict[str, Entry] = {}  # every known name, cached or not
        self._pending: dict[str, Flight] = {}
        self._retired: list[Retired] = []
        self._listeners: tuple[Listener, ...] = ()
        self._memory = 0
        self._hits = self._misses = self._loads = self._load_failures = 0
        self._evictions = self._expirations = self._invalidations = 0
        self._revived = self._coalesced = self._closed_models = self._puts = 0
        self._load_seconds_total = 0.0
        # sliding hit-rate window: ring of 0/1 with a running sum
        self._ring = bytearray(hit_rate_window)
        self._ring_n = hit_rate_window
        self._ring_i = 0
        self._ring_sum = 0
        self._alert = HitRateAlert(
            self.hit_rate_threshold, hit_rate_min_requests, float(alert_cooldown_seconds)
        )
        self._sweeper: Any = None
        self._created_at = clock()
        # prewarm bookkeeping (see aisp.cache.prewarm)
        self._prewarm_requested: dict[str, None] = {}
        self._prewarm_pending: set[str] = set()
        self._prewarm_last: Any = None
        self._prewarm_running = 0

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_settings(cls, settings: Any = None, **overrides: Any) -> ModelCache:
        """A cache configured from :class:`aisp.settings.Settings` (``get_settings()`` by default)."""
        if settings is None:
            from aisp.settings import get_settings

            settings = get_settings()
        kwargs: dict[str, Any] = {
            "max_size": settings.cache_max_size,
            "max_memory_mb": settings.cache_max_memory_mb,
            "default_ttl_seconds": settings.cache_ttl_seconds,
            "enable_weak_ref": settings.cache_weak_ref,
            "hit_rate_threshold": settings.cache_hit_rate_threshold,
            "eviction_policy": settings.cache_eviction_policy,
            "hit_rate_window": settings.cache_hit_rate_window,
            "hit_rate_min_requests": settings.cache_hit_rate_min_requests,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return (
            f"ModelCache(size={len(self._entries)}/{self.max_size}, memory={self._memory}B, "
            f"policy={self.eviction_policy!r})"
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:  # an empty cache is still a cache: ``cache or default`` must keep it
        return True

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.contains(name)

    # ------------------------------------------------------------------ hit path
    def get(self, name: str) -> Any:
        """The cached model, or ``None``. Counts a hit or a miss."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and now < entry.expires_at:
                self._entries.move_to_end(name)
                entry.hits += 1
                entry.last_access = now
                entry.expires_at = now + entry.ttl
                if self._tracks_hits:
                    self._policy.on_hit(entry)
                self._hits += 1
                i = self._ring_i
                self._ring_sum += 1 - self._ring[i]
                self._ring[i] = 1
                i += 1
                self._ring_i = 0 if i == self._ring_n else i
                model = entry.model
                if not self._alert.active and not self._listeners:
                    return model
                acts = Actions()
                self._after_hit_locked(entry, now, acts)
            else:
                acts = Actions()
                model = self._miss_locked(name, entry, now, acts)
        self._finish(acts)
        return model

    def get_or_load(
        self,
        name: str,
        loader: Callable[[], Any],
        size_bytes: int | None = None,
        ttl_seconds: float | None = None,
    ) -> Any:
        """The cached model, or the result of ``loader()`` (run once for concurrent callers)."""
        if not callable(loader):
            raise TypeError(f"loader for model {name!r} must be callable, got {type(loader).__name__}")
        if size_bytes is not None:
            check_size(size_bytes)
        ttl = None if ttl_seconds is None else check_ttl(ttl_seconds, "ttl_seconds")
        now = self._clock()
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and now < entry.expires_at:
                # The same hit path as get(), inlined on purpose: a helper call would cost
                # ~10% of a hit (see `aisp bench cache`).
                self._entries.move_to_end(name)
                entry.hits += 1
                entry.last_access = now
                entry.expires_at = now + entry.ttl
                if self._tracks_hits:
                    self._policy.on_hit(entry)
                self._hits += 1
                i = self._ring_i
                self._ring_sum += 1 - self._ring[i]
                self._ring[i] = 1
                i += 1
                self._ring_i = 0 if i == self._ring_n else i
                model = entry.model
                if not self._alert.active and not self._listeners:
                    return model
                acts = Actions()
                self._after_hit_locked(entry, now, acts)
                hit = True
            else:
                hit = False
        if hit:
            self._finish(acts)
            return model
        return self._load(check_name(name), loader, size_bytes, ttl, now)

    def _hit_locked(self, entry: Entry, now: float, acts: Actions) -> Any:
        """Hit bookkeeping for the slow paths (the fast paths inline the same steps)."""
        self._entries.move_to_end(entry.name)
        entry.hits += 1
        entry.last_access = now
        entry.expires_at = now + entry.ttl
        if self._tracks_hits:
            self._policy.on_hit(entry)
        self._count_request_locked(True, now, acts)
        if self._listeners:
            acts.events.append(CacheEvent("hit", entry.name, now))
        return entry.model

    def _after_hit_locked(self, entry: Entry, now: float, acts: Actions) -> None:
        if self._alert.active:
            acts.alert = self._alert.evaluate(self._ring_sum, self._window_count(), now)
        if self._listeners:
            acts.events.append(CacheEvent("hit", entry.name, now))

    # ------------------------------------------------------------------ miss and load path
    def _count_request_locked(self, hit: bool, now: float, acts: Actions) -> None:
        if hit:
            self._hits += 1
        else:
            self._misses += 1
        v = 1 if hit else 0
        i = self._ring_i
        self._ring_sum += v - self._ring[i]
        self._ring[i] = v
        i += 1
        self._ring_i = 0 if i == self._ring_n else i
        if not hit or self._alert.active:
            acts.alert = self._alert.evaluate(self._ring_sum, self._window_count(), now) or acts.alert

    def _window_count(self) -> int:
        return min(self._hits + self._misses, self._ring_n)

    def _record(self, name: str) -> Entry:
        record = self._records.get(name)
        if record is None:
            if len(self._records) >= MAX_RECORDS:
                self._prune_records()
            record = self._records[name] = Entry(name)
        return record

    def _prune_records(self) -> None:
        idle = [r for r in self._records.values() if not r.cached and r.name not in self._pending]
        idle.sort(key=lambda r: -math.inf if r.last_access is None else r.last_access)
        for record in idle[: max(1, len(idle) // 4)]:
            del self._records[record.name]

    def _miss_locked(self, name: str, entry: Entry | None, now: float, acts: Actions) -> Any:
        """``get()`` slow path: drop an expired entry, revive a retired model, or count a miss."""
        check_name(name)
        if entry is not None:
            self._remove_locked(entry, "expired", now, acts)
        model = self._revive_locked(name, now, acts)
        record = self._record(name)
        record.last_access = now
        if model is not MISSING:
            record.hits += 1
            self._count_request_locked(True, now, acts)
            return model
        record.misses += 1
        self._count_request_locked(False, now, acts)
        if self._listeners:
            acts.events.append(CacheEvent("miss", name, now))
        return None

    # ------------------------------------------------------------------ insertion and eviction
    def put(
        self, name: str, model: Any, size_bytes: int | None = None, ttl_seconds: float | None = None
    ) -> None:
        """Cache ``model`` under ``name`` (replacing any cached one). No hit or miss is counted."""
        check_name(name)
        ttl = None if ttl_seconds is None else check_ttl(ttl_seconds, "ttl_seconds")
        size, source = estimate_size(model, size_bytes)
        acts = Actions()
        with self._lock:
            now = self._clock()
            record = self._record(name)
            self._insert_locked(record, model, size, source, ttl, now, acts)
            self._puts += 1
            if self._listeners:
                acts.events.append(CacheEvent("put", name, now, {"size_bytes": size}))
        self._finish(acts)

    def _finish(self, acts: Actions) -> None:
        """Post-lock work: logs, alert announcement, listeners, closing released models."""
        for level, msg, args in acts.logs:
            logger.log(level, msg, *args)
        if acts.alert is not None:
            self._announce(acts.alert)
            acts.events.append(CacheEvent("alert", None, acts.alert.at, acts.alert.to_dict()))
        if acts.events and self._listeners:
            dispatch(self._listeners, acts.events)
        if self._retired:
            self._reap()

    def _announce(self, record: AlertRecord) -> None:
        if record.state == "firing":
            logger.warning(
                "cache hit rate %.1f%% over the last %d requests is below the %.1f%% threshold",
                record.hit_rate * 100,
                record.window,
                record.threshold * 100,
            )
        else:
            logger.info(
                "cache hit rate recovered to %.1f%% (threshold %.1f%%)",
                record.hit_rate * 100,
                record.threshold * 100,
            )

    # ------------------------------------------------------------------ management
    def pin(self, name: str) -> None:
        """Never evict (nor expire) ``name`` until :meth:`unpin`. ``NotFoundError`` if not cached."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or now >= entry.expires_at:
                raise NotFoundError(
                    f"model {name!r} is not cached; load it before pinning", kind="model", key=name
                )
            entry.pinned = True
            entry.ttl = NEVER
            entry.expires_at = NEVER

    def unpin(self, name: str, ttl_seconds: float | None = None) -> bool:
        """Make ``name`` evictable again; ``False`` when it was not a pinned cached model."""
        ttl = self._default_ttl if ttl_seconds is None else check_ttl(ttl_seconds, "ttl_seconds")
        now = self._clock()
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or not entry.pinned:
                return False
            entry.pinned = False
            entry.ttl = ttl
            entry.expires_at = now + ttl
            if ttl != NEVER:
                self._ensure_sweeper()
            return True

    def invalidate(self, name: str) -> bool:
        """Remove ``name`` (even if pinned); a load in flight is delivered but not cached."""
        acts = Actions()
        with self._lock:
            flight = self._pending.get(name)
            if flight is not None:
                flight.invalidated = True
            entry = self._entries.get(name)
            if entry is not None:
                self._remove_locked(entry, "invalidated", self._clock(), acts)
        self._finish(acts)
        return entry is not None

    def clear(self) -> int:
        """Remove every cached model (pinned ones too); returns how many were removed."""
        return self._remove_all("cleared")

    def _remove_all(self, reason: str) -> int:
        acts = Actions()
        with self._lock:
            now = self._clock()
            for flight in self._pending.values():
                flight.invalidated = True
            entries = list(self._entries.values())
            for entry in entries:
                self._remove_locked(entry, reason, now, acts)
        self._finish(acts)
        return len(entries)

    def close(self) -> None:
        """Stop the sweeper, remove everything and close every retired model now."""
        self._remove_all("closed")
        self._reap(force=True)
        sweeper, self._sweeper = self._sweeper, None  # after the removals, which may start one
        if sweeper is not None:
            sweeper.stop()

    # ------------------------------------------------------------------ queries
    def names(self) -> list[str]:
        """Names of the cached (unexpired) models, least recently used first."""
        now = self._clock()
        with self._lock:
            return [n for n, e in self._entries.items() if now < e.expires_at]

    def contains(self, name: str) -> bool:
        """Whether ``name`` is cached and unexpired; counts neither a hit nor a miss."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(name)
            return entry is not None and now < entry.expires_at

    def info(self, name: str) -> dict[str, Any]:
        """Per-model statistics; ``NotFoundError`` for a name the cache has never seen."""
        now = self._clock()
        with self._lock:
            record = self._records.get(name)
            if record is None:
                raise NotFoundError(f"the cache has no record of model {name!r}", kind="model", key=name)
            info = record.to_dict(now)
            info["loading"] = name in self._pending
            return info

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(CacheEvent)`` on every event (see :data:`aisp.cache.events.EVENT_TYPES`)."""
        if not callable(callback):
            raise TypeError(f"listener must be callable, got {type(callback).__name__}")
        with self._lock:
            self._listeners = (*self._listeners, callback)

    def remove_listener(self, callback: Listener) -> bool:
        with self._lock:
            if callback not in self._listeners:
                return False
            items = list(self._listeners)
            items.remove(callback)
            self._listeners = tuple(items)
            return True

    # ------------------------------------------------------------------ statistics, export, prewarm
    def get_stats(self) -> dict[str, Any]:
        from aisp.cache.stats import basic_stats

        return basic_stats(self)

    def get_detailed_stats(self) -> dict[str, Any]:
        from aisp.cache.stats import detailed_stats

        return detailed_stats(self)

    def export_stats(self, format: str = "json", path: Any = None) -> str:  # noqa: A002 - public name
        """The statistics as ``json``, ``csv`` (one row per model) or ``prometheus`` text."""
        from aisp.cache.export import export_stats

        return export_stats(self, format, path)

    def prewarm(
        self,
        models: Mapping[str, Callable[[], Any]] | Iterable[str] | str,
        background: bool = False,
        max_workers: int = 2,
        timeout_seconds: float | None = None,
        on_progress: Callable[..., Any] | None = None,
        on_complete: Callable[..., Any] | None = None,
        *,
        resolver: Callable[[str], Callable[[], Any]] | None = None,
    ) -> Any:
        """Load models in parallel; a ``PrewarmReport`` (or a ``PrewarmHandle`` when ``background``)."""
        from aisp.cache.prewarm import run_prewarm

        return run_prewarm(
            self,
            models,
            background=background,
            max_workers=max_workers,
            timeout_seconds=timeout_seconds,
            on_progress=on_progress,
            on_complete=on_complete,
            resolver=resolver,
        )

    def is_warmed_up(self) -> bool:
        """True when every model ever requested by :meth:`prewarm` has been loaded since."""
        with self._lock:
            return not self._prewarm_pending

    def get_warmed_models(self) -> list[str]:
        """Models requested by :meth:`prewarm` that have been loaded, in request order."""
        with self._lock:
            return [n for n in self._prewarm_requested if n not in self._prewarm_pending]
