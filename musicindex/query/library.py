"""``LibraryService``: browsing the library (what the web page, the HTTP API and the Subsonic API list). Reads only.

Track search, track summaries and details, the file of a track, the genres and spaces on offer and the 2-D map of
the library; each reads in one snapshot, like the questions of :mod:`musicindex.query.service`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from musicindex import textnorm
from musicindex.config import Settings
from musicindex.db.paths import fs_path
from musicindex.db.session import Database
from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.query.results import (
    ClusterResult,
    GenreResult,
    LibraryMap,
    MapPoint,
    SearchResult,
    TrackDetails,
    TrackFile,
    TrackSummary,
)
from musicindex.query.service import TrackRef, cluster_in, genre_in, tags_in
from musicindex.query.snapshot import Snapshot, snapshot
from musicindex.query.spaces import default_space, load_space_matrix, open_space, space_kind, space_names
from musicindex.query.tags import tag_space
from musicindex.query.validation import MAX_K, as_list, check_int, check_k, check_space, check_text
from musicindex.vocab import FEATURE_NAMES, FEATURES_SPACE, INDEXED, N_FEATURES

SEARCH_FIELDS = ("any", "title", "artist", "album")
SEARCH_CANDIDATES = 1000
"""At most this many matches of a search are ranked (a longer query narrows the answer)."""
MAP_MAX_POINTS = 20_000


class LibraryService:
    """The library's tracks, genres, spaces and map, each read in one snapshot."""

    SEARCH_FIELDS = SEARCH_FIELDS
    SEARCH_CANDIDATES = SEARCH_CANDIDATES
    MAP_MAX_POINTS = MAP_MAX_POINTS

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        return snapshot(self.db, self.settings.genre_model, timeout=self.settings.query_timeout)

    # ------------------------------------------------------------------ tracks
    def search_tracks(self, query: str, field: str = "any", limit: int = 20, offset: int = 0) -> SearchResult:
        """Indexed tracks whose title, artist, album, genre or folder contain each word of ``query`` -- inside
        words too, ignoring case and accents (``wésnoth`` finds *Wesnoth*), any order --, best first: title
        matches rank above artist, album and other ones, a word's start above its inside. ``field`` restricts the
        match to ``title``, ``artist`` or ``album``.

        Uses the folded search text of each track and its trigram hashes (``tracks.search_grams``, GIN index,
        migration 0006; see ``musicindex.textnorm``). At most ``SEARCH_CANDIDATES`` matches are ranked
        (``truncated`` says so: a longer query narrows the answer).
        """
        query = check_text(query, "query", max_length=1000, empty=True)
        if field not in SEARCH_FIELDS:
            raise InvalidArgumentError(f"unknown search field {field!r}; choose one of: {', '.join(SEARCH_FIELDS)}")
        limit = check_k(limit, "limit")
        offset = check_int(offset, "offset", 0, 10_000)
        words = textnorm.words(query)[:8]
        if not words:
            raise InvalidArgumentError(f"search query {query!r} has no letter or digit to look for")
        with self.snapshot() as snap:
            gjoin, gexpr = snap.genre_join()
            rows = snap.all(
                f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr}, t.duration FROM tracks t {gjoin}"
                f"WHERE t.id IN ({word_match_sql(words, 'w')}) LIMIT {SEARCH_CANDIDATES}",
                word_match_params(words, "w"),
            )
        ranked = sorted(
            ((score, r) for r in rows if (score := _rank(r, words, field)) > 0),
            key=lambda pair: (-pair[0], textnorm.fold(pair[1][2]), int(pair[1][0])),
        )
        return SearchResult(
            query=query,
            field=field,
            items=[_summary(r) for _, r in ranked[offset : offset + limit]],
            candidates=len(ranked),
            truncated=len(rows) >= SEARCH_CANDIDATES,
            limit=limit,
            offset=offset,
        )

    def track_summaries(self, tracks: Sequence[TrackRef]) -> list[TrackSummary]:
        """Title, artist, album, genre and duration of ``tracks`` (ids or paths), in the given order."""
        refs = as_list(tracks, "tracks")
        if len(refs) > MAX_K:
            raise InvalidArgumentError(f"at most {MAX_K} tracks")
        with self.snapshot() as snap:
            ids = snap.track_ids(refs)
            gjoin, gexpr = snap.genre_join()
            rows = snap.all(
                f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr}, t.duration FROM tracks t {gjoin}"
                "WHERE t.id = ANY(%(ids)s)",
                {"ids": ids},
            )
        by_id = {int(r[0]): _summary(r) for r in rows}
        return [by_id[i] for i in ids]

    def track_file(self, track: TrackRef) -> str:
        """The file of ``track`` as the operating system names it (names that are not valid UTF-8 included)."""
        return self.track_files([track])[0].path

    def track_files(self, tracks: Sequence[TrackRef]) -> list[TrackFile]:
        """The files of ``tracks`` (ids or paths), in the given order: the name to open (names that are not valid
        UTF-8 included), the size and mtime the index recorded, the status. Nothing is read from disk."""
        refs = as_list(tracks, "tracks")
        if len(refs) > MAX_K:
            raise InvalidArgumentError(f"at most {MAX_K} tracks")
        with self.snapshot() as snap:
            ids = snap.track_ids(refs)
            rows = snap.all(
                "SELECT id, path, path_bytes, size, mtime, status FROM tracks WHERE id = ANY(%(ids)s)", {"ids": ids}
            )
        by_id = {
            int(r[0]): TrackFile(
                id=int(r[0]),
                path=fs_path(r[1], r[2]),
                display_path=r[1],
                size=int(r[3]) if r[3] is not None else None,
                mtime=float(r[4]) if r[4] is not None else None,
                status=r[5],
            )
            for r in rows
        }
        return [by_id[i] for i in ids]

    def track_details(self, track: TrackRef) -> TrackDetails:
        """Everything about one track (file facts, tags, features, genre, cluster, pretrained tags)."""
        notes: dict[str, str] = {}
        with self.snapshot() as snap:
            t = snap.track(track)
            r = snap.one(
                "SELECT id, path, status, title, artist, album, year, genre_tag, label, label_source, duration, "
                "sample_rate, channels, format, size, error, indexed_at FROM tracks WHERE id = %(t)s",
                {"t": t.id},
            )
            f = snap.one(f"SELECT {', '.join(FEATURE_NAMES)} FROM track_features WHERE track_id = %(t)s", {"t": t.id})
            features = {n: float(x) for n, x in zip(FEATURE_NAMES, f, strict=True)} if f is not None else None
            tags: dict[str, float] | None = None
            tags_version: int | None = None
            genre: GenreResult | None = None
            cluster: ClusterResult | None = None
            try:
                tr = tags_in(snap, t, n=50)
                tags, tags_version = dict(tr.tags), tr.model_version_id
            except ModelNotTrainedError as exc:
                notes["tags"] = str(exc)
            try:
                genre = genre_in(snap, t)
            except ModelNotTrainedError as exc:
                notes["genre"] = str(exc)
            try:
                cluster = cluster_in(snap, t)
            except ModelNotTrainedError as exc:
                notes["cluster"] = str(exc)
        return TrackDetails(
            id=int(r[0]),
            path=r[1],
            status=r[2],
            title=r[3],
            artist=r[4],
            album=r[5],
            year=r[6],
            genre_tag=r[7],
            label=r[8],
            label_source=r[9],
            duration=float(r[10]) if r[10] is not None else None,
            sample_rate=r[11],
            channels=r[12],
            format=r[13],
            size=int(r[14]) if r[14] is not None else None,
            error=r[15],
            indexed_at=r[16].isoformat() if r[16] is not None else None,
            features=features,
            genre=genre,
            cluster=cluster,
            tags=tags,
            tags_model_version=tags_version,
            notes=notes,
        )

    # ------------------------------------------------------------------ vocabulary on offer
    def genres(self) -> list[str]:
        """Every genre a query accepts: the labels and the genre model's classes, sorted."""
        with self.snapshot() as snap:
            return snap.known_genres()

    def tag_names(self) -> list[str]:
        """The musicnn tags a tag search accepts (the active musicnn version's 50, in its order); ModelNotTrainedError
        before anything is embedded."""
        with self.snapshot() as snap:
            return list(tag_space(snap).names)

    def spaces(self) -> list[dict[str, Any]]:
        """The similarity spaces: which can answer now (its model version and dimension), which is
        the default (the one queries use when given no space: ``spaces.default_space``)."""
        out: list[dict[str, Any]] = []
        with self.snapshot() as snap:
            for name in space_names():
                v = snap.versions.get(space_kind(name))
                entry: dict[str, Any] = {"space": name, "available": v is not None, "model_version_id": None,
                                         "dimension": None, "hint": None}  # fmt: skip
                if v is not None:
                    entry.update(model_version_id=v.id, dimension=v.embedding_dim)
                    if snap.one(f"SELECT 1 FROM embeddings WHERE model_version_id = {int(v.id)} LIMIT 1") is None:
                        entry.update(available=False, hint=f"model version {v.id} ({v.kind}) holds no vectors yet")
                elif name == FEATURES_SPACE:  # raw features, standardized on the fly: no model needed
                    entry.update(dimension=N_FEATURES)
                    entry["available"] = snap.one("SELECT 1 FROM track_features LIMIT 1") is not None
                    if not entry["available"]:
                        entry["hint"] = "no track has audio features yet: `musicindex ingest PATH`"
                else:
                    try:
                        open_space(snap, name, exact=True)
                    except ModelNotTrainedError as exc:
                        entry["hint"] = str(exc)
                out.append(entry)
            default = default_space(snap)  # what similar() and the others use when no space is given
        for s in out:
            s["default"] = s["space"] == default
        return out

    # ------------------------------------------------------------------ the map
    def library_map(
        self, space: str | None = None, color_by: str = "genre", limit: int = 3000, seed: int = 0
    ) -> LibraryMap:
        """A 2-D map of ``space`` (default: the default space): the first two principal components
        of the unit vectors of at most ``limit`` tracks (a seeded random sample above that),
        each point coloured by ``color_by`` (``genre`` or ``cluster``: the active kmeans clustering)."""
        if space is not None:
            space = check_space(space)
        if color_by not in ("genre", "cluster"):
            raise InvalidArgumentError(f"color_by must be 'genre' or 'cluster', got {color_by!r}")
        limit = check_int(limit, "limit", 2, MAP_MAX_POINTS)
        with self.snapshot() as snap:
            space = space or default_space(snap)
            sp = open_space(snap, space, exact=True)
            km = snap.versions.get("kmeans")
            if color_by == "cluster" and km is None:
                raise ModelNotTrainedError(
                    "no kmeans clustering is trained: run `musicindex train --models kmeans` (or colour by genre)"
                )
            if sp.empty:
                return LibraryMap(space, sp.version_id, color_by, 0, 0, [], [], [])
            if sp.version is not None:
                all_ids = [
                    int(x[0])
                    for x in snap.all(f"SELECT track_id FROM embeddings WHERE model_version_id = {int(sp.version.id)}")
                ]
            else:
                all_ids = [int(x[0]) for x in snap.all("SELECT track_id FROM track_features")]
            total = len(all_ids)
            pick = all_ids
            if total > limit:
                chosen = np.random.default_rng(seed).choice(np.asarray(all_ids, dtype=np.int64), limit, replace=False)
                pick = sorted(int(x) for x in chosen)
            if color_by == "cluster":
                assert km is not None
                grp_join = (
                    f"LEFT JOIN cluster_assignments a ON a.model_version_id = {int(km.id)} AND a.track_id = t.id "
                )
                grp = "a.cluster::text"
            else:
                grp_join, grp = snap.genre_join()
            info = {
                int(x[0]): x
                for x in snap.all(
                    f"SELECT t.id, t.title, t.artist, {grp}, t.path FROM tracks t {grp_join}"
                    f"WHERE t.id = ANY(%(ids)s) AND t.status = 'indexed'",
                    {"ids": list(pick)},
                )
            }
            ids, mat = load_space_matrix(snap, sp, [i for i in pick if i in info])
        n = len(ids)
        if n == 0:
            return LibraryMap(space, sp.version_id, color_by, total, 0, [], [], [])
        xy, explained = _pca2(mat)
        points = []
        counts: dict[str, int] = {}
        for i, tid in enumerate(ids):
            row = info[int(tid)]
            g = None if row[3] is None else str(row[3])
            if g is not None:
                counts[g] = counts.get(g, 0) + 1
            title = row[1] or os.path.basename(row[4] or "") or None
            points.append(MapPoint(int(tid), float(xy[i, 0]), float(xy[i, 1]), g, title, row[2]))
        groups = sorted(counts, key=lambda g: (-counts[g], g))
        return LibraryMap(space, sp.version_id, color_by, total, n, points, groups, explained)


