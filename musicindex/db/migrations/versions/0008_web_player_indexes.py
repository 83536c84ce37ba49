"""indexes for the web player's "every song" list: the indexed tracks by title and by artist, case-folded

* ``ix_tracks_title_lower``: ``lower(title), id`` of the indexed tracks, so ``/songs`` sorted by title (the
  default) reads its page from the index instead of sorting every track;
* ``ix_tracks_artist_lower``: ``lower(artist)``, then album, disc and track, for the sort by artist.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXED = sa.text("status = 'indexed'")


def upgrade() -> None:
    op.create_index("ix_tracks_title_lower", "tracks", [sa.text("lower(title)"), "id"], postgresql_where=INDEXED)
    op.create_index(
        "ix_tracks_artist_lower",
        "tracks",
        [sa.text("lower(artist)"), "album_id", "disc_no", "track_no", "id"],
        postgresql_where=INDEXED,
    )


def downgrade() -> None:
    op.drop_index("ix_tracks_artist_lower", table_name="tracks")
    op.drop_index("ix_tracks_title_lower", table_name="tracks")
