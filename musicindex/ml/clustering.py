"""K-Means, Birch, a Gaussian mixture and agglomerative clustering on the standardised 43 features (PCA optional).

Unless ``n_clusters`` is given, k is chosen by a silhouette sweep (k = 2 .. ``max_k``),
each k also scored by Davies-Bouldin; the sweep is stored in the metrics for the report.
Silhouette is computed on a random sample of at most 5000 tracks (it is quadratic).
The stored artifact is a Pipeline ``StandardScaler -> [PCA] -> clusterer``; its
``predict`` gives a track's cluster.

**Agglomerative** (hierarchical) clustering builds one tree per linkage (``LINKAGES``: Ward and average, SciPy's
``linkage`` on Euclidean distances) over a random sample of at most ``AGGLOMERATIVE_SAMPLE`` tracks (the tree is
quadratic in memory) and cuts it at every k of the sweep; the (linkage, k) with the best silhouette wins. It has no
``predict``: the stored clusterer is a ``NearestCentroid`` fitted on the sample's clusters, so every track (the
ones outside the sample, and tracks ingested later) joins the cluster with the nearest centroid. The metrics keep
both linkages' sweeps and the top of the tree (the last 30 merges, ``dendrogram``) for the report.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicindex.errors import NotEnoughDataError
from musicindex.ml import artifacts
from musicindex.ml.options import TrainOptions
from musicindex.ml.trainset import Trained, TrainingSet

SILHOUETTE_SAMPLE = 5000
AGGLOMERATIVE = "agglomerative"
LINKAGES = ("ward", "average")
AGGLOMERATIVE_SAMPLE = 3000
DENDROGRAM_LEAVES = 30


def _make(kind: str, k: int, seed: int):
    from sklearn.cluster import Birch, KMeans
    from sklearn.mixture import GaussianMixture

    if kind == "kmeans":
        return KMeans(n_clusters=k, n_init=10, random_state=seed)
    if kind == "birch":
        return Birch(n_clusters=k, threshold=0.5)
    if kind == "gmm":
        return GaussianMixture(n_components=k, covariance_type="diag", reg_covar=1e-3, n_init=2, random_state=seed)
    raise ValueError(f"unknown clusterer {kind!r}")


def _scores(Z: np.ndarray, labels: np.ndarray, seed: int) -> tuple[float, float] | None:
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    if len(np.unique(labels)) < 2:
        return None
    n = len(Z)
    sil = silhouette_score(
        Z, labels, sample_size=min(n, SILHOUETTE_SAMPLE) if n > SILHOUETTE_SAMPLE else None, random_state=seed
    )
    return float(sil), float(davies_bouldin_score(Z, labels))


@dataclass
class ClusterResult:
    model: Any
    params: dict[str, Any]
    metrics: dict[str, Any]
    seconds: float


def _prepare(X: np.ndarray, pca: float | int | None, seed: int) -> tuple[list[tuple[str, Any]], np.ndarray]:
    """The fitted ``StandardScaler -> [PCA]`` steps and the data they give (what every clusterer reads)."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if pca:
        steps.append(("pca", PCA(n_components=pca, svd_solver="full", random_state=seed)))
    prep = Pipeline(steps).fit(X)
    return steps, prep.transform(X)


def train_clusterer(
    kind: str,
    X: np.ndarray,
    *,
    n_clusters: int | None = None,
    max_k: int = 12,
    pca: float | int | None = None,
    seed: int = 42,
) -> ClusterResult:
    from sklearn.pipeline import Pipeline

    t0 = time.perf_counter()
    steps, Z = _prepare(X, pca, seed)
    n = len(X)
    sweep: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n_clusters is None:
            for k in range(2, max(2, min(max_k, n - 1)) + 1):
                labels = _make(kind, k, seed).fit(Z).predict(Z)
                sc = _scores(Z, labels, seed)
                if sc is not None:
                    sweep.append({"k": k, "silhouette": sc[0], "davies_bouldin": sc[1]})
            k_best = max(sweep, key=lambda r: r["silhouette"])["k"] if sweep else 2
        else:
            k_best = int(n_clusters)
        model = Pipeline([*steps, ("cluster", _make(kind, k_best, seed))]).fit(X)
        labels = model.predict(X)
    sc = _scores(Z, labels, seed) or (float("nan"), float("nan"))
    if n_clusters is not None:
        sweep = [{"k": k_best, "silhouette": sc[0], "davies_bouldin": sc[1]}]
    metrics = {
        "silhouette": sc[0],
        "davies_bouldin": sc[1],
        "n_clusters": int(k_best),
        "sweep": sweep,
        "cluster_sizes": np.bincount(labels, minlength=k_best).astype(int).tolist(),
        "n_tracks": int(n),
    }
    params = {
        "algorithm": kind,
        "n_clusters": int(k_best),
        "k_chosen_by": "given" if n_clusters else "silhouette sweep",
        "max_k": max_k,
        "pca": pca,
        "seed": seed,
        "estimator": repr(_make(kind, k_best, seed)),
    }
    return ClusterResult(model=model, params=params, metrics=metrics, seconds=time.perf_counter() - t0)


