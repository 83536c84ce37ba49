"""A soak run: mixed traffic from many clients while an ingest, an embed backfill and a retrain run.

    python benchmarks/soak.py [--minutes 10] [--clients 32] [--max-requests 200000] [--tracks 240]

Loopback only, bounded in time and in requests. In one run:

1. a private data folder with the embedded servers; a synthesized library of ``--tracks`` tracks ingested with
   ``musicindex ingest --wait`` by ``musicindex worker`` (defaults: every queue, one process per core), quick
   models trained, and ``musicindex serve`` started with an API token and, when the ``user`` command exists, a
   Subsonic user;
2. for ``--minutes``: ``--clients`` threads send a mix of requests, each one timed: the web API (health, search,
   track details, similar, recommend, the map, the status), audio streaming with HTTP Range (the web API's and
   the Subsonic ``stream``), and the Subsonic API (ping, getAlbumList2, getAlbum, search3, getSimilarSongs2,
   getCoverArt) when a user exists; meanwhile, in the background: an ingest of a second folder of new files
   (``--wait``), an embed backfill (``musicindex embed --wait`` after the musicnn rows of a third of the library
   were dropped, as for a library indexed before the space existed) and a retrain (``musicindex train --wait``);
3. the figures: requests, errors by status (the goal is no 5xx at all), p50/p99 latency per kind, the resident
   memory of the server and of every worker process at the start and at the end of the soak (the goal: flat),
   and every track indexed, or failed with a reason, at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import bench_environment
from benchmarks.ingest import cpu_model
from musicindex.localworker import settings_env

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "musicindex", *args],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        check=False,
    )


def _rss_mb(pids: list[int]) -> dict[int, float]:
    import psutil

    out = {}
    for pid in pids:
        try:
            out[pid] = psutil.Process(pid).memory_info().rss / 1e6
        except psutil.Error:
            continue
    return out


def _family(pid: int) -> list[int]:
    import psutil

    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return []


class Traffic:
    """The clients: each thread picks a request kind at random and records (kind, status, seconds)."""

    def __init__(self, base: str, token: str, track_ids: list[int], subsonic: dict[str, str] | None, stop_at: float,
                 max_requests: int):  # fmt: skip
        self.base, self.token, self.ids, self.subsonic = base, token, track_ids, subsonic
        self.stop_at, self.max_requests = stop_at, max_requests
        self.records: list[tuple[str, int, float]] = []
        self.lock = threading.Lock()
        self.kinds = self._kinds()

    def _kinds(self) -> list[tuple[str, str, dict[str, str]]]:
        t = random.Random(1)
        auth = {"Authorization": f"Bearer {self.token}"}  # with accounts, every library read needs a credential
        kinds = [
            ("health", "/api/health", {}),
            ("search", "/api/tracks?q=" + t.choice(["jazz", "rock", "night", "a", "the"]), auth),
            ("track", "/api/tracks/{id}", auth),
            ("similar", "/api/tracks/{id}/similar?k=10", auth),
            ("recommend", "/api/recommend?liked={id}&k=10", auth),
            ("status", "/api/status", auth),
            ("map", "/api/map?limit=500", auth),
            ("audio range", "/api/tracks/{id}/audio", {**auth, "Range": "bytes=1000-65535"}),
        ]
        if self.subsonic:
            q = "&".join(f"{k}={v}" for k, v in self.subsonic.items())
            kinds += [
                ("rest ping", f"/rest/ping.view?{q}", {}),
                ("rest albumlist2", f"/rest/getAlbumList2.view?type=random&size=20&{q}", {}),
                ("rest search3", f"/rest/search3.view?query=&songCount=100&{q}", {}),
                ("rest similar2", f"/rest/getSimilarSongs2.view?id=ar-1&count=20&{q}", {}),
                ("rest stream range", f"/rest/stream.view?id=tr-{{id}}&{q}", {"Range": "bytes=0-65535"}),
                ("rest cover", f"/rest/getCoverArt.view?id=al-1&size=200&{q}", {}),
            ]
        return kinds

    def client(self, seed: int) -> None:
        import httpx2 as httpx

        rng = random.Random(seed)
        with httpx.Client(base_url=self.base, timeout=60.0) as http:
            while time.monotonic() < self.stop_at:
                with self.lock:
                    if len(self.records) >= self.max_requests:
                        return
                kind, path, headers = rng.choice(self.kinds)
                url = path.replace("{id}", str(rng.choice(self.ids)))
                t0 = time.perf_counter()
                try:
                    status = http.get(url, headers=headers).status_code
                except httpx.HTTPError:
                    status = 599  # no answer at all counts as a server error
                with self.lock:
                    self.records.append((kind, status, time.perf_counter() - t0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--max-requests", type=int, default=200_000)
    ap.add_argument("--tracks", type=int, default=240, help="tracks of the library before the soak")
    ap.add_argument("--new-tracks", type=int, default=120, help="tracks ingested during the soak")
    args = ap.parse_args()
    with bench_environment("mi-bench-soak") as (settings, db, tmp):
        db.dispose()
        run(args, settings, tmp)


def run(args, settings, tmp: Path) -> None:
    from musicindex.sample.library import generate_library

    token = secrets.token_hex(16)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MUSICINDEX_")}, **settings_env(settings)}
    env["MUSICINDEX_API_TOKEN"] = token
    env.pop("MUSICINDEX_WORKER_CONCURRENCY", None)
    per_genre = max(1, args.tracks // 8)
    generate_library(tmp / "library", per_genre=per_genre, duration=20.0, formats=("ogg", "mp3", "flac"), seed=1,
                     pictures=True)  # fmt: skip
    generate_library(tmp / "incoming", per_genre=max(1, args.new_tracks // 8), duration=20.0, formats=("ogg",),
                     seed=2)  # fmt: skip
    worker = subprocess.Popen([sys.executable, "-m", "musicindex", "worker"], env=env, cwd=str(REPO),
                              stdout=open(tmp / "worker.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
                              start_new_session=True)  # fmt: skip
    server = None
    try:
        first = _cli(env, "ingest", str(tmp / "library"), "--wait", "--label-from", "folder", "--json")
        if first.returncode != 0:
            raise SystemExit(f"the first ingest failed: {first.stderr[-2000:]}")
        trained = _cli(env, "train", "--wait", "--quick", "--models", "knn,logreg,kmeans", "--json")
        if trained.returncode != 0:
            raise SystemExit(f"training failed: {trained.stderr[-2000:]}")
        subsonic = None
        user = _cli(env, "user", "add", "soak", "--password-stdin", stdin="soak-password\n")
        if user.returncode == 0:
            subsonic = {"u": "soak", "p": "soak-password", "v": "1.16.1", "c": "soak", "f": "json"}
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "musicindex", "serve", "--port", str(port)], env=env,
                                  cwd=str(REPO), stdout=open(tmp / "server.log", "w"),  # noqa: SIM115
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/api/health")
        ids = _track_ids(settings)
        rss_start = {"server": _rss_mb(_family(server.pid)), "worker": _rss_mb(_family(worker.pid))}
        stop_at = time.monotonic() + args.minutes * 60
        traffic = Traffic(base, token, ids, subsonic, stop_at, args.max_requests)
        background = _background(env, settings, tmp, stop_at)
        threads = [threading.Thread(target=traffic.client, args=(i,), daemon=True) for i in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        jobs = [b.join() for b in background]
        rss_end = {"server": _rss_mb(_family(server.pid)), "worker": _rss_mb(_family(worker.pid))}
        _report(args, traffic.records, elapsed, rss_start, rss_end, jobs, settings)
    finally:
        for proc in (server, worker):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()


class _Job(threading.Thread):
    def __init__(self, name: str, fn):
        super().__init__(daemon=True)
        self.name_, self.fn = name, fn
        self.result: tuple[str, float, str] | None = None

    def run(self) -> None:
        t0 = time.monotonic()
        try:
            res = self.fn()
            ok = "ok" if res.returncode == 0 else f"exit {res.returncode}: {res.stderr.strip()[-300:]}"
        except Exception as exc:  # noqa: BLE001 - the report says what went wrong
            ok = f"{type(exc).__name__}: {exc}"
        self.result = (self.name_, time.monotonic() - t0, ok)

    def join(self, timeout: float | None = None) -> tuple[str, float, str]:  # type: ignore[override]
        super().join(timeout)
        return self.result or (self.name_, float("nan"), "did not finish")


def _background(env, settings, tmp: Path, stop_at: float) -> list[_Job]:
    """The ingest of new files, an embed backfill and a retrain, started one after the other a little apart."""

    def drop_some_embeddings() -> subprocess.CompletedProcess:
        from sqlalchemy import create_engine, text

        engine = create_engine(settings.database_url)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM embeddings WHERE space = 'musicnn' AND track_id % 3 = 0"))
            conn.execute(text("DELETE FROM track_tags WHERE track_id % 3 = 0"))
        engine.dispose()
        return _cli(env, "embed", "--wait", "--json")

    jobs = [
        _Job("ingest of new files", lambda: _cli(env, "ingest", str(tmp / "incoming"), "--wait", "--json")),
        _Job("embed backfill", drop_some_embeddings),
        _Job("retrain", lambda: _cli(env, "train", "--wait", "--quick", "--force", "--models", "knn,logreg,kmeans")),
    ]
    for i, job in enumerate(jobs):
        threading.Timer(5.0 + 20.0 * i, job.start).start()
    return jobs


def _wait_http(url: str, timeout: float = 120) -> None:
    import httpx2 as httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer at {url}")


def _track_ids(settings) -> list[int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        ids = [int(r[0]) for r in conn.execute(text("SELECT id FROM tracks WHERE status = 'indexed'"))]
    engine.dispose()
    return ids


def _report(args, records, elapsed, rss_start, rss_end, jobs, settings) -> None:
    import numpy as np
    from sqlalchemy import create_engine, text

    print(f"CPU: {cpu_model()}; load average now {os.getloadavg()[0]:.2f}")
    statuses = Counter(s for _, s, _ in records)
    errors5 = sum(n for s, n in statuses.items() if s >= 500)
    print(
        f"\nsoak: {len(records)} requests from {args.clients} clients in {elapsed:.0f} s "
        f"({len(records) / max(elapsed, 1e-9):.0f}/s); by status {dict(sorted(statuses.items()))}; 5xx: {errors5}"
    )
    by_kind: dict[str, list[float]] = defaultdict(list)
    refused: Counter[str] = Counter()  # answers a working client should never get (429 is the slots' own answer)
    for kind, status, seconds in records:
        by_kind[kind].append(seconds)
        if 400 <= status < 500 and status != 429:
            refused[kind] += 1
    print(f"  {'kind':<20} {'n':>7} {'p50 ms':>8} {'p99 ms':>8} {'4xx':>6}")
    for kind, vals in sorted(by_kind.items()):
        a = np.asarray(vals) * 1000
        print(f"  {kind:<20} {a.size:7d} {np.percentile(a, 50):8.1f} {np.percentile(a, 99):8.1f} {refused[kind]:6d}")
    alls = np.asarray([s for _, _, s in records]) * 1000
    if alls.size:
        print(f"  {'all':<20} {alls.size:7d} {np.percentile(alls, 50):8.1f} {np.percentile(alls, 99):8.1f}")
    for name, seconds, ok in jobs:
        print(f"background: {name}: {ok} in {seconds:.0f} s")
    for role in ("server", "worker"):
        start, end = rss_start[role], rss_end[role]
        pairs = ", ".join(f"{start.get(p, float('nan')):.0f} -> {end.get(p, float('nan')):.0f} MB" for p in start)
        print(f"RSS {role} processes (start -> end): {pairs}")
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT status, count(*) FROM tracks GROUP BY status")).all())
        silent = conn.execute(
            text("SELECT count(*) FROM tracks WHERE status = 'failed' AND coalesce(error, '') = ''")
        ).scalar_one()
    engine.dispose()
    print(f"tracks at the end: {json.dumps(counts)}; failed without a reason: {silent}")


if __name__ == "__main__":
    main()
