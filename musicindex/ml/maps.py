"""2-D maps of the similarity spaces (PCA, t-SNE, UMAP), computed once per model version and cached.

``space_map(db, space, method)`` is the library function the report (and, later, the web map) calls: it returns
the cached coordinates of the space's active version, computing and storing them (``space_maps``) on first use.
A space's vectors are read as queries search them (cosine): rows are scaled to unit length first, so straight
distances on the map follow the angles of the space. At most ``MAP_SAMPLE`` tracks (a seeded random sample) are
drawn.

* ``pca``: the first two principal components;
* ``tsne``: scikit-learn's t-SNE (Barnes-Hut, perplexity 30 or less for small sets, PCA initialisation) after a PCA
  to 50 dimensions;
* ``umap``: umap-learn (15 neighbours, min_dist 0.1, cosine). umap-learn imports TensorFlow for its parametric
  variant when TensorFlow is installed (a minute on a busy machine); :func:`_umap` imports it with TensorFlow
  hidden, so a process that has not loaded TensorFlow does not load it for a map.

The cache holds one row per (model version, method): a new version of a space (a retrain, a new extractor) gets
a new map; ``refresh=True`` redraws the current one (tracks ingested since).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select

from musicindex.db.orm import Embedding, ModelVersion, SpaceMap, Track
from musicindex.db.session import Database
from musicindex.db.upsert import upsert
from musicindex.errors import InvalidArgumentError, ModelNotTrainedError, NotEnoughDataError
from musicindex.ml.data import load_embeddings
from musicindex.ml.registry import active_version
from musicindex.vocab import INDEXED, MAP_METHODS, SPACE_KIND, SPACES

MAP_SAMPLE = 5000
MIN_TRACKS = 5


@dataclass(frozen=True)
class SpaceMapResult:
    """The 2-D coordinates of a space's tracks: ``xy[i]`` is track ``track_ids[i]``."""

    space: str
    method: str
    model_version_id: int
    track_ids: np.ndarray
    xy: np.ndarray
    params: dict[str, Any]
    seconds: float | None
    cached: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "method": self.method,
            "model_version_id": self.model_version_id,
            "points": [
                {"track_id": int(t), "x": float(p[0]), "y": float(p[1])}
                for t, p in zip(self.track_ids, self.xy, strict=True)
            ],
            "params": self.params,
            "seconds": self.seconds,
        }


def _check(space: str, method: str) -> None:
    if space not in SPACES:
        raise InvalidArgumentError(f"unknown space {space!r}; choose one of {', '.join(SPACES)}")
    if method not in MAP_METHODS:
        raise InvalidArgumentError(f"unknown map method {method!r}; choose one of {', '.join(MAP_METHODS)}")


def _umap():
    """umap-learn's UMAP class, imported without letting it load TensorFlow (see the module docstring)."""
    hidden = [m for m in ("tensorflow", "keras") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]  # `import tensorflow` raises ImportError: umap skips it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from umap import UMAP
    finally:
        for m in hidden:
            sys.modules.pop(m, None)
    return UMAP


def project(method: str, X: np.ndarray, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """(n, 2) coordinates of the rows of ``X`` (scaled to unit length) by ``method``, and the parameters used."""
    from sklearn.decomposition import PCA

    if method not in MAP_METHODS:
        raise InvalidArgumentError(f"unknown map method {method!r}; choose one of {', '.join(MAP_METHODS)}")
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n < MIN_TRACKS:
        raise NotEnoughDataError(f"a map needs at least {MIN_TRACKS} tracks in the space; it has {n}")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    U = X / np.where(norms > 0, norms, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "pca":
            pca = PCA(n_components=2, random_state=seed).fit(U)
            xy = pca.transform(U)
            params: dict[str, Any] = {"explained_variance": [float(v) for v in pca.explained_variance_ratio_]}
        elif method == "tsne":
            from sklearn.manifold import TSNE

            dims = min(50, U.shape[1], n)
            Z = PCA(n_components=dims, random_state=seed).fit_transform(U) if U.shape[1] > dims else U
            perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
            xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(Z)
            params = {"perplexity": perplexity, "pca_dims": int(dims)}
        else:
            neighbours = int(min(15, n - 1))
            xy = _umap()(n_neighbors=neighbours, min_dist=0.1, metric="cosine", random_state=seed).fit_transform(U)
            params = {"n_neighbors": neighbours, "min_dist": 0.1, "metric": "cosine"}
    params.update(method=method, seed=seed, tracks=int(n))
    return np.asarray(xy, dtype=np.float32), params


def space_map(
    db: Database, space: str, method: str, *, refresh: bool = False, sample: int = MAP_SAMPLE, seed: int = 0
) -> SpaceMapResult:
    """The 2-D map of ``space`` (``vocab.SPACES``) by ``method`` (``vocab.MAP_METHODS``) for the space's active
    version: cached, else computed now and stored. ModelNotTrainedError when the space has no active version."""
    _check(space, method)
    kind = SPACE_KIND[space]
    with db.session() as s:
        v = active_version(s, kind)
        if v is None:
            raise ModelNotTrainedError(
                f"the {space} space has no active model version yet: `musicindex train` (or `musicindex embed` for "
                "musicnn) makes one"
            )
        vid = int(v.id)
        row = s.execute(
            select(SpaceMap).where(SpaceMap.model_version_id == vid, SpaceMap.method == method)
        ).scalar_one_or_none()
        if row is not None and not refresh:
            return _result(space, row, cached=True)
        ids = np.array(
            s.execute(
                select(Embedding.track_id)
                .join(Track, Track.id == Embedding.track_id)
                .where(Embedding.model_version_id == vid, Track.status == INDEXED)
                .order_by(Embedding.track_id)
            )
            .scalars()
            .all(),
            dtype=np.int64,
        )
        if len(ids) > sample:
            ids = np.sort(np.random.default_rng(seed).choice(ids, sample, replace=False))
        ids, X = load_embeddings(s, vid, ids)
    t0 = time.perf_counter()
    xy, params = project(method, X, seed)
    seconds = time.perf_counter() - t0
    values = {
        "model_version_id": vid,
        "method": method,
        "track_ids": [int(t) for t in ids],
        "coords": [float(c) for c in xy.ravel()],
        "params": params,
        "seconds": seconds,
    }
    with db.session() as s:  # two processes drawing the same map at once: the last one's stays
        upsert(
            s,
            SpaceMap,
            [values],
            keys=("model_version_id", "method"),
            update=("track_ids", "coords", "params", "seconds"),
            also_set={"created_at": func.now()},
        )
    return _result(space, SpaceMap(**values), cached=False)


def _result(space: str, row: SpaceMap, cached: bool) -> SpaceMapResult:
    return SpaceMapResult(
        space=space,
        method=row.method,
        model_version_id=int(row.model_version_id),
        track_ids=np.asarray(row.track_ids, dtype=np.int64),
        xy=np.asarray(row.coords, dtype=np.float32).reshape(-1, 2),
        params=dict(row.params or {}),
        seconds=row.seconds,
        cached=cached,
    )


def available_spaces(db: Database) -> list[str]:
    """The spaces that have an active version (what can be drawn)."""
    with db.session() as s:
        kinds = set(s.execute(select(ModelVersion.kind).where(ModelVersion.state == "active")).scalars())
    return [sp for sp in SPACES if SPACE_KIND[sp] in kinds]
