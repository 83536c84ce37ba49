"""analysis stages and embedding models: a per-track stage record; model kinds and spaces named by a pattern

* ``tracks.stage_versions`` (jsonb, ``{}`` by default): stage name -> version of the values the track's analysis
  stored (``ingest.stages``: tags, decode, features, spectrogram, ``embedding.<model>``, ...); filled here from what
  the tables hold (``tags_version``, ``track_features.version``, ``spectrograms.version``, the extractor version of
  the musicnn versions a track has a vector in). ``ingest --reanalyse-outdated`` queues a track when a stage's
  record is older than the code's (or missing, for a required stage) and re-runs only those stages;
* ``model_versions.kind`` and ``embeddings.space`` are checked against a name pattern instead of a list: an
  embedding model added to the registry (``pretrained.registry``) is a kind and a space of its own, with no
  migration;
* ``musicindex_similar`` answers in any embedding model's space by name (the default stays musicnn when the track
  is embedded, else features).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NAME_PATTERN = "^[a-z][a-z0-9_]{0,15}$"  # musicindex.vocab.MODEL_NAME_PATTERN at this revision
KINDS_0005 = "('knn', 'logreg', 'ann', 'cnn', 'kmeans', 'birch', 'gmm', 'scaler', 'musicnn')"
SPACES_0005 = "('features', 'ann', 'cnn', 'musicnn')"

RECORD = """
UPDATE tracks t SET stage_versions = s.rec FROM (
    SELECT t.id, jsonb_strip_nulls(jsonb_build_object(
        'tags', t.tags_version,
        'decode', CASE WHEN t.duration IS NOT NULL THEN 1 END,
        'features', f.version,
        'spectrogram', sp.version,
        'embedding.musicnn', m.version)) AS rec
    FROM tracks t
    LEFT JOIN track_features f ON f.track_id = t.id
    LEFT JOIN spectrograms sp ON sp.track_id = t.id
    LEFT JOIN (
        SELECT e.track_id, max((mv.params ->> 'extractor_version')::int) AS version
        FROM embeddings e JOIN model_versions mv ON mv.id = e.model_version_id
        WHERE mv.kind = 'musicnn' AND mv.state IN ('active', 'candidate')
        GROUP BY e.track_id
    ) m ON m.track_id = t.id
    WHERE t.status = 'indexed'
) s WHERE s.id = t.id
"""

# musicindex_similar of revision 0005, with these replacements: any embedding model's space by name
_SPACE_CHECK_0005 = """    IF space NOT IN ('features', 'ann', 'cnn', 'musicnn') THEN
        RAISE EXCEPTION 'unknown space %; choose one of: features, ann, cnn, musicnn', quote_nullable(space)
            USING ERRCODE = '22023';
    END IF;"""
_SPACE_CHECK = """    IF space IS NULL OR (space NOT IN ('features', 'ann', 'cnn', 'musicnn') AND NOT EXISTS (
            SELECT 1 FROM model_versions mv WHERE mv.kind = space
            AND mv.kind NOT IN ('knn', 'logreg', 'ann', 'cnn', 'kmeans', 'birch', 'gmm', 'scaler'))) THEN
        RAISE EXCEPTION 'unknown space %; choose one of: features, ann, cnn, musicnn, or an embedding model''s '
            'space (SELECT DISTINCT space FROM embeddings)', quote_nullable(space)
            USING ERRCODE = '22023';
    END IF;"""
_NOT_EMBEDDED_0005 = """        IF space = 'musicnn' THEN
            RAISE EXCEPTION 'no track is embedded in the musicnn space yet: run `musicindex embed`'
                USING ERRCODE = '55000';
        END IF;"""
_NOT_EMBEDDED = """        IF space NOT IN ('features', 'ann', 'cnn') THEN
            RAISE EXCEPTION 'no track is embedded in the % space yet: run `musicindex embed`', space
                USING ERRCODE = '55000';
        END IF;"""
_COMMENT_0005 = (
    "'the k tracks closest (cosine distance) to a track in a space (features, ann, cnn, musicnn; NULL: the best '"
)
_COMMENT = "'the k tracks closest (cosine distance) to a track in a space (features, ann, cnn, musicnn or another embedding model''s; NULL: the best '"


def _revision_0005_similar() -> str:
    """musicindex_similar exactly as revision 0005 created it."""
    path = Path(__file__).with_name("0005_pretrained_space.py")
    spec = importlib.util.spec_from_file_location("musicindex_migration_0005", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.SIMILAR)


def _similar() -> str:
    sql = _revision_0005_similar()
    for old, new in ((_SPACE_CHECK_0005, _SPACE_CHECK), (_NOT_EMBEDDED_0005, _NOT_EMBEDDED), (_COMMENT_0005, _COMMENT)):
        assert old in sql, old
        sql = sql.replace(old, new)
    return sql


def upgrade() -> None:
    op.add_column(
        "tracks",
        sa.Column("stage_versions", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.execute(RECORD)
    op.drop_constraint("ck_model_versions_kind", "model_versions", type_="check")
    op.create_check_constraint("ck_model_versions_kind", "model_versions", f"kind ~ '{NAME_PATTERN}'")
    op.drop_constraint("ck_embeddings_space", "embeddings", type_="check")
    op.create_check_constraint("ck_embeddings_space", "embeddings", f"space ~ '{NAME_PATTERN}'")
    op.execute("DROP FUNCTION musicindex_similar(bigint, integer, text)")
    op.execute(_similar())


def downgrade() -> None:
    op.execute("DROP FUNCTION musicindex_similar(bigint, integer, text)")
    op.execute(_revision_0005_similar())
    op.execute(f"DELETE FROM model_versions WHERE kind NOT IN {KINDS_0005}")  # embedding models added since
    op.drop_constraint("ck_embeddings_space", "embeddings", type_="check")
    op.create_check_constraint("ck_embeddings_space", "embeddings", f"space IN {SPACES_0005}")
    op.drop_constraint("ck_model_versions_kind", "model_versions", type_="check")
    op.create_check_constraint("ck_model_versions_kind", "model_versions", f"kind IN {KINDS_0005}")
    op.drop_column("tracks", "stage_versions")
