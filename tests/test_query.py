"""The query layer against real PostgreSQL + pgvector.

Model versions, predictions and embeddings are INSERTed directly (synthetic vectors, with
the per-version partial HNSW index exactly as training creates it): legitimate test data
for a layer that only reads. The ``features`` space is also tested on really ingested audio.
"""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest
import sqlalchemy.exc
from sqlalchemy import text

import musicindex.query.spaces as query_spaces
from musicindex import ingest
from musicindex.errors import (
    AudioError,
    InvalidArgumentError,
    ModelNotTrainedError,
    TrackNotFoundError,
    UnknownGenreError,
)
from musicindex.localworker import settings_env
from musicindex.query.filters import Filters
from musicindex.query.options import SearchOptions
from musicindex.query.results import QueryResult
from musicindex.query.search import ef_search_for, search_sql
from musicindex.query.snapshot import snapshot
from musicindex.query.spaces import open_space
from musicindex.sample.library import generate_library
from musicindex.vocab import FEATURE_NAMES, N_FEATURES
from tests.conftest import run_cli

GENRES = ["rock", "jazz", "techno", "ambient"]
INJECTION = "x'; DROP TABLE tracks; --"


# --------------------------------------------------------------------------- test data
def vec_text(v) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in v) + "]"


def insert_tracks(
    db, n: int, *, seed: int = 0, artists_per_genre: int = 4, albums_per_artist: int = 2, with_features: bool = True
) -> list[dict]:
    """n indexed tracks over GENRES; features drawn around a per-genre centre."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(len(GENRES), N_FEATURES))
    rows = []
    for i in range(n):
        g = i % len(GENRES)
        a = (i // len(GENRES)) % artists_per_genre
        al = (i // (len(GENRES) * artists_per_genre)) % albums_per_artist
        rows.append(
            {
                "path": f"/music/{GENRES[g]}/t{i:05d}.wav",
                "title": f"Title {i}",
                "artist": f"{GENRES[g]} artist {a}",
                "album": f"{GENRES[g]} artist {a} album {al}",
                "label": GENRES[g],
                "g": g,
                "feat": centres[g] + rng.normal(0, 1, N_FEATURES) + 10,
            }
        )
    with db.engine.begin() as conn:
        for r in rows:
            r["id"] = conn.execute(
                text(
                    "INSERT INTO tracks (path, title, artist, album, label, label_source, status) "
                    "VALUES (:path, :title, :artist, :album, :label, 'folder', 'indexed') RETURNING id"
                ),
                {k: r[k] for k in ("path", "title", "artist", "album", "label")},
            ).scalar_one()
            if with_features:
                cols = ", ".join(FEATURE_NAMES)
                vals = ", ".join(f":f{j}" for j in range(N_FEATURES))
                params = {f"f{j}": float(x) for j, x in enumerate(r["feat"])}
                conn.execute(
                    text(
                        f"INSERT INTO track_features (track_id, version, vec, {cols}) "
                        f"VALUES (:id, 1, CAST(:vec AS vector), {vals})"
                    ),
                    {"id": r["id"], "vec": vec_text(r["feat"]), **params},
                )
    return rows


def make_version(
    db,
    kind: str,
    *,
    dim: int | None = None,
    vectors: dict | None = None,
    space: str | None = None,
    index: bool = True,
    state: str = "active",
    metrics: dict | None = None,
    classes: list | None = None,
    params: dict | None = None,
) -> int:
    """A model version row; with ``vectors`` its embeddings and its partial HNSW index."""
    with db.engine.begin() as conn:
        if state == "active":
            conn.execute(
                text("UPDATE model_versions SET state = 'retired' WHERE kind = :k AND state = 'active'"), {"k": kind}
            )
        vid = conn.execute(
            text(
                "INSERT INTO model_versions (kind, state, embedding_dim, metrics, classes, params) "
                "VALUES (:k, :s, :d, CAST(:m AS jsonb), CAST(:c AS jsonb), CAST(:p AS jsonb)) RETURNING id"
            ),
            {
                "k": kind,
                "s": state,
                "d": dim,
                "m": json.dumps(metrics or {}),
                "c": json.dumps(classes) if classes is not None else None,
                "p": json.dumps(params or {}),
            },
        ).scalar_one()
        if vectors:
            conn.execute(
                text(
                    "INSERT INTO embeddings (model_version_id, track_id, space, embedding) "
                    "VALUES (:v, :t, :s, CAST(:e AS vector))"
                ),
                [{"v": vid, "t": t, "s": space, "e": vec_text(e)} for t, e in vectors.items()],
            )
        if vectors is not None and index:
            conn.execute(
                text(
                    f"CREATE INDEX ix_emb_hnsw_v{vid} ON embeddings USING hnsw "
                    f"((embedding::vector({dim})) vector_cosine_ops) WHERE model_version_id = {vid}"
                )
            )
    return vid


def clustered(rows, dim: int, seed: int = 1, noise: float = 0.3) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, size=(len(GENRES), dim))
    return {r["id"]: centres[r["g"]] + rng.normal(0, noise, dim) for r in rows}


def add_genre_model(db, rows, kind: str = "logreg", macro_f1: float = 0.8) -> int:
    vid = make_version(
        db,
        kind,
        metrics={
            "macro_f1": macro_f1,
            "cv_macro_f1_mean": macro_f1,
            "accuracy": 0.8,
            "cv_accuracy_mean": 0.78,
            "cv_accuracy_std": 0.02,
        },
        classes=GENRES,
    )
    rng = np.random.default_rng(5)
    with db.engine.begin() as conn:
        for r in rows:
            p = rng.dirichlet(np.ones(len(GENRES)))
            p = 0.5 * p + 0.5 * np.eye(len(GENRES))[r["g"]]
            conn.execute(
                text("INSERT INTO predictions VALUES (:v, :t, :g, :c, CAST(:p AS jsonb))"),
                {
                    "v": vid,
                    "t": r["id"],
                    "g": GENRES[int(np.argmax(p))],
                    "c": float(p.max()),
                    "p": json.dumps({g: float(x) for g, x in zip(GENRES, p, strict=True)}),
                },
            )
    return vid


@pytest.fixture
def lib(index):
    """80 tracks with features, a genre model, an ann space (32-d) and a kmeans clustering."""
    rows = insert_tracks(index.db, 80)
    gm = add_genre_model(index.db, rows)
    ann = make_version(
        index.db,
        "ann",
        dim=32,
        vectors=clustered(rows, 32),
        space="ann",
        metrics={"macro_f1": 0.7, "cv_macro_f1_mean": 0.7, "cv_accuracy_mean": 0.7},
        classes=GENRES,
    )
    with index.db.engine.begin() as conn:  # as training records it: the tracks the ann never saw (every 4th)
        conn.execute(
            text("UPDATE model_versions SET snapshot = CAST(:s AS jsonb) WHERE id = :v"),
            {"v": ann, "s": json.dumps({"heldout_track_ids": [r["id"] for r in rows[::4]]})},
        )
    km = make_version(index.db, "kmeans")
    with index.db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO cluster_assignments VALUES (:v, :t, :c)"),
            [{"v": km, "t": r["id"], "c": r["g"]} for r in rows],
        )
    return {"rows": rows, "gm": gm, "ann": ann, "kmeans": km}


def sql_similar(db, track_id: int, k: int, space: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT track_id, distance, model_version_id FROM musicindex_similar(:t, :k, :s)"),
                {"t": track_id, "k": k, "s": space},
            )
        ]


# --------------------------------------------------------------------------- similar
def test_similar_features_without_scaler_and_sql_agrees(index, lib):
    rows = lib["rows"]
    seed = rows[0]
    res = index.similar(seed["id"], k=10)
    assert isinstance(res, QueryResult)
    assert res.space == "features" and res.model_version_id is None and res.dimension == 43
    assert res.method == "exact" and len(res) == 10
    assert seed["id"] not in res.ids
    d = [h.distance for h in res]
    assert d == sorted(d)
    # same genre cluster dominates
    assert sum(h.genre == seed["label"] for h in res) >= 8
    # by path gives the same answer
    assert index.similar(seed["path"], k=10).ids == res.ids
    # exact numpy reference: standardize with the table's statistics
    feats = np.array([r["feat"] for r in rows])
    z = (feats - feats.mean(0)) / feats.std(0)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    sims = z @ z[0]
    sims[0] = -np.inf
    assert res.ids == [rows[i]["id"] for i in np.argsort(-sims)[:10]]
    # the SQL function answers the same
    sql = sql_similar(index.db, seed["id"], 10, "features")
    assert [r[0] for r in sql] == res.ids
    assert np.allclose([r[1] for r in sql], d, atol=1e-5)
    assert all(r[2] is None for r in sql)
    js = res.to_dict()
    json.dumps(js)
    assert js["items"][0]["id"] == res.ids[0] and js["model_version_id"] is None


def test_similar_ann_space_exact_small_collection_and_sql(index, lib):
    rows = lib["rows"]
    res = index.similar(rows[3]["id"], k=5, space="ann")
    assert res.model_version_id == lib["ann"] and res.dimension == 32
    assert res.method == "exact"  # 80 vectors < 10 000
    assert all(h.model_version == lib["ann"] and h.space == "ann" for h in res)
    assert all(h.genre == rows[3]["label"] for h in res)
    sql = sql_similar(index.db, rows[3]["id"], 5, "ann")
    assert [r[0] for r in sql] == res.ids and all(r[2] == lib["ann"] for r in sql)
    assert np.allclose([r[1] for r in sql], [h.distance for h in res], atol=1e-6)


def test_similar_with_scaler_version_uses_its_embeddings(index, lib):
    rows = lib["rows"]
    feats = np.array([r["feat"] for r in rows])
    mean, scale = feats.mean(0), feats.std(0)
    vecs = {r["id"]: (r["feat"] - mean) / scale for r in rows}
    sv = make_version(
        index.db,
        "scaler",
        dim=43,
        vectors=vecs,
        space="features",
        params={"mean": mean.tolist(), "scale": scale.tolist()},
    )
    res = index.similar(rows[0]["id"], k=10)
    assert res.model_version_id == sv and res.space == "features"
    assert all(h.model_version == sv for h in res)
    assert [r[0] for r in sql_similar(index.db, rows[0]["id"], 10, "features")] == res.ids


def test_similar_filters_genre_and_same_artist(index, lib):
    rows = lib["rows"]
    seed = rows[0]
    res = index.similar(seed["id"], k=10, space="ann", genre="jazz")
    assert len(res) == 10 and all(h.genre == "jazz" for h in res)
    res = index.similar(seed["id"], k=15, space="ann", exclude_same_artist=True)
    assert len(res) == 15 and all(h.artist != seed["artist"] for h in res)


def test_bad_input(index, lib):
    rid = lib["rows"][0]["id"]
    with pytest.raises(TrackNotFoundError, match="musicindex status"):
        index.similar(999_999)
    with pytest.raises(TrackNotFoundError):
        index.similar("/nowhere/x.wav")
    for k in (0, -1, 1001, 2.5, True):
        with pytest.raises(InvalidArgumentError):
            index.similar(rid, k=k)
    with pytest.raises(InvalidArgumentError, match="features, ann, cnn"):
        index.similar(rid, space="mfcc")
    with pytest.raises(ModelNotTrainedError, match="musicindex train --models cnn"):
        index.similar(rid, space="cnn")
    with pytest.raises(UnknownGenreError, match="ambient, jazz, rock, techno"):
        index.similar(rid, genre="polka")
    with pytest.raises(InvalidArgumentError):
        index.recommend([], k=5)
    with pytest.raises(InvalidArgumentError):
        index.playlist(rid, rid, n=5)
    with pytest.raises(InvalidArgumentError):
        index.playlist(rid, lib["rows"][1]["id"], n=1)
    with pytest.raises(InvalidArgumentError):
        index.cluster_of(rid, model="dbscan")
    with pytest.raises(InvalidArgumentError):
        index.recommend([rid], artist_spacing=-1)


def test_injection_strings_are_data(index, lib):
    with pytest.raises(TrackNotFoundError):
        index.similar(INJECTION)
    with pytest.raises(UnknownGenreError):
        index.similar(lib["rows"][0]["id"], genre=INJECTION)
    with pytest.raises(UnknownGenreError):
        index.by_genre(INJECTION)
    res = index.recommend([lib["rows"][0]["id"]], exclude_artists=[INJECTION], k=3)
    assert len(res) == 3
    with index.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tracks")).scalar_one() == 80
        with pytest.raises(Exception, match="unknown space"):
            conn.execute(text("SELECT * FROM musicindex_similar(1, 10, :s)"), {"s": INJECTION})
        conn.rollback()
        assert conn.execute(text("SELECT count(*) FROM musicindex_by_genre(:g, 5)"), {"g": INJECTION}).scalar_one() == 0
    with index.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tracks")).scalar_one() == 80


# --------------------------------------------------------------------------- recommend / playlist
def _check_diversity(items, spacing: int):
    for prev, cur in itertools.pairwise(items):
        assert prev.album != cur.album, (prev, cur)
    for i, h in enumerate(items):
        for p in items[max(0, i - spacing) : i]:
            assert p.artist != h.artist, (i, h.artist)


def test_recommend_diversity_and_exclusions(index, lib):
    rows = lib["rows"]
    liked = [rows[0]["id"], rows[4]["id"]]  # two rock tracks
    res = index.recommend(liked, k=8, space="ann")
    assert len(res) == 8 and not set(liked) & set(res.ids)
    assert res.model_version_id == lib["ann"]
    _check_diversity(res.items, 3)
    # rock has 4 artists: with spacing 3 the nearest 8 rock tracks cycle through all of them
    assert {h.genre for h in res} == {"rock"}
    # without the rules the sinkhole shows: consecutive tracks from one album appear
    plain = index.recommend(liked, k=8, space="ann", artist_spacing=0, album_spacing=False)
    assert len(plain) == 8
    # exclusion lists
    res = index.recommend(
        liked,
        k=10,
        space="ann",
        exclude_artists=["ROCK artist 1"],
        exclude_genres=["jazz"],
        exclude_tracks=[rows[8]["path"], rows[12]["id"]],
    )
    assert all(h.artist != "rock artist 1" and h.genre != "jazz" for h in res)
    assert rows[8]["id"] not in res.ids and rows[12]["id"] not in res.ids
    _check_diversity(res.items, 3)
    # dislikes push away from their genre
    dis = index.recommend([rows[0]["id"]], disliked=[rows[1]["id"]], k=10, space="features", artist_spacing=1)
    assert rows[1]["id"] not in dis.ids
    assert sum(h.genre == "jazz" for h in dis) == 0
    _check_diversity(dis.items, 1)


def test_playlist_smooth_path(index, lib):
    rows = lib["rows"]
    a, b = rows[0], rows[2]  # rock -> techno
    res = index.playlist(a["id"], b["path"], n=8, space="ann")
    assert res.ids[0] == a["id"] and res.ids[-1] == b["id"] and len(res) == 8
    assert len(set(res.ids)) == 8
    _check_diversity(res.items, 3)
    genres = [h.genre for h in res]
    # starts among rock, ends among techno
    assert genres[1] == "rock" and genres[-2] == "techno"
    res2 = index.playlist(a["id"], b["id"], n=6, space="features", exclude_genres=["jazz"], artist_spacing=2)
    assert len(res2) == 6 and "jazz" not in [h.genre for h in res2]
    _check_diversity(res2.items, 2)


def _albums(db, rows) -> None:
    """Album rows for the test tracks (one artist per album), so that ``album_id`` names each track's album."""
    with db.engine.begin() as conn:
        for name in sorted({r["album"] for r in rows}):
            artist = conn.execute(
                text("INSERT INTO artists (name, name_key, sort_key) VALUES (:n, :n, :n) RETURNING id"), {"n": name}
            ).scalar_one()
            album = conn.execute(
                text("INSERT INTO albums (artist_id, name, name_key, sort_key) VALUES (:a, :n, :n, :n) RETURNING id"),
                {"a": artist, "n": name},
            ).scalar_one()
            conn.execute(text("UPDATE tracks SET album_id = :al WHERE album = :n"), {"al": album, "n": name})


