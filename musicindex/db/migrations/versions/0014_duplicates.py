"""duplicates: the audio fingerprint of each track, its index keys, the links between copies and versions, and the
files a listener prefers (issue 31; docs/duplicates.md)

* ``track_fingerprints``: one row per fingerprinted track: the fingerprint (``data``) or why there is none
  (``error``: too short, near-silent, ...), its extractor version, and ``song``: the title's base and main artist
  as the same-song rule folds them (NULL: a generic title or an unknown artist never makes a song group);
* ``fingerprint_keys``: the sampled triplet keys a new file's lookup probes (covering index ``(key, track_id, t)``);
* ``duplicate_links``: two tracks found to be one recording or one song (``a < b``), with a confidence and why.
  Groups are computed from the links between live (indexed) tracks when asked: a missing file leaves its groups
  and comes back into them when seen again; a deleted track's rows go with it (ON DELETE CASCADE);
* ``duplicate_choices``: the file a listener chose to be the preferred one of its groups.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _track(name: str, **kw) -> sa.Column:
    return sa.Column(name, sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False, **kw)


def upgrade() -> None:
    op.create_table(
        "track_fingerprints",
        _track("track_id", primary_key=True),
        sa.Column("version", sa.SmallInteger, nullable=False),
        sa.Column("duration", sa.REAL),
        sa.Column("data", sa.LargeBinary),
        sa.Column("error", sa.Text),
        sa.Column("song", sa.Text),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("(data IS NULL) <> (error IS NULL)", name="ck_track_fingerprints_data_or_error"),
    )
    op.create_index(
        "ix_track_fingerprints_song", "track_fingerprints", ["song"], postgresql_where=sa.text("song IS NOT NULL")
    )
    op.create_table(
        "fingerprint_keys",
        sa.Column("key", sa.Integer, nullable=False),
        _track("track_id"),
        sa.Column("t", sa.Integer, nullable=False),
    )
    # no primary key: the covering index answers a lookup from the index alone (and a bulk load rebuilds it)
    op.create_index("ix_fingerprint_keys_key", "fingerprint_keys", ["key", "track_id", "t"])
    op.create_index("ix_fingerprint_keys_track", "fingerprint_keys", ["track_id"])
    op.create_table(
        "duplicate_links",
        _track("a", primary_key=True),
        _track("b", primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("confidence", sa.REAL, nullable=False),
        sa.Column("why", sa.Text, nullable=False, server_default=""),
        sa.Column("found_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("a < b", name="ck_duplicate_links_order"),
        sa.CheckConstraint("kind IN ('same recording', 'same song')", name="ck_duplicate_links_kind"),
        sa.CheckConstraint("confidence BETWEEN 0 AND 1", name="ck_duplicate_links_confidence"),
    )
    op.create_index("ix_duplicate_links_b", "duplicate_links", ["b"])
    op.create_table(
        "duplicate_choices",
        _track("track_id", primary_key=True),
        sa.Column("chosen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("duplicate_choices")
    op.drop_table("duplicate_links")
    op.drop_table("fingerprint_keys")
    op.drop_table("track_fingerprints")
