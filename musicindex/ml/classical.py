"""KNN and logistic regression: scikit-learn Pipelines tuned with GridSearchCV.

Each pipeline is ``StandardScaler -> reduce -> classifier`` where ``reduce`` is one of
``passthrough``, ``PCA(0.95 of the variance)`` or ``SelectKBest(f_classif, k=20)``, chosen by
the grid search like any other hyper-parameter. The grids (``GRIDS``) are documented in
docs/models.md; ``quick=True`` uses the small ``QUICK_GRIDS`` (tests, smoke runs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicindex.ml import artifacts
from musicindex.ml.metrics import classification_metrics, cv_summary
from musicindex.ml.options import TrainOptions
from musicindex.ml.trainset import Trained, TrainingSet, train_on_best_input
from musicindex.vocab import FEATURE_NAMES

REDUCERS = ("none", "pca95", "kbest20")

GRIDS: dict[str, dict[str, list]] = {
    "knn": {
        "reduce": ["none", "pca95", "kbest20"],
        "clf__n_neighbors": [1, 3, 5, 7, 9, 11, 15],
        "clf__weights": ["uniform", "distance"],
        "clf__metric": ["euclidean", "manhattan", "cosine"],
    },
    "logreg": {
        "reduce": ["none", "pca95"],
        "clf__C": [0.01, 0.1, 1.0, 10.0, 100.0],
        "penalty": ["l2", "l1"],
    },
}
QUICK_GRIDS: dict[str, dict[str, list]] = {
    "knn": {
        "reduce": ["none"],
        "clf__n_neighbors": [3, 7],
        "clf__weights": ["distance"],
        "clf__metric": ["euclidean", "cosine"],
    },
    "logreg": {"reduce": ["none"], "clf__C": [0.1, 1.0], "penalty": ["l2"]},
}


def _reducer(name: str):
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import SelectKBest, f_classif

    if name == "none":
        return "passthrough"
    if name == "pca95":
        return PCA(n_components=0.95, svd_solver="full")
    if name == "kbest20":
        return SelectKBest(f_classif, k=20)
    raise ValueError(f"unknown reducer {name!r}; choose one of {REDUCERS}")


def _pipeline(kind: str, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "knn":
        clf = KNeighborsClassifier()
    elif kind == "logreg":
        clf = LogisticRegression(solver="saga", max_iter=5000, tol=1e-3, random_state=seed)
    else:
        raise ValueError(kind)
    return Pipeline([("scale", StandardScaler()), ("reduce", "passthrough"), ("clf", clf)])


def _sk_grid(grid: dict[str, list]) -> dict[str, list]:
    """The documented grid in scikit-learn's parameter names."""
    out: dict[str, list] = {}
    for key, values in grid.items():
        if key == "reduce":
            out["reduce"] = [_reducer(v) for v in values]
        elif key == "penalty":  # l2 / l1 as the elastic-net mixing parameter of LogisticRegression
            out["clf__l1_ratio"] = [0.0 if v == "l2" else 1.0 for v in values]
        else:
            out[key] = list(values)
    return out


def _describe(best: dict[str, Any], grid: dict[str, list]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in best.items():
        if key == "reduce":
            for name in grid.get("reduce", ["none"]):
                if repr(_reducer(name)) == repr(value):
                    out["reduce"] = name
        elif key == "clf__l1_ratio":
            out["penalty"] = "l1" if value == 1.0 else "l2"
        else:
            out[key.removeprefix("clf__")] = value
    return out


@dataclass
class ClassicalResult:
    model: Any  # fitted Pipeline (trained on the training split)
    classes: list[str]
    params: dict[str, Any]
    metrics: dict[str, Any]
    seconds: float
    heldout: np.ndarray  # row indices of the held-out split


def train_classical(
    kind: str,
    X: np.ndarray,
    y: np.ndarray,
    *,
    test_size: float = 0.2,
    seed: int = 42,
    cv_folds: int = 5,
    quick: bool = False,
    grid: dict[str, list] | None = None,
) -> ClassicalResult:
    """Grid-search ``kind`` on a stratified training split, score it on the held-out split,
    and report stratified k-fold scores (mean, std) of the chosen configuration on all data."""
    import warnings

    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate, train_test_split

    t0 = time.perf_counter()
    grid = grid or (QUICK_GRIDS if quick else GRIDS)[kind]
    y = np.asarray(y, dtype=str)
    classes = sorted(set(y.tolist()))
    tr, te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    X_tr, X_te, y_tr, y_te = X[tr], X[te], y[tr], y[te]
    inner = max(2, min(cv_folds, int(min(np.unique(y_tr, return_counts=True)[1]))))
    search = GridSearchCV(
        _pipeline(kind, seed),
        _sk_grid(grid),
        cv=StratifiedKFold(inner, shuffle=True, random_state=seed),
        scoring="f1_macro",
        refit=True,
        n_jobs=None,
        error_score=0.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        search.fit(X_tr, y_tr)
        model = search.best_estimator_
        metrics = classification_metrics(y_te, model.predict(X_te), classes)
        cv = cross_validate(
            clone(model),
            X,
            y,
            cv=StratifiedKFold(cv_folds, shuffle=True, random_state=seed),
            scoring={"accuracy": "accuracy", "f1": "f1_macro"},
            n_jobs=None,
        )
    metrics.update(cv_summary(cv["test_accuracy"], cv["test_f1"]))
    metrics["grid_best_score"] = float(search.best_score_)
    metrics["n_train"], metrics["n_test"] = len(y_tr), len(y_te)
    params = {
        "grid": grid,
        "best": _describe(search.best_params_, grid),
        "search_scoring": "f1_macro",
        "search_folds": inner,
        "test_size": test_size,
        "seed": seed,
        "cv_folds": cv_folds,
        "candidates": len(search.cv_results_["params"]),
    }
    return ClassicalResult(
        model=model, classes=classes, params=params, metrics=metrics, seconds=time.perf_counter() - t0, heldout=te
    )


# --------------------------------------------------------------------------- the kinds' trainers (training.TRAINERS)
def train_scaler(ts: TrainingSet, opts: TrainOptions, kind: str = "scaler") -> Trained:
    """The standardisation of the 43 features over every indexed track: the model of the ``features`` space."""
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    sc = StandardScaler().fit(ts.ds.X)
    params = {
        "mean": [float(v) for v in sc.mean_],
        "scale": [float(v) for v in sc.scale_],
        "feature_names": list(FEATURE_NAMES),
    }
    return Trained(
        artifacts.dumps_sklearn(sc),
        params,
        {"n_tracks": len(ts.ds.X)},
        time.perf_counter() - t0,
        embedding_dim=int(ts.ds.X.shape[1]),
    )


def train_kind(ts: TrainingSet, opts: TrainOptions, kind: str) -> Trained:
    """knn or logreg on the labelled tracks, on the better of its inputs (``trainset.train_on_best_input``)."""

    def fit(X: np.ndarray, y: np.ndarray) -> ClassicalResult:
        return train_classical(
            kind, X, y, test_size=opts.test_size, seed=opts.seed, cv_folds=opts.cv_folds, quick=opts.quick
        )

    return train_on_best_input(ts, fit, artifacts.dumps_sklearn)
