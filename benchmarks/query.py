"""Query latency and recall at scale: N synthetic tracks, one model version per space.

    python benchmarks/query.py [--n 100000] [--queries 500] [--spaces features,ann,cnn]
                               [--ef N] [--shared-buffers 2GB] [--keep]

Fills a fresh database (on a private embedded server under a temporary MUSICINDEX_HOME, or
on MUSICINDEX_DATABASE_URL when set) with N tracks and, per space, an active model version
with N clustered random vectors (features: 43-d "scaler", ann: 32-d, cnn: 64-d; binary
COPY), builds each version's partial HNSW index exactly as training does (timed, size
reported), then measures p50/p95/p99 latency of top-10 ``MusicIndex.similar()`` through the
Python API (each call: one read-only REPEATABLE READ transaction, version lookup, seed
lookup, HNSW search) and recall@10 against exact search: numpy brute force over the same
float32 vectors, cross-checked on a few queries with the benchmark's own exact search in SQL (a sequential scan
ordered by the cosine distance; the API's ``similar(exact=True)`` is refused above 200 000 vectors).

``--filters`` (on by default) also measures the filters people use today, on the first space: a common genre
(10 % of the tracks), a rare one (0.5 %), and the seed's artist excluded (``exclude_same_artist``): latency,
recall@10 against exact search with the same filter (numpy over the tracks that pass it), and how often fewer
than 10 results came back although 10 exist.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from musicindex import servers
from musicindex.config import Settings, set_settings
from musicindex.db.session import Database
from musicindex.index import MusicIndex
from musicindex.query.search import ef_search_for
from musicindex.vocab import hnsw_index_name

DIMS = {"features": 43, "ann": 32, "cnn": 64}
KINDS = {"features": "scaler", "ann": "ann", "cnn": "cnn"}


def clustered_vectors(
    n: int, dim: int, rng: np.random.Generator, clusters: int = 1000, noise: float = 0.8, chunk: int = 200_000
) -> np.ndarray:
    """Points around `clusters` random N(0, 1) centres with N(0, noise) spread: overlapping
    clusters, so the 10 nearest neighbours are not trivially one tight blob."""
    centres = rng.normal(0, 1, size=(clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        lab = rng.integers(0, clusters, m)
        out[s : s + m] = centres[lab] + rng.normal(0, noise, size=(m, dim)).astype(np.float32)
    return out


def copy_binary(
    raw, version_id: int, track_ids: np.ndarray, vecs: np.ndarray, space: str, chunk: int = 100_000
) -> None:
    """COPY ... (FORMAT binary): int4 version, int8 track, text space, pgvector binary."""
    dim = vecs.shape[1]
    sp = space.encode()
    dt = np.dtype(
        [
            ("nf", ">i2"),
            ("l1", ">i4"),
            ("v", ">i4"),
            ("l2", ">i4"),
            ("t", ">i8"),
            ("l3", ">i4"),
            ("s", f"S{len(sp)}"),
            ("l4", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("x", ">f4", (dim,)),
        ]
    )
    with raw.cursor() as cur:
        for s in range(0, len(track_ids), chunk):
            m = min(chunk, len(track_ids) - s)
            rec = np.zeros(m, dtype=dt)
            rec["nf"], rec["l1"], rec["v"], rec["l2"] = 4, 4, version_id, 8
            rec["t"] = track_ids[s : s + m]
            rec["l3"], rec["s"], rec["l4"] = len(sp), sp, 4 + 4 * dim
            rec["dim"], rec["x"] = dim, vecs[s : s + m]
            buf = io.BytesIO(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + rec.tobytes() + struct.pack(">h", -1))
            cur.copy_expert(
                "COPY embeddings (model_version_id, track_id, space, embedding) FROM STDIN (FORMAT binary)", buf
            )
    raw.commit()


def fill(db: Database, n: int, spaces: list[str], seed: int, workers: int, clusters: int, noise: float) -> dict:
    rng = np.random.default_rng(seed)
    info: dict = {"spaces": {}}
    t0 = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tracks (path, title, artist, album, label, status) "
                "SELECT '/bench/' || g || '.flac', 'Track ' || g, 'Artist ' || (g % 20000), "
                "'Album ' || (g % 60000), CASE WHEN g % 200 = 0 THEN 'rare' ELSE 'genre' || (g % 10) END, 'indexed' "
                "FROM generate_series(1, :n) g"
            ),
            {"n": n},
        )
        rows = conn.execute(text("SELECT id, label, artist FROM tracks ORDER BY id")).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        info["labels"] = np.array([r[1] for r in rows])
        info["artists"] = np.array([r[2] for r in rows])
        del rows
    info["tracks_seconds"] = time.perf_counter() - t0
    for space in spaces:
        dim = DIMS[space]
        vecs = clustered_vectors(n, dim, rng, clusters, noise)
        with db.engine.begin() as conn:
            vid = conn.execute(
                text(
                    "INSERT INTO model_versions (kind, state, embedding_dim, metrics) "
                    "VALUES (:k, 'active', :d, '{}'::jsonb) RETURNING id"
                ),
                {"k": KINDS[space], "d": dim},
            ).scalar_one()
        t0 = time.perf_counter()
        raw = db.engine.raw_connection()
        try:
            copy_binary(raw, vid, ids, vecs, space)
            load_s = time.perf_counter() - t0
            with raw.cursor() as cur:
                cur.execute("SET maintenance_work_mem = '4GB'")
                cur.execute(f"SET max_parallel_maintenance_workers = {int(workers)}")
                t0 = time.perf_counter()
                cur.execute(
                    f"CREATE INDEX {hnsw_index_name(vid)} ON embeddings USING hnsw "
                    f"((embedding::vector({dim})) vector_cosine_ops) WHERE model_version_id = {vid}"
                )
                build_s = time.perf_counter() - t0
                cur.execute("SELECT pg_relation_size(%s::regclass)", (hnsw_index_name(vid),))
                size = cur.fetchone()[0]
            raw.commit()
        finally:
            raw.close()
        unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        info["spaces"][space] = {
            "version": vid,
            "dim": dim,
            "load_s": load_s,
            "build_s": build_s,
            "index_mb": size / 2**20,
            "unit": unit,
        }
        print(
            f"  {space}: loaded {n} vectors in {load_s:.1f} s, HNSW built in {build_s:.1f} s ({size / 2**20:.0f} MB)",
            flush=True,
        )
    # set hint bits and the visibility map once, as a settled production table would have them
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) tracks"))
        conn.execute(text("VACUUM (ANALYZE) embeddings"))
    info["ids"] = ids
    return info


def measure(index: MusicIndex, info: dict, space: str, queries: int, seed: int, ef: int | None) -> dict:
    ids, s = info["ids"], info["spaces"][space]
    unit = s["unit"]
    rng = np.random.default_rng(seed + 1)
    qi = rng.choice(len(ids), queries, replace=False)
    for i in rng.choice(len(ids), min(100, queries), replace=False):  # warm-up
        index.similar(int(ids[i]), k=10, space=space, ef_search=ef)
    lat, recall = [], []
    method = None
    for i in qi:
        t0 = time.perf_counter()
        res = index.similar(int(ids[i]), k=10, space=space, ef_search=ef)
        lat.append(time.perf_counter() - t0)
        method = res.method
        assert res.model_version_id == s["version"] and len(res) == 10
        sims = unit @ unit[i]
        sims[i] = -np.inf
        top = np.argpartition(-sims, 10)[:10]
        recall.append(len(set(ids[top].tolist()) & set(res.ids)) / 10)
    # the benchmark's own exact search in SQL on a few queries: the same neighbours as numpy
    t_exact = []
    for i in qi[:3]:
        t0 = time.perf_counter()
        exact = exact_sql(index.db, s["version"], s["dim"], int(ids[i]))
        t_exact.append(time.perf_counter() - t0)
        sims = unit @ unit[i]
        sims[i] = -np.inf
        top = set(ids[np.argpartition(-sims, 10)[:10]].tolist())
        assert len(top & set(exact)) >= 9, "exact search in SQL disagrees with numpy"
    ms = np.array(lat) * 1000
    return {
        "space": space,
        "dim": s["dim"],
        "method": method,
        "ef": ef or ef_search_for(10),
        "p50": np.percentile(ms, 50),
        "p95": np.percentile(ms, 95),
        "p99": np.percentile(ms, 99),
        "recall": float(np.mean(recall)),
        "exact_ms": float(np.median(t_exact) * 1000),
        "build_s": s["build_s"],
        "index_mb": s["index_mb"],
        "load_s": s["load_s"],
    }


def exact_sql(db: Database, version: int, dim: int, track_id: int, k: int = 10) -> list[int]:
    """The ``k`` nearest tracks by a sequential scan ordered by the cosine distance (no index: exact)."""
    with db.engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_indexscan = off"))
        conn.execute(text("SET LOCAL enable_bitmapscan = off"))
        rows = conn.execute(
            text(
                f"SELECT e.track_id FROM embeddings e, (SELECT embedding::vector({dim}) AS q FROM embeddings "
                "WHERE model_version_id = :v AND track_id = :t) s WHERE e.model_version_id = :v AND e.track_id <> :t "
                f"ORDER BY e.embedding::vector({dim}) <=> s.q LIMIT :k"
            ),
            {"v": version, "t": track_id, "k": k},
        )
        return [int(r[0]) for r in rows]


FILTERS = {
    "genre (10 %)": lambda info, i: {"genre": "genre3"},
    "genre (0.5 %)": lambda info, i: {"genre": "rare"},
    "exclude the seed's artist": lambda info, i: {"exclude_same_artist": True},
}


def measure_filtered(index: MusicIndex, info: dict, space: str, queries: int, seed: int, ef: int | None) -> list[dict]:
    """Latency, recall@10 against exact search with the same filter, and short answers, per filter."""
    ids, s = info["ids"], info["spaces"][space]
    unit, labels, artists = s["unit"], info["labels"], info["artists"]
    rng = np.random.default_rng(seed + 2)
    out = []
    for name, make in FILTERS.items():
        qi = rng.choice(len(ids), queries, replace=False)
        lat, recall, short = [], [], 0
        for i in qi:
            kwargs = make(info, i)
            t0 = time.perf_counter()
            res = index.similar(int(ids[i]), k=10, space=space, ef_search=ef, **kwargs)
            lat.append(time.perf_counter() - t0)
            keep = labels == kwargs["genre"] if "genre" in kwargs else artists != artists[i]
            keep[i] = False
            cand = np.flatnonzero(keep)
            sims = unit[cand] @ unit[i]
            want = min(10, len(cand))
            top = set(ids[cand[np.argpartition(-sims, want - 1)[:want]]].tolist())
            recall.append(len(top & set(res.ids)) / want)
            short += len(res) < want
        ms = np.array(lat) * 1000
        out.append(
            {
                "filter": name,
                "space": space,
                "ef": ef or ef_search_for(10),
                "p50": np.percentile(ms, 50),
                "p99": np.percentile(ms, 99),
                "recall": float(np.mean(recall)),
                "short": short,
                "n": len(qi),
            }
        )
    return out


def print_filtered(rows: list[dict]) -> None:
    print("\n| filter | space | ef_search | p50 ms | p99 ms | recall@10 | answers with fewer than 10 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['filter']} | {r['space']} | {r['ef']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['recall']:.3f} | "
            f"{r['short']} of {r['n']} |"
        )


def print_table(n: int, rows: list[dict], queries: int, extra: str = "") -> None:
    print(
        f"\nquery benchmark: {n:,} tracks, {queries} top-10 similar() queries per space, "
        f"{os.cpu_count()} cores, {extra}\n"
    )
    head = (
        "space",
        "dim",
        "method",
        "ef_search",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "recall@10",
        "exact ms",
        "index build s",
        "index MB",
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print(
            f"| {r['space']} | {r['dim']} | {r['method']} | {r['ef']} | {r['p50']:.2f} | {r['p95']:.2f} | "
            f"{r['p99']:.2f} | {r['recall']:.3f} | {r['exact_ms']:.0f} | {r['build_s']:.1f} | "
            f"{r['index_mb']:.0f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--spaces", default="features,ann,cnn")
    ap.add_argument(
        "--ef",
        default=None,
        help="hnsw.ef_search, or several comma-separated values measured one after the other "
        "(default: the API's max(40, 4k))",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clusters", type=int, default=1000, help="cluster centres of the synthetic vectors")
    ap.add_argument("--noise", type=float, default=0.8, help="spread around a centre (centres are N(0, 1))")
    ap.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) - 1),
        help="max_parallel_maintenance_workers for the index builds",
    )
    ap.add_argument(
        "--shared-buffers", default=None, help="restart the private embedded server with this shared_buffers (e.g. 2GB)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument("--no-filters", dest="filters", action="store_false", help="skip the filtered queries")
    args = ap.parse_args()
    if not 1000 <= args.n <= 5_000_000:
        ap.error("--n must be between 1000 and 5,000,000")
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    for s in spaces:
        if s not in DIMS:
            ap.error(f"unknown space {s!r}")

    own_home = not os.environ.get("MUSICINDEX_HOME") and not os.environ.get("MUSICINDEX_DATABASE_URL")
    home = Path(os.environ.get("MUSICINDEX_HOME") or tempfile.mkdtemp(prefix="mi-qbench-"))
    settings = Settings.from_env(home=home)
    set_settings(settings)
    url = servers.ensure_database(settings)
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT", pool_size=1)
    if args.shared_buffers and own_home:
        with admin.connect() as conn:
            conn.execute(text("ALTER SYSTEM SET shared_buffers = :v"), {"v": args.shared_buffers})
        admin.dispose()
        servers.stop(settings)
        url = servers.ensure_database(settings)
        admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT", pool_size=1)
    name = f"mi_qbench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        sb = conn.execute(text("SHOW shared_buffers")).scalar_one()
    db_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    db = Database(db_url, pool_size=2)
    try:
        db.upgrade()
        print(f"filling {name} with {args.n:,} tracks (shared_buffers {sb}) ...", flush=True)
        t0 = time.perf_counter()
        info = fill(db, args.n, spaces, args.seed, args.workers, args.clusters, args.noise)
        print(f"filled in {time.perf_counter() - t0:.0f} s", flush=True)
        index = MusicIndex(db, settings.with_(database_url=db_url))
        efs = [int(e) for e in args.ef.split(",")] if args.ef else [None]
        rows = [measure(index, info, s, args.queries, args.seed, ef) for ef in efs for s in spaces]
        load = os.getloadavg()
        print_table(
            args.n, rows, args.queries, f"{args.clusters} clusters, noise {args.noise}, shared_buffers {sb}, "
            f"load average {load[0]:.1f}"
        )  # fmt: skip
        if args.filters:
            print_filtered(
                [r for ef in efs for r in measure_filtered(index, info, spaces[0], args.queries, args.seed, ef)]
            )
    finally:
        db.dispose()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        if own_home:
            servers.stop(settings)
            shutil.rmtree(home, ignore_errors=True)
        set_settings(None)


if __name__ == "__main__":
    main()
