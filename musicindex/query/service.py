"""``QueryService``: the genre and similarity questions ``MusicIndex`` offers. Reads only.

Each method runs in ONE read-only REPEATABLE READ transaction (``query.snapshot``) and returns a typed result
that names the model version (and dimension) it used. Library browsing (search, details, lists, spaces, the
map) is :mod:`musicindex.query.library`'s. See ``docs/query.md``.
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
from musicindex.query.explain import explain as explain_hits
from musicindex.query.results import ClusterResult, Example, GenreResult, QueryResult, TagsResult, TrackHit
from musicindex.query.search import MAX_CANDIDATES, Exclusions, Filters, diversify, fits, search
from musicindex.query.snapshot import Snapshot, TrackRow, VersionInfo, snapshot
from musicindex.query.spaces import Space, default_space, open_space, space_kind, standardize, vectors
from musicindex.query.tags import check_tag_filter, tag_condition, tag_probabilities, tag_space, top_tags
from musicindex.query.validation import MAX_K, as_list, check_k, check_space, check_strings
from musicindex.query.vectors import slerp, unit
from musicindex.vocab import CLUSTER_KINDS

TrackRef = int | str | os.PathLike

MAX_PLAYLIST = 200
"""Longest playlist (each waypoint is at most a few index searches)."""


class QueryService:
    """Genre and similarity questions, each answered in one read-only snapshot."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """One read-only snapshot with this index's genre-model preference and query timeout."""
        return snapshot(self.db, self.settings.genre_model, timeout=self.settings.query_timeout)

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
        k = check_k(k)
        if space is not None:
            space = check_space(space)
        if ef_search is not None:
            ef_search = check_k(ef_search, "ef_search")
        with self.snapshot() as snap:
            seed = snap.track(track)
            sp = open_space(snap, space or default_space(snap, [seed.id]), exact=exact)
            filters = Filters(exclude_ids=[seed.id])
            if genre is not None:
                filters.genre = snap.check_genre(genre)
            if exclude_same_artist and seed.artist:
                filters.exclude_artists = [seed.artist]
            if tags:
                filters.tags = check_tag_filter(snap, as_list(tags, "tags"), min_tag_probability)
            q = vectors(snap, sp, [seed.id])[seed.id]
            items = search(snap, sp, q, k, filters, ef_search=ef_search)
            if explain:
                items = explain_hits(snap, items, query_ids=[seed.id])
        return _result(
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

    # ------------------------------------------------------------------ query by example
    def example_space(self, space: str | None = None) -> tuple[str, VersionInfo | None]:
        """The space a query by example searches (``space``, or the best available one) and the active model
        version whose vectors answer there (None: the raw features, standardised on the fly)."""
        if space is not None:
            space = check_space(space)
        with self.snapshot() as snap:
            chosen = space or default_space(snap)
            return chosen, snap.versions.get(space_kind(chosen))

    def similar_to_example(
        self, example: Example, k: int = 10, space: str | None = None, exact: bool = False, explain: bool = True
    ) -> QueryResult:
        """The ``k`` indexed tracks closest to an outside file analysed into ``example`` (see
        ``MusicIndex.similar_to_file``, which makes it). ModelNotTrainedError when the example holds no vector
        for the space's active version (a model promoted since it was made: make it again)."""
        k = check_k(k)
        if space is not None:
            space = check_space(space)
        with self.snapshot() as snap:
            sp = open_space(snap, space or default_space(snap), exact=exact)
            q = _example_vector(sp, example)
            items = search(snap, sp, q, k)
            if explain:
                items = explain_hits(snap, items, query_features=example.features, query_tags=example.tags)
        return _result("similar_to_file", sp, items, path=example.path, k=k, duration=example.duration)

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
        history: Sequence[TrackRef] = (),
    ) -> QueryResult:
        """``k`` tracks for someone who likes ``liked`` and dislikes ``disliked`` (``space`` None: the best
        available one).

        The query vector is the mean direction of the liked tracks minus half the mean
        direction of the disliked ones (Rocchio). Seeds and exclusions never appear.
        Diversity: no two consecutive tracks from one album (``album_spacing``), and two
        tracks of one artist are separated by at least ``artist_spacing`` others (0: off).
        ``history``: the tracks just before the answer, oldest first (a radio's queue): they never appear, and the
        diversity rules continue from them, so the answer does not start with the artist that just played.
        """
        k = check_k(k)
        if space is not None:
            space = check_space(space)
        liked_l = as_list(liked, "liked")
        disliked_l = as_list(disliked, "disliked")
        if not liked_l:
            raise InvalidArgumentError("recommend needs at least one liked track")
        if len(liked_l) + len(disliked_l) > MAX_K:
            raise InvalidArgumentError(f"at most {MAX_K} liked and disliked tracks")
        history_l = as_list(history, "history")
        ex = Exclusions.checked(exclude_tracks, exclude_artists, exclude_genres, artist_spacing, album_spacing)
        with self.snapshot() as snap:
            like_ids = snap.track_ids(liked_l)
            dislike_ids = snap.track_ids(disliked_l)
            x_ids = ex.resolve(snap)
            sp = open_space(snap, space or default_space(snap, like_ids + dislike_ids), exact=exact)
            before = _hits(snap, sp, snap.track_ids(history_l))
            vecs = vectors(snap, sp, like_ids + dislike_ids)
            q = unit(np.mean([unit(vecs[i]) for i in like_ids], axis=0))
            if dislike_ids:
                q = unit(q - 0.5 * unit(np.mean([unit(vecs[i]) for i in dislike_ids], axis=0)))
            used = [*like_ids, *dislike_ids, *x_ids, *(h.id for h in before)]
            items = self.diverse_neighbours(snap, sp, q, k, ex, used, history=before)
            if explain:
                items = explain_hits(snap, items, query_ids=like_ids)
        return _result(
            "recommend", sp, items, liked=like_ids, disliked=dislike_ids, k=k, history=[h.id for h in before],
            **ex.params(x_ids),
        )  # fmt: skip

    @staticmethod
    def diverse_neighbours(
        snap: Snapshot,
        sp: Space,
        q: np.ndarray,
        k: int,
        ex: Exclusions,
        exclude_ids: Sequence[int],
        history: Sequence[TrackHit] = (),
        first_fetch: int | None = None,
    ) -> list[TrackHit]:
        """The ``k`` nearest tracks to ``q`` that keep ``ex``'s diversity rules after ``history`` (the tracks
        already played or picked), fetching more candidates until ``k`` fit or none are left (``first_fetch``
        candidates first; default 4k + 20)."""
        filters = ex.filters(exclude_ids)
        fetch = min(MAX_CANDIDATES, first_fetch or 4 * k + 20)
        while True:
            cands = search(snap, sp, q, fetch, filters)
            items = diversify(cands, k, ex.artist_spacing, ex.album_spacing, history=history)
            if len(items) >= k or len(cands) < fetch or fetch >= MAX_CANDIDATES:
                return items
            fetch = min(MAX_CANDIDATES, fetch * 4)

    # ------------------------------------------------------------------ genres
    def by_genre(self, genre: str, k: int = 10) -> QueryResult:
        """``k`` tracks of ``genre``: labelled ones and those the genre model assigns to it,
        most confident first (score: the model's probability of ``genre``; 1.0 for a label
        when no model has a prediction)."""
        k = check_k(k)
        with self.snapshot() as snap:
            genre = snap.check_genre(genre)
            gm = snap.genre_model()
            if gm is not None:
                # the tracks of COALESCE(label, predicted genre) = g, in two disjoint parts: predicted g
                # (unlabelled or labelled g; score = the confidence of the predicted class), the k most
                # confident read in index order from ix_predictions_genre (migration 0003); and labelled g
                # but predicted otherwise (ix_tracks_label). Same rows and order as one scan of the version.
                v = int(gm.id)
                gjoin, gexpr = snap.genre_join()
                rows = snap.all(
                    f"WITH c AS ((SELECT p.track_id AS id FROM predictions p JOIN tracks t ON t.id = p.track_id "
                    f"WHERE p.model_version_id = {v} AND p.genre = %(g)s AND t.status = 'indexed' "
                    f"AND (t.label IS NULL OR t.label = %(g)s) ORDER BY p.confidence DESC, p.track_id LIMIT %(k)s) "
                    f"UNION ALL SELECT t.id FROM tracks t LEFT JOIN predictions p ON p.model_version_id = {v} "
                    f"AND p.track_id = t.id WHERE t.label = %(g)s AND t.status = 'indexed' "
                    f"AND p.genre IS DISTINCT FROM %(g)s) "
                    f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr}, "
                    f"COALESCE((p.probabilities ->> %(g)s)::float8, CASE WHEN t.label = %(g)s THEN 1.0 END) AS score "
                    f"FROM c JOIN tracks t ON t.id = c.id {gjoin}"
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
        with self.snapshot() as snap:
            return genre_in(snap, snap.track(track))

    def cluster_of(self, track: TrackRef, model: str = "kmeans") -> ClusterResult:
        """The cluster of ``track`` in the active ``model`` clustering (kmeans, birch, gmm)."""
        if model not in CLUSTER_KINDS:
            raise InvalidArgumentError(f"unknown clustering {model!r}; choose one of: {', '.join(CLUSTER_KINDS)}")
        with self.snapshot() as snap:
            return cluster_in(snap, snap.track(track), model)

    # ------------------------------------------------------------------ tags (musicnn)
    def tags_of(self, track: TrackRef, n: int = 10) -> TagsResult:
        """The ``n`` most probable musicnn tags of ``track`` (of the 50: rock, jazz, mellow, female vocalists, ...)."""
        n = check_k(n, "n")
        with self.snapshot() as snap:
            return tags_in(snap, snap.track(track), n)

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
        k = check_k(k)
        x_artists = check_strings(as_list(exclude_artists, "exclude_artists"), "exclude_artists")[:MAX_K]
        with self.snapshot() as snap:
            f = check_tag_filter(snap, as_list(tags, "tags"), min_probability)
            params: dict[str, Any] = {"k": k}
            cond = tag_condition(f, "t.id", params)
            score = " + ".join(f"tt.probs[{f.space.index(tag)}]" for tag in f.tags)
            gjoin, gexpr = snap.genre_join()
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
            TrackHit(int(r[0]), r[1], r[2], r[3], r[4], r[5], None, float(r[6]), f.space.version_id, f.space.model)
            for r in rows
        ]
        return QueryResult(
            query="search_by_tags",
            space=f.space.model,
            model_version_id=f.space.version_id,
            dimension=None,
            method="table",
            items=items,
            params={"tags": list(f.tags), "min_probability": f.min_probability, "k": k, "genre": genre},
        )

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
        n = check_k(n, "n")
        if n > MAX_PLAYLIST:
            raise InvalidArgumentError(f"a playlist has at most {MAX_PLAYLIST} tracks, got n={n}")
        if n < 2:
            raise InvalidArgumentError("a playlist needs n >= 2 (the start and the end track)")
        if space is not None:
            space = check_space(space)
        ex = Exclusions.checked(exclude_tracks, exclude_artists, exclude_genres, artist_spacing, album_spacing)
        with self.snapshot() as snap:
            a, b = snap.track(start), snap.track(end)
            if a.id == b.id:
                raise InvalidArgumentError("start and end must be different tracks")
            sp, picks, skipped = path_in(snap, a, b, n, ex, ex.resolve(snap), space, exact=exact)
        return _result(
            "playlist",
            sp,
            picks,
            start=a.id,
            end=b.id,
            n=n,
            skipped=skipped,
            artist_spacing=ex.artist_spacing,
            album_spacing=ex.album_spacing,
        )


