"""Nightly retraining: skip when unchanged, champion/challenger, atomic switch, killed runs, rollback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from sqlalchemy import select, text

from musicindex import ingest, vocab
from musicindex.config import Settings
from musicindex.db.orm import Embedding, ModelVersion, TrainingRun
from musicindex.dispatch import TASK_RETRAIN_SCHEDULED, Dispatcher
from musicindex.errors import TrainingInProgressError
from musicindex.index import MusicIndex
from musicindex.localworker import settings_env
from musicindex.ml import registry, training
from musicindex.sample.library import generate_library
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
QUICK = {"quick": True, "seed": 0, "cv_folds": 3, "net_cv_folds": 0}


@pytest.fixture
def labelled(index, tmp_path):
    root = tmp_path / "lib"
    generate_library(root, per_genre=8, genres=["techno", "ambient", "classical", "metal"], duration=5.0, seed=17)
    reg = ingest.register(index.db, [root], label_from="folder")
    ingest.process_tracks(index.db, reg.queued_ids)
    return index


def _active(db) -> dict[str, int]:
    with db.session() as s:
        return {v.kind: v.id for v in registry.active_versions(s)}


def test_unchanged_data_is_skipped_force_always_trains(labelled):
    db = labelled.db
    first = training.train(db, ["knn"], **QUICK)
    assert first.status == "succeeded"
    again = training.train(db, ["knn"], **QUICK)
    assert again.status == "skipped" and again.run_id is None
    forced = training.train(db, ["knn"], force=True, promotion_tolerance=1.0, **QUICK)
    assert forced.status == "succeeded" and forced.run_id != first.run_id
    # a label change is a data change: the next unforced run trains
    with db.session() as s:
        s.execute(
            text(
                "UPDATE tracks SET label = CASE WHEN label = 'ambient' THEN 'metal' ELSE 'ambient' END "
                "WHERE id = (SELECT min(id) FROM tracks)"
            )
        )
    assert training.train(db, ["knn"], **QUICK).status == "succeeded"


def test_worse_challenger_is_not_promoted(labelled):
    db = labelled.db
    good = training.train(db, ["knn"], **QUICK)
    champion = _active(db)["knn"]
    # the labels get scrambled (a bad import): the challenger trained on them scores near chance
    with db.session() as s:
        rows = s.execute(text("SELECT id, label FROM tracks ORDER BY id")).all()
        shuffled = np.random.default_rng(0).permutation([r.label for r in rows])  # same class counts
        for r, lab in zip(rows, shuffled, strict=True):
            s.execute(text("UPDATE tracks SET label = :l WHERE id = :i"), {"l": str(lab), "i": r.id})
    bad = training.train(db, ["knn"], **QUICK)
    assert bad.status == "succeeded"
    with db.session() as s:
        run = s.get(TrainingRun, bad.run_id)
        cmp = run.comparison["knn"]
        challenger = s.get(ModelVersion, cmp["candidate"])
        assert challenger.state == "candidate"  # stays a candidate
        assert cmp["decision"] == "kept as candidate" and cmp["active"] == champion
        assert cmp["candidate_score"] < cmp["active_score"] - cmp["tolerance"]
    assert _active(db)["knn"] == champion
    assert good.run_id != bad.run_id
    # an operator may still activate it by hand, and roll back
    labelled.promote([challenger.id])
    assert _active(db)["knn"] == challenger.id
    labelled.rollback("knn")
    assert _active(db)["knn"] == champion


def test_queries_across_a_promotion_see_exactly_one_version(labelled):
    """Queries in a loop while a retrain with a different ANN embedding size is promoted."""
    db = labelled.db
    training.train(db, ["ann"], net_overrides={"ann": {"embedding_dim": 16}}, **QUICK)
    old = _active(db)["ann"]
    track = min(_active_track_ids(db))
    answers, errors, stop = [], [], threading.Event()

    def query_loop() -> None:
        idx = MusicIndex.connect(settings=labelled.settings)
        try:
            while not stop.is_set():
                r = idx.similar(track, k=5, space="ann")
                answers.append((r.model_version_id, r.dimension, {h.model_version for h in r.items}))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            idx.close()

    th = threading.Thread(target=query_loop)
    th.start()
    try:
        time.sleep(0.3)
        training.train(
            db, ["ann"], force=True, promotion_tolerance=1.0, net_overrides={"ann": {"embedding_dim": 24}}, **QUICK
        )
        time.sleep(0.5)
    finally:
        stop.set()
        th.join()
    new = _active(db)["ann"]
    assert not errors, errors
    assert new != old
    dims = {old: 16, new: 24}
    seen = {v for v, _, _ in answers}
    assert seen == {old, new}, seen  # the loop spanned the switch
    for version, dim, item_versions in answers:
        assert dim == dims[version]  # one version, and that version's dimension
        assert item_versions <= {version}


def _active_track_ids(db) -> list[int]:
    with db.session() as s:
        return list(s.execute(text("SELECT id FROM tracks WHERE status = 'indexed'")).scalars())


KILL_SCRIPT = """
import sys
from musicindex.db.session import Database
from musicindex.ml import training
db = Database(sys.argv[1])
training.train(db, ["ann", "cnn", "kmeans"], quick=True, seed=1, cv_folds=3, net_cv_folds=0, force=True,
               promotion_tolerance=1.0)
