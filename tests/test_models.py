"""Training, the registry, backfill and embeddings against real PostgreSQL (and one real worker).

One module-scoped database holds a synthesized library of 6 audibly different styles
(10 clips x 8 s each, ingested in-process) trained once with every model (tiny budgets);
most tests read it. Tests that change the registry use their own fresh database.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from musicindex import ingest, vocab
from musicindex.db.orm import ClusterAssignment, Embedding, ModelVersion, Prediction, Track, TrainingRun
from musicindex.db.session import Database
from musicindex.errors import ArtifactIntegrityError, InvalidArgumentError, NotEnoughDataError
from musicindex.ml import backfill, inference, registry, training
from musicindex.sample.library import generate_library
from tests.conftest import url_str

GENRES6 = ["ambient", "techno", "jazz", "classical", "hiphop", "metal"]
CHANCE = 1 / len(GENRES6)
QUICK = {"quick": True, "seed": 0, "cv_folds": 5, "net_cv_folds": 3}
STUDY = ("knn", "logreg", "ann", "cnn", "kmeans", "birch", "gmm")
"""The study's models, trained by the shared fixture (the planned ones: tests/test_model_kinds.py)."""

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _ingest(db: Database, root, **lib) -> list[int]:
    generate_library(root, **lib)
    reg = ingest.register(db, [root], label_from="folder")
    ingest.process_tracks(db, reg.queued_ids)
    return reg.queued_ids


@pytest.fixture(scope="module")
def trained(base_settings, admin_engine, tmp_path_factory):
    """(db, TrainResult, library root): the study's models trained once on 6 x 10 x 8 s clips."""
    name = f"mi_test_models_{uuid.uuid4().hex[:10]}"
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(url_str(make_url(base_settings.database_url).set(database=name)), pool_size=3)
    try:
        db.upgrade()
        root = tmp_path_factory.mktemp("models") / "library"
        _ingest(db, root, per_genre=10, genres=GENRES6, duration=8.0, seed=7)
        t0 = time.monotonic()
        result = training.train(db, STUDY, **QUICK)
        result.seconds = time.monotonic() - t0
        yield db, result, root
    finally:
        inference.clear_cache()
        db.dispose()
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _indexed(db) -> list[int]:
    with db.session() as s:
        return list(s.execute(select(Track.id).where(Track.status == "indexed")).scalars())


# --------------------------------------------------------------------------- the shared trained index
@pytest.mark.slow
def test_every_model_trains_and_is_active(trained):
    db, result, _ = trained
    assert result.status == "succeeded"
    kinds = {v["kind"] for v in result.versions}
    assert kinds == {"scaler", *STUDY}
    with db.session() as s:
        run = s.get(TrainingRun, result.run_id)
        assert run.status == "succeeded" and run.finished_at is not None and run.data_fingerprint
        for kind in kinds:
            v = registry.active_version(s, kind)
            assert v is not None and v.run_id == run.id, kind
            assert v.artifact and len(v.artifact_sha256) == 64 and v.training_seconds > 0
            assert v.snapshot["class_counts"] == dict.fromkeys(GENRES6, 10)
            assert v.snapshot["data_fingerprint"] == run.data_fingerprint


@pytest.mark.slow
@pytest.mark.parametrize("kind,factor", [("knn", 2.5), ("logreg", 2.5), ("ann", 2.5), ("cnn", 1.5)])
def test_classifier_metrics_stored_and_above_chance(trained, kind, factor):
    db, _, _ = trained
    with db.session() as s:
        v = registry.active_version(s, kind)
    m = v.metrics
    for key in (
        "accuracy",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "cv_accuracy_mean",
        "cv_accuracy_std",
        "cv_macro_f1_mean",
        "cv_macro_f1_std",
        "per_class",
        "confusion_matrix",
    ):
        assert key in m, key
    assert sorted(v.classes) == sorted(GENRES6)
    assert m["confusion_matrix"]["labels"] == v.classes
    # the held-out split is one artist-grouped fold of five (about a fifth of the 60 tracks)
    assert np.asarray(m["confusion_matrix"]["matrix"]).sum() == m["n_test"] and 6 <= m["n_test"] <= 20
    assert m["cv_protocol"] == "artist-grouped"
    assert m["cv_folds"] == (3 if kind in ("ann", "cnn") else 5)
    # held-out split (12 tracks) and k-fold mean: both clearly above chance
    assert m["accuracy"] > factor * CHANCE, m["accuracy"]
    assert m["cv_accuracy_mean"] > factor * CHANCE, m["cv_accuracy_mean"]
    if kind in ("ann", "cnn"):
        h = m["history"]
        assert len(h["loss"]) == len(h["val_loss"]) == len(h["accuracy"]) == len(h["val_accuracy"]) >= 2
        assert v.embedding_dim and v.embedding_dim > 0


