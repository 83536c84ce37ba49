"""The HTTP API and web page (``musicindex serve``) against the real PostgreSQL + pgvector.

One library per module (tracks with features, a genre model with probabilities, an ``ann`` space,
a kmeans clustering, a few real audio files), INSERTed directly like tests/test_query.py does:
the API only reads. Tests that change things (token rules, ingest, promote) get their own database.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from musicindex import errors as E
from musicindex.db.scratch import scratch_database
from musicindex.db.session import Database
from musicindex.errors import ConfigError
from musicindex.index import MusicIndex
from musicindex.localworker import settings_env
from musicindex.playlists import render_m3u8
from musicindex.query.results import TrackHit
from musicindex.sample.library import generate_library
from musicindex.vocab import FEATURE_NAMES, N_FEATURES
from musicindex.web import create_app
from musicindex.web.errors import category_of
from musicindex.web.security import check_bind, is_loopback
from tests.conftest import run_cli

GENRES = ("ambient", "jazz", "rock", "techno", "classical", "hiphop")
ADJ = ("Blue", "Quiet", "Electric", "Golden", "Midnight", "Paper", "Silver", "Broken", "Velvet", "Northern")
NOUN = ("Harbour", "Engine", "Garden", "Signal", "River", "Lanterns", "Static", "Orchard", "Mirrors", "Tide")
ARTISTS = {
    "ambient": ("Lowland Drift", "Sora Field"),
    "jazz": ("The Miles Quartet", "Nina Holt Trio"),
    "rock": ("Granite Sons", "The Hollow Kings"),
    "techno": ("Unit 303", "Kessler Grid"),
    "classical": ("Aurelia Ensemble", "Vienna Chamber Players"),
    "hiphop": ("MC Orbit", "Low Tide Crew"),
}
TOKEN = "s3cret-token-for-tests-0123456789"


# --------------------------------------------------------------------------- test library
def vec_text(v: Any) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in v) + "]"


def add_version(db: Database, kind: str, *, state: str = "active", dim: int | None = None, **cols: Any) -> int:
    with db.engine.begin() as conn:
        if state == "active":
            conn.execute(
                text("UPDATE model_versions SET state = 'retired' WHERE kind = :k AND state = 'active'"), {"k": kind}
            )
        return int(
            conn.execute(
                text(
                    "INSERT INTO model_versions (kind, state, embedding_dim, metrics, classes, params) "
                    "VALUES (:k, :s, :d, CAST(:m AS jsonb), CAST(:c AS jsonb), '{}'::jsonb) RETURNING id"
                ),
                {
                    "k": kind,
                    "s": state,
                    "d": dim,
                    "m": json.dumps(cols.get("metrics", {})),
                    "c": json.dumps(cols["classes"]) if "classes" in cols else None,
                },
            ).scalar_one()
        )


GENRE_TAGS = {
    "ambient": ("ambient", "chillout", "instrumental", "electronic", "mellow"),
    "jazz": ("jazz", "instrumental", "mellow", "easy listening", "soul"),
    "rock": ("rock", "classic rock", "guitar", "hard rock", "alternative rock"),
    "techno": ("electronic", "dance", "electro", "House", "electronica"),
    "classical": ("instrumental", "beautiful", "mellow", "easy listening", "acoustic"),
    "hiphop": ("hip-hop", "rnb", "party", "funk", "male vocalists"),
}
TAGS = sorted({t for ts in GENRE_TAGS.values() for t in ts})


def build_library(
    db: Database, audio_dir: Path, n: int = 120, seed: int = 7, musicnn: bool = False, ingested: bool = True
) -> dict[str, Any]:
    """``n`` indexed tracks over GENRES (the first few with real audio files), 43 features, a logreg
    genre model with probabilities, a 32-d ``ann`` space with its HNSW index, a kmeans clustering;
    with ``musicnn``, also a musicnn version: tag probabilities and 200-d vectors (the default space).
    ``ingested``: an ingest batch of ``audio_dir`` is recorded (the folder was ingested: its files are served)."""
    rng = np.random.default_rng(seed)
    audio = [  # one file per format (wav, ogg, mp3), of three genres
        generate_library(audio_dir, per_genre=1, genres=[g], duration=6.0, formats=(fmt,), seed=seed)[0]
        for g, fmt in zip(GENRES[:3], ("wav", "ogg", "mp3"), strict=True)
    ]
    centres = rng.normal(0, 3, size=(len(GENRES), N_FEATURES))
    rows = []
    for i in range(n):
        g = i % len(GENRES)
        genre = GENRES[g]
        artist = ARTISTS[genre][(i // len(GENRES)) % 2]
        path = str(audio[i].path) if i < len(audio) else f"/music/{genre}/{artist}/{i:03d}.flac"
        rows.append(
            {
                "path": path,
                "title": f"{ADJ[(i * 7) % 10]} {NOUN[(i * 3 + i // 10) % 10]}"
                + (f" {i // 100 + 1}" if i >= 100 else ""),
                "artist": artist,
                "album": ("Harbour Lights", "Night Sessions", "Field Recordings", "Live at the Palace")[i % 4],
                "label": genre,
                "g": g,
                "duration": float(rng.uniform(90, 420)),
                "feat": centres[g] + rng.normal(0, 1, N_FEATURES) + 10,
            }
        )
    if len(audio) > 0:  # audio tracks: their real genre and duration
        for i, t in enumerate(audio):
            rows[i]["label"] = t.genre
            rows[i]["g"] = GENRES.index(t.genre)
            rows[i]["duration"] = 6.0
    for r in rows:  # the audio files as the ingest registration records them (the audio route checks both)
        st = os.stat(r["path"]) if os.path.exists(r["path"]) else None
        r["size"], r["mtime"] = (st.st_size, st.st_mtime) if st is not None else (None, None)
    cols = ", ".join(FEATURE_NAMES)
    vals = ", ".join(f":f{j}" for j in range(N_FEATURES))
    with db.engine.begin() as conn:
        if ingested:  # the folder of the audio files was ingested (the audio route serves only from such folders)
            conn.execute(
                text("INSERT INTO ingest_batches (roots, scanned) VALUES (CAST(:r AS jsonb), :n)"),
                {"r": json.dumps([str(audio_dir.resolve())]), "n": len(audio)},
            )
        for r in rows:
            r["id"] = conn.execute(
                text(
                    "INSERT INTO tracks (path, title, artist, album, label, label_source, status, duration, "
                    "format, sample_rate, channels, indexed_at, size, mtime) VALUES (:path, :title, :artist, :album, "
                    ":label, 'folder', 'indexed', :duration, 'flac', 44100, 2, now(), :size, :mtime) RETURNING id"
                ),
                {k: r[k] for k in ("path", "title", "artist", "album", "label", "duration", "size", "mtime")},
            ).scalar_one()
            conn.execute(
                text(
                    f"INSERT INTO track_features (track_id, version, vec, {cols}) "
                    f"VALUES (:id, 1, CAST(:vec AS vector), {vals})"
                ),
                {"id": r["id"], "vec": vec_text(r["feat"]), **{f"f{j}": float(x) for j, x in enumerate(r["feat"])}},
            )
    gm = add_version(
        db, "logreg", metrics={"macro_f1": 0.9, "cv_macro_f1_mean": 0.9, "accuracy": 0.9}, classes=list(GENRES)
    )
    ann = add_version(db, "ann", dim=32, metrics={"macro_f1": 0.8}, classes=list(GENRES))
    km = add_version(db, "kmeans", metrics={"silhouette": 0.4, "n_clusters": len(GENRES)})
    vcentres = rng.normal(0, 1, size=(len(GENRES), 32))
    with db.engine.begin() as conn:
        for r in rows:
            p = 0.4 * rng.dirichlet(np.ones(len(GENRES))) + 0.6 * np.eye(len(GENRES))[r["g"]]
            conn.execute(
                text("INSERT INTO predictions VALUES (:v, :t, :g, :c, CAST(:p AS jsonb))"),
                {
                    "v": gm,
                    "t": r["id"],
                    "g": GENRES[int(np.argmax(p))],
                    "c": float(p.max()),
                    "p": json.dumps({g: float(x) for g, x in zip(GENRES, p, strict=True)}),
                },
            )
            conn.execute(
                text("INSERT INTO embeddings VALUES (:v, :t, 'ann', CAST(:e AS vector))"),
                {"v": ann, "t": r["id"], "e": vec_text(vcentres[r["g"]] + rng.normal(0, 0.35, 32))},
            )
            conn.execute(
                text("INSERT INTO cluster_assignments VALUES (:v, :t, :c)"), {"v": km, "t": r["id"], "c": r["g"]}
            )
        conn.execute(
            text(
                f"CREATE INDEX ix_emb_hnsw_v{ann} ON embeddings USING hnsw ((embedding::vector(32)) vector_cosine_ops) "
                f"WHERE model_version_id = {ann}"
            )
        )
    lib = {"rows": rows, "gm": gm, "ann": ann, "kmeans": km, "audio": audio}
    if musicnn:
        mn = add_version(db, "musicnn", dim=200, classes=TAGS)
        tcentres = rng.normal(0, 1, size=(len(GENRES), 200))
        with db.engine.begin() as conn:
            for r in rows:
                probs = rng.uniform(0.0, 0.08, len(TAGS))
                for j, tag in enumerate(GENRE_TAGS[GENRES[r["g"]]]):
                    probs[TAGS.index(tag)] = float(np.clip(0.9 - 0.15 * j + rng.normal(0, 0.06), 0.05, 0.99))
                conn.execute(
                    text("INSERT INTO track_tags VALUES (:v, :t, :p, :top)"),
                    {"v": mn, "t": r["id"], "p": [float(x) for x in probs],
                     "top": [TAGS[i] for i in np.argsort(-probs) if probs[i] >= 0.1]},
                )  # fmt: skip
                conn.execute(
                    text("INSERT INTO embeddings VALUES (:v, :t, 'musicnn', CAST(:e AS vector))"),
                    {"v": mn, "t": r["id"], "e": vec_text(tcentres[r["g"]] + rng.normal(0, 0.5, 200))},
                )
        lib["musicnn"] = mn
    return lib


@contextlib.contextmanager
def library_index(settings: Any, tmp: Path, prefix: str, **build: Any) -> Iterator[dict[str, Any]]:
    """A scratch database with ``build_library(**build)`` and a ``MusicIndex`` over it: the library's dict plus
    ``index``, ``db`` and ``tmp``."""
    with scratch_database(settings.database_url, prefix=prefix) as db:
        lib = build_library(db, tmp / "audio", **build)
        index = MusicIndex(db, settings.with_(database_url=db.url))
        lib.update(index=index, db=db, tmp=tmp)
        try:
            yield lib
        finally:
            index.close()


@pytest.fixture(scope="module")
def web_lib(base_settings, tmp_path_factory):
    with library_index(base_settings, tmp_path_factory.mktemp("weblib"), "mi_web") as lib:
        yield lib


@pytest.fixture(scope="module")
def client(web_lib):
    with client_of(create_app(web_lib["index"])) as c:
        yield c


def client_of(app: Any) -> TestClient:
    """A test client that calls the app as a browser on this machine would (Host: 127.0.0.1)."""
    return TestClient(app, base_url="http://127.0.0.1")


def ok(r, status: int = 200) -> Any:
    assert r.status_code == status, (r.status_code, r.text[:500])
    return r.json() if "json" in r.headers.get("content-type", "") else r.text


def err(r, status: int, category: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:500])
    body = r.json()
    assert body["error"] == category and body["message"], body
    return body


# --------------------------------------------------------------------------- about
def test_health_spaces_genres_and_openapi(client):
    h = ok(client.get("/api/health"))
    assert h["status"] == "ok" and h["schema_at_head"] and h["pgvector"]
    spaces = {s["space"]: s for s in ok(client.get("/api/spaces"))}
    assert spaces["features"]["available"] and spaces["ann"]["available"] and spaces["ann"]["dimension"] == 32
    assert not spaces["cnn"]["available"] and "musicindex train" in spaces["cnn"]["hint"]
    assert sum(s["default"] for s in spaces.values()) == 1
    assert ok(client.get("/api/genres")) == sorted(GENRES)
    spec = ok(client.get("/api/openapi.json"))
    paths = spec["paths"]
    for p in ("/api/tracks", "/api/tracks/{track_id}", "/api/tracks/{track_id}/audio", "/api/tracks/{track_id}/similar",
              "/api/recommend", "/api/genres/{genre}/tracks", "/api/playlist", "/api/similar-to-file", "/api/status",
              "/api/models", "/api/evaluate", "/api/map", "/api/m3u", "/api/ingest", "/api/train"):  # fmt: skip
        assert p in paths, p
    # no endpoint takes a path to read: the only file-ish parameter is the upload's name (for its suffix)
    names = {prm["name"] for ops in paths.values() for op in ops.values() for prm in op.get("parameters", [])}
    assert not {n for n in names if "path" in n.lower() or "file" in n.lower()} - {"filename"}
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "/api/tracks/{track_id}/similar" in docs.text and "cdn" not in docs.text.lower()


# --------------------------------------------------------------------------- search and details
def test_search_by_title_artist_album(client, web_lib):
    rows = web_lib["rows"]
    target = rows[10]
    res = ok(client.get("/api/tracks", params={"q": target["title"]}))
    assert res["items"] and res["items"][0]["title"].startswith(target["title"])
    assert all(target["title"].split()[0].lower() in (h["title"] or "").lower() for h in res["items"])
    # word parts, any order, case-insensitive
    first, second = target["title"].split()[:2]
    res2 = ok(client.get("/api/tracks", params={"q": f"{second[:4].lower()} {first[:3].upper()}"}))
    assert target["id"] in [h["id"] for h in res2["items"]] or res2["candidates"] > len(res2["items"])
    # by artist: every hit has that artist (field restricted), and no artist match leaks in from titles
    res = ok(client.get("/api/tracks", params={"q": "kessler", "field": "artist", "limit": 200}))
    assert res["items"] and all(h["artist"] == "Kessler Grid" for h in res["items"])
    assert len(res["items"]) == sum(r["artist"] == "Kessler Grid" for r in rows)
    res = ok(client.get("/api/tracks", params={"q": "sessions", "field": "album", "limit": 200}))
    assert res["items"] and len(res["items"]) == sum("Sessions" in r["album"] for r in rows)
    assert ok(client.get("/api/tracks", params={"q": "nothing-like-this-zz"}))["items"] == []
    # file names are searchable too (the audio files: <genre>.<n>.<ext>)
    audio_name = Path(web_lib["audio"][0].path).stem.split(".")[0]
    assert ok(client.get("/api/tracks", params={"q": audio_name}))["items"]
    # bounds and nonsense
    err(client.get("/api/tracks", params={"q": ""}), 422, "bad_argument")
    err(client.get("/api/tracks", params={"q": "&|!():*'"}), 422, "bad_argument")
    err(client.get("/api/tracks", params={"q": "x" * 201}), 422, "bad_argument")
    err(client.get("/api/tracks", params={"q": "blue", "limit": 1000}), 422, "bad_argument")
    err(client.get("/api/tracks", params={"q": "blue", "field": "path"}), 422, "bad_argument")
    # injection attempts are data
    assert ok(client.get("/api/tracks", params={"q": "x'); DROP TABLE tracks; --"}))["items"] == []
    assert ok(client.get("/api/health"))["status"] == "ok"


def test_track_details(client, web_lib):
    r0 = web_lib["rows"][0]
    d = ok(client.get(f"/api/tracks/{r0['id']}"))
    assert d["id"] == r0["id"] and d["path"] == r0["path"] and d["title"] == r0["title"] and d["artist"] == r0["artist"]
    assert set(d["features"]) == set(FEATURE_NAMES) and len(d["features"]) == N_FEATURES
    assert d["genre"]["model_version_id"] == web_lib["gm"] and abs(sum(d["genre"]["probabilities"].values()) - 1) < 1e-6
    assert d["cluster"]["model_kind"] == "kmeans" and d["cluster"]["size"] == 20
    assert d["tags"] is None  # no musicnn space in this library
    err(client.get("/api/tracks/999999"), 404, "unknown_track")
    err(client.get("/api/tracks/0"), 422, "bad_argument")
    err(client.get("/api/tracks/abc"), 422, "bad_argument")
    assert ok(client.get(f"/api/tracks/{r0['id']}/genre"))["genre"] in GENRES
    assert ok(client.get(f"/api/tracks/{r0['id']}/cluster"))["cluster"] == r0["g"]
    err(client.get(f"/api/tracks/{r0['id']}/cluster", params={"model": "birch"}), 409, "model_not_trained")
    err(client.get(f"/api/tracks/{r0['id']}/cluster", params={"model": "dbscan"}), 422, "bad_argument")


# --------------------------------------------------------------------------- queries
def test_similar_with_similarity_scores_and_errors(client, web_lib):
    rows = web_lib["rows"]
    seed = rows[12]
    res = ok(client.get(f"/api/tracks/{seed['id']}/similar", params={"k": 8, "space": "ann"}))
    assert res["space"] == "ann" and res["model_version_id"] == web_lib["ann"] and len(res["items"]) == 8
    for h in res["items"]:
        assert 0.0 <= h["similarity"] <= 1.0
        assert abs(h["similarity"] - max(0.0, min(1.0, 1 - h["distance"] / 2))) < 1e-12
        assert h["genre"] == seed["label"]
    sims = [h["similarity"] for h in res["items"]]
    assert sims == sorted(sims, reverse=True)
    # the same answer as the Python API: no second query implementation
    py = web_lib["index"].similar(seed["id"], k=8, space="ann")
    assert [h["id"] for h in res["items"]] == py.ids
    res = ok(client.get(f"/api/tracks/{seed['id']}/similar", params={"k": 5, "space": "ann", "genre": "jazz"}))
    assert all(h["genre"] == "jazz" for h in res["items"])
    res = ok(client.get(f"/api/tracks/{seed['id']}/similar", params={"k": 20, "exclude_same_artist": "true"}))
    assert all(h["artist"] != seed["artist"] for h in res["items"])
    err(client.get("/api/tracks/999999/similar"), 404, "unknown_track")
    err(client.get(f"/api/tracks/{seed['id']}/similar", params={"space": "cnn"}), 409, "model_not_trained")
    err(client.get(f"/api/tracks/{seed['id']}/similar", params={"space": "mfcc"}), 422, "bad_argument")
    err(client.get(f"/api/tracks/{seed['id']}/similar", params={"genre": "polka"}), 422, "unknown_genre")
    for bad in ({"k": 0}, {"k": 1001}, {"k": "x"}, {"format": "xml"}, {"space": "s" * 33}):
        err(client.get(f"/api/tracks/{seed['id']}/similar", params=bad), 422, "bad_argument")


def test_trackhit_similarity_property():
    def hit(d):
        return TrackHit(1, "/a", None, None, None, None, d, None, None, "features")

    assert hit(0.0).similarity == 1.0 and hit(2.0).similarity == 0.0 and hit(1.0).similarity == 0.5
    assert hit(-1e-9).similarity == 1.0 and hit(2.1).similarity == 0.0 and hit(None).similarity is None
    assert hit(0.5).to_dict()["similarity"] == 0.75


def test_recommend_by_genre_playlist(client, web_lib):
    rows = web_lib["rows"]
    jazz = [r["id"] for r in rows if r["label"] == "jazz"][:3]
    rock = [r["id"] for r in rows if r["label"] == "rock"][:2]
    res = ok(client.get("/api/recommend", params={"liked": jazz, "disliked": rock, "k": 6, "space": "ann"}))
    assert len(res["items"]) == 6 and not set(jazz + rock) & {h["id"] for h in res["items"]}
    assert all(0 <= h["similarity"] <= 1 for h in res["items"])
    assert res["params"]["liked"] == jazz and res["params"]["disliked"] == rock
    err(client.get("/api/recommend", params={"k": 5}), 422, "bad_argument")
    err(client.get("/api/recommend", params={"liked": list(range(1, 60)), "disliked": list(range(60, 110))}), 422,
        "bad_argument")  # fmt: skip
    err(client.get("/api/recommend", params={"liked": [999999]}), 404, "unknown_track")
    res = ok(client.get("/api/genres/techno/tracks", params={"k": 7}))
    assert len(res["items"]) == 7 and all(h["genre"] == "techno" for h in res["items"])
    scores = [h["score"] for h in res["items"]]
    assert scores == sorted(scores, reverse=True) and all(h["similarity"] is None for h in res["items"])
    assert [h["id"] for h in res["items"]] == web_lib["index"].by_genre("techno", k=7).ids
    err(client.get("/api/genres/polka/tracks"), 422, "unknown_genre")
    a, b = rows[0]["id"], rows[3]["id"]
    res = ok(client.get("/api/playlist", params={"start": a, "end": b, "n": 6, "space": "ann"}))
    ids = [h["id"] for h in res["items"]]
    assert ids[0] == a and ids[-1] == b and len(ids) == 6 - res["params"]["skipped"]
    err(client.get("/api/playlist", params={"start": a, "end": a}), 422, "bad_argument")
    err(client.get("/api/playlist", params={"start": a, "end": b, "n": 1}), 422, "bad_argument")
    err(client.get("/api/playlist", params={"start": a, "end": 999999}), 404, "unknown_track")


def test_m3u8_exports(client, web_lib):
    rows = web_lib["rows"]
    seed = rows[12]
    r = client.get(f"/api/tracks/{seed['id']}/similar", params={"k": 4, "space": "ann", "format": "m3u8"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/x-mpegurl")
    assert "attachment" in r.headers["content-disposition"]
    lines = r.text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[1].startswith("#PLAYLIST:")
    entries = [ln for ln in lines if not ln.startswith("#")]
    hits = ok(client.get(f"/api/tracks/{seed['id']}/similar", params={"k": 4, "space": "ann"}))["items"]
    assert entries == [h["path"] for h in hits]
    by_id = {x["id"]: x for x in rows}
    extinf = [ln for ln in lines if ln.startswith("#EXTINF:")]
    assert extinf[0] == f"#EXTINF:{round(by_id[hits[0]['id']]['duration'])},{hits[0]['artist']} - {hits[0]['title']}"
    # relative to a base folder
    r = client.get("/api/m3u", params={"ids": [rows[20]["id"], rows[21]["id"]], "base": "/music", "title": "mine"})
    entries = [ln for ln in r.text.splitlines() if not ln.startswith("#")]
    assert entries == [os.path.relpath(rows[20]["path"], "/music"), os.path.relpath(rows[21]["path"], "/music")]
    assert not entries[0].startswith("/") and 'filename="mine.m3u8"' in r.headers["content-disposition"]
    for fmt_url in (
        f"/api/recommend?liked={seed['id']}&k=3&format=m3u8",
        "/api/genres/jazz/tracks?k=3&format=m3u8&base=/music",
        f"/api/playlist?start={rows[0]['id']}&end={rows[1]['id']}&n=4&format=m3u8",
    ):
        r = client.get(fmt_url)
        assert r.status_code == 200 and r.text.startswith("#EXTM3U\n"), fmt_url
    err(client.get("/api/m3u", params={"ids": [rows[0]["id"]], "base": "relative/dir"}), 422, "bad_argument")
    err(client.get("/api/m3u", params={"ids": [999999]}), 404, "unknown_track")
    err(client.get("/api/m3u", params={"ids": list(range(1, 1002))}), 422, "bad_argument")


def test_playlist_writer_escapes_lines():
    text_ = render_m3u8(
        [{"path": "/m/a.flac", "title": "two\nlines", "artist": "x\r\n#EXTM3U", "duration": 61.4},
         {"path": "/m/b c/ü.ogg"}],
        base="/m",
        title="t\n#x",
    )  # fmt: skip
    assert text_ == "#EXTM3U\n#PLAYLIST:t #x\n#EXTINF:61,x #EXTM3U - two lines\na.flac\n#EXTINF:-1,ü\nb c/ü.ogg\n"
    with pytest.raises(E.InvalidArgumentError):
        render_m3u8([{"path": "/m/a\n/etc/passwd"}])


def test_library_map(client, web_lib):
    m = ok(client.get("/api/map", params={"space": "ann"}))
    assert m["space"] == "ann" and m["model_version_id"] == web_lib["ann"]
    assert m["total"] == m["sampled"] == len(web_lib["rows"]) == len(m["points"])
    assert set(m["groups"]) == set(GENRES) and len(m["explained_variance"]) == 2
    assert m["explained_variance"][0] >= m["explained_variance"][1] > 0
    # genres separate on the map: each genre's centre is closer to its own points than others'
    pts = np.array([[p["x"], p["y"]] for p in m["points"]])
    grp = np.array([p["group"] for p in m["points"]])
    centres = {g: pts[grp == g].mean(0) for g in GENRES}
    nearest = [min(centres, key=lambda g, p=p: np.linalg.norm(p - centres[g])) for p in pts]
    assert np.mean(np.array(nearest) == grp) > 0.8
    sample = ok(client.get("/api/map", params={"limit": 30, "color_by": "cluster"}))
    assert sample["sampled"] == 30 and sample["total"] == len(web_lib["rows"]) and sample["color_by"] == "cluster"
    assert ok(client.get("/api/map", params={"limit": 30, "color_by": "cluster"})) == sample  # seeded: stable
    err(client.get("/api/map", params={"limit": 1}), 422, "bad_argument")
    err(client.get("/api/map", params={"space": "cnn"}), 409, "model_not_trained")


# --------------------------------------------------------------------------- audio
def test_audio_streaming_with_ranges(client, web_lib):
    t = web_lib["rows"][0]
    data = Path(t["path"]).read_bytes()
    size = len(data)
    r = client.get(f"/api/tracks/{t['id']}/audio")
    assert r.status_code == 200 and r.content == data
    assert r.headers["accept-ranges"] == "bytes" and r.headers["content-type"].startswith("audio/")
    r = client.get(f"/api/tracks/{t['id']}/audio", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == data[:100]
    assert r.headers["content-range"] == f"bytes 0-99/{size}"
    r = client.get(f"/api/tracks/{t['id']}/audio", headers={"Range": f"bytes={size - 50}-"})
    assert r.status_code == 206 and r.content == data[-50:]
    r = client.get(f"/api/tracks/{t['id']}/audio", headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = client.get(f"/api/tracks/{t['id']}/audio", headers={"Range": f"bytes={size + 10}-{size + 20}"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
    # every audio file is served with its own type
    types = {client.get(f"/api/tracks/{x['id']}/audio", headers={"Range": "bytes=0-0"}).headers["content-type"]
             for x in web_lib["rows"][:3]}  # fmt: skip
    assert types == {"audio/wav", "audio/ogg", "audio/mpeg"}
    # a track whose file is not on disk
    err(client.get(f"/api/tracks/{web_lib['rows'][50]['id']}/audio"), 404, "file_missing")
    err(client.get("/api/tracks/999999/audio"), 404, "unknown_track")


def test_path_traversal_attempts_read_nothing(client, web_lib):
    t = web_lib["rows"][0]
    for url in (
        "/api/tracks/..%2F..%2F..%2Fetc%2Fpasswd/audio",
        "/api/tracks/%2Fetc%2Fpasswd/audio",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/../../../../etc/passwd",
        "/api/tracks/1%20OR%201=1/audio",
    ):
        r = client.get(url)
        assert r.status_code in (404, 422), (url, r.status_code)
        assert b"root:" not in r.content
    # a client-sent path is never read: extra parameters are ignored, the track's own file is served
    r = client.get(f"/api/tracks/{t['id']}/audio", params={"path": "/etc/passwd", "file": "/etc/passwd"})
    assert r.status_code == 200 and r.content == Path(t["path"]).read_bytes()
    # static files are only the app's own
    assert client.get("/static/app.js").status_code == 200


# --------------------------------------------------------------------------- query by example
def _upload_dirs() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("musicindex-upload-")}


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The server's temporary folder is this test's own: another process's uploads cannot change what it counts."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_similar_to_uploaded_file(client, web_lib, private_tmp):
    before = _upload_dirs()
    audio = web_lib["audio"][1]
    body = Path(audio.path).read_bytes()
    r = client.post("/api/similar-to-file", params={"k": 5, "filename": Path(audio.path).name}, content=body)
    res = ok(r)
    assert res["query"] == "similar_to_file" and len(res["items"]) == 5
    assert res["params"]["path"] is None and res["params"]["upload"]["bytes"] == len(body)
    assert all(0 <= h["similarity"] <= 1 for h in res["items"])
    assert _upload_dirs() == before  # analysed, never stored: the temporary copy is gone
    # garbage is an audio error, and leaves nothing behind either
    err(client.post("/api/similar-to-file", params={"filename": "x.mp3"}, content=b"\x00garbage" * 500), 422,
        "audio_error")  # fmt: skip
    err(client.post("/api/similar-to-file", content=b""), 422, "bad_argument")
    err(client.post("/api/similar-to-file", files={"file": ("a.wav", body[:2000])}), 415, "unsupported_media_type")
    assert _upload_dirs() == before


def test_upload_size_cap(web_lib, private_tmp):
    settings = web_lib["index"].settings.with_(upload_max_bytes=4096)
    index = MusicIndex(web_lib["db"], settings)
    before = _upload_dirs()
    with client_of(create_app(index)) as c:
        err(c.post("/api/similar-to-file", content=b"\x00" * 5000), 413, "too_large")  # declared length

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b"\x00" * 1000

        err(c.post("/api/similar-to-file", content=chunks()), 413, "too_large")
    assert _upload_dirs() == before


# --------------------------------------------------------------------------- status, models, evaluate
def test_status_models_evaluate(client, web_lib):
    st = ok(client.get("/api/status"))
    assert st["counts"] == {"indexed": len(web_lib["rows"])} and st["failures"] == []
    assert st["broker"] == "ok" and set(st["queues"]) >= {"ingest", "train"} and isinstance(st["workers"], list)
    assert st["progress"]["roots"] == [str((web_lib["tmp"] / "audio").resolve())]  # the library's one batch
    models = ok(client.get("/api/models"))
    assert {m["kind"] for m in models} == {"logreg", "ann", "kmeans"}
    assert ok(client.get("/api/models", params={"kind": "ann"}))[0]["id"] == web_lib["ann"]
    assert set(ok(client.get("/api/models/active"))) == {"logreg", "ann", "kmeans"}
    assert ok(client.get(f"/api/models/{web_lib['gm']}"))["classes"] == list(GENRES)
    err(client.get("/api/models/999999"), 404, "unknown_model")
    ev = ok(client.get("/api/evaluate", params={"max_tracks": 100}))
    assert "spaces" in ev and "classifiers" in ev
    err(client.get("/api/evaluate", params={"max_tracks": 10**6}), 422, "bad_argument")


def test_status_without_broker_still_answers(web_lib):
    settings = web_lib["index"].settings.with_(broker_url="redis://127.0.0.1:1/0")
    with client_of(create_app(MusicIndex(web_lib["db"], settings))) as c:
        st = ok(c.get("/api/status"))
    assert st["counts"] and st["broker"] != "ok" and st["workers"] == []


def test_database_unreachable_is_503(base_settings):
    dead = Database("postgresql+psycopg2://nobody:x@127.0.0.1:1/none")
    with client_of(create_app(MusicIndex(dead, base_settings))) as c:
        body = err(c.get("/api/tracks/1"), 503, "server_unreachable")
        assert "PostgreSQL" in body["message"]
        r = c.get("/tracks/1")  # pages say it as a page
        assert r.status_code == 503 and "text/html" in r.headers["content-type"]
    dead.dispose()


@pytest.mark.parametrize(
    ("exc", "status", "category"),
    [
        (E.TrackNotFoundError("x"), 404, "unknown_track"),
        (E.InvalidArgumentError("x"), 422, "bad_argument"),
        (E.UnknownGenreError("x"), 422, "unknown_genre"),
        (E.ConfigError("x"), 422, "bad_argument"),
        (E.ModelNotTrainedError("x"), 409, "model_not_trained"),
        (E.NotEnoughDataError("x"), 409, "not_enough_data"),
        (E.CorruptAudioError("x"), 422, "audio_error"),
        (E.DatabaseUnavailableError("x"), 503, "server_unreachable"),
        (E.BrokerUnavailableError("x"), 503, "server_unreachable"),
        (E.PgvectorMissingError("x"), 503, "server_unreachable"),
        (E.SchemaOutdatedError("x"), 503, "schema_outdated"),
        (E.ArtifactIntegrityError("x"), 500, "artifact_integrity"),
        (TimeoutError("x"), 504, "timeout"),
        (E.MusicIndexError("x"), 500, "error"),
    ],
)
def test_error_categories(exc, status, category):
    cat = category_of(exc)
    assert (cat.status, cat.name) == (status, category)


# --------------------------------------------------------------------------- security
def test_changes_need_the_token(web_lib):
    rid = web_lib["ann"]
    no_token = client_of(create_app(web_lib["index"]))
    for method, url in (("post", f"/api/models/{rid}/promote"), ("post", "/api/models/ann/rollback"),
                        ("post", "/api/ingest"), ("post", "/api/train")):  # fmt: skip
        body = err(getattr(no_token, method)(url, json={}), 403, "forbidden")
        assert "MUSICINDEX_API_TOKEN" in body["message"]
        body = err(getattr(no_token, method)(url, json={}, headers={"Authorization": f"Bearer {TOKEN}"}), 403,
                   "forbidden")  # fmt: skip
    index = MusicIndex(web_lib["db"], web_lib["index"].settings.with_(api_token=TOKEN))
    with client_of(create_app(index)) as c:
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN},
                        {"Authorization": f"Basic {TOKEN}"}):  # fmt: skip
            r = c.post(f"/api/models/{rid}/promote", headers=headers)
            err(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer"
        # a cookie never authorizes (CSRF): only the header does
        c.cookies.set("token", TOKEN)
        err(c.post(f"/api/models/{rid}/promote"), 401, "unauthorized")
        # reads need no token
        assert c.get("/api/models").status_code == 200
        # GET on a change endpoint is no change
        assert c.get(f"/api/models/{rid}/promote").status_code == 405


def test_token_actions_promote_rollback_ingest_train(base_settings, tmp_path):
    with scratch_database(base_settings.database_url, prefix="mi_web_admin") as db:
        lib = build_library(db, tmp_path / "audio", n=24, ingested=False)
        settings = base_settings.with_(database_url=db.url, api_token=TOKEN)
        index = MusicIndex(db, settings)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with client_of(create_app(index)) as c:
            # a second kmeans version with complete assignments, then promote / roll back through the API
            km2 = add_version(db, "kmeans", state="candidate", metrics={"silhouette": 0.5})
            with db.engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO cluster_assignments SELECT :v, track_id, cluster FROM cluster_assignments "
                         "WHERE model_version_id = :old"),
                    {"v": km2, "old": lib["kmeans"]},
                )  # fmt: skip
            res = ok(c.post(f"/api/models/{km2}/promote", headers=auth))
            assert res["promoted"] == km2 and lib["kmeans"] in res["retired"] and res["model"]["state"] == "active"
            err(c.post("/api/models/999999/promote", headers=auth), 404, "unknown_model")
            # rolling back to a version without a loadable artifact is refused (nothing changes) ...
            body = err(c.post("/api/models/kmeans/rollback", headers=auth), 409, "model_not_trained")
            assert "artifact" in body["message"]
            assert ok(c.get("/api/models/active"))["kmeans"]["id"] == km2
            # ... to a really trained one it works: two real kmeans runs, then roll back to the first
            first = index.train("kmeans", local=True, quick=True, force=True).versions
            index.train("kmeans", local=True, quick=True, force=True)
            first_id = next(v["id"] for v in first if v["kind"] == "kmeans")
            res = ok(c.post("/api/models/kmeans/rollback", headers=auth))
            assert res["model"]["id"] == first_id and res["model"]["state"] == "active"
            err(c.post("/api/models/nonsense/rollback", headers=auth), 422, "bad_argument")
            # ingest re-scans only folders ingested before
            err(c.post("/api/ingest", headers=auth, json={}), 422, "bad_argument")
            index.ingest([tmp_path / "audio"], wait=False)
            prog = ok(c.get("/api/status"))["progress"]
            assert prog["batch"] is not None and prog["roots"] == [str((tmp_path / "audio").resolve())]
            res = ok(c.post("/api/ingest", headers=auth, json={"label_from": "folder"}))
            assert res["scanned"] == len(lib["audio"])
            err(c.post("/api/ingest", headers=auth, json={"roots": ["/etc"]}), 422, "bad_argument")
            err(c.post("/api/ingest", headers=auth, json={"label_from": "csv:/etc/passwd"}), 422, "bad_argument")
            # training is queued on the workers' queue
            res = ok(c.post("/api/train", headers=auth, json={"models": ["knn"], "quick": True}))
            assert res["status"] == "queued" and res["task_id"]
            err(c.post("/api/train", headers=auth, json={"models": ["nope"]}), 422, "bad_argument")
        index.close()


def test_bind_rules_and_host_header(web_lib, base_settings):
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("::")
    check_bind("127.0.0.1", base_settings)
    with pytest.raises(ConfigError, match="MUSICINDEX_API_TOKEN"):
        check_bind("0.0.0.0", base_settings)
    check_bind("0.0.0.0", base_settings.with_(api_token=TOKEN, allowed_hosts="192.0.2.20"))
    env = {k: v for k, v in os.environ.items() if k != "MUSICINDEX_API_TOKEN"}
    r = run_cli("serve", "--host", "0.0.0.0", "--port", "1", env={**env, **settings_env(web_lib["index"].settings)})
    assert r.returncode == 2 and "MUSICINDEX_API_TOKEN" in r.stderr
    # DNS rebinding: a loopback server answers only to loopback host names
    with client_of(create_app(web_lib["index"])) as c:
        assert c.get("/api/health", headers={"Host": "evil.example"}).status_code == 400
        assert c.get("/api/health", headers={"Host": "127.0.0.1:8765"}).status_code == 200
        assert c.get("/api/health", headers={"Host": "localhost:8765"}).status_code == 200


def test_cors_only_when_configured(web_lib):
    pre = {"Origin": "http://localhost:4533", "Access-Control-Request-Method": "GET"}
    with client_of(create_app(web_lib["index"])) as c:
        r = c.get("/api/health", headers={"Origin": "http://localhost:4533"})
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-origin" not in c.options("/api/health", headers=pre).headers
    settings = web_lib["index"].settings.with_(cors_origins="http://localhost:4533")
    with client_of(create_app(MusicIndex(web_lib["db"], settings))) as c:
        r = c.options("/api/health", headers=pre)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:4533"
        r = c.get("/api/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_web_settings_are_validated(base_settings):
    for bad in (
        {"api_token": "short"},
        {"api_token": "has spaces in the token 12345"},
        {"cors_origins": "*"},
        {"cors_origins": "http://ok.example, ftp://x"},
        {"cors_origins": "https://host/path"},
        {"upload_max_bytes": 10},
        {"allowed_hosts": "a b"},
    ):
        with pytest.raises(ConfigError):
            base_settings.with_(**bad).validate()
    s = base_settings.with_(cors_origins="https://a.example, http://localhost:4533/", allowed_hosts="music.lan, *")
    s.validate()
    assert s.cors_origin_list == ["https://a.example", "http://localhost:4533"] and s.allowed_host_list == [
        "music.lan",
        "*",
    ]


# --------------------------------------------------------------------------- pages
def test_pages_render(client, web_lib):
    rows = web_lib["rows"]
    t = rows[0]
    for url, needle in (
        ("/", "Query by example"),
        (f"/?q={t['title'].split()[0]}", t["title"]),
        (f"/tracks/{t['id']}", f"/api/tracks/{t['id']}/audio"),
        ("/genres/jazz", "Tracks of jazz"),
        (f"/recommend?liked={t['id']}", "Recommended for you"),
        ("/recommend", "Like a few tracks"),
        (f"/playlist?start={rows[0]['id']}&end={rows[5]['id']}&n=5", "Export M3U8"),
        ("/map", "<canvas"),
        ("/status", "Latest failures"),
        ("/models", "Evaluation"),
        ("/tags", "Tags and moods"),
        ("/api/docs", "/api/similar-to-file"),
    ):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        assert needle in r.text, url
        assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
        assert "<script>" not in r.text  # no inline script (the CSP forbids it)
    page = client.get(f"/tracks/{t['id']}").text
    assert t["title"] in page and t["artist"] in page
    assert all(g in page for g in GENRES)  # the genre probabilities
    r = client.get("/tracks/999999")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "no track 999999" in r.text
    r = client.get(f"/tracks/{t['id']}?space=cnn")  # a part that cannot answer says why, the page still renders
    assert r.status_code == 200 and "musicindex train --models cnn" in r.text
    # tags and titles are escaped
    with web_lib["db"].engine.begin() as conn:
        conn.execute(text("UPDATE tracks SET title = '<script>alert(1)</script>' WHERE id = :i"), {"i": rows[7]["id"]})
    try:
        page = client.get(f"/tracks/{rows[7]['id']}").text
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    finally:
        with web_lib["db"].engine.begin() as conn:
            conn.execute(
                text("UPDATE tracks SET title = :t WHERE id = :i"), {"t": rows[7]["title"], "i": rows[7]["id"]}
            )


def test_why_and_tags_render_when_present(client, web_lib, monkeypatch):
    """The page shows the ``why`` of a similar hit and the track's tags when the query layer gives them."""
    index = web_lib["index"]
    real_similar = index.similar
    real_details = index.track_details

    def with_why(*args, **kwargs):
        res = real_similar(*args, **kwargs)
        d = res.to_dict()
        for h in d["items"]:
            h["why"] = {"summary": "both mellow and acoustic; slower (97 vs 120 BPM)",
                        "shared_tags": ["mellow", "acoustic"],
                        "feature_differences": [{"feature": "tempo", "query": 120.0, "hit": 96.5}]}  # fmt: skip

        class R:
            def to_dict(self):
                return d

        return R()

    def with_tags(*args, **kwargs):
        det = real_details(*args, **kwargs)
        from dataclasses import replace

        return replace(det, tags={"mellow": 0.81, "acoustic": 0.55, "rock": 0.02}, tags_model_version=99)

    monkeypatch.setattr(index, "similar", with_why)
    monkeypatch.setattr(index, "track_details", with_tags)
    with client_of(create_app(index)) as c:
        page = c.get(f"/tracks/{web_lib['rows'][0]['id']}").text
    assert "both mellow and acoustic; slower (97 vs 120 BPM)" in page
    assert "tempo:" not in page and "96.50" not in page  # the words of the query layer, no raw column and number
    assert page.count('class="tag"') >= 2 and "mellow" in page and "0.81" in page


