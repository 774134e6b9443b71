"""The verified-key cache: the store is asked once per key per TTL, and a revoke through the
API (``forget()``) takes effect at once, while one elsewhere takes effect within the TTL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aisp.api.auth import Authenticator
from aisp.errors import UnauthorizedError


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _CountingKeys:
    """The real ``store.keys``, counting ``verify`` calls (the database round trips)."""

    def __init__(self, keys: Any) -> None:
        self._keys = keys
        self.verify_calls = 0

    def verify(self, token: str) -> Any:
        self.verify_calls += 1
        return self._keys.verify(token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._keys, name)


class _Ctx:
    def __init__(self, settings: Any, store: Any) -> None:
        self.settings = settings
        self._store = store

    def require_store(self) -> Any:
        return self._store


@pytest.fixture()
def store(tmp_path: Path) -> Any:
    from aisp.settings import load_settings
    from aisp.store import Store

    s = load_settings(environ={}, data_dir=tmp_path)
    st = Store(s.resolved_database_url, settings=s).open(background=False)
    yield st, s
    st.close()


def test_verified_keys_are_cached_for_the_ttl_and_forgotten_on_revoke(store: Any) -> None:
    st, settings = store
    record, token = st.keys.create("viewer", "cam")
    keys = _CountingKeys(st.keys)

    class _Store:
        pass

    facade = _Store()
    facade.keys = keys  # type: ignore[attr-defined]
    clock = _Clock()
    auth = Authenticator(_Ctx(settings.model_copy(update={"auth": "on"}), facade), ttl_s=5.0, clock=clock)

    assert auth.verify(token).role == "viewer"
    assert auth.verify(token).key_id == str(record.id)
    assert auth.peek(token) is not None
    assert keys.verify_calls == 1  # the second check was served from memory

    st.keys.revoke(record.id)  # revoked elsewhere (another process): still cached within the TTL
    assert auth.verify(token).role == "viewer" and keys.verify_calls == 1
    clock.now += 5.1  # TTL over: the store is asked again and says no
    assert auth.peek(token) is None
    with pytest.raises(UnauthorizedError):
        auth.verify(token)
    assert keys.verify_calls == 2

    record2, token2 = st.keys.create("admin", "ops")
    assert auth.verify(token2).role == "admin" and keys.verify_calls == 3
    st.keys.revoke(record2.id)
    auth.forget()  # what DELETE /api/auth/keys/{id} does: effective at once, no TTL wait
    with pytest.raises(UnauthorizedError):
        auth.verify(token2)
    assert keys.verify_calls == 4


def test_wrong_keys_are_never_cached(store: Any) -> None:
    st, settings = store
    keys = _CountingKeys(st.keys)

    class _Store:
        pass

    facade = _Store()
    facade.keys = keys  # type: ignore[attr-defined]
    auth = Authenticator(_Ctx(settings.model_copy(update={"auth": "on"}), facade), clock=_Clock())
    for _ in range(2):
        with pytest.raises(UnauthorizedError):
            auth.verify("aisp_nope")
    assert keys.verify_calls == 2
