"""the pretrained musicnn space: kind and space 'musicnn', per-track tags, SQL for tags and the default space

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

* ``model_versions.kind`` and ``embeddings.space`` accept ``musicnn``: one version per extractor
  version of the pretrained model, its 200-d embeddings in ``embeddings`` (partial HNSW index per
  version, like the trained spaces);
* ``track_tags``: the 50 tag probabilities of a track under a musicnn version (``probs``, in the
  order of the version's ``classes``) and its top tags (``top_tags``: probability >= 0.1, best
  first) with a GIN index for "tracks with tag X";
* the genre model is chosen by cross-validated macro-F1 (``cv_macro_f1_mean``);
* ``musicindex_similar``'s space defaults to the best available one (musicnn when the track is
  embedded, else features); new ``musicindex_top_tags`` and ``musicindex_tracks_with_tag``;
* ``model_versions.artifact_hmac``: an HMAC-SHA256 of the artifact with a key kept outside the
  database, checked before anything is deserialised;
* ``training_runs.heartbeat_at``: a running training run proves it is alive, so a run is only
  cleaned up as stale when its heartbeat has stopped (not merely when its lock connection died).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KINDS_V1 = "('knn', 'logreg', 'ann', 'cnn', 'kmeans', 'birch', 'gmm', 'scaler')"
KINDS = "('knn', 'logreg', 'ann', 'cnn', 'kmeans', 'birch', 'gmm', 'scaler', 'musicnn')"
SPACES_V1 = "('features', 'ann', 'cnn')"
SPACES = "('features', 'ann', 'cnn', 'musicnn')"
TOP_TAG_MIN = 0.1  # musicindex.vocab.TOP_TAG_MIN at this revision

GENRE_MODEL = """
CREATE OR REPLACE FUNCTION musicindex_genre_model_version(preference text DEFAULT NULL) RETURNS integer
LANGUAGE sql STABLE AS $$
    WITH pref AS (
        SELECT COALESCE(preference, NULLIF(current_setting('musicindex.genre_model', true), ''), 'auto') AS p
    )
    SELECT mv.id FROM model_versions mv, pref
    WHERE mv.state = 'active' AND mv.kind IN ('knn', 'logreg', 'ann', 'cnn')
      AND (pref.p = 'auto' OR mv.kind = pref.p)
    ORDER BY CASE WHEN jsonb_typeof(mv.metrics -> '{metric}') = 'number'
                  THEN (mv.metrics ->> '{metric}')::float8 ELSE '-infinity'::float8 END DESC, mv.id
    LIMIT 1
$$;
COMMENT ON FUNCTION musicindex_genre_model_version(text) IS
    'the classifier that answers genre questions: the preferred kind (argument, or SET musicindex.genre_model) '
    'if active, or for auto the active classifier with the highest {metric}';
"""

TOP_TAGS = """
CREATE FUNCTION musicindex_top_tags(p_track_id bigint, n integer DEFAULT 5)
RETURNS TABLE(tag text, probability real, model_version_id integer)
LANGUAGE sql STABLE AS $$
    SELECT c.tag, tt.probs[c.i]::real, tt.model_version_id
    FROM model_versions mv
    JOIN track_tags tt ON tt.model_version_id = mv.id AND tt.track_id = p_track_id
    CROSS JOIN LATERAL jsonb_array_elements_text(mv.classes) WITH ORDINALITY AS c(tag, i)
    WHERE mv.kind = 'musicnn' AND mv.state = 'active'
    ORDER BY tt.probs[c.i] DESC, c.i
    LIMIT greatest(1, least(n, 50))
$$;
COMMENT ON FUNCTION musicindex_top_tags(bigint, integer) IS
    'the n most probable musicnn tags of a track (active musicnn version)';
"""

TRACKS_WITH_TAG = f"""
CREATE FUNCTION musicindex_tracks_with_tag(p_tag text, min_probability real DEFAULT 0.3, k integer DEFAULT 10)
RETURNS TABLE(track_id bigint, path text, title text, artist text, album text, probability real,
              model_version_id integer)
LANGUAGE plpgsql STABLE AS $fn$
#variable_conflict use_column
DECLARE
    v_id integer;
    v_i integer;
