"""Similarity spaces learned from the labels (``vocab.METRIC_KINDS``): ``lda``, a linear projection of the musicnn
embedding that puts the tracks of one genre together.

scikit-learn's ``LinearDiscriminantAnalysis`` (eigen solver, Ledoit-Wolf shrinkage: the configuration measured by
benchmarks/quality_grouped.py) is fitted on the labelled tracks' musicnn embedding (the active musicnn version, as
the classifiers read it); it projects every track to ``classes - 1`` dimensions, which becomes the ``lda`` space
(an HNSW index like any trained space). Its protocol follows the classifiers' (``classical``):

1. a held-out split of the labelled tracks (artist-grouped when possible, ``folds.holdout``); the stored model is
   fitted on the training part, and the held-out tracks are recorded (``evaluate`` scores the space on them only);
2. held-out precision@10 and other-artist precision@10 (``retrieval.score_space``: the held-out tracks as queries
   among every labelled track);
3. ``cv_folds`` artist-grouped folds over every labelled track: the mean and spread of both figures; promotion
   compares ``cv_other_precision_at_10_mean`` (measured on the same kind of folds, ``cv_protocol``; absent when
   no track has a readable group, and then the candidate follows the data).

Refused with NotEnoughDataError (the kind fails, the other kinds of the run go on) when no labelled track is
embedded, when there are fewer than 3 genres (a projection of fewer than 2 dimensions), or too few tracks per
genre for the folds.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from musicindex.errors import NotEnoughDataError
from musicindex.ml import artifacts, folds, retrieval
from musicindex.ml.data import check_labels
from musicindex.ml.options import TrainOptions
from musicindex.ml.trainset import Trained, TrainingSet
from musicindex.vocab import MUSICNN

K = 10
"""Neighbours per query of the recorded precision figures."""
MIN_DIMENSIONS = 2
"""A projection of fewer dimensions (two genres give one) cannot rank neighbours by cosine: refused."""


def lda(n_classes: int) -> Any:
    """The unfitted projection (the configuration measured by benchmarks/quality_grouped.py)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    return LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto", n_components=n_classes - 1)


def check_projection(y: np.ndarray, opts: TrainOptions) -> list[str]:
    """The classes of an lda fit on labels ``y``; NotEnoughDataError when too few genres or tracks per genre."""
    counts = check_labels(y.tolist(), min_per_label=opts.min_per_label, folds=opts.cv_folds, what="the lda space")
    if len(counts) - 1 < MIN_DIMENSIONS:
        raise NotEnoughDataError(
            f"the lda space has one dimension fewer than there are genres: {len(counts)} genres "
            f"({', '.join(counts)}) give {len(counts) - 1}, and it needs at least {MIN_DIMENSIONS} to rank neighbours. "
            f"Label at least {MIN_DIMENSIONS + 1} genres, or use the musicnn space."
        )
    return list(counts)


def fit_scores(
    X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], groups: np.ndarray | None
) -> dict[str, list[float]]:
    """Per split: the projection fitted on the training rows, the test rows scored as queries among every row."""
    out: dict[str, list[float]] = {"precision_at_10": [], "other_precision_at_10": []}
    n_classes = len(set(y.tolist()))
    for tr, te in splits:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mat = lda(n_classes).fit(X[tr], y[tr]).transform(X)
        rec = retrieval.score_space(mat, y, te, groups, K)
        out["precision_at_10"].append(rec.precision_at_10)
        if rec.other_artist_precision_at_10 is not None:
            out["other_precision_at_10"].append(rec.other_artist_precision_at_10)
    return out


def _mean_sd(prefix: str, values: list[float]) -> dict[str, Any]:
    a = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if not a.size:
        return {}
    return {f"{prefix}_mean": float(a.mean()), f"{prefix}_std": float(a.std()), prefix: [float(v) for v in a]}


def train_lda_kind(ts: TrainingSet, opts: TrainOptions, kind: str = "lda") -> Trained:
    """The ``lda`` space (see the module docstring)."""
    t0 = time.perf_counter()
    if ts.embedded is None:
        raise NotEnoughDataError(
            "the lda space projects the musicnn embedding of the labelled tracks, and none of them is embedded: "
            "run `musicindex embed` first (a worker serving the embed queue embeds tracks as they are indexed)"
        )
    X, y, ids = ts.embedded
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=str)
    classes = check_projection(y, opts)
    raw = ts.groups_of(ids)
    plan = folds.plan(y, raw, opts.cv_folds)
    tr, te, holdout_protocol = folds.holdout(y, plan, opts.test_size, opts.seed)
    scored_groups = plan.raw  # other-artist figures leave out the query's own artist (None: unknown)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lda(len(classes)).fit(X[tr], y[tr])
    held = retrieval.score_space(model.transform(X), y, te, scored_groups, K)
    cv = fit_scores(X, y, folds.cv_splits(y, plan, opts.cv_folds, opts.seed), scored_groups)
    metrics: dict[str, Any] = {
        "precision_at_10": held.precision_at_10,
        "other_precision_at_10": held.other_artist_precision_at_10,
        "vote_accuracy": held.vote_accuracy,
        "vote_macro_f1": held.vote_macro_f1,
        **_mean_sd("cv_precision_at_10", cv["precision_at_10"]),
        **_mean_sd("cv_other_precision_at_10", cv["other_precision_at_10"]),
        "cv_folds": opts.cv_folds,
        "cv_protocol": plan.protocol,
        "selection": {**plan.describe(opts.cv_folds), "holdout": holdout_protocol},
        "n_train": len(tr),
        "n_test": len(te),
        "dimensions": len(classes) - 1,
        "explained_variance_ratio": [float(v) for v in getattr(model, "explained_variance_ratio_", [])],
    }
    params = {
        "estimator": "LinearDiscriminantAnalysis(solver='eigen', shrinkage='auto')",
        "input": MUSICNN,
        "input_version": ts.musicnn_version,
        "test_size": opts.test_size,
        "seed": opts.seed,
        "cv_folds": opts.cv_folds,
        "k": K,
    }
    return Trained(
        artifacts.dumps_sklearn(model),
        params,
        metrics,
        time.perf_counter() - t0,
        classes=classes,
        embedding_dim=len(classes) - 1,
        heldout_ids=[int(t) for t in np.asarray(ids)[te]],
    )