# --------------------------------------------------------------------------- one track, in a snapshot
def path_in(
    snap: Snapshot,
    a: TrackRow,
    b: TrackRow,
    n: int,
    ex: Exclusions,
    exclude_ids: Sequence[int] = (),
    space: str | None = None,
    *,
    exact: bool = False,
) -> tuple[Space, list[TrackHit], int]:
    """(space, picks, skipped waypoints) of a path of ``n`` tracks from ``a`` to ``b`` (both included) in ``snap``:
    the nearest unused track to each spherical interpolation of their unit vectors that keeps ``ex``'s rules."""
    sp = open_space(snap, space or default_space(snap, [a.id, b.id]), exact=exact)
    vecs = vectors(snap, sp, [a.id, b.id])
    va, vb = unit(vecs[a.id]), unit(vecs[b.id])
    hit_a, hit_b = _seed_hit(snap, sp, a), _seed_hit(snap, sp, b)
    picks = [hit_a]
    used = {a.id, b.id, *exclude_ids}
    skipped = 0
    for i in range(1, n - 1):
        chosen = _waypoint(snap, sp, slerp(va, vb, i / (n - 1)), ex, used, picks, hit_b, (n - 1) - i)
        if chosen is None:
            skipped += 1
            continue
        picks.append(chosen)
        used.add(chosen.id)
    picks.append(hit_b)
    return sp, picks, skipped


