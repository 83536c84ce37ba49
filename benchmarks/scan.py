"""Registration at library scale: `musicindex ingest` of a folder of 1 000 000 new files, then again.

    python benchmarks/scan.py [--n 1000000] [--per-album 12] [--albums-per-artist 10] [--folder DIR] [--keep]

By default it creates a **fresh** tree of ``--n`` empty ``.mp3`` files in a temporary folder (deleted at the end):
``Artist 0042/Album 004217 - A Quiet Little Album/07 - Track seven of the album.mp3``, albums of ``--per-album``
tracks, artists of ``--albums-per-artist`` albums, names with spaces, as a music library is laid out. The files need
no audio: nothing is analysed and no worker runs. ``--folder DIR`` uses (and keeps) a tree made there by an earlier
run instead: a **cached** folder, labelled so in the output (its folders and inodes may be cold in the page cache,
or warm). Then, against a fresh database, it runs the real command ``musicindex ingest FOLDER --json`` three times
and prints, for each run, the wall time, the peak resident memory of the command (psutil, every 0.1 s), what it
reported, where the time went (its ``timings``) and the jobs added to the ``ingest`` queue:

1. **new**: every file is new: registered and queued;
2. **still queued**: the same files again while all their jobs are still waiting (a nightly rescan of a library that
   takes days to analyse): nothing new, no job added;
3. **unchanged**: the same files again once every track is indexed (rows of features and spectrograms of the current
   extractor versions are written for all of them by SQL): it only compares, nothing is queued.

The floor of a scan is measured in the same run, in a process of its own: walking the tree with ``os.scandir`` and
one ``stat`` per file (``stat floor``), what any scan of the folder must do.

The goals of issue 33: run 1 <= 30 s and <= 300 MB; run 3 <= 15 s; no duplicate jobs.
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

WORDS = ("quiet", "little", "night", "river", "blue", "song", "light", "dance", "old", "summer", "rain", "home")
STAT_FLOOR = r"""
import os, sys, time
t = time.perf_counter()
stack, n = [sys.argv[1]], 0
while stack:
    with os.scandir(stack.pop()) as it:
        for e in it:
            if e.is_dir():
                stack.append(e.path)
            else:
                e.stat()
                n += 1
print(n, time.perf_counter() - t)
"""


def generate(folder: Path, n: int, per_album: int, albums_per_artist: int) -> float:
    """``n`` empty files in an artist/album/track tree; reused when ``folder`` already holds this tree. Seconds."""
    stamp = folder / ".generated"
    spec = f"{n} {per_album} {albums_per_artist}"
    if stamp.exists() and stamp.read_text() == spec:
        return 0.0
    t = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    for a in range(-(-n // per_album)):
        title = " ".join(WORDS[(a * k) % len(WORDS)] for k in (1, 3, 7)).title()
        album = folder / f"Artist {a // albums_per_artist:04d}" / f"Album {a:06d} - {title}"
        album.mkdir(parents=True, exist_ok=True)
        for i in range(min(per_album, n - a * per_album)):
            name = f"{i + 1:02d} - Track {WORDS[i % len(WORDS)]} {i + 1} of the album.mp3"
            os.close(os.open(album / name, os.O_WRONLY | os.O_CREAT, 0o644))
    stamp.write_text(spec)
    return time.monotonic() - t


def stat_floor(folder: Path) -> tuple[int, float]:
    """(files, seconds) of walking ``folder`` with os.scandir and one stat per file, in a process of its own."""
    out = subprocess.run([sys.executable, "-c", STAT_FLOOR, str(folder)], capture_output=True, text=True, check=True)
    files, seconds = out.stdout.split()
    return int(files), float(seconds)


class Sampler(threading.Thread):
    """Peak RSS of a process (psutil), sampled every 0.1 s."""

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


def run_ingest(folder: Path, env: dict[str, str]) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MB, --json output) of `musicindex ingest FOLDER --json`."""
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
    if proc.returncode != 0:
        sys.exit(f"ingest failed ({proc.returncode}):\n{err[-3000:]}")
    return seconds, sampler.peak / 1e6, json.loads(out)


