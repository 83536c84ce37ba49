"""Registration at library scale: `musicindex ingest` of a folder of 1 000 000 new files, then again.

    python benchmarks/scan.py [--n 1000000] [--per-dir 1000] [--folder DIR] [--skip-indexed]

Generates ``--n`` empty ``.mp3`` files (they need no audio: nothing is analysed, no worker
runs) in folders of ``--per-dir`` (kept in ``--folder``, default a cached folder under /tmp,
for the next run), then runs the real command ``musicindex ingest FOLDER`` three times
against a fresh database and prints, for each run, the wall time, the peak resident memory
of the command (``ru_maxrss`` of the child), what it reported and the number of jobs in the
``ingest`` queue afterwards:

1. **new**: every file is new: registered and queued;
2. **still queued**: the same files again while all their jobs are still waiting (a nightly
   cron on a library that takes days to analyse): nothing new, no job added;
3. **indexed**: the same files again once every track is indexed (rows of features and
   spectrograms of the current extractor versions are written for all of them by SQL):
   nothing queued.

The figures of issue 16: run 1 <= 120 s and <= 500 MB; runs 2 and 3 <= 60 s, no duplicate jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def generate(folder: Path, n: int, per_dir: int) -> None:
    """``n`` empty files named like a music library, reused when the folder already holds them."""
    stamp = folder / ".generated"
    if stamp.exists() and stamp.read_text() == f"{n} {per_dir}":
        return
    t = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(-(-n // per_dir)):
        sub = folder / f"artist-{d // 100:04d}" / f"album-{d:06d}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(min(per_dir, n - d * per_dir)):
            (sub / f"{i:04d} - track number {i} of album {d}.mp3").touch()
    stamp.write_text(f"{n} {per_dir}")
    print(f"generated {n} empty files in {time.monotonic() - t:.0f} s")


class Sampler(threading.Thread):
    """Peak RSS of a process and its children (psutil), sampled every 0.1 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak = pid, 0
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.done.wait(0.1):
            try:
                self.peak = max(self.peak, psutil.Process(self.pid).memory_info().rss)
            except psutil.Error:
                return


def run_ingest(folder: Path, env: dict[str, str]) -> tuple[float, float, dict, str]:
    """(seconds, peak RSS in MB, --json output, stderr tail) of `musicindex ingest FOLDER --json`."""
    t = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicindex", "ingest", str(folder), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    sampler = Sampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.monotonic() - t
    sampler.done.set()
    rss = max(sampler.peak, 0) / 1e6
    if proc.returncode != 0:
        sys.exit(f"ingest failed ({proc.returncode}):\n{err[-3000:]}")
    return seconds, rss, json.loads(out), err[-400:]


def mark_all_indexed(db) -> float:
    """Features and spectrograms of the current extractor versions for every track; all indexed."""
    from sqlalchemy import text

    from musicindex.audio import FEATURES_VERSION, SPECTROGRAM_VERSION
    from musicindex.vocab import FEATURE_NAMES, N_FEATURES

    t = time.monotonic()
    vec = "[" + ",".join(["0.5"] * N_FEATURES) + "]"
    cols = ", ".join(FEATURE_NAMES)
    vals = ", ".join(["0.5"] * N_FEATURES)
    with db.engine.begin() as c:
        c.execute(text("DELETE FROM track_features"))
        c.execute(text("DELETE FROM spectrograms"))
        c.execute(
            text(
                f"INSERT INTO track_features (track_id, version, vec, {cols}) "
                f"SELECT id, :v, CAST(:vec AS vector), {vals} FROM tracks"
            ),
            {"v": FEATURES_VERSION, "vec": vec},
        )
        c.execute(
            text(
                "INSERT INTO spectrograms (track_id, version, n_mels, n_frames, data) "
                "SELECT id, :v, 96, 1, '\\x00'::bytea FROM tracks"
            ),
            {"v": SPECTROGRAM_VERSION},
        )
        c.execute(
            text(
                "UPDATE tracks SET status = 'indexed', indexed_at = now(), attempts = 0, "
                "content_hash = md5(path) || md5(path)"
            )
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE tracks"))
    return time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--per-dir", type=int, default=1000)
    ap.add_argument("--folder", type=Path, default=None, help="where the empty files are (kept)")
    ap.add_argument("--skip-indexed", action="store_true", help="skip run 3 (all indexed)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    folder = args.folder or Path(f"/tmp/mi-scan-{args.n}")
    generate(folder, args.n, args.per_dir)

    from benchmarks._common import bench_environment
    from musicindex.dispatch import Dispatcher
    from musicindex.localworker import settings_env

    with bench_environment("mi-bench-scan", keep=args.keep) as (settings, db, _tmp):
        env = {**os.environ, **settings_env(settings)}
        dispatcher = Dispatcher(settings)
        client = dispatcher._redis()
        client.delete("ingest")  # a private database: no job of anyone else's
        rows = []
        load = os.getloadavg()

        def record(name: str) -> None:
            before = dispatcher.queue_depths()["ingest"]
            seconds, rss, out, _ = run_ingest(folder, env)
            after = dispatcher.queue_depths()["ingest"]
            rows.append((name, seconds, rss, out, after - before, after))
            timings = out.get("timings") or {}
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
            print(
                f"{name:14s} {seconds:7.1f} s  peak RSS {rss:6.0f} MB  new {out.get('new')} "
                f"changed {out.get('changed')} still pending {out.get('still_pending', '-')} "
                f"unchanged {out.get('unchanged')} queued {out.get('queued')} "
                f"jobs added {after - before} (queue {after}){'; ' + stages if stages else ''}",
                flush=True,
            )

        record("new")
        record("still queued")
        if not args.skip_indexed:
            client.delete("ingest")
            print(f"(all tracks marked indexed by SQL in {mark_all_indexed(db):.0f} s; queue emptied)")
            record("indexed")
        client.close()
        print(
            f"\n{args.n} empty files in folders of {args.per_dir}; load average at start "
            f"{load[0]:.2f} {load[1]:.2f} ({os.cpu_count()} cores)"
        )
        print(f"  {'run':14s} {'seconds':>8s} {'peak RSS':>9s} {'queued':>8s} {'jobs added':>11s}")
        for name, seconds, rss, out, added, _ in rows:
            print(f"  {name:14s} {seconds:8.1f} {rss:7.0f} MB {out.get('queued', 0):8d} {added:11d}")


if __name__ == "__main__":
    main()
