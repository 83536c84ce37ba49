"""Reliability round 3 (#22), ingestion: failed tracks retried, roots reached through links, files swapped while
they are analysed."""

from __future__ import annotations

import json
import os
import time

from sqlalchemy import text

from musicindex import ingest
from musicindex.ingest import lifecycle, trackfile
from musicindex.localworker import settings_env
from musicindex.sample.library import write_audio
from musicindex.sample.synth import synthesize
from tests.conftest import run_cli


def _wav(path, seed=0, seconds=4.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, synthesize("jazz", seconds, 22050, seed), 22050)
    return path


def _status(index):
    with index.db.engine.connect() as conn:
        return {
            os.path.basename(p): (s, r, a)
            for p, s, r, a in conn.execute(text("SELECT path, status, retryable, auto_retries FROM tracks"))
        }


def test_environment_failures_are_retried_once_and_retry_failed_retries_all(index, tmp_path, monkeypatch):
    """Item 6: a track failed by the environment (here: out of memory) is retried once by the next ingest of its
    folder; a file that is simply bad is not; `--retry-failed` analyses every failed track again."""
    root = tmp_path / "lib"
    _wav(root / "good.wav")
    _wav(root / "unlucky.wav", seed=1)
    (root / "bad.wav").write_bytes(b"RIFF not really a wave file" * 10)
    from musicindex import audio

    original = audio.read_audio  # the one decode of a track's analysis

    def unlucky(path, *args, **kwargs):
        if os.path.basename(os.readlink(path) if path.startswith("/proc/") else path) == "unlucky.wav":
            raise MemoryError
        return original(path, *args, **kwargs)

    monkeypatch.setattr(audio, "read_audio", unlucky)
    reg = ingest.register(index.db, [root])
    ingest.process_tracks(index.db, reg.queued_ids)
    st = _status(index)
    assert st["good.wav"][0] == "indexed"
    assert st["unlucky.wav"] == ("failed", True, 0) and st["bad.wav"][:2] == ("failed", False)

    # the next ingest retries the environment's failure once (still unlucky: failed again), not the bad file
    again = ingest.register(index.db, [root])
    assert again.retried == 1 and len(again.queued_ids) == 1
    ingest.process_tracks(index.db, again.queued_ids)
    assert _status(index)["unlucky.wav"] == ("failed", True, 1)
    assert ingest.register(index.db, [root]).retried == 0  # once only

    monkeypatch.setattr(audio, "read_audio", original)
    # --retry-failed through the CLI: every failed track is queued again
    env = settings_env(index.settings)
    res = run_cli("ingest", str(root), "--retry-failed", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["retried"] == 2
    with index.db.engine.connect() as conn:
        pending = [int(r[0]) for r in conn.execute(text("SELECT id FROM tracks WHERE status = 'pending'"))]
    ingest.process_tracks(index.db, pending)
    st = _status(index)
    assert st["unlucky.wav"] == ("indexed", False, 0) and st["bad.wav"][0] == "failed"


def test_failures_recorded_as_retryable_are_the_environments(index, tmp_path):
    """The flag follows the cause: a time limit, a lost worker, memory and I/O errors are the environment's."""
    root = tmp_path / "lib"
    ids = list(ingest.register(index.db, [_wav(root / f"{i}.wav", seed=i) for i in range(3)]).queued_ids)
    with index.db.session() as s:
        lifecycle.mark_failed_many(s, [(ids[0], "analysis exceeded the job time limit", True), (ids[1], "bad", False)])
        lifecycle.mark_failed(s, ids[2], "I/O error", retryable=True)
    reg = ingest.register(index.db, [root])
    assert sorted(reg.queued_ids) == sorted([ids[0], ids[2]])


def test_a_root_reached_through_a_symlink_is_the_same_tracks(index, tmp_path):
    """Item 9: `ingest alias/goodlink` where goodlink -> lib/good registers no second track per file."""
    good = tmp_path / "lib" / "good"
    for i in range(3):
        _wav(good / f"{i}.wav", seed=i)
    (tmp_path / "alias").mkdir()
    (tmp_path / "alias" / "goodlink").symlink_to(good, target_is_directory=True)
    first = ingest.register(index.db, [tmp_path / "alias" / "goodlink"])
    assert first.new == 3
    ingest.process_tracks(index.db, first.queued_ids)
    again = ingest.register(index.db, [good])
    assert (again.new, again.unchanged, again.missing) == (0, 3, 0)
    with index.db.engine.connect() as conn:
        paths = sorted(r[0] for r in conn.execute(text("SELECT path FROM tracks")))
    assert paths == sorted(str(good.resolve() / f"{i}.wav") for i in range(3))


def test_a_file_swapped_for_a_fifo_while_analysed_neither_blocks_nor_lies(index, tmp_path, monkeypatch):
    """Items 10 and 11: the file is opened once and everything is read from that descriptor; a FIFO swapped in
    after the checks cannot block the worker, and the failure says what happened (not "silent")."""
    root = tmp_path / "lib"
    victim = _wav(root / "victim.wav")
    _wav(root / "other.wav", seed=3)
    reg = ingest.register(index.db, [root])
    real_hash = trackfile.fd_sha256

    def swap_then_hash(fd, *args, **kwargs):
        if os.readlink(f"/proc/self/fd/{fd}") == str(victim) and os.path.isfile(victim):
            os.unlink(victim)
            os.mkfifo(victim)  # whoever opens it by name now would block
        return real_hash(fd, *args, **kwargs)

    monkeypatch.setattr(trackfile, "fd_sha256", swap_then_hash)
    started = time.monotonic()
    outcomes = {o.track_id: o for o in ingest.process_tracks(index.db, reg.queued_ids)}
    assert time.monotonic() - started < 60
    st = _status(index)
    assert st["victim.wav"][0] == "failed" and st["other.wav"][0] == "indexed"
    reasons = [o.reason or "" for o in outcomes.values() if o.status == "failed"]
    assert len(reasons) == 1 and "replaced this one while it was being analysed" in reasons[0]
    assert "silent" not in reasons[0]
