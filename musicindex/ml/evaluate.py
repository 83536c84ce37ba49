"""Honest evaluation of the similarity spaces and classifiers (``musicindex evaluate``): the study's comparison.

Nothing is ever scored on tracks it was trained on:

* **spaces**: genre precision@k of exact nearest neighbours (the query track excluded) for a
  set of *query* tracks, the neighbours searched among every track whose genre is known. A
  space trained on labels (ann, cnn) is queried only with the held-out tracks of its own
  version (recorded in the version's snapshot at training); the unsupervised spaces
  (features, musicnn) use the held-out tracks of the classifiers when there are any, so the
  spaces are compared on the same queries, else every labelled track (nothing was trained).
  Beside it, the **other-artist precision@k**: the same with every track of the query's own artist (its group:
  artist tag, else album, else folder) left out of the candidates, the artist effect removed; and the accuracy and
  macro-F1 of the genre the k nearest other-artist neighbours vote for.
* **classifiers**: their cross-validated scores from the registry (artist-grouped folds when artists are known:
  ``cv_protocol``), and from their stored predictions on their own held-out tracks: accuracy, macro-F1, the
  accuracy on the held-out tracks whose artist has no labelled training track (*unseen artists*, artist-disjoint),
  and precision@k / other-artist precision@k of the model's own recommendations (the tracks whose predicted
  genre probabilities are closest: cosine of their square roots, i.e. the Bhattacharyya coefficient).
* with ``labels`` (``evaluate --labels csv:FILE``): the file's labels are the truth; the
  queries are its tracks that carry *no training label* (so no model saw their genre), for every space and
  every active classifier.

Duplicates never inflate a figure: a query's other files of one recording (``dupes``: the same-recording groups
found at ingest) never count as its neighbours, in every precision@k and vote above (a copy is trivially the
nearest track of its own genre).

Each result carries its protocol in words, printed next to the numbers; ``EvaluationReport.comparison()`` is the
one table of every model and space. Reads through the query engine's snapshot (one consistent set of active
versions).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from musicindex.db.session import Database
from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.ml import retrieval
from musicindex.ml.folds import group_key
from musicindex.query.snapshot import Snapshot, snapshot
from musicindex.query.spaces import load_space_matrix, open_space
from musicindex.query.validation import check_k
from musicindex.query.vectors import knn_exact
from musicindex.vocab import CLASSIFIER_KINDS, LABELLED_SPACES, SPACES

MAX_EVAL_TRACKS = 50_000
"""The exact neighbour search is quadratic: at most this many tracks take part (a random sample above)."""


@dataclass(frozen=True)
class SpaceEvaluation:
    """Quality of one similarity space: genre precision@k for held-out queries (exact neighbours)."""

    space: str
    model_version_id: int | None
    dimension: int
    queries: int
    candidates: int
    precision_at_10: float
    hubness_skewness: float
    never_in_top10: float
    protocol: str
    other_artist_precision_at_10: float | None = None
    accuracy: float | None = None
    """Accuracy of the genre the k nearest other-artist neighbours vote for (plain neighbours without artists)."""
    macro_f1: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClassifierEvaluation:
    """One active classifier: registry metrics (cross-validated, held-out split) and, with a labels file,
    its accuracy on that file's tracks."""

    kind: str
    model_version_id: int
    input: str | None
    cv_accuracy_mean: float | None
    cv_accuracy_std: float | None
    cv_macro_f1_mean: float | None
    accuracy: float | None
    macro_f1: float | None
    genre_model: bool
    labels_accuracy: float | None = None
    labels_macro_f1: float | None = None
    labels_tracks: int | None = None
    cv_macro_f1_std: float | None = None
    cv_protocol: str | None = None
    queries: int = 0
    """Held-out tracks (or labels-file tracks) with a stored prediction: what the figures below are computed on."""
    heldout_accuracy: float | None = None
    heldout_macro_f1: float | None = None
    unseen_artist_accuracy: float | None = None
    unseen_artist_queries: int = 0
    precision_at_10: float | None = None
    other_artist_precision_at_10: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvaluationReport:
    labelled_tracks: int
    spaces: list[SpaceEvaluation]
    classifiers: list[ClassifierEvaluation]
    protocol: str
    labels_file: str | None = None
    labels_excluded: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labelled_tracks": self.labelled_tracks,
            "protocol": self.protocol,
            "labels_file": self.labels_file,
            "labels_excluded": self.labels_excluded,
            "notes": self.notes,
            "spaces": [s.to_dict() for s in self.spaces],
            "classifiers": [c.to_dict() for c in self.classifiers],
            "comparison": self.comparison(),
        }

    def comparison(self) -> list[dict[str, Any]]:
        """One row per classifier and per space, best first: accuracy, macro-F1, precision@10 and other-artist
        precision@10 on held-out queries only (a space's accuracy: its neighbours' vote)."""
        rows = [
            {
                "name": c.kind + (f" ({c.input})" if c.input else ""),
                "what": "classifier",
                "version": c.model_version_id,
                "queries": c.queries,
                "accuracy": c.labels_accuracy if c.labels_accuracy is not None else c.heldout_accuracy,
                "macro_f1": c.labels_macro_f1 if c.labels_macro_f1 is not None else c.heldout_macro_f1,
                "unseen_artist_accuracy": c.unseen_artist_accuracy,
                "precision_at_10": c.precision_at_10,
                "other_artist_precision_at_10": c.other_artist_precision_at_10,
                "cv_macro_f1": c.cv_macro_f1_mean,
                "cv_protocol": c.cv_protocol,
            }
            for c in self.classifiers
        ]
        rows += [
            {
                "name": sp.space,
                "what": "space",
                "version": sp.model_version_id,
                "queries": sp.queries,
                "accuracy": sp.accuracy,
                "macro_f1": sp.macro_f1,
                "unseen_artist_accuracy": None,
                "precision_at_10": sp.precision_at_10,
                "other_artist_precision_at_10": sp.other_artist_precision_at_10,
                "cv_macro_f1": None,
                "cv_protocol": None,
            }
            for sp in self.spaces
        ]
        return sorted(rows, key=lambda r: -(r["macro_f1"] if r["macro_f1"] is not None else -1.0))


