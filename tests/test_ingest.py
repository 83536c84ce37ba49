"""Ingestion against real PostgreSQL, real Redis and real Celery workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, select, text

from musicindex import ingest
from musicindex.db.orm import Spectrogram, Track, TrackFeatures
from musicindex.errors import InvalidArgumentError
from musicindex.index import MusicIndex
from musicindex.localworker import settings_env
from musicindex.sample import badfiles
from musicindex.sample.library import generate_library
from musicindex.vocab import FEATURE_NAMES
from tests.conftest import REPO, run_cli

FORMATS = ("wav", "flac", "ogg", "mp3", "aiff", "au")
# substrings expected in the failure reason of each bad file
BAD_REASONS = {
    "zero_byte": "empty",
    "random_mp3": "",
    "random_wav": "",
    "truncated_header": "",
    "too_short": "too short",
    "silence": "silent",
    "nan_inf": "non-finite",
}


def _rows(db, model):
    with db.session() as s:
        return s.execute(select(model)).scalars().all()


def _by_path(db) -> dict[str, Track]:
    return {t.path: t for t in _rows(db, Track)}


def _feature_times(db) -> dict[int, object]:
    return {f.track_id: f.computed_at for f in _rows(db, TrackFeatures)}


@pytest.fixture
def library(tmp_path) -> Path:
    root = tmp_path / "library"
    generate_library(root, per_genre=6, genres=["techno", "ambient"], duration=6.0, formats=FORMATS, seed=1)
    return root


def test_ingest_end_to_end_with_bad_and_odd_files(index, settings_for, workers, library, tmp_path):
    bad = badfiles.make_bad_set(library / "bad")
    odd = badfiles.make_odd_good_set(library)
    badfiles.symlink_loop(library / "loopy")
    (library / "notes.txt").write_text("not audio, ignored")
    workers(index.settings, concurrency=2)

    seen: list = []
    summary = index.ingest([library], wait=True, label_from="folder", on_progress=seen.append, timeout=300)
    good = 12 + len(odd) + 1  # + the valid file inside the looping folder
    assert summary.queued == good + len(bad)
    # one pass: every indexed file is embedded in the musicnn space by the ingest job itself
    assert summary.final == {"indexed": good, "failed": len(bad), "pending": 0, "embedded": good}
    assert summary.loops >= 1 and summary.ignored == 1
    assert seen and seen[-1].pending == 0

    tracks = _by_path(index.db)
    assert len(tracks) == good + len(bad)
    for name, path in bad.items():
        t = tracks[str(path)]
        assert t.status == "failed", (name, t.status)
        assert t.error and BAD_REASONS[name] in t.error.lower(), (name, t.error)
    feats = {f.track_id: f for f in _rows(index.db, TrackFeatures)}
    specs = {s.track_id: s for s in _rows(index.db, Spectrogram)}
    indexed = [t for t in tracks.values() if t.status == "indexed"]
    assert len(indexed) == good
    for t in indexed:
        vec = np.array([getattr(feats[t.id], n) for n in FEATURE_NAMES])
        assert vec.shape == (43,) and np.isfinite(vec).all(), t.path
        assert np.allclose(np.asarray(feats[t.id].vec), vec, rtol=1e-5, atol=1e-6)
        assert specs[t.id].n_frames > 0 and len(specs[t.id].data) > 0
        assert t.content_hash and len(t.content_hash) == 64
        assert t.duration and t.sample_rate and t.channels
    six = tracks[str(odd["multichannel_96k"])]
    assert (six.channels, six.sample_rate, six.status) == (6, 96000, "indexed")
    uni = tracks[str(odd["unicode_path"])]
    assert uni.status == "indexed" and "é" in uni.path
    techno = [t for t in indexed if "/techno/" in t.path]
    assert techno and all(t.label == "techno" and t.label_source == "folder" for t in techno)
    assert any(t.title and t.artist for t in indexed)  # tags read with mutagen

    # a second ingest does no audio work
    before = _feature_times(index.db)
    again = index.ingest([library], wait=True, label_from="folder", timeout=60)
    assert again.queued == 0 and again.unchanged == good + len(bad)
    assert _feature_times(index.db) == before

    # status: counts and failure reasons
    report = index.status()
    assert report.counts["indexed"] == good and report.counts["failed"] == len(bad)
    assert {p for p, _ in report.failures} == {str(p) for p in bad.values()}
    assert len(report.workers) == 1


def test_file_deleted_between_scan_and_analysis(index, workers, tmp_path):
    """A file that vanishes after the scan is `missing` (not failed), and queued again once it is back."""
    from musicindex.dispatch import Dispatcher

    root = tmp_path / "lib"
    generate_library(root, per_genre=2, genres=["techno"], duration=4.0, formats=("wav",), seed=3)
    victim = sorted(root.rglob("*.wav"))[0]
    content = victim.read_bytes()
    reg = ingest.register(index.db, [root])
    victim.unlink()
    Dispatcher(index.settings).ingest(reg.queued_ids)
    workers(index.settings, concurrency=1)
    prog = index.wait_for(reg.queued_ids, timeout=120)
    assert (prog.indexed, prog.failed, prog.missing) == (1, 0, 1)
    t = _by_path(index.db)[str(victim)]
    assert t.status == "missing" and "vanished" in t.error
    # a missing track is kept (never deleted); when its file is back, the next ingest analyses it
    victim.write_bytes(content)
    summary = index.ingest([root], wait=True, timeout=120)
    assert (summary.changed, summary.final) == (1, {"indexed": 1, "failed": 0, "pending": 0, "embedded": 1})
    assert _by_path(index.db)[str(victim)].status == "indexed"


def test_incremental_changed_touched_moved_deleted(index, tmp_path):
    """Library functions called directly (no queue): what gets re-analysed and what keeps its id."""
    root = tmp_path / "lib"
    generate_library(root, per_genre=4, genres=["rock"], duration=4.0, formats=("flac",), seed=5)
    files = sorted(root.rglob("*.flac"))
    reg = ingest.register(index.db, [root])
    ingest.process_tracks(index.db, reg.queued_ids)
    ids = {t.path: t.id for t in _rows(index.db, Track)}
    times = _feature_times(index.db)

    changed, touched, moved, deleted = files
    y, sr = sf.read(changed)
    sf.write(changed, y[::-1] * 0.5, sr, format="FLAC")  # new content
    os.utime(touched, (time.time() + 10, time.time() + 10))  # same content, new mtime
    new_home = root / "elsewhere" / "renamed.flac"
    new_home.parent.mkdir()
    shutil.move(moved, new_home)
    deleted.unlink()

    reg2 = ingest.register(index.db, [root])
    assert reg2.missing == 2  # moved (old path) and deleted
    outcomes = {o.track_id: o for o in ingest.process_tracks(index.db, reg2.queued_ids)}
    tracks = _by_path(index.db)
    after = _feature_times(index.db)

    assert after[ids[str(changed)]] > times[ids[str(changed)]]  # analysed again
    assert tracks[str(touched)].status == "indexed"
    assert after[ids[str(touched)]] == times[ids[str(touched)]]  # hash equal: no audio work
    assert tracks[str(new_home)].id == ids[str(moved)]  # moved: keeps its id and its features
    assert after[ids[str(moved)]] == times[ids[str(moved)]]
    assert any(o.status == "moved" for o in outcomes.values())
    assert str(moved) not in tracks
    assert tracks[str(deleted)].status == "missing"
    assert len(tracks) == 4


def test_two_concurrent_ingests_make_no_duplicates(index, tmp_path):
    root = tmp_path / "lib"
    generate_library(root, per_genre=5, genres=["jazz", "techno"], duration=2.0, formats=("wav",), seed=7)
    results, errors = [], []

    def run():
        try:
            idx = MusicIndex.connect(settings=index.settings)
            results.append(ingest.register(idx.db, [root]))
            idx.close()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with index.db.session() as s:
        assert s.execute(select(func.count()).select_from(Track)).scalar() == 10
        assert s.execute(text("SELECT count(DISTINCT path) FROM tracks")).scalar() == 10
    assert sorted(r.new for r in results) == [0, 0, 10]


def test_labels_from_tag_and_csv(index, tmp_path):
    root = tmp_path / "lib"
    lib = generate_library(root, per_genre=2, genres=["reggae", "metal"], duration=3.0, formats=("mp3",), seed=9)
    reg = ingest.register(index.db, [root])
    ingest.process_tracks(index.db, reg.queued_ids, label_from_tag=True)
    tracks = _by_path(index.db)
    for st in lib:
        t = tracks[str(st.path)]
        assert t.label_source == "tag" and t.label.lower() == st.genre

    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label\n" + "".join(f"{st.path},mood-{i % 2}\n" for i, st in enumerate(lib)))
    ingest.register(index.db, [root], label_from=f"csv:{csv_file}")
    tracks = _by_path(index.db)
    assert {tracks[str(st.path)].label for st in lib} == {"mood-0", "mood-1"}
    assert all(tracks[str(st.path)].label_source == "csv" for st in lib)

    with pytest.raises(InvalidArgumentError, match="folder', 'tag' or 'csv:FILE'"):
        ingest.register(index.db, [root], label_from="mood")
    with pytest.raises(InvalidArgumentError, match="no such file"):
        ingest.register(index.db, [tmp_path / "nope"])


OLDER_FEATURES = "jsonb_set(stage_versions, '{features}', to_jsonb((stage_versions ->> 'features')::int - 1))"


def test_reanalyse_outdated_reruns_only_that_extractor(index, tmp_path):
    root = tmp_path / "lib"
    generate_library(root, per_genre=3, genres=["classical"], duration=3.0, formats=("ogg",), seed=11)
    reg = ingest.register(index.db, [root])
    ingest.process_tracks(index.db, reg.queued_ids)
    feat_times = _feature_times(index.db)
    spec_times = {s.track_id: s.computed_at for s in _rows(index.db, Spectrogram)}
    stale = sorted(feat_times)[0]
    with index.db.session() as s:  # as if this track's features came from an older extractor (its stage record)
        s.execute(text(f"UPDATE tracks SET stage_versions = {OLDER_FEATURES} WHERE id = :t"), {"t": stale})
    reg2 = ingest.register(index.db, [root], reanalyse_outdated=False)
    assert reg2.queued_ids == []
    reg3 = ingest.register(index.db, [root])
    assert reg3.queued_ids == [stale]
    ingest.process_tracks(index.db, reg3.queued_ids)
    new_feat = _feature_times(index.db)
    new_spec = {s.track_id: s.computed_at for s in _rows(index.db, Spectrogram)}
    assert new_feat[stale] > feat_times[stale]
    assert new_spec == spec_times  # the spectrogram extractor did not run
    assert all(new_feat[t] == feat_times[t] for t in feat_times if t != stale)


def test_symlinks_outside_roots_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    generate_library(outside, per_genre=1, genres=["techno"], duration=2.0, formats=("wav",), seed=2)
    root = tmp_path / "root"
    generate_library(root, per_genre=1, genres=["jazz"], duration=2.0, formats=("wav",), seed=2)
    (root / "link").symlink_to(outside)
    badfiles.symlink_loop(root / "loop")
    report = ingest.scan([root])
    assert len(report.files) == 2 and report.skipped_links and report.loops  # jazz clip + the one in the loop
    assert len(ingest.scan([root], follow_symlinks=True).files) == 3


def test_ingest_worker_does_not_import_tensorflow():
    code = "import sys, workers.tasks; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    res = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "False"]


def test_cli_ingest_wait_and_status(index, workers, tmp_path):
    root = tmp_path / "lib"
    generate_library(root, per_genre=2, genres=["hiphop"], duration=3.0, formats=("wav",), seed=4)
    badfiles.make_bad_set(root / "bad")
    workers(index.settings, concurrency=2)
    env = settings_env(index.settings)
    res = run_cli("ingest", str(root), "--wait", "--label-from", "folder", env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "2 indexed" in res.stdout and "7 failed" in res.stdout
    res = run_cli("status", "--json", env=env)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["counts"] == {"indexed": 2, "failed": 7}
    assert len(report["failures"]) == 7 and all(reason for _, reason in report["failures"])
    res = run_cli("ingest", str(tmp_path / "does-not-exist"), env=env)
    assert res.returncode == 2 and "no such file or folder" in res.stderr


@pytest.mark.slow
def test_sigkill_worker_mid_batch_every_file_ends_once(index, workers, tmp_path):
    root = tmp_path / "lib"
    generate_library(
        root, per_genre=10, genres=["techno", "jazz", "rock", "ambient"], duration=40.0, formats=("ogg", "mp3"), seed=13
    )
    badfiles.make_bad_set(root / "bad")
    settings = index.settings.with_(ingest_chunk=4)
    index.settings = settings
    w = workers(settings, concurrency=2)
    summary = index.ingest([root], wait=False)
    assert summary.queued == 47
    # wait until the batch is under way, then SIGKILL a pool process in the middle of its job
    ids = [t.id for t in _rows(index.db, Track)]
    deadline = time.monotonic() + 120
    while ingest.progress(index.db, ids).indexed < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    victims = w.children()
    assert victims, "the worker has no pool processes"
    os.kill(victims[0], signal.SIGKILL)
    prog = index.wait_for(ids, timeout=600)
    assert prog.pending == 0
    assert (prog.indexed, prog.failed) == (40, 7)
    with index.db.session() as s:
        assert s.execute(select(func.count()).select_from(Track)).scalar() == 47
        assert s.execute(select(func.count()).select_from(TrackFeatures)).scalar() == 40
        assert s.execute(select(func.count()).select_from(Spectrogram)).scalar() == 40
        # the kill interrupted a job: its files were analysed again (and stored once); a success resets attempts
        assert s.execute(select(func.max(Track.attempts)).where(Track.status == "indexed")).scalar() == 0
