"""One training run end to end: ``train(db, options)``, in named steps.

1. :func:`~musicindex.ml.trainset.load_training_set`: read the training set from the database (features,
   labels, spectrograms, the musicnn embedding) and check it (NotEnoughDataError before anything is written);
   skip the run when the labelled data has not changed since the active versions were trained (unless forced);
2. :func:`_open`: a ``training_runs`` row and one ``model_versions`` row per model (state ``training``), plus a
   ``scaler`` version (standardisation of the 43 features, the ``features`` similarity space);
3. :func:`_train_models`: each kind's trainer (``TRAINERS``: classical, nets, clustering, metric) -> params, snapshot,
   metrics, signed artifact + sha256 (state ``candidate``);
4. :func:`_backfill`: predictions / clusters / embeddings of every indexed track, the HNSW index of each
   embedding version;
5. :func:`_promote`, one transaction: ``registry.decide_promotion`` and ``registry.promote`` (new versions
   active, previous ones retired), run ``succeeded``; then :func:`_catch_up` for tracks ingested meanwhile.

Any failure: the run's versions become ``failed`` (their backfilled rows are removed), the run is ``failed``
with the error, and the active versions are untouched (``runs.fail_run``). Runs are serialised by a PostgreSQL
advisory lock; a run whose worker died is cleaned up by the next (``runs.cleanup_stale_runs``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from musicindex.db.orm import ModelVersion, TrainingRun
from musicindex.db.session import Database
from musicindex.ml import artifacts, backfill, classical, clustering, metric, nets, registry, runs
from musicindex.ml.metrics import jsonable
from musicindex.ml.options import TrainOptions, parse_models
from musicindex.ml.runs import STALE_AFTER_SECONDS, cleanup_stale_runs, live_runs
from musicindex.ml.trainset import Trained, TrainingSet, load_training_set
from musicindex.vocab import (
    ACTIVE,
    CANDIDATE,
    CLASSIFIER_KINDS,
    CLUSTER_KINDS,
    ENSEMBLE,
    FAILED,
    SCALER,
    SKLEARN_CLASSIFIER_KINDS,
    SPACE_MODEL_METRIC,
    TRAINABLE_KINDS,
)

log = logging.getLogger(__name__)

ALL_MODELS = TRAINABLE_KINDS
Trainer = Callable[[TrainingSet, TrainOptions, str], Trained]
TRAINERS: dict[str, Trainer] = {
    SCALER: classical.train_scaler,
    **dict.fromkeys((*SKLEARN_CLASSIFIER_KINDS, ENSEMBLE), classical.train_kind),
    "ann": nets.train_ann_kind,
    "cnn": nets.train_cnn_kind,
    **dict.fromkeys(CLUSTER_KINDS, clustering.train_kind),
    "lda": metric.train_lda_kind,
}
"""Model kind -> the trainer of its family (each lives with its kind's code)."""
EMBEDDING_KINDS = ("ann", "cnn", "lda", SCALER)
"""Kinds whose versions write embeddings (an HNSW index each)."""

__all__ = [
    "ALL_MODELS",
    "STALE_AFTER_SECONDS",
    "TRAINERS",
    "TrainOptions",
    "TrainResult",
    "cleanup_stale_runs",
    "live_runs",
    "parse_models",
    "train",
]


@dataclass
class TrainResult:
    run_id: int | None
    status: str  # succeeded | failed | queued | skipped
    versions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float | None = None
    error: str | None = None
    task_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Run:
    id: int
    versions: dict[str, int]
    """kind -> version id (the scaler first)."""


def train(
    db: Database,
    options: TrainOptions | str | Iterable[str] | None = None,
    *,
    on_progress: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> TrainResult:
    """Train (see the module docstring). ``options``: a :class:`TrainOptions`, or the models (``"knn,ann"``, a
    list, None for all) with the other options as keyword arguments (``TrainOptions.of``).
    ``on_progress(message)`` is called at each step."""
    opts = options if isinstance(options, TrainOptions) else TrainOptions.of(options, **kwargs)
    say = on_progress or (lambda msg: log.info("%s", msg))
    t_run = time.perf_counter()
    with runs.train_lock(db):
        cleaned = cleanup_stale_runs(db)
        if cleaned:
            say(f"cleaned up after interrupted training run(s) {', '.join(map(str, cleaned))}")
        runs.refuse_if_alive(db)
        ts = load_training_set(db, opts)
        if not opts.force and _unchanged_since_active(db, opts.models, ts.fingerprint):
            say(
                f"labelled data unchanged since the active models were trained ({ts.fingerprint[:12]}); "
                "skipped (force / --force trains anyway)"
            )
            return TrainResult(run_id=None, status="skipped", seconds=time.perf_counter() - t_run)
        run = _open(db, ts, opts)
        say(f"training run {run.id}: {', '.join(opts.models)} on {ts.n} indexed tracks ({len(ts.y)} labelled)")
        heartbeat = runs.Heartbeat(db, run.id)
        try:
            _train_models(db, run, ts, opts, say)
            _backfill(db, run, say)
            chosen = _promote(db, run, opts, say)
        except BaseException as exc:
            heartbeat.stop()
            runs.fail_run(db, run.id, list(run.versions.values()), exc)
            raise
        heartbeat.stop()
    _catch_up(db, run, chosen)
    seconds = time.perf_counter() - t_run
    say(f"training run {run.id} succeeded in {seconds:.1f} s")
    return TrainResult(run_id=run.id, status="succeeded", versions=_summaries(db, run.id), seconds=seconds)


# --------------------------------------------------------------------------- the steps
def _open(db: Database, ts: TrainingSet, opts: TrainOptions) -> _Run:
    """The run's row and its versions (state ``training``)."""
    run_id = runs.start_run(db, opts.trigger, opts.models, ts.fingerprint)
    with db.session() as s:
        versions = registry.open_versions(s, run_id, [SCALER, *opts.models], jsonable(ts.snapshot(opts)))
    return _Run(run_id, versions)


def _train_models(db: Database, run: _Run, ts: TrainingSet, opts: TrainOptions, say: Callable[[str], None]) -> None:
    """Each kind's trainer; its version becomes a candidate with its signed artifact.

    A kind whose trainer raises is recorded ``failed`` with its error and the others go on (a failed kind does
    not block the others from being promoted); the run fails when the scaler or every requested kind failed,
    or on an error that is not one kind's (the database, memory, the task's time limit)."""
    key = artifacts.signing_key()  # before any work: a missing or unsafe key fails the run at once
    failed: dict[str, BaseException] = {}
    for kind, vid in run.versions.items():
        say(f"  training {kind} (version {vid}) ...")
        try:
            if kind in CLASSIFIER_KINDS and ts.label_error is not None:
                raise ts.label_error  # e.g. a single-genre library: the clusterers still train
            res = TRAINERS[kind](ts, opts, kind)
        except Exception as exc:
            if kind == SCALER or not _kind_error(exc):
                raise
            log.exception("training %s (version %s) failed; the other kinds go on", kind, vid)
            with db.session() as s:
                registry.fail_versions(s, [vid], f"{type(exc).__name__}: {exc}")
            failed[kind] = exc
            say(f"  {kind}: FAILED ({type(exc).__name__}: {exc}); the other kinds go on")
            continue
        with db.session() as s:
            registry.record_trained(
                s,
                vid,
                artifact=res.artifact,
                key=key,
                params=jsonable(res.params),
                metrics=jsonable(res.metrics),
                snapshot=jsonable(ts.version_snapshot(kind, opts, res)),
                classes=res.classes,
                embedding_dim=res.embedding_dim,
                seconds=res.seconds,
            )
        say(f"  {kind}: {_headline(kind, res.metrics)} in {res.seconds:.1f} s")
    if failed and len(failed) == len(opts.models):
        raise next(iter(failed.values()))


def _kind_error(exc: BaseException) -> bool:
    """Whether an exception is one kind's failure (its data or its estimator), not the run's."""
    from sqlalchemy.exc import SQLAlchemyError

    from musicindex.errors import TrainingInProgressError

    fatal = (MemoryError, SQLAlchemyError, TrainingInProgressError)
    return not isinstance(exc, fatal) and type(exc).__name__ != "SoftTimeLimitExceeded"


def _backfill(db: Database, run: _Run, say: Callable[[str], None]) -> None:
    """Every indexed track's outputs under the new versions, then an HNSW index per embedding version."""
    t0 = time.perf_counter()
    with db.session() as s:
        trained = set(
            s.execute(
                select(ModelVersion.id).where(ModelVersion.run_id == run.id, ModelVersion.state == CANDIDATE)
            ).scalars()
        )
    ids = [vid for vid in run.versions.values() if vid in trained]  # a failed kind has nothing to write
    written = backfill.backfill(db, ids)
    for kind, vid in run.versions.items():
        if kind in EMBEDDING_KINDS and vid in trained:
            with db.session() as s:
                dim = s.execute(select(ModelVersion.embedding_dim).where(ModelVersion.id == vid)).scalar_one()
            assert dim is not None, f"{kind} version {vid} has no embedding dimension"
            backfill.create_hnsw_index(db, vid, dim)
    backfill.analyze(db)
    say(f"  backfilled {sum(written.values())} rows for {len(ids)} versions in {time.perf_counter() - t0:.1f} s")


def _promote(db: Database, run: _Run, opts: TrainOptions, say: Callable[[str], None]) -> list[int]:
    """Champion/challenger and the switch, in one transaction; the ids promoted."""
    with db.session() as s:
        runs.check_still_running(s, run.id)
        chosen, comparison = registry.decide_promotion(s, run.id, opts.promotion_tolerance)
        registry.promote(s, chosen)  # the rest stay candidates, with the comparison recorded
        for kind, c in comparison.items():
            say(f"  {kind}: {c['decision']} ({c['reason']})")
        runs.succeed_run(s, run.id, comparison)
    return chosen


def _catch_up(db: Database, run: _Run, chosen: list[int]) -> None:
    """Tracks ingested while the run was training get their rows from the promoted versions."""
    try:
        backfill.embed_missing(db, chosen)
    except Exception:
        log.exception("catch-up backfill after run %s failed", run.id)


# --------------------------------------------------------------------------- helpers
def _unchanged_since_active(db: Database, kinds: Iterable[str], fingerprint: str) -> bool:
    """Whether every requested kind's active version was trained on exactly this data, or the kind's latest
    attempt failed on exactly this data in a run that succeeded (its own error, e.g. the classifiers of a
    single-genre library: it would fail again, and must not make every nightly run retrain the others)."""
    with db.session() as s:
        for kind in kinds:
            v = s.execute(
                select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.state == ACTIVE)
            ).scalar_one_or_none()
            if v is not None and (v.snapshot or {}).get("data_fingerprint") == fingerprint:
                continue
            last = s.execute(
                select(ModelVersion)
                .join(TrainingRun, TrainingRun.id == ModelVersion.run_id)
                .where(ModelVersion.kind == kind, TrainingRun.status == runs.SUCCEEDED)
                .order_by(ModelVersion.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            if last is None or last.state != FAILED or (last.snapshot or {}).get("data_fingerprint") != fingerprint:
                return False
    return True


def _summaries(db: Database, run_id: int) -> list[dict[str, Any]]:
    with db.session() as s:
        rows = s.execute(select(ModelVersion).where(ModelVersion.run_id == run_id).order_by(ModelVersion.id))
        return [registry.version_summary(v) for v in rows.scalars()]


def _headline(kind: str, m: dict[str, Any]) -> str:
    if kind in CLASSIFIER_KINDS:
        cv = (
            f", cv {m['cv_accuracy_mean']:.3f}±{m['cv_accuracy_std']:.3f} ({m.get('cv_protocol', 'stratified')})"
            if "cv_accuracy_mean" in m
            else ""
        )
        return f"accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}{cv}"
    if kind in CLUSTER_KINDS:
        return f"k={m['n_clusters']}, silhouette {m['silhouette']:.3f}, Davies-Bouldin {m['davies_bouldin']:.3f}"
    if SPACE_MODEL_METRIC in m or "precision_at_10" in m:
        score = m.get(SPACE_MODEL_METRIC)
        other = (
            f", other-artist {score:.3f}±{m['cv_other_precision_at_10_std']:.3f} ({m['cv_protocol']})"
            if score is not None
            else ""
        )
        return f"{m['dimensions']} dimensions, held-out precision@10 {m['precision_at_10']:.3f}{other}"
    return "fitted"
