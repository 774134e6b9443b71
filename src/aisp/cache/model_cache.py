"""``ModelCache``: a thread-safe, memory-bounded model cache with TTL, single-flight loads and stats.

One owner: ``ModelCache`` holds the lock and the maps (``_entries``, the cached entries in
recency order; ``_records``, every key's statistics; ``_pending``, the loads in flight).
Collaborators keep their own state, are called under the lock, and never see the cache:
:class:`~aisp.cache.stats.Totals` (the counters), :class:`~aisp.cache.alerts.HitWindow` (recent
requests and the hit-rate alert), :class:`~aisp.cache._retire.Retirement` (removed models to
close or revive), :class:`~aisp.cache.prewarm.PrewarmTracker`, the eviction policy, and the
:class:`~aisp.cache.sweeper.Sweeper` thread, which is handed a bound method.

The lock is never held while a loader, a listener or a model's ``close()`` runs; that work is
collected in an :class:`~aisp.cache._actions.Actions` and done after. Concurrent requests for the
same cold key share one load (single-flight through ``_pending``, one ``Event`` per load);
requests for other keys go on meanwhile. Every removal (count, memory, TTL, invalidate, clear,
replace, close) goes through :meth:`ModelCache._remove_locked`.

Keys are :class:`~aisp.cache.keys.ModelKey` tuples; public methods also take their text
(``"name#instance"``), parsed once per distinct string. Events, logs and exports show the text.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

import aisp.cache.prewarm as pw
from aisp.cache._actions import Actions
from aisp.cache._entry import MISSING, NEVER, Entry, Flight
from aisp.cache._retire import Retirement, close_models
from aisp.cache.alerts import HitRateAlert, HitWindow
from aisp.cache.config import CacheConfig, check_key, check_ttl
from aisp.cache.events import Listener
from aisp.cache.export import export_stats
from aisp.cache.keys import ModelKey
from aisp.cache.policies import make_policy
from aisp.cache.sizing import check_size, estimate_size
from aisp.cache.stats import CacheReport, CacheStats, ModelStats, Totals
from aisp.cache.sweeper import REAP_INTERVAL_SECONDS, Sweeper
from aisp.errors import AISPError, NotFoundError, OverloadedError

if TYPE_CHECKING:  # pragma: no cover - pydantic stays out of ``import aisp.cache``
    from aisp.settings import Settings

__all__ = ["ModelCache"]

_T = TypeVar("_T")

#: Statistics records kept for keys that are no longer cached (oldest dropped first).
MAX_RECORDS = 1024
#: Parsed text keys remembered (the memo is emptied when full).
MAX_TEXT_KEYS = 1024


class ModelCache:
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
        self.config = config = CacheConfig(
            max_size=max_size,
            max_memory_mb=max_memory_mb,
            default_ttl_seconds=default_ttl_seconds,
            enable_weak_ref=enable_weak_ref,
            hit_rate_threshold=hit_rate_threshold,
            hit_rate_window=hit_rate_window,
            hit_rate_min_requests=hit_rate_min_requests,
            alert_cooldown_seconds=alert_cooldown_seconds,
            eviction_policy=eviction_policy,
        )
        if not callable(clock):
            raise TypeError(f"clock must be callable, got {type(clock).__name__}")
        # read-only views of the config
        self.max_size, self.max_memory_mb = config.max_size, config.max_memory_mb
        self.max_memory_bytes = config.max_memory_bytes
        self.enable_weak_ref, self.hit_rate_threshold = config.enable_weak_ref, config.hit_rate_threshold
        self.eviction_policy = config.eviction_policy
        self._default_ttl = config.idle_ttl
        self._policy = make_policy(config.eviction_policy)
        self._tracks_hits = self._policy.tracks_hits
        self._clock = clock
        self._background_sweep = background_sweep

        self._lock = threading.Lock()
        self._entries: OrderedDict[ModelKey, Entry] = OrderedDict()  # cached, least recent first
        self._records: dict[ModelKey, Entry] = {}  # every known key, cached or not
        self._pending: dict[ModelKey, Flight] = {}  # loads in flight
        self._text_keys: dict[str, ModelKey] = {}  # memo of parsed text keys
        self._listeners: tuple[Listener, ...] = ()
        self._memory = 0
        self._totals = Totals()
        self._alert = HitRateAlert(
            config.hit_rate_threshold, config.hit_rate_min_requests, config.alert_cooldown_seconds
        )
        self._window = HitWindow(config.hit_rate_window, self._alert)
        self._retirement = Retirement(config.enable_weak_ref)
        self._prewarm = pw.PrewarmTracker()
        self._sweeper: Sweeper | None = None
        self._created_at = clock()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> ModelCache:
        """A cache configured from the ``cache_*`` fields of ``settings`` (required: no process-wide
        settings are read); ``overrides`` are constructor arguments (``clock=``, ...) that win."""
        if settings is None:
            raise TypeError("ModelCache.from_settings needs a Settings object, got None")
        kwargs: dict[str, object] = CacheConfig.from_settings(settings).to_dict()
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (
            f"ModelCache(size={len(self._entries)}/{self.max_size}, memory={self._memory}B, "
            f"policy={self.eviction_policy!r})"
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:  # an empty cache is still a cache: ``cache or default`` must keep it
        return True

    def __contains__(self, key: object) -> bool:
        return isinstance(key, (str, ModelKey)) and self.contains(key)

    def _key(self, key: ModelKey | str) -> ModelKey:
        """``key`` as a valid ``ModelKey``; a text key is parsed once and remembered."""
        if not isinstance(key, str):
            return check_key(key)
        parsed = self._text_keys.get(key)
        if parsed is None:
            parsed = check_key(key)
            if len(self._text_keys) >= MAX_TEXT_KEYS:
                self._text_keys.clear()
            self._text_keys[key] = parsed
        return parsed

    # ------------------------------------------------------------------ hit path
    def get(self, key: ModelKey | str) -> object | None:
        """The cached model, or ``None``. Counts a hit or a miss."""
        if key.__class__ is not ModelKey:
            key = self._text_keys.get(key) or self._key(key)  # type: ignore[call-overload]
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)  # type: ignore[arg-type]
            if entry is not None and now < entry.expires_at:
                # Hit path inlined (here and in get_or_load): a helper call measured ~7% slower per hit.
                self._entries.move_to_end(key)  # type: ignore[arg-type]
                entry.hits += 1
                entry.last_access = now
                entry.expires_at = now + entry.ttl
                if self._tracks_hits:
                    self._policy.on_hit(entry)
                self._totals.hits += 1
                model = entry.model
                if not self._alert.active and not self._listeners:
                    return model
                acts = Actions(self._listeners)
                self._after_hit_locked(entry, now, acts)
            else:
                acts = Actions(self._listeners)
                model = self._miss_locked(check_key(key), entry, now, acts, None)
        self._finish(acts)
        return None if model is MISSING else model

    def get_or_load(
        self,
        key: ModelKey | str,
        loader: Callable[[], _T],
        size_bytes: int | None = None,
        ttl_seconds: float | None = None,
    ) -> _T:
        """The cached model, or the result of ``loader()`` (run once for concurrent callers)."""
        if key.__class__ is not ModelKey:
            key = self._text_keys.get(key) or self._key(key)  # type: ignore[call-overload]
        if not callable(loader):
            raise TypeError(f"loader for model {str(key)!r} must be callable, got {type(loader).__name__}")
        if size_bytes is not None:
            check_size(size_bytes)
        ttl = None if ttl_seconds is None else check_ttl(ttl_seconds, "ttl_seconds")
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)  # type: ignore[arg-type]
            if entry is not None and now < entry.expires_at:
                self._entries.move_to_end(key)  # type: ignore[arg-type]  # inlined: see get()
                entry.hits += 1
                entry.last_access = now
                entry.expires_at = now + entry.ttl
                if self._tracks_hits:
                    self._policy.on_hit(entry)
                self._totals.hits += 1
                model = entry.model
                if not self._alert.active and not self._listeners:
                    return model  # type: ignore[return-value]
                acts = Actions(self._listeners)
                self._after_hit_locked(entry, now, acts)
                hit = True
            else:
                hit = False
        if hit:
            self._finish(acts)
            return model  # type: ignore[return-value]
        return self._load(check_key(key), loader, size_bytes, ttl, now)  # type: ignore[return-value]

    def _after_hit_locked(self, entry: Entry, now: float, acts: Actions) -> None:
        if self._alert.active:
            acts.alert = self._window.evaluate(self._totals.hits + self._totals.misses, now)
        acts.event("hit", entry.key, now)

    # ------------------------------------------------------------------ miss and load path
    def _count_locked(self, hit: bool, now: float, acts: Actions) -> None:
        totals = self._totals
        if hit:
            totals.hits += 1
        else:
            totals.misses += 1
            self._window.miss(totals.hits + totals.misses)
        if not hit or self._alert.active:  # a hit cannot start an alert
            acts.alert = self._window.evaluate(totals.hits + totals.misses, now) or acts.alert

    def _record(self, key: ModelKey) -> Entry:
        record = self._records.get(key)
        if record is None:
            if len(self._records) >= MAX_RECORDS:
                idle = [r for r in self._records.values() if not r.cached and r.key not in self._pending]
                idle.sort(key=lambda r: -math.inf if r.last_access is None else r.last_access)
                for old in idle[: max(1, len(idle) // 4)]:
                    del self._records[old.key]
            record = self._records[key] = Entry(key)
        return record

    def _miss_locked(
        self, key: ModelKey, entry: Entry | None, now: float, acts: Actions, coalesced: bool | None
    ) -> object:
        """A request that found no live entry: drop the expired one, revive a retired model (not
        while a load is in flight), count a hit or a miss. The model, or ``MISSING``.
        ``coalesced`` is ``None`` for ``get()``, else whether a load of ``key`` is in flight."""
        if entry is not None:
            self._remove_locked(entry, "expired", now, acts)
        model = MISSING if coalesced else self._revive_locked(key, now, acts)
        record = self._record(key)
        record.last_access = now
        hit = model is not MISSING
        if hit:
            record.hits += 1
        else:
            record.misses += 1
        self._count_locked(hit, now, acts)
        if not hit:
            acts.event("miss", key, now, None if coalesced is None else {"coalesced": coalesced})
        return model

    def _load(
        self, key: ModelKey, loader: pw.Loader, size: int | None, ttl: float | None, now: float
    ) -> object:
        acts = Actions(self._listeners)
        flight: Flight | None = None
        owner = False
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now < entry.expires_at:  # loaded by another thread meanwhile
                self._entries.move_to_end(key)
                entry.hits += 1
                entry.last_access = now
                entry.expires_at = now + entry.ttl
                if self._tracks_hits:
                    self._policy.on_hit(entry)
                self._count_locked(True, now, acts)
                acts.event("hit", key, now)
                result = entry.model
            else:
                flight = self._pending.get(key)
                if flight is not None:
                    if flight.owner == threading.get_ident():
                        raise RuntimeError(f"the loader of model {str(key)!r} asked the cache for it again")
                    self._totals.coalesced_waits += 1
                result = self._miss_locked(key, entry, now, acts, flight is not None)
                if result is MISSING and flight is None:
                    owner = True
                    flight = self._pending[key] = Flight()
        self._finish(acts)
        if result is not MISSING:
            return result
        assert flight is not None
        if owner:
            return self._run_loader(key, loader, size, ttl, flight)
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.value

    def _run_loader(
        self, key: ModelKey, loader: pw.Loader, size: int | None, ttl: float | None, flight: Flight
    ) -> object:
        """Run the loader of the flight this thread owns (no lock held), then cache the model, or
        share the error with the waiters. A model refused by the budget fails the load too."""
        model: object = None
        error: BaseException | None = None
        started = self._clock()
        try:
            model = loader()
            seconds = self._clock() - started
            size_bytes, source = estimate_size(model, size)
        except BaseException as exc:
            error, seconds = exc, self._clock() - started
        acts = Actions(self._listeners)  # the listeners there are now, not when the load began
        with self._lock:
            self._pending.pop(key, None)
            now = self._clock()
            record = self._record(key)
            if error is not None:
                ms = seconds * 1e3
                acts.log(logging.WARNING, "loading model %s failed after %.1f ms: %s", key, ms, error)
                acts.event("load_failed", key, now, {"error": f"{type(error).__name__}: {error}"})
            else:
                record.record_load(seconds)
                self._totals.loads += 1
                self._totals.load_seconds += seconds
                try:
                    if flight.invalidated:
                        self._retire_locked(key, model, size_bytes, source, NEVER)
                    else:
                        self._insert_locked(record, model, size_bytes, source, ttl, now, acts)
                except AISPError as exc:
                    self._retire_locked(key, model, size_bytes, source, NEVER)
                    error = exc.with_traceback(None)  # its frames would keep the model alive
            if error is None:
                flight.value = model
                ms = seconds * 1e3
                msg = "loaded model %s in %.1f ms (%d bytes, %s)"
                acts.log(logging.INFO, msg, key, ms, size_bytes, source)
                acts.event("load", key, now, {"load_ms": ms, "size_bytes": size_bytes})
            else:
                record.load_failures += 1
                self._totals.load_failures += 1
                flight.error = error
                model = None  # retired and never delivered: let the reaper close it now
        flight.done.set()
        self._finish(acts)
        if error is not None:
            raise error
        return model

    # ------------------------------------------------------------------ insertion and removal
    def put(
        self,
        key: ModelKey | str,
        model: object,
        size_bytes: int | None = None,
        ttl_seconds: float | None = None,
    ) -> None:
        """Cache ``model`` under ``key`` (replacing any cached one). No hit or miss is counted."""
        key = self._key(key)
        ttl = None if ttl_seconds is None else check_ttl(ttl_seconds, "ttl_seconds")
        size, source = estimate_size(model, size_bytes)
        acts = Actions(self._listeners)
        with self._lock:
            now = self._clock()
            self._insert_locked(self._record(key), model, size, source, ttl, now, acts)
            self._totals.puts += 1
            acts.event("put", key, now, {"size_bytes": size})
        self._finish(acts)

    def _insert_locked(
        self,
        record: Entry,
        model: object,
        size: int,
        source: str,
        ttl: float | None,
        now: float,
        acts: Actions,
    ) -> None:
        """Make room through the policy (count first, then memory), then cache ``model``."""
        key = record.key
        old = self._entries.get(key)  # ``old`` is ``record`` when cached: one record per key
        self.config.check_room(
            key, size, {e.key: e.size_bytes for e in self._entries.values() if e.pinned and e is not old}
        )
        was_pinned = old is not None and old.pinned
        if old is not None:
            if old.model is model:  # same object again: take it out quietly, re-insert below
                del self._entries[key]
                self._memory -= old.size_bytes
            else:
                self._remove_locked(old, "replaced", now, acts)
        entries = self._entries
        while entries and (len(entries) >= self.max_size or self._memory + size > self.max_memory_bytes):
            victim = self._policy.choose_victim(entries.values())
            if victim is None:  # pragma: no cover - excluded by check_room
                raise OverloadedError(f"cannot make room for model {str(key)!r}")
            self._policy.on_evict(victim)
            self._remove_locked(victim, "capacity" if len(entries) >= self.max_size else "memory", now, acts)
        record.model, record.cached, record.pinned = model, True, was_pinned
        record.size_bytes, record.size_source = size, source
        record.inserted_at = record.last_access = now
        if record.cost <= 0.0:  # put without a measured load: the mean load time, else 1 s
            totals = self._totals
            record.cost = totals.load_seconds / totals.loads if totals.loads else 1.0
        self._policy.on_insert(record)
        entries[key] = record
        self._memory += size
        record.ttl = NEVER if was_pinned else (self._default_ttl if ttl is None else ttl)
        record.expires_at = now + record.ttl
        self._prewarm.loaded(key)
        if record.expires_at != NEVER:
            self._ensure_sweeper()

    def _remove_locked(self, entry: Entry, reason: str, now: float, acts: Actions) -> None:
        """The one eviction path: every removal of a cached entry ends here."""
        del self._entries[entry.key]
        self._memory -= entry.size_bytes
        model = entry.model
        ttl = self._default_ttl if entry.pinned else entry.ttl  # a revived model is not pinned
        entry.model, entry.cached, entry.pinned, entry.expires_at = None, False, False, NEVER
        self._totals.removed(reason)
        self._retire_locked(entry.key, model, entry.size_bytes, entry.size_source, ttl)
        level = logging.INFO if reason in ("invalidated", "cleared") else logging.DEBUG  # churn stays quiet
        kind, verb = ("expire", "expired") if reason == "expired" else ("evict", "evicted")
        acts.log(level, "%s model %s (%s)", verb, entry.key, reason)
        acts.event(kind, entry.key, now, {"reason": reason, "size_bytes": entry.size_bytes})

    def _retire_locked(self, key: ModelKey, model: object, size: int, source: str, ttl: float) -> None:
        if self._retirement.retire(key, model, size, source, ttl):
            self._ensure_sweeper()  # re-checks held models every REAP_INTERVAL_SECONDS

    def _revive_locked(self, key: ModelKey, now: float, acts: Actions) -> object:
        found = self._retirement.find(key)
        if found is None:
            return MISSING
        rec, model = found
        record = self._record(key)
        try:
            self._insert_locked(record, model, rec.size_bytes, rec.size_source, rec.ttl, now, acts)
        except AISPError:
            return MISSING
        self._retirement.remove(rec)
        record.revived += 1
        self._totals.revived += 1
        acts.log(logging.INFO, "revived model %s (still held by a caller)", key)
        acts.event("revive", key, now)
        return model

    def _finish(self, acts: Actions) -> None:
        """Post-lock work: logs, alert, listeners, then closing released models."""
        acts.flush()
        if self._retirement:
            self._reap()

    def _reap(self, force: bool = False) -> None:
        """Close retired models nobody holds any more (all of them with ``force``)."""
        with self._lock:
            released = self._retirement.collect(force)
        closed = close_models(released) if released else 0
        if closed:
            with self._lock:
                self._totals.closed_models += closed

    # ------------------------------------------------------------------ management
    def pin(self, key: ModelKey | str) -> None:
        """Never evict (nor expire) ``key`` until :meth:`unpin`. ``NotFoundError`` if not cached."""
        key = self._key(key)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or now >= entry.expires_at:
                raise NotFoundError(
                    f"model {str(key)!r} is not cached; load it before pinning", kind="model", key=str(key)
                )
            entry.pinned, entry.ttl, entry.expires_at = True, NEVER, NEVER

    def unpin(self, key: ModelKey | str, ttl_seconds: float | None = None) -> bool:
        """Make ``key`` evictable again; ``False`` when it was not a pinned cached model."""
        ttl = self._default_ttl if ttl_seconds is None else check_ttl(ttl_seconds, "ttl_seconds")
        key = self._key(key)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not entry.pinned:
                return False
            entry.pinned, entry.ttl, entry.expires_at = False, ttl, now + ttl
            if ttl != NEVER:
                self._ensure_sweeper()
            return True

    def invalidate(self, key: ModelKey | str) -> bool:
        """Remove ``key`` (even if pinned); a load in flight is delivered but not cached."""
        key = self._key(key)
        acts = Actions(self._listeners)
        with self._lock:
            flight = self._pending.get(key)
            if flight is not None:
                flight.invalidated = True
            entry = self._entries.get(key)
            if entry is not None:
                self._remove_locked(entry, "invalidated", self._clock(), acts)
        self._finish(acts)
        return entry is not None

    def clear(self) -> int:
        """Remove every cached model (pinned ones too); returns how many were removed."""
        return self._remove_all("cleared")

    def _remove_all(self, reason: str) -> int:
        acts = Actions(self._listeners)
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

    # ------------------------------------------------------------------ queries and listeners
    def keys(self) -> list[ModelKey]:
        """Keys of the cached (unexpired) models, least recently used first."""
        now = self._clock()
        with self._lock:
            return [k for k, e in self._entries.items() if now < e.expires_at]

    def names(self) -> list[str]:
        """:meth:`keys` as text (``"name"`` or ``"name#instance"``), for display."""
        return [str(k) for k in self.keys()]

    def contains(self, key: ModelKey | str) -> bool:
        """Whether ``key`` is cached and unexpired; counts neither a hit nor a miss."""
        if key.__class__ is not ModelKey:
            key = self._key(key)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)  # type: ignore[arg-type]
            return entry is not None and now < entry.expires_at

    def info(self, key: ModelKey | str) -> ModelStats:
        """Statistics of ``key``; ``NotFoundError`` for a key the cache has never seen."""
        key = self._key(key)
        now = self._clock()
        with self._lock:
            record = self._records.get(key)
            if record is None:
                msg = f"the cache has no record of model {str(key)!r}"
                raise NotFoundError(msg, kind="model", key=str(key))
            return ModelStats.of(record, now, key in self._pending)

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
    def get_stats(self) -> CacheStats:
        """Totals and levels, one consistent snapshot."""
        now = self._clock()
        with self._lock:
            return self._stats_locked(now)

    def _stats_locked(self, now: float) -> CacheStats:
        return self._totals.snapshot(
            self._window,
            cache_size=len(self._entries),
            max_size=self.max_size,
            memory_bytes=self._memory,
            max_memory_bytes=self.max_memory_bytes,
            retired=len(self._retirement),
            loading=len(self._pending),
            pinned=sum(1 for e in self._entries.values() if e.pinned),
            eviction_policy=self.eviction_policy,
            uptime_seconds=now - self._created_at,
        )

    def get_detailed_stats(self) -> CacheReport:
        """Totals, every key's statistics (ordered by the key's text), prewarm, alerts, config."""
        now = self._clock()
        with self._lock:
            records = sorted(self._records.items(), key=lambda item: str(item[0]))
            return CacheReport(
                basic=self._stats_locked(now),
                models={k: ModelStats.of(r, now, k in self._pending) for k, r in records},
                prewarm=self._prewarm.state(),
                alerts=tuple(self._alert.history),
                config=self.config,
            )

    def export_stats(self, format: str = "json", path: str | None = None) -> str:  # noqa: A002
        """The statistics as ``json``, ``csv`` (one row per model) or ``prometheus`` text."""
        return export_stats(self, format, path)

    def prewarm(
        self,
        models: Mapping[ModelKey | str, pw.Loader] | Iterable[ModelKey | str] | ModelKey | str,
        *,
        resolver: pw.Resolver | None = None,
        background: bool = False,
        max_workers: int = 2,
        timeout_seconds: float | None = None,
        on_progress: pw.ProgressCallback | None = None,
        on_complete: pw.CompleteCallback | None = None,
    ) -> pw.PrewarmReport | pw.PrewarmHandle:
        """Load models in parallel: ``{key: loader}``, or keys with ``resolver(key) -> loader``.
        A ``PrewarmReport``, or at once a ``PrewarmHandle`` when ``background``."""
        options = pw.PrewarmOptions(
            background=background,
            max_workers=max_workers,
            timeout_seconds=timeout_seconds,
            on_progress=on_progress,
            on_complete=on_complete,
        )
        jobs = pw.prewarm_jobs(models, resolver)
        report = pw.new_report(jobs)
        with self._lock:
            self._prewarm.request([key for key, _ in jobs], report, self._entries.__contains__)
        return pw.run_prewarm(
            self, jobs, report, options, resolver=resolver, clock=self._clock, on_finished=self._prewarmed
        )

    def _prewarmed(self, report: pw.PrewarmReport) -> None:
        acts = Actions(self._listeners)
        acts.event("prewarm_complete", None, self._clock(), report.to_dict())
        acts.flush()

    def prewarm_state(self) -> pw.PrewarmState:
        """What :meth:`prewarm` asked for (keys), what is still pending, and the last report."""
        with self._lock:
            return self._prewarm.state()

    def is_warmed_up(self) -> bool:
        """True when every key ever requested by :meth:`prewarm` has been loaded since."""
        return self.prewarm_state().is_warmed_up

    def get_warmed_models(self) -> list[str]:
        """Keys (as text) requested by :meth:`prewarm` that have been loaded, in request order."""
        return [str(k) for k in self.prewarm_state().warmed]

    # ------------------------------------------------------------------ TTL sweep
    def sweep(self) -> int:
        """Expire every entry past its TTL now and close released models; returns how many expired."""
        acts = Actions(self._listeners)
        with self._lock:
            now = self._clock()
            expired = [e for e in self._entries.values() if now >= e.expires_at]
            for entry in expired:
                self._remove_locked(entry, "expired", now, acts)
        self._finish(acts)
        return len(expired)

    def _sweep_tick(self) -> float | None:
        """The sweeper's work: sweep, then the seconds until the next expiry or reap check."""
        self.sweep()
        with self._lock:
            deadline = min((e.expires_at for e in self._entries.values()), default=NEVER)
            delay = None if deadline == NEVER else deadline - self._clock()
            if self._retirement.holds_models:
                delay = REAP_INTERVAL_SECONDS if delay is None else min(delay, REAP_INTERVAL_SECONDS)
            return delay

    def _ensure_sweeper(self) -> None:
        if not self._background_sweep:
            return
        if self._sweeper is None or not self._sweeper.alive:
            self._sweeper = Sweeper(self._sweep_tick)
            self._sweeper.start()
        else:
            self._sweeper.wake()