def test_one_set_of_search_options_reaches_every_similarity_question(index, lib):
    """similar, recommend and playlist take the same SearchOptions (or its fields as keywords): the filters apply to
    each alike, the answer records them, and an unknown genre is refused where the snapshot resolves them."""
    from musicindex.errors import UnknownGenreError

    rows = lib["rows"]
    _albums(index.db, rows)
    seed = rows[0]
    opts = SearchOptions(k=20, space="ann", exclude_same_album=True)
    res = index.similar(seed["id"], opts)
    assert len(res) == 20 and seed["album"] not in {h.album for h in res}
    assert index.similar(seed["id"], k=20, space="ann", exclude_same_album=True).ids == res.ids
    assert res.params["exclude_same_album"] is True and res.params["track"] == seed["id"]
    assert seed["album"] in {h.album for h in index.similar(seed["id"], k=20, space="ann")}  # the filter did it
    two = index.similar(seed["id"], k=30, space="ann", genre=["jazz", "techno"])
    assert len(two) == 30 and {h.genre for h in two} == {"jazz", "techno"}
    spread = index.similar(seed["id"], SearchOptions(k=8, space="ann", artist_spacing=2))
    artists = [h.artist for h in spread]
    assert len(spread) == 8 and all(a not in artists[i + 1 : i + 3] for i, a in enumerate(artists))
    assert spread.params["artist_spacing"] == 2
    rec = index.recommend([seed["id"]], options=SearchOptions(k=6, space="ann", genres=("jazz",)))
    assert len(rec) == 6 and {h.genre for h in rec} == {"jazz"}
    pair = [rows[0], rows[4]]  # two liked tracks of two artists: both artists are left out
    rec = index.recommend([r["id"] for r in pair], k=10, space="ann", exclude_same_artist=True)
    assert len(rec) == 10 and not {h.artist for h in rec} & {r["artist"] for r in pair}
    a = next(r for r in rows if r["label"] == "rock")
    b = next(r for r in rows if r["label"] == "jazz")
    pl = index.playlist(a["id"], b["id"], n=6, space="ann", genre=["rock", "jazz"])
    assert pl.ids[0] == a["id"] and pl.ids[-1] == b["id"] and {h.genre for h in pl.items} <= {"rock", "jazz"}
    with pytest.raises(UnknownGenreError, match="polka"):
        index.recommend([seed["id"]], genre="polka")
    with pytest.raises(InvalidArgumentError, match="unknown search option 'genre_of'"):
        index.similar(seed["id"], genre_of="jazz")  # type: ignore[call-arg]


