"""Vector search with filters, and the diversity rules of list answers (no album or artist runs).

:func:`search` is the one nearest-neighbour query: ORDER BY the indexed distance expression with LIMIT and the
filters evaluated per candidate (with relaxed iterative HNSW scans the index keeps feeding until LIMIT is met).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicindex.query.results import TrackHit
from musicindex.query.snapshot import Snapshot
from musicindex.query.spaces import Space
from musicindex.query.tags import TagFilter, tag_condition
from musicindex.query.vectors import vec_literal

MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
MAX_CANDIDATES = 4000
EF_SEARCH_MIN = 200
"""Smallest HNSW search width: recall@10 >= 0.95 at a million vectors (benchmarks/query.py, docs/query.md)."""


def ef_search_for(limit: int) -> int:
    """HNSW search width for ``limit`` wanted results: max(200, 4 * limit), at most 1000."""
    return int(min(MAX_EF_SEARCH, max(EF_SEARCH_MIN, 4 * int(limit))))


@dataclass
class Filters:
    exclude_ids: Sequence[int] = ()
    genre: str | None = None
    exclude_artists: Sequence[str] = ()
    exclude_genres: Sequence[str] = ()
    tags: TagFilter | None = None


def search_sql(
    snap: Snapshot,
    sp: Space,
    q: np.ndarray,
    limit: int,
    filters: Filters | None = None,
    *,
    ef_search: int | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """(settings prefix, search statement, params) of one vector search (also used by EXPLAIN tests)."""
    f = filters or Filters()
    limit = int(limit)
    table, vpred, params = sp._from()
    params = {**params, "q": vec_literal(q), "lim": limit}
    gjoin, gexpr = snap.genre_join()
    where = [f"{vpred}t.status = 'indexed'"]
    if f.exclude_ids:
        where.append("e.track_id <> ALL(%(xids)s)")
        params["xids"] = [int(i) for i in f.exclude_ids]
    if f.genre is not None:
        where.append(f"{gexpr} = %(genre)s")
        params["genre"] = f.genre
    if f.exclude_artists:
        where.append("(t.artist IS NULL OR lower(t.artist) <> ALL(%(xart)s))")
        params["xart"] = [a.lower() for a in f.exclude_artists]
    if f.exclude_genres:
        where.append(f"({gexpr} IS NULL OR {gexpr} <> ALL(%(xgen)s))")
        params["xgen"] = list(f.exclude_genres)
    if f.tags is not None:
        where.append(tag_condition(f.tags, "e.track_id", params))
    dist = sp.dist_expr()
    tie = ", e.track_id" if sp.method == "exact" else ""
    # the candidate query: ORDER BY the indexed expression, LIMIT, filters evaluated per
    # candidate (with relaxed iterative scans the index keeps feeding until LIMIT is met)
    inner = (
        f"SELECT e.track_id, {dist} AS distance FROM {table} JOIN tracks t ON t.id = e.track_id {gjoin}"
        f"WHERE {' AND '.join(where)} ORDER BY {dist}{tie} LIMIT %(lim)s"
    )
    prefix = ""
    if sp.method == "hnsw":
        ef = int(ef_search) if ef_search else ef_search_for(limit)
        ef = max(1, min(MAX_EF_SEARCH, ef))
        sp.last_ef = ef
        prefix = f"SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = relaxed_order; "
    # relaxed_order may return candidates slightly out of order: materialize, then re-order
    sql = (
        f"WITH c AS MATERIALIZED ({inner}) "
        f"SELECT c.track_id, t.path, t.title, t.artist, t.album, {gexpr}, c.distance "
        f"FROM c JOIN tracks t ON t.id = c.track_id {gjoin}ORDER BY c.distance, c.track_id"
    )
    return prefix, sql, params


def search(
    snap: Snapshot,
    sp: Space,
    q: np.ndarray,
    limit: int,
    filters: Filters | None = None,
    *,
    ef_search: int | None = None,
) -> list[TrackHit]:
    """Nearest tracks to ``q`` in ``sp`` (status 'indexed', filters applied), best first."""
    if sp.empty:
        return []
    prefix, sql, params = search_sql(snap, sp, q, limit, filters, ef_search=ef_search)
    rows = snap.all(prefix + sql, params)  # one round trip: SET LOCALs and the search
    return [
        TrackHit(int(r[0]), r[1], r[2], r[3], r[4], r[5], float(r[6]), 1.0 - float(r[6]), sp.version_id, sp.name)
        for r in rows
    ]


def _norm(s: str | None) -> str | None:
    return s.strip().lower() if isinstance(s, str) and s.strip() else None


def fits(c: TrackHit, picks: Sequence[TrackHit], artist_spacing: int, album_rule: bool = True) -> bool:
    """Whether ``c`` may follow ``picks``: not the album of the previous track, and no track
    of its artist among the previous ``artist_spacing`` ones."""
    alb, art = _norm(c.album), _norm(c.artist)
    if album_rule and alb is not None and picks and _norm(picks[-1].album) == alb:
        return False
    return not (artist_spacing > 0 and art is not None and any(_norm(p.artist) == art for p in picks[-artist_spacing:]))


def diversify(
    cands: Sequence[TrackHit], k: int, artist_spacing: int, album_rule: bool = True, history: Sequence[TrackHit] = ()
) -> list[TrackHit]:
    """Greedy re-ranking: at each position the best remaining candidate that fits."""
    pool = list(cands)
    picks: list[TrackHit] = []
    while len(picks) < k and pool:
        for i, c in enumerate(pool):
            if fits(c, [*history, *picks], artist_spacing, album_rule):
                picks.append(pool.pop(i))
                break
        else:
            break
    return picks


@dataclass(frozen=True)
class Exclusions:
    """What a list answer (recommend, playlist) leaves out, and how it spreads artists and albums.

    ``tracks`` never appear (ids or paths); ``artists`` and ``genres`` are left out (case-insensitive artist
    names; genres as the label, else the genre model's prediction); ``artist_spacing``: two tracks of one artist
    are separated by at least this many others (0: off); ``album_spacing``: no two consecutive tracks of one
    album. :meth:`checked` validates the arguments once; :meth:`resolve` names the tracks in a snapshot.
    """

    tracks: tuple[Any, ...] = ()
    artists: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    artist_spacing: int = 3
    album_spacing: bool = True

    @classmethod
    def checked(
        cls,
        tracks: Sequence[Any] = (),
        artists: Sequence[str] = (),
        genres: Sequence[str] = (),
        artist_spacing: Any = 3,
        album_spacing: bool = True,
    ) -> Exclusions:
        from musicindex.query.validation import as_list, check_int, check_strings

        return cls(
            tuple(as_list(tracks, "exclude_tracks")),
            tuple(check_strings(as_list(artists, "exclude_artists"), "exclude_artists")),
            tuple(check_strings(as_list(genres, "exclude_genres"), "exclude_genres")),
            check_int(artist_spacing, "artist_spacing", 0, 100),
            bool(album_spacing),
        )

    def resolve(self, snap: Snapshot) -> list[int]:
        """The ids of the excluded tracks (TrackNotFoundError for an unknown one); unknown genres are refused."""
        for g in self.genres:
            snap.check_genre(g)
        return snap.track_ids(self.tracks)

    def filters(self, exclude_ids: Sequence[int]) -> Filters:
        """The search filters that leave out ``exclude_ids`` and these artists and genres."""
        return Filters(exclude_ids=sorted(set(exclude_ids)), exclude_artists=self.artists, exclude_genres=self.genres)

    def params(self, exclude_ids: Sequence[int]) -> dict[str, Any]:
        """How an answer records these exclusions (``QueryResult.params``)."""
        return {
            "exclude_tracks": list(exclude_ids),
            "exclude_artists": list(self.artists),
            "exclude_genres": list(self.genres),
            "artist_spacing": self.artist_spacing,
            "album_spacing": self.album_spacing,
        }
