"""The ``lda`` space (a linear discriminant projection of the musicnn embedding, trained on the labels) and the
nightly run on hard libraries (a single genre), against real PostgreSQL and the real musicnn embedding.

One module-scoped database holds 4 styles x 6 clips x 4 s (fake artists per style), indexed and embedded in this
process; the lda is trained on it once.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from musicindex import ingest, vocab
from musicindex.db.orm import Embedding, ModelVersion, Track, TrainingRun
from musicindex.db.scratch import scratch_database
from musicindex.errors import ModelNotTrainedError, NotEnoughDataError
from musicindex.ml import folds, inference, registry, training
from musicindex.sample.library import generate_library

GENRES = ["ambient", "techno", "classical", "metal"]
QUICK = {"quick": True, "seed": 0, "cv_folds": 3, "net_cv_folds": 0, "inputs": "features"}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def lda_index(base_settings, tmp_path_factory):
    """(MusicIndex, TrainResult): 24 clips of 4 styles, embedded by musicnn, the lda space trained once."""
    from musicindex.index import MusicIndex

    with scratch_database(base_settings.database_url, prefix="mi_test_lda") as db:
        root = tmp_path_factory.mktemp("lda") / "lib"
        generate_library(root, per_genre=6, genres=GENRES, duration=4.0, formats=("wav",), seed=31)
        reg = ingest.register(db, [root], label_from="folder")
        ingest.process_tracks(db, reg.queued_ids)
        index = MusicIndex(db, base_settings.with_(database_url=db.url))
        index.embed(local=True)
        try:
            yield index, training.train(db, "lda,kmeans", **QUICK)
        finally:
            inference.clear_cache()


def test_lda_trains_embeds_every_track_and_records_its_figures(lda_index):
    index, result = lda_index
    assert result.status == "succeeded"
    with index.db.session() as s:
        v = registry.active_version(s, "lda")
        assert v is not None and len(v.artifact_sha256) == 64
        assert v.embedding_dim == len(GENRES) - 1 and sorted(v.classes) == sorted(GENRES)
        assert (
            v.params["input"] == vocab.MUSICNN
            and v.params["input_version"] == registry.active_version(s, vocab.MUSICNN).id
        )
        n = s.execute(select(func.count()).select_from(Track).where(Track.status == "indexed")).scalar()
        rows = s.execute(select(Embedding).where(Embedding.model_version_id == v.id)).scalars().all()
        assert len(rows) == n == 24 and {r.space for r in rows} == {"lda"}
        m = v.metrics
        assert 0 <= m["precision_at_10"] <= 1 and m["cv_protocol"] in folds.PROTOCOLS
        assert len(m["cv_precision_at_10"]) == 3 and m["dimensions"] == 3
        held = v.snapshot["heldout_track_ids"]
        assert len(held) == m["n_test"] and m["n_train"] + m["n_test"] == 24
        # the HNSW index of the version exists (a trained space like ann / cnn)
        assert vocab.hnsw_index_name(v.id) in registry.existing_hnsw_indexes(s)
        # what backfill stored is what the stored model gives for the track's musicnn vector
        tid = rows[0].track_id
        musicnn = s.execute(
            select(Embedding.embedding).where(
                Embedding.track_id == tid,
                Embedding.model_version_id == registry.active_version(s, vocab.MUSICNN).id,
            )
        ).scalar_one()
        out = inference.transform_one(s, v, musicnn=np.asarray(musicnn))
        assert np.allclose(out["embedding"], np.asarray(rows[0].embedding), atol=1e-4)


def test_lda_space_answers_queries_in_python_and_sql(lda_index):
    index, _ = lda_index
    with index.db.session() as s:
        v = registry.active_version(s, "lda")
        seed = s.execute(select(Track.id).order_by(Track.id).limit(1)).scalar_one()
        sql = s.execute(text("SELECT track_id, model_version_id FROM musicindex_similar(:t, 5, 'lda')"), {"t": seed})
        sql_rows = sql.all()
    res = index.similar(seed, k=5, space="lda")
    assert len(res) == 5 and all(h.space == "lda" and h.model_version == v.id for h in res)
    assert seed not in res.ids
    assert [r[0] for r in sql_rows] == res.ids and {r[1] for r in sql_rows} == {v.id}
    listed = {sp["space"]: sp for sp in index.spaces()}
    assert listed["lda"]["available"] and listed["lda"]["dimension"] == 3 and listed["lda"]["model_version_id"] == v.id
    assert not listed["lda"]["default"]  # musicnn stays the default space


def test_lda_promotes_by_its_space_score_and_rolls_back(lda_index):
    index, _ = lda_index
    db = index.db
    with db.session() as s:
        old = registry.active_version(s, "lda").id
    again = training.train(db, "lda", force=True, promotion_tolerance=1.0, **{**QUICK, "seed": 1})
    new = next(v["id"] for v in again.versions if v["kind"] == "lda")
    with db.session() as s:
        cmp = s.get(TrainingRun, again.run_id).comparison["lda"]
        assert cmp["metric"] == vocab.SPACE_MODEL_METRIC and cmp["decision"] == "promoted"
        assert registry.active_version(s, "lda").id == new != old
    with db.session() as s:
        assert registry.rollback(s, "lda").id == old
    with db.session() as s:
        assert registry.active_version(s, "lda").id == old and s.get(ModelVersion, new).state == "retired"
    # a challenger much worse than the champion stays a candidate
    d = registry.decide(
        "lda",
        {vocab.SPACE_MODEL_METRIC: 0.2, "cv_protocol": folds.GROUPED},
        {vocab.SPACE_MODEL_METRIC: 0.6, "cv_protocol": folds.GROUPED},
        0.01,
    )
    assert not d.promote and "worse" in d.reason


def test_a_new_track_gets_its_lda_vector_and_a_file_is_searched_in_the_lda_space(lda_index, tmp_path):
    """Tracks ingested after training are projected once embedded (the embed queue applies the active versions);
    an outside file is analysed, embedded and projected for a query by example."""
    index, _ = lda_index
    extra = generate_library(tmp_path / "more", per_genre=1, genres=["metal", "ambient"], duration=4.0, seed=77)
    reg = ingest.register(index.db, [extra[0].path], label_from="folder")
    ingest.process_tracks(index.db, reg.queued_ids)
    index.embed(local=True)
    with index.db.session() as s:
        v = registry.active_version(s, "lda")
        got = s.execute(
            select(Embedding).where(Embedding.model_version_id == v.id, Embedding.track_id == reg.queued_ids[0])
        ).scalar_one()
        assert got.space == "lda" and len(np.asarray(got.embedding)) == v.embedding_dim
    by_file = index.similar_to_file(extra[1].path, k=4, space="lda")
    assert len(by_file) == 4 and all(h.space == "lda" and h.model_version == v.id for h in by_file)


def test_lda_refuses_two_genres_and_untrained_space_says_how(lda_index):
    index, _ = lda_index
    db = index.db
    with db.session() as s:
        labels = dict(s.execute(text("SELECT id, label FROM tracks")).tuples().all())
        s.execute(text("UPDATE tracks SET label = 'ambient' WHERE label IN ('techno', 'classical')"))
    try:
        res = training.train(db, "lda,kmeans", force=True, **QUICK)
        lda = next(v for v in res.versions if v["kind"] == "lda")
        assert res.status == "succeeded" and lda["state"] == "failed"
        assert "2 genres" in lda["error"] and "give 1" in lda["error"] and "at least 3 genres" in lda["error"]
        assert next(v for v in res.versions if v["kind"] == "kmeans")["state"] == "active"
    finally:
        with db.session() as s:
            for tid, label in labels.items():
                s.execute(text("UPDATE tracks SET label = :l WHERE id = :t"), {"l": label, "t": tid})


# --------------------------------------------------------------------------- fresh databases
def test_lda_without_musicnn_fails_alone_with_a_clear_error(index, tmp_path):
    generate_library(tmp_path / "lib", per_genre=5, genres=GENRES[:3], duration=3.0, seed=3)
    reg = ingest.register(index.db, [tmp_path / "lib"], label_from="folder")
    ingest.process_tracks(index.db, reg.queued_ids)
    with pytest.raises(ModelNotTrainedError, match="train --models lda"):
        index.similar(reg.queued_ids[0], k=3, space="lda")
    lda = next(sp for sp in index.spaces() if sp["space"] == "lda")
    assert not lda["available"] and "train --models lda" in lda["hint"]
    with pytest.raises(DBAPIError, match="train --models lda"), index.db.session() as s:  # SQL says the same
        s.execute(text("SELECT * FROM musicindex_similar(:t, 3, 'lda')"), {"t": reg.queued_ids[0]})
    res = training.train(index.db, "logreg,lda", **QUICK)
    states = {v["kind"]: v for v in res.versions}
    assert res.status == "succeeded" and states["logreg"]["state"] == "active"
    assert states["lda"]["state"] == "failed" and "musicindex embed" in states["lda"]["error"]


def test_single_genre_library_does_not_crash_the_nightly_run(index, tmp_path):
    """Every kind requested (the nightly set, nets left out for time): the classifiers and the lda fail with a
    specific error, the clusterers and the scaler are promoted; the next nightly run on the same data is skipped
    instead of failing the same way again."""
    generate_library(tmp_path / "lib", per_genre=12, genres=["ambient"], duration=3.0, seed=4)
    reg = ingest.register(index.db, [tmp_path / "lib"], label_from="folder")
    ingest.process_tracks(index.db, reg.queued_ids)
    kinds = [k for k in vocab.TRAINABLE_KINDS if k not in vocab.NET_KINDS]
    res = training.train(index.db, kinds, trigger="scheduled", **QUICK)
    states = {v["kind"]: v for v in res.versions}
    assert res.status == "succeeded"
    for kind in (*vocab.SKLEARN_CLASSIFIER_KINDS, vocab.ENSEMBLE, "lda"):
        assert states[kind]["state"] == "failed", kind
        assert "at least 2 genres" in states[kind]["error"] or "musicindex embed" in states[kind]["error"], kind
    for kind in (*vocab.CLUSTER_KINDS, vocab.SCALER):
        assert states[kind]["state"] == "active", kind
    again = training.train(index.db, kinds, trigger="scheduled", **QUICK)
    assert again.status == "skipped"
    # a run of classifiers only is refused before anything is written (nothing of it could train)
    with pytest.raises(NotEnoughDataError, match="at least 2 genres"):
        training.train(index.db, "svm,lda", force=True, **QUICK)
