"""API keys: created once, shown once, stored as a SHA-256 hash.

A key looks like ``aisp_<id>_<secret>``: ``id`` (12 hex characters) finds the row without
scanning, ``secret`` (32 random bytes, URL-safe) is what makes it unguessable. Only
``sha256(token)`` is stored; verification compares digests with :func:`hmac.compare_digest`.
``last_used_at`` is written at most once per ``touch_interval`` seconds per key, so checking a
key on every request does not turn into a write per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import func, select

from aisp.errors import NotFoundError, ValidationError
from aisp.store.db import Database
from aisp.store.tables import ApiKeyRow

__all__ = ["KeyRecord", "KeyRepository", "ROLES", "Role", "hash_key"]

Role = Literal["admin", "viewer"]
ROLES: tuple[str, ...] = ("admin", "viewer")
PREFIX = "aisp"


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    role: str
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["active"] = self.active
        return d

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> KeyRecord:
        return cls(row.id, row.name, row.role, row.created_at, row.last_used_at, row.revoked_at)


class KeyRepository:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time, touch_interval: float = 60.0):
        self._db = db
        self._clock = clock
        self._touch_interval = touch_interval
        self._touched: dict[str, float] = {}
        self._touch_lock = threading.Lock()

    def create(self, role: str = "viewer", name: str = "") -> tuple[KeyRecord, str]:
        """A new key; returns its record and the plaintext token (never stored, shown once)."""
        if role not in ROLES:
            raise ValidationError(
                f"invalid role {role!r}: expected one of {', '.join(ROLES)}",
                field="role", value=role, expected=" or ".join(ROLES),
            )
        if not isinstance(name, str) or len(name) > 200:
            raise ValidationError(
                "invalid key name: expected a string of at most 200 characters",
                field="name", value=name, expected="string, <= 200 chars",
            )
        key_id = secrets.token_hex(6)
        token = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        now = self._clock()
        row = ApiKeyRow(id=key_id, name=name, role=role, key_hash=hash_key(token), created_at=now)
        with self._db.session() as s:
            s.add(row)
        return KeyRecord(key_id, name, role, now), token

    @staticmethod
    def parse_id(token: str) -> str | None:
        """The key id inside a token, or None when the token is not shaped like an AISP key."""
        parts = token.split("_", 2) if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != PREFIX or not parts[2]:
            return None
        key_id = parts[1]
        if len(key_id) != 12 or any(c not in "0123456789abcdef" for c in key_id):
            return None
        return key_id

    def verify(self, token: str) -> KeyRecord | None:
        """The key's record when ``token`` is a valid, unrevoked key; else None."""
        key_id = self.parse_id(token)
        if key_id is None:
            return None
        with self._db.session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                hmac.compare_digest(hash_key(token), "0" * 64)  # same work for unknown ids
                return None
            if not hmac.compare_digest(row.key_hash, hash_key(token)) or row.revoked_at is not None:
                return None
            now = self._clock()
            if self._should_touch(key_id, now):
                row.last_used_at = now
            return KeyRecord.from_row(row)

    def _should_touch(self, key_id: str, now: float) -> bool:
        with self._touch_lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < self._touch_interval:
                return False
            self._touched[key_id] = now
            return True

    def get(self, key_id: str) -> KeyRecord:
        with self._db.session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"API key '{key_id}' not found", kind="api_key", key=key_id)
            return KeyRecord.from_row(row)

    def list(self, *, include_revoked: bool = True) -> list[KeyRecord]:
        stmt = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if not include_revoked:
            stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
        with self._db.session() as s:
            return [KeyRecord.from_row(r) for r in s.scalars(stmt)]

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke a key (idempotent); raises NotFoundError for an unknown id."""
        with self._db.session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"API key '{key_id}' not found", kind="api_key", key=key_id)
            if row.revoked_at is None:
                row.revoked_at = self._clock()
            return KeyRecord.from_row(row)

    def count(self, *, active_only: bool = True) -> int:
        stmt = select(func.count()).select_from(ApiKeyRow)
        if active_only:
            stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
        with self._db.session() as s:
            return int(s.scalar(stmt) or 0)
