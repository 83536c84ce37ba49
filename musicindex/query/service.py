"""``QueryService``: the genre and similarity questions ``MusicIndex`` offers. Reads only.

Each method runs in ONE read-only REPEATABLE READ transaction (``query.snapshot``) and returns a typed result
that names the model version (and dimension) it used. The similarity questions take one
:class:`~musicindex.query.options.SearchOptions` and are answered by the similarity engine (``query.engine``).
Library browsing (search, details, lists, spaces, the map) is :mod:`musicindex.query.library`'s. See
``docs/query.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.query import engine
from musicindex.query.base import Reader
from musicindex.query.filters import Filters, Sql, where
from musicindex.query.options import SearchOptions, TrackRef
from musicindex.query.results import ClusterResult, Example, GenreResult, QueryResult, TagsResult, TrackHit
from musicindex.query.snapshot import Snapshot, TrackRow, VersionInfo
from musicindex.query.spaces import default_space, space_kind
from musicindex.query.tags import check_tag_filter, tag_probabilities, tag_space, top_tags
from musicindex.query.validation import MAX_K, as_list, check_k, check_space
from musicindex.vocab import CLUSTER_KINDS

MAX_PLAYLIST = 200
"""Longest playlist (each waypoint is at most a few index searches)."""


class QueryService(Reader):
    """Genre and similarity questions, each answered in one read-only snapshot."""

    # ------------------------------------------------------------------ similar
    def similar(self, track: TrackRef, options: SearchOptions | None = None) -> QueryResult:
        """The ``options.k`` tracks closest to ``track`` (id or path) in ``options.space`` (cosine distance; None:
        the best available, musicnn once the track is embedded, else features), filtered and spread as the
        options say (no diversity rule of its own); each hit with its ``why`` unless ``options.explain`` is off.
        Versions under 10 000 vectors are always searched exactly."""
        opts = options or SearchOptions()
        with self.snapshot() as snap:
            answer = engine.similar(snap, snap.track(track), opts)
        return answer.result("similar", opts)

    # ------------------------------------------------------------------ query by example
    def example_space(self, space: str | None = None) -> tuple[str, VersionInfo | None]:
        """The space a query by example searches (``space``, or the best available one) and the active model
        version whose vectors answer there (None: the raw features, standardised on the fly)."""
        if space is not None:
            space = check_space(space)
        with self.snapshot() as snap:
            chosen = space or default_space(snap)
            return chosen, snap.versions.get(space_kind(chosen))

    def similar_to_example(self, example: Example, options: SearchOptions | None = None) -> QueryResult:
        """The indexed tracks closest to an outside file analysed into ``example`` (see
        ``MusicIndex.similar_to_file``, which makes it). ModelNotTrainedError when the example holds no vector
        for the space's active version (a model promoted since it was made: make it again)."""
        opts = options or SearchOptions()
        with self.snapshot() as snap:
            answer = engine.example(snap, example, opts)
        return answer.result("similar_to_file", opts)

    # ------------------------------------------------------------------ recommend
    def recommend(
        self,
        liked: Sequence[TrackRef],
        disliked: Sequence[TrackRef] = (),
        options: SearchOptions | None = None,
        history: Sequence[TrackRef] = (),
    ) -> QueryResult:
        """``options.k`` tracks for someone who likes ``liked`` and dislikes ``disliked`` (``engine.recommend``:
        Rocchio). Seeds and exclusions never appear; unless the options say otherwise, two tracks of one artist
        are separated by at least 3 others and no two consecutive tracks come from one album. ``history``: the
        tracks just before the answer, oldest first (a radio's queue): they never appear, and the diversity rule
        continues from them, so the answer does not start with the artist that just played."""
        opts = options or SearchOptions()
        liked_l = as_list(liked, "liked")
        disliked_l = as_list(disliked, "disliked")
        if not liked_l:
            raise InvalidArgumentError("recommend needs at least one liked track")
        if len(liked_l) + len(disliked_l) > MAX_K:
            raise InvalidArgumentError(f"at most {MAX_K} liked and disliked tracks")
        history_l = as_list(history, "history")
        with self.snapshot() as snap:
            like_ids, dislike_ids = snap.track_ids(liked_l), snap.track_ids(disliked_l)
            answer = engine.recommend(snap, like_ids, dislike_ids, opts, snap.track_ids(history_l))
        return answer.result("recommend", opts)

    # ------------------------------------------------------------------ playlist
    def playlist(self, start: TrackRef, end: TrackRef, options: SearchOptions | None = None) -> QueryResult:
        """``options.k`` tracks (2 to 200; ``start`` first, ``end`` last) along a smooth path between them
        (``engine.path``): each waypoint takes the nearest unused track that passes the filters and keeps the
        diversity rule (as :meth:`recommend`); a waypoint no track can fill is skipped (``params['skipped']``)."""
        opts = options or SearchOptions()
        if opts.k > MAX_PLAYLIST:
            raise InvalidArgumentError(f"a playlist has at most {MAX_PLAYLIST} tracks, got n={opts.k}")
        if opts.k < 2:
            raise InvalidArgumentError("a playlist needs n >= 2 (the start and the end track)")
        with self.snapshot() as snap:
            a, b = snap.track(start), snap.track(end)
            if a.id == b.id:
                raise InvalidArgumentError("start and end must be different tracks")
            answer = engine.path(snap, a, b, opts)
        return answer.result("playlist", opts)

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
                    f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr} AS genre, "
                    f"COALESCE((p.probabilities ->> %(g)s)::float8, CASE WHEN t.label = %(g)s THEN 1.0 END) AS score "
                    f"FROM c JOIN tracks t ON t.id = c.id {gjoin}"
                    f"ORDER BY score DESC NULLS LAST, t.id LIMIT %(k)s",
                    {"g": genre, "k": k},
                )
            else:
                rows = snap.all(
                    "SELECT id, path, title, artist, album, label AS genre, 1.0 AS score FROM tracks "
                    "WHERE status = 'indexed' AND label = %(g)s ORDER BY id LIMIT %(k)s",
                    {"g": genre, "k": k},
                )
        vid = gm.id if gm is not None else None
        items = [TrackHit.of(r, score=float(r.score) if r.score is not None else None, model_version=vid) for r in rows]
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

    def search_by_tags(self, tags: Sequence[str] = (), options: SearchOptions | None = None) -> QueryResult:
        """Tracks whose musicnn probability of every one of ``tags`` (with the options' tags) is at least
        ``options.min_tag_probability``, best first (score: the mean of their probabilities of those tags),
        passing the options' other filters (genres, excluded tracks, artists and genres). Combine tags with
        similarity through ``similar(..., tags=[...])``."""
        opts = SearchOptions.of(options, tags=[*as_list(tags, "tags"), *(options.tags if options else ())])
        with self.snapshot() as snap:
            f = check_tag_filter(snap, list(opts.tags), opts.min_tag_probability)
            gjoin, gexpr = snap.genre_join()
            cond = Sql("t.id", gexpr, {"k": opts.k})
            filters = Filters.resolve(snap, opts)
            score = " + ".join(f"tt.probs[{f.space.index(tag)}]" for tag in f.tags)
            rows = snap.all(
                f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr} AS genre, ({score}) / {len(f.tags)} "
                f"AS score FROM track_tags tt JOIN tracks t ON t.id = tt.track_id {gjoin}"
                f"WHERE tt.model_version_id = {int(f.space.version_id)} AND t.status = 'indexed' AND "
                f"{' AND '.join(where(filters, cond))} ORDER BY score DESC, t.id LIMIT %(k)s",
                cond.params,
            )
        items = [
            TrackHit.of(r, score=float(r.score), model_version=f.space.version_id, space=f.space.model) for r in rows
        ]
        return QueryResult(
            query="search_by_tags",
            space=f.space.model,
            model_version_id=f.space.version_id,
            dimension=None,
            method="table",
            items=items,
            params={**opts.to_dict(), "min_probability": f.min_probability},
        )


# --------------------------------------------------------------------------- one track, in a snapshot
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
        genre=row.genre,
        confidence=float(row.confidence),
        probabilities={str(a): float(b) for a, b in (row.probabilities or {}).items()},
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
        f"b.model_version_id = {int(v.id)} AND b.cluster = a.cluster) AS size FROM cluster_assignments a "
        f"WHERE a.model_version_id = {int(v.id)} AND a.track_id = %(t)s",
        {"t": t.id},
    )
    if row is None:
        raise ModelNotTrainedError(
            f"track {t.id} has no assignment in {model} version {v.id} (indexed after training): "
            f"run `musicindex train --models {model}`"
        )
    return ClusterResult(
        track_id=t.id,
        path=t.path,
        cluster=int(row.cluster),
        size=int(row.size),
        model_version_id=v.id,
        model_kind=model,
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
