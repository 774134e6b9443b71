from __future__ import annotations

import logging

import pytest

from aisp.pipeline.memory import MemoryGuard, default_budget_bytes
from aisp.pipeline.watchdog import Backoff, Watchdog
from tests.pipeline.test_stats import FakeClock


def test_backoff_doubles_up_to_the_cap() -> None:
    b = Backoff(0.5, 3.0, max_attempts=5)
    assert [b.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert b.exhausted
    b.reset()
    assert not b.exhausted and b.next_delay() == 0.5


@pytest.mark.parametrize(("args", "match"),
                         [((0, 1, 1), "delays expected > 0"), ((1, 1, -1), "max_attempts")])
def test_backoff_validates(args, match) -> None:
    with pytest.raises(ValueError, match=match):
        Backoff(*args)


def test_watchdog_reports_a_stall_once() -> None:
    clock = FakeClock()
    wd = Watchdog(2.0, clock)
    assert not wd.stalled()  # not armed yet
    wd.arm()
    clock.advance(1.5)
    wd.on_frame()
    clock.advance(1.9)
    assert not wd.stalled()
    clock.advance(0.2)
    assert wd.stalled()
    assert wd.silence() == pytest.approx(2.1)
    assert not wd.stalled()  # disarmed until the reconnect re-arms it
    wd.arm()
    assert not wd.stalled() and wd.stalls == 1


def test_memory_guard_trips_and_recovers(caplog) -> None:
    rss = [100]
    guard = MemoryGuard(1000, rss=lambda: rss[0])
    assert not guard.check()
    rss[0] = 1500
    with caplog.at_level(logging.WARNING, logger="aisp.pipeline"):
        assert guard.check()
        assert guard.check()
    assert sum("above the budget" in r.message for r in caplog.records) == 1
    rss[0] = 950  # under budget but above the resume ratio: still over
    assert guard.check()
    rss[0] = 800
    assert not guard.check() and guard.trips == 1


def test_memory_budget_defaults_to_75_percent_of_ram() -> None:
    import psutil

    assert default_budget_bytes(0) == int(psutil.virtual_memory().total * 0.75)
    assert default_budget_bytes(10) == 10 * 1024 * 1024
