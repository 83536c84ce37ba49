"""bookmarks, playback reports (plays and skips) and a listener's maximum bitrate

* ``bookmarks``: a position in a song per listener (Subsonic ``createBookmark`` / ``getBookmarks`` /
  ``deleteBookmark``), one per (user, track);
* ``play_events``: one row per playback a music app reported (OpenSubsonic ``reportPlayback``: starting, playing,
  paused, stopped): the time listened, the last position, whether it counted as a play or as a skip; an open
  event (``ended_at`` NULL) per (user, client) is the one being played;
* ``users.max_bit_rate``: the most kilobits per second a listener's streams may have (NULL: no limit of their own);
* ``play_queues.current_index``: the position of the current entry (OpenSubsonic ``indexBasedQueue``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.add_column("users", sa.Column("max_bit_rate", sa.Integer))
    op.create_check_constraint(
        "ck_users_max_bit_rate", "users", "max_bit_rate IS NULL OR max_bit_rate BETWEEN 0 AND 320"
    )
    op.add_column("play_queues", sa.Column("current_index", sa.Integer))
    op.create_table(
        "bookmarks",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position_ms", sa.BigInteger, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint("position_ms >= 0", name="ck_bookmarks_position"),
    )
    op.create_index("ix_bookmarks_track", "bookmarks", ["track_id"])
    op.create_table(
        "play_events",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("position_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("listened_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rate", sa.Double, nullable=False, server_default="1"),
        sa.Column("counted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("skipped", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("ignore_scrobble", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("state IN ('starting', 'playing', 'paused', 'stopped')", name="ck_play_events_state"),
    )
    op.create_index("ix_play_events_open", "play_events", ["user_id", "client"], unique=True,
                    postgresql_where=sa.text("ended_at IS NULL"))  # fmt: skip
    op.create_index("ix_play_events_user_track", "play_events", ["user_id", "track_id", sa.text("started_at DESC")])
    op.create_index("ix_play_events_skips", "play_events", ["user_id", sa.text("started_at DESC")],
                    postgresql_where=sa.text("skipped"))  # fmt: skip


def downgrade() -> None:
    op.drop_table("play_events")
    op.drop_table("bookmarks")
    op.drop_column("play_queues", "current_index")
    op.drop_constraint("ck_users_max_bit_rate", "users", type_="check")
    op.drop_column("users", "max_bit_rate")
