"""Keys: the cache stores models under ``ModelKey(name, instance)``; text is only a way to type one."""

from __future__ import annotations

import pytest

from aisp.cache import ModelKey
from aisp.cache.model_cache import MAX_TEXT_KEYS
from aisp.errors import ValidationError
from tests.cache.helpers import Plain


def test_text_and_key_forms_reach_the_same_entry(make_cache) -> None:
    cache = make_cache()
    model = cache.get_or_load("face#w1", Plain)
    assert cache.get(ModelKey("face", "w1")) is model
    assert cache.get_or_load(ModelKey("face", "w1"), Plain) is model
    assert cache.contains("face#w1") and ModelKey("face", "w1") in cache and "face#w1" in cache
    assert not cache.contains("face") and ModelKey("face") not in cache  # another key entirely
    assert cache.get_stats().loads == 1 and cache.get_stats().hits == 2


def test_keys_are_tuples_and_names_their_text(make_cache) -> None:
    cache = make_cache()
    cache.put(ModelKey("pose"), Plain())
    cache.put("pose#s1", Plain())
    cache.put(ModelKey("pose", "s2"), Plain())
    assert cache.keys() == [ModelKey("pose"), ModelKey("pose", "s1"), ModelKey("pose", "s2")]
    assert all(type(k) is ModelKey for k in cache.keys())
    assert cache.names() == ["pose", "pose#s1", "pose#s2"]
    assert {k.base for k in cache.keys()} == {ModelKey("pose")}


def test_every_public_method_takes_both_forms(make_cache) -> None:
    cache = make_cache(max_size=3)
    key = ModelKey("m", "i")
    cache.put(key, Plain())
    cache.pin("m#i")
    assert cache.info(key).pinned is True
    assert cache.unpin(key) is True
    assert cache.invalidate("m#i") is True and not cache.contains(key)
    assert cache.info("m#i").key == key


def test_events_logs_and_exports_show_the_text(make_cache, caplog) -> None:
    cache = make_cache(max_size=1)
    seen = []
    cache.add_listener(seen.append)
    caplog.set_level("INFO", logger="aisp.cache")
    cache.get_or_load(ModelKey("seg", "t9"), Plain)
    cache.invalidate(ModelKey("seg", "t9"))
    assert {e.name for e in seen} == {"seg#t9"}
    assert "loaded model seg#t9" in caplog.text and "evicted model seg#t9 (invalidated)" in caplog.text
    assert "seg#t9" in cache.export_stats("csv") and 'model="seg#t9"' in cache.export_stats("prometheus")
    assert "seg#t9" in cache.get_detailed_stats().to_dict()["models"]


@pytest.mark.parametrize("bad", ["", "#w1", ModelKey(""), ModelKey("m", ""), None, 3, ("m", None)])
def test_invalid_keys_are_refused_naming_the_field(make_cache, bad) -> None:
    cache = make_cache()
    for call in (
        lambda: cache.get(bad),
        lambda: cache.get_or_load(bad, Plain),
        lambda: cache.put(bad, Plain()),
    ):
        with pytest.raises(ValidationError) as exc:
            call()
        assert exc.value.field == "name"
    assert cache.get_stats().requests == 0 and len(cache) == 0


def test_a_trailing_separator_means_no_instance(make_cache) -> None:
    cache = make_cache()
    cache.put("m#", Plain())
    assert cache.keys() == [ModelKey("m")]


def test_the_text_key_memo_is_bounded(make_cache) -> None:
    cache = make_cache(max_size=1)
    for i in range(MAX_TEXT_KEYS + 10):
        cache.get(f"m{i}#x")
    assert len(cache._text_keys) <= MAX_TEXT_KEYS
    assert cache.get_stats().misses == MAX_TEXT_KEYS + 10
