"""``QueryService``: the query methods ``MusicIndex`` offers. Reads only.

Each method runs in ONE read-only REPEATABLE READ transaction and returns a typed result
that names the model version (and dimension) it used. See ``docs/query.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from musicindex.config import Settings
from musicindex.db.session import Database
from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.query import engine as E
from musicindex.query.explain import explain as explain_hits
from musicindex.query.results import (
    ClusterResult,
    GenreResult,
    LibraryMap,
    MapPoint,
    QueryResult,
    SearchResult,
    TagsResult,
    TrackDetails,
    TrackHit,
    TrackSummary,
)
from musicindex.vocab import CLUSTER_KINDS, MUSICNN, SPACE_KIND

TrackRef = int | str | os.PathLike


MAX_LIST = 1000
"""At most this many entries in any list argument (liked, disliked, exclusions, tags are bounded further)."""
MAX_PLAYLIST = 200
"""Longest playlist (each waypoint is at most a few index searches)."""


def _as_list(x: Any, name: str) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, (str, bytes, int, os.PathLike)):
        return [x]
    try:
        out = list(x)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a list, got {type(x).__name__}") from None
    if len(out) > MAX_LIST:
        raise InvalidArgumentError(f"{name} holds {len(out)} entries; at most {MAX_LIST}")
    return out


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
        return E.snapshot(self.db, self.settings.genre_model, timeout=self.settings.query_timeout)

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
        space: str | None = None,
        genre: str | None = None,
        exclude_same_artist: bool = False,
        exact: bool = False,
        ef_search: int | None = None,
        tags: Sequence[str] = (),
        min_tag_probability: float = 0.3,
        explain: bool = True,
    ) -> QueryResult:
        """The ``k`` tracks closest to ``track`` (id or path) in ``space`` (cosine distance).

        ``space`` None: the best available (musicnn once the track is embedded, else features).
        ``genre`` restricts the answer to one genre (label, else the genre model's
        prediction); ``exclude_same_artist`` drops the seed's artist; ``tags`` keeps only
        tracks whose musicnn probability of every tag is at least ``min_tag_probability``;
        ``exact=True`` forces brute-force search (versions under 10 000 vectors are always
        searched exactly); ``ef_search`` overrides the HNSW search width (default max(200, 4k)).
        ``explain`` gives each hit its ``why`` (shared tags, the named features that differ most).
        """
        k = E.check_k(k)
        if space is not None:
            space = E.check_space(space)
        if ef_search is not None:
            ef_search = E.check_k(ef_search, "ef_search")
        with self._snapshot() as snap:
            seed = snap.track(track)
            sp = E.open_space(snap, space or E.default_space(snap, [seed.id]), exact=exact)
            filters = E.Filters(exclude_ids=[seed.id])
            if genre is not None:
                filters.genre = snap.check_genre(genre)
            if exclude_same_artist and seed.artist:
                filters.exclude_artists = [seed.artist]
            if tags:
                filters.tags = E.check_tag_filter(snap, _as_list(tags, "tags"), min_tag_probability)
            q = E.vectors(snap, sp, [seed.id])[seed.id]
            items = E.search(snap, sp, q, k, filters, ef_search=ef_search)
            if explain:
                items = explain_hits(snap, items, query_ids=[seed.id])
        return self._result(
            "similar",
            sp,
            items,
            track=seed.id,
            k=k,
            genre=genre,
            exclude_same_artist=exclude_same_artist,
            exact=exact,
            tags=list(filters.tags.tags) if filters.tags else [],
        )

    # ------------------------------------------------------------------ recommend
    def recommend(
        self,
        liked: Sequence[TrackRef],
        disliked: Sequence[TrackRef] = (),
        k: int = 10,
        space: str | None = None,
        exclude_tracks: Sequence[TrackRef] = (),
        exclude_artists: Sequence[str] = (),
        exclude_genres: Sequence[str] = (),
        artist_spacing: int = 3,
        album_spacing: bool = True,
        exact: bool = False,
        explain: bool = True,
    ) -> QueryResult:
        """``k`` tracks for someone who likes ``liked`` and dislikes ``disliked`` (``space`` None: the best
        available one).

        The query vector is the mean direction of the liked tracks minus half the mean
        direction of the disliked ones (Rocchio). Seeds and exclusions never appear.
        Diversity: no two consecutive tracks from one album (``album_spacing``), and two
        tracks of one artist are separated by at least ``artist_spacing`` others (0: off).
        """
        k = E.check_k(k)
        if space is not None:
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
            sp = E.open_space(snap, space or E.default_space(snap, like_ids + dislike_ids), exact=exact)
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
            if explain:
                items = explain_hits(snap, items, query_ids=like_ids)
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
                # the tracks of COALESCE(label, predicted genre) = g, in two disjoint parts: predicted g
                # (unlabelled or labelled g; score = the confidence of the predicted class), the k most
                # confident read in index order from ix_predictions_genre (migration 0003); and labelled g
                # but predicted otherwise (ix_tracks_label). Same rows and order as one scan of the version.
                v = int(gm.id)
                rows = snap.all(
                    f"WITH c AS ((SELECT p.track_id AS id FROM predictions p JOIN tracks t ON t.id = p.track_id "
                    f"WHERE p.model_version_id = {v} AND p.genre = %(g)s AND t.status = 'indexed' "
                    f"AND (t.label IS NULL OR t.label = %(g)s) ORDER BY p.confidence DESC, p.track_id LIMIT %(k)s) "
                    f"UNION ALL SELECT t.id FROM tracks t LEFT JOIN predictions p ON p.model_version_id = {v} "
                    f"AND p.track_id = t.id WHERE t.label = %(g)s AND t.status = 'indexed' "
                    f"AND p.genre IS DISTINCT FROM %(g)s) "
                    f"SELECT t.id, t.path, t.title, t.artist, t.album, COALESCE(t.label, p.genre), "
                    f"COALESCE((p.probabilities ->> %(g)s)::float8, CASE WHEN t.label = %(g)s THEN 1.0 END) AS score "
                    f"FROM c JOIN tracks t ON t.id = c.id "
                    f"LEFT JOIN predictions p ON p.model_version_id = {v} AND p.track_id = t.id "
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

    def track_file(self, track: TrackRef) -> str:
        """The file of ``track`` as the operating system names it (names that are not valid UTF-8 included)."""
        from musicindex.db.paths import fs_path

        with self._snapshot() as snap:
            t = snap.track(track)
            row = snap.one("SELECT path, path_bytes FROM tracks WHERE id = %(t)s", {"t": t.id})
        return fs_path(row[0], row[1])

    # ------------------------------------------------------------------ tags (musicnn)
    def tags_of(self, track: TrackRef, n: int = 10) -> TagsResult:
        """The ``n`` most probable musicnn tags of ``track`` (of the 50: rock, jazz, mellow, female vocalists, ...)."""
        n = E.check_k(n, "n")
        with self._snapshot() as snap:
            t = snap.track(track)
            ts = E.tag_space(snap)
            probs = E.tag_probabilities(snap, ts, [t.id]).get(t.id)
        if probs is None:
            raise ModelNotTrainedError(
                f"track {t.id} has no musicnn tags yet (version {ts.version_id}): `musicindex embed` tags it"
            )
        return TagsResult(t.id, t.path, ts.version_id, E.top_tags(probs, ts.names, n=min(n, len(ts.names)), floor=0.0))

    def search_by_tags(
        self,
        tags: Sequence[str],
        k: int = 10,
        min_probability: float = 0.3,
        genre: str | None = None,
        exclude_artists: Sequence[str] = (),
    ) -> QueryResult:
        """Tracks whose musicnn probability of every one of ``tags`` is at least ``min_probability``, best first
        (score: the mean of their probabilities of those tags). Combine tags with similarity through
        ``similar(..., tags=[...])``."""
        k = E.check_k(k)
        x_artists = _check_strings(_as_list(exclude_artists, "exclude_artists"), "exclude_artists")[: E.MAX_K]
        with self._snapshot() as snap:
            f = E.check_tag_filter(snap, _as_list(tags, "tags"), min_probability)
            params: dict[str, Any] = {"k": k}
            cond = E.tag_condition(f, "t.id", params)
            score = " + ".join(f"tt.probs[{f.space.index(tag)}]" for tag in f.tags)
            gm = snap.genre_model()
            gjoin = (
                f"LEFT JOIN predictions p ON p.model_version_id = {int(gm.id)} AND p.track_id = t.id "
                if gm is not None
                else ""
            )
            gexpr = "COALESCE(t.label, p.genre)" if gm is not None else "t.label"
            where = ["t.status = 'indexed'", cond]
            if genre is not None:
                params["genre"] = snap.check_genre(genre)
                where.append(f"{gexpr} = %(genre)s")
            if x_artists:
                params["xart"] = [a.lower() for a in x_artists]
                where.append("(t.artist IS NULL OR lower(t.artist) <> ALL(%(xart)s))")
            rows = snap.all(
                f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr}, ({score}) / {len(f.tags)} AS score "
                f"FROM track_tags tt JOIN tracks t ON t.id = tt.track_id {gjoin}"
                f"WHERE tt.model_version_id = {int(f.space.version_id)} AND {' AND '.join(where)} "
                "ORDER BY score DESC, t.id LIMIT %(k)s",
                params,
            )
        items = [
            TrackHit(int(r[0]), r[1], r[2], r[3], r[4], r[5], None, float(r[6]), f.space.version_id, MUSICNN)
            for r in rows
        ]
        return QueryResult(
            query="search_by_tags",
            space=MUSICNN,
            model_version_id=f.space.version_id,
            dimension=None,
            method="table",
            items=items,
            params={"tags": list(f.tags), "min_probability": f.min_probability, "k": k, "genre": genre},
        )

    # ------------------------------------------------------------------ query by example
    def similar_to_file(
        self,
        path: str | os.PathLike,
        k: int = 10,
        space: str | None = None,
        exact: bool = False,
        explain: bool = True,
    ) -> QueryResult:
        """The ``k`` indexed tracks closest to an outside audio file (analysed, never stored; ``space`` None:
        the best available one)."""
        k = E.check_k(k)
        if space is not None:
            space = E.check_space(space)
        from musicindex import audio

        with self._snapshot() as snap:
            chosen = space or E.default_space(snap)
            version = snap.versions.get(SPACE_KIND[chosen])
            needs_musicnn = chosen == MUSICNN or (version is not None and version.params.get("input") == MUSICNN)
        window = audio.AnalysisWindow(self.settings.window_offset, self.settings.window_duration)
        res = audio.analyse_file(os.fspath(path), window, features=True, spectrogram=(chosen == "cnn"))
        m_emb = m_tags = None
        if needs_musicnn:
            from musicindex.ml import pretrained

            emb, probs = pretrained.get_model().embed([pretrained.load_signal(os.fspath(path), window)])
            m_emb, m_tags = emb[0].astype(np.float64), probs[0].astype(np.float64)
        with self._snapshot() as snap:
            sp = E.open_space(snap, chosen, exact=exact)
            if chosen == "features":
                assert res.features is not None
                q = E.standardize(sp, res.features) if not sp.empty else np.zeros(sp.dim)
            elif chosen == MUSICNN:
                assert m_emb is not None
                q = m_emb
            else:
                q = self._transform(snap, sp, res, m_emb)
            items = E.search(snap, sp, q, k)
            if explain:
                items = explain_hits(snap, items, query_features=res.features, query_tags=m_tags)
        return self._result("similar_to_file", sp, items, path=os.fspath(path), k=k)

    @staticmethod
    def _transform(snap: E.Snapshot, sp: E.Space, res: Any, musicnn: np.ndarray | None = None) -> np.ndarray:
        """An outside file's vector under the space's active model version (read in the same snapshot)."""
        from sqlalchemy.orm import Session

        from musicindex.ml.inference import transform_one

        assert sp.version is not None
        with Session(bind=snap.conn) as session:
            out = transform_one(session, sp.version.id, features=res.features, logmel=res.logmel, musicnn=musicnn)
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
        space: str | None = None,
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
        if n > MAX_PLAYLIST:
            raise InvalidArgumentError(f"a playlist has at most {MAX_PLAYLIST} tracks, got n={n}")
        if n < 2:
            raise InvalidArgumentError("a playlist needs n >= 2 (the start and the end track)")
        if space is not None:
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
            sp = E.open_space(snap, space or E.default_space(snap, [a.id, b.id]), exact=exact)
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

    # ==================================================================================================
    # HTTP API and web page (issue 15): track search, track details, track lists, the spaces on offer
    # and the 2-D map of the library. Each reads in one snapshot, like the query methods above.
    # ==================================================================================================
    SEARCH_FIELDS = ("any", "title", "artist", "album")
    SEARCH_CANDIDATES = 1000
    """At most this many matches of a search are ranked (a longer query narrows the answer)."""
    MAP_MAX_POINTS = 20_000

    def search_tracks(self, query: str, field: str = "any", limit: int = 20, offset: int = 0) -> SearchResult:
        """Indexed tracks whose title, artist, album or file name contain words starting with each
        word of ``query`` (case-insensitive, any order), best first (title matches rank above artist,
        album and file-name ones). ``field`` restricts the match to ``title``, ``artist`` or ``album``.

        Uses PostgreSQL full-text search (``musicindex_search_doc``, GIN index ``ix_tracks_search``,
        migration 0003). At most ``SEARCH_CANDIDATES`` matches are ranked (``truncated`` says so).
        """
        if not isinstance(query, str):
            raise InvalidArgumentError(f"query must be a string, got {type(query).__name__}")
        if field not in self.SEARCH_FIELDS:
            raise InvalidArgumentError(
                f"unknown search field {field!r}; choose one of: {', '.join(self.SEARCH_FIELDS)}"
            )
        limit = E.check_k(limit, "limit")
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or not 0 <= offset <= 10_000:
            raise InvalidArgumentError(f"offset must be an integer between 0 and 10000, got {offset!r}")
        words = [w.lower() for w in re.findall(r"[^\W_]+", query)][:8]
        if not words:
            raise InvalidArgumentError(f"search query {query!r} has no letter or digit to look for")
        weight = {"any": "", "title": "A", "artist": "B", "album": "C"}[field]
        # words are letters and digits only: nothing in them is tsquery syntax
        tsq = " & ".join(f"{w}:*{weight}" for w in words)
        doc = "musicindex_search_doc(t.title, t.artist, t.album, t.path)"
        with self._snapshot() as snap:
            gm = snap.genre_model()
            gjoin = (
                f"LEFT JOIN predictions p ON p.model_version_id = {int(gm.id)} AND p.track_id = t.id "
                if gm is not None
                else ""
            )
            gexpr = "COALESCE(t.label, p.genre)" if gm is not None else "t.label"
            rows = snap.all(
                f"WITH m AS MATERIALIZED (SELECT t.id FROM tracks t WHERE {doc} @@ to_tsquery('simple', %(q)s) "
                f"AND t.status = 'indexed' LIMIT {int(self.SEARCH_CANDIDATES)}) "
                f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr}, t.duration, "
                f"ts_rank({doc}, to_tsquery('simple', %(q)s)) AS rank, count(*) OVER () "
                f"FROM m JOIN tracks t ON t.id = m.id {gjoin}"
                f"ORDER BY rank DESC, lower(t.title), t.id LIMIT %(lim)s OFFSET %(off)s",
                {"q": tsq, "lim": limit, "off": int(offset)},
            )
            candidates = int(rows[0][8]) if rows else 0
            if not rows and offset:
                candidates = int(
                    snap.one(
                        f"SELECT count(*) FROM (SELECT 1 FROM tracks t WHERE {doc} @@ to_tsquery('simple', %(q)s) "
                        f"AND t.status = 'indexed' LIMIT {int(self.SEARCH_CANDIDATES)}) s",
                        {"q": tsq},
                    )[0]
                )
        items = [
            TrackSummary(int(r[0]), r[1], r[2], r[3], r[4], r[5], float(r[6]) if r[6] is not None else None)
            for r in rows
        ]
        return SearchResult(
            query=query,
            field=field,
            items=items,
            candidates=candidates,
            truncated=candidates >= self.SEARCH_CANDIDATES,
            limit=limit,
            offset=int(offset),
        )

    def track_summaries(self, tracks: Sequence[TrackRef]) -> list[TrackSummary]:
        """Title, artist, album, genre and duration of ``tracks`` (ids or paths), in the given order."""
        refs = _as_list(tracks, "tracks")
        if len(refs) > E.MAX_K:
            raise InvalidArgumentError(f"at most {E.MAX_K} tracks")
        with self._snapshot() as snap:
            ids = snap.track_ids(refs)
            gm = snap.genre_model()
            if gm is not None:
                rows = snap.all(
                    f"SELECT t.id, t.path, t.title, t.artist, t.album, COALESCE(t.label, p.genre), t.duration "
                    f"FROM tracks t LEFT JOIN predictions p ON p.model_version_id = {int(gm.id)} "
                    f"AND p.track_id = t.id WHERE t.id = ANY(%(ids)s)",
                    {"ids": ids},
                )
            else:
                rows = snap.all(
                    "SELECT id, path, title, artist, album, label, duration FROM tracks WHERE id = ANY(%(ids)s)",
                    {"ids": ids},
                )
        by_id = {
            int(r[0]): TrackSummary(int(r[0]), r[1], r[2], r[3], r[4], r[5], float(r[6]) if r[6] is not None else None)
            for r in rows
        }
        return [by_id[i] for i in ids]

    def genres(self) -> list[str]:
        """Every genre a query accepts: the labels and the genre model's classes, sorted."""
        with self._snapshot() as snap:
            return snap.known_genres()

    def spaces(self) -> list[dict[str, Any]]:
        """The similarity spaces: which can answer now (its model version and dimension), which is
        the default (the one queries use when given no space: ``engine.default_space``)."""
        from musicindex import vocab

        out: list[dict[str, Any]] = []
        with self._snapshot() as snap:
            for name in vocab.SPACES:
                v = snap.versions.get(vocab.SPACE_KIND[name])
                entry: dict[str, Any] = {"space": name, "available": v is not None, "model_version_id": None,
                                         "dimension": None, "hint": None}  # fmt: skip
                if v is not None:
                    entry.update(model_version_id=v.id, dimension=v.embedding_dim)
                    if snap.one(f"SELECT 1 FROM embeddings WHERE model_version_id = {int(v.id)} LIMIT 1") is None:
                        entry.update(available=False, hint=f"model version {v.id} ({v.kind}) holds no vectors yet")
                elif name == vocab.DEFAULT_SPACE:  # raw features, standardized on the fly: no model needed
                    entry.update(dimension=vocab.N_FEATURES)
                    entry["available"] = snap.one("SELECT 1 FROM track_features LIMIT 1") is not None
                    if not entry["available"]:
                        entry["hint"] = "no track has audio features yet: `musicindex ingest PATH`"
                else:
                    try:
                        E.open_space(snap, name, exact=True)
                    except ModelNotTrainedError as exc:
                        entry["hint"] = str(exc)
                out.append(entry)
            default = E.default_space(snap)  # what similar() and the others use when no space is given
        for s in out:
            s["default"] = s["space"] == default
        return out

    def track_details(self, track: TrackRef) -> TrackDetails:
        """Everything about one track (file facts, tags, features, genre, cluster, pretrained tags)."""
        from musicindex.vocab import FEATURE_NAMES

        notes: dict[str, str] = {}
        with self._snapshot() as snap:
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
        try:
            tr = self.tags_of(t.id, n=50)
            tags, tags_version = dict(tr.tags), tr.model_version_id
        except ModelNotTrainedError as exc:
            notes["tags"] = str(exc)
        genre: GenreResult | None = None
        cluster: ClusterResult | None = None
        try:
            genre = self.genre_of(t.id)
        except ModelNotTrainedError as exc:
            notes["genre"] = str(exc)
        try:
            cluster = self.cluster_of(t.id)
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

    def ingest_progress(self) -> dict[str, Any]:
        """The latest ingest batch (roots, when, what it queued) and how far the analysis of the files it
        queued has come (``counts`` by status, ``done`` of ``total``), the analysis rate over the last
        minute and an ETA, and every root ever ingested (``roots``: what a re-scan may be asked to scan)."""
        with self._snapshot() as snap:
            roots = sorted({str(r) for (rs,) in snap.all("SELECT roots FROM ingest_batches") for r in (rs or [])})
            b = snap.one(
                "SELECT id, roots, created_at, finished_at, scanned, queued, unchanged, moved, missing "
                "FROM ingest_batches ORDER BY id DESC LIMIT 1"
            )
            if b is None:
                return {"batch": None, "roots": roots, "counts": {}, "total": 0, "done": 0, "rate_per_s": 0.0}
            counts = {
                str(st): int(n)
                for st, n in snap.all(
                    "SELECT status, count(*) FROM tracks WHERE batch_id = %(b)s GROUP BY status", {"b": int(b[0])}
                )
            }
            recent = snap.one(
                "SELECT count(*) FROM tracks WHERE batch_id = %(b)s AND indexed_at > now() - interval '60 seconds'",
                {"b": int(b[0])},
            )[0]
        total = int(b[5] or 0)
        pending = counts.get("pending", 0)
        rate = int(recent) / 60.0
        return {
            "batch": {
                "id": int(b[0]),
                "roots": list(b[1] or []),
                "created_at": b[2].isoformat() if b[2] is not None else None,
                "finished_at": b[3].isoformat() if b[3] is not None else None,
                "scanned": b[4],
                "queued": b[5],
                "unchanged": b[6],
                "moved": b[7],
                "missing": b[8],
            },
            "roots": roots,
            "counts": counts,
            "total": total,
            "done": max(0, total - pending),
            "pending": pending,
            "rate_per_s": rate,
            "eta_seconds": (pending / rate) if pending and rate > 0 else None,
        }

    def library_map(
        self, space: str | None = None, color_by: str = "genre", limit: int = 3000, seed: int = 0
    ) -> LibraryMap:
        """A 2-D map of ``space`` (default: the default space): the first two principal components
        of the unit vectors of at most ``limit`` tracks (a seeded random sample above that),
        each point coloured by ``color_by`` (``genre`` or ``cluster``: the active kmeans clustering)."""
        if space is None:
            space = next(s["space"] for s in self.spaces() if s["default"])
        space = E.check_space(space)
        if color_by not in ("genre", "cluster"):
            raise InvalidArgumentError(f"color_by must be 'genre' or 'cluster', got {color_by!r}")
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 2 <= limit <= self.MAP_MAX_POINTS:
            raise InvalidArgumentError(f"limit must be an integer between 2 and {self.MAP_MAX_POINTS}, got {limit!r}")
        with self._snapshot() as snap:
            sp = E.open_space(snap, space, exact=True)
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
                gm = snap.genre_model()
                grp_join = (
                    f"LEFT JOIN predictions p ON p.model_version_id = {int(gm.id)} AND p.track_id = t.id "
                    if gm is not None
                    else ""
                )
                grp = "COALESCE(t.label, p.genre)" if gm is not None else "t.label"
            info = {
                int(x[0]): x
                for x in snap.all(
                    f"SELECT t.id, t.title, t.artist, {grp} FROM tracks t {grp_join}"
                    f"WHERE t.id = ANY(%(ids)s) AND t.status = 'indexed'",
                    {"ids": list(pick)},
                )
            }
            ids, mat = E.load_space_matrix(snap, sp, [i for i in pick if i in info])
        n = len(ids)
        if n == 0:
            return LibraryMap(space, sp.version_id, color_by, total, 0, [], [], [])
        x = mat - mat.mean(axis=0, keepdims=True)
        if n >= 2 and mat.shape[1] >= 2:
            _, s, vt = np.linalg.svd(x, full_matrices=False)
            comps = vt[:2]
            # a stable orientation: the largest loading of each axis is positive
            signs = np.sign(comps[np.arange(2), np.argmax(np.abs(comps), axis=1)])
            comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
            xy = x @ comps.T
            var = s**2
            explained = [float(v / var.sum()) if var.sum() > 0 else 0.0 for v in var[:2]]
        else:
            xy = np.zeros((n, 2))
            explained = [0.0, 0.0]
        points = []
        counts: dict[str, int] = {}
        for i, tid in enumerate(ids):
            row = info[int(tid)]
            g = None if row[3] is None else str(row[3])
            if g is not None:
                counts[g] = counts.get(g, 0) + 1
            points.append(MapPoint(int(tid), float(xy[i, 0]), float(xy[i, 1]), g, row[1], row[2]))
        groups = sorted(counts, key=lambda g: (-counts[g], g))
        return LibraryMap(space, sp.version_id, color_by, total, n, points, groups, explained)


def _fits_end(c: TrackHit, end: TrackHit, gap: int, spacing: int, album_rule: bool) -> bool:
    """The end track is fixed: a pick ``gap`` positions before it must respect the rules too."""
    if album_rule and gap == 1 and E.fits(end, [c], 0, True) is False:
        return False
    return not (spacing > 0 and gap <= spacing and not E.fits(end, [c], 1, False))