# --------------------------------------------------------------------------- genres and clusters
def test_genre_of_by_genre_cluster_of_and_sql(index, lib):
    rows = lib["rows"]
    g = index.genre_of(rows[1]["id"])
    assert g.model_version_id == lib["gm"] and g.model_kind == "logreg"
    assert g.genre == "jazz" and g.label == "jazz"
    assert abs(sum(g.probabilities.values()) - 1) < 1e-6 and g.confidence == max(g.probabilities.values())
    json.dumps(g.to_dict())
    with index.db.engine.connect() as conn:
        r = conn.execute(
            text("SELECT genre, confidence, model_version_id, model_kind FROM musicindex_genre_of(:t)"),
            {"t": rows[1]["id"]},
        ).one()
        assert (r[0], r[2], r[3]) == ("jazz", lib["gm"], "logreg") and abs(r[1] - g.confidence) < 1e-9
        view = conn.execute(
            text("SELECT genre, predicted_genre, cluster, genre_model_version_id FROM musicindex_tracks WHERE id = :t"),
            {"t": rows[1]["id"]},
        ).one()
        assert tuple(view) == ("jazz", "jazz", 1, lib["gm"])
        sqlg = [r[0] for r in conn.execute(text("SELECT track_id FROM musicindex_by_genre('techno', 5)"))]
    bg = index.by_genre("techno", k=5)
    assert bg.ids == sqlg and len(bg) == 5 and all(h.genre == "techno" for h in bg)
    scores = [h.score for h in bg]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(UnknownGenreError, match="jazz"):
        index.by_genre("polka")
    c = index.cluster_of(rows[2]["path"])
    assert c.cluster == 2 and c.size == 20 and c.model_version_id == lib["kmeans"]
    with pytest.raises(ModelNotTrainedError, match="birch"):
        index.cluster_of(rows[2]["id"], model="birch")


