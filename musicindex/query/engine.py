"""The similarity engine: every answer that ranks tracks by how they sound is made here, inside a snapshot.

``similar`` (one seed), ``recommend`` (liked minus disliked, Rocchio; radio is ``recommend`` with a history),
``path`` (a playlist from one track to another; a sonic path), ``mix`` (the mean direction of some tracks: an
instant mix of a song, an album or an artist; "for you"), ``similar_artists`` and ``example`` (an outside file).
Each opens the space the :class:`~musicindex.query.options.SearchOptions` name (or the best available one),
resolves the options into :class:`~musicindex.query.filters.Filters`, makes the query vector and asks
:func:`nearest`, which searches (``query.search``, the vector search; no other module calls it:
``tests/unit/test_imports.py``) and keeps the diversity rule of the question.

A question's own diversity rule (artist spacing, album rule) applies unless the options set one: ``SIMILAR``
(none), ``RECOMMEND`` and ``PLAYLIST`` (3 and on), ``MIX`` (1 and on). The services (``QueryService``,
``MixService``) check the arguments, open the snapshot and shape the answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from musicindex.dupes import links as dupes
from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.query import harmonic
from musicindex.query.explain import explain as explain_hits
from musicindex.query.filters import Filters
from musicindex.query.options import SearchOptions
from musicindex.query.results import Example, QueryResult, TrackHit
from musicindex.query.search import MAX_CANDIDATES, diversify, fits, search
from musicindex.query.snapshot import Snapshot, TrackRow
from musicindex.query.spaces import Space, default_space, load_space_matrix, open_space, standardize, vectors
from musicindex.query.vectors import slerp, unit
from musicindex.vocab import FEATURES_SPACE

Rule = tuple[int, bool]
"""A question's own diversity rule: (artist spacing, no two consecutive tracks of one album)."""
SIMILAR: Rule = (0, False)
RECOMMEND: Rule = (3, True)
PLAYLIST: Rule = (3, True)
MIX: Rule = (1, True)
SIMILAR_ARTIST_POOL = 300
"""Similar artists are found among the artists of this many nearest tracks."""


@dataclass
class Answer:
    """The space that answered, the hits, and what the answer records besides its options (seeds, skipped
    waypoints, the diversity rule that applied)."""

    space: Space
    items: list[TrackHit]
    params: dict[str, Any] = field(default_factory=dict)

    def result(self, query: str, options: SearchOptions) -> QueryResult:
        """The answer as a :class:`~musicindex.query.results.QueryResult` (``params``: the options and the
        answer's own)."""
        sp = self.space
        return QueryResult(
            query=query,
            space=sp.name,
            model_version_id=sp.version_id,
            dimension=sp.dim,
            method=sp.method,
            items=self.items,
            ef_search=sp.last_ef if sp.method == "hnsw" else None,
            params={**options.to_dict(), **self.params},
        )


def open_for(snap: Snapshot, options: SearchOptions, seeds: Sequence[int] = ()) -> Space:
    """The space ``options`` name, else the best one that holds vectors of ``seeds`` (``spaces.default_space``)."""
    return open_space(snap, options.space or default_space(snap, seeds), exact=options.exact)


def nearest(
    snap: Snapshot,
    sp: Space,
    q: np.ndarray,
    k: int,
    filters: Filters,
    rule: Rule = SIMILAR,
    history: Sequence[TrackHit] = (),
    first_fetch: int | None = None,
) -> list[TrackHit]:
    """The ``k`` nearest tracks to ``q`` that pass ``filters`` and keep the diversity rule (the options', else
    ``rule``) after ``history`` (the tracks played or picked just before), fetching more candidates until ``k``
    fit or none are left (``first_fetch`` first; default 4k + 20)."""
    artist, album = filters.options.spacing(*rule)
    ef = filters.options.ef_search
    dedupe = not filters.options.allow_duplicates
    if not artist and not album and not dedupe:
        return search(snap, sp, q, k, filters, ef_search=ef)
    fetch = min(MAX_CANDIDATES, first_fetch or (4 * k + 20 if artist or album else k))
    while True:
        cands = search(snap, sp, q, fetch, filters, ef_search=ef)
        kept = one_per_group(snap, cands) if dedupe else cands
        items = diversify(kept, k, artist, album, history=history) if artist or album else kept[:k]
        if len(items) >= k or len(cands) < fetch or fetch >= MAX_CANDIDATES:
            return items
        fetch = min(MAX_CANDIDATES, fetch * 4)


