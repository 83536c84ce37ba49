"""The query engine: snapshots, model-version lookup, vector search. Reads only.

Every public query runs inside ONE read-only ``REPEATABLE READ`` transaction
(:func:`snapshot`): the active-version lookup and the vector search see the same
snapshot, so a model promoted mid-query is never half-seen.

SQL is sent with psycopg2's client-side parameter interpolation (``%(name)s``): values
reach the server as literals, which lets the planner match the partial HNSW index
``ix_emb_hnsw_v{id} ... WHERE model_version_id = {id}``. The only values formatted into
SQL text are integers produced here (model version id, dimension, ef_search), never
user input.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pgvector import Vector
from sqlalchemy.engine import Connection

from musicindex.errors import (
    InvalidArgumentError,
    ModelNotTrainedError,
    QueryTimeoutError,
    TrackNotFoundError,
    UnknownGenreError,
)
from musicindex.query.results import TrackHit
from musicindex.vocab import (
    DEFAULT_SPACE,
    FEATURE_NAMES,
    MUSICNN,
    N_FEATURES,
    SPACE_KIND,
    SPACES,
    TOP_TAG_MIN,
    GenreCandidate,
    hnsw_index_name,
    pick_genre_model,
)

MAX_K = 1000
EXACT_THRESHOLD = 10_000
"""Versions with fewer vectors than this are searched exactly (brute force is fast and exact)."""
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
MAX_CANDIDATES = 4000
EXACT_MAX = 200_000
"""``exact=True`` (brute force) is refused above this many vectors (``evaluate`` bounds its own sample)."""


EF_SEARCH_MIN = 200
"""Smallest HNSW search width: recall@10 >= 0.95 at a million vectors (benchmarks/query.py, docs/query.md)."""


def ef_search_for(limit: int) -> int:
    """HNSW search width for ``limit`` wanted results: max(200, 4 * limit), at most 1000."""
    return int(min(MAX_EF_SEARCH, max(EF_SEARCH_MIN, 4 * int(limit))))


def check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be an integer between 1 and {MAX_K}, got {k!r}")
    if k <= 0 or k > MAX_K:
        raise InvalidArgumentError(f"{name} must be between 1 and {MAX_K}, got {k}")
    return int(k)


def check_space(space: Any) -> str:
    if space not in SPACES:
        raise InvalidArgumentError(f"unknown space {space!r}; choose one of: {', '.join(SPACES)}")
    return str(space)


def vec_literal(v: np.ndarray) -> str:
    """pgvector's text form of a finite 1-d array (sent as a parameter, never formatted into SQL)."""
    arr = np.asarray(v, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError("query vector has non-finite values")
    return str(Vector(arr).to_text())


def parse_vec(text: str) -> np.ndarray:
    """A vector read as text (``embedding::text``), by pgvector's own parser."""
    return np.asarray(Vector.from_text(text).to_numpy(), dtype=np.float64)


def unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between unit vectors (linear when they are (anti)parallel)."""
    dot = float(np.clip(np.dot(a, b), -1.0, 1.0))
    omega = np.arccos(dot)
    if omega < 1e-6 or abs(np.pi - omega) < 1e-6:
        return unit((1 - t) * a + t * b)
    so = np.sin(omega)
    return unit(np.sin((1 - t) * omega) / so * a + np.sin(t * omega) / so * b)


# --------------------------------------------------------------------------- snapshot
@dataclass(frozen=True)
class VersionInfo:
    id: int
    kind: str
    embedding_dim: int | None
    params: dict[str, Any]
    classes: list[Any] | None
    metrics: dict[str, Any]


@dataclass(frozen=True)
class TrackRow:
    id: int
    path: str
    title: str | None
    artist: str | None
    album: str | None
    label: str | None
    status: str


class Snapshot:
    """A read-only REPEATABLE READ transaction and what was looked up in it."""

    def __init__(self, conn: Connection, genre_model: str = "auto"):
        self.conn = conn
        self.genre_preference = genre_model
        self._versions: dict[str, VersionInfo] | None = None

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        return list(self.conn.exec_driver_sql(sql, params or {}).fetchall())

    def one(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        return self.conn.exec_driver_sql(sql, params or {}).first()

    # -- registry (read only) -------------------------------------------------
    @property
    def versions(self) -> dict[str, VersionInfo]:
        """The active version of each kind, as of this snapshot."""
        if self._versions is None:
            rows = self.all(
                "SELECT id, kind, embedding_dim, params, classes, metrics FROM model_versions WHERE state = 'active'"
            )
            self._versions = {r[1]: VersionInfo(int(r[0]), r[1], r[2], r[3] or {}, r[4], r[5] or {}) for r in rows}
        return self._versions

    def genre_model(self) -> VersionInfo | None:
        """The classifier answering genre questions (``vocab.pick_genre_model``), as of this snapshot."""
        active = [GenreCandidate(v.id, v.kind, v.metrics) for v in self.versions.values()]
        pick = pick_genre_model(active, self.genre_preference or "auto")
        return self.versions[pick.kind] if pick is not None else None

    # -- tracks ----------------------------------------------------------------
    def track(self, ref: Any) -> TrackRow:
        """A track by id (int) or by path (str / PathLike; a string of digits that is no
        known path is taken as an id)."""
        cols = "SELECT id, path, title, artist, album, label, status FROM tracks "
        row = None
        if isinstance(ref, bool) or ref is None:
            raise InvalidArgumentError(f"a track is given by id (int) or path (str), got {ref!r}")
        if isinstance(ref, (int, np.integer)):
            row = self.one(cols + "WHERE id = %(id)s", {"id": int(ref)})
        elif isinstance(ref, (str, os.PathLike)):
            s = os.fspath(ref)
            row = self.one(cols + "WHERE path = %(p)s", {"p": s})
            if row is None and s:
                try:
                    resolved = str(Path(s).expanduser().resolve())
                except (OSError, RuntimeError, ValueError):
                    resolved = s
                if resolved != s:
                    row = self.one(cols + "WHERE path = %(p)s", {"p": resolved})
            if row is None and s.strip().isdigit() and len(s.strip()) < 19:
                row = self.one(cols + "WHERE id = %(id)s", {"id": int(s.strip())})
        else:
            raise InvalidArgumentError(f"a track is given by id (int) or path (str), got {type(ref).__name__}")
        if row is None:
            raise TrackNotFoundError(
                f"no track {ref!r} in the index (give a track id or the path it was ingested under; "
                "`musicindex status` shows what is indexed, `SELECT id, path FROM musicindex_tracks` lists ids, "
                "`musicindex ingest PATH` adds a file)"
            )
        return TrackRow(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6])

    def track_ids(self, refs: Iterable[Any]) -> list[int]:
        return [self.track(r).id for r in refs]

    # -- genres ----------------------------------------------------------------
    def check_genre(self, genre: Any) -> str:
        """``genre`` if any label or the genre model knows it, else UnknownGenreError listing the known ones."""
        if not isinstance(genre, str) or not genre:
            raise InvalidArgumentError(f"genre must be a non-empty string, got {genre!r}")
        gm = self.genre_model()
        if gm is not None and genre in (gm.classes or []):
            return genre
        if self.one("SELECT 1 FROM tracks WHERE label = %(g)s LIMIT 1", {"g": genre}) is not None:
            return genre
        known = self.known_genres()
        raise UnknownGenreError(
            f"unknown genre {genre!r}; known genres: "
            + (", ".join(known) if known else "(none: no labels and no trained genre model)")
        )

    def known_genres(self) -> list[str]:
        known = {r[0] for r in self.all("SELECT DISTINCT label FROM tracks WHERE label IS NOT NULL")}
        gm = self.genre_model()
        if gm is not None:
            known.update(str(c) for c in (gm.classes or []))
        return sorted(known)


@contextlib.contextmanager
def snapshot(db: Any, genre_model: str = "auto", timeout: float | None = None) -> Iterator[Snapshot]:
    """ONE read-only REPEATABLE READ transaction for a whole query; each of its statements is cancelled after
    ``timeout`` seconds (``MUSICINDEX_QUERY_TIMEOUT``) with a QueryTimeoutError."""
    from sqlalchemy.exc import OperationalError

    with db.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if timeout:
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(float(timeout) * 1000))}")
        try:
            yield Snapshot(conn, genre_model)
        except OperationalError as exc:
            if getattr(exc.orig, "pgcode", None) == "57014":  # query_canceled: the statement timeout
                raise QueryTimeoutError(
                    f"the query took longer than {timeout} s (MUSICINDEX_QUERY_TIMEOUT) and was cancelled; "
                    "ask for fewer results, or raise the setting"
                ) from None
            raise


# --------------------------------------------------------------------------- spaces
_STATS_SQL = (
    "SELECT count(*), ARRAY["
    + ", ".join(f"avg(f.{c})" for c in FEATURE_NAMES)
    + "], ARRAY["
    + ", ".join(f"stddev_pop(f.{c})" for c in FEATURE_NAMES)
    + "] "
    "FROM track_features f JOIN tracks t ON t.id = f.track_id WHERE t.status = 'indexed'"
)


@dataclass
class Space:
    """One similarity space as of a snapshot: which vectors, which search method."""

    name: str
    version: VersionInfo | None
    dim: int
    method: str  # "hnsw" | "exact"
    mean: np.ndarray | None = None  # raw features: standardization from the table
    inv_std: np.ndarray | None = None
    count: int | None = None
    last_ef: int | None = field(default=None)

    @property
    def version_id(self) -> int | None:
        return self.version.id if self.version else None

    @property
    def empty(self) -> bool:
        return self.version is None and self.mean is None

    # SQL pieces -----------------------------------------------------------
    def _from(self) -> tuple[str, str, dict[str, Any]]:
        """(FROM clause, WHERE predicate, params) of the vector table, aliased ``e``."""
        if self.version is not None:
            return "embeddings e", f"e.model_version_id = {int(self.version.id)} AND ", {}
        assert self.mean is not None and self.inv_std is not None, "searching an empty features space"
        return "track_features e", "", {"mean": vec_literal(self.mean), "inv": vec_literal(self.inv_std)}

    def dist_expr(self) -> str:
        d = int(self.dim)
        if self.version is not None:
            if self.method == "hnsw":  # the indexed expression, verbatim
                return f"(e.embedding::vector({d}) <=> %(q)s::vector({d}))"
            return f"(e.embedding <=> %(q)s::vector({d}))"
        return (
            f"(((e.vec - %(mean)s::vector({N_FEATURES})) * %(inv)s::vector({N_FEATURES})) "
            f"<=> %(q)s::vector({N_FEATURES}))"
        )


def default_space(snap: Snapshot, track_ids: Sequence[int] = ()) -> str:
    """The best space that can answer (``vocab.SPACE_PREFERENCE``): musicnn when it has an active version that
    holds vectors of ``track_ids`` (any vector at all when none are given), else the features space."""
    v = snap.versions.get(MUSICNN)
    if v is None:
        return DEFAULT_SPACE
    ids = sorted({int(t) for t in track_ids})
    if not ids:
        found = snap.one(f"SELECT 1 FROM embeddings WHERE model_version_id = {int(v.id)} LIMIT 1")
        return MUSICNN if found is not None else DEFAULT_SPACE
    n = snap.one(
        f"SELECT count(*) FROM embeddings WHERE model_version_id = {int(v.id)} AND track_id = ANY(%(ids)s)",
        {"ids": ids},
    )[0]
    return MUSICNN if int(n) == len(ids) else DEFAULT_SPACE


def open_space(snap: Snapshot, space: str, *, exact: bool = False, bound_exact: bool = True) -> Space:
    """The active vectors of ``space``; raises ModelNotTrainedError for an untrained ann/cnn space."""
    space = check_space(space)
    v = snap.versions.get(SPACE_KIND[space])
    if v is None and space == MUSICNN:
        raise ModelNotTrainedError(
            "no track is embedded in the musicnn space yet: run `musicindex embed` (a worker serving the embed "
            "queue embeds new tracks as they are indexed), or use space='features'"
        )
    if v is None and space != "features":
        raise ModelNotTrainedError(
            f"the {space!r} space has no trained model yet: run `musicindex train --models {space}` "
            f"(or use space='features', which works right after ingestion)"
        )
    if v is None:
        row = snap.one(_STATS_SQL)
        n = int(row[0])
        if n == 0:
            return Space(space, None, N_FEATURES, "exact", count=0)
        mean = np.array([float(x) if x is not None else 0.0 for x in row[1]], dtype=np.float64)
        std = np.array([float(x) if x is not None else 0.0 for x in row[2]], dtype=np.float64)
        inv = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0)
        return Space(space, None, N_FEATURES, "exact", mean=mean, inv_std=inv, count=n)
    dim = int(v.embedding_dim or (N_FEATURES if space == "features" else 0))
    if dim <= 0:
        raise ModelNotTrainedError(f"model version {v.id} ({v.kind}) has no embedding dimension; retrain it")
    method = "exact"
    if not exact:
        row = snap.one(
            "SELECT c.reltuples FROM pg_class c WHERE c.relname = %(ix)s AND c.relkind = 'i'",
            {"ix": hnsw_index_name(v.id)},
        )
        if row is not None:  # no index: brute force is the only way
            if row[0] is not None and row[0] >= EXACT_THRESHOLD:
                method = "hnsw"
            else:
                cnt = snap.one(
                    f"SELECT count(*) FROM (SELECT 1 FROM embeddings WHERE model_version_id = {int(v.id)} "
                    f"LIMIT {EXACT_THRESHOLD}) s"
                )[0]
                method = "hnsw" if cnt >= EXACT_THRESHOLD else "exact"
    elif bound_exact:
        n = snap.one(
            f"SELECT count(*) FROM (SELECT 1 FROM embeddings WHERE model_version_id = {int(v.id)} "
            f"LIMIT {EXACT_MAX + 1}) s"
        )[0]
        if n > EXACT_MAX:
            raise InvalidArgumentError(
                f"exact search is limited to {EXACT_MAX} vectors and the {space} space holds more; leave out "
                "exact (the HNSW index answers with recall@10 >= 0.95)"
            )
    return Space(space, v, dim, method)


def standardize(sp: Space, features: np.ndarray) -> np.ndarray:
    """Raw 43 features -> the ``features`` space (scaler params, or the table's statistics)."""
    x = np.asarray(features, dtype=np.float64).ravel()
    if x.shape != (N_FEATURES,):
        raise InvalidArgumentError(f"expected {N_FEATURES} features, got {x.shape}")
    if sp.version is not None:
        mean = np.asarray(sp.version.params.get("mean"), dtype=np.float64)
        scale = np.asarray(sp.version.params.get("scale"), dtype=np.float64)
        if mean.shape != (N_FEATURES,) or scale.shape != (N_FEATURES,):
            raise ModelNotTrainedError(f"scaler version {sp.version.id} has no mean/scale params; retrain it")
        return (x - mean) / np.where(scale != 0, scale, 1.0)
    if sp.mean is None or sp.inv_std is None:
        raise ModelNotTrainedError("the features space is empty: no track has audio features yet")
    return (x - sp.mean) * sp.inv_std


def vectors(snap: Snapshot, sp: Space, track_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The vectors of ``track_ids`` in ``sp``; ModelNotTrainedError if a track has none."""
    ids = [int(t) for t in track_ids]
    if not ids:
        return {}
    out: dict[int, np.ndarray] = {}
    if sp.version is not None:
        for tid, txt in snap.all(
            f"SELECT track_id, embedding::text FROM embeddings "
            f"WHERE model_version_id = {int(sp.version.id)} AND track_id = ANY(%(ids)s)",
            {"ids": ids},
        ):
            out[int(tid)] = parse_vec(txt)
    missing = [t for t in ids if t not in out]
    if missing and (sp.version is None or sp.name == "features"):
        rows = snap.all(
            "SELECT track_id, vec::text FROM track_features WHERE track_id = ANY(%(ids)s)", {"ids": missing}
        )
        for tid, txt in rows:
            if sp.empty:
                continue
            out[int(tid)] = standardize(sp, parse_vec(txt))
        missing = [t for t in ids if t not in out]
    if missing:
        if sp.version is None:
            raise ModelNotTrainedError(
                f"track {missing[0]} has no audio features yet (not indexed: see `musicindex status`)"
            )
        raise ModelNotTrainedError(
            f"track {missing[0]} has no {sp.name!r} embedding in model version {sp.version.id} "
            f"(indexed after that model was trained): run `musicindex train --models {sp.name}` to embed it"
        )
    return out


@dataclass
class Filters:
    exclude_ids: Sequence[int] = ()
    genre: str | None = None
    exclude_artists: Sequence[str] = ()
    exclude_genres: Sequence[str] = ()
    tags: TagFilter | None = None


# --------------------------------------------------------------------------- musicnn tags
MAX_TAGS = 10
"""At most this many tags in one tag search or filter."""


@dataclass(frozen=True)
class TagSpace:
    """The tag names of the active musicnn version (``classes``, in the order of ``track_tags.probs``)."""

    version_id: int
    names: list[str]

    def index(self, tag: str) -> int:
        """1-based position of ``tag`` in ``track_tags.probs``; InvalidArgumentError naming close tags if unknown."""
        if tag in self.names:
            return self.names.index(tag) + 1
        import difflib

        close = difflib.get_close_matches(tag, self.names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise InvalidArgumentError(f"unknown tag {tag!r}; {hint}the tags are: {', '.join(self.names)}")


@dataclass(frozen=True)
class TagFilter:
    space: TagSpace
    tags: tuple[str, ...]
    min_probability: float


def tag_space(snap: Snapshot) -> TagSpace:
    """The active musicnn version's tags; ModelNotTrainedError when nothing is embedded yet."""
    v = snap.versions.get(MUSICNN)
    if v is None or not v.classes:
        raise ModelNotTrainedError(
            "no track has musicnn tags yet: run `musicindex embed` (a worker serving the embed queue tags new "
            "tracks as they are indexed)"
        )
    return TagSpace(v.id, [str(c) for c in v.classes])


def check_tag_filter(snap: Snapshot, tags: Sequence[Any], min_probability: Any) -> TagFilter:
    """Validated tags and threshold for a tag search or a tag filter."""
    names = list(tags)
    if not names or len(names) > MAX_TAGS or not all(isinstance(t, str) and t for t in names):
        raise InvalidArgumentError(f"give 1 to {MAX_TAGS} tags as non-empty strings, got {list(tags)!r}")
    if isinstance(min_probability, bool) or not isinstance(min_probability, (int, float)):
        raise InvalidArgumentError(f"min_probability must be a number in [0, 1), got {min_probability!r}")
    if not 0.0 <= float(min_probability) < 1.0:
        raise InvalidArgumentError(f"min_probability must be in [0, 1), got {min_probability}")
    ts = tag_space(snap)
    for t in names:
        ts.index(t)
    return TagFilter(ts, tuple(dict.fromkeys(names)), float(min_probability))


def tag_condition(f: TagFilter, track_col: str, params: dict[str, Any]) -> str:
    """SQL: the track in ``track_col`` has every tag of ``f`` at least ``f.min_probability`` probable."""
    params["tmin"] = f.min_probability
    checks = " AND ".join(f"tt.probs[{f.space.index(t)}] >= %(tmin)s" for t in f.tags)
    gin = ""
    if f.min_probability >= TOP_TAG_MIN:  # every such tag is among the top tags: the GIN index narrows it
        params["ttags"] = list(f.tags)
        gin = " AND tt.top_tags @> %(ttags)s::text[]"
    return (
        f"EXISTS (SELECT 1 FROM track_tags tt WHERE tt.model_version_id = {int(f.space.version_id)} "
        f"AND tt.track_id = {track_col}{gin} AND {checks})"
    )


def tag_probabilities(snap: Snapshot, ts: TagSpace, track_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The tag probabilities (in ``ts.names`` order) of those of ``track_ids`` that have them."""
    ids = [int(t) for t in track_ids]
    if not ids:
        return {}
    rows = snap.all(
        f"SELECT track_id, probs FROM track_tags WHERE model_version_id = {int(ts.version_id)} "
        "AND track_id = ANY(%(ids)s)",
        {"ids": ids},
    )
    return {int(r[0]): np.asarray(r[1], dtype=np.float64) for r in rows}


def top_tags(
    probs: np.ndarray, names: Sequence[str], n: int = 5, floor: float = TOP_TAG_MIN
) -> list[tuple[str, float]]:
    """The ``n`` most probable tags at least ``floor`` probable, best first."""
    order = np.argsort(-probs, kind="stable")[:n]
    return [(str(names[i]), float(probs[i])) for i in order if probs[i] >= floor]


def raw_features(snap: Snapshot, track_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The 43 raw features of those of ``track_ids`` that have them."""
    ids = [int(t) for t in track_ids]
    if not ids:
        return {}
    rows = snap.all("SELECT track_id, vec::text FROM track_features WHERE track_id = ANY(%(ids)s)", {"ids": ids})
    return {int(r[0]): parse_vec(r[1]) for r in rows}


SCALE_SAMPLE = 5000
"""Without a trained scaler, ``feature_scale`` estimates the spread from this many tracks (bounded work per query)."""
_SCALE_SQL = (
    "SELECT count(*), NULL, ARRAY["
    + ", ".join(f"stddev_pop(f.{c})" for c in FEATURE_NAMES)
    + f"] FROM (SELECT * FROM track_features LIMIT {SCALE_SAMPLE}) f"
)


def feature_scale(snap: Snapshot) -> np.ndarray | None:
    """Per-feature standard deviation of the library: the active scaler's, else an estimate from at most
    ``SCALE_SAMPLE`` tracks (explanations only rank differences, so an estimate serves); None when empty."""
    v = snap.versions.get(SPACE_KIND["features"])
    if v is not None and v.params.get("scale") is not None:
        scale = np.asarray(v.params["scale"], dtype=np.float64)
        if scale.shape == (N_FEATURES,):
            return scale
    row = snap.one(_SCALE_SQL)
    if row is None or int(row[0]) == 0:
        return None
    return np.array([float(x) if x is not None else 0.0 for x in row[2]], dtype=np.float64)


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
    gm = snap.genre_model()
    if gm is not None:
        gjoin = f"LEFT JOIN predictions p ON p.model_version_id = {int(gm.id)} AND p.track_id = t.id "
        gexpr = "COALESCE(t.label, p.genre)"
    else:
        gjoin, gexpr = "", "t.label"
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


# --------------------------------------------------------------------------- diversity
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


# --------------------------------------------------------------------------- evaluation helpers
def load_space_matrix(snap: Snapshot, sp: Space, track_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, unit vectors) of ``track_ids`` that have vectors in ``sp``."""
    if sp.empty or not track_ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, sp.dim))
    if sp.version is not None:
        rows = snap.all(
            f"SELECT track_id, embedding::text FROM embeddings WHERE model_version_id = "
            f"{int(sp.version.id)} AND track_id = ANY(%(ids)s) ORDER BY track_id",
            {"ids": list(map(int, track_ids))},
        )
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        mat = np.array([parse_vec(r[1]) for r in rows]).reshape(len(rows), -1)
    else:
        rows = snap.all(
            "SELECT track_id, vec::text FROM track_features WHERE track_id = ANY(%(ids)s) ORDER BY track_id",
            {"ids": list(map(int, track_ids))},
        )
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        mat = np.array([standardize(sp, parse_vec(r[1])) for r in rows]).reshape(len(rows), -1)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return ids, mat / np.where(norms > 0, norms, 1.0)


def knn_exact(mat: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Indices of the k nearest rows (cosine, self excluded) of each row of a unit matrix."""
    n = mat.shape[0]
    k = min(k, n - 1)
    out = np.zeros((n, max(k, 0)), dtype=np.int64)
    if k <= 0:
        return out
    for s in range(0, n, chunk):
        sims = mat[s : s + chunk] @ mat.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + s] = -np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        out[s : s + chunk] = np.take_along_axis(part, order, axis=1)
    return out