def test_genre_model_choice(index, lib):
    rows = lib["rows"]
    # the ann version has a lower macro_f1 -> auto keeps logreg; a better knn wins
    better = add_genre_model(index.db, rows, kind="knn", macro_f1=0.95)
    assert index.genre_of(rows[0]["id"]).model_version_id == better
    with index.db.engine.connect() as conn:
        assert conn.execute(text("SELECT musicindex_genre_model_version()")).scalar_one() == better
        assert conn.execute(text("SELECT musicindex_genre_model_version('logreg')")).scalar_one() == lib["gm"]
    try:  # the training layer's registry applies the same rule
        from musicindex.ml.registry import genre_model_version
    except ImportError:
        pass
    else:
        with index.db.session() as session:
            assert genre_model_version(session, "auto").id == better
    index.settings = index.settings.with_(genre_model="logreg")
    assert index.genre_of(rows[0]["id"]).model_version_id == lib["gm"]
    index.settings = index.settings.with_(genre_model="cnn")
    with pytest.raises(ModelNotTrainedError, match="cnn"):
        index.genre_of(rows[0]["id"])


def test_no_models_errors(index):
    rows = insert_tracks(index.db, 8)
    with pytest.raises(ModelNotTrainedError, match="musicindex train"):
        index.genre_of(rows[0]["id"])
    with pytest.raises(ModelNotTrainedError, match="musicindex train --models ann"):
        index.similar(rows[0]["id"], space="ann")
    with pytest.raises(ModelNotTrainedError):
        index.cluster_of(rows[0]["id"])
    # labels alone make genres known
    assert len(index.by_genre("rock", k=3)) == 2
    with index.db.engine.connect() as conn, pytest.raises(Exception, match="musicindex train --models ann"):
        conn.execute(text("SELECT * FROM musicindex_similar(:t, 5, 'ann')"), {"t": rows[0]["id"]})