def genre_in(snap: Snapshot, t: TrackRow) -> GenreResult:
    """The genre model's answer for ``t``; ModelNotTrainedError (saying what to train) when there is none."""
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


def cluster_in(snap: Snapshot, t: TrackRow, model: str = "kmeans") -> ClusterResult:
    """The cluster of ``t`` in the active ``model`` clustering; ModelNotTrainedError when there is none."""
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


def tags_in(snap: Snapshot, t: TrackRow, n: int = 10) -> TagsResult:
    """The ``n`` most probable musicnn tags of ``t``; ModelNotTrainedError when it has none yet."""
    ts = tag_space(snap)
    probs = tag_probabilities(snap, ts, [t.id]).get(t.id)
    if probs is None:
        raise ModelNotTrainedError(
            f"track {t.id} has no musicnn tags yet (version {ts.version_id}): `musicindex embed` tags it"
        )
    return TagsResult(t.id, t.path, ts.version_id, top_tags(probs, ts.names, n=min(n, len(ts.names)), floor=0.0))


# --------------------------------------------------------------------------- helpers
def _result(query: str, sp: Space, items: list[TrackHit], **params: Any) -> QueryResult:
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


def _example_vector(sp: Space, example: Example) -> np.ndarray:
    """The query vector of an outside file in ``sp`` (the vectors ``example`` carries)."""
    if sp.name == "features":
        if example.features is None:
            raise InvalidArgumentError("a query by example in the features space needs the file's 43 features")
        return standardize(sp, example.features) if not sp.empty else np.zeros(sp.dim)
    assert sp.version is not None
    emb = example.embeddings.get(sp.version.id)
    if emb is None:
        raise ModelNotTrainedError(
            f"the {sp.name} space is answered by model version {sp.version.id} now, and the example was analysed "
            "for another version (a model was promoted meanwhile): analyse the file again"
        )
    emb = np.asarray(emb, dtype=np.float64).ravel()
    if emb.shape != (sp.dim,):
        raise ModelNotTrainedError(
            f"model version {sp.version.id} returned a {emb.shape} embedding, expected ({sp.dim},)"
        )
    return emb


