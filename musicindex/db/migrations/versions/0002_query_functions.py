"""query functions and views: musicindex_similar, musicindex_genre_of, musicindex_by_genre, musicindex_tracks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Plain-SQL access to the query layer (documented in docs/query.md). They read the ACTIVE
model version of each kind, like the Python API. Dynamic SQL formats only integers (the
model version id and the vector dimension, read from model_versions); every other value
is passed with USING.
"""

from __future__ import annotations

from alembic import op

from musicindex.vocab import FEATURE_NAMES, N_FEATURES

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MEAN = "ARRAY[" + ", ".join(f"avg(f.{c})" for c in FEATURE_NAMES) + f"]::vector({N_FEATURES})"
_INV = (
    "ARRAY["
    + ", ".join(f"coalesce(1.0 / nullif(stddev_pop(f.{c}), 0), 0)" for c in FEATURE_NAMES)
    + f"]::vector({N_FEATURES})"
)

ACTIVE_VERSION = """
CREATE FUNCTION musicindex_active_version(p_kind text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT mv.id FROM model_versions mv WHERE mv.kind = p_kind AND mv.state = 'active'
$$;
COMMENT ON FUNCTION musicindex_active_version(text) IS
    'id of the active model version of a kind (knn, logreg, ann, cnn, kmeans, birch, gmm, scaler), or NULL';
"""

GENRE_MODEL = """
CREATE FUNCTION musicindex_genre_model_version(preference text DEFAULT NULL) RETURNS integer
LANGUAGE sql STABLE AS $$
    WITH pref AS (
        SELECT COALESCE(preference, NULLIF(current_setting('musicindex.genre_model', true), ''), 'auto') AS p
    )
    SELECT mv.id FROM model_versions mv, pref
    WHERE mv.state = 'active' AND mv.kind IN ('knn', 'logreg', 'ann', 'cnn')
      AND (pref.p = 'auto' OR mv.kind = pref.p)
    ORDER BY CASE WHEN jsonb_typeof(mv.metrics -> 'macro_f1') = 'number'
                  THEN (mv.metrics ->> 'macro_f1')::float8 ELSE '-infinity'::float8 END DESC, mv.id
    LIMIT 1
$$;
COMMENT ON FUNCTION musicindex_genre_model_version(text) IS
    'the classifier that answers genre questions: the preferred kind (argument, or SET musicindex.genre_model) '
    'if active, or for auto the active classifier with the highest macro_f1';
"""

SIMILAR = f"""
CREATE FUNCTION musicindex_similar(p_track_id bigint, k integer DEFAULT 10, space text DEFAULT 'features')
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
    IF space IS NULL OR space NOT IN ('features', 'ann', 'cnn') THEN
        RAISE EXCEPTION 'unknown space %; choose one of: features, ann, cnn', quote_nullable(space)
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
            SELECT {_MEAN} AS mean, {_INV} AS inv
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
        v_dim := CASE WHEN space = 'features' THEN {N_FEATURES} END;
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
    'the k tracks closest (cosine distance) to a track in a space (features, ann, cnn), from the active version';
"""

GENRE_OF = """
CREATE FUNCTION musicindex_genre_of(p_track_id bigint)
RETURNS TABLE(track_id bigint, genre text, confidence double precision, probabilities jsonb,
              model_version_id integer, model_kind text)
LANGUAGE sql STABLE AS $$
    SELECT p.track_id, p.genre, p.confidence, p.probabilities, p.model_version_id, mv.kind::text
    FROM predictions p JOIN model_versions mv ON mv.id = p.model_version_id
    WHERE p.model_version_id = musicindex_genre_model_version() AND p.track_id = p_track_id
$$;
COMMENT ON FUNCTION musicindex_genre_of(bigint) IS
    'the genre model''s label, confidence and class probabilities for one track (no row: no prediction)';
"""

BY_GENRE = """
CREATE FUNCTION musicindex_by_genre(p_genre text, k integer DEFAULT 10)
RETURNS TABLE(track_id bigint, path text, title text, artist text, album text, score double precision,
              model_version_id integer)
LANGUAGE sql STABLE AS $$
    WITH g AS (SELECT musicindex_genre_model_version() AS id)
    SELECT t.id, t.path, t.title, t.artist, t.album,
           COALESCE((p.probabilities ->> p_genre)::float8, CASE WHEN t.label = p_genre THEN 1.0 END) AS score,
           g.id
    FROM tracks t CROSS JOIN g
    LEFT JOIN predictions p ON p.model_version_id = g.id AND p.track_id = t.id
    WHERE t.status = 'indexed' AND COALESCE(t.label, p.genre) = p_genre
    ORDER BY score DESC NULLS LAST, t.id
    LIMIT greatest(1, least(k, 1000))
$$;
COMMENT ON FUNCTION musicindex_by_genre(text, integer) IS
    'tracks of a genre (label, else the genre model''s prediction), most confident first';
"""

TRACKS_VIEW = """
CREATE VIEW musicindex_tracks AS
SELECT t.id, t.path, t.title, t.artist, t.album, t.year, t.duration, t.status, t.label,
       COALESCE(t.label, p.genre) AS genre,
       p.genre AS predicted_genre, p.confidence AS genre_confidence, p.model_version_id AS genre_model_version_id,
       c.cluster, c.model_version_id AS cluster_model_version_id
FROM tracks t
LEFT JOIN predictions p
       ON p.track_id = t.id AND p.model_version_id = (SELECT musicindex_genre_model_version())
LEFT JOIN cluster_assignments c
       ON c.track_id = t.id AND c.model_version_id = (SELECT musicindex_active_version('kmeans'));
COMMENT ON VIEW musicindex_tracks IS
    'every track with its genre (label, else the genre model''s prediction), the prediction and its kmeans cluster';
"""


def upgrade() -> None:
    for sql in (ACTIVE_VERSION, GENRE_MODEL, SIMILAR, GENRE_OF, BY_GENRE, TRACKS_VIEW):
        op.execute(sql)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS musicindex_tracks")
    op.execute("DROP FUNCTION IF EXISTS musicindex_by_genre(text, integer)")
    op.execute("DROP FUNCTION IF EXISTS musicindex_genre_of(bigint)")
    op.execute("DROP FUNCTION IF EXISTS musicindex_similar(bigint, integer, text)")
    op.execute("DROP FUNCTION IF EXISTS musicindex_genre_model_version(text)")
    op.execute("DROP FUNCTION IF EXISTS musicindex_active_version(text)")