BEGIN
    SELECT mv.id, c.i INTO v_id, v_i
    FROM model_versions mv
    CROSS JOIN LATERAL jsonb_array_elements_text(mv.classes) WITH ORDINALITY AS c(tag, i)
    WHERE mv.kind = 'musicnn' AND mv.state = 'active' AND c.tag = p_tag;
    IF v_id IS NULL THEN
        IF NOT EXISTS (SELECT 1 FROM model_versions mv WHERE mv.kind = 'musicnn' AND mv.state = 'active') THEN
            RAISE EXCEPTION 'no track is embedded in the musicnn space yet: run `musicindex embed`'
                USING ERRCODE = '55000';
        END IF;
        RAISE EXCEPTION 'unknown tag %; SELECT * FROM musicindex_top_tags(<track id>) shows tags', quote_literal(p_tag)
            USING ERRCODE = '22023';
    END IF;
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'k must be between 1 and 1000, got %', k USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT t.id, t.path, t.title, t.artist, t.album, tt.probs[v_i]::real, v_id
    FROM track_tags tt JOIN tracks t ON t.id = tt.track_id
    WHERE tt.model_version_id = v_id AND t.status = 'indexed'
      AND (min_probability < {TOP_TAG_MIN} OR tt.top_tags @> ARRAY[p_tag])
      AND tt.probs[v_i] >= min_probability
    ORDER BY tt.probs[v_i] DESC, t.id
    LIMIT k;
END
$fn$;
COMMENT ON FUNCTION musicindex_tracks_with_tag(text, real, integer) IS
    'tracks whose musicnn tag probability is at least min_probability, most probable first';
"""


SIMILAR = r"""
CREATE FUNCTION musicindex_similar(p_track_id bigint, k integer DEFAULT 10, space text DEFAULT NULL)
RETURNS TABLE(track_id bigint, path text, title text, artist text, album text, genre text,
              distance double precision, model_version_id integer)
LANGUAGE plpgsql STABLE AS $fn$
#variable_conflict use_column
DECLARE
    v_kind text;
    v_id integer;
    v_dim integer;
    v_q text;
    v_n real;
    v_cnt bigint;
    v_hnsw boolean := false;
    v_dist text;
    v_old_ef text;
    v_old_it text;
    g_id integer;