def _seed_hit(snap: Snapshot, sp: Space, t: TrackRow) -> TrackHit:
    """A seed track as a hit of its own answer (distance 0)."""
    return _hits(snap, sp, [t.id])[0]


def _hits(snap: Snapshot, sp: Space, ids: Sequence[int]) -> list[TrackHit]:
    """Tracks ``ids`` (known to exist) as hits at distance 0, in the given order (seeds, a radio's history)."""
    if not ids:
        return []
    gjoin, gexpr = snap.genre_join()
    rows = snap.all(
        f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr} FROM tracks t {gjoin}WHERE t.id = ANY(%(ids)s)",
        {"ids": [int(i) for i in ids]},
    )
    by_id = {int(r[0]): r for r in rows}
    return [
        TrackHit(int(r[0]), r[1], r[2], r[3], r[4], r[5], 0.0, 1.0, sp.version_id, sp.name)
        for r in (by_id[int(i)] for i in ids)
    ]


def _waypoint(
    snap: Snapshot,
    sp: Space,
    w: np.ndarray,
    ex: Exclusions,
    used: set[int],
    picks: list[TrackHit],
    end: TrackHit,
    gap: int,
) -> TrackHit | None:
    """The nearest unused track to waypoint ``w`` that fits after ``picks`` and ``gap`` places before ``end``."""
    fetch = max(20, 4 * ex.artist_spacing + 10)
    filters = ex.filters(sorted(used))
    while True:
        cands = search(snap, sp, w, fetch, filters)
        for c in cands:
            if fits(c, picks, ex.artist_spacing, ex.album_spacing) and _fits_end(c, end, gap, ex):
                return c
        if len(cands) < fetch or fetch >= MAX_CANDIDATES:
            return None
        fetch = min(MAX_CANDIDATES, fetch * 4)


def _fits_end(c: TrackHit, end: TrackHit, gap: int, ex: Exclusions) -> bool:
    """The end track is fixed: a pick ``gap`` positions before it must respect the rules too."""
    if ex.album_spacing and gap == 1 and fits(end, [c], 0, True) is False:
        return False
    return not (ex.artist_spacing > 0 and gap <= ex.artist_spacing and not fits(end, [c], 1, False))