def one_per_group(snap: Snapshot, hits: Sequence[TrackHit]) -> list[TrackHit]:
    """``hits`` without the later files of a duplicate group one of them is in (the nearest file stays)."""
    twins = dupes.twins(snap.conn, [h.id for h in hits])
    if not twins:
        return list(hits)
    kept: list[TrackHit] = []
    taken: set[int] = set()
    for h in hits:
        if h.id in taken:
            continue
        kept.append(h)
        taken |= twins.get(h.id, set())
    return kept


def _recorded(options: SearchOptions, rule: Rule, **params: Any) -> dict[str, Any]:
    artist, album = options.spacing(*rule)
    return {**params, "artist_spacing": artist, "album_spacing": album}


# --------------------------------------------------------------------------- the questions
def similar(snap: Snapshot, seed: TrackRow, options: SearchOptions) -> Answer:
    """The tracks nearest to ``seed`` (which never appears)."""
    sp = open_for(snap, options, [seed.id])
    filters = Filters.resolve(snap, options, seeds=[seed.id])
    q = vectors(snap, sp, [seed.id])[seed.id]
    items = nearest(snap, sp, q, options.k, filters, SIMILAR)
    if options.explain:
        items = explain_hits(snap, items, query_ids=[seed.id])
    return Answer(sp, items, _recorded(options, SIMILAR, track=seed.id))


def recommend(
    snap: Snapshot, liked: Sequence[int], disliked: Sequence[int], options: SearchOptions, history: Sequence[int] = (),
    *, exclude_ids: Sequence[int] = (),
) -> Answer:  # fmt: skip
    """For someone who likes ``liked`` and dislikes ``disliked`` (ids): the mean direction of the liked tracks
    minus half the mean direction of the disliked ones (Rocchio). ``history``: the tracks just before the answer,
    oldest first (a radio's queue): they never appear, and the diversity rule continues from them; ``exclude_ids``
    never appear either (what the listener keeps skipping)."""
    seeds = [*liked, *disliked]
    sp = open_for(snap, options, seeds)
    before = seed_hits(snap, sp, history)
    filters = Filters.resolve(snap, options, seeds=seeds, exclude_ids=[*history, *exclude_ids])
    vecs = vectors(snap, sp, seeds)
    q = unit(np.mean([unit(vecs[i]) for i in liked], axis=0))
    if disliked:
        q = unit(q - 0.5 * unit(np.mean([unit(vecs[i]) for i in disliked], axis=0)))
    extra: dict[str, Any] = {}
    if options.harmonic:  # a chain from the last track played (or the first liked one)
        start = history[-1] if history else liked[0]
        beat = harmonic.known(harmonic.beats(snap, [start]).get(start), f"track {start}")
        cands = search(snap, sp, q, min(MAX_CANDIDATES, 20 * options.k + 100), filters, ef_search=options.ef_search)
        items, extra["transitions"] = _chain(snap, cands, options.k, beat, options.spacing(*RECOMMEND), before)
    else:
        items = nearest(snap, sp, q, options.k, filters, RECOMMEND, history=before)
    if options.explain:
        items = explain_hits(snap, items, query_ids=list(liked))
    if options.harmonic:
        items = [replace(h, why={**(h.why or {}), "transition": t}) for h, t in zip(items, extra["transitions"],
                                                                                  strict=True)]  # fmt: skip
    return Answer(sp, items, _recorded(options, RECOMMEND, liked=list(liked), disliked=list(disliked),
                                       history=[h.id for h in before], **extra))  # fmt: skip


def path(snap: Snapshot, a: TrackRow, b: TrackRow, options: SearchOptions, rule: Rule = PLAYLIST) -> Answer:
    """``options.k`` tracks from ``a`` to ``b`` (both included): the nearest unused track to each spherical
    interpolation of their unit vectors that passes the filters and keeps the diversity rule (``rule`` unless the
    options set one); a waypoint no track can fill is skipped (``params['skipped']``)."""
    n = options.k
    sp = open_for(snap, options, [a.id, b.id])
    filters = Filters.resolve(snap, options, seeds=[a.id, b.id])
    artist, album = options.spacing(*rule)
    vecs = vectors(snap, sp, [a.id, b.id])
    va, vb = unit(vecs[a.id]), unit(vecs[b.id])
    hit_a, hit_b = seed_hits(snap, sp, [a.id, b.id])
    picks = [hit_a]
    skipped = 0
    ends = harmonic.beats(snap, [a.id, b.id]) if options.harmonic else {}
    prev = harmonic.known(ends.get(a.id), f"the start track {a.id}") if options.harmonic else None
    reasons: list[str | None] = [None]
    for i in range(1, n - 1):
        w = slerp(va, vb, i / (n - 1))
        chosen = _waypoint(snap, sp, w, filters, picks, hit_b, (n - 1) - i, artist, album, prev)
        if chosen is None:
            skipped += 1
            continue
        hit, prev, reason = chosen
        picks.append(hit)
        reasons.append(reason)
        filters = filters.excluding([hit.id], snap)  # and the other files of its duplicate groups
    picks.append(hit_b)
    extra: dict[str, Any] = {}
    if prev is not None:  # harmonic: the end track is fixed, its transition is reported as it is
        end = ends.get(b.id)
        reasons.append((harmonic.transition(prev, end) if end is not None else None) or "not a harmonic step: the "
                       "end track is fixed")  # fmt: skip
        picks = [replace(h, why={**(h.why or {}), "transition": r}) for h, r in zip(picks, reasons, strict=True)]
        extra["transitions"] = reasons
    return Answer(sp, picks, _recorded(options, rule, start=a.id, end=b.id, skipped=skipped, **extra))


