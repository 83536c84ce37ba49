"""Ingest at library scale (issue 16): streamed set-based registration, no duplicate jobs, job sizes,
and the guarantees of the batched write path (each file ends once, SIGKILL-safe)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from musicindex import ingest, servers
from musicindex.db.orm import Spectrogram, Track, TrackFeatures
from musicindex.dispatch import Dispatcher
from musicindex.ingest.service import job_chunks
from musicindex.sample.library import write_audio
from musicindex.sample.synth import synthesize


def _empty_library(root: Path, n: int, per_dir: int = 100) -> None:
    for i in range(n):
        d = root / f"album-{i // per_dir:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:05d} track.mp3").touch()


def _queue_len(settings) -> int:
    return Dispatcher(settings).queue_depths()["ingest"]


@pytest.fixture
def empty_queue(base_settings):
    client = redis_lib.Redis.from_url(servers.redis_client_url(base_settings.broker_url))
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_job_sizes_shrink_towards_the_end_of_a_batch():
    """Guided self-scheduling: big jobs while there is plenty of work, single files at the end."""
    sizes = [len(c) for c in job_chunks(list(range(72)), 32, 2)]
    assert sum(sizes) == 72 and sizes == sorted(sizes, reverse=True)
    assert sizes[0] == 12 and sizes[-6:] == [1] * 6
    big = [len(c) for c in job_chunks(list(range(100_000)), 32, 2)]
    assert big[0] == 32 and len(big) < 100_000 / 32 + 40  # few messages for a big batch
    assert list(job_chunks([5, 6, 7], 32, 4)) == [[5], [6], [7]]


def test_scan_streams_and_reports_progress(tmp_path):
    """The scan yields files one by one (registration copies them into the database as they come)."""
    _empty_library(tmp_path / "lib", 250, per_dir=50)
    (tmp_path / "lib" / "notes.txt").write_text("x")
    report = ingest.ScanReport()
    seen: list[int] = []
    files = ingest.iter_scan([tmp_path / "lib"], report=report, on_progress=lambda r: seen.append(r.n_files))
    first = next(files)
    assert first.path.endswith("00000 track.mp3") and report.n_files == 1  # nothing read ahead
    rest = list(files)
    assert len(rest) == 249 and report.n_files == 250 and report.ignored == 1 and report.n_dirs == 6
    assert seen and seen[-1] == 250


def test_ingest_again_while_queued_adds_no_jobs(index, tmp_path, empty_queue):
    """A second ingest while the first batch waits in the queue (a nightly cron on a library that takes
    days): nothing is queued twice. Jobs that were lost (the queue emptied) are queued again."""
    root = tmp_path / "lib"
    _empty_library(root, 3000)
    first = index.ingest([root])
    assert (first.new, first.queued, len(first.send_ids)) == (3000, 3000, 3000)
    jobs = _queue_len(index.settings)
    assert jobs == first.jobs and jobs < 3000 / 8
    again = index.ingest([root])
    assert (again.new, again.changed, again.still_pending, again.held) == (0, 0, 3000, 3000)
    assert (again.queued, again.send_ids, again.jobs) == (3000, [], 0)
    assert _queue_len(index.settings) == jobs  # no duplicate job
    empty_queue.delete("ingest")  # the jobs were lost (a broker without persistence restarted)
    third = index.ingest([root])
    assert (third.still_pending, third.held, len(third.send_ids)) == (3000, 0, 3000)
    assert _queue_len(index.settings) == third.jobs > 0
    with index.db.session() as s:
        assert s.execute(select(func.count()).select_from(Track)).scalar() == 3000


def test_reregistration_of_an_unchanged_indexed_library_queues_nothing(index, tmp_path, empty_queue):
    root = tmp_path / "lib"
    root.mkdir()
    for i in range(4):
        write_audio(root / f"{i}.wav", synthesize("rock", 3.0, 22050, seed=i), 22050)
    reg = ingest.register(index.db, [root])
    ingest.process_tracks(index.db, reg.queued_ids)
    again = index.ingest([root])
    assert (again.queued, again.unchanged, again.jobs, again.missing) == (0, 4, 0, 0)


def _killer_hook(tmp_path: Path) -> str:
    """sitecustomize.py for worker processes: analysing a file named killer* kills the process (SIGKILL)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, signal, sys\n"
        "if sys.argv[1:2] == ['worker'] or sys.orig_argv[1:3] == ['-m', 'workers']:  # the command, or what it execs\n"
        "    import musicindex.audio as _audio\n"
        "    _real = _audio.read_audio\n"
        "    def read_audio(path, *args, **kwargs):\n"
        "        if os.path.basename(os.fsdecode(path)).startswith('killer'):\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return _real(path, *args, **kwargs)\n"
        "    _audio.read_audio = read_audio\n"
    )
    return str(site)


@pytest.mark.slow
def test_a_file_that_kills_its_worker_is_failed_and_its_chunk_goes_on(index, workers, tmp_path, monkeypatch):
    """Batched writes: a chunk's results are written every few files, so a SIGKILL loses the unwritten
    ones: they are analysed again, one at a time with their attempt counted, and the file that kills the
    worker every time is failed after three attempts. Every other file of the chunk ends indexed, once."""
    hook = _killer_hook(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [hook, os.getenv("PYTHONPATH")])))
    root = tmp_path / "lib"
    root.mkdir()
    names = ["a", "b", "killer", "c", "d", "e"]
    for i, name in enumerate(names):
        write_audio(root / f"{name}.wav", synthesize("jazz", 3.0, 22050, seed=i), 22050)
    reg = ingest.register(index.db, [root])
    workers(index.settings, concurrency=1)
    Dispatcher(index.settings).ingest(reg.queued_ids)  # one job holds the whole chunk
    prog = index.wait_for(reg.queued_ids, timeout=240, stall=5)
    assert (prog.pending, prog.indexed, prog.failed) == (0, 5, 1)
    with index.db.session() as s:
        rows = {Path(t.path).stem: t for t in s.execute(select(Track)).scalars()}
        assert s.execute(select(func.count()).select_from(TrackFeatures)).scalar() == 5
        assert s.execute(select(func.count()).select_from(Spectrogram)).scalar() == 5
    assert rows["killer"].status == "failed" and "did not finish after 3 attempts" in rows["killer"].error
    assert all(rows[n].status == "indexed" and rows[n].attempts == 0 for n in names if n != "killer")


def test_unique_ids_for_parallel_registrations_of_overlapping_roots(index, tmp_path):
    """Overlapping roots in one call and in two calls register each file once."""
    root = tmp_path / "lib"
    _empty_library(root, 120, per_dir=40)
    reg = ingest.register(index.db, [root, root / "album-001", root / "album-001" / "00040 track.mp3"])
    assert reg.new == 120
    reg2 = ingest.register(index.db, [root / "album-002"])
    assert (reg2.new, reg2.queued_ids[:1] != [], reg2.missing) == (0, True, 0)
    with index.db.session() as s:
        assert s.execute(select(func.count(func.distinct(Track.path)))).scalar() == 120
