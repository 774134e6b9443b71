"""Eviction policies: a contract run against every policy, and the cost policy's own behaviour."""

from __future__ import annotations

import pytest

from aisp.cache._entry import Entry
from aisp.cache.keys import ModelKey
from aisp.cache.policies import CostPolicy, LRUPolicy, make_policy
from tests.cache.helpers import Plain


class PolicyContract:
    policy = "lru"

    def test_never_exceeds_the_count(self, make_cache) -> None:
        cache = make_cache(max_size=3, eviction_policy=self.policy)
        for i in range(10):
            cache.get_or_load(f"m{i}", Plain)
            assert len(cache) <= 3

    def test_never_evicts_pinned(self, make_cache) -> None:
        cache = make_cache(max_size=2, eviction_policy=self.policy)
        cache.put("keep", Plain())
        cache.pin("keep")
        for i in range(5):
            cache.put(f"m{i}", Plain())
        assert cache.contains("keep")

    def test_evicts_for_memory(self, make_cache) -> None:
        cache = make_cache(max_size=10, max_memory_mb=1, eviction_policy=self.policy)
        for i in range(5):
            cache.put(f"m{i}", Plain(), size_bytes=300_000)
        assert cache.get_stats().memory_usage_bytes <= 1024 * 1024
        assert len(cache) == 3

    def test_reports_its_name(self, make_cache) -> None:
        cache = make_cache(eviction_policy=self.policy)
        assert cache.get_stats().eviction_policy == self.policy
        assert cache.get_detailed_stats().config.eviction_policy == self.policy


class TestLRUContract(PolicyContract):
    policy = "lru"

    def test_evicts_least_recently_used(self, make_cache) -> None:
        cache = make_cache(max_size=2, eviction_policy="lru")
        cache.put("a", Plain())
        cache.put("b", Plain())
        cache.get("a")
        cache.put("c", Plain())
        assert sorted(cache.names()) == ["a", "c"]


class TestCostContract(PolicyContract):
    policy = "cost"

    def test_keeps_the_model_that_is_expensive_to_reload(self, make_cache, clock) -> None:
        cache = make_cache(max_size=2, eviction_policy="cost")

        def loader(cost: float):
            def load():
                clock.advance(cost)
                return Plain(size_bytes=1_000_000)

            return load

        cache.get_or_load("expensive", loader(2.0))
        cache.get_or_load("cheap1", loader(0.1))
        cache.get("cheap1")  # the expensive one is now least recently used
        cache.get_or_load("cheap2", loader(0.1))
        assert cache.contains("expensive")  # lru would have evicted it
        assert not cache.contains("cheap1")

    def test_prefers_small_models_at_equal_cost(self, make_cache, clock) -> None:
        cache = make_cache(max_size=2, eviction_policy="cost")

        def loader(size: int):
            def load():
                clock.advance(1.0)
                return Plain(size_bytes=size)

            return load

        cache.get_or_load("small", loader(100_000))
        cache.get_or_load("big", loader(10_000_000))
        cache.get("small")
        cache.get("big")
        cache.get_or_load("new", loader(100_000))
        assert cache.contains("small") and not cache.contains("big")

    def test_frequency_and_aging(self) -> None:
        policy = CostPolicy()
        a, b = Entry(ModelKey("a")), Entry(ModelKey("b"))
        for e in (a, b):
            e.cost, e.size_bytes = 1.0, 1 << 20
            policy.on_insert(e)
        policy.on_hit(a)
        assert a.priority == pytest.approx(2.0) and b.priority == pytest.approx(1.0)
        assert policy.choose_victim([a, b]) is b
        policy.on_evict(b)
        assert policy.inflation == pytest.approx(1.0)
        c = Entry(ModelKey("c"))
        c.cost, c.size_bytes = 1.0, 1 << 20
        policy.on_insert(c)
        assert c.priority == pytest.approx(2.0)  # L + value: new entries are not starved


def test_lru_victim_skips_pinned() -> None:
    a, b = Entry(ModelKey("a")), Entry(ModelKey("b"))
    a.pinned = True
    assert LRUPolicy().choose_victim([a, b]) is b
    b.pinned = True
    assert LRUPolicy().choose_victim([a, b]) is None
    assert CostPolicy().choose_victim([a, b]) is None


def test_make_policy_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="eviction_policy"):
        make_policy("mru")