@pytest.mark.slow
def test_clusterers_and_scaler(trained):
    db, _, _ = trained
    with db.session() as s:
        for kind in ("kmeans", "birch", "gmm"):
            m = registry.active_version(s, kind).metrics
            assert 2 <= m["n_clusters"] <= 8
            assert -1 <= m["silhouette"] <= 1 and m["davies_bouldin"] > 0
            assert [r["k"] for r in m["sweep"]] == list(range(2, 9))
            assert max(r["silhouette"] for r in m["sweep"]) == pytest.approx(m["silhouette"], abs=0.05)
        sc = registry.active_version(s, "scaler")
        assert sc.embedding_dim == 43 and len(sc.params["mean"]) == len(sc.params["scale"]) == 43


@pytest.mark.slow
def test_backfill_embeddings_predictions_clusters_and_hnsw(trained):
    db, _, _ = trained
    ids = set(_indexed(db))
    assert len(ids) == 60
    with db.session() as s:
        for v in registry.active_versions(s):
            if v.kind in ("ann", "cnn", "scaler"):
                rows = s.execute(
                    select(Embedding.track_id, Embedding.space, func.vector_dims(Embedding.embedding)).where(
                        Embedding.model_version_id == v.id
                    )
                ).all()
                assert {r[0] for r in rows} >= ids, v.kind
                assert {r[1] for r in rows} == {vocab.KIND_SPACE[v.kind]}
                assert {r[2] for r in rows} == {v.embedding_dim}
                idx = s.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": f"ix_emb_hnsw_v{v.id}"}
                ).scalar_one()
                assert "hnsw" in idx and f"vector({v.embedding_dim})" in idx and "vector_cosine_ops" in idx
                assert f"model_version_id = {v.id}" in idx
            if v.kind in vocab.CLASSIFIER_KINDS:
                preds = s.execute(select(Prediction).where(Prediction.model_version_id == v.id)).scalars().all()
                assert {p.track_id for p in preds} >= ids
                p = preds[0]
                assert p.genre in v.classes and set(p.probabilities) == set(v.classes)
                assert p.confidence == pytest.approx(max(p.probabilities.values()), abs=1e-5)
                assert sum(p.probabilities.values()) == pytest.approx(1, abs=1e-3)
            if v.kind in registry.CLUSTER_KINDS:
                cl = s.execute(
                    select(ClusterAssignment.track_id, ClusterAssignment.cluster).where(
                        ClusterAssignment.model_version_id == v.id
                    )
                ).all()
                assert {r[0] for r in cl} >= ids
                assert {r[1] for r in cl} <= set(range(v.metrics["n_clusters"]))
        # features space = the standardised features
        sc = registry.active_version(s, "scaler")
        tid = min(ids)
        emb = np.asarray(
            s.execute(
                select(Embedding.embedding).where(Embedding.model_version_id == sc.id, Embedding.track_id == tid)
            ).scalar_one()
        )
        from musicindex.ml.data import load_features

        _, X = load_features(s, [tid])
        expect = (X[0] - np.array(sc.params["mean"])) / np.array(sc.params["scale"])
        assert np.allclose(emb, expect, atol=1e-4)


