"""descriptors per track: tempo, key, loudness, energy, danceability and named moods

* ``track_descriptors``: one row per analysed track (the ``descriptors`` analysis stage,
  ``ingest/stages/descriptors.py``), plain columns so SQL reads them directly; a value the estimator could not
  give (no steady beat, no key, a silent window) or that failed is NULL, never a made-up one;
* indexes for the filters: tempo (a range), camelot (a key or the keys compatible with a seed), moods (GIN).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CAMELOT_PATTERN = "^(1[0-2]|[1-9])[AB]$"


def upgrade() -> None:
    op.create_table(
        "track_descriptors",
        sa.Column("track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("tempo", sa.Double),
        sa.Column("tempo_confidence", sa.Double),
        sa.Column("key", sa.Text),
        sa.Column("mode", sa.String(5)),
        sa.Column("key_confidence", sa.Double),
        sa.Column("camelot", sa.String(3)),
        sa.Column("loudness", sa.Double),
        sa.Column("loudness_range", sa.Double),
        sa.Column("true_peak", sa.Double),
        sa.Column("replay_gain", sa.Double),
        sa.Column("energy", sa.Double),
        sa.Column("danceability", sa.Double),
        sa.Column("moods", postgresql.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint("tempo IS NULL OR tempo BETWEEN 20 AND 400", name="ck_track_descriptors_tempo"),
        sa.CheckConstraint("mode IS NULL OR mode IN ('major', 'minor')", name="ck_track_descriptors_mode"),
        sa.CheckConstraint(f"camelot IS NULL OR camelot ~ '{CAMELOT_PATTERN}'", name="ck_track_descriptors_camelot"),
        sa.CheckConstraint(
            "(tempo_confidence IS NULL OR tempo_confidence BETWEEN 0 AND 1)"
            " AND (key_confidence IS NULL OR key_confidence BETWEEN 0 AND 1)"
            " AND (energy IS NULL OR energy BETWEEN 0 AND 1)"
            " AND (danceability IS NULL OR danceability BETWEEN 0 AND 1)",
            name="ck_track_descriptors_unit",
        ),
    )
    op.create_index("ix_track_descriptors_tempo", "track_descriptors", ["tempo"])
    op.create_index("ix_track_descriptors_camelot", "track_descriptors", ["camelot"])
    op.create_index("ix_track_descriptors_moods", "track_descriptors", ["moods"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_table("track_descriptors")
