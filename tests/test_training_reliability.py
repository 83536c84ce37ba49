"""Training reliability: signed artifacts, live-run heartbeats, concurrent index builds, a lost training worker."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.exc import OperationalError

from musicindex import ingest
from musicindex.db.orm import ModelVersion, TrainingRun
from musicindex.errors import ArtifactIntegrityError, TrainingInProgressError, WorkerLostError
from musicindex.ml import artifacts, backfill, inference, registry, training
from musicindex.sample.library import generate_library
from tests.conftest import url_str

QUICK = {"quick": True, "seed": 0, "cv_folds": 3, "net_cv_folds": 0, "test_size": 0.25}


@pytest.fixture
def small(index, tmp_path):
    root = tmp_path / "lib"
    generate_library(root, per_genre=5, genres=["rock", "techno", "jazz"], duration=4.0, formats=("wav",), seed=3)
    reg = ingest.register(index.db, [root], label_from="folder")
    ingest.process_tracks(index.db, reg.queued_ids)
    return reg.queued_ids


class _Planted:
    """An object whose unpickling would run code: it creates a marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_artifacts_are_signed_and_a_forged_one_is_never_unpickled(index, small, tmp_path):
    training.train(index.db, "logreg", **QUICK)
    with index.db.session() as s:
        v = s.execute(select(ModelVersion).where(ModelVersion.kind == "logreg")).scalar_one()
        signed = registry.signed_bytes(v.id, v.kind, v.artifact)  # the signature covers the id and kind too
        assert v.artifact_hmac == artifacts.sign(signed, artifacts.signing_key())
    key_file = index.settings.home / artifacts.KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    # someone who can write model_versions (but has not the key) swaps in a pickle that runs code,
    # with a matching sha256: it is refused before it is unpickled
    marker = tmp_path / "pwned"
    forged = pickle.dumps(_Planted(str(marker)))
    with index.db.session() as s:
        s.execute(
            update(ModelVersion)
            .where(ModelVersion.id == v.id)
            .values(artifact=forged, artifact_sha256=artifacts.sha256(forged))
        )
    inference.clear_cache()
    with index.db.session() as s, pytest.raises(ArtifactIntegrityError, match="not signed with this installation"):
        inference.load_model(s, v.id)
    assert not marker.exists()


def test_artifact_key_file_must_be_private(index, tmp_path):
    home = tmp_path / "home"
    settings = index.settings.with_(home=home)
    artifacts.signing_key(settings)
    os.chmod(home / artifacts.KEY_FILE, 0o644)
    with pytest.raises(ArtifactIntegrityError, match="must belong to you and be private"):
        artifacts.signing_key(settings)
    other = settings.with_(artifact_key="x" * 32)
    assert artifacts.signing_key(other) == b"x" * 32


def test_a_run_with_a_live_heartbeat_is_never_cleaned_up(index, small):
    with index.db.session() as s:
        run = TrainingRun(status="running", models=["knn"], heartbeat_at=func.now())
        s.add(run)
        s.flush()
        live = run.id
    with pytest.raises(TrainingInProgressError, match=f"training run {live} is still running"):
        training.train(index.db, "logreg", **QUICK)
    with index.db.session() as s:
        assert s.get(TrainingRun, live).status == "running"  # untouched
        s.execute(
            update(TrainingRun).where(TrainingRun.id == live).values(heartbeat_at=text("now() - interval '1 hour'"))
        )
    res = training.train(index.db, "logreg", **QUICK)  # the heartbeat stopped: stale, cleaned up
    assert res.status == "succeeded"
    with index.db.session() as s:
        assert s.get(TrainingRun, live).status == "failed"


def test_hnsw_index_builds_do_not_block_writes(index):
    """The HNSW index of a version is built CONCURRENTLY: inserts go on during the build."""
    dim, n = 64, 30_000
    with index.db.engine.begin() as conn:
        vid = conn.execute(
            text("INSERT INTO model_versions (kind, state) VALUES ('ann', 'candidate') RETURNING id")
        ).scalar()
        other = conn.execute(
            text("INSERT INTO model_versions (kind, state) VALUES ('cnn', 'candidate') RETURNING id")
        ).scalar()
        conn.execute(
            text("INSERT INTO tracks (path, status) SELECT '/t/' || g, 'indexed' FROM generate_series(1, :n) g"),
            {"n": n},
        )
        vec = f"'[' || array_to_string(ARRAY(SELECT random() FROM generate_series(1, {dim}) WHERE g > 0), ',') || ']'"
        conn.execute(
            text(
                f"INSERT INTO embeddings (model_version_id, track_id, space, embedding) "
                f"SELECT {vid}, t.id, 'ann', ({vec})::vector FROM tracks t, LATERAL (SELECT t.id AS g) x"
            )
        )
    build = threading.Thread(target=backfill.create_hnsw_index, args=(index.db, vid, dim))
    build.start()
    watcher = create_engine(url_str(index.db.url), isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with watcher.connect() as conn:
            deadline = time.monotonic() + 60
            while not conn.execute(text("SELECT count(*) FROM pg_stat_progress_create_index")).scalar():
                assert build.is_alive() and time.monotonic() < deadline, "the build never showed up"
                time.sleep(0.05)
            conn.execute(text("SET lock_timeout = '2s'"))
            try:
                conn.execute(
                    text(
                        f"INSERT INTO embeddings (model_version_id, track_id, space, embedding) "
                        f"SELECT {other}, 1, 'cnn', "
                        f"('[' || array_to_string(array_fill(0.5::float4, ARRAY[{dim}]), ',') || ']')::vector"
                    )
                )
            except OperationalError as exc:  # a lock timeout: the build blocks writes
                pytest.fail(f"an insert waited for the index build: {exc.orig}")
            still_building = conn.execute(text("SELECT count(*) FROM pg_stat_progress_create_index")).scalar()
    finally:
        build.join(120)
        watcher.dispose()
    assert still_building, "the build ended before the insert: the test proved nothing (make it bigger)"
    with index.db.engine.connect() as conn:
        valid = conn.execute(
            text("SELECT indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :n"),
            {"n": f"ix_emb_hnsw_v{vid}"},
        ).scalar()
    assert valid is True


def test_train_wait_notices_its_worker_dying(index, small, workers):
    worker = workers(index.settings, queues="train", concurrency=1)
    endless = {"ann": {"epochs": 100_000, "patience": 100_000}}
    killed = threading.Event()

    def kill_when_running() -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with index.db.session() as s:
                if s.execute(select(TrainingRun.id).where(TrainingRun.status == "running")).first():
                    break
            time.sleep(0.3)
        time.sleep(1.0)
        os.killpg(worker.proc.pid, signal.SIGKILL)
        killed.set()

    threading.Thread(target=kill_when_running, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(WorkerLostError, match="stopped answering"):
        index.train("ann", wait=True, timeout=600, net_overrides=endless, force=True, **QUICK)
    assert killed.is_set() and time.monotonic() - t0 < 300