def _num(m: Mapping[str, Any], key: str) -> float | None:
    x = m.get(key)
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _precision_and_hubness(
    ids: np.ndarray,
    mat: np.ndarray,
    genre: Mapping[int, str],
    queries: set[int],
    k: int,
    recording: Mapping[int, int] | None = None,
) -> tuple[float, float, float, int]:
    """(precision@k of the queries, hubness skewness, share never in a top k, number of queries scored); a query's
    copies of its recording (``recording``: a key per track) never count as its neighbours."""
    nn = knn_exact(mat, k)
    lab = np.array([genre[int(i)] for i in ids], dtype=object)
    is_query = np.array([int(i) in queries for i in ids], dtype=bool)
    rows = np.flatnonzero(is_query)
    rec = _recording_keys(ids, recording)
    near = retrieval.neighbours(retrieval.unit_rows(mat), rows, k, recordings=rec)
    prec = retrieval.precision_at_k(lab, rows, near) if len(rows) else float("nan")
    occ = np.bincount(nn.ravel(), minlength=len(ids)).astype(np.float64)
    sd = occ.std()
    skew = float(np.mean((occ - occ.mean()) ** 3) / sd**3) if sd > 0 else 0.0
    return prec, skew, float(np.mean(occ == 0)), int(is_query.sum())


def _recording_keys(ids: np.ndarray, recording: Mapping[int, int] | None) -> np.ndarray | None:
    """A key per row: equal for the files of one recording (its group's), else the track's own id."""
    if not recording:
        return None
    return np.array([recording.get(int(t), int(t)) for t in ids], dtype=np.int64)


def same_recordings(snap: Snapshot) -> dict[int, int]:
    """Track id -> a key shared by the files of its same-recording group (``dupes``; tracks in none are left out).
    The keys are negative, so they never equal a track id."""
    from musicindex.dupes import links
    from musicindex.vocab import SAME_RECORDING

    return {t: -(n + 1) for n, g in enumerate(links.load_groups(snap.conn, SAME_RECORDING)) for t in g.track_ids}


def _heldout(snap: Snapshot, version_id: int) -> set[int]:
    """The track ids a version was not trained on (recorded in its snapshot at training)."""
    row = snap.one(f"SELECT snapshot -> 'heldout_track_ids' FROM model_versions WHERE id = {int(version_id)}")
    return {int(t) for t in (row[0] or [])} if row is not None else set()