def mix(
    snap: Snapshot, seeds: Sequence[int], options: SearchOptions, rule: Rule = MIX, keep_tempo: bool = False,
    exclude_ids: Sequence[int] = (),
) -> Answer:  # fmt: skip
    """Tracks that sound like ``seeds`` together (their mean direction), nearest first, seeds and ``exclude_ids``
    left out; no hits when none of the seeds has a vector. ``keep_tempo`` (an instant mix) with no ``tempo``
    option: the tracks within the seeds' tempo range (+-8 %) come first, the nearest others fill the rest
    (``params['tempo_range']``)."""
    sp, q = seed_direction(snap, seeds, options)
    if q is None:
        return Answer(sp, [])
    filters = Filters.resolve(snap, options, seeds=seeds, exclude_ids=exclude_ids)
    span = _seed_tempo(snap, seeds) if keep_tempo and options.tempo is None else None
    items: list[TrackHit] = []
    if span is not None:
        kept = replace(filters, options=replace(filters.options, tempo=span))
        items = nearest(snap, sp, q, options.k, kept, rule, first_fetch=2 * options.k + 10)
    if len(items) < options.k:
        rest = filters.excluding([h.id for h in items], snap)  # and the other files of their duplicate groups
        items += nearest(snap, sp, q, options.k - len(items), rest, rule, history=items,
                         first_fetch=2 * options.k + 10)  # fmt: skip
    return Answer(sp, items, _recorded(options, rule, tempo_range=span))


def _seed_tempo(snap: Snapshot, seeds: Sequence[int]) -> tuple[float, float] | None:
    """The seeds' measured tempo range widened by the harmonic tempo step (+-8 %); None when none is known."""
    row = snap.one(
        "SELECT min(tempo) AS lo, max(tempo) AS hi FROM track_descriptors WHERE track_id = ANY(%(ids)s)",
        {"ids": [int(s) for s in seeds]},
    )
    if row is None or row.lo is None:
        return None
    return (round(float(row.lo) * (1 - harmonic.TEMPO_STEP), 3), round(float(row.hi) * (1 + harmonic.TEMPO_STEP), 3))


def similar_artists(snap: Snapshot, artist_id: int, seeds: Sequence[int], options: SearchOptions) -> list[int]:
    """The ids of up to ``options.k`` other artists whose tracks are nearest to the mean direction of ``seeds``
    (the artist's tracks), each ranked by its best match."""
    sp, q = seed_direction(snap, seeds, options)
    if q is None:
        return []
    hits = search(snap, sp, q, SIMILAR_ARTIST_POOL, Filters.resolve(snap, options, seeds=seeds))
    owner = {
        int(r.id): r.artist_id
        for r in snap.all("SELECT id, artist_id FROM tracks WHERE id = ANY(%(ids)s)", {"ids": [h.id for h in hits]})
    }
    best: dict[int, float] = {}
    for h in hits:
        a = owner.get(h.id)
        if a is not None and int(a) != artist_id:
            best.setdefault(int(a), h.similarity or 0.0)
    return sorted(best, key=lambda a: -best[a])[: options.k]


def example(snap: Snapshot, found: Example, options: SearchOptions) -> Answer:
    """The tracks nearest to an outside file analysed into ``found`` (``MusicIndex.similar_to_file``)."""
    sp = open_for(snap, options)
    q = example_vector(sp, found)
    items = nearest(snap, sp, q, options.k, Filters.resolve(snap, options), SIMILAR)
    if options.explain:
        items = explain_hits(snap, items, query_features=found.features, query_tags=found.tags)
    return Answer(sp, items, _recorded(options, SIMILAR, path=found.path, duration=found.duration))