# --------------------------------------------------------------------------- consistency
def test_query_runs_in_one_read_only_repeatable_read_snapshot(index, lib):
    with snapshot(index.db) as snap:
        assert snap.one("SHOW transaction_isolation")[0] == "repeatable read"
        assert snap.one("SHOW transaction_read_only")[0] == "on"
        before = snap.versions["ann"].id
        # another session promotes a new ann version meanwhile
        newer = make_version(index.db, "ann", dim=32, vectors=clustered(lib["rows"], 32, seed=9), space="ann")
        sp = open_space(snap, "ann")
        assert sp.version_id == before
        with pytest.raises(sqlalchemy.exc.InternalError, match="read-only transaction"):
            snap.conn.exec_driver_sql("DELETE FROM tracks")
    res = index.similar(lib["rows"][0]["id"], space="ann")
    assert res.model_version_id == newer and all(h.model_version == newer for h in res)


# --------------------------------------------------------------------------- HNSW at scale
@pytest.fixture
def big(index):
    """20 000 tracks with 32-d clustered ann vectors (generated server-side) and the HNSW index."""
    n, dim = 20_000, 32
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1, size=(50, dim))
    labels = np.arange(n) % 50
    vecs = centres[labels] + rng.normal(0, 0.35, size=(n, dim))
    with index.db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tracks (path, title, artist, album, label, status) "
                "SELECT '/big/' || g, 'T' || g, 'artist ' || (g % 500), 'album ' || (g % 1000), "
                "'g' || (g % 50), 'indexed' FROM generate_series(0, :n - 1) g"
            ),
            {"n": n},
        )
        ids = [r[0] for r in conn.execute(text("SELECT id FROM tracks ORDER BY id"))]
    vid = make_version(index.db, "ann", dim=dim, vectors=None, index=False)
    raw = index.db.engine.raw_connection()
    try:
        import io

        buf = io.StringIO("".join(f"{vid}\t{t}\tann\t{vec_text(v)}\n" for t, v in zip(ids, vecs, strict=True)))
        with raw.cursor() as cur:
            cur.copy_expert("COPY embeddings (model_version_id, track_id, space, embedding) FROM STDIN", buf)
            cur.execute("SET maintenance_work_mem = '256MB'")
            cur.execute(
                f"CREATE INDEX ix_emb_hnsw_v{vid} ON embeddings USING hnsw "
                f"((embedding::vector({dim})) vector_cosine_ops) WHERE model_version_id = {vid}"
            )
            cur.execute("ANALYZE embeddings; ANALYZE tracks")
        raw.commit()
    finally:
        raw.close()
    vecs_u = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    return {"vid": vid, "ids": np.array(ids), "vecs": vecs_u, "labels": labels}


