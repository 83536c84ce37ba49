"""Faults and hostile input: nothing is lost, nothing is duplicated, the batch goes on."""

from __future__ import annotations

import os
import resource
import signal
import struct
import threading
import time
import uuid
from pathlib import Path

import pytest
from mutagen.flac import FLAC
from sqlalchemy import func, select, text

from musicindex import ingest, services
from musicindex.app import MusicIndex
from musicindex.config import Settings
from musicindex.db.orm import Spectrogram, Track, TrackFeatures
from musicindex.db.session import Database
from musicindex.localworker import settings_env
from musicindex.sample import badfiles
from musicindex.sample.synth import generate_library, synthesize, write_audio
from tests.conftest import WorkerProcess, run_cli

INJECTION = "x'; DROP TABLE tracks; --"


def _tracks(db) -> dict[str, Track]:
    with db.session() as s:
        return {t.path: t for t in s.execute(select(Track)).scalars()}


def _count(db, model) -> int:
    with db.session() as s:
        return s.execute(select(func.count()).select_from(model)).scalar()


def test_hostile_paths_and_tags(index, tmp_path):
    root = tmp_path / "lib"
    names = [
        'it\'s "quoted".wav',
        "semi;colon; DROP TABLE tracks.wav",
        "new\nline.wav",
        "日本語 ♫ café.flac",
        f"{INJECTION}.wav",
    ]
    root.mkdir()
    for i, name in enumerate(names):
        write_audio(root / name, synthesize("jazz", 4.0, 22050, seed=i), 22050)
    tagged = root / "tags.flac"
    write_audio(tagged, synthesize("rock", 4.0, 22050, seed=9), 22050, "flac")
    meta = FLAC(tagged)
    meta["title"] = "<script>alert('x')</script>" + "A" * 100_000
    meta["artist"] = INJECTION
    meta["album"] = "Robert'); DROP TABLE students;--"
    meta["genre"] = "<b>bold</b>"
    meta.save()

    reg = ingest.register(index.db, [root], label_from="folder")
    assert reg.new == len(names) + 1
    outcomes = ingest.process_tracks(index.db, reg.queued_ids, label_from_tag=True)
    assert [o.status for o in outcomes] == ["indexed"] * (len(names) + 1)
    tracks = _tracks(index.db)
    for name in names:
        assert str(root / name) in tracks  # stored exactly, newline and quotes included
    t = tracks[str(tagged)]
    assert t.artist == INJECTION and t.album.startswith("Robert'")
    assert t.title.startswith("<script>") and len(t.title) <= 1000  # very long tags are cut
    assert t.label == "<b>bold</b>" and t.label_source == "tag"
    assert _count(index.db, Track) == len(names) + 1  # the table is still there

    env = settings_env(index.settings)
    res = run_cli("ingest", INJECTION, env=env)  # an injection string as a path: a clean error
    assert res.returncode == 2 and "no such file or folder" in res.stderr
    res = run_cli("status", "--json", env=env)
    assert res.returncode == 0 and '"indexed": 6' in res.stdout


def test_deeply_nested_folders(index, tmp_path):
    deep = tmp_path / "lib"
    for i in range(300):
        deep = deep / f"d{i % 10}"
    deep.mkdir(parents=True)
    write_audio(deep / "bottom.wav", synthesize("techno", 3.0, 22050, seed=1), 22050)
    reg = ingest.register(index.db, [tmp_path / "lib"])
    assert reg.new == 1
    assert ingest.process_tracks(index.db, reg.queued_ids)[0].status == "indexed"


def _sparse_wav(path: Path, size: int, sr: int = 44100, channels: int = 2) -> None:
    """A WAV header declaring ``size`` bytes of 16-bit PCM, then a hole: a sparse file."""
    data_bytes = size - 44
    header = b"RIFF" + struct.pack("<I", size - 8) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * channels * 2, channels * 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(size)


