"""The training set of one run, read and checked before anything is written; what a trainer returns.

:func:`load_training_set` reads the indexed tracks (features, labels, and what the requested kinds need: the
spectrograms for the cnn, the musicnn embedding for classifiers that may read it), drops rare labels when asked,
and raises NotEnoughDataError (saying what to ingest or label) when the data is too thin. The per-kind trainers
(``classical``, ``nets``, ``clustering``) take a :class:`TrainingSet` and the run's options and return a
:class:`Trained`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicindex.db.session import Database
from musicindex.errors import NotEnoughDataError
from musicindex.ml import registry
from musicindex.ml.data import (
    MIN_TRACKS_CLUSTERING,
    Dataset,
    check_labels,
    load_dataset,
    load_embeddings,
    load_spectrograms,
)
from musicindex.ml.options import TrainOptions
from musicindex.vocab import (
    CLASSIFIER_INPUTS,
    CLASSIFIER_KINDS,
    CLUSTER_KINDS,
    FEATURE_NAMES,
    GENRE_MODEL_METRIC,
    METRIC_KINDS,
    MUSICNN,
)

log = logging.getLogger(__name__)

MUSICNN_MIN_COVERAGE = 0.9
"""``inputs='auto'`` also trains on the musicnn embedding when at least this share of labelled tracks has one."""
HELDOUT_IDS_KEPT = 20_000
"""At most this many held-out track ids are recorded per version (``evaluate`` queries them)."""
INPUT_KINDS = tuple(k for k in CLASSIFIER_KINDS if k != "cnn")
"""Kinds that can read either input (the 43 features or the musicnn embedding)."""


@dataclass
class Trained:
    """What a trainer hands back: the artifact and everything the registry records about it."""

    artifact: bytes
    params: dict[str, Any]
    metrics: dict[str, Any]
    seconds: float
    classes: list[str] | None = None
    embedding_dim: int | None = None
    heldout_ids: list[int] | None = None


@dataclass
class TrainingSet:
    """The data of one run: every indexed track (``ds``) and the labelled part the classifiers learn from."""

    ds: Dataset
    y: np.ndarray
    """Labels of the labelled tracks (rare ones dropped when asked)."""
    ids: np.ndarray
    """Their track ids."""
    X: np.ndarray
    """Their 43 features."""
    inputs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    """Classifier input name -> (X, y, track ids) of the labelled tracks that have it."""
    musicnn_version: int | None = None
    embedded: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """(musicnn embedding, labels, track ids) of the labelled tracks embedded in the active musicnn version, when
    a kind of the run reads it (the classifiers' ``musicnn`` input, the ``lda`` space)."""
    specs: dict[int, np.ndarray] = field(default_factory=dict)
    """Track id -> log-mel spectrogram (cnn runs)."""
    dropped: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""
    label_error: NotEnoughDataError | None = None
    """Why the classifiers cannot train on these labels (a single genre, too few tracks per genre), when the run
    also has kinds that need no labels: each classifier fails with it, the others go on."""
    tuned: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(kind, input) -> the kind's chosen scikit-learn parameters and score in this run (the ensemble reuses them)."""

    def groups_of(self, ids: np.ndarray) -> np.ndarray | None:
        """The artist groups (``folds.group_key``) of these track ids; None when the dataset has none."""
        if self.ds.groups is None:
            return None
        where = {int(t): i for i, t in enumerate(self.ds.track_ids)}
        return np.array([self.ds.groups[where[int(t)]] for t in ids], dtype=object)

    @property
    def n(self) -> int:
        return len(self.ds.track_ids)

    def snapshot(self, opts: TrainOptions) -> dict[str, Any]:
        """What every version of the run records about its training data."""
        counts = self.ds.class_counts()
        return {
            "n_indexed": int(self.n),
            "n_labelled": len(self.y),
            "class_counts": {k: v for k, v in counts.items() if k not in self.dropped},
            "dropped_labels": self.dropped,
            "data_fingerprint": self.fingerprint,
            "test_size": opts.test_size,
            "seed": opts.seed,
            "feature_names": list(FEATURE_NAMES),
        }

    def version_snapshot(self, kind: str, opts: TrainOptions, trained: Trained) -> dict[str, Any]:
        """The snapshot of one kind's version: the run's, how many tracks it learned from, its held-out tracks."""
        snap = self.snapshot(opts)
        if kind in CLUSTER_KINDS or kind == "scaler":
            snap["n_tracks"] = int(self.n)
        elif kind == "cnn":
            snap["n_tracks"] = int(sum(int(t) in self.specs for t in self.ids))
        elif kind in METRIC_KINDS:
            snap["n_tracks"] = 0 if self.embedded is None else len(self.embedded[1])
        else:
            snap["n_tracks"] = len(self.y)
        if trained.heldout_ids is not None:
            snap["heldout_track_ids"] = sorted(trained.heldout_ids)[:HELDOUT_IDS_KEPT]
        return snap


def load_training_set(db: Database, opts: TrainOptions) -> TrainingSet:
    """The checked training set of a run of ``opts.models`` (NotEnoughDataError before anything is written)."""
    kinds = list(opts.models)
    with db.session() as s:
        ds = load_dataset(s)
    lab = ds.labelled
    y, X, ids = ds.labels[lab].astype(str), ds.X[lab], ds.track_ids[lab]
    dropped: dict[str, int] = {}
    label_error: NotEnoughDataError | None = None
    try:
        y, X, ids, dropped = _check_classifier_labels(kinds, opts, y, X, ids)
    except NotEnoughDataError as exc:
        if all(k in (*CLASSIFIER_KINDS, *METRIC_KINDS) for k in kinds):
            raise  # nothing of the run could train: refused before anything is written
        label_error = exc  # the classifiers fail with it, the clusterers and the scaler go on (the nightly run)
        log.warning("the classifiers of this run cannot train: %s", exc)
    need_n = MIN_TRACKS_CLUSTERING if set(kinds) & set(CLUSTER_KINDS) else 2
    if len(ds.track_ids) < need_n:
        raise NotEnoughDataError(
            f"training {'the clusterers ' if need_n > 2 else ''}needs at least {need_n} indexed tracks; the index "
            f"has {len(ds.track_ids)}. Ingest music first (`musicindex ingest PATH --wait`)."
        )
    ts = TrainingSet(ds=ds, y=y, ids=ids, X=X, dropped=dropped, fingerprint=ds.fingerprint, label_error=label_error)
    if "cnn" in kinds and label_error is None:
        with db.session() as s:
            ts.specs = load_spectrograms(s, ids)
        has = np.array([int(t) in ts.specs for t in ids], dtype=bool)
        if not has.all():
            check_labels(
                y[has].tolist(),
                min_per_label=opts.min_per_label,
                folds=max(opts.cv_folds, opts.net_cv_folds),
                what="the CNN (tracks with a stored spectrogram)",
            )
    _classifier_inputs(db, ts, opts)
    if ts.musicnn_version is not None:
        assert ts.embedded is not None
        m_ids = ts.embedded[2]
        ts.fingerprint = hashlib.sha256(
            f"{ds.fingerprint}|musicnn:{ts.musicnn_version}:{','.join(map(str, m_ids))}".encode()
        ).hexdigest()
    return ts


def _check_classifier_labels(
    kinds: list[str], opts: TrainOptions, y: np.ndarray, X: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """The labelled rows the classifiers learn from (rare genres dropped when asked) and the genres dropped;
    NotEnoughDataError (saying what to label or ingest) when they are too few."""
    dropped: dict[str, int] = {}
    if set(kinds) & set(CLASSIFIER_KINDS):
        if opts.drop_rare_labels:
            labs, counts = np.unique(y, return_counts=True)
            need = max(opts.min_per_label, opts.folds_needed)
            dropped = {str(a): int(c) for a, c in zip(labs, counts, strict=True) if c < need}
            keep = ~np.isin(y, list(dropped))
            y, X, ids = y[keep], X[keep], ids[keep]
        class_counts = check_labels(y.tolist(), min_per_label=opts.min_per_label, folds=opts.folds_needed)
        min_test = math.ceil(len(class_counts) / opts.test_size)
        if len(y) < min_test:
            raise NotEnoughDataError(
                f"a held-out split of {opts.test_size:.0%} needs at least one track of each of the "
                f"{len(class_counts)} genres, i.e. at least {min_test} labelled tracks; there are {len(y)}. "
                "Ingest more labelled music or raise the test size."
            )
    return y, X, ids, dropped


def _classifier_inputs(db: Database, ts: TrainingSet, opts: TrainOptions) -> None:
    """The inputs the classifiers train on: the 43 features and/or the musicnn embedding of the labelled tracks;
    and the embedding the ``lda`` space projects (``ts.embedded``)."""
    features = (ts.X, ts.y, ts.ids)
    classifiers = bool(set(INPUT_KINDS) & set(opts.models))
    projection = bool(set(METRIC_KINDS) & set(opts.models))
    if opts.inputs != MUSICNN or not classifiers:
        ts.inputs["features"] = features
    use_for_classifiers = classifiers and opts.inputs != "features" and ts.label_error is None
    if not use_for_classifiers and not projection:
        return
    with db.session() as s:
        active = registry.active_version(s, MUSICNN)
        if active is None:
            if opts.inputs == MUSICNN and classifiers:
                raise NotEnoughDataError("no track is embedded in the musicnn space yet: run `musicindex embed` first")
            return
        active_id = int(active.id)
        eids, emb = load_embeddings(s, active_id, ts.ids)
    keep = np.isin(ts.ids, eids)
    y_m, ids_m = ts.y[keep], ts.ids[keep]
    order = {int(t): i for i, t in enumerate(eids)}
    embedded = (emb[[order[int(t)] for t in ids_m]], y_m, ids_m)
    if projection and len(ids_m):
        ts.embedded, ts.musicnn_version = embedded, active_id
    if not use_for_classifiers:
        return
    coverage = float(keep.mean()) if len(keep) else 0.0
    if opts.inputs == "auto" and coverage < MUSICNN_MIN_COVERAGE:
        log.info("musicnn input skipped: %.0f%% of the labelled tracks are embedded", 100 * coverage)
        return
    try:
        check_labels(
            y_m.tolist(),
            min_per_label=opts.min_per_label,
            folds=max(opts.cv_folds, opts.net_cv_folds),
            what="classifiers on the musicnn embedding",
        )
    except NotEnoughDataError:
        if opts.inputs == MUSICNN:
            raise
        return
    ts.inputs[MUSICNN] = embedded
    ts.embedded, ts.musicnn_version = embedded, active_id


def train_on_best_input(
    ts: TrainingSet,
    fit: Callable[[str, np.ndarray, np.ndarray, np.ndarray | None], Any],
    dump: Callable[[Any], bytes],
) -> Trained:
    """One model per input (``fit(input name, X, y, artist groups)``, a result with model, classes, params,
    metrics, heldout); the kind keeps the one with the better cross-validated macro-F1 (a tie keeps the first of
    CLASSIFIER_INPUTS, the features), recorded in its params and metrics."""
    t0 = time.perf_counter()
    results = {name: (fit(name, X, y, ts.groups_of(ids)), ids) for name, (X, y, ids) in ts.inputs.items()}
    best = max((n for n in CLASSIFIER_INPUTS if n in results), key=lambda name: _score(results[name][0].metrics))
    r, ids = results[best]
    params = {**r.params, "input": best, "input_version": ts.musicnn_version if best == MUSICNN else None}
    metrics = {
        **r.metrics,
        "input": best,
        "by_input": {name: _input_summary(res.metrics) for name, (res, _) in results.items()},
    }
    return Trained(
        dump(r.model),
        params,
        metrics,
        time.perf_counter() - t0,
        classes=r.classes,
        embedding_dim=getattr(r, "embedding_dim", None),
        heldout_ids=[int(t) for t in ids[r.heldout]],
    )


def _score(metrics: dict[str, Any]) -> float:
    """What picks a classifier's input: the genre-model score (cross-validated macro-F1), else held-out macro-F1."""
    for key in (GENRE_MODEL_METRIC, "macro_f1"):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return float("-inf")


def _input_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("cv_macro_f1_mean", "cv_accuracy_mean", "accuracy", "macro_f1", "n_train", "n_test", "cv_protocol")
    return {k: metrics[k] for k in keys if k in metrics}
