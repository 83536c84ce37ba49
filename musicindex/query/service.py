"""``QueryService``: the query methods ``MusicIndex`` offers. Reads only.

Each method runs in ONE read-only REPEATABLE READ transaction and returns a typed result
that names the model version (and dimension) it used. See ``docs/query.md``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from musicindex.config import Settings
from musicindex.db.session import Database
from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.query import engine as E
from musicindex.query.results import ClusterResult, GenreResult, QueryResult, TrackHit
from musicindex.vocab import CLUSTER_KINDS, DEFAULT_SPACE

TrackRef = int | str | os.PathLike


def _as_list(x: Any, name: str) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, (str, bytes, int, os.PathLike)):
        return [x]
    try:
        return list(x)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a list, got {type(x).__name__}") from None


def _check_strings(xs: Sequence[Any], name: str) -> list[str]:
    out = []
    for x in xs:
        if not isinstance(x, str) or not x:
            raise InvalidArgumentError(f"{name} must be non-empty strings, got {x!r}")
        out.append(x)
    return out


def _check_spacing(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0 or n > 100:
        raise InvalidArgumentError(f"artist_spacing must be an integer between 0 and 100, got {n!r}")
    return int(n)


class QueryService:
    """Genre and similarity questions, each answered in one read-only snapshot."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    def _snapshot(self) -> AbstractContextManager[E.Snapshot]:
        return E.snapshot(self.db, self.settings.genre_model)

    @staticmethod
    def _result(query: str, sp: E.Space, items: list[TrackHit], **params: Any) -> QueryResult:
        return QueryResult(
            query=query,
            space=sp.name,
            model_version_id=sp.version_id,
            dimension=sp.dim,
            method=sp.method,
            items=items,
            ef_search=sp.last_ef if sp.method == "hnsw" else None,
            params=params,
        )

    # ------------------------------------------------------------------ similar
    def similar(
        self,
        track: TrackRef,
        k: int = 10,
        space: str = DEFAULT_SPACE,
        genre: str | None = None,
        exclude_same_artist: bool = False,
        exact: bool = False,
        ef_search: int | None = None,
    ) -> QueryResult:
        """The ``k`` tracks closest to ``track`` (id or path) in ``space`` (cosine distance).

        ``genre`` restricts the answer to one genre (label, else the genre model's
        prediction); ``exclude_same_artist`` drops the seed's artist; ``exact=True``
        forces brute-force search (versions under 10 000 vectors are always searched
        exactly); ``ef_search`` overrides the HNSW search width (default max(200, 4k)).
        """
        k = E.check_k(k)
        space = E.check_space(space)
        if ef_search is not None:
            ef_search = E.check_k(ef_search, "ef_search")
        with self._snapshot() as snap:
            seed = snap.track(track)
            sp = E.open_space(snap, space, exact=exact)
            filters = E.Filters(exclude_ids=[seed.id])
            if genre is not None:
                filters.genre = snap.check_genre(genre)
            if exclude_same_artist and seed.artist:
                filters.exclude_artists = [seed.artist]
            q = E.vectors(snap, sp, [seed.id])[seed.id]
            items = E.search(snap, sp, q, k, filters, ef_search=ef_search)
        return self._result(
            "similar", sp, items, track=seed.id, k=k, genre=genre, exclude_same_artist=exclude_same_artist, exact=exact
        )

    # ------------------------------------------------------------------ recommend
    def recommend(
        self,
        liked: Sequence[TrackRef],
        disliked: Sequence[TrackRef] = (),
        k: int = 10,
        space: str = DEFAULT_SPACE,
        exclude_tracks: Sequence[TrackRef] = (),
        exclude_artists: Sequence[str] = (),
        exclude_genres: Sequence[str] = (),
        artist_spacing: int = 3,
        album_spacing: bool = True,
        exact: bool = False,
    ) -> QueryResult:
        """``k`` tracks for someone who likes ``liked`` and dislikes ``disliked``.

        The query vector is the mean direction of the liked tracks minus half the mean
        direction of the disliked ones (Rocchio). Seeds and exclusions never appear.
        Diversity: no two consecutive tracks from one album (``album_spacing``), and two
        tracks of one artist are separated by at least ``artist_spacing`` others (0: off).
        """
        k = E.check_k(k)
        space = E.check_space(space)
        liked_l = _as_list(liked, "liked")
        disliked_l = _as_list(disliked, "disliked")
        if not liked_l:
            raise InvalidArgumentError("recommend needs at least one liked track")
        if len(liked_l) + len(disliked_l) > E.MAX_K:
            raise InvalidArgumentError(f"at most {E.MAX_K} liked and disliked tracks")
        x_artists = _check_strings(_as_list(exclude_artists, "exclude_artists"), "exclude_artists")
        x_genres = _check_strings(_as_list(exclude_genres, "exclude_genres"), "exclude_genres")
        spacing = _check_spacing(artist_spacing)
        with self._snapshot() as snap:
            like_ids = snap.track_ids(liked_l)
            dislike_ids = snap.track_ids(disliked_l)
            x_ids = snap.track_ids(_as_list(exclude_tracks, "exclude_tracks"))
            for g in x_genres:
                snap.check_genre(g)
            sp = E.open_space(snap, space, exact=exact)
            vecs = E.vectors(snap, sp, like_ids + dislike_ids)
            q = E.unit(np.mean([E.unit(vecs[i]) for i in like_ids], axis=0))
            if dislike_ids:
                q = E.unit(q - 0.5 * E.unit(np.mean([E.unit(vecs[i]) for i in dislike_ids], axis=0)))
            filters = E.Filters(
                exclude_ids=sorted(set(like_ids + dislike_ids + x_ids)),
                exclude_artists=x_artists,
                exclude_genres=x_genres,
            )
            fetch = min(E.MAX_CANDIDATES, 4 * k + 20)
            while True:
                cands = E.search(snap, sp, q, fetch, filters)
                items = E.diversify(cands, k, spacing, album_spacing)
                if len(items) >= k or len(cands) < fetch or fetch >= E.MAX_CANDIDATES:
                    break
                fetch = min(E.MAX_CANDIDATES, fetch * 4)
        return self._result(
            "recommend",
            sp,
            items,
            liked=like_ids,
            disliked=dislike_ids,
            k=k,
            exclude_tracks=x_ids,
            exclude_artists=x_artists,
            exclude_genres=x_genres,
            artist_spacing=spacing,
            album_spacing=album_spacing,
        )

    # ------------------------------------------------------------------ genres
    def by_genre(self, genre: str, k: int = 10) -> QueryResult:
        """``k`` tracks of ``genre``: labelled ones and those the genre model assigns to it,
        most confident first (score: the model's probability of ``genre``; 1.0 for a label
        when no model has a prediction)."""
        k = E.check_k(k)
        with self._snapshot() as snap:
            genre = snap.check_genre(genre)
            gm = snap.genre_model()
            if gm is not None:
                rows = snap.all(
                    f"SELECT t.id, t.path, t.title, t.artist, t.album, COALESCE(t.label, p.genre), "
                    f"COALESCE((p.probabilities ->> %(g)s)::float8, CASE WHEN t.label = %(g)s THEN 1.0 END) AS score "
                    f"FROM tracks t LEFT JOIN predictions p ON p.model_version_id = {int(gm.id)} AND p.track_id = t.id "
                    f"WHERE t.status = 'indexed' AND COALESCE(t.label, p.genre) = %(g)s "
                    f"ORDER BY score DESC NULLS LAST, t.id LIMIT %(k)s",
                    {"g": genre, "k": k},
                )
            else:
                rows = snap.all(
                    "SELECT id, path, title, artist, album, label, 1.0 FROM tracks "
                    "WHERE status = 'indexed' AND label = %(g)s ORDER BY id LIMIT %(k)s",
                    {"g": genre, "k": k},
                )
        vid = gm.id if gm is not None else None
        items = [
            TrackHit(
                int(r[0]), r[1], r[2], r[3], r[4], r[5], None, float(r[6]) if r[6] is not None else None, vid, None
            )
            for r in rows
        ]
        return QueryResult(
            query="by_genre",
            space=None,
            model_version_id=vid,
            dimension=None,
            method="table",
            items=items,
            params={"genre": genre, "k": k, "model_kind": gm.kind if gm is not None else None},
        )

    def genre_of(self, track: TrackRef) -> GenreResult:
        """The genre model's label, confidence and class probabilities for ``track``."""
        with self._snapshot() as snap:
            t = snap.track(track)
            gm = snap.genre_model()
            if gm is None:
                pref = snap.genre_preference
                which = "--models logreg" if pref in (None, "auto") else f"--models {pref}"
                raise ModelNotTrainedError(
                    "no genre model is trained"
                    + ("" if pref in (None, "auto") else f" (MUSICINDEX_GENRE_MODEL={pref})")
                    + f": run `musicindex train {which}`"
                )
            row = snap.one(
                f"SELECT genre, confidence, probabilities FROM predictions "
                f"WHERE model_version_id = {int(gm.id)} AND track_id = %(t)s",
                {"t": t.id},
            )
        if row is None:
            raise ModelNotTrainedError(
                f"track {t.id} has no prediction from genre model version {gm.id} ({gm.kind}; it was indexed "
                f"after training): run `musicindex train --models {gm.kind}` to predict it"
            )
        return GenreResult(
            track_id=t.id,
            path=t.path,
            genre=row[0],
            confidence=float(row[1]),
            probabilities={str(a): float(b) for a, b in (row[2] or {}).items()},
            model_version_id=gm.id,
            model_kind=gm.kind,
            label=t.label,
        )

    def cluster_of(self, track: TrackRef, model: str = "kmeans") -> ClusterResult:
        """The cluster of ``track`` in the active ``model`` clustering (kmeans, birch, gmm)."""
        if model not in CLUSTER_KINDS:
            raise InvalidArgumentError(f"unknown clustering {model!r}; choose one of: {', '.join(CLUSTER_KINDS)}")
        with self._snapshot() as snap:
            t = snap.track(track)
            v = snap.versions.get(model)
            if v is None:
                raise ModelNotTrainedError(f"no {model} clustering is trained: run `musicindex train --models {model}`")
            row = snap.one(
                f"SELECT a.cluster, (SELECT count(*) FROM cluster_assignments b WHERE "
                f"b.model_version_id = {int(v.id)} AND b.cluster = a.cluster) FROM cluster_assignments a "
                f"WHERE a.model_version_id = {int(v.id)} AND a.track_id = %(t)s",
                {"t": t.id},
            )
        if row is None:
            raise ModelNotTrainedError(
                f"track {t.id} has no assignment in {model} version {v.id} (indexed after training): "
                f"run `musicindex train --models {model}`"
            )
        return ClusterResult(
            track_id=t.id, path=t.path, cluster=int(row[0]), size=int(row[1]), model_version_id=v.id, model_kind=model
        )

    # ------------------------------------------------------------------ query by example
    def similar_to_file(
        self, path: str | os.PathLike, k: int = 10, space: str = DEFAULT_SPACE, exact: bool = False
    ) -> QueryResult:
        """The ``k`` indexed tracks closest to an outside audio file (analysed, never stored)."""
        k = E.check_k(k)
        space = E.check_space(space)
        from musicindex import audio

        window = audio.AnalysisWindow(self.settings.window_offset, self.settings.window_duration)
        res = audio.analyse_file(os.fspath(path), window, features=True, spectrogram=(space == "cnn"))
        with self._snapshot() as snap:
            sp = E.open_space(snap, space, exact=exact)
            if space == "features":
                assert res.features is not None
                q = E.standardize(sp, res.features) if not sp.empty else np.zeros(sp.dim)
            else:
                q = self._transform(snap, sp, res)
            items = E.search(snap, sp, q, k)
        return self._result("similar_to_file", sp, items, path=os.fspath(path), k=k)

    @staticmethod
    def _transform(snap: E.Snapshot, sp: E.Space, res: Any) -> np.ndarray:
        """An outside file's vector under the space's active model version (read in the same snapshot)."""
        from sqlalchemy.orm import Session

        from musicindex.ml.inference import transform_one

        assert sp.version is not None
        with Session(bind=snap.conn) as session:
            out = transform_one(session, sp.version.id, features=res.features, logmel=res.logmel)
        emb = np.asarray(out["embedding"], dtype=np.float64).ravel()
        if emb.shape != (sp.dim,):
            raise ModelNotTrainedError(
                f"model version {sp.version.id} returned a {emb.shape} embedding, expected ({sp.dim},)"
            )
        return emb

    # ------------------------------------------------------------------ playlist
    def playlist(
        self,
        start: TrackRef,
        end: TrackRef,
        n: int = 10,
        space: str = DEFAULT_SPACE,
        exclude_tracks: Sequence[TrackRef] = (),
        exclude_artists: Sequence[str] = (),
        exclude_genres: Sequence[str] = (),
        artist_spacing: int = 3,
        album_spacing: bool = True,
        exact: bool = False,
    ) -> QueryResult:
        """``n`` tracks (``start`` first, ``end`` last) along a smooth path between them.

        Waypoints are spherical interpolations between the two tracks' unit vectors; each
        waypoint takes the nearest unused track that keeps the diversity rules (as in
        :meth:`recommend`). A waypoint no track can fill is skipped (``params['skipped']``).
        """
        n = E.check_k(n, "n")
        if n < 2:
            raise InvalidArgumentError("a playlist needs n >= 2 (the start and the end track)")
        space = E.check_space(space)
        x_artists = _check_strings(_as_list(exclude_artists, "exclude_artists"), "exclude_artists")
        x_genres = _check_strings(_as_list(exclude_genres, "exclude_genres"), "exclude_genres")
        spacing = _check_spacing(artist_spacing)
        with self._snapshot() as snap:
            a, b = snap.track(start), snap.track(end)
            if a.id == b.id:
                raise InvalidArgumentError("start and end must be different tracks")
            x_ids = snap.track_ids(_as_list(exclude_tracks, "exclude_tracks"))
            for g in x_genres:
                snap.check_genre(g)
            sp = E.open_space(snap, space, exact=exact)
            vecs = E.vectors(snap, sp, [a.id, b.id])
            va, vb = E.unit(vecs[a.id]), E.unit(vecs[b.id])
            hit_a = self._hit(snap, sp, a.id)
            hit_b = self._hit(snap, sp, b.id)
            picks = [hit_a]
            used = {a.id, b.id, *x_ids}
            skipped = 0
            for i in range(1, n - 1):
                w = E.slerp(va, vb, i / (n - 1))
                fetch = max(20, 4 * spacing + 10)
                chosen = None
                while chosen is None:
                    cands = E.search(
                        snap,
                        sp,
                        w,
                        fetch,
                        E.Filters(exclude_ids=sorted(used), exclude_artists=x_artists, exclude_genres=x_genres),
                    )
                    for c in cands:
                        if E.fits(c, picks, spacing, album_spacing) and _fits_end(
                            c, hit_b, (n - 1) - i, spacing, album_spacing
                        ):
                            chosen = c
                            break
                    if chosen is not None or len(cands) < fetch or fetch >= E.MAX_CANDIDATES:
                        break
                    fetch = min(E.MAX_CANDIDATES, fetch * 4)
                if chosen is None:
                    skipped += 1
                    continue
                picks.append(chosen)
                used.add(chosen.id)
            picks.append(hit_b)
        return self._result(
            "playlist",
            sp,
            picks,
            start=a.id,
            end=b.id,
            n=n,
            skipped=skipped,
            artist_spacing=spacing,
            album_spacing=album_spacing,
        )

    @staticmethod
    def _hit(snap: E.Snapshot, sp: E.Space, track_id: int) -> TrackHit:
        gm = snap.genre_model()
        if gm is not None:
            row = snap.one(
                f"SELECT t.id, t.path, t.title, t.artist, t.album, COALESCE(t.label, p.genre) FROM tracks t "
                f"LEFT JOIN predictions p ON p.model_version_id = {int(gm.id)} AND p.track_id = t.id "
                f"WHERE t.id = %(t)s",
                {"t": track_id},
            )
        else:
            row = snap.one("SELECT id, path, title, artist, album, label FROM tracks WHERE id = %(t)s", {"t": track_id})
        return TrackHit(int(row[0]), row[1], row[2], row[3], row[4], row[5], 0.0, 1.0, sp.version_id, sp.name)


def _fits_end(c: TrackHit, end: TrackHit, gap: int, spacing: int, album_rule: bool) -> bool:
    """The end track is fixed: a pick ``gap`` positions before it must respect the rules too."""
    if album_rule and gap == 1 and E.fits(end, [c], 0, True) is False:
        return False
    return not (spacing > 0 and gap <= spacing and not E.fits(end, [c], 1, False))
