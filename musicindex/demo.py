"""`musicindex demo`: the end-to-end tour on the embedded servers.

1. start the embedded PostgreSQL + pgvector and Redis (or use the configured URLs),
   migrate the schema, print the doctor report;
2. generate a sample library of synthesized music in clearly different styles under
   ``MUSICINDEX_HOME/demo-library`` (reused by the next run);
3. start real Celery workers, ingest the library with a live progress bar, and show
   what was stored.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.table import Table

DEMO_GENRES = ("ambient", "techno", "rock", "jazz", "classical", "hiphop", "metal", "reggae")
PER_GENRE = 12
CLIP_SECONDS = 30.0


@contextlib.contextmanager
def running_worker(console: Console, queues: str = "ingest,embed,train", concurrency: int | None = None,
                   log_path: Path | None = None) -> Iterator[subprocess.Popen]:
    """A real `musicindex worker` subprocess for the duration of the block."""
    from musicindex import taskclient
    from musicindex.config import get_settings

    settings = get_settings()
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    name = f"demo-{os.getpid()}"
    cmd = [sys.executable, "-m", "musicindex.cli", "worker", "-Q", queues, "-n", f"{name}@%h"]
    if concurrency:
        cmd += ["-c", str(concurrency)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not any(n.startswith(name + "@") for n in taskclient.ping_workers(settings, timeout=0.5)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the demo worker did not start (log: {log_path})")
            time.sleep(0.3)
        console.print(f"worker [bold]{name}[/] started ({settings.worker_concurrency} processes)")
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if log is not subprocess.DEVNULL:
            log.close()


def run_demo(console: Console) -> None:
    from musicindex import services
    from musicindex.api import MusicIndex
    from musicindex.cli import _progress_bar, print_doctor
    from musicindex.synth import generate_library

    t0 = time.monotonic()
    console.rule("[bold]musicindex demo")
    console.print("1. servers: starting the embedded PostgreSQL + pgvector and Redis if needed ...")
    services.start()
    index = MusicIndex.connect(check_schema=False)
    index.upgrade()
    print_doctor(index.doctor(worker_timeout=0.5))

    home = services.paths_for().home
    library = home / "demo-library"
    console.print(f"\n2. sample library: {len(DEMO_GENRES)} styles x {PER_GENRE} clips of {CLIP_SECONDS:.0f} s "
                  f"in {library}")
    t = time.monotonic()
    tracks = generate_library(library, per_genre=PER_GENRE, genres=DEMO_GENRES, duration=CLIP_SECONDS,
                              formats=("wav", "flac", "ogg", "mp3"), seed=2026)
    console.print(f"   {len(tracks)} files ready in {time.monotonic() - t:.1f} s "
                  "(formats wav, flac, ogg, mp3; tags written with mutagen)")

    console.print("\n3. ingest: real Celery workers analyse every file")
    with running_worker(console, log_path=home / "demo-worker.log"):
        update, finish = _progress_bar()
        try:
            summary = index.ingest([library], wait=True, label_from="folder", on_progress=update)
        finally:
            finish()
    console.print(f"   scanned {summary.scanned}: {summary.new} new, {summary.changed} changed, "
                  f"{summary.unchanged} unchanged (a second run does no audio work)")
    status = index.status()
    table = Table("status", "tracks", title="the index")
    for key in ("indexed", "pending", "failed", "missing"):
        table.add_row(key, str(status.counts.get(key, 0)))
    console.print(table)
    _show_features(console, index)
    index.close()
    console.print(f"\ndemo finished in {time.monotonic() - t0:.1f} s. Data lives in {home}; "
                  "`musicindex services stop` stops the servers.")


def _show_features(console: Console, index) -> None:
    from sqlalchemy import text

    with index.db.session() as s:
        rows = s.execute(text(
            "SELECT t.label, count(*) AS n, avg(f.tempo) AS tempo, avg(f.spectral_centroid_mean) AS centroid, "
            "avg(f.rms_mean) AS rms, avg(f.zero_crossing_rate_mean) AS zcr "
            "FROM tracks t JOIN track_features f ON f.track_id = t.id "
            "WHERE t.status = 'indexed' GROUP BY t.label ORDER BY t.label")).all()
    table = Table("genre (label)", "tracks", "tempo", "centroid Hz", "rms", "zcr",
                  title="stored features, averaged per genre")
    for r in rows:
        table.add_row(str(r.label), str(r.n), f"{r.tempo:.0f}", f"{r.centroid:.0f}", f"{r.rms:.3f}",
                      f"{r.zcr:.3f}")
    console.print(table)
