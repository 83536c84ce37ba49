"""Similarity spaces as of a snapshot: which vectors answer (a model version's embeddings, or the 43 raw features
standardised on the fly), how they are searched (HNSW or exact), the vectors of tracks and the library's spread.

The spaces are the trained ones (``features``, ``ann``, ``cnn``) and one per embedding model of the registry
(``pretrained.registry``: musicnn by default), named by the model; the default space is the first embedding model
that can answer, else ``features``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.pretrained import registry
from musicindex.query.snapshot import Snapshot, VersionInfo
from musicindex.query.validation import check_space
from musicindex.query.vectors import parse_vec, vec_literal
from musicindex.vocab import FEATURE_NAMES, FEATURES_SPACE, N_FEATURES, SPACE_KIND, TRAINED_SPACES, hnsw_index_name

EXACT_THRESHOLD = 10_000
"""Versions with fewer vectors than this are searched exactly (brute force is fast and exact)."""
EXACT_MAX = 200_000
"""``exact=True`` (brute force) is refused above this many vectors (``evaluate`` bounds its own sample)."""


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


def space_names() -> tuple[str, ...]:
    """Every space a query accepts: the trained ones, then one per embedding model (best first)."""
    return registry.space_names()


def space_kind(space: str) -> str:
    """The model kind whose active version answers in ``space`` (an embedding model's space is its own kind)."""
    return SPACE_KIND.get(space, space)


def is_embedding_space(space: str) -> bool:
    """Whether ``space`` is an embedding model's (pretrained: no training, `musicindex embed` fills it)."""
    return space not in TRAINED_SPACES


def default_space(snap: Snapshot, track_ids: Sequence[int] = ()) -> str:
    """The best space that can answer: the first embedding model of the registry (musicnn by default: the best on
    real music held out from training, benchmarks/quality.py) that has an active version holding vectors of
    ``track_ids`` (any vector at all when none are given), else the features space (which answers right after
    ingestion)."""
    ids = sorted({int(t) for t in track_ids})
    for name in registry.names():
        v = snap.versions.get(name)
        if v is None:
            continue
        if not ids:
            if snap.one(f"SELECT 1 FROM embeddings WHERE model_version_id = {int(v.id)} LIMIT 1") is not None:
                return name
            continue
        n = snap.one(
            f"SELECT count(*) FROM embeddings WHERE model_version_id = {int(v.id)} AND track_id = ANY(%(ids)s)",
            {"ids": ids},
        )[0]
        if int(n) == len(ids):
            return name
    return FEATURES_SPACE


def open_space(snap: Snapshot, space: str, *, exact: bool = False, bound_exact: bool = True) -> Space:
    """The active vectors of ``space``; raises ModelNotTrainedError for an untrained ann/cnn space."""
    space = check_space(space)
    v = snap.versions.get(space_kind(space))
    if v is None and is_embedding_space(space):
        raise ModelNotTrainedError(
            f"no track is embedded in the {space} space yet: run `musicindex embed` (a worker serving the embed "
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
        todo = "`musicindex embed`" if is_embedding_space(sp.name) else f"`musicindex train --models {sp.name}`"
        raise ModelNotTrainedError(
            f"track {missing[0]} has no {sp.name!r} embedding in model version {sp.version.id} "
            f"(indexed after that version was made): run {todo} to embed it"
        )
    return out


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