# --------------------------------------------------------------------------- vectors
def seed_direction(snap: Snapshot, seeds: Sequence[int], options: SearchOptions) -> tuple[Space, np.ndarray | None]:
    """The space and the mean direction of those of ``seeds`` that have vectors there (None: none has)."""
    sp = open_for(snap, options, seeds)
    _, mat = load_space_matrix(snap, sp, seeds)
    return sp, (unit(mat.mean(axis=0)) if len(mat) else None)


def similarities(snap: Snapshot, sp: Space, start: int, ids: Sequence[int]) -> dict[int, float]:
    """``TrackHit.similarity`` (1 - cosine distance / 2, in [0, 1]) of each of ``ids`` to the track ``start``."""
    vecs = vectors(snap, sp, [start, *ids])
    origin = unit(vecs[start])
    return {i: min(1.0, max(0.0, 1.0 - (1.0 - float(np.dot(origin, unit(vecs[i])))) / 2.0)) for i in ids}


def seed_hits(snap: Snapshot, sp: Space, ids: Sequence[int]) -> list[TrackHit]:
    """Tracks ``ids`` (known to exist) as hits at distance 0, in the given order (seeds, a radio's history)."""
    if not ids:
        return []
    gjoin, gexpr = snap.genre_join()
    rows = snap.all(
        f"SELECT t.id, t.path, t.title, t.artist, t.album, {gexpr} AS genre FROM tracks t {gjoin}"
        "WHERE t.id = ANY(%(ids)s)",
        {"ids": [int(i) for i in ids]},
    )
    by_id = {int(r.id): r for r in rows}
    return [TrackHit.of(by_id[int(i)], distance=0.0, model_version=sp.version_id, space=sp.name) for i in ids]


def example_vector(sp: Space, found: Example) -> np.ndarray:
    """The query vector of an outside file in ``sp`` (the vectors ``found`` carries)."""
    if sp.name == FEATURES_SPACE:
        if found.features is None:
            raise InvalidArgumentError("a query by example in the features space needs the file's 43 features")
        return standardize(sp, found.features) if not sp.empty else np.zeros(sp.dim)
    assert sp.version is not None
    emb = found.embeddings.get(sp.version.id)
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


def _waypoint(
    snap: Snapshot,
    sp: Space,
    w: np.ndarray,
    filters: Filters,
    picks: list[TrackHit],
    end: TrackHit,
    gap: int,
    artist: int,
    album: bool,
    after: harmonic.Beat | None = None,
) -> tuple[TrackHit, harmonic.Beat | None, str | None] | None:
    """The nearest track to waypoint ``w`` that fits after ``picks`` and ``gap`` places before ``end`` (and, with
    ``after``, the last pick's key and tempo, is a harmonic step from it): (the track, its beat, the reason)."""
    fetch = max(20, 4 * artist + 10) * (5 if after is not None else 1)
    while True:
        cands = search(snap, sp, w, fetch, filters, ef_search=filters.options.ef_search)
        beats = harmonic.beats(snap, [c.id for c in cands]) if after is not None else {}
        for c in cands:
            if not (fits(c, picks, artist, album) and _fits_end(c, end, gap, artist, album)):
                continue
            if after is None:
                return c, None, None
            beat = beats.get(c.id)
            reason = harmonic.transition(after, beat) if beat is not None else None
            if reason is not None:
                return c, beat, reason
        if len(cands) < fetch or fetch >= MAX_CANDIDATES:
            return None
        fetch = min(MAX_CANDIDATES, fetch * 4)


def _fits_end(c: TrackHit, end: TrackHit, gap: int, artist: int, album: bool) -> bool:
    """The end track is fixed: a pick ``gap`` positions before it must respect the rules too."""
    if album and gap == 1 and not fits(end, [c], 0, True):
        return False
    return not (artist > 0 and gap <= artist and not fits(end, [c], 1, False))


def _chain(
    snap: Snapshot, cands: Sequence[TrackHit], k: int, start: harmonic.Beat, rule: Rule, history: Sequence[TrackHit]
) -> tuple[list[TrackHit], list[str]]:
    """Up to ``k`` of ``cands`` (nearest first) in a harmonic chain from ``start``: each the nearest remaining one
    that keeps the diversity ``rule`` and is a harmonic step from the one before; with each transition's reason."""
    beats = harmonic.beats(snap, [c.id for c in cands])
    pool, prev = list(cands), start
    picks: list[TrackHit] = []
    reasons: list[str] = []
    while len(picks) < k:
        for i, c in enumerate(pool):
            beat = beats.get(c.id)
            reason = harmonic.transition(prev, beat) if beat is not None else None
            if beat is not None and reason is not None and fits(c, [*history, *picks], *rule):
                picks.append(pool.pop(i))
                reasons.append(reason)
                prev = beat
                break
        else:
            break
    return picks, reasons