# --------------------------------------------------------------------------- indexes (EXPLAIN)
def _plan(db: Database, sql: str) -> str:
    """The plan of a statement already bound (``cursor.mogrify``), sent as it is (its ``%`` are no placeholders)."""
    raw = db.engine.raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute("EXPLAIN (FORMAT JSON) " + sql.replace("%", "%%"), ())
            return json.dumps(cur.fetchone()[0])
    finally:
        raw.close()


def test_search_and_by_genre_use_their_indexes(index):
    """At 50 000 tracks the planner answers search from the trigram index ix_tracks_search_grams (migration 0006)
    and by_genre's predicted part from ix_predictions_genre (migration 0003), not from scans of the tables."""
    from musicindex import textnorm
    from musicindex.db.copy import copy_rows

    db = index.db

    def rows():
        for g in range(1, 50001):
            title, artist, album = (
                f"Song {g}" + (" zebra" if g % 1000 == 0 else ""),
                f"Artist {g % 3000}",
                f"Album {g % 7000}",
            )
            text_ = textnorm.search_text([title, artist, album])
            grams = "{" + ",".join(map(str, textnorm.grams(text_))) + "}"
            label = f"genre{g % 5}" if g % 20 == 0 else None
            yield (f"/b/{g}.flac", title, artist, album, label, "indexed", text_, grams)

    with db.session() as s:
        copy_rows(s, "tracks", ("path", "title", "artist", "album", "label", "status", "search_text", "search_grams"),
                  rows())  # fmt: skip
    vid = add_version(db, "logreg", metrics={"macro_f1": 0.5}, classes=[f"genre{i}" for i in range(5)])
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO predictions SELECT :v, id, 'genre' || (id % 5), 0.2 + 0.8 * ((id * 7919) % 1000) "
                "/ 1000.0, jsonb_build_object('genre' || (id % 5), 0.2 + 0.8 * ((id * 7919) % 1000) / 1000.0) "
                "FROM tracks"
            ),
            {"v": vid},
        )
        conn.execute(text("ANALYZE tracks"))
        conn.execute(text("ANALYZE predictions"))
    res = index.search_tracks("zebra")
    assert len(res) == 20 and res.candidates == 50 and all("zebra" in (t.title or "") for t in res.items)
    assert index.search_tracks("ebr").candidates == 50  # inside a word
    statements: list[str] = []

    from sqlalchemy import event

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append(cursor.mogrify(statement, parameters).decode())

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        index.search_tracks("zebra")
        search_sql = next(s for s in statements if "search_grams @>" in s)
        statements.clear()
        got = index.by_genre("genre3", k=10)
        genre_sql = next(s for s in statements if "UNION ALL" in s)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert "ix_tracks_search_grams" in _plan(db, search_sql)
    assert "ix_predictions_genre" in _plan(db, genre_sql)
    # the same answer as one scan of the version (the SQL function of migration 0002)
    with db.engine.connect() as conn:
        ref = [r[0] for r in conn.execute(text("SELECT track_id FROM musicindex_by_genre('genre3', 10)"))]
    assert got.ids == ref


