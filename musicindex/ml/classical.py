"""The scikit-learn classifiers (knn, logreg, svm, forest, tree, gbm, and the ensemble): search, held-out score,
k-fold scores, all on artist-grouped splits (``folds``).

One protocol for every kind (``train_classical``):

1. a held-out split of the labelled tracks (``test_size``; artist-grouped when possible, ``folds.holdout``);
2. the parameter search on the training part only: GridSearchCV over the kind's grid (``estimators.GRIDS``) with
   artist-grouped folds, scored by macro-F1 (the ensemble: ``ensemble.search``);
3. the chosen configuration, fitted on the training part, is the stored model; its held-out accuracy, macro
   P / R / F1, per-class report and confusion matrix are computed from its class probabilities (what is stored
   for every track);
4. ``cv_folds`` artist-grouped folds of the chosen configuration over every labelled track: mean and standard
   deviation of accuracy and macro-F1 (the score ``auto`` and promotion compare).

``metrics.selection`` records how the splits were grouped (``folds.Grouping.describe``) and ``metrics.cv_protocol``
the protocol of the k-fold scores (promotion only compares scores measured the same way).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicindex.ml import artifacts, estimators, folds
from musicindex.ml.metrics import classification_metrics, cv_summary
from musicindex.ml.options import TrainOptions
from musicindex.ml.trainset import Trained, TrainingSet, train_on_best_input
from musicindex.vocab import ENSEMBLE, FEATURE_NAMES

GRIDS = estimators.GRIDS
QUICK_GRIDS = estimators.QUICK_GRIDS
Splits = list[tuple[np.ndarray, np.ndarray]]
Tuned = tuple[dict[str, Any], float]
"""A kind's chosen scikit-learn parameters and their grouped inner-CV macro-F1."""


@dataclass
class ClassicalResult:
    model: Any  # fitted estimator (trained on the training split)
    classes: list[str]
    params: dict[str, Any]
    metrics: dict[str, Any]
    seconds: float
    heldout: np.ndarray  # row indices of the held-out split
    tuned: Tuned | None = None
    explain: dict[str, Any] = field(default_factory=dict)


SINGLE_THREAD_BELOW = 20_000
"""Labelled tracks below which the OpenMP parts (histogram boosting, distance reductions) run on one thread: on
small data their threads cost more than they save, and on a shared machine they oversubscribe the cores."""