def word_match_sql(words: Sequence[str], prefix: str) -> str:
    """SQL selecting the ids of the indexed tracks whose search text holds every one of ``words`` (folded; parameters
    ``%({prefix}g0)s``, ``%({prefix}l0)s``, ... of :func:`word_match_params`): the trigram index narrows, ``LIKE``
    decides. Tracks whose search text was not made yet (read before the library existed) are matched on their raw
    title, artist, album, genre tag and path, case-insensitively, until the next ingest reads them again."""
    grams = []
    for i, w in enumerate(words):
        has = f"t.search_grams @> %({prefix}g{i})s::int[] AND " if textnorm.grams(w) else ""
        grams.append(f"{has}t.search_text LIKE %({prefix}l{i})s")
    raw = "lower(concat_ws(' ', t.title, t.artist, t.album, t.genre_tag, t.path))"
    legacy = " AND ".join(f"{raw} LIKE %({prefix}l{i})s" for i in range(len(words)))
    return (
        f"SELECT t.id FROM tracks t WHERE t.status = '{INDEXED}' AND {' AND '.join(grams)} "
        f"UNION ALL SELECT t.id FROM tracks t WHERE t.search_text IS NULL AND t.status = '{INDEXED}' AND {legacy}"
    )


def word_match_params(words: Sequence[str], prefix: str) -> dict[str, Any]:
    """The parameters of :func:`word_match_sql` (words are letters and digits: nothing in them is LIKE syntax)."""
    params: dict[str, Any] = {}
    for i, w in enumerate(words):
        params[f"{prefix}g{i}"] = textnorm.grams(w)
        params[f"{prefix}l{i}"] = f"%{w}%"
    return params