def mark_all_indexed(db) -> float:
    """Features and spectrograms of the current extractor versions for every track, tags of the current reader;
    all indexed."""
    from sqlalchemy import text

    from musicindex.audio import FEATURES_VERSION, SPECTROGRAM_VERSION
    from musicindex.ingest import stages
    from musicindex.ingest.library import TAGS_VERSION
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
                "UPDATE tracks SET status = 'indexed', indexed_at = now(), attempts = 0, tags_version = :tv, "
                "content_hash = md5(path) || md5(path), stage_versions = CAST(:sv AS jsonb)"
            ),
            {"tv": TAGS_VERSION, "sv": json.dumps({st.name: int(st.version) for st in stages.declared()})},
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE tracks"))
        c.execute(text("VACUUM ANALYZE track_features"))
        c.execute(text("VACUUM ANALYZE spectrograms"))
    return time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--per-album", type=int, default=12)
    ap.add_argument("--albums-per-artist", type=int, default=10)
    ap.add_argument("--folder", type=Path, default=None, help="a cached tree (made there and kept; reused)")
    ap.add_argument("--skip-unchanged", action="store_true", help="skip run 3 (all indexed)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (fresh tree and servers)")
    args = ap.parse_args()

    from benchmarks._common import bench_environment
    from musicindex.dispatch import Dispatcher
    from musicindex.localworker import settings_env

    with bench_environment("mi-bench-scan", keep=args.keep) as (settings, db, tmp):
        cached = args.folder is not None
        folder = args.folder if cached else tmp / "music"
        made = generate(folder, args.n, args.per_album, args.albums_per_artist)
        kind = "cached folder" + ("" if made else " (made by an earlier run)") if cached else "fresh tree"
        print(f"{kind}: {folder} ({args.n} files{f', made in {made:.0f} s' if made else ''})", flush=True)
        env = {**os.environ, **settings_env(settings)}
        dispatcher = Dispatcher(settings)
        client = dispatcher._redis()
        client.delete("ingest")  # a private database: no job of anyone else's
        rows = []
        load = os.getloadavg()
        floors = []

        def record(name: str) -> None:
            floors.append(stat_floor(folder))
            before = dispatcher.queue_depths()["ingest"]
            seconds, rss, out = run_ingest(folder, env)
            after = dispatcher.queue_depths()["ingest"]
            rows.append((name, seconds, rss, out, after - before, floors[-1][1]))
            stages = ", ".join(f"{k} {v:.1f}" for k, v in (out.get("timings") or {}).items())
            print(
                f"{name:13s} {seconds:6.1f} s  peak RSS {rss:4.0f} MB  new {out.get('new')} changed "
                f"{out.get('changed')} still pending {out.get('still_pending')} unchanged {out.get('unchanged')} "
                f"queued {out.get('queued')}, jobs added {after - before} (queue {after}); stat floor "
                f"{floors[-1][1]:.1f} s\n    seconds: {stages}",
                flush=True,
            )

        record("new")
        record("still queued")
        if not args.skip_unchanged:
            client.delete("ingest")
            print(f"(all tracks marked indexed by SQL in {mark_all_indexed(db):.0f} s; queue emptied)", flush=True)
            record("unchanged")
        client.close()
        print(
            f"\n{args.n} empty files, {kind}, albums of {args.per_album} tracks, {args.albums_per_artist} albums per "
            f"artist; load average at start {load[0]:.2f} {load[1]:.2f} ({os.cpu_count()} cores)"
        )
        print(f"  {'run':13s} {'seconds':>8s} {'peak RSS':>9s} {'queued':>8s} {'jobs added':>11s} {'stat floor':>11s}")
        for name, seconds, rss, out, added, floor in rows:
            print(f"  {name:13s} {seconds:8.1f} {rss:6.0f} MB {out.get('queued', 0):8d} {added:11d} {floor:9.1f} s")


if __name__ == "__main__":
    main()