BEGIN
    IF space IS NULL THEN  -- the best available space: musicnn once the track is embedded, else features
        space := CASE WHEN EXISTS (
            SELECT 1 FROM embeddings e JOIN model_versions mv ON mv.id = e.model_version_id
            WHERE mv.kind = 'musicnn' AND mv.state = 'active' AND e.track_id = p_track_id)
            THEN 'musicnn' ELSE 'features' END;
    END IF;
    IF space NOT IN ('features', 'ann', 'cnn', 'musicnn') THEN
        RAISE EXCEPTION 'unknown space %; choose one of: features, ann, cnn, musicnn', quote_nullable(space)
            USING ERRCODE = '22023';
    END IF;
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'k must be between 1 and 1000, got %', k USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tracks t WHERE t.id = p_track_id) THEN
        RAISE EXCEPTION 'no track % in the index (SELECT id, path FROM musicindex_tracks lists them)', p_track_id
            USING ERRCODE = 'P0002';
    END IF;
    v_kind := CASE space WHEN 'features' THEN 'scaler' ELSE space END;
    SELECT mv.id, mv.embedding_dim INTO v_id, v_dim
        FROM model_versions mv WHERE mv.kind = v_kind AND mv.state = 'active';
    g_id := musicindex_genre_model_version();

    IF v_id IS NULL THEN
        IF space = 'musicnn' THEN
            RAISE EXCEPTION 'no track is embedded in the musicnn space yet: run `musicindex embed`'
                USING ERRCODE = '55000';
        END IF;
        IF space <> 'features' THEN
            RAISE EXCEPTION 'the % space has no trained model yet: run `musicindex train --models %`', space, space
                USING ERRCODE = '55000';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM track_features f WHERE f.track_id = p_track_id) THEN
            RAISE EXCEPTION 'track % has no audio features yet (not indexed)', p_track_id USING ERRCODE = '55000';
        END IF;
        -- no scaler trained: exact search over the raw features, standardized with the table's statistics
        RETURN QUERY
        WITH st AS (
            SELECT ARRAY[avg(f.chroma_stft_mean), avg(f.chroma_stft_var), avg(f.rms_mean), avg(f.rms_var), avg(f.spectral_centroid_mean), avg(f.spectral_centroid_var), avg(f.spectral_bandwidth_mean), avg(f.spectral_bandwidth_var), avg(f.rolloff_mean), avg(f.rolloff_var), avg(f.zero_crossing_rate_mean), avg(f.zero_crossing_rate_var), avg(f.harmony_mean), avg(f.harmony_var), avg(f.perceptr_mean), avg(f.perceptr_var), avg(f.tempo), avg(f.mfcc1_mean), avg(f.mfcc1_var), avg(f.mfcc2_mean), avg(f.mfcc2_var), avg(f.mfcc3_mean), avg(f.mfcc3_var), avg(f.mfcc4_mean), avg(f.mfcc4_var), avg(f.mfcc5_mean), avg(f.mfcc5_var), avg(f.mfcc6_mean), avg(f.mfcc6_var), avg(f.mfcc7_mean), avg(f.mfcc7_var), avg(f.mfcc8_mean), avg(f.mfcc8_var), avg(f.mfcc9_mean), avg(f.mfcc9_var), avg(f.mfcc10_mean), avg(f.mfcc10_var), avg(f.mfcc11_mean), avg(f.mfcc11_var), avg(f.mfcc12_mean), avg(f.mfcc12_var), avg(f.mfcc13_mean), avg(f.mfcc13_var)]::vector(43) AS mean, ARRAY[coalesce(1.0 / nullif(stddev_pop(f.chroma_stft_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.chroma_stft_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.rms_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.rms_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.spectral_centroid_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.spectral_centroid_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.spectral_bandwidth_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.spectral_bandwidth_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.rolloff_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.rolloff_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.zero_crossing_rate_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.zero_crossing_rate_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.harmony_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.harmony_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.perceptr_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.perceptr_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.tempo), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc1_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc1_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc2_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc2_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc3_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc3_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc4_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc4_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc5_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc5_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc6_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc6_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc7_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc7_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc8_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc8_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc9_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc9_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc10_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc10_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc11_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc11_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc12_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc12_var), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc13_mean), 0), 0), coalesce(1.0 / nullif(stddev_pop(f.mfcc13_var), 0), 0)]::vector(43) AS inv
            FROM track_features f JOIN tracks t ON t.id = f.track_id WHERE t.status = 'indexed'
        ), q AS (
            SELECT (f.vec - st.mean) * st.inv AS v FROM track_features f, st WHERE f.track_id = p_track_id
        )
        SELECT t.id, t.path, t.title, t.artist, t.album, COALESCE(t.label, p.genre),
               (((f.vec - st.mean) * st.inv) <=> q.v)::float8 AS d, NULL::integer
        FROM track_features f
        JOIN tracks t ON t.id = f.track_id
        CROSS JOIN st CROSS JOIN q
        LEFT JOIN predictions p ON p.model_version_id = g_id AND p.track_id = t.id
        WHERE t.status = 'indexed' AND t.id <> p_track_id
        ORDER BY d, t.id
        LIMIT k;
        RETURN;
    END IF;

    IF v_dim IS NULL THEN
        v_dim := CASE WHEN space = 'features' THEN 43 END;
    END IF;
    IF v_dim IS NULL OR v_dim < 1 THEN
        RAISE EXCEPTION 'model version % has no embedding dimension', v_id USING ERRCODE = '55000';
    END IF;
    EXECUTE format('SELECT e.embedding::text FROM embeddings e WHERE e.model_version_id = %s AND e.track_id = $1',
                   v_id) INTO v_q USING p_track_id;
    IF v_q IS NULL THEN
        RAISE EXCEPTION 'track % has no % embedding in model version % (indexed after training)', p_track_id, space,
            v_id USING ERRCODE = '55000';
    END IF;

    -- HNSW when the version has its index and at least 10 000 vectors, else exact search
    SELECT c.reltuples INTO v_n FROM pg_class c WHERE c.relname = 'ix_emb_hnsw_v' || v_id AND c.relkind = 'i';
    IF FOUND THEN
        IF v_n >= 10000 THEN
            v_hnsw := true;
        ELSE
            EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM embeddings WHERE model_version_id = %s LIMIT 10000) s',
                           v_id) INTO v_cnt;
            v_hnsw := v_cnt >= 10000;
        END IF;
    END IF;

    IF v_hnsw THEN
        v_old_ef := current_setting('hnsw.ef_search', true);
        v_old_it := current_setting('hnsw.iterative_scan', true);
        PERFORM set_config('hnsw.ef_search', greatest(200, least(1000, 4 * k))::text, true);
        PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
        v_dist := format('(e.embedding::vector(%s) <=> $1::vector(%s))', v_dim, v_dim);
    ELSE
        v_dist := format('(e.embedding <=> $1::vector(%s))', v_dim);
    END IF;

    RETURN QUERY EXECUTE format(
        'WITH c AS MATERIALIZED ('
        '  SELECT e.track_id, %1$s AS distance FROM embeddings e JOIN tracks t ON t.id = e.track_id'
        '  WHERE e.model_version_id = %2$s AND t.status = ''indexed'' AND e.track_id <> $2'
        '  ORDER BY %1$s %3$s LIMIT $3) '
        'SELECT c.track_id, t.path, t.title, t.artist, t.album, COALESCE(t.label, p.genre), '
        '       c.distance::float8, %2$s '
        'FROM c JOIN tracks t ON t.id = c.track_id '
        'LEFT JOIN predictions p ON p.model_version_id = $4 AND p.track_id = t.id '
        'ORDER BY c.distance, c.track_id',
        v_dist, v_id, CASE WHEN v_hnsw THEN '' ELSE ', e.track_id' END)
    USING v_q, p_track_id, k, g_id;

    IF v_hnsw THEN
        PERFORM set_config('hnsw.ef_search', COALESCE(v_old_ef, '40'), true);
        PERFORM set_config('hnsw.iterative_scan', COALESCE(v_old_it, 'off'), true);
    END IF;
