"""Evaluation of the similarity spaces and classifiers (``musicindex evaluate``).

Reads through the query engine's snapshot (one consistent set of active versions).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from musicindex.db.session import Database
from musicindex.errors import ModelNotTrainedError
from musicindex.query import engine as E
from musicindex.vocab import CLASSIFIER_KINDS, SPACES


@dataclass(frozen=True)
class SpaceEvaluation:
    """Quality of one similarity space on the labelled tracks (exact neighbours)."""

    space: str
    model_version_id: int | None
    dimension: int
    tracks: int
    precision_at_10: float
    hubness_skewness: float
    never_in_top10: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClassifierEvaluation:
    """Registry metrics of one active classifier."""

    kind: str
    model_version_id: int
    cv_accuracy_mean: float | None
    cv_accuracy_std: float | None
    accuracy: float | None
    macro_f1: float | None
    genre_model: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvaluationReport:
    labelled_tracks: int
    sampled_tracks: int
    spaces: list[SpaceEvaluation]
    classifiers: list[ClassifierEvaluation]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labelled_tracks": self.labelled_tracks,
            "sampled_tracks": self.sampled_tracks,
            "spaces": [s.to_dict() for s in self.spaces],
            "classifiers": [c.to_dict() for c in self.classifiers],
        }


def evaluate(
    db: Database, k: int = 10, max_tracks: int = 20_000, seed: int = 0, genre_model: str = "auto"
) -> EvaluationReport:
    """Genre precision@k of similar() (exact neighbours among the labelled tracks) and the
    hubness of each available space, plus the classifiers' registry metrics.

    Hubness: skewness of the k-occurrence distribution N_k (how often each track is in
    another's top k) and the share of tracks that are in nobody's top k. Above
    ``max_tracks`` labelled tracks a random sample of that size is evaluated.
    """
    k = E.check_k(k)
    with E.snapshot(db, genre_model) as snap:
        rows = snap.all("SELECT id, label FROM tracks WHERE status = 'indexed' AND label IS NOT NULL ORDER BY id")
        n_labelled = len(rows)
        if n_labelled > max_tracks:
            pick = np.sort(np.random.default_rng(seed).choice(n_labelled, max_tracks, replace=False))
            rows = [rows[i] for i in pick]
        labels = {int(r[0]): r[1] for r in rows}
        spaces: list[SpaceEvaluation] = []
        for name in SPACES:
            try:
                sp = E.open_space(snap, name, exact=True)
            except ModelNotTrainedError:
                continue
            ids, mat = E.load_space_matrix(snap, sp, list(labels))
            if len(ids) < 2:
                continue
            nn = E.knn_exact(mat, k)
            lab = np.array([labels[int(i)] for i in ids], dtype=object)
            prec = float(np.mean(lab[nn] == lab[:, None]))
            occ = np.bincount(nn.ravel(), minlength=len(ids)).astype(np.float64)
            sd = occ.std()
            skew = float(np.mean((occ - occ.mean()) ** 3) / sd**3) if sd > 0 else 0.0
            spaces.append(
                SpaceEvaluation(
                    space=name,
                    model_version_id=sp.version_id,
                    dimension=sp.dim,
                    tracks=len(ids),
                    precision_at_10=prec,
                    hubness_skewness=skew,
                    never_in_top10=float(np.mean(occ == 0)),
                )
            )
        gm = snap.genre_model()
        classifiers = []
        for kind in CLASSIFIER_KINDS:
            v = snap.versions.get(kind)
            if v is None:
                continue
            m = v.metrics

            def num(key: str, m: dict[str, Any] = m) -> float | None:
                x = m.get(key)
                return float(x) if isinstance(x, (int, float)) else None

            classifiers.append(
                ClassifierEvaluation(
                    kind=kind,
                    model_version_id=v.id,
                    cv_accuracy_mean=num("cv_accuracy_mean"),
                    cv_accuracy_std=num("cv_accuracy_std"),
                    accuracy=num("accuracy"),
                    macro_f1=num("macro_f1"),
                    genre_model=gm is not None and gm.id == v.id,
                )
            )
    return EvaluationReport(
        labelled_tracks=n_labelled, sampled_tracks=len(labels), spaces=spaces, classifiers=classifiers
    )