def test_hnsw_plan_recall_and_filters_at_20k(index, big):
    vid, ids, vecs = big["vid"], big["ids"], big["vecs"]
    with snapshot(index.db) as snap:
        sp = open_space(snap, "ann")
        assert sp.method == "hnsw" and sp.version_id == vid
        for filters in (
            Filters(exclude_ids=(int(ids[0]),)),
            Filters(exclude_ids=(int(ids[0]),), exclude_genres=("g7",), exclude_artists=("artist 3",)),
        ):
            prefix, sql, params = search_sql(snap, sp, vecs[0], 10, filters)
            snap.conn.exec_driver_sql(prefix)
            plan = "\n".join(r[0] for r in snap.all("EXPLAIN " + sql, params))
            assert f"Index Scan using ix_emb_hnsw_v{vid}" in plan, plan
        exact_sp = open_space(snap, "ann", exact=True)
        prefix, sql, params = search_sql(snap, exact_sp, vecs[0], 10)
        plan = "\n".join(r[0] for r in snap.all("EXPLAIN " + sql, params))
        assert "hnsw" not in plan
    # recall@10 against exact search
    rng = np.random.default_rng(0)
    recalls, times = [], []
    for qi in rng.choice(len(ids), 30, replace=False):
        t0 = time.perf_counter()
        res = index.similar(int(ids[qi]), k=10, space="ann")
        times.append(time.perf_counter() - t0)
        assert res.method == "hnsw" and res.ef_search == ef_search_for(10) == 200 and len(res) == 10
        sims = vecs @ vecs[qi]
        sims[qi] = -np.inf
        truth = set(ids[np.argsort(-sims)[:10]].tolist())
        recalls.append(len(truth & set(res.ids)) / 10)
        ex = index.similar(int(ids[qi]), k=10, space="ann", exact=True)
        assert ex.method == "exact" and set(ex.ids) == truth
    assert np.mean(recalls) >= 0.9, recalls
    # filtered queries keep k results (iterative index scans; for a filter as selective as this
    # one, 2 % of the tracks, the planner may rather filter first and sort the few rows exactly)
    res = index.similar(int(ids[0]), k=30, space="ann", genre="g7")
    assert len(res) == 30 and all(h.genre == "g7" for h in res)
    assert [h.distance for h in res] == sorted(h.distance for h in res)
    sql = sql_similar(index.db, int(ids[5]), 10, "ann")
    api = index.similar(int(ids[5]), k=10, space="ann")
    assert [r[0] for r in sql] == api.ids and sql[0][2] == vid


