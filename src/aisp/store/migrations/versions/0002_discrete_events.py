"""discrete events: the per-window summaries move to event_windows; events holds discrete events

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.drop_index("ix_events_window_start", table_name="events")
    op.drop_index("ix_events_stream_window", table_name="events")
    op.rename_table("events", "event_windows")
    op.create_index("ix_event_windows_stream_window", "event_windows", ["stream_id", "window_start"])
    op.create_index("ix_event_windows_window_start", "event_windows", ["window_start"])
    op.create_table(
        "events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("stream_id", sa.String(128), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("frame_index", sa.BigInteger(), nullable=True),
        sa.Column("label", sa.String(128), nullable=True),
        sa.Column("track_id", sa.BigInteger(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("box", JSONType, nullable=True),
        sa.Column("zone", sa.String(64), nullable=True),
        sa.Column("direction", sa.String(8), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("snapshot", sa.String(256), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index("ix_events_stream_time", "events", ["stream_id", "time"])
    op.create_index("ix_events_type_time", "events", ["type", "time"])
    op.create_index("ix_events_label_time", "events", ["label", "time"])


def downgrade() -> None:
    for name in ("ix_events_label_time", "ix_events_type_time", "ix_events_stream_time", "ix_events_time"):
        op.drop_index(name, table_name="events")
    op.drop_table("events")
    op.drop_index("ix_event_windows_window_start", table_name="event_windows")
    op.drop_index("ix_event_windows_stream_window", table_name="event_windows")
    op.rename_table("event_windows", "events")
    op.create_index("ix_events_stream_window", "events", ["stream_id", "window_start"])
    op.create_index("ix_events_window_start", "events", ["window_start"])