@pytest.mark.slow
def test_transform_one_matches_backfill_and_genre_model(trained):
    db, _, root = trained
    from musicindex import audio

    path = sorted((root / "jazz").iterdir())[0]
    res = audio.analyse_file(path)
    with db.session() as s:
        tid = s.execute(select(Track.id).where(Track.path == str(path))).scalar_one()
        for v in registry.active_versions(s):
            out = inference.transform_one(s, v, features=res.features, logmel=res.logmel)
            if v.kind in ("ann", "cnn", "scaler"):
                stored = np.asarray(
                    s.execute(
                        select(Embedding.embedding).where(Embedding.model_version_id == v.id, Embedding.track_id == tid)
                    ).scalar_one()
                )
                assert out["embedding"].shape == (v.embedding_dim,)
                if v.kind == "cnn":  # stored spectrograms are quantised to 0.5 dB: near, not equal
                    cos = out["embedding"] @ stored / np.linalg.norm(out["embedding"]) / np.linalg.norm(stored)
                    assert cos > 0.999
                else:
                    assert np.allclose(out["embedding"], stored, atol=2e-3), v.kind
            if v.kind in vocab.CLASSIFIER_KINDS:
                p = s.get(Prediction, (v.id, tid))
                tol = 0.02 if v.kind == "cnn" else 2e-3
                assert out["genre"] == p.genre and out["confidence"] == pytest.approx(p.confidence, abs=tol)
            if v.kind in registry.CLUSTER_KINDS:
                assert out["cluster"] == s.get(ClusterAssignment, (v.id, tid)).cluster
        best = registry.genre_model_version(s, "auto")
        f1s = {
            v.kind: v.metrics[vocab.GENRE_MODEL_METRIC]
            for v in registry.active_versions(s)
            if v.kind in vocab.CLASSIFIER_KINDS
        }
        assert best.metrics[vocab.GENRE_MODEL_METRIC] == max(f1s.values())
        assert registry.genre_model_version(s, "cnn").kind == "cnn"
        with pytest.raises(InvalidArgumentError):
            inference.transform_one(s, registry.active_version(s, "cnn"), features=res.features)


@pytest.mark.slow
def test_tampered_artifact_is_never_loaded(trained):
    db, _, _ = trained
    with db.session() as s:
        v = registry.active_version(s, "logreg")
        vid, original = v.id, bytes(v.artifact)
    try:
        with db.session() as s:
            s.execute(update(ModelVersion).where(ModelVersion.id == vid).values(artifact=original[:-1] + b"\x00"))
        inference.clear_cache()
        with db.session() as s:
            with pytest.raises(ArtifactIntegrityError, match="sha256"):
                registry.load_artifact(s, vid)
            with pytest.raises(ArtifactIntegrityError):
                inference.load_model(s, vid)
        with pytest.raises(ArtifactIntegrityError):
            backfill.apply_active(db, _indexed(db)[:1])
    finally:
        with db.session() as s:
            s.execute(update(ModelVersion).where(ModelVersion.id == vid).values(artifact=original))
        inference.clear_cache()
    with db.session() as s:
        assert registry.load_artifact(s, vid) == original


@pytest.mark.slow
def test_apply_active_gives_a_new_track_its_rows(trained, tmp_path):
    db, _, _ = trained
    new_ids = _ingest(db, tmp_path / "later", per_genre=1, genres=["techno"], duration=8.0, seed=99)
    assert len(new_ids) == 1
    tid = new_ids[0]
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Embedding).where(Embedding.track_id == tid)).scalar() == 0
    out = backfill.apply_active(db, [tid])
    with db.session() as s:
        active = registry.active_versions(s)
        assert set(out["versions"]) == {str(v.id) for v in active}
        emb = dict(
            s.execute(
                select(Embedding.model_version_id, func.vector_dims(Embedding.embedding)).where(
                    Embedding.track_id == tid
                )
            ).all()
        )
        assert emb == {v.id: v.embedding_dim for v in active if v.kind in ("ann", "cnn", "scaler")}
        assert {
            p.model_version_id for p in s.execute(select(Prediction).where(Prediction.track_id == tid)).scalars()
        } == {v.id for v in active if v.kind in vocab.CLASSIFIER_KINDS}
        assert s.execute(
            select(func.count()).select_from(ClusterAssignment).where(ClusterAssignment.track_id == tid)
        ).scalar() == len(set(STUDY) & set(vocab.CLUSTER_KINDS))
    backfill.apply_active(db, [tid])  # idempotent (upsert)
    for v in active:
        assert tid not in backfill.tracks_without_rows(db, v.id)


