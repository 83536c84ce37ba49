"""HTTP benchmark of ``musicindex serve``: similar over HTTP, the track page and track search.

    python benchmarks/http_api.py [--n 100000] [--requests 1000] [--concurrency 1,32] [--pages 200]
                              [--search-n 1000000] [--max-seconds 120]

Fills a fresh database (a private embedded server under a temporary MUSICINDEX_HOME, or
MUSICINDEX_DATABASE_URL) with N tracks and an active ``features`` version (43-d vectors loaded with
binary COPY, its HNSW index built as training does: benchmarks/query.py's fill), a genre model
with a prediction per track and a kmeans clustering; starts the real ``musicindex serve`` (uvicorn,
one process) on a loopback port and measures, with keep-alive HTTP/1.1 clients on loopback:

* ``GET /api/tracks/{id}/similar?k=10`` with 1 client, then with 32 concurrent clients (each run
  bounded by a request count and a time limit): p50 / p95 / p99 of the client-observed latency,
  throughput, errors;
* the track page ``GET /tracks/{id}`` (details, genre, cluster, 10 similar tracks, server-rendered):
  the server's own time (``Server-Timing: app;dur=``) and the client-observed time;
* ``GET /api/tracks?q=...`` (full-text search, two words from the titles) at N tracks, and at
  ``--search-n`` tracks when given (more track rows are added for that part only).

Run it on a calm machine: the load average is printed before and after.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import http.client
import os
import random
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import text

from benchmarks._common import bench_environment
from benchmarks.query import fill
from musicindex.localworker import settings_env

WORDS = [
    "blue",
    "quiet",
    "electric",
    "golden",
    "midnight",
    "paper",
    "silver",
    "broken",
    "velvet",
    "northern",
    "harbour",
    "engine",
    "garden",
    "signal",
    "river",
    "lanterns",
    "static",
    "orchard",
    "mirrors",
    "tide",
    "summer",
    "winter",
    "falling",
    "rising",
    "city",
    "desert",
    "ocean",
    "mountain",
    "dream",
    "shadow",
    "light",
    "fire",
    "rain",
    "storm",
    "heart",
    "road",
    "train",
    "station",
    "morning",
    "evening",
    "star",
    "moon",
    "sun",
    "glass",
    "stone",
    "iron",
    "gold",
    "wild",
]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def add_models_and_titles(db, n: int) -> None:
    """Titles from a word list (for search), a genre model with a prediction per track, a kmeans."""
    words = "ARRAY[" + ",".join(f"'{w.capitalize()}'" for w in WORDS) + "]"
    k = len(WORDS)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE tracks SET title = ({words})[1 + (id * 7) % {k}] || ' ' || ({words})[1 + (id * 13 + id / {k}) "
                f"% {k}] || ' ' || ({words})[1 + (id * 31 + id / 97) % {k}]"
            )
        )
        genres = [f"genre{i}" for i in range(10)]
        gm = conn.execute(
            text(
                "INSERT INTO model_versions (kind, state, metrics, classes) VALUES ('logreg', 'active', "
                "'{\"macro_f1\": 0.8}'::jsonb, CAST(:c AS jsonb)) RETURNING id"
            ),
            {"c": "[" + ",".join(f'"{g}"' for g in genres) + "]"},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO predictions SELECT :v, id, 'genre' || (id % 10), 0.5 + (id % 50) / 100.0, "
                "jsonb_build_object('genre' || (id % 10), 0.5 + (id % 50) / 100.0, "
                "'genre' || ((id + 1) % 10), 0.5 - (id % 50) / 100.0) FROM tracks"
            ),
            {"v": gm},
        )
        km = conn.execute(
            text("INSERT INTO model_versions (kind, state) VALUES ('kmeans', 'active') RETURNING id")
        ).scalar_one()
        conn.execute(text("INSERT INTO cluster_assignments SELECT :v, id, id % 12 FROM tracks"), {"v": km})
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) tracks"))
        conn.execute(text("VACUUM (ANALYZE) predictions"))
        conn.execute(text("VACUUM (ANALYZE) cluster_assignments"))


def run_clients(
    host: str,
    port: int,
    paths: list[str] | list[tuple[str, dict[str, str]]],
    concurrency: int,
    max_seconds: float,
    *,
    answered: Callable[[http.client.HTTPResponse, bytes], bool] | None = None,
    first_byte: bool = False,
) -> tuple[list[float], list[float], int, float]:
    """GET each path (or (path, headers)) once, ``concurrency`` keep-alive clients at a time, until done or
    ``max_seconds``. ``answered(response, body)`` says whether an answer succeeded (default: status 200);
    ``first_byte``: the client time is the time to the first byte of the body.

    Returns (client ms, server ms, errors, wall seconds)."""
    lock = threading.Lock()
    queue: list[Any] = list(reversed(paths))
    client_ms: list[float] = []
    server_ms: list[float] = []
    errors = [0]
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                if not queue:
                    break
                item = queue.pop()
            path, headers = (item, {}) if isinstance(item, str) else item
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                body = r.read(1) if first_byte else b""
                if first_byte:
                    dt = (time.perf_counter() - t0) * 1000
                body += r.read()
                if not first_byte:
                    dt = (time.perf_counter() - t0) * 1000
                st = r.getheader("server-timing") or ""
                ok = answered(r, body) if answered is not None else r.status == 200
                with lock:
                    if not ok:
                        errors[0] += 1
                    client_ms.append(dt)
                    if "dur=" in st:
                        server_ms.append(float(st.split("dur=")[1].split(";")[0]))
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return client_ms, server_ms, errors[0], time.perf_counter() - t0


def stats(ms: list[float]) -> tuple[float, float, float]:
    a = np.asarray(ms) if ms else np.zeros(1)
    return float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(np.percentile(a, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=1000, help="similar requests per client count (1 client)")
    ap.add_argument("--concurrency", default="1,32")
    ap.add_argument("--pages", type=int, default=200, help="track pages")
    ap.add_argument("--searches", type=int, default=300)
    ap.add_argument("--search-n", type=int, default=0, help="also time search with this many track rows")
    ap.add_argument("--max-seconds", type=float, default=120, help="time limit of each measured run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not 1000 <= args.n <= 2_000_000:
        ap.error("--n must be between 1000 and 2,000,000")
    levels = [int(c) for c in args.concurrency.split(",")]
    if any(not 1 <= c <= 64 for c in levels):
        ap.error("--concurrency: 1 to 64 clients")
    print(f"load average before: {load()} ({os.cpu_count()} cores)", flush=True)
    rng = random.Random(args.seed)
    with bench_environment("mi-hbench") as (settings, db, tmp):
        print(f"filling {args.n:,} tracks ...", flush=True)
        t0 = time.perf_counter()
        info = fill(db, args.n, ["features"], args.seed, max(1, (os.cpu_count() or 2) - 1), 1000, 0.8)
        add_models_and_titles(db, args.n)
        print(f"filled in {time.perf_counter() - t0:.0f} s", flush=True)
        ids = [int(x) for x in info["ids"]]

        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "MUSICINDEX_API_TOKEN"}
        env.update(settings_env(settings))
        log = (tmp / "serve.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "musicindex", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
        rows = []
        try:
            wait_up(port, proc)
            base = "/api/tracks/{}/similar?k=10"
            # warm-up: caches, connection pool, first-call costs
            run_clients("127.0.0.1", port, [base.format(rng.choice(ids)) for _ in range(200)], 4, 60)
            for c in levels:
                count = args.requests if c == 1 else max(args.requests, 100 * c)
                paths = [base.format(rng.choice(ids)) for _ in range(count)]
                cms, sms, errors, wall = run_clients("127.0.0.1", port, paths, c, args.max_seconds)
                rows.append(("similar k=10 (JSON)", c, len(cms), errors, wall, cms, sms))
                print(f"  similar, {c} client(s): {len(cms)} requests, {errors} errors, {wall:.1f} s", flush=True)
            paths = [f"/tracks/{rng.choice(ids)}" for _ in range(args.pages)]
            run_clients("127.0.0.1", port, paths[:20], 1, 60)
            cms, sms, errors, wall = run_clients("127.0.0.1", port, paths, 1, args.max_seconds)
            rows.append(("track page (HTML)", 1, len(cms), errors, wall, cms, sms))

            def search_paths(count: int) -> list[str]:
                return [f"/api/tracks?q={rng.choice(WORDS)}+{rng.choice(WORDS)[:4]}" for _ in range(count)]

            cms, sms, errors, wall = run_clients("127.0.0.1", port, search_paths(args.searches), 1, args.max_seconds)
            rows.append((f"search, {args.n:,} tracks", 1, len(cms), errors, wall, cms, sms))
            if args.search_n > args.n:
                extra = args.search_n - args.n
                print(f"adding {extra:,} track rows for the search run ...", flush=True)
                words = "ARRAY[" + ",".join(f"'{w.capitalize()}'" for w in WORDS) + "]"
                k = len(WORDS)
                with db.engine.begin() as conn:
                    conn.execute(
                        text(
                            "INSERT INTO tracks (path, title, artist, album, status) "
                            "SELECT '/bench/x' || g || '.flac', "
                            f"({words})[1 + (g * 7) % {k}] || ' ' || ({words})[1 + (g * 13 + g / {k}) % {k}] || ' ' "
                            f"|| ({words})[1 + (g * 31 + g / 97) % {k}], 'Artist ' || (g % 50000), "
                            "'Album ' || (g % 90000), 'indexed' FROM generate_series(1, :m) g"
                        ),
                        {"m": extra},
                    )
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM (ANALYZE) tracks"))
                run_clients("127.0.0.1", port, search_paths(30), 1, 60)
                cms, sms, errors, wall = run_clients(
                    "127.0.0.1", port, search_paths(args.searches), 1, args.max_seconds
                )
                rows.append((f"search, {args.search_n:,} tracks", 1, len(cms), errors, wall, cms, sms))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    print(f"\nload average after: {load()}")
    print(f"\nHTTP benchmark: {args.n:,} tracks, features space (43-d, HNSW), musicindex serve (uvicorn, 1 process)\n")
    head = ("request", "clients", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "server p50 ms",
            "server p99 ms")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, c, count, errors, wall, cms, sms in rows:
        p50, p95, p99 = stats(cms)
        s50, _, s99 = stats(sms)
        print(
            f"| {name} | {c} | {count} | {errors} | {count / wall:.0f} | {p50:.2f} | {p95:.2f} | {p99:.2f} | "
            f"{s50:.2f} | {s99:.2f} |"
        )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(settings: Any, log_path: Path) -> tuple[subprocess.Popen, int]:
    """The real ``musicindex serve`` over ``settings`` (no other ``MUSICINDEX_`` variable of this shell) on a free
    loopback port, its output in ``log_path``: (the process, the port). ``wait_up`` waits for it."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MUSICINDEX_")}, **settings_env(settings)}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "musicindex", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
    return proc, port


def wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("musicindex serve exited; see its log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("musicindex serve did not answer within 60 s")


if __name__ == "__main__":
    main()