def _classifier_figures(
    snap: Snapshot,
    v: Any,
    genre: Mapping[int, str],
    group: Mapping[int, str],
    queries: set[int],
    known: set[int],
    pool: list[int],
    k: int,
    recording: Mapping[int, int] | None = None,
) -> dict[str, Any]:
    """A classifier's figures from its stored predictions: accuracy / macro-F1 on ``queries``, accuracy on those
    whose artist is not among the ``known`` (labelled training) tracks, and precision@k / other-artist precision@k
    of its recommendations (neighbours by predicted genre probabilities) among the ``pool``."""
    from musicindex.ml.metrics import classification_metrics

    classes = [str(c) for c in (v.classes or [])]
    rows = snap.all(
        f"SELECT track_id, genre, probabilities FROM predictions WHERE model_version_id = {int(v.id)} "
        "AND track_id = ANY(%(ids)s) ORDER BY track_id",
        {"ids": pool},
    )
    if not rows or not classes:
        return {}
    ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
    pred = {int(r[0]): str(r[1]) for r in rows}
    asked = [int(t) for t in ids if int(t) in queries]
    if not asked:
        return {}
    out: dict[str, Any] = {"queries": len(asked)}
    truth = [genre[t] for t in asked]
    cm = classification_metrics(truth, [pred[t] for t in asked], sorted(set(truth) | {pred[t] for t in asked}))
    out["heldout_accuracy"], out["heldout_macro_f1"] = cm["accuracy"], cm["macro_f1"]
    seen = {group[t] for t in known}
    fresh = [t for t in asked if group[t] not in seen]
    out["unseen_artist_queries"] = len(fresh)
    if fresh:
        out["unseen_artist_accuracy"] = float(np.mean([pred[t] == genre[t] for t in fresh]))
    profile = np.sqrt(np.clip([[float((r[2] or {}).get(c, 0.0)) for c in classes] for r in rows], 0.0, None))
    rec = retrieval.score_space(
        profile,
        np.array([genre[int(t)] for t in ids], dtype=object),
        np.flatnonzero(np.isin(ids, asked)),
        np.array([group[int(t)] for t in ids], dtype=object),
        k,
        _recording_keys(ids, recording),
    )
    out["precision_at_10"] = rec.precision_at_10
    out["other_artist_precision_at_10"] = rec.other_artist_precision_at_10
    return out


def read_labels(spec: str) -> dict[str, str]:
    """``csv:FILE`` -> {absolute path: label} (the ``--label-from csv:`` format)."""
    from pathlib import Path

    from musicindex.ingest.labels import read_label_csv

    if not spec.startswith("csv:"):
        raise InvalidArgumentError(f"--labels must be csv:FILE (rows path,label), got {spec!r}")
    return read_label_csv(Path(spec[4:]).expanduser())