# --------------------------------------------------------------------------- migrations
def test_migration_0002_downgrade_and_upgrade(fresh_db):
    def names(conn):
        return {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT proname FROM pg_proc WHERE proname LIKE 'musicindex%' UNION "
                    "SELECT viewname FROM pg_views WHERE viewname LIKE 'musicindex%'"
                )
            )
        }

    with fresh_db.engine.connect() as conn:
        assert {"musicindex_similar", "musicindex_genre_of", "musicindex_tracks", "musicindex_by_genre"} <= names(conn)
    fresh_db.downgrade("0001")
    with fresh_db.engine.connect() as conn:
        assert names(conn) == set()
    fresh_db.upgrade()
    assert fresh_db.schema_info().at_head
    with fresh_db.engine.connect() as conn:
        assert "musicindex_similar" in names(conn)


# --------------------------------------------------------------------------- real audio, features space
@pytest.fixture
def audio_lib(index, tmp_path):
    root = tmp_path / "lib"
    tracks = generate_library(
        root, per_genre=4, genres=["techno", "ambient", "metal"], duration=6.0, formats=("wav",), seed=3
    )
    reg = ingest.register(index.db, [root], label_from="folder")
    ingest.process_tracks(index.db, reg.queued_ids)
    return {"root": root, "tracks": tracks}


def test_features_space_on_ingested_audio(index, audio_lib, tmp_path):
    tracks = audio_lib["tracks"]
    seed = str(tracks[0].path)
    res = index.similar(seed, k=5)
    assert len(res) == 5 and res.model_version_id is None and res.method == "exact"
    assert seed not in [h.path for h in res]
    assert sum(h.genre == tracks[0].genre for h in res) >= 2
    with index.db.engine.connect() as conn:
        tid = conn.execute(text("SELECT id FROM tracks WHERE path = :p"), {"p": seed}).scalar_one()
    assert [r[0] for r in sql_similar(index.db, tid, 5, "features")] == res.ids
    # a file that is not in the index: analysed, not stored
    outside = tmp_path / "outside"
    extra = generate_library(outside, per_genre=1, genres=["metal"], duration=6.0, formats=("wav",), seed=77)
    by_file = index.similar_to_file(extra[0].path, k=4)
    assert len(by_file) == 4 and by_file.query == "similar_to_file"
    with index.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tracks")).scalar_one() == len(tracks)
    # the indexed file itself is its own nearest neighbour
    assert index.similar_to_file(seed, k=1).items[0].path == seed
    bad = tmp_path / "notes.mp3"
    bad.write_text("this is not audio at all")
    with pytest.raises(AudioError):
        index.similar_to_file(bad)
    with pytest.raises(ModelNotTrainedError):
        index.similar_to_file(seed, space="ann")
    rec = index.recommend([seed, str(tracks[1].path)], k=4, artist_spacing=1)
    assert len(rec) >= 3
    _check_diversity(rec.items, 1)
    pl = index.playlist(seed, str(tracks[-1].path), n=6, artist_spacing=1)
    assert pl.items[0].path == seed and pl.items[-1].path == str(tracks[-1].path)
    report = index.evaluate()
    assert report.labelled_tracks == len(tracks)
    [fs] = report.spaces
    assert fs.space == "features" and 0 <= fs.precision_at_10 <= 1 and 0 <= fs.never_in_top10 <= 1


def test_evaluate_spaces_and_classifiers(index, lib):
    rep = index.evaluate()
    spaces = {s.space: s for s in rep.spaces}
    assert set(spaces) == {"features", "ann"}
    assert spaces["ann"].queries == spaces["features"].queries == 20  # the held-out tracks only
    assert spaces["ann"].precision_at_10 > 0.95 and spaces["features"].precision_at_10 > 0.8
    assert spaces["ann"].model_version_id == lib["ann"]
    kinds = {c.kind: c for c in rep.classifiers}
    assert kinds["logreg"].cv_accuracy_mean == 0.78 and kinds["logreg"].genre_model
    assert not kinds["ann"].genre_model
    json.dumps(rep.to_dict())


