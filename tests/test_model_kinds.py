"""The study's planned models (svm, forest, tree, gbm, ensemble, agglomerative), artist-grouped selection, a failed
kind that does not block the others, hard inputs, and the cached 2-D maps, against real PostgreSQL.

One module-scoped database holds a synthesized library (4 styles x 8 clips x 4 s, four fake artists per style,
ingested in-process), on which the new kinds are trained once with the quick grids; most tests read it.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from musicindex import ingest, vocab
from musicindex.db.orm import ClusterAssignment, ModelVersion, Prediction, SpaceMap, Track, TrainingRun
from musicindex.db.session import Database
from musicindex.errors import InvalidArgumentError, ModelNotTrainedError, NotEnoughDataError
from musicindex.ml import folds, inference, maps, registry, training
from musicindex.sample.library import generate_library
from tests.conftest import url_str

GENRES = ["ambient", "techno", "classical", "metal"]
NEW = ("svm", "forest", "tree", "gbm", "ensemble", "agglomerative")
QUICK = {"quick": True, "seed": 0, "cv_folds": 3, "net_cv_folds": 0, "inputs": "features"}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _ingest(db: Database, root, **lib) -> list[int]:
    generate_library(root, **lib)
    reg = ingest.register(db, [root], label_from="folder")
    ingest.process_tracks(db, reg.queued_ids)
    return reg.queued_ids


@pytest.fixture(scope="module")
def kinds_db(base_settings, admin_engine, tmp_path_factory):
    """(db, TrainResult): the new kinds trained once on 4 x 8 x 4 s clips by 16 fake artists."""
    name = f"mi_test_kinds_{uuid.uuid4().hex[:10]}"
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(url_str(make_url(base_settings.database_url).set(database=name)), pool_size=3)
    try:
        db.upgrade()
        _ingest(db, tmp_path_factory.mktemp("kinds") / "lib", per_genre=8, genres=GENRES, duration=4.0, seed=23)
        result = training.train(db, ",".join(NEW), **QUICK)
        yield db, result
    finally:
        inference.clear_cache()
        db.dispose()
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_new_kinds_train_store_metrics_and_answer(kinds_db):
    db, result = kinds_db
    assert result.status == "succeeded"
    assert {v["kind"] for v in result.versions} == {"scaler", *NEW}
    with db.session() as s:
        n_tracks = s.execute(select(func.count()).select_from(Track).where(Track.status == "indexed")).scalar()
        for kind in NEW:
            v = registry.active_version(s, kind)
            assert v is not None and v.artifact and len(v.artifact_sha256) == 64, kind
            rows = (
                s.execute(
                    select(func.count()).select_from(Prediction).where(Prediction.model_version_id == v.id)
                ).scalar()
                or s.execute(
                    select(func.count())
                    .select_from(ClusterAssignment)
                    .where(ClusterAssignment.model_version_id == v.id)
                ).scalar()
            )
            assert rows == n_tracks, kind  # every track has its prediction / cluster
            if kind in vocab.CLASSIFIER_KINDS:
                m = v.metrics
                assert sorted(v.classes) == sorted(GENRES)
                assert m["cv_folds"] == 3 and 0 <= m["cv_macro_f1_mean"] <= 1 and m["cv_macro_f1_std"] >= 0
                # 16 artists, 4 per genre: every split is artist-grouped, and says so
                assert m["cv_protocol"] == folds.GROUPED and m["selection"]["holdout"] == folds.GROUPED
                assert m["selection"]["groups"] == 16 and "one artist" in m["selection"]["note"]
                assert np.asarray(m["confusion_matrix"]["matrix"]).sum() == m["n_test"]
    with db.session() as s:
        tree = registry.active_version(s, "tree").metrics
        assert tree["depth"] >= 1 and tree["leaves"] >= 2 and "<=" in tree["top_splits"]
        assert any(name in tree["top_splits"] for name in vocab.FEATURE_NAMES)  # splits read as feature names
        ens = registry.active_version(s, "ensemble").params
        assert len(ens["best"]["members"]) == 2 and set(ens["member_scores"]) == {
            "logreg",
            "svm",
            "knn",
            "forest",
            "gbm",
        }
        order = ("logreg", "svm", "knn", "forest", "gbm")  # ensemble.MEMBERS: ties keep this order
        ranked = sorted(order, key=lambda k: (-ens["member_scores"][k], order.index(k)))
        assert ens["best"]["members"] == ranked[:2]  # the best members by the same grouped folds
        assert registry.active_version(s, "svm").params["best"]["kernel"] in ("rbf", "linear")
        agg = registry.active_version(s, "agglomerative").metrics
        assert set(agg["sweep_by_linkage"]) == {"ward", "average"} and agg["linkage"] in ("ward", "average")
        assert [r["k"] for r in agg["sweep_by_linkage"]["ward"]] == list(range(2, 9))
        assert agg["n_clusters"] == len(agg["cluster_sizes"]) and sum(agg["cluster_sizes"]) == n_tracks
        assert len(agg["dendrogram"]["icoord"]) == len(agg["dendrogram"]["dcoord"]) >= 1


def test_transform_one_matches_backfill_for_the_new_kinds(kinds_db):
    db, _ = kinds_db
    from musicindex.ml.data import load_features

    with db.session() as s:
        tid = s.execute(select(Track.id).order_by(Track.id).limit(1)).scalar_one()
        _, X = load_features(s, [tid])
        for kind in NEW:
            v = registry.active_version(s, kind)
            out = inference.transform_one(s, v, features=X[0])
            if kind == "agglomerative":
                assert out["cluster"] == s.get(ClusterAssignment, (v.id, tid)).cluster
            else:
                p = s.get(Prediction, (v.id, tid))
                assert out["genre"] == p.genre and out["confidence"] == pytest.approx(p.confidence, abs=1e-4)


def test_genre_model_auto_picks_among_the_new_kinds_in_python_and_sql(kinds_db):
    db, _ = kinds_db
    with db.session() as s:
        best = registry.genre_model_version(s, "auto")
        scores = {
            v.kind: v.metrics[vocab.GENRE_MODEL_METRIC]
            for v in registry.active_versions(s)
            if v.kind in vocab.CLASSIFIER_KINDS
        }
        assert best.kind in NEW and best.metrics[vocab.GENRE_MODEL_METRIC] == max(scores.values())
        assert s.execute(text("SELECT musicindex_genre_model_version()")).scalar_one() == best.id
        assert registry.genre_model_version(s, "gbm").kind == "gbm"
        assert s.execute(text("SELECT musicindex_genre_model_version('ensemble')")).scalar_one() == (
            registry.active_version(s, "ensemble").id
        )


def test_evaluate_compares_models_and_spaces_with_other_artist_figures(kinds_db):
    db, _ = kinds_db
    from musicindex.ml.evaluate import evaluate

    rep = evaluate(db)
    kinds = {c.kind: c for c in rep.classifiers}
    assert set(kinds) == set(NEW) - {"agglomerative"}
    for c in kinds.values():
        held = len(_heldout(db, c.model_version_id))
        assert c.queries == held > 0  # held-out queries only
        assert 0 <= c.heldout_accuracy <= 1 and 0 <= c.precision_at_10 <= 1
        assert 0 <= c.other_artist_precision_at_10 <= 1 and c.cv_protocol == folds.GROUPED
        # grouped held-out split: no held-out track's artist has a training track
        assert c.unseen_artist_queries == c.queries and c.unseen_artist_accuracy == pytest.approx(c.heldout_accuracy)
    [features] = rep.spaces
    assert features.space == "features" and 0 <= features.other_artist_precision_at_10 <= 1
    assert 0 <= features.accuracy <= 1
    table = rep.comparison()
    assert {r["name"] for r in table} == {f"{k} (features)" for k in kinds} | {"features"}
    f1 = [r["macro_f1"] for r in table]
    assert f1 == sorted(f1, reverse=True)


def _heldout(db, vid: int) -> list[int]:
    with db.session() as s:
        return s.get(ModelVersion, vid).snapshot["heldout_track_ids"]


@pytest.mark.slow
def test_maps_are_computed_once_per_version_and_cached(kinds_db):
    db, _ = kinds_db
    first = {m: maps.space_map(db, "features", m) for m in vocab.MAP_METHODS}
    with db.session() as s:
        n = s.execute(select(func.count()).select_from(Track).where(Track.status == "indexed")).scalar()
        scaler = registry.active_version(s, "scaler").id
        assert s.execute(select(func.count()).select_from(SpaceMap)).scalar() == 3
    for method, m in first.items():
        assert not m.cached and m.model_version_id == scaler and m.xy.shape == (n, 2) and len(m.track_ids) == n
        assert np.isfinite(m.xy).all() and m.xy.std(axis=0).min() > 0, method
        again = maps.space_map(db, "features", method)
        assert again.cached and np.array_equal(again.xy, m.xy) and np.array_equal(again.track_ids, m.track_ids)
    assert maps.space_map(db, "features", "pca", refresh=True).cached is False
    with pytest.raises(InvalidArgumentError, match="pca, tsne, umap"):
        maps.space_map(db, "features", "mds")
    with pytest.raises(InvalidArgumentError):
        maps.space_map(db, "sideways", "pca")
    with pytest.raises(ModelNotTrainedError, match="musicnn"):
        maps.space_map(db, "musicnn", "pca")
    with pytest.raises(NotEnoughDataError):
        maps.project("pca", np.ones((3, 4)))


def test_every_new_kind_promotes_and_rolls_back(kinds_db):
    db, _ = kinds_db
    with db.session() as s:
        old = {kind: registry.active_version(s, kind).id for kind in NEW}
    again = training.train(db, ",".join(NEW), force=True, promotion_tolerance=1.0, **{**QUICK, "seed": 1})
    new = {v["kind"]: v["id"] for v in again.versions}
    with db.session() as s:
        cmp = s.get(TrainingRun, again.run_id).comparison
        for kind in NEW:
            assert registry.active_version(s, kind).id == new[kind] != old[kind], kind
            assert s.get(ModelVersion, old[kind]).state == "retired"
            assert cmp[kind]["decision"] == "promoted" and cmp[kind]["active"] == old[kind]
            metric = "silhouette" if kind == "agglomerative" else vocab.GENRE_MODEL_METRIC
            assert cmp[kind]["metric"] == metric
    for kind in NEW:
        with db.session() as s:
            assert registry.rollback(s, kind).id == old[kind]
    with db.session() as s:
        for kind in NEW:
            assert registry.active_version(s, kind).id == old[kind], kind
            assert s.get(ModelVersion, new[kind]).state == "retired"


# --------------------------------------------------------------------------- fresh databases
def test_a_failed_kind_does_not_block_the_others(fresh_db, tmp_path, monkeypatch):
    db = fresh_db
    _ingest(db, tmp_path / "lib", per_genre=6, genres=GENRES[:3], duration=3.0, seed=5)
    from musicindex.ml import estimators

    real = estimators.classifier

    def broken(kind, seed):
        if kind == "gbm":
            raise ValueError("gbm broke on this data")
        return real(kind, seed)

    monkeypatch.setattr(estimators, "classifier", broken)
    res = training.train(db, "logreg,gbm,kmeans", **QUICK)
    assert res.status == "succeeded"
    states = {v["kind"]: (v["state"], v["error"]) for v in res.versions}
    assert states["gbm"][0] == "failed" and "gbm broke on this data" in states["gbm"][1]
    assert states["logreg"] == ("active", None) and states["kmeans"] == ("active", None)
    with db.session() as s:
        assert registry.active_version(s, "gbm") is None
        gbm = next(v["id"] for v in res.versions if v["kind"] == "gbm")
        assert (
            s.execute(select(func.count()).select_from(Prediction).where(Prediction.model_version_id == gbm)).scalar()
            == 0
        )
    # every requested kind failing fails the run (the active versions stay)
    with pytest.raises(ValueError, match="gbm broke"):
        training.train(db, "gbm", force=True, **QUICK)
    with db.session() as s:
        run = s.execute(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)).scalar_one()
        assert run.status == "failed" and "gbm broke" in run.error
        assert registry.active_version(s, "logreg") is not None


def test_hard_inputs_one_artist_genre_unreadable_tags_constant_and_nan_features(fresh_db, tmp_path):
    db = fresh_db
    _ingest(db, tmp_path / "lib", per_genre=6, genres=GENRES[:3], duration=3.0, seed=9)
    with db.session() as s:
        # a genre by a single artist; unreadable artist tags elsewhere (their album groups them); a constant
        # feature; one track whose features are not finite (left out of training)
        s.execute(text("UPDATE tracks SET artist = 'The Only One' WHERE label = 'classical'"))
        s.execute(text("UPDATE tracks SET artist = '???' WHERE label = 'techno'"))
        s.execute(text("UPDATE track_features SET rms_mean = 0.5"))
        s.execute(
            text(
                "UPDATE track_features SET tempo = 'NaN' "
                "WHERE track_id = (SELECT min(id) FROM tracks WHERE label = 'ambient')"
            )
        )
    res = training.train(db, "svm,tree,gbm,ensemble,agglomerative", **QUICK)
    assert res.status == "succeeded" and all(v["state"] == "active" for v in res.versions)
    with db.session() as s:
        m = registry.active_version(s, "svm").metrics
        assert m["cv_protocol"] == folds.PARTLY_GROUPED and m["selection"]["ungrouped_genres"] == {"classical": 1}
        assert "'classical' (1 group)" in m["selection"]["note"]
        assert m["selection"]["group_sources"]["album"] >= 1  # the unreadable tags fell back to the albums
        assert registry.active_version(s, "tree").snapshot["n_tracks"] == 17
    # every track of every genre by one artist: plain stratified folds, said in the metrics
    with db.session() as s:
        s.execute(text("UPDATE tracks SET artist = 'Everyone', album = 'Everything'"))
    training.train(db, "logreg", force=True, **QUICK)
    with db.session() as s:
        m = registry.active_version(s, "logreg").metrics
        assert m["cv_protocol"] == folds.STRATIFIED and "plain stratified" in m["selection"]["note"]
    with db.session() as s:
        s.execute(text("UPDATE tracks SET label = 'ambient'"))
    with pytest.raises(NotEnoughDataError, match="at least 2 genres"):
        training.train(db, "svm", force=True, **QUICK)


def test_decide_does_not_compare_scores_from_different_folds():
    d = registry.decide(
        "svm", {vocab.GENRE_MODEL_METRIC: 0.5, "cv_protocol": folds.GROUPED}, {vocab.GENRE_MODEL_METRIC: 0.9}, 0.01
    )
    assert d.promote and "not comparable" in d.reason
    d = registry.decide(
        "svm",
        {vocab.GENRE_MODEL_METRIC: 0.5, "cv_protocol": folds.GROUPED},
        {vocab.GENRE_MODEL_METRIC: 0.9, "cv_protocol": folds.GROUPED},
        0.01,
    )
    assert not d.promote and "worse" in d.reason
    from musicindex.ml.options import TrainOptions

    assert TrainOptions.of("agglomerative,svm").models == ("svm", "agglomerative")  # canonical order
    with pytest.raises(InvalidArgumentError, match="ensemble"):  # the message lists the kinds
        TrainOptions.of("svm,bogus")
