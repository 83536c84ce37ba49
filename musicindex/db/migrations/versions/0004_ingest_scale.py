"""ingest at library scale (registration, batches, paths)

* ``tracks.path_bytes``: the raw bytes of a path that is not valid UTF-8 (Linux paths are
  bytes). ``tracks.path`` then holds a display form (undecodable bytes as ``\\xNN``) and the
  worker opens the file by ``path_bytes``; NULL for every valid UTF-8 path.
* ``tracks.path`` is no longer unique alone: two different byte paths may share a display
  form (``caf\\xe9.mp3`` as a literal name, and ``caf<E9>.mp3``). The unique index is
  ``(path, path_bytes) NULLS NOT DISTINCT`` (PostgreSQL 15+): one row per file on disk.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tracks", sa.Column("path_bytes", sa.LargeBinary, nullable=True))
    op.create_index("uq_tracks_path", "tracks", ["path", "path_bytes"], unique=True, postgresql_nulls_not_distinct=True)
    op.drop_constraint("tracks_path_key", "tracks", type_="unique")


def downgrade() -> None:
    # rows whose name is not valid UTF-8 have no lossless text form: they cannot stay
    op.execute("DELETE FROM tracks WHERE path_bytes IS NOT NULL")
    op.create_unique_constraint("tracks_path_key", "tracks", ["path"])
    op.drop_index("uq_tracks_path", table_name="tracks")
    op.drop_column("tracks", "path_bytes")