@pytest.mark.slow
def test_sparse_file_of_several_gigabytes(index, tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    big = root / "huge.wav"
    _sparse_wav(big, 3 * 2**30)
    assert os.stat(big).st_blocks * 512 < 1 << 20  # really sparse
    write_audio(root / "normal.wav", synthesize("rock", 4.0, 22050, seed=2), 22050)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reg = ingest.register(index.db, [root])
    outcomes = {o.track_id: o for o in ingest.process_tracks(index.db, reg.queued_ids)}
    rss_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    tracks = _tracks(index.db)
    t = tracks[str(big)]
    assert t.status == "failed" and "silent" in t.error  # decoded only its window: zeros
    assert t.size == 3 * 2**30
    assert tracks[str(root / "normal.wav")].status == "indexed"
    assert rss_growth_mib < 300, rss_growth_mib  # never loaded whole
    assert len(outcomes) == 2


def test_file_that_changes_while_it_is_read(index, tmp_path):
    root = tmp_path / "lib"
    path = root / "growing.wav"
    root.mkdir()
    write_audio(path, synthesize("ambient", 8.0, 22050, seed=3), 22050)
    reg = ingest.register(index.db, [root])
    stop = threading.Event()

    def writer() -> None:  # another program appending to the file the whole time
        with open(path, "ab") as fh:
            while not stop.is_set():
                fh.write(b"\0" * 4096)
                fh.flush()
                time.sleep(0.001)

    th = threading.Thread(target=writer)
    th.start()
    try:
        time.sleep(0.05)
        outcome = ingest.process_tracks(index.db, reg.queued_ids)[0]
    finally:
        stop.set()
        th.join()
    assert outcome.status == "failed" and "changed while it was being analysed" in outcome.reason
    # once it is stable, the next ingest analyses it again (size and mtime differ)
    reg2 = ingest.register(index.db, [root])
    assert reg2.queued_ids == reg.queued_ids
    assert ingest.process_tracks(index.db, reg2.queued_ids)[0].status == "indexed"


def test_sql_in_labels_and_csv_is_data(index, tmp_path):
    root = tmp_path / "lib"
    lib = generate_library(root, per_genre=2, genres=["jazz"], duration=2.0, seed=4)
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(f'path,label\n{lib[0].path},"{INJECTION}"\n{lib[1].path},<i>html</i>\n')
    ingest.register(index.db, [root], label_from=f"csv:{csv_file}")
    labels = {t.label for t in _tracks(index.db).values()}
    assert labels == {INJECTION, "<i>html</i>"}


# --------------------------------------------------------------------------- server faults
@pytest.fixture
def private_stack(tmp_path):
    """Embedded PostgreSQL and Redis of this test alone (so they can be stopped and started)."""
    home = tmp_path / "h"
    home.mkdir()
    base = Settings.from_env({}, home=home, task_time_limit=20, visibility_timeout=25, ingest_chunk=2)
    settings = base.with_(database_url=services.ensure_database(base), broker_url=services.ensure_broker(base))
    db = Database(settings.database_url)
    db.upgrade()
    yield settings, db
    db.dispose()
    services.stop(base)


def _library(tmp_path, n_per_genre=6) -> Path:
    root = tmp_path / "lib"
    generate_library(
        root, per_genre=n_per_genre, genres=["techno", "jazz", "rock"], duration=40.0, formats=("ogg", "flac"), seed=21
    )
    badfiles.make_bad_set(root / "bad")
    return root


def _assert_all_once(db, expected_total: int, expected_failed: int) -> None:
    with db.session() as s:
        statuses = dict(s.execute(select(Track.status, func.count()).group_by(Track.status)).all())
        assert statuses == {"indexed": expected_total - expected_failed, "failed": expected_failed}, statuses
        assert s.execute(text("SELECT count(*) - count(DISTINCT path) FROM tracks")).scalar() == 0
        assert _count(db, TrackFeatures) == expected_total - expected_failed
        assert _count(db, Spectrogram) == expected_total - expected_failed
        orphans = s.execute(
            text(
                "SELECT (SELECT count(*) FROM track_features f LEFT JOIN tracks t ON t.id = f.track_id "
                "WHERE t.id IS NULL) + (SELECT count(*) FROM spectrograms p LEFT JOIN tracks t ON t.id = p.track_id "
                "WHERE t.id IS NULL)"
            )
        ).scalar()
        assert orphans == 0


def _wait_indexed(db, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as s:
            if s.execute(select(func.count()).where(Track.status != "pending")).scalar() >= n:
                return
        time.sleep(0.1)
    raise AssertionError("the batch did not get under way")


@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgresql", "redis"])
def test_server_stopped_and_started_mid_batch(private_stack, tmp_path, server):
    """PostgreSQL (workers retry with backoff) or Redis (AOF, reconnection) restarted mid-batch."""
    settings, db = private_stack
    root = _library(tmp_path)
    worker = WorkerProcess(settings, "ingest", 2, f"{server[:2]}-{uuid.uuid4().hex[:6]}", tmp_path / "worker.log")
    try:
        worker.wait_ready()
        index = MusicIndex(db, settings)
        summary = index.ingest([root])
        _wait_indexed(db, 4)
        paths = services.paths_for(settings)
        target = services.EmbeddedPostgres(paths, settings) if server == "postgresql" else services.EmbeddedRedis(paths)
        assert target.stop()
        time.sleep(3)  # workers now hit connection errors
        with services._locked(paths):
            target.start()
        prog = index.wait_for(list(range(1, summary.queued + 1)), timeout=300)
        assert prog.pending == 0
        _assert_all_once(db, summary.queued, 7)
        if server == "postgresql":
            log = worker.log_path.read_text()
            assert "Retry in" in log or "OperationalError" in log
    finally:
        worker.stop()


@pytest.mark.slow
def test_whole_worker_killed_jobs_are_redelivered(private_stack, tmp_path):
    """SIGKILL of the worker and all its processes: its reserved jobs come back after the visibility timeout."""
    settings, db = private_stack
    root = _library(tmp_path)
    first = WorkerProcess(settings, "ingest", 2, f"k1-{uuid.uuid4().hex[:6]}", tmp_path / "w1.log")
    second = None
    try:
        first.wait_ready()
        index = MusicIndex(db, settings)
        summary = index.ingest([root])
        _wait_indexed(db, 4)
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
        second = WorkerProcess(settings, "ingest", 2, f"k2-{uuid.uuid4().hex[:6]}", tmp_path / "w2.log")
        second.wait_ready()
        prog = index.wait_for(list(range(1, summary.queued + 1)), timeout=300)
        assert prog.pending == 0
        _assert_all_once(db, summary.queued, 7)
    finally:
        first.stop()
        if second is not None:
            second.stop()


@pytest.mark.slow
def test_two_ingests_and_a_retrain_at_the_same_time(index, workers, tmp_path):
    """Two ingests of overlapping folders and a retrain run together: every file once, queries answer."""
    from musicindex.ml import training

    root = tmp_path / "lib"
    generate_library(root / "a", per_genre=6, genres=["techno", "ambient", "jazz"], duration=6.0, seed=31)
    generate_library(root / "b", per_genre=6, genres=["techno", "ambient", "jazz"], duration=6.0, seed=32)
    badfiles.make_bad_set(root / "b" / "bad")
    first = ingest.register(index.db, [root / "a"], label_from="folder")
    ingest.process_tracks(index.db, first.queued_ids)  # something to train on
    workers(index.settings, queues="ingest,embed", concurrency=2)

    errors: list[BaseException] = []
    results: dict[str, object] = {}

    def run(name, fn):
        try:
            results[name] = fn()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def ingest_all():
        idx = MusicIndex.connect(settings=index.settings)
        try:
            return idx.ingest([root], wait=True, label_from="folder", timeout=300)
        finally:
            idx.close()

    threads = [
        threading.Thread(target=run, args=("ingest1", ingest_all)),
        threading.Thread(target=run, args=("ingest2", ingest_all)),
        threading.Thread(
            target=run,
            args=(
                "train",
                lambda: training.train(
                    index.db, ["knn", "ann", "kmeans"], quick=True, seed=0, cv_folds=3, net_cv_folds=0
                ),
            ),
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert results["train"].status == "succeeded"
    total = 36 + 7
    with index.db.session() as s:
        assert s.execute(select(func.count()).select_from(Track)).scalar() == total
        assert s.execute(text("SELECT count(*) - count(DISTINCT path) FROM tracks")).scalar() == 0
    prog = index.wait_for(list(range(1, total + 1)), timeout=300)
    assert prog.pending == 0
    _assert_all_once(index.db, total, 7)
    # tracks indexed while the retrain ran get their rows from the active models (embed queue / catch-up)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with index.db.session() as s:
            missing = s.execute(
                text(
                    "SELECT count(*) FROM tracks t WHERE t.status = 'indexed' AND NOT EXISTS ("
                    "SELECT 1 FROM embeddings e JOIN model_versions v ON v.id = e.model_version_id "
                    "WHERE v.kind = 'ann' AND v.state = 'active' "
                    "AND e.track_id = t.id)"
                )
            ).scalar()
        if missing == 0:
            break
        time.sleep(0.5)
    assert missing == 0
    some = index.similar(1, k=5, space="ann")
    assert len(some.items) == 5