# --------------------------------------------------------------------------- CLI
def test_cli_queries_exit_codes_and_json(index, lib):
    env = settings_env(index.settings)
    rows = lib["rows"]
    r = run_cli("similar", str(rows[0]["id"]), "-k", "3", "--space", "ann", "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model_version_id"] == lib["ann"] and len(out["items"]) == 3
    r = run_cli("similar", rows[0]["path"], "-k", "3", env=env)
    assert r.returncode == 0 and "similar to" in r.stdout
    cases = [
        (("similar", "424242"), 6, "musicindex status"),
        (("similar", str(rows[0]["id"]), "-k", "0"), 2, "between 1 and 1000"),
        (("similar", str(rows[0]["id"]), "--space", "nope"), 2, "features, ann, cnn"),
        (("similar", str(rows[0]["id"]), "--space", "cnn"), 8, "musicindex train --models cnn"),
        (("similar", str(rows[0]["id"]), "--genre", "polka"), 2, "known genres"),
        (("similar-file", "/no/such/file.wav"), 5, ""),
    ]
    for args, code, msg in cases:
        r = run_cli(*args, env=env)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        assert msg in r.stderr, (args, r.stderr)
    r = run_cli(
        "recommend",
        "--like",
        str(rows[0]["id"]),
        "--like",
        rows[4]["path"],
        "--dislike",
        str(rows[1]["id"]),
        "-k",
        "4",
        "--space",
        "ann",
        "--json",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["items"]) == 4
    r = run_cli("genre", str(rows[1]["id"]), "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["genre"] == "jazz"
    r = run_cli("genre", str(rows[1]["id"]), env=env)
    assert r.returncode == 0 and "jazz" in r.stdout
    r = run_cli("cluster", str(rows[2]["id"]), env=env)
    assert r.returncode == 0 and "cluster 2" in r.stdout
    r = run_cli("playlist", str(rows[0]["id"]), str(rows[2]["id"]), "-n", "5", "--space", "ann", "--json", env=env)
    assert r.returncode == 0 and len(json.loads(r.stdout)["items"]) == 5
    r = run_cli("evaluate", env=env)
    assert r.returncode == 0 and "precision" in r.stdout and "logreg" in r.stdout
    r = run_cli("evaluate", "--json", env=env)
    assert r.returncode == 0 and {s["space"] for s in json.loads(r.stdout)["spaces"]} == {"features", "ann"}


# --------------------------------------------------------------------------- bounds and hostile data (#13)
def test_every_argument_is_bounded_and_queries_time_out(index, lib, monkeypatch):
    from musicindex.errors import QueryTimeoutError

    rows = lib["rows"]
    with pytest.raises(InvalidArgumentError, match="at most 1000"):
        index.recommend([rows[0]["id"]], exclude_artists=[f"a{i}" for i in range(1001)])
    with pytest.raises(InvalidArgumentError, match="at most 1000"):
        index.recommend([rows[0]["id"]], exclude_tracks=list(range(1001)))
    with pytest.raises(InvalidArgumentError, match="at most 200 tracks"):
        index.playlist(rows[0]["id"], rows[1]["id"], n=500)
    with pytest.raises(InvalidArgumentError, match="max_tracks must be an integer between 2 and 50000"):
        index.evaluate(max_tracks=10**7)
    monkeypatch.setattr(query_spaces, "EXACT_MAX", 10)
    with pytest.raises(InvalidArgumentError, match="exact search is limited to 10 vectors"):
        index.similar(rows[0]["id"], space="ann", exact=True)
    assert len(index.similar(rows[0]["id"], space="ann", k=3)) == 3  # the index path is not bounded
    with pytest.raises(QueryTimeoutError, match="MUSICINDEX_QUERY_TIMEOUT"), snapshot(index.db, timeout=0.2) as snap:
        snap.one("SELECT pg_sleep(2)")
    index.settings = index.settings.with_(query_timeout=0.2)
    assert len(index.similar(rows[0]["id"], k=3)) == 3  # ordinary queries are far below any sane timeout


def test_cli_prints_hostile_titles_literally(index, lib):
    rows = lib["rows"]
    with index.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE tracks SET title = :t, artist = :a WHERE id = :i"),
            {"t": "[/bold]Evil[red]", "a": "\x1b[31mAnsi\x07", "i": rows[1]["id"]},
        )
    env = {**settings_env(index.settings), "COLUMNS": "300"}  # wide enough that no cell wraps
    r = run_cli("similar", str(rows[0]["id"]), "-k", "79", "--space", "ann", env=env)
    assert r.returncode == 0, r.stderr
    assert "[/bold]Evil[red]" in r.stdout and "Ansi" in r.stdout
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
