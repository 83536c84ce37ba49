"""Subsonic API benchmark: the real ``musicindex serve`` answering 32 concurrent clients on loopback.

    python benchmarks/subsonic.py [--tracks 100000] [--albums 10000] [--clients 1,32] [--requests 640]
                                  [--max-seconds 60]

Fills a scratch database directly (a private embedded server under a temporary MUSICINDEX_HOME unless
MUSICINDEX_DATABASE_URL is set; no audio is analysed): ``--tracks`` indexed tracks in ``--albums`` albums of 2 000
artists, titles from a word list with their folded search text and trigram hashes (``textnorm``), one genre each,
an active musicnn version with a 200-d clustered random embedding per track (binary COPY, its HNSW index built as
ingestion does) and 50 tag probabilities, 100 cover images (PNG, 600 px) beside 20 real files the first tracks
point to, and a user. Then starts ``musicindex serve`` and measures, with keep-alive HTTP/1.1 clients (token
auth, JSON), each request kind with 1 client and with 32: p50 / p99 of the client-observed time, errors (an HTTP
status other than 200/206 or ``status="failed"``) and throughput; for ``stream`` the time to the first byte of a
64 kB Range; and the time of a full empty-query ``search3`` sync of every song in pages of 500 (one client).

Goals: p50 <= 20 ms each (<= 60 ms for similarity), no errors with 32 clients, full sync <= 30 s. Each run is
bounded by a request count and ``--max-seconds``; the CPU model and the load average are printed with the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import hashlib
import http.client
import io
import json
import os
import random
import subprocess
import time
import urllib.parse

import numpy as np
from sqlalchemy import text

from benchmarks._common import bench_environment
from benchmarks.http_api import WORDS, free_port, load, run_clients, stats, wait_up
from benchmarks.ingest import cpu_model
from benchmarks.query import clustered_vectors, copy_binary
from musicindex import textnorm
from musicindex.index import MusicIndex
from musicindex.localworker import settings_env
from musicindex.vocab import MOOD_TAGS, hnsw_index_name

ARTISTS = 2000
GENRES = [f"genre{i}" for i in range(10)]
DIM = 200
N_TAGS = 50
USER, PASSWORD = "bench", "bench-password-1"
REAL_FILES = 20
COVERS = 100


# --------------------------------------------------------------------------- the library
def _copy(raw, table: str, columns: str, rows: list[list[object]]) -> None:
    import csv

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    buf.seek(0)
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)", buf)


def _array(values: list[object]) -> str:
    return "{" + ",".join(str(v) for v in values) + "}"


def fill(db, root: Path, n_tracks: int, n_albums: int, seed: int) -> dict:
    """Artists, albums (with covers), tracks (search text, genres), a musicnn version; returns what the clients
    ask for."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    covers = []
    for i in range(COVERS):
        folder = root / f"covers{i:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(rng.integers(0, 255, (600, 600, 3), dtype=np.uint8), "RGB")
        img.save(folder / "cover.png")
        covers.append(str(folder / "cover.png"))
    files = []
    for i in range(REAL_FILES):
        p = root / "audio" / f"track{i:02d}.mp3"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.integers(0, 255, 1_000_000, dtype=np.uint8).tobytes())
        st = p.stat()
        files.append((str(p), st.st_size, st.st_mtime))
    raw = db.engine.raw_connection()
    try:
        _copy(raw, "ingest_batches", "roots", [[json.dumps([str(root)])]])
        _copy(raw, "artists", "id, name, name_key, sort_key",
              [[a, f"Artist {a}", f"artist {a}", f"artist {a}"] for a in range(1, ARTISTS + 1)])  # fmt: skip
        album_rows = []
        for al in range(1, n_albums + 1):
            name = f"{WORDS[al % len(WORDS)].capitalize()} {WORDS[(al * 7) % len(WORDS)].capitalize()} {al}"
            album_rows.append([al, 1 + al % ARTISTS, name, textnorm.fold(name), textnorm.sort_key(name),
                               1960 + al % 60, GENRES[al % 10], n_tracks // n_albums, 240.0 * (n_tracks // n_albums),
                               "file", covers[al % COVERS]])  # fmt: skip
        _copy(raw, "albums", "id, artist_id, name, name_key, sort_key, year, genre, song_count, duration, "
              "cover_kind, cover_path", album_rows)  # fmt: skip
        track_rows = []
        for t in range(1, n_tracks + 1):
            al = 1 + (t - 1) % n_albums
            ar = 1 + al % ARTISTS
            title = " ".join(WORDS[(t * k + t // 97) % len(WORDS)].capitalize() for k in (7, 13, 31))
            path, size, mtime = files[t - 1] if t <= REAL_FILES else (f"{root}/x/{t}.mp3", 4_000_000, 1.0)
            search = textnorm.search_text([title, f"Artist {ar}", album_rows[al - 1][2], GENRES[al % 10]])
            track_rows.append([t, path, title, f"Artist {ar}", album_rows[al - 1][2], 1960 + al % 60,
                               GENRES[al % 10], "indexed", ar, al, 1 + (t - 1) // n_albums, 1,
                               _array([GENRES[al % 10]]), search, _array(textnorm.grams(search)), 240.0, size,
                               mtime, 320, "false", 1])  # fmt: skip
        _copy(raw, "tracks", "id, path, title, artist, album, year, genre_tag, status, artist_id, album_id, "
              "track_no, disc_no, genres, search_text, search_grams, duration, size, mtime, bit_rate, has_picture, "
              "tags_version", track_rows)  # fmt: skip
        with raw.cursor() as cur:
            for table in ("artists", "albums", "tracks", "ingest_batches"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
    finally:
        raw.close()
    tags = [*MOOD_TAGS, *(f"tag{i}" for i in range(N_TAGS - len(MOOD_TAGS)))]
    with db.engine.begin() as conn:
        vid = conn.execute(
            text(
                "INSERT INTO model_versions (kind, state, embedding_dim, classes, params) VALUES ('musicnn', "
                "'active', :d, CAST(:c AS jsonb), '{}'::jsonb) RETURNING id"
            ),
            {"d": DIM, "c": json.dumps(tags)},
        ).scalar_one()
    ids = np.arange(1, n_tracks + 1, dtype=np.int64)
    raw = db.engine.raw_connection()
    try:
        copy_binary(raw, vid, ids, clustered_vectors(n_tracks, DIM, rng, clusters=500, noise=0.8), "musicnn")
        probs = rng.uniform(0.0, 0.05, (n_tracks, N_TAGS)).astype(np.float32)
        top = rng.integers(0, N_TAGS, (n_tracks, 3))
        probs[np.arange(n_tracks)[:, None], top] = 0.5
        tag_rows = [
            [vid, int(t), _array([f"{p:.3f}" for p in probs[j]]), _array([tags[k] for k in dict.fromkeys(top[j])])]
            for j, t in enumerate(ids)
        ]
        _copy(raw, "track_tags", "model_version_id, track_id, probs, top_tags", tag_rows)
        with raw.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '1GB'")
            cur.execute(
                f"CREATE INDEX {hnsw_index_name(vid)} ON embeddings USING hnsw "
                f"((embedding::vector({DIM})) vector_cosine_ops) WHERE model_version_id = {vid}"
            )
        raw.commit()
    finally:
        raw.close()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("tracks", "albums", "artists", "embeddings", "track_tags"):
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    return {"tracks": n_tracks, "albums": n_albums, "real": list(range(1, REAL_FILES + 1))}


# --------------------------------------------------------------------------- the clients
def auth_query() -> str:
    salt = os.urandom(6).hex()
    token = hashlib.md5((PASSWORD + salt).encode()).hexdigest()
    return urllib.parse.urlencode({"u": USER, "t": token, "s": salt, "v": "1.16.1", "c": "bench", "f": "json"})


def answered(r: http.client.HTTPResponse, body: bytes) -> bool:
    """A Subsonic answer succeeded: 200 (206 for a range), and no ``status="failed"`` in a JSON body."""
    ctype = r.getheader("content-type") or ""
    return r.status in (200, 206) and (not ctype.startswith("application/json") or b'"status":"ok"' in body)


def run(port: int, paths: list[tuple[str, dict[str, str]]], clients: int, max_seconds: float, first_byte: bool):
    """(client ms, errors, wall s) of GETting each (path, headers), ``clients`` keep-alive clients at a time."""
    ms, _, errors, wall = run_clients(
        "127.0.0.1", port, paths, clients, max_seconds, answered=answered, first_byte=first_byte
    )
    return ms, errors, wall


def full_sync(port: int, n_tracks: int) -> tuple[float, int, int]:
    """(seconds, songs seen, errors) of paging every song with empty-query search3, 500 a page."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    seen, errors, offset = 0, 0, 0
    t0 = time.perf_counter()
    while True:
        conn.request("GET", f"/rest/search3?query=&artistCount=0&albumCount=0&songCount=500&songOffset={offset}&"
                     + auth_query())  # fmt: skip
        r = conn.getresponse()
        body = json.loads(r.read())["subsonic-response"]
        if body.get("status") != "ok":
            errors += 1
            break
        songs = body["searchResult3"].get("song", [])
        seen += len(songs)
        offset += 500
        if len(songs) < 500:
            break
    conn.close()
    return time.perf_counter() - t0, seen, errors


def requests_for(kind: str, info: dict, count: int, rnd: random.Random) -> tuple[list[tuple[str, dict]], bool]:
    n, albums = info["tracks"], info["albums"]
    q = auth_query()

    def one() -> tuple[str, dict]:
        if kind == "getAlbumList2 random":
            return f"/rest/getAlbumList2?type=random&size=20&{q}", {}
        if kind == "getAlbumList2 alphabeticalByName":
            return f"/rest/getAlbumList2?type=alphabeticalByName&size=20&offset={rnd.randrange(0, albums - 20)}&{q}", {}
        if kind == "getAlbum":
            return f"/rest/getAlbum?id=al-{rnd.randrange(1, albums + 1)}&{q}", {}
        if kind == "search3 word":
            return f"/rest/search3?query={rnd.choice(WORDS)}&{q}", {}
        if kind == "search3 empty, 500 a page":
            off = rnd.randrange(0, n // 500) * 500
            return f"/rest/search3?query=&artistCount=0&albumCount=0&songCount=500&songOffset={off}&{q}", {}
        if kind == "getSimilarSongs2":
            return f"/rest/getSimilarSongs2?id=tr-{rnd.randrange(1, n + 1)}&count=50&{q}", {}
        if kind == "getArtists":
            return f"/rest/getArtists?{q}", {}
        if kind == "getArtist":
            return f"/rest/getArtist?id=ar-{rnd.randrange(1, ARTISTS + 1)}&{q}", {}
        if kind == "getSimilarSongs2 (artist)":
            return f"/rest/getSimilarSongs2?id=ar-{rnd.randrange(1, ARTISTS + 1)}&count=50&{q}", {}
        if kind == "getLyricsBySongId":
            return f"/rest/getLyricsBySongId?id=tr-{rnd.choice(info['real'])}&{q}", {}
        if kind == "getCoverArt (cached)":
            return f"/rest/getCoverArt?id=al-{rnd.randrange(1, COVERS + 1)}&size=300&{q}", {}
        return f"/rest/stream?id=tr-{rnd.choice(info['real'])}&{q}", {"Range": "bytes=0-65535"}

    return [one() for _ in range(count)], kind.startswith("stream")


KINDS = ("getAlbumList2 random", "getAlbumList2 alphabeticalByName", "getAlbum", "search3 word",
         "search3 empty, 500 a page", "getSimilarSongs2", "getCoverArt (cached)", "stream (first byte)",
         "getArtists", "getArtist", "getSimilarSongs2 (artist)", "getLyricsBySongId")  # fmt: skip
GOALS = {"getSimilarSongs2": 60.0, "getSimilarSongs2 (artist)": 60.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--albums", type=int, default=10_000)
    ap.add_argument("--clients", default="1,32")
    ap.add_argument("--requests", type=int, default=640, help="requests per kind and client count")
    ap.add_argument("--max-seconds", type=float, default=60, help="time limit of each measured run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not 1000 <= args.tracks <= 1_000_000 or not 100 <= args.albums <= args.tracks:
        ap.error("--tracks: 1000 to 1,000,000; --albums: 100 to --tracks")
    levels = [int(c) for c in args.clients.split(",")]
    if any(not 1 <= c <= 64 for c in levels):
        ap.error("--clients: 1 to 64")
    print(f"{cpu_model()}; load average before: {load()}", flush=True)
    rnd = random.Random(args.seed)
    with bench_environment("mi-sonic-bench") as (settings, db, tmp):
        t0 = time.perf_counter()
        info = fill(db, tmp / "music", args.tracks, args.albums, args.seed)
        MusicIndex(db, settings).users.add_user(USER, PASSWORD)
        print(f"filled {args.tracks:,} tracks, {args.albums:,} albums in {time.perf_counter() - t0:.0f} s", flush=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "MUSICINDEX_API_TOKEN"}
        env.update(settings_env(settings))
        log = (tmp / "serve.log").open("w")
        command = [sys.executable, "-m", "musicindex", "serve", "--port", str(port)]
        repo = Path(__file__).resolve().parents[1]
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=repo)
        rows = []
        try:
            wait_up(port, proc)
            for kind in KINDS:  # warm-up: caches (covers), the pool, first calls
                paths, fb = requests_for(kind, info, 120 if kind.startswith("getCoverArt") else 40, rnd)
                run(port, paths, 4, 60, fb)
            for kind in KINDS:
                for c in levels:
                    paths, fb = requests_for(kind, info, args.requests if c > 1 else args.requests // 4, rnd)
                    ms, errors, wall = run(port, paths, c, args.max_seconds, fb)
                    rows.append((kind, c, len(ms), errors, wall, ms))
                    print(f"  {kind}, {c} client(s): {len(ms)} requests, {errors} errors, {wall:.1f} s", flush=True)
            sync_s, seen, sync_errors = full_sync(port, args.tracks)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    print(f"\nload average after: {load()}")
    print(f"\nSubsonic benchmark: {args.tracks:,} tracks, {args.albums:,} albums, musicindex serve (uvicorn, one "
          f"process), loopback, token auth, JSON; {cpu_model()}\n")  # fmt: skip
    head = ("request", "clients", "requests", "errors", "req/s", "p50 ms", "p99 ms", "goal p50 ms")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for kind, c, count, errors, wall, ms in rows:
        p50, _, p99 = stats(ms)
        print(f"| {kind} | {c} | {count} | {errors} | {count / wall:.0f} | {p50:.1f} | {p99:.1f} | "
              f"{GOALS.get(kind, 20.0):.0f} |")  # fmt: skip
    print(f"\nfull empty-query search3 sync: {seen:,} songs in {sync_s:.1f} s ({sync_errors} errors; goal <= 30 s)")


if __name__ == "__main__":
    main()
