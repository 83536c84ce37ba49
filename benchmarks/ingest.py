"""Ingestion throughput: a generated library through real Celery workers, end to end.

    python benchmarks/ingest.py [--clips 200] [--seconds 30] [--concurrency N]

Generates ``--clips`` synthesized clips in mixed formats (wav, flac, ogg, mp3, aiff, au)
plus 10 bad files, ingests them into a fresh database with a real worker, and prints:
files per second, CPU use of the machine while ingesting, the peak resident memory of the
worker's processes, that every good file is indexed with 43 finite features and every
bad one failed with a reason, and the time of a second ingest (which does no audio work).
Runs on the embedded servers under a temporary MUSICINDEX_HOME unless URLs are set.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select, text

from benchmarks._common import bench_environment
from musicindex.app import MusicIndex
from musicindex.db.orm import TrackFeatures
from musicindex.localworker import LocalWorker
from musicindex.sample import badfiles
from musicindex.sample.synth import generate_library, synthesize, write_audio


def make_bad(root: Path) -> tuple[list[Path], Path]:
    bad = list(badfiles.make_bad_set(root).values())
    png = root / "cover-art.ogg"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(4096))
    bad.append(png)
    good_mp3 = root / "whole.mp3"
    write_audio(good_mp3, synthesize("rock", 10.0, 22050, seed=1), 22050, "mp3")
    cut = root / "cut-short.mp3"
    cut.write_bytes(good_mp3.read_bytes()[:600])
    good_mp3.unlink()
    bad.append(cut)
    vanishing = badfiles.vanishing_file(root)
    bad.append(vanishing)
    return bad, vanishing


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_child, self.peak_total, self.cpu = pid, 0, 0, []
        self.stop_flag = threading.Event()

    def run(self) -> None:
        psutil.cpu_percent(None)
        while not self.stop_flag.wait(0.25):
            try:
                main = psutil.Process(self.pid)
                procs = [main, *main.children(recursive=True)]
                rss = [p.memory_info().rss for p in procs]
            except psutil.Error:
                continue
            self.peak_total = max(self.peak_total, sum(rss))
            self.peak_child = max(self.peak_child, max(rss[1:], default=0))
            self.cpu.append(psutil.cpu_percent(None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30.0, help="clip length")
    ap.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    with bench_environment("mi-bench-ingest", keep=args.keep) as (settings, db, tmp):
        run(args, settings, db, tmp)


def run(args, settings, db, tmp: Path) -> None:
    worker = None
    try:
        index = MusicIndex(db, settings)

        lib = tmp / "library"
        t = time.monotonic()
        genres = ["ambient", "techno", "rock", "jazz", "classical", "hiphop", "metal", "reggae"]
        per = -(-args.clips // len(genres))
        tracks = generate_library(
            lib,
            per_genre=per,
            genres=genres,
            duration=args.seconds,
            formats=("wav", "flac", "ogg", "mp3", "aiff", "au"),
            seed=7,
        )
        for extra in tracks[args.clips :]:
            extra.path.unlink()
        bad, vanishing = make_bad(lib / "bad")
        print(
            f"library: {args.clips} clips of {args.seconds:.0f} s + {len(bad)} bad files "
            f"(generated in {time.monotonic() - t:.1f} s)"
        )

        worker = LocalWorker(
            settings, "ingest", args.concurrency, f"bench-{uuid.uuid4().hex[:6]}", log_path=tmp / "worker.log"
        )
        worker.wait_ready()
        sampler = RssSampler(worker.proc.pid)
        sampler.start()
        from musicindex import ingest as ingest_lib
        from musicindex.dispatch import Dispatcher

        t0 = time.monotonic()
        reg = ingest_lib.register(db, [lib], label_from="folder")
        vanishing.unlink()  # deleted between the scan and its analysis
        for i in range(0, len(reg.queued_ids), settings.ingest_chunk):
            Dispatcher(settings).ingest(reg.queued_ids[i : i + settings.ingest_chunk])
        prog = index.wait_for(reg.queued_ids, timeout=3600, poll=0.25)
        wall = time.monotonic() - t0
        sampler.stop_flag.set()
        sampler.join()

        with db.engine.connect() as c:
            feats = np.array([np.asarray(v) for v in c.execute(select(TrackFeatures.vec)).scalars()])
            reasons = c.execute(text("SELECT path, error FROM tracks WHERE status='failed' ORDER BY path")).all()
            spec_bytes = c.execute(text("SELECT avg(octet_length(data)) FROM spectrograms")).scalar()
        finite = bool(np.isfinite(feats).all()) and feats.shape[1] == 43
        t1 = time.monotonic()
        again = index.ingest([lib], wait=True)
        second = time.monotonic() - t1
        cpu = float(np.mean(sampler.cpu)) if sampler.cpu else float("nan")

        print(f"\ningest of {prog.total} files with {args.concurrency} worker processes on {os.cpu_count()} cores")
        print(f"  wall time                 {wall:8.1f} s")
        print(f"  files per second          {prog.total / wall:8.2f}")
        print(
            f"  audio seconds per second  {args.clips * args.seconds / wall:8.0f}  (whole clips; "
            f"the 30 s window is what is analysed)"
        )
        print(f"  machine CPU while ingesting {cpu:6.0f} %  (all cores = 100 %)")
        print(f"  peak RSS per pool process {sampler.peak_child / 2**20:8.0f} MiB")
        print(f"  peak RSS of the worker    {sampler.peak_total / 2**20:8.0f} MiB (main + pool)")
        print(f"  spectrogram bytes/track   {spec_bytes:8.0f}")
        print(f"  indexed {prog.indexed}, failed {prog.failed}; 43 finite features each: {finite}")
        for path, reason in reasons:
            print(f"    failed {Path(path).name:28s} {reason}")
        print(f"  second ingest: {again.queued} queued, {again.unchanged} unchanged, {second:.2f} s")
        ok = prog.indexed == args.clips and prog.failed == len(bad) and finite and again.queued == 0
        print("RESULT:", "ok" if ok else "MISMATCH")
    finally:
        if worker is not None:
            worker.stop()


if __name__ == "__main__":
    main()
