"""events.seq: an insertion-ordered number, so a reader can follow new events (the cluster's relay)

``id`` sorts by the time an event was *made*, on the node that made it; a stream actor commits it
up to seconds later (checkpoints, retries while the database is away), so following ``id`` or
``time`` would miss events committed late. ``seq`` is assigned by the database at insert: an
identity column on PostgreSQL, the largest one plus one (set by a trigger) on SQLite.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SQLITE_TRIGGER = """
CREATE TRIGGER events_seq AFTER INSERT ON events FOR EACH ROW
BEGIN
    UPDATE events SET seq = (SELECT IFNULL(MAX(seq), 0) + 1 FROM events) WHERE rowid = NEW.rowid;
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite has no identity on a column that is not the primary key: the trigger numbers each
        # new row past the largest (indexed, so O(log n)); writes are serialised, so the numbers
        # follow commit order. Not the row id: VACUUM may renumber it.
        op.add_column("events", sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))
        op.execute("UPDATE events SET seq = rowid")
        op.execute(_SQLITE_TRIGGER)
    else:
        # fills the existing rows too
        op.add_column("events", sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False))
    op.create_index("ix_events_seq", "events", ["seq"])


def downgrade() -> None:
    op.drop_index("ix_events_seq", table_name="events")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS events_seq")
        with op.batch_alter_table("events") as batch:
            batch.drop_column("seq")
    else:
        op.drop_column("events", "seq")