@contextlib.contextmanager
def quiet(n_rows: int = 0) -> Iterator[None]:
    """Without scikit-learn's convergence, user and runtime warnings (constant features, tiny folds), and with
    OpenMP on one thread for small data (``SINGLE_THREAD_BELOW``)."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1 if n_rows < SINGLE_THREAD_BELOW else None, "openmp"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", message=".*probability.*deprecated", category=FutureWarning)
        yield


def grid_search(kind: str, X: np.ndarray, y: np.ndarray, splits: Splits, seed: int, grid: Any) -> tuple[Tuned, int]:
    """((chosen scikit-learn parameters, their mean macro-F1 over ``splits``), number of candidates)."""
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(
        estimators.pipeline(kind, seed),
        estimators.sk_grid(grid),
        cv=splits,
        scoring="f1_macro",
        refit=False,
        n_jobs=None,
        error_score=0.0,
    )
    search.fit(X, y)
    return (dict(search.best_params_), float(search.best_score_)), len(search.cv_results_["params"])


def predict_labels(model: Any, X: np.ndarray) -> np.ndarray:
    """The class of highest probability (what backfill stores as a track's genre)."""
    proba = model.predict_proba(X)
    return np.asarray(model.classes_)[proba.argmax(axis=1)].astype(str)


def train_classical(
    kind: str,
    X: np.ndarray,
    y: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    test_size: float = 0.2,
    seed: int = 42,
    cv_folds: int = 5,
    quick: bool = False,
    grid: Any = None,
    tuned_lookup: Callable[[str, np.ndarray, np.ndarray, Splits], Tuned] | None = None,
) -> ClassicalResult:
    """The protocol of the module docstring for ``kind`` on rows ``X`` labelled ``y`` with artist groups
    ``groups`` (None: unknown, plain stratified folds). ``tuned_lookup(kind, X_train, y_train, splits)`` gives the
    ensemble its members' chosen parameters (default: searched here)."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_validate

    t0 = time.perf_counter()
    y = np.asarray(y, dtype=str)
    X = np.asarray(X, dtype=np.float64)
    classes = sorted(set(y.tolist()))
    plan = folds.plan(y, groups, cv_folds)
    tr, te, holdout_protocol = folds.holdout(y, plan, test_size, seed)
    X_tr, X_te, y_tr, y_te = X[tr], X[te], y[tr], y[te]
    inner = max(2, min(cv_folds, int(min(np.unique(y_tr, return_counts=True)[1]))))
    inner_plan = folds.subset(plan, tr, y_tr, inner)
    splits = folds.cv_splits(y_tr, inner_plan, inner, seed)
    with quiet(len(y)):
        extra: dict[str, Any] = {}
        if kind == ENSEMBLE:
            from musicindex.ml import ensemble

            def lookup(member: str) -> Tuned:
                if tuned_lookup is not None:
                    return tuned_lookup(member, X_tr, y_tr, splits)
                return grid_search(member, X_tr, y_tr, splits, seed, estimators.grid_for(member, quick))[0]

            model, best, best_score, n_candidates, extra = ensemble.search(X_tr, y_tr, splits, seed, quick, lookup)
            tuned = None
            grid_used: Any = {"size": extra["sizes"]}
        else:
            grid_used = grid or estimators.grid_for(kind, quick)
            tuned, n_candidates = grid_search(kind, X_tr, y_tr, splits, seed, grid_used)
            best_score = tuned[1]
            best = estimators.describe(tuned[0])
            model = estimators.configured(kind, tuned[0], seed).fit(X_tr, y_tr)
        metrics = classification_metrics(y_te.tolist(), predict_labels(model, X_te).tolist(), classes)
        cv_plan_splits = folds.cv_splits(y, plan, cv_folds, seed)
        cv = cross_validate(
            clone(model), X, y, cv=cv_plan_splits, scoring={"accuracy": "accuracy", "f1": "f1_macro"}, n_jobs=None
        )
    metrics.update(cv_summary(cv["test_accuracy"], cv["test_f1"]))
    metrics["grid_best_score"] = best_score
    metrics["n_train"], metrics["n_test"] = len(y_tr), len(y_te)
    metrics["cv_protocol"] = plan.protocol
    metrics["selection"] = {
        **plan.describe(cv_folds),
        "holdout": holdout_protocol,
        "search": inner_plan.protocol,
        "search_folds": inner,
    }
    explain = estimators.explain(kind, model, X.shape[1]) if kind in ("tree", "forest") else {}
    metrics.update(explain)
    params = {
        "grid": grid_used,
        "best": best,
        "search_scoring": "f1_macro",
        "search_folds": inner,
        "test_size": test_size,
        "seed": seed,
        "cv_folds": cv_folds,
        "candidates": n_candidates,
        **extra,
    }
    return ClassicalResult(
        model=model,
        classes=classes,
        params=params,
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        heldout=te,
        tuned=tuned,
        explain=explain,
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
    """A scikit-learn kind (or the ensemble) on the labelled tracks, on the better of its inputs
    (``trainset.train_on_best_input``). Each kind's chosen parameters are kept in ``ts.tuned`` (per input), so the
    ensemble of the same run reuses its members' searches instead of repeating them."""

    def fit(name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> ClassicalResult:
        def lookup(member: str, X_tr: np.ndarray, y_tr: np.ndarray, splits: Splits) -> Tuned:
            key = (member, name)
            if key not in ts.tuned:
                grid = estimators.grid_for(member, opts.quick)
                ts.tuned[key] = grid_search(member, X_tr, y_tr, splits, opts.seed, grid)[0]
            return ts.tuned[key]

        res = train_classical(
            kind,
            X,
            y,
            groups=groups,
            test_size=opts.test_size,
            seed=opts.seed,
            cv_folds=opts.cv_folds,
            quick=opts.quick,
            tuned_lookup=lookup,
        )
        if res.tuned is not None:
            ts.tuned[(kind, name)] = res.tuned
        return res

    return train_on_best_input(ts, fit, artifacts.dumps_sklearn)
