"""Hit-rate alert over a sliding window: once per episode, rate-limited, recovery logged once."""

from __future__ import annotations

import logging
import random

import pytest

from aisp.cache.alerts import HitRateAlert, HitWindow
from tests.cache.helpers import Plain


def _alerting_cache(make_cache, **kwargs):
    kwargs.setdefault("hit_rate_threshold", 0.5)
    kwargs.setdefault("hit_rate_window", 10)
    kwargs.setdefault("hit_rate_min_requests", 5)
    kwargs.setdefault("alert_cooldown_seconds", 60)
    cache = make_cache(**kwargs)
    events = []
    cache.add_listener(lambda e: events.append(e) if e.type == "alert" else None)
    return cache, events


def test_no_alert_before_the_minimum_request_count(make_cache) -> None:
    cache, events = _alerting_cache(make_cache)
    for i in range(4):
        cache.get(f"miss{i}")
    assert events == [] and cache.get_stats().alerts == 0


def test_low_hit_rate_fires_one_warning_event_and_counter(make_cache, caplog) -> None:
    cache, events = _alerting_cache(make_cache)
    caplog.set_level(logging.WARNING, logger="aisp.cache")
    for i in range(20):
        cache.get(f"miss{i}")
    assert len(events) == 1 and events[0].data["state"] == "firing"
    assert events[0].data["hit_rate_percent"] == 0.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "hit rate" in r.getMessage()]
    assert len(warnings) == 1
    stats = cache.get_stats()
    assert stats.alerts == 1 and stats.alert_active is True
    assert cache.get_detailed_stats().alerts[0].state == "firing"


def test_recovery_is_logged_once(make_cache, caplog, clock) -> None:
    cache, events = _alerting_cache(make_cache)
    caplog.set_level(logging.INFO, logger="aisp.cache")
    cache.put("hot", Plain())
    for i in range(10):
        cache.get(f"miss{i}")
    for _ in range(30):
        cache.get("hot")
    states = [e.data["state"] for e in events]
    assert states == ["firing", "resolved"]
    assert sum("recovered" in r.getMessage() for r in caplog.records) == 1
    assert cache.get_stats().alert_active is False


def test_window_slides_so_old_misses_are_forgotten(make_cache) -> None:
    cache, _events = _alerting_cache(make_cache, hit_rate_window=10)
    cache.put("hot", Plain())
    for i in range(10):
        cache.get(f"miss{i}")
    assert cache.get_stats().recent_hit_rate_percent == 0.0
    for _ in range(7):
        cache.get("hot")
    stats = cache.get_stats()
    assert stats.recent_hit_rate_percent == 70.0  # 7 hits, 3 misses in the last 10
    assert stats.hit_rate_percent == round(100 * 7 / 17, 2)


def test_alerts_are_rate_limited_by_the_cooldown(make_cache, clock) -> None:
    cache, events = _alerting_cache(make_cache, alert_cooldown_seconds=60)
    cache.put("hot", Plain())

    def episode() -> None:
        for i in range(10):
            cache.get(f"miss{i}")
        for _ in range(10):
            cache.get("hot")

    episode()
    clock.advance(30)
    episode()  # within the cooldown: silent, also no recovery line
    assert [e.data["state"] for e in events] == ["firing", "resolved"]
    clock.advance(31)
    episode()
    assert [e.data["state"] for e in events] == ["firing", "resolved", "firing", "resolved"]
    assert cache.get_stats().alerts == 2


def test_threshold_zero_never_alerts(make_cache) -> None:
    cache, events = _alerting_cache(make_cache, hit_rate_threshold=0.0)
    for i in range(50):
        cache.get(f"miss{i}")
    assert events == []


def test_state_machine_directly() -> None:
    alert = HitRateAlert(threshold=0.5, min_requests=2, cooldown_seconds=0)
    assert alert.evaluate(0, 1, 0.0) is None  # below the minimum
    fired = alert.evaluate(0, 2, 1.0)
    assert fired is not None and fired.state == "firing" and fired.window == 2
    assert alert.evaluate(0, 3, 2.0) is None  # still low: no repeat
    resolved = alert.evaluate(2, 4, 3.0)
    assert resolved is not None and resolved.state == "resolved"
    assert alert.fired == 1 and alert.resolved == 1


@pytest.mark.parametrize("size", [1, 3, 10])
def test_hit_window_matches_a_naive_sliding_window(size) -> None:
    rng = random.Random(size)
    window = HitWindow(size, HitRateAlert(threshold=0.5, min_requests=1, cooldown_seconds=0))
    outcomes: list[bool] = []
    for request in range(1, 500):
        hit = rng.random() < 0.6
        outcomes.append(hit)
        if not hit:
            window.miss(request)  # a hit costs the window nothing
        if rng.random() < 0.3:  # read now and then, as the cache does
            last = outcomes[-size:]
            assert window.counts(request) == (sum(last), len(last))


def test_hit_window_feeds_the_alert() -> None:
    window = HitWindow(4, HitRateAlert(threshold=0.5, min_requests=2, cooldown_seconds=0))
    window.miss(1)
    assert window.evaluate(1, now=0.0) is None  # below the minimum request count
    window.miss(2)
    fired = window.evaluate(2, now=1.0)
    assert fired is not None and fired.state == "firing" and fired.window == 2
    resolved = window.evaluate(6, now=2.0)  # requests 3..6 were hits: both misses left the window
    assert resolved is not None and resolved.state == "resolved" and resolved.hit_rate == 1.0