def _cut(tree: np.ndarray, k: int) -> np.ndarray:
    """Cluster labels 0..m-1 of a SciPy linkage tree cut into at most k clusters."""
    from scipy.cluster.hierarchy import fcluster

    raw = fcluster(tree, k, criterion="maxclust")
    return np.unique(raw, return_inverse=True)[1].astype(np.int64)


def dendrogram_data(tree: np.ndarray, leaves: int = DENDROGRAM_LEAVES) -> dict[str, Any]:
    """The top of a linkage tree as drawing coordinates (SciPy's ``dendrogram(truncate_mode="lastp")``)."""
    from scipy.cluster.hierarchy import dendrogram

    d = dendrogram(tree, truncate_mode="lastp", p=leaves, no_plot=True)
    return {"icoord": d["icoord"], "dcoord": d["dcoord"], "ivl": [str(v) for v in d["ivl"]]}


def train_agglomerative(
    X: np.ndarray,
    *,
    n_clusters: int | None = None,
    max_k: int = 12,
    pca: float | int | None = None,
    seed: int = 42,
    sample: int = AGGLOMERATIVE_SAMPLE,
) -> ClusterResult:
    """Agglomerative clustering as described in the module docstring."""
    from scipy.cluster.hierarchy import linkage
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import Pipeline

    t0 = time.perf_counter()
    steps, Z = _prepare(X, pca, seed)
    n = len(Z)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, sample, replace=False)) if n > sample else np.arange(n)
    Zs = Z[idx]
    ks = [int(n_clusters)] if n_clusters is not None else list(range(2, max(2, min(max_k, len(Zs) - 1)) + 1))
    trees: dict[str, np.ndarray] = {}
    sweeps: dict[str, list[dict[str, Any]]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in LINKAGES:
            trees[method] = linkage(Zs, method=method, metric="euclidean")
            sweeps[method] = []
            for k in ks:
                sc = _scores(Zs, _cut(trees[method], k), seed)
                if sc is not None:
                    sweeps[method].append({"k": k, "silhouette": sc[0], "davies_bouldin": sc[1]})
    rows = [(r["silhouette"], -LINKAGES.index(m), m, r["k"]) for m in LINKAGES for r in sweeps[m]]
    _, _, method, k_best = max(rows) if rows else (0.0, 0, LINKAGES[0], ks[0])
    sample_labels = _cut(trees[method], k_best)
    if len(np.unique(sample_labels)) < 2 or not np.ptp(Zs, axis=0).any():
        raise NotEnoughDataError(
            f"agglomerative clustering found a single cluster among {len(Zs)} tracks whose features hardly vary; "
            "ingest more varied music"
        )
    centroids = NearestCentroid().fit(Zs, sample_labels)
    model = Pipeline([*steps, ("cluster", centroids)])
    labels = np.asarray(model.predict(X), dtype=np.int64)
    sc = _scores(Z, labels, seed) or (float("nan"), float("nan"))
    k_found = len(np.unique(sample_labels))
    metrics = {
        "silhouette": sc[0],
        "davies_bouldin": sc[1],
        "n_clusters": k_found,
        "linkage": method,
        "sweep": sweeps[method],
        "sweep_by_linkage": sweeps,
        "cluster_sizes": np.bincount(labels, minlength=k_found).astype(int).tolist(),
        "n_tracks": int(n),
        "tree_sample": len(Zs),
        "dendrogram": {**dendrogram_data(trees[method]), "linkage": method, "tracks": len(Zs)},
    }
    params = {
        "algorithm": AGGLOMERATIVE,
        "linkage": method,
        "linkages": list(LINKAGES),
        "n_clusters": k_found,
        "k_chosen_by": "given" if n_clusters else "silhouette sweep over k and linkage",
        "max_k": max_k,
        "pca": pca,
        "seed": seed,
        "sample": int(sample),
        "assign": "nearest centroid (NearestCentroid on the sample's clusters)",
    }
    return ClusterResult(model=model, params=params, metrics=metrics, seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- the kinds' trainer (training.TRAINERS)
def train_kind(ts: TrainingSet, opts: TrainOptions, kind: str) -> Trained:
    """kmeans, birch, gmm or agglomerative over the 43 features of every indexed track (no labels)."""
    train = train_agglomerative if kind == AGGLOMERATIVE else functools.partial(train_clusterer, kind)
    k = train(
        ts.ds.X, n_clusters=opts.n_clusters, max_k=(8 if opts.quick else opts.max_k), pca=opts.pca, seed=opts.seed
    )
    return Trained(artifacts.dumps_sklearn(k.model), k.params, k.metrics, k.seconds)
