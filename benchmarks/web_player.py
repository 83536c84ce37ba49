"""The web player's pages and routes at library scale: server time p50 / p95 per request kind.

    python benchmarks/web_player.py [--tracks 100000] [--albums 10000] [--requests 40]

Fills a scratch database directly and in bulk with ``benchmarks/subsonic.py``'s ``fill`` (artists, albums with
cover files, indexed tracks with their search text and trigram hashes, an active musicnn version with a 200-d
clustered embedding per track and its HNSW index; no audio analysed), then gives the local listener (the server
has no accounts: the page's single-user mode) 30 starred and 20 played tracks, and asks the real app in process
(``TestClient``: no network, no uvicorn) for each page and JSON route ``--requests`` times. The figure is the
server's own time, the ``Server-Timing: app;dur`` header every answer carries (routing, the queries, rendering).

Goal: p50 <= 50 ms for the artist list, an album page, the album grid's first page, search and "for you".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import random
import re
import statistics
import time

from benchmarks._common import bench_environment
from benchmarks.http_api import WORDS
from benchmarks.ingest import cpu_model
from benchmarks.subsonic import fill
from musicindex.index import MusicIndex

GOAL_MS = 50.0


def server_ms(response) -> float:
    m = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    if response.status_code != 200 or m is None:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--albums", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from musicindex.web import create_app

    with bench_environment("mi-bench-webplayer") as (settings, db, tmp):
        t0 = time.perf_counter()
        fill(db, tmp / "music", args.tracks, args.albums, args.seed)
        print(f"filled {args.tracks} tracks in {args.albums} albums in {time.perf_counter() - t0:.0f} s")
        index = MusicIndex(db, settings)
        local = index.users.local_user()
        rng = random.Random(args.seed)
        liked = rng.sample(range(1, args.tracks + 1), 30)
        index.users.star(local.id, [("track", t) for t in liked])
        index.users.scrobble(local.id, rng.sample(range(1, args.tracks + 1), 20))
        app = create_app(index)
        client = TestClient(app, base_url="http://127.0.0.1")
        albums = [rng.randint(1, args.albums) for _ in range(args.requests)]
        words = [WORDS[rng.randrange(len(WORDS))] for _ in range(args.requests)]
        kinds = {
            "artist list (page /artists)": lambda i: "/artists",
            "artist list (JSON)": lambda i: "/api/library/artists",
            "album page (/albums/ID)": lambda i: f"/albums/{albums[i]}",
            "album (JSON)": lambda i: f"/api/library/albums/{albums[i]}",
            "album grid first page (/albums)": lambda i: "/albums",
            "album grid first page (JSON, 60)": lambda i: "/api/library/albums?size=60",
            "search (page /?q=WORD)": lambda i: f"/?q={words[i]}",
            "search (JSON artists+albums+songs)": lambda i: f"/api/library/search?q={words[i]}",
            "for you (page /for-you)": lambda i: "/for-you",
            "for you (JSON, 20)": lambda i: "/api/library/for-you",
            "songs by title, page 1 (/songs)": lambda i: "/songs",
        }
        print(f"CPU: {cpu_model()} x {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
        print(f"{'request':40} {'p50 ms':>8} {'p95 ms':>8}  goal")
        for name, path in kinds.items():
            server_ms(client.get(path(0)))  # warm: first plans, caches
            times = sorted(server_ms(client.get(path(i))) for i in range(args.requests))
            p50 = statistics.median(times)
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            goal = "ok" if p50 <= GOAL_MS else f"OVER {GOAL_MS:.0f}"
            print(f"{name:40} {p50:8.1f} {p95:8.1f}  {goal}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        client.close()
        index.close()


if __name__ == "__main__":
    main()