def test_cli_m3u_option(web_lib, tmp_path):
    env = settings_env(web_lib["index"].settings)
    rows = web_lib["rows"]
    out = tmp_path / "similar.m3u8"
    r = run_cli("similar", str(rows[12]["id"]), "-k", "4", "--space", "ann", "--m3u", str(out), "--m3u-base", "/music",
                env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    hits = web_lib["index"].similar(rows[12]["id"], k=4, space="ann")
    assert lines[0] == "#EXTM3U" and [ln for ln in lines if not ln.startswith("#")] == [
        os.path.relpath(h.path, "/music") for h in hits
    ]
    out2 = tmp_path / "genre.m3u8"
    r = run_cli("by-genre", "jazz", "-k", "3", "--m3u", str(out2), "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["query"] == "by_genre"  # --json output stays pure JSON
    assert [ln for ln in out2.read_text().splitlines() if not ln.startswith("#")] == [
        h.path for h in web_lib["index"].by_genre("jazz", k=3)
    ]
    for args in (
        ("recommend", "--like", str(rows[0]["id"]), "-k", "3"),
        ("playlist", str(rows[0]["id"]), str(rows[1]["id"]), "-n", "4"),
    ):
        out3 = tmp_path / f"{args[0]}.m3u8"
        r = run_cli(*args, "--m3u", str(out3), env=env)
        assert r.returncode == 0, r.stderr
        assert out3.read_text().startswith("#EXTM3U\n") and "wrote" in r.stdout


def test_pretrained_tags_default_space_and_why(base_settings, tmp_path):
    """With a musicnn version: details carry its tags (best first), it is the default space, hits say why."""
    with scratch_database(base_settings.database_url, prefix="mi_web_mnn") as db:
        lib = build_library(db, tmp_path / "audio", n=36, musicnn=True)
        index = MusicIndex(db, base_settings.with_(database_url=db.url))
        with client_of(create_app(index)) as c:
            r0 = lib["rows"][3]
            d = ok(c.get(f"/api/tracks/{r0['id']}"))
            assert d["tags_model_version"] == lib["musicnn"] and len(d["tags"]) == len(TAGS)
            probs = list(d["tags"].values())
            assert probs == sorted(probs, reverse=True)
            assert next(iter(d["tags"])) == GENRE_TAGS[r0["label"]][0]
            spaces = {s["space"]: s for s in ok(c.get("/api/spaces"))}
            assert spaces["musicnn"]["default"] and spaces["musicnn"]["dimension"] == 200
            res = ok(c.get(f"/api/tracks/{r0['id']}/similar", params={"k": 5}))
            assert res["space"] == "musicnn" and all(h["why"] and h["why"]["summary"] for h in res["items"])
            page = c.get(f"/tracks/{r0['id']}").text
            assert 'class="tag"' in page and GENRE_TAGS[r0["label"]][0] in page
            assert ok(c.get("/api/map"))["space"] == "musicnn"
        index.close()
