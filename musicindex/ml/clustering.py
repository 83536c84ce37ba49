"""K-Means, Birch and a Gaussian mixture on the standardised 43 features (PCA optional).

Unless ``n_clusters`` is given, k is chosen by a silhouette sweep (k = 2 .. ``max_k``),
each k also scored by Davies-Bouldin; the sweep is stored in the metrics for the report.
Silhouette is computed on a random sample of at most 5000 tracks (it is quadratic).
The stored artifact is a Pipeline ``StandardScaler -> [PCA] -> clusterer``; its
``predict`` gives a track's cluster.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicindex.ml import artifacts
from musicindex.ml.options import TrainOptions
from musicindex.ml.trainset import Trained, TrainingSet

SILHOUETTE_SAMPLE = 5000


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


def train_clusterer(
    kind: str,
    X: np.ndarray,
    *,
    n_clusters: int | None = None,
    max_k: int = 12,
    pca: float | int | None = None,
    seed: int = 42,
) -> ClusterResult:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if pca:
        steps.append(("pca", PCA(n_components=pca, svd_solver="full", random_state=seed)))
    prep = Pipeline(steps).fit(X)
    Z = prep.transform(X)
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


# --------------------------------------------------------------------------- the kinds' trainer (training.TRAINERS)
def train_kind(ts: TrainingSet, opts: TrainOptions, kind: str) -> Trained:
    """kmeans, birch or gmm over the 43 features of every indexed track (no labels)."""
    k = train_clusterer(
        kind, ts.ds.X, n_clusters=opts.n_clusters, max_k=(8 if opts.quick else opts.max_k), pca=opts.pca, seed=opts.seed
    )
    return Trained(artifacts.dumps_sklearn(k.model), k.params, k.metrics, k.seconds)