END
$fn$;
COMMENT ON FUNCTION musicindex_similar(bigint, integer, text) IS
    'the k tracks closest (cosine distance) to a track in a space (features, ann, cnn, musicnn; NULL: the best '
    'available one), from the active version';
"""


def _revision_0002_similar() -> str:
    """musicindex_similar exactly as revision 0002 created it (what a downgrade restores)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("0002_query_functions.py")
    spec = importlib.util.spec_from_file_location("musicindex_migration_0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.SIMILAR)


def upgrade() -> None:
    op.drop_constraint("ck_model_versions_kind", "model_versions", type_="check")
    op.create_check_constraint("ck_model_versions_kind", "model_versions", f"kind IN {KINDS}")
    op.drop_constraint("ck_embeddings_space", "embeddings", type_="check")
    op.create_check_constraint("ck_embeddings_space", "embeddings", f"space IN {SPACES}")
    op.create_table(
        "track_tags",
        sa.Column(
            "model_version_id",
            sa.Integer,
            sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("probs", postgresql.ARRAY(sa.REAL), nullable=False),
        sa.Column("top_tags", postgresql.ARRAY(sa.Text), nullable=False),
    )
    op.create_index("ix_track_tags_top_tags", "track_tags", ["top_tags"], postgresql_using="gin")
    op.add_column("model_versions", sa.Column("artifact_hmac", sa.String(64)))
    op.add_column("training_runs", sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
    op.execute(GENRE_MODEL.format(metric="cv_macro_f1_mean"))
    op.execute(TOP_TAGS)
    op.execute(TRACKS_WITH_TAG)
    op.execute("DROP FUNCTION musicindex_similar(bigint, integer, text)")
    op.execute(SIMILAR)


def downgrade() -> None:
    op.execute("DROP FUNCTION musicindex_similar(bigint, integer, text)")
    op.execute(_revision_0002_similar())
    op.execute("DROP FUNCTION IF EXISTS musicindex_tracks_with_tag(text, real, integer)")
    op.execute("DROP FUNCTION IF EXISTS musicindex_top_tags(bigint, integer)")
    op.execute(GENRE_MODEL.format(metric="macro_f1"))
    op.drop_column("training_runs", "heartbeat_at")
    op.drop_column("model_versions", "artifact_hmac")
    op.drop_table("track_tags")
    op.execute("DELETE FROM embeddings WHERE space = 'musicnn'")
    op.execute("DELETE FROM model_versions WHERE kind = 'musicnn'")
    op.drop_constraint("ck_embeddings_space", "embeddings", type_="check")
    op.create_check_constraint("ck_embeddings_space", "embeddings", f"space IN {SPACES_V1}")
    op.drop_constraint("ck_model_versions_kind", "model_versions", type_="check")
    op.create_check_constraint("ck_model_versions_kind", "model_versions", f"kind IN {KINDS_V1}")