_FIELD_WEIGHT = {"title": 3.0, "artist": 2.0, "album": 1.5}


def _rank(r: Sequence[Any], words: Sequence[str], field: str) -> float:
    """How well a candidate (id, path, title, artist, album, genre, ...) matches: per word, the best field it is in
    (title 3, artist 2, album 1.5, elsewhere 0.5; x1.5 at a word's start); 0 when ``field`` does not hold every
    word."""
    texts = {"title": textnorm.fold(r[2]), "artist": textnorm.fold(r[3]), "album": textnorm.fold(r[4])}
    score = 0.0
    for w in words:
        best = 0.0
        for name, folded in texts.items():
            at = folded.find(w)
            if at >= 0:
                start = at == 0 or not folded[at - 1].isalnum()
                best = max(best, _FIELD_WEIGHT[name] * (1.5 if start else 1.0))
        if field != "any" and w not in texts[field]:
            return 0.0
        score += best or 0.5
    return score


def _summary(r: Sequence[Any]) -> TrackSummary:
    """A TrackSummary from (id, path, title, artist, album, genre, duration, ...)."""
    return TrackSummary(int(r[0]), r[1], r[2], r[3], r[4], r[5], float(r[6]) if r[6] is not None else None)


def _pca2(mat: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The first two principal components of the rows of ``mat`` (a stable orientation: the largest loading of each
    axis is positive) and the share of variance each explains."""
    n = mat.shape[0]
    x = mat - mat.mean(axis=0, keepdims=True)
    if n < 2 or mat.shape[1] < 2:
        return np.zeros((n, 2)), [0.0, 0.0]
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(2), np.argmax(np.abs(comps), axis=1)])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
    var = s**2
    explained = [float(v / var.sum()) if var.sum() > 0 else 0.0 for v in var[:2]]
    return x @ comps.T, explained
