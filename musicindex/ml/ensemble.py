"""The ``ensemble`` kind: soft voting over the best scikit-learn classifiers, chosen by the same grouped folds.

On the training part of the held-out split (the protocol of ``classical.train_classical``):

1. each candidate member (``MEMBERS``) gets its chosen configuration: the one its own kind found in the same run on
   the same input and the same folds (``ts.tuned``), else its grid search runs here;
2. the members are ranked by their grouped inner-CV macro-F1;
3. soft-voting ensembles of the best 2, 3 and 4 members (``SIZES``; quick: 2) are scored on the same grouped folds,
   and the best size wins (a tie keeps the smaller).

The stored model is a ``VotingClassifier(voting="soft")`` of the chosen members, each with its own pipeline; its
class probabilities are the mean of theirs. The decision tree and the networks are not members (the tree is weak on
its own, the networks are Keras models stored apart).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from musicindex.ml import estimators

MEMBERS = ("logreg", "svm", "knn", "forest", "gbm")
SIZES = (2, 3, 4)
QUICK_SIZES = (2,)


def voting(members: list[tuple[str, dict[str, Any]]], seed: int):
    from sklearn.ensemble import VotingClassifier

    return VotingClassifier(
        [(kind, estimators.configured(kind, params, seed)) for kind, params in members], voting="soft"
    )


def search(
    X: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    quick: bool,
    lookup: Callable[[str], tuple[dict[str, Any], float]],
) -> tuple[Any, dict[str, Any], float, int, dict[str, Any]]:
    """(the fitted ensemble, its description, its grouped inner-CV macro-F1, candidates tried, extra params)."""
    from sklearn.model_selection import cross_val_score

    tuned = {kind: lookup(kind) for kind in MEMBERS}
    ranked = sorted(MEMBERS, key=lambda k: (-tuned[k][1], MEMBERS.index(k)))
    sizes = [m for m in (QUICK_SIZES if quick else SIZES) if m <= len(ranked)]
    scores: dict[int, float] = {}
    for m in sizes:
        est = voting([(k, tuned[k][0]) for k in ranked[:m]], seed)
        values = cross_val_score(est, X, y, cv=splits, scoring="f1_macro", error_score=np.nan)
        scores[m] = float(np.nanmean(values)) if np.isfinite(values).any() else float("-inf")
    size = max(sizes, key=lambda m: (scores[m], -m))
    chosen = ranked[:size]
    model = voting([(k, tuned[k][0]) for k in chosen], seed).fit(X, y)
    best = {
        "members": chosen,
        "voting": "soft",
        "member_params": {k: estimators.describe(tuned[k][0]) for k in chosen},
    }
    extra = {
        "sizes": sizes,
        "size_scores": {str(m): s for m, s in scores.items()},
        "member_scores": {k: tuned[k][1] for k in ranked},
    }
    return model, best, scores[size], len(sizes), extra