# --------------------------------------------------------------------------- fresh databases
def test_not_enough_data_writes_nothing(fresh_db, tmp_path):
    _ingest(fresh_db, tmp_path / "one", per_genre=6, genres=["techno"], duration=4.0, seed=1)
    with pytest.raises(NotEnoughDataError, match="at least 2 genres"):
        training.train(fresh_db, ["knn"])
    _ingest(fresh_db, tmp_path / "two", per_genre=3, genres=["ambient"], duration=4.0, seed=2)
    with pytest.raises(NotEnoughDataError, match="'ambient': 3"):  # a run of labelled kinds only is refused
        training.train(fresh_db, ["knn"])
    with pytest.raises(NotEnoughDataError, match="at least 10 indexed tracks"):  # with a clusterer, its own limit
        training.train(fresh_db, ["knn", "kmeans"])
    with pytest.raises(NotEnoughDataError, match="at least 6"):
        training.train(fresh_db, ["logreg"], cv_folds=6)
    with fresh_db.session() as s:
        assert s.execute(select(func.count()).select_from(TrainingRun)).scalar() == 0
        assert s.execute(select(func.count()).select_from(ModelVersion)).scalar() == 0
        assert s.execute(select(func.count()).select_from(Embedding)).scalar() == 0
    # leaving the rare genre out is explicit, and then training works
    _ingest(fresh_db, tmp_path / "three", per_genre=6, genres=["classical"], duration=4.0, seed=3)
    res = training.train(fresh_db, ["knn"], quick=True, drop_rare_labels=True)
    with fresh_db.session() as s:
        v = registry.active_version(s, "knn")
        assert res.status == "succeeded" and v.classes == ["classical", "techno"]
        assert v.snapshot["dropped_labels"] == {"ambient": 3}


def test_not_enough_tracks_at_all(fresh_db, tmp_path):
    _ingest(fresh_db, tmp_path / "lib", per_genre=2, genres=["techno", "ambient"], duration=4.0, seed=1)
    with pytest.raises(NotEnoughDataError):
        training.train(fresh_db, ["kmeans"])
    with pytest.raises(InvalidArgumentError):
        training.train(fresh_db, ["svr"])


def test_registry_promotion_rollback_and_failed_run(fresh_db, tmp_path, monkeypatch):
    db = fresh_db
    _ingest(db, tmp_path / "lib", per_genre=6, genres=["techno", "ambient", "classical"], duration=4.0, seed=3)
    first = training.train(db, ["knn", "kmeans"], quick=True, n_clusters=3)
    second = training.train(db, ["knn"], quick=True, seed=1, force=True, promotion_tolerance=1.0)
    ids1 = {v["kind"]: v["id"] for v in first.versions}
    ids2 = {v["kind"]: v["id"] for v in second.versions}
    with db.session() as s:
        states = dict(s.execute(select(ModelVersion.id, ModelVersion.state)).all())
        assert states[ids1["knn"]] == "retired" and states[ids2["knn"]] == "active"
        assert states[ids1["kmeans"]] == "active"  # not retrained: stays active
        assert states[ids1["scaler"]] == "retired" and states[ids2["scaler"]] == "active"
        cmp = s.get(TrainingRun, second.run_id).comparison["knn"]
        assert (cmp["candidate"], cmp["active"], cmp["decision"]) == (ids2["knn"], ids1["knn"], "promoted")
        assert [v.id for v in registry.list_versions(s, "knn")] == [ids2["knn"], ids1["knn"]]
    # rollback re-activates the previous version
    with db.session() as s:
        assert registry.rollback(s, "knn").id == ids1["knn"]
    with db.session() as s:
        assert registry.active_version(s, "knn").id == ids1["knn"]
        assert s.get(ModelVersion, ids2["knn"]).state == "retired"
        assert registry.existing_hnsw_indexes(s) >= {f"ix_emb_hnsw_v{ids1['scaler']}", f"ix_emb_hnsw_v{ids2['scaler']}"}

    # a failing run: versions failed, run failed with the error, active versions untouched (a run fails when
    # every requested kind fails; one failed kind among others: tests/test_model_kinds.py)
    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("musicindex.ml.clustering.train_clusterer", boom)
    monkeypatch.setattr("musicindex.ml.classical.train_classical", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        training.train(db, ["knn", "kmeans"], quick=True, force=True)
    with db.session() as s:
        run = s.execute(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)).scalar_one()
        assert run.status == "failed" and "disk on fire" in run.error
        failed = s.execute(select(ModelVersion).where(ModelVersion.run_id == run.id)).scalars().all()
        assert {v.state for v in failed} == {"failed"}
        assert all("disk on fire" in v.error for v in failed if v.kind != "scaler")
        assert registry.active_version(s, "knn").id == ids1["knn"]
        assert registry.active_version(s, "kmeans").id == ids1["kmeans"]
        for v in failed:
            assert (
                s.execute(
                    select(func.count()).select_from(Prediction).where(Prediction.model_version_id == v.id)
                ).scalar()
                == 0
            )
            assert f"ix_emb_hnsw_v{v.id}" not in registry.existing_hnsw_indexes(s)