def evaluate(
    db: Database,
    k: int = 10,
    max_tracks: int = 20_000,
    seed: int = 0,
    genre_model: str = "auto",
    labels: str | Mapping[str, str] | None = None,
) -> EvaluationReport:
    """Genre precision@k and hubness of each available space, and the classifiers' scores, by the protocol of
    the module docstring. ``labels``: ``csv:FILE`` or a {path: label} map of labels not used for training."""
    k = check_k(k)
    if isinstance(max_tracks, bool) or not isinstance(max_tracks, int) or not 2 <= max_tracks <= MAX_EVAL_TRACKS:
        raise InvalidArgumentError(f"max_tracks must be an integer between 2 and {MAX_EVAL_TRACKS}, got {max_tracks!r}")
    label_map = read_labels(labels) if isinstance(labels, str) else dict(labels or {})
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    with snapshot(db, genre_model) as snap:
        rows = snap.all("SELECT id, path, label, artist, album FROM tracks WHERE status = 'indexed' ORDER BY id")
        train_label = {int(r[0]): r[2] for r in rows if r[2] is not None}
        group = {int(r[0]): group_key(r[3], r[4], r[1]) for r in rows}
        genre: dict[int, str] = dict(train_label)
        excluded = 0
        file_queries: set[int] = set()
        if label_map:
            by_path = {os.path.abspath(p): lab for p, lab in label_map.items()}
            for tid, path, lab, _artist, _album in rows:
                truth = by_path.get(path)
                if truth is None:
                    continue
                if lab is not None:
                    excluded += 1  # its genre was a training label: never a query
                    continue
                genre[int(tid)] = truth
                file_queries.add(int(tid))
            if not file_queries:
                raise InvalidArgumentError(
                    "none of the labels file's tracks is indexed without a training label: there is nothing "
                    "held out to score (ingest them without --label-from, or check the paths)"
                )
        pool = sorted(genre)
        if len(pool) > max_tracks:
            keep = set(file_queries) if len(file_queries) < max_tracks else set()
            rest = [t for t in pool if t not in keep]
            pick = rng.choice(len(rest), max_tracks - len(keep), replace=False)
            pool = sorted(keep | {rest[i] for i in pick})
            notes.append(f"{len(genre)} tracks with a known genre; a random sample of {len(pool)} took part")
        pool_set = set(pool)
        recording = same_recordings(snap)  # a copy of the query is no answer: it never counts as a neighbour
        if recording:
            notes.append(f"{len(recording)} files in {len(set(recording.values()))} same-recording groups: a query's "
                         "copies never count as its neighbours")  # fmt: skip
        gm = snap.genre_model()
        classifier_heldout: set[int] = set()
        for kind in CLASSIFIER_KINDS:
            v = snap.versions.get(kind)
            if v is not None:
                classifier_heldout = _heldout(snap, v.id)
                if classifier_heldout:
                    break

        spaces: list[SpaceEvaluation] = []
        for name in SPACES:
            try:
                sp = open_space(snap, name, exact=True, bound_exact=False)
            except ModelNotTrainedError:
                continue
            supervised = name in LABELLED_SPACES
            if label_map:
                queries = file_queries
                protocol = "queries: the labels file's tracks without a training label"
            elif supervised:
                held = _heldout(snap, sp.version.id) if sp.version is not None else set()
                if not held:
                    notes.append(f"the {name} space's version records no held-out tracks: not scored (retrain it)")
                    continue
                queries = held
                protocol = f"queries: the tracks held out from training {name} v{sp.version_id}"
            elif classifier_heldout:
                queries = classifier_heldout
                protocol = "queries: the classifiers' held-out tracks (the space itself uses no labels)"
            else:
                queries = set(pool)
                protocol = "queries: every labelled track (no model was trained on labels)"
            queries &= pool_set
            ids, mat = load_space_matrix(snap, sp, pool)
            if len(ids) < 2 or not queries:
                continue
            prec, skew, never, nq = _precision_and_hubness(ids, mat, genre, queries, k, recording)
            rec = retrieval.score_space(
                mat,
                np.array([genre[int(t)] for t in ids], dtype=object),
                np.flatnonzero(np.isin(ids, list(queries))),
                np.array([group[int(t)] for t in ids], dtype=object),
                k,
                _recording_keys(ids, recording),
            )
            spaces.append(
                SpaceEvaluation(
                    space=name,
                    model_version_id=sp.version_id,
                    dimension=sp.dim,
                    queries=nq,
                    candidates=len(ids),
                    precision_at_10=prec,
                    hubness_skewness=skew,
                    never_in_top10=never,
                    protocol=f"{protocol}; neighbours: exact top {k} among {len(ids)} tracks of known genre",
                    other_artist_precision_at_10=rec.other_artist_precision_at_10,
                    accuracy=rec.vote_accuracy,
                    macro_f1=rec.vote_macro_f1,
                )
            )

        classifiers = []
        for kind in CLASSIFIER_KINDS:
            v = snap.versions.get(kind)
            if v is None:
                continue
            m = v.metrics
            if label_map:
                queries, known = file_queries, set(train_label)
            else:
                queries = _heldout(snap, v.id) & pool_set
                known = set(train_label) - queries
            figures = _classifier_figures(snap, v, genre, group, queries, known, pool, k, recording)
            classifiers.append(
                ClassifierEvaluation(
                    kind=kind,
                    model_version_id=v.id,
                    input=v.params.get("input"),
                    cv_accuracy_mean=_num(m, "cv_accuracy_mean"),
                    cv_accuracy_std=_num(m, "cv_accuracy_std"),
                    cv_macro_f1_mean=_num(m, "cv_macro_f1_mean"),
                    accuracy=_num(m, "accuracy"),
                    macro_f1=_num(m, "macro_f1"),
                    genre_model=gm is not None and gm.id == v.id,
                    cv_macro_f1_std=_num(m, "cv_macro_f1_std"),
                    cv_protocol=m.get("cv_protocol") if isinstance(m.get("cv_protocol"), str) else None,
                    **figures,
                )
            )
        if label_map:
            classifiers = [
                replace(
                    c, labels_accuracy=c.heldout_accuracy, labels_macro_f1=c.heldout_macro_f1, labels_tracks=c.queries
                )
                for c in classifiers
            ]
    if label_map:
        protocol = (
            f"truth: the labels file ({len(file_queries)} tracks without a training label; {excluded} with one "
            "left out); classifiers: accuracy of their predictions on those tracks"
        )
    else:
        protocol = (
            "truth: the training labels; spaces: held-out queries only; classifiers: cross-validated and "
            "held-out-split scores from training"
        )
    return EvaluationReport(
        labelled_tracks=len(train_label),
        spaces=spaces,
        classifiers=classifiers,
        protocol=protocol,
        labels_file=labels if isinstance(labels, str) else None,
        labels_excluded=excluded,
        notes=notes,
    )
