"""The migrated schema and the SQL functions follow the one vocabulary (musicindex.vocab)."""

from __future__ import annotations

import json
import random
import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from musicindex import vocab

M = vocab.GENRE_MODEL_METRIC


def _check_values(db, name: str) -> set[str]:
    with db.engine.connect() as conn:
        definition = conn.execute(
            text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :n"), {"n": name}
        ).scalar_one()
    return set(re.findall(r"'([^']*)'", definition))


def test_check_constraints_at_head_match_the_vocabulary(fresh_db):
    assert _check_values(fresh_db, "ck_tracks_status") == set(vocab.TRACK_STATUSES)
    assert _check_values(fresh_db, "ck_tracks_label_source") == set(vocab.LABEL_SOURCES)
    assert _check_values(fresh_db, "ck_model_versions_state") == set(vocab.MODEL_STATES)
    # kinds and spaces are named by a pattern (an embedding model of the registry is a kind and a space of its own)
    for name in ("ck_model_versions_kind", "ck_embeddings_space"):
        assert _check_values(fresh_db, name) == {vocab.MODEL_NAME_PATTERN}
    assert all(re.fullmatch(vocab.MODEL_NAME_PATTERN, k) for k in (*vocab.MODEL_KINDS, *vocab.SPACES))
    with fresh_db.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(text("INSERT INTO model_versions (kind, state) VALUES ('Not A Kind', 'active')"))
    assert _check_values(fresh_db, "ck_annotations_item_type") == set(vocab.ITEM_TYPES)
    assert _check_values(fresh_db, "ck_albums_cover_kind") == set(vocab.COVER_KINDS)
    assert _check_values(fresh_db, "ck_play_events_state") == set(vocab.PLAYBACK_STATES)


def test_feature_columns_match_the_vocabulary(fresh_db):
    with fresh_db.engine.connect() as conn:
        cols = (
            conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = "
                    "'track_features' ORDER BY ordinal_position"
                )
            )
            .scalars()
            .all()
        )
        dim = conn.execute(
            text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'track_features'::regclass AND attname = 'vec'"
            )
        ).scalar_one()
    assert [c for c in cols if c in vocab.FEATURE_NAMES] == list(vocab.FEATURE_NAMES)
    assert dim == f"vector({vocab.N_FEATURES})"


def test_sql_hnsw_index_names_follow_the_rule(fresh_db):
    prefix = vocab.hnsw_index_name(7).removesuffix("7")
    with fresh_db.engine.connect() as conn:
        body = conn.execute(
            text("SELECT pg_get_functiondef('musicindex_similar(bigint, integer, text)'::regprocedure)")
        ).scalar_one()
    assert f"'{prefix}' || v_id" in body
    assert prefix + "%" == vocab.HNSW_INDEX_PATTERN


def test_sql_genre_model_rule_equals_the_python_rule(fresh_db):
    """Random sets of active versions (missing, tied, non-numeric scores): SQL and Python pick the same one."""
    rng = random.Random(7)
    kinds = [*vocab.CLASSIFIER_KINDS, "kmeans"]
    scores = [None, 0.5, 0.7, 0.7, 0.9, "n/a"]
    ties = gaps = 0
    with fresh_db.engine.begin() as conn:
        for _ in range(40):
            conn.execute(text("DELETE FROM model_versions"))
            active = []
            for kind in rng.sample(kinds, rng.randint(0, len(kinds))):
                score = rng.choice(scores)
                metrics = "{}" if score is None else json.dumps({M: score})
                vid = conn.execute(
                    text(
                        "INSERT INTO model_versions (kind, state, metrics) "
                        "VALUES (:k, 'active', CAST(:m AS jsonb)) RETURNING id"
                    ),
                    {"k": kind, "m": metrics},
                ).scalar_one()
                # a retired version of the same kind with a better score must never win
                conn.execute(
                    text("INSERT INTO model_versions (kind, state, metrics) VALUES (:k, 'retired', CAST(:m AS jsonb))"),
                    {"k": kind, "m": json.dumps({M: 1.0})},
                )
                active.append(vocab.GenreCandidate(vid, kind, {} if score is None else {M: score}))
            numeric = [
                c.metrics[M] for c in active if c.kind in vocab.CLASSIFIER_KINDS and isinstance(c.metrics.get(M), float)
            ]
            ties += len(numeric) != len(set(numeric))
            gaps += any(not isinstance(c.metrics.get(M), float) for c in active)
            for pref in vocab.GENRE_MODEL_PREFERENCES:
                sql = conn.execute(text("SELECT musicindex_genre_model_version(:p)"), {"p": pref}).scalar()
                py = vocab.pick_genre_model(active, pref)
                assert sql == (py.id if py else None), (pref, active)
    assert ties and gaps  # the scenarios did exercise ties and missing scores
