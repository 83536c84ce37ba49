"""``LibraryService``: browsing the library (what the web page, the HTTP API and the Subsonic API list). Reads only.

Track search, track summaries and details, the file of a track, the genres and spaces on offer and the 2-D map of
the library; each reads in one snapshot, like the questions of :mod:`musicindex.query.service`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from musicindex.db.paths import fs_path
from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.query import textsearch
from musicindex.query.base import Reader
from musicindex.query.descriptors import descriptors_of
from musicindex.query.options import TrackRef
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
from musicindex.query.service import cluster_in, genre_in, tags_in
from musicindex.query.spaces import default_space, load_space_matrix, open_space, space_kind, space_names
from musicindex.query.tags import tag_space
from musicindex.query.textsearch import SEARCH_CANDIDATES, SEARCH_FIELDS
from musicindex.query.validation import MAX_K, as_list, check_int, check_space
from musicindex.vocab import FEATURE_NAMES, FEATURES_SPACE, N_FEATURES

MAP_MAX_POINTS = 20_000


class LibraryService(Reader):
    """The library's tracks, genres, spaces and map, each read in one snapshot."""

    SEARCH_FIELDS = SEARCH_FIELDS
    SEARCH_CANDIDATES = SEARCH_CANDIDATES
    MAP_MAX_POINTS = MAP_MAX_POINTS

    # ------------------------------------------------------------------ tracks
    def search_tracks(self, query: str, field: str = "any", limit: int = 20, offset: int = 0) -> SearchResult:
        """Indexed tracks whose title, artist, album, genre or folder contain each word of ``query`` -- inside
        words too, ignoring case and accents (``wésnoth`` finds *Wesnoth*), any order --, best first: title
        matches rank above artist, album and other ones, a word's start above its inside. ``field`` restricts the
        match to ``title``, ``artist`` or ``album`` (``query.textsearch``: the same word rule as the catalog's
        search). At most ``SEARCH_CANDIDATES`` matches are ranked (``truncated`` says so: a longer query narrows
        the answer)."""
        with self.snapshot() as snap:
            return textsearch.search_tracks(snap, query, field, limit, offset)

    def track_summaries(self, tracks: Sequence[TrackRef]) -> list[TrackSummary]:
        """Title, artist, album, genre and duration of ``tracks`` (ids or paths), in the given order."""
        refs = as_list(tracks, "tracks")
        if len(refs) > MAX_K:
            raise InvalidArgumentError(f"at most {MAX_K} tracks")
        with self.snapshot() as snap:
            ids = snap.track_ids(refs)
            gjoin, gexpr = snap.genre_join()
            rows = snap.all(
                f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr} AS genre, t.duration FROM tracks t {gjoin}"
                "WHERE t.id = ANY(%(ids)s)",
                {"ids": ids},
            )
        by_id = {int(r.id): TrackSummary.of(r) for r in rows}
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
            int(r.id): TrackFile(
                id=int(r.id),
                path=fs_path(r.path, r.path_bytes),
                display_path=r.path,
                size=int(r.size) if r.size is not None else None,
                mtime=float(r.mtime) if r.mtime is not None else None,
                status=r.status,
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
            features = {n: float(getattr(f, n)) for n in FEATURE_NAMES} if f is not None else None
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
            described = descriptors_of(snap, [t.id]).get(t.id, {})
            unprinted = snap.one("SELECT error FROM track_fingerprints WHERE track_id = %(t)s", {"t": t.id})
            if unprinted is not None and unprinted.error:  # why it is in no duplicate group (issue 31)
                notes["fingerprint"] = f"not fingerprinted: {unprinted.error}"
        described.pop("mode", None)  # in ``key``
        return TrackDetails(
            id=int(r.id),
            path=r.path,
            status=r.status,
            title=r.title,
            artist=r.artist,
            album=r.album,
            year=r.year,
            genre_tag=r.genre_tag,
            label=r.label,
            label_source=r.label_source,
            duration=float(r.duration) if r.duration is not None else None,
            sample_rate=r.sample_rate,
            channels=r.channels,
            format=r.format,
            size=int(r.size) if r.size is not None else None,
            error=r.error,
            indexed_at=r.indexed_at.isoformat() if r.indexed_at is not None else None,
            features=features,
            genre=genre,
            cluster=cluster,
            tags=tags,
            tags_model_version=tags_version,
            notes=notes,
            **described,
        )

    # ------------------------------------------------------------------ vocabulary on offer
    def known_genres(self) -> list[str]:
        """Every genre a query's ``genre`` accepts: the labels and the genre model's classes, sorted (the library's
        genres with their counts, as music apps list them, are ``index.catalog.genres()``)."""
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
                all_ids = snap.ids(f"SELECT track_id FROM embeddings WHERE model_version_id = {int(sp.version.id)}")
            else:
                all_ids = snap.ids("SELECT track_id FROM track_features")
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
                int(x.id): x
                for x in snap.all(
                    f"SELECT t.id, t.title, t.artist, {grp} AS grp, t.path FROM tracks t {grp_join}"
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
            g = None if row.grp is None else str(row.grp)
            if g is not None:
                counts[g] = counts.get(g, 0) + 1
            title = row.title or os.path.basename(row.path or "") or None
            points.append(MapPoint(int(tid), float(xy[i, 0]), float(xy[i, 1]), g, title, row.artist))
        groups = sorted(counts, key=lambda g: (-counts[g], g))
        return LibraryMap(space, sp.version_id, color_by, total, n, points, groups, explained)


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
