"""Watching folders (issue 16): real file operations, debounced so a file being copied is not analysed
half-written; the beat-scheduled rescan as the fallback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from musicindex.db.orm import Track, TrackFeatures
from musicindex.ingest.watch import ChangeCollector
from musicindex.localworker import settings_env
from musicindex.sample.library import write_audio
from musicindex.sample.synth import synthesize
from tests.conftest import REPO


class Event:
    def __init__(self, kind: str, path: str, dest: str | None = None, is_directory: bool = False):
        self.event_type, self.src_path, self.dest_path, self.is_directory = kind, path, dest, is_directory


def test_change_collector_settles_paths_before_handing_them_out(tmp_path):
    now = [100.0]
    c = ChangeCollector([str(tmp_path)], settle=2.0, clock=lambda: now[0])
    song, album = tmp_path / "a.flac", tmp_path / "album"
    song.write_bytes(b"x")
    c.dispatch(Event("created", str(song)))
    c.dispatch(Event("opened", str(tmp_path / "b.flac")))  # a read, e.g. a worker analysing it
    c.dispatch(Event("modified", str(tmp_path / "notes.txt")))  # not audio
    c.dispatch(Event("modified", str(tmp_path), is_directory=True))  # a folder's mtime
    now[0] += 1.0
    assert c.take_settled() == [] and c.pending() == 1
    now[0] += 1.5
    assert c.take_settled() == []  # quiet long enough: size and mtime noted
    song.write_bytes(b"xy")  # still being written, without an event (e.g. a network file system)
    now[0] += 1.5
    assert c.take_settled() == []
    now[0] += 1.5
    assert c.take_settled() == [str(song)]
    # a folder settles only when nothing under it moved for `settle` seconds
    album.mkdir()
    c.dispatch(Event("created", str(album), is_directory=True))
    now[0] += 1.5
    c.dispatch(Event("modified", str(album / "01.mp3")))
    now[0] += 1.5
    assert str(album) not in c.take_settled()
    now[0] += 2.5
    assert set(c.take_settled()) >= {str(album)}
    # a move touches both paths; a path outside the roots is no business of ours
    c.dispatch(Event("moved", str(tmp_path / "x.mp3"), str(tmp_path / "y.mp3")))
    c.dispatch(Event("created", "/elsewhere/z.mp3"))
    assert c.pending() == 2


def _wait_until(check: Callable[[], bool], timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _track(db, path: Path) -> Track | None:
    with db.session() as s:
        return s.execute(select(Track).where(Track.path == str(path))).scalar_one_or_none()


def _computed_at(db, track_id: int):
    with db.session() as s:
        return s.execute(select(TrackFeatures.computed_at).where(TrackFeatures.track_id == track_id)).scalar()


def _status(db, path: Path) -> str | None:
    t = _track(db, path)
    return None if t is None else t.status


def _wav_bytes(tmp_path: Path, genre: str, seed: int, seconds: float = 5.0) -> bytes:
    p = tmp_path / f"src-{genre}-{seed}.wav"
    write_audio(p, synthesize(genre, seconds, 22050, seed=seed), 22050)
    data = p.read_bytes()
    p.unlink()
    return data


@pytest.mark.slow
def test_watch_queues_new_changed_moved_and_deleted_files(index, workers, tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    (root / "a.wav").write_bytes(_wav_bytes(tmp_path, "jazz", 1))
    (root / "b.wav").write_bytes(_wav_bytes(tmp_path, "rock", 2))
    workers(index.settings, concurrency=2)
    stop, errors, batches = threading.Event(), [], []

    def run() -> None:
        try:
            index.ingestion.watch([root], settle=1.5, stop=stop, on_batch=batches.append)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    watcher = threading.Thread(target=run)
    watcher.start()
    try:
        _wait_until(lambda: _status(index.db, root / "a.wav") == _status(index.db, root / "b.wav") == "indexed")
        a_id = _track(index.db, root / "a.wav").id
        a_features = _computed_at(index.db, a_id)

        # 1. a file copied slowly (a pause shorter than the settle time between blocks) is not registered
        #    until it is complete
        data = _wav_bytes(tmp_path, "techno", 3, seconds=8.0)
        slow = root / "slow.wav"
        with open(slow, "wb") as fh:
            for i in range(10):
                fh.write(data[i * len(data) // 10 : (i + 1) * len(data) // 10])
                fh.flush()
                assert _track(index.db, slow) is None, "registered while it was being copied"
                time.sleep(0.3)
        _wait_until(lambda: _status(index.db, slow) == "indexed", what="the copied file indexed")
        assert _track(index.db, slow).size == len(data)

        # 2. changed: new content is analysed again
        b = _track(index.db, root / "b.wav")
        b_features = _computed_at(index.db, b.id)
        (root / "b.wav").write_bytes(_wav_bytes(tmp_path, "ambient", 4))
        _wait_until(lambda: (_computed_at(index.db, b.id) or b_features) > b_features, what="b re-analysed")
        _wait_until(lambda: _status(index.db, root / "b.wav") == "indexed")
        assert _track(index.db, root / "b.wav").content_hash != b.content_hash

        # 3. moved: the track keeps its id and its features (recognised by content, nothing recomputed)
        (root / "sub").mkdir()
        shutil.move(root / "a.wav", root / "sub" / "renamed.wav")
        _wait_until(lambda: _status(index.db, root / "sub" / "renamed.wav") == "indexed", what="the move")
        assert _track(index.db, root / "sub" / "renamed.wav").id == a_id
        assert _track(index.db, root / "a.wav") is None
        assert _computed_at(index.db, a_id) == a_features

        # 4. deleted: missing (kept, never deleted)
        slow.unlink()
        _wait_until(lambda: _status(index.db, slow) == "missing", what="the deletion")

        # 5. a whole folder copied in, and a folder renamed
        album = tmp_path / "album"
        album.mkdir()
        for i in range(3):
            (album / f"{i}.wav").write_bytes(_wav_bytes(tmp_path, "metal", 10 + i))
        shutil.copytree(album, root / "album")
        _wait_until(
            lambda: all(_status(index.db, root / "album" / f"{i}.wav") == "indexed" for i in range(3)),
            what="the copied folder",
        )
        ids = {i: _track(index.db, root / "album" / f"{i}.wav").id for i in range(3)}
        (root / "album").rename(root / "album 2")
        _wait_until(
            lambda: all(_status(index.db, root / "album 2" / f"{i}.wav") == "indexed" for i in range(3)),
            what="the renamed folder",
        )
        assert {i: _track(index.db, root / "album 2" / f"{i}.wav").id for i in range(3)} == ids
    finally:
        stop.set()
        watcher.join(30)
    assert not errors, errors
    assert batches and batches[0].new == 2  # the initial scan


def test_watch_command_registers_a_new_file_and_stops_on_sigterm(index, tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    env = {**os.environ, **settings_env(index.settings), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicindex", "watch", str(root), "--settle", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        time.sleep(2.5)  # started, initial scan of an empty folder done
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        (root / "new.mp3").write_bytes(_wav_bytes(tmp_path, "jazz", 5))  # no worker: it stays pending
        _wait_until(lambda: _status(index.db, root / "new.mp3") == "pending", what="the new file registered")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "watching" in out and "1 new" in out and "stopped watching" in out


def test_scheduled_rescan(index, tmp_path, empty_queue_ingest):
    """The fallback for folders without file events: a beat entry when MUSICINDEX_RESCAN_INTERVAL is set,
    rescanning MUSICINDEX_RESCAN_PATHS (or the roots of earlier ingests); a folder not there is skipped."""
    from workers.beat import beat_schedule

    assert "rescan" not in beat_schedule(index.settings)
    entry = beat_schedule(index.settings.with_(rescan_interval=900))["rescan"]
    assert entry["task"] == "musicindex.rescan" and entry["schedule"].total_seconds() == 900

    root, gone = tmp_path / "lib", tmp_path / "unmounted"
    root.mkdir()
    (root / "a.wav").write_bytes(_wav_bytes(tmp_path, "jazz", 6))
    index.settings = index.settings.with_(rescan_interval=900, rescan_paths=f"{root}{os.pathsep}{gone}")
    summary = index.ingestion.rescan()
    assert summary is not None and summary.new == 1
    (root / "b.wav").write_bytes(_wav_bytes(tmp_path, "rock", 7))
    index.settings = index.settings.with_(rescan_paths="")  # the roots of earlier ingests
    summary = index.ingestion.rescan()
    assert summary is not None and (summary.new, summary.unchanged, summary.missing) == (1, 0, 0)


@pytest.fixture
def empty_queue_ingest(base_settings):
    import redis as redis_lib

    from musicindex import servers

    client = redis_lib.Redis.from_url(servers.redis_client_url(base_settings.broker_url))
    client.flushdb()
    yield
    client.flushdb()
    client.close()