def test_cli_models_list_and_show(index, tmp_path):
    from musicindex.localworker import settings_env
    from tests.conftest import run_cli

    _ingest(index.db, tmp_path / "lib", per_genre=5, genres=["techno", "ambient"], duration=4.0, seed=4)
    env = settings_env(index.settings)
    r = run_cli("train", "--local", "--models", "knn,gmm", "--quick", "--net-cv-folds", "0", env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("models", "list", "--json", env=env)
    assert r.returncode == 0, r.stderr
    import json

    rows = json.loads(r.stdout)
    assert {d["kind"] for d in rows} == {"knn", "gmm", "scaler"} and all(d["state"] == "active" for d in rows)
    knn = next(d for d in rows if d["kind"] == "knn")
    r = run_cli("models", "show", str(knn["id"]), env=env)
    assert r.returncode == 0 and "macro_f1" in r.stdout and knn["sha256"][:12] in r.stdout
    r = run_cli("models", "list", env=env)
    assert r.returncode == 0 and "knn" in r.stdout and "active" in r.stdout
    r = run_cli("train", "--local", "--models", "knn", "--cv-folds", "9", env=env)
    assert r.returncode == 7 and "at least 9" in r.stderr


def test_training_through_a_real_worker(index, workers, tmp_path):
    _ingest(index.db, tmp_path / "lib", per_genre=6, genres=["techno", "ambient", "classical"], duration=4.0, seed=5)
    workers(index.settings, queues="train,embed", concurrency=1)
    res = index.train(["knn", "kmeans"], wait=True, timeout=240, quick=True)
    assert res.status == "succeeded" and res.run_id
    assert {v["kind"] for v in res.versions} == {"knn", "kmeans", "scaler"}
    with index.db.session() as s:
        assert s.get(TrainingRun, res.run_id).trigger == "manual"
        assert registry.active_version(s, "knn").id in {v["id"] for v in res.versions}
    # a user error on the worker comes back as the library's exception
    with pytest.raises(NotEnoughDataError):
        index.train(["knn"], wait=True, timeout=120, cv_folds=10)
    # the embed task on the embed queue
    from musicindex.dispatch import Dispatcher

    new = _ingest(index.db, tmp_path / "later", per_genre=1, genres=["jazz"], duration=4.0, seed=6)
    out = Dispatcher(index.settings).embed(new).get(timeout=120)
    assert out["tracks"] == 1 and len(out["versions"]) == 3


def test_no_tensorflow_on_the_ingest_path():
    import subprocess
    import sys

    from tests.conftest import REPO

    code = (
        "import sys, workers.tasks, workers.train_tasks, musicindex.index, musicindex.cli.main, "
        "musicindex.ml.backfill, musicindex.ml.training, musicindex.ml.inference, musicindex.ml.report; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