"""


@pytest.mark.slow
def test_retrain_killed_mid_backfill_leaves_active_version_answering(labelled):
    db = labelled.db
    training.train(db, ["ann", "cnn", "kmeans"], **QUICK)
    before = _active(db)
    track = min(_active_track_ids(db))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, db.url], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    killed_during_backfill = False
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with db.session() as s:
                run = s.execute(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)).scalar_one()
                if (
                    run.status == "running"
                    and s.execute(
                        select(Embedding.track_id)
                        .join(ModelVersion, ModelVersion.id == Embedding.model_version_id)
                        .where(ModelVersion.run_id == run.id)
                        .limit(1)
                    ).first()
                ):
                    os.kill(proc.pid, signal.SIGKILL)
                    killed_during_backfill = True
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert killed_during_backfill, proc.stdout.read().decode()[-2000:]
    # the active versions are untouched and answer
    assert _active(db) == before
    r = labelled.similar(track, k=5, space="ann")
    assert r.model_version_id == before["ann"] and len(r.items) == 5
    with db.session() as s:
        stale = s.execute(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)).scalar_one()
        assert stale.status == "running"  # nobody could mark it: its process died
        stale_id = stale.id
    # while its heartbeat is fresh, no run may touch it (its worker might only have lost the database)
    with pytest.raises(TrainingInProgressError):
        training.train(db, ["knn"], force=True, **QUICK)
    # once the heartbeat is older than STALE_AFTER_SECONDS (time passing, simulated), the next run cleans up
    with db.session() as s:
        s.execute(
            text("UPDATE training_runs SET heartbeat_at = now() - make_interval(secs => :s) WHERE id = :r"),
            {"s": training.STALE_AFTER_SECONDS + 1, "r": stale_id},
        )
    cleaned_by = training.train(db, ["knn"], force=True, **QUICK)
    assert cleaned_by.status == "succeeded"
    with db.session() as s:
        stale = s.get(TrainingRun, stale_id)
        assert stale.status == "failed" and "interrupted" in stale.error
        versions = s.execute(select(ModelVersion).where(ModelVersion.run_id == stale_id)).scalars().all()
        assert versions and all(v.state == "failed" for v in versions)
        vids = [v.id for v in versions]
        left = s.execute(text("SELECT count(*) FROM embeddings WHERE model_version_id = ANY(:v)"), {"v": vids})
        assert left.scalar() == 0
        idx = s.execute(
            text("SELECT count(*) FROM pg_indexes WHERE indexname = ANY(:n)"),
            {"n": [vocab.hnsw_index_name(v) for v in vids]},
        ).scalar()
        assert idx == 0
    assert {k: v for k, v in _active(db).items() if k not in {"knn", "scaler"}} == {
        k: v for k, v in before.items() if k not in {"knn", "scaler"}
    }


def test_models_cli_list_promote_rollback(labelled):
    db = labelled.db
    first = training.train(db, ["knn"], **QUICK)
    second = training.train(db, ["knn"], force=True, promotion_tolerance=1.0, **QUICK)
    env = settings_env(labelled.settings)
    v1 = {v["kind"]: v["id"] for v in first.versions}["knn"]
    v2 = {v["kind"]: v["id"] for v in second.versions}["knn"]
    listed = json.loads(run_cli("models", "list", "--kind", "knn", "--json", env=env).stdout)
    assert {(r["id"], r["state"]) for r in listed} == {(v1, "retired"), (v2, "active")}
    res = run_cli("models", "rollback", "knn", env=env)
    assert res.returncode == 0, res.stderr
    assert _active(db)["knn"] == v1
    res = run_cli("models", "promote", str(v2), env=env)
    assert res.returncode == 0, res.stderr
    assert _active(db)["knn"] == v2
    res = run_cli("models", "promote", "999999", env=env)
    assert res.returncode == 2 and "no model version" in res.stderr


def test_beat_schedule_and_scheduled_retrain_on_a_worker(labelled, workers):
    from workers.beat import beat_schedule

    sched = beat_schedule(Settings.from_env({}, retrain_cron="15 4 * * 1"))["nightly-retrain"]
    assert sched["task"] == TASK_RETRAIN_SCHEDULED
    assert sched["schedule"].hour == {4} and sched["schedule"].minute == {15}
    assert sched["schedule"].day_of_week == {1}

    db = labelled.db
    training.train(db, training.ALL_MODELS, **QUICK)
    workers(labelled.settings, queues="train", concurrency=1)
    res = Dispatcher(labelled.settings).send(TASK_RETRAIN_SCHEDULED).get(timeout=120)
    assert res["status"] == "skipped"  # nothing changed since the active models were trained
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM training_runs WHERE trigger = 'scheduled'")).scalar() == 0
