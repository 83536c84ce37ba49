"""Vector search with filters, and the diversity rules of list answers (no album or artist runs).

:func:`search` is the one nearest-neighbour query: ORDER BY the indexed distance expression with LIMIT and the
filters (``query.filters``) evaluated per candidate (with relaxed iterative HNSW scans the index keeps feeding until
LIMIT is met). The similarity engine (``query.engine``) is its only caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from musicindex.query.filters import Filters, Sql
from musicindex.query.filters import where as predicates
from musicindex.query.results import TrackHit
from musicindex.query.snapshot import Snapshot
from musicindex.query.spaces import Space
from musicindex.query.vectors import vec_literal

MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
MAX_CANDIDATES = 4000
EF_SEARCH_MIN = 200
"""Smallest HNSW search width: recall@10 >= 0.95 at a million vectors (benchmarks/query.py, docs/query.md)."""


def ef_search_for(limit: int) -> int:
    """HNSW search width for ``limit`` wanted results: max(200, 4 * limit), at most 1000."""
    return int(min(MAX_EF_SEARCH, max(EF_SEARCH_MIN, 4 * int(limit))))


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
    limit = int(limit)
    table, vpred, params = sp._from()
    gjoin, gexpr = snap.genre_join()
    cond = Sql("e.track_id", gexpr, {**params, "q": vec_literal(q), "lim": limit})
    where = [f"{vpred}t.status = 'indexed'", *(predicates(filters, cond) if filters is not None else [])]
    params = cond.params
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
        f"SELECT c.track_id AS id, t.path, t.title, t.artist, t.album, {gexpr} AS genre, c.distance "
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
    """Nearest tracks to ``q`` in ``sp`` (status 'indexed', filters applied), best first. Only the similarity
    engine (``query.engine``) calls it (``tests/unit/test_imports.py``)."""
    if sp.empty:
        return []
    prefix, sql, params = search_sql(snap, sp, q, limit, filters, ef_search=ef_search)
    rows = snap.all(prefix + sql, params)  # one round trip: SET LOCALs and the search
    return [TrackHit.of(r, distance=float(r.distance), model_version=sp.version_id, space=sp.name) for r in rows]


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
