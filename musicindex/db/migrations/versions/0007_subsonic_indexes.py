"""indexes for the Subsonic API: every indexed track in id order, every listener's plays of an item

* ``ix_tracks_indexed_id``: the indexed tracks by id (partial: ``status = 'indexed'``), so an empty-query
  ``search3`` (how apps sync a whole library, 500 songs a page) and ``getSongsByGenre`` page through them with an
  index-only scan instead of filtering every row;
* ``ix_annotations_item``: annotations by item (``item_type``, ``item_id``), so ``getTopSongs`` sums the plays of
  an artist's songs over every listener without reading all annotations.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tracks_indexed_id", "tracks", ["id"], postgresql_where=sa.text("status = 'indexed'"))
    op.create_index("ix_annotations_item", "annotations", ["item_type", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_annotations_item", table_name="annotations")
    op.drop_index("ix_tracks_indexed_id", table_name="tracks")
