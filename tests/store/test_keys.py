from __future__ import annotations

import hashlib

import pytest

from aisp.errors import NotFoundError, ValidationError
from aisp.store.tables import ApiKeyRow


def test_create_verify_and_hash_only(store):
    rec, token = store.keys.create("admin", "ops")
    assert token.startswith(f"aisp_{rec.id}_") and len(token) > 40
    assert rec.role == "admin" and rec.name == "ops" and rec.active
    got = store.keys.verify(token)
    assert got is not None and got.id == rec.id and got.is_admin
    with store.db.session() as s:
        row = s.get(ApiKeyRow, rec.id)
        assert row.key_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.key_hash, row.name, row.id)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret, right id
        lambda t: "",
        lambda t: "Bearer " + t,
        lambda t: "aisp_zzzzzzzzzzzz_secret",
        lambda t: "aisp_0123456789ab_secret",  # well formed, unknown id
        lambda t: t.replace("aisp_", "xyz_", 1),
        lambda t: "aisp__",
    ],
)
def test_verify_rejects_wrong_tokens(store, mangle):
    _, token = store.keys.create("viewer")
    assert store.keys.verify(mangle(token)) is None


def test_revoke_list_count(store):
    a, ta = store.keys.create("admin", "a")
    b, tb = store.keys.create("viewer", "b")
    assert store.keys.count() == 2
    revoked = store.keys.revoke(a.id)
    assert revoked.revoked_at is not None and not revoked.active
    assert store.keys.revoke(a.id).revoked_at == revoked.revoked_at  # idempotent
    assert store.keys.verify(ta) is None
    assert store.keys.verify(tb) is not None
    assert store.keys.count() == 1 and store.keys.count(active_only=False) == 2
    assert [k.id for k in store.keys.list(include_revoked=False)] == [b.id]
    assert {k.id for k in store.keys.list()} == {a.id, b.id}
    with pytest.raises(NotFoundError) as info:
        store.keys.revoke("000000000000")
    assert info.value.kind == "api_key"


def test_bad_role_names_the_field(store):
    with pytest.raises(ValidationError) as info:
        store.keys.create("root")
    assert info.value.field == "role" and "admin" in str(info.value)


def test_last_used_is_throttled(db_url, settings):
    from aisp.store import Store

    now = [1000.0]
    with Store(db_url, settings=settings, clock=lambda: now[0]) as store:
        rec, token = store.keys.create("viewer")
        assert store.keys.verify(token).last_used_at == 1000.0
        now[0] = 1030.0
        store.keys.verify(token)
        assert store.keys.get(rec.id).last_used_at == 1000.0  # within the touch interval: no write
        now[0] = 1061.0
        store.keys.verify(token)
        assert store.keys.get(rec.id).last_used_at == 1061.0
