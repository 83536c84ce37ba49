"""One training run end to end: ``train(db, models=...)``.

1. read the training set from the database (features, labels, spectrograms) and check it
   (NotEnoughDataError before anything is written);
2. write a ``training_runs`` row and one ``model_versions`` row per model (state
   ``training``), plus a ``scaler`` version (standardisation of the 43 features, the
   ``features`` similarity space);
3. train each model; store params, snapshot, metrics, artifact + sha256 (state ``candidate``);
4. backfill predictions / clusters / embeddings of every indexed track and build the HNSW
   index of each embedding version;
5. in one transaction: ``registry.decide_promotion`` and ``registry.promote`` (new versions
   active, previous ones retired), run ``succeeded``; then a catch-up pass for tracks
   ingested meanwhile.

Any failure: the run's versions become ``failed`` (their backfilled rows are removed), the
run is ``failed`` with the error, and the active versions are untouched.
Runs are serialised by a PostgreSQL advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select, text, update

from musicindex.db.orm import ModelVersion, TrainingRun
from musicindex.db.session import Database
from musicindex.errors import InvalidArgumentError, NotEnoughDataError, TrainingInProgressError
from musicindex.ml import artifacts, backfill
from musicindex.ml.data import (
    MIN_TRACKS_CLUSTERING,
    MIN_TRACKS_PER_LABEL,
    check_labels,
    load_dataset,
    load_spectrograms,
)
from musicindex.ml.registry import decide_promotion, promote, version_summary
from musicindex.vocab import (
    CLASSIFIER_INPUTS,
    CLASSIFIER_KINDS,
    CLUSTER_KINDS,
    FEATURE_NAMES,
    GENRE_MODEL_METRIC,
    MUSICNN,
    TRAINABLE_KINDS,
)

log = logging.getLogger(__name__)

ALL_MODELS = TRAINABLE_KINDS
_TRAIN_LOCK = 0x6D69_7472_6169  # advisory lock key serialising training runs ('mi trai')
HEARTBEAT_SECONDS = 10.0
"""A running run refreshes ``training_runs.heartbeat_at`` this often."""
STALE_AFTER_SECONDS = 120.0
"""A ``running`` run whose heartbeat is older than this is stale (its worker died)."""
MUSICNN_MIN_COVERAGE = 0.9
"""``inputs='auto'`` also trains on the musicnn embedding when at least this share of labelled tracks has one."""
HELDOUT_IDS_KEPT = 20_000
"""At most this many held-out track ids are recorded per version (``evaluate`` queries them)."""


@dataclass
class TrainResult:
    run_id: int | None
    status: str  # succeeded | failed | queued
    versions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float | None = None
    error: str | None = None
    task_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_models(models: str | Iterable[str] | None) -> list[str]:
    """``None``/"all" -> every model; "knn,ann" or a list -> those, in canonical order."""
    if models is None:
        return list(ALL_MODELS)
    if isinstance(models, str):
        models = [m for m in models.replace(" ", ",").split(",") if m]
    wanted = [m.strip().lower() for m in models]
    if not wanted or wanted == ["all"]:
        return list(ALL_MODELS)
    bad = [m for m in wanted if m not in ALL_MODELS]
    if bad:
        raise InvalidArgumentError(f"unknown model {bad[0]!r}; choose from {', '.join(ALL_MODELS)} (or all)")
    return [m for m in ALL_MODELS if m in wanted]


def clean_json(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None (JSONB rejects NaN)."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean_json(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


@dataclass
class _Trained:
    artifact: bytes
    params: dict[str, Any]
    metrics: dict[str, Any]
    seconds: float
    classes: list[str] | None = None
    embedding_dim: int | None = None
    heldout_ids: list[int] | None = None


@dataclass
class _Inputs:
    """The labelled training data per classifier input: input name -> (X, y, track ids)."""

    data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    musicnn_version: int | None = None


def train(
    db: Database,
    models: str | Iterable[str] | None = None,
    *,
    test_size: float = 0.2,
    seed: int = 42,
    cv_folds: int = 5,
    net_cv_folds: int = 3,
    quick: bool = False,
    n_clusters: int | None = None,
    max_k: int = 12,
    pca: float | None = None,
    min_per_label: int = MIN_TRACKS_PER_LABEL,
    drop_rare_labels: bool = False,
    trigger: str = "manual",
    net_overrides: dict[str, dict] | None = None,
    on_progress: Callable[[str], None] | None = None,
    force: bool = False,
    promotion_tolerance: float | None = None,
    inputs: str = "auto",
) -> TrainResult:
    """Train ``models`` (default: all) on the indexed tracks; see the module docstring.

    ``test_size``: held-out fraction of the stratified split (0.4 for the study's 60:40);
    ``cv_folds`` / ``net_cv_folds``: stratified k-fold for the classical models / the nets;
    ``quick``: small grids and tiny network budgets (tests, smoke runs); ``n_clusters``: fixed
    k for the clusterers (default: silhouette sweep up to ``max_k``); ``pca``: PCA before
    clustering (fraction of variance or components).
    ``force``: train even when the labelled data has not changed since the active versions
    of every requested kind were trained (otherwise the run is ``skipped``: what the nightly
    schedule relies on). A run first cleans up after runs whose worker died
    (``cleanup_stale_runs``); promotion follows ``registry.decide_promotion``.
    ``inputs``: what knn, logreg and the ann read: ``features`` (the 43), ``musicnn`` (the pretrained
    embedding) or ``auto`` (both when the embedding covers the labelled tracks; each kind keeps the input
    with the better cross-validated macro-F1, recorded in its params and metrics).
    """
    kinds = parse_models(models)
    if inputs not in ("auto", *CLASSIFIER_INPUTS):
        raise InvalidArgumentError(f"inputs {inputs!r}: choose auto, {', '.join(CLASSIFIER_INPUTS)}")
    if not 0.05 <= test_size <= 0.5:
        raise InvalidArgumentError(f"test_size {test_size}: choose a held-out fraction between 0.05 and 0.5")
    if cv_folds < 2 or net_cv_folds < 0 or net_cv_folds == 1:
        raise InvalidArgumentError("cv_folds must be >= 2 (net_cv_folds >= 2, or 0 to skip)")
    say = on_progress or (lambda msg: log.info("%s", msg))
    t_run = time.perf_counter()

    with db.engine.connect() as lock_conn:
        lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _TRAIN_LOCK})
        lock_conn.commit()
        try:
            cleaned = cleanup_stale_runs(db)
            if cleaned:
                say(f"cleaned up after interrupted training run(s) {', '.join(map(str, cleaned))}")
            alive = live_runs(db)
            if alive:
                run, ago = alive[0]
                raise TrainingInProgressError(
                    f"training run {run} is still running (last heartbeat {ago:.0f} s ago); wait until it finishes "
                    "(`musicindex models list`), or until its heartbeat stops if its worker died"
                )
            return _train_locked(
                db,
                kinds,
                say,
                t_run,
                test_size=test_size,
                seed=seed,
                cv_folds=cv_folds,
                net_cv_folds=net_cv_folds,
                quick=quick,
                n_clusters=n_clusters,
                max_k=max_k,
                pca=pca,
                min_per_label=min_per_label,
                drop_rare_labels=drop_rare_labels,
                trigger=trigger,
                net_overrides=net_overrides or {},
                promotion_tolerance=promotion_tolerance,
                force=force,
                inputs=inputs,
            )
        finally:
            lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _TRAIN_LOCK})
            lock_conn.commit()


def _train_locked(
    db: Database,
    kinds: list[str],
    say,
    t_run: float,
    *,
    test_size,
    seed,
    cv_folds,
    net_cv_folds,
    quick,
    n_clusters,
    max_k,
    pca,
    min_per_label,
    drop_rare_labels,
    trigger,
    net_overrides,
    promotion_tolerance,
    force,
    inputs,
) -> TrainResult:
    # ---- 1. data, checked before anything is written
    with db.session() as s:
        ds = load_dataset(s)
    n = len(ds.track_ids)
    lab_mask = ds.labelled
    classifier_kinds = [k for k in kinds if k in CLASSIFIER_KINDS]
    dropped: dict[str, int] = {}
    y_all = ds.labels[lab_mask].astype(str)
    X_lab, ids_lab = ds.X[lab_mask], ds.track_ids[lab_mask]
    if classifier_kinds:
        if drop_rare_labels:
            labs, counts = np.unique(y_all, return_counts=True)
            need = max(min_per_label, cv_folds, net_cv_folds if {"ann", "cnn"} & set(kinds) else 0)
            dropped = {str(lab): int(c) for lab, c in zip(labs, counts, strict=True) if c < need}
            keep = ~np.isin(y_all, list(dropped))
            y_all, X_lab, ids_lab = y_all[keep], X_lab[keep], ids_lab[keep]
        folds = max(cv_folds, net_cv_folds if {"ann", "cnn"} & set(kinds) else 0)
        class_counts = check_labels(y_all.tolist(), min_per_label=min_per_label, folds=folds)
        min_test = math.ceil(len(class_counts) / test_size)
        if len(y_all) < min_test:
            raise NotEnoughDataError(
                f"a held-out split of {test_size:.0%} needs at least one track of each of the {len(class_counts)} "
                f"genres, i.e. at least {min_test} labelled tracks; there are {len(y_all)}. "
                "Ingest more labelled music or raise the test size."
            )
    need_n = MIN_TRACKS_CLUSTERING if set(kinds) & set(CLUSTER_KINDS) else 2
    if n < need_n:
        raise NotEnoughDataError(
            f"training {'the clusterers ' if need_n > 2 else ''}needs at least {need_n} indexed tracks; the index "
            f"has {n}. Ingest music first (`musicindex ingest PATH --wait`)."
        )
    specs: dict[int, np.ndarray] = {}
    if "cnn" in kinds:
        with db.session() as s:
            specs = load_spectrograms(s, ids_lab)
        has = np.array([int(t) in specs for t in ids_lab], dtype=bool)
        if not has.all():
            check_labels(
                y_all[has].tolist(),
                min_per_label=min_per_label,
                folds=max(cv_folds, net_cv_folds),
                what="the CNN (tracks with a stored spectrogram)",
            )
    data = _classifier_inputs(db, inputs, X_lab, y_all, ids_lab, min_per_label, cv_folds, net_cv_folds, kinds)
    fingerprint = ds.fingerprint
    if data.musicnn_version is not None:
        m_ids = data.data[MUSICNN][2]
        fingerprint = hashlib.sha256(
            f"{ds.fingerprint}|musicnn:{data.musicnn_version}:{','.join(map(str, m_ids))}".encode()
        ).hexdigest()
    base_snapshot = {
        "n_indexed": int(n),
        "n_labelled": len(y_all),
        "class_counts": ds.class_counts()
        if not dropped
        else {k: v for k, v in ds.class_counts().items() if k not in dropped},
        "dropped_labels": dropped,
        "data_fingerprint": fingerprint,
        "test_size": test_size,
        "seed": seed,
        "feature_names": list(FEATURE_NAMES),
    }

    if not force and _unchanged_since_active(db, kinds, fingerprint):
        say(
            f"labelled data unchanged since the active models were trained ({fingerprint[:12]}); "
            "skipped (force / --force trains anyway)"
        )
        return TrainResult(run_id=None, status="skipped", versions=[], seconds=time.perf_counter() - t_run)

    # ---- 2. run and version rows
    with db.session() as s:
        run = TrainingRun(
            trigger=trigger, status="running", models=kinds, data_fingerprint=fingerprint, heartbeat_at=func.now()
        )
        s.add(run)
        s.flush()
        run_id = run.id
        version_ids: dict[str, int] = {}
        for kind in ["scaler", *kinds]:
            v = ModelVersion(kind=kind, state="training", run_id=run_id, snapshot=clean_json(base_snapshot))
            s.add(v)
            s.flush()
            version_ids[kind] = v.id
    say(f"training run {run_id}: {', '.join(kinds)} on {n} indexed tracks ({len(y_all)} labelled)")

    heartbeat = _Heartbeat(db, run_id)
    try:
        key = artifacts.signing_key()  # before any work: a missing or unsafe key fails the run at once
        # ---- 3. train
        for kind, vid in version_ids.items():
            say(f"  training {kind} (version {vid}) ...")
            res = _train_one(
                kind,
                ds,
                data,
                y_all,
                ids_lab,
                specs,
                test_size=test_size,
                seed=seed,
                cv_folds=cv_folds,
                net_cv_folds=net_cv_folds,
                quick=quick,
                n_clusters=n_clusters,
                max_k=max_k,
                pca=pca,
                overrides=net_overrides.get(kind),
            )
            snapshot = dict(base_snapshot)
            if kind in CLUSTER_KINDS or kind == "scaler":
                snapshot.update(n_tracks=int(n))
            elif kind == "cnn":
                snapshot.update(n_tracks=int(sum(int(t) in specs for t in ids_lab)))
            else:
                snapshot.update(n_tracks=len(y_all))
            if res.heldout_ids is not None:
                snapshot.update(heldout_track_ids=sorted(res.heldout_ids)[:HELDOUT_IDS_KEPT])
            with db.session() as s:
                s.execute(
                    update(ModelVersion)
                    .where(ModelVersion.id == vid)
                    .values(
                        state="candidate",
                        params=clean_json(res.params),
                        metrics=clean_json(res.metrics),
                        snapshot=clean_json(snapshot),
                        classes=res.classes,
                        embedding_dim=res.embedding_dim,
                        artifact=res.artifact,
                        artifact_sha256=artifacts.sha256(res.artifact),
                        artifact_hmac=artifacts.sign(res.artifact, key),
                        training_seconds=float(res.seconds),
                    )
                )
            say(f"  {kind}: {_headline(kind, res.metrics)} in {res.seconds:.1f} s")

        # ---- 4. backfill + HNSW
        t0 = time.perf_counter()
        ids = list(version_ids.values())
        written = backfill.backfill(db, ids)
        for kind, vid in version_ids.items():
            if kind in ("ann", "cnn", "scaler"):
                with db.session() as s:
                    dim = s.execute(select(ModelVersion.embedding_dim).where(ModelVersion.id == vid)).scalar_one()
                assert dim is not None, f"{kind} version {vid} has no embedding dimension"
                backfill.create_hnsw_index(db, vid, dim)
        backfill.analyze(db)
        say(f"  backfilled {sum(written.values())} rows for {len(ids)} versions in {time.perf_counter() - t0:.1f} s")

        # ---- 5. promotion, one transaction
        with db.session() as s:
            state = s.execute(select(TrainingRun.status).where(TrainingRun.id == run_id).with_for_update()).scalar_one()
            if state != "running":  # another run declared this one dead (no heartbeat for too long)
                raise TrainingInProgressError(
                    f"training run {run_id} was marked {state} by another run while it was cut off from the "
                    "database; its results are dropped"
                )
            chosen, comparison = decide_promotion(s, run_id, promotion_tolerance)
            promote(s, chosen)  # the rest stay candidates, with the comparison recorded
            for kind, c in comparison.items():
                say(f"  {kind}: {c['decision']} ({c['reason']})")
            s.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run_id)
                .values(status="succeeded", finished_at=func.now(), comparison=comparison)
            )
    except BaseException as exc:
        heartbeat.stop()
        _fail_run(db, run_id, list(version_ids.values()), exc)
        raise
    heartbeat.stop()

    # ---- catch-up: tracks ingested while this run was training
    try:
        backfill.embed_missing(db, chosen)
    except Exception:
        log.exception("catch-up backfill after run %s failed", run_id)
    with db.session() as s:
        versions = [
            version_summary(v)
            for v in s.execute(
                select(ModelVersion).where(ModelVersion.run_id == run_id).order_by(ModelVersion.id)
            ).scalars()
        ]
    seconds = time.perf_counter() - t_run
    say(f"training run {run_id} succeeded in {seconds:.1f} s")
    return TrainResult(run_id=run_id, status="succeeded", versions=versions, seconds=seconds)


def _unchanged_since_active(db: Database, kinds: list[str], fingerprint: str) -> bool:
    """Whether every requested kind's active version was trained on exactly this data."""
    with db.session() as s:
        for kind in kinds:
            v = s.execute(
                select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.state == "active")
            ).scalar_one_or_none()
            if v is None or (v.snapshot or {}).get("data_fingerprint") != fingerprint:
                return False
    return True


def live_runs(db: Database, stale_after: float = STALE_AFTER_SECONDS) -> list[tuple[int, float]]:
    """``running`` runs whose heartbeat is fresh: (run id, seconds since its last beat)."""
    with db.session() as s:
        rows = s.execute(
            select(
                TrainingRun.id,
                func.extract("epoch", func.now() - func.coalesce(TrainingRun.heartbeat_at, TrainingRun.started_at)),
            ).where(TrainingRun.status == "running")
        ).all()
    return [(int(r[0]), float(r[1])) for r in rows if float(r[1]) < stale_after]


def cleanup_stale_runs(db: Database, stale_after: float = STALE_AFTER_SECONDS) -> list[int]:
    """Mark runs left ``running`` by a dead worker failed, and remove what they wrote.

    Call only while holding the training lock (as ``train`` does). A ``running`` run is stale
    when its heartbeat is older than ``stale_after`` seconds; one with a fresh heartbeat is
    still alive (its lock connection may have died in a PostgreSQL restart) and is left alone:
    ``train`` then refuses to start (TrainingInProgressError). A stale run's versions become
    ``failed``, their predictions, clusters and embeddings are deleted and their HNSW indexes
    dropped (concurrently). Active versions are never touched.
    """
    with db.session() as s:
        stale = [
            int(r[0])
            for r in s.execute(
                select(TrainingRun.id).where(
                    TrainingRun.status == "running",
                    func.coalesce(TrainingRun.heartbeat_at, TrainingRun.started_at)
                    < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stale_after),
                )
            )
        ]
        if not stale:
            return []
        vids = list(
            s.execute(
                select(ModelVersion.id).where(
                    ModelVersion.run_id.in_(stale), ModelVersion.state.in_(("training", "candidate"))
                )
            ).scalars()
        )
    if vids:
        backfill.drop_version_rows(db, vids)
    with db.session() as s:
        if vids:
            s.execute(
                update(ModelVersion)
                .where(ModelVersion.id.in_(vids))
                .values(state="failed", error="training was interrupted (its worker died); cleaned up by a later run")
            )
        s.execute(
            update(TrainingRun)
            .where(TrainingRun.id.in_(stale))
            .values(
                status="failed",
                finished_at=func.now(),
                error="interrupted (the worker died); cleaned up by a later run",
            )
        )
    return stale


def _headline(kind: str, m: dict[str, Any]) -> str:
    if kind in CLASSIFIER_KINDS:
        cv = f", cv {m['cv_accuracy_mean']:.3f}±{m['cv_accuracy_std']:.3f}" if "cv_accuracy_mean" in m else ""
        return f"accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}{cv}"
    if kind in CLUSTER_KINDS:
        return f"k={m['n_clusters']}, silhouette {m['silhouette']:.3f}, Davies-Bouldin {m['davies_bouldin']:.3f}"
    return "fitted"


def _fail_run(db: Database, run_id: int, version_ids: list[int], exc: BaseException) -> None:
    msg = f"{type(exc).__name__}: {exc}"
    log.error("training run %s failed: %s\n%s", run_id, msg, traceback.format_exc())
    try:
        backfill.drop_version_rows(db, version_ids)
    except Exception:
        log.exception("could not remove the rows of failed versions %s", version_ids)
    with db.session() as s:
        s.execute(
            update(ModelVersion)
            .where(ModelVersion.id.in_(version_ids), ModelVersion.state != "active")
            .values(state="failed", error=msg[:4000])
        )
        s.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id)
            .values(status="failed", error=msg[:4000], finished_at=func.now())
        )


def _score(metrics: dict[str, Any]) -> float:
    """What picks a classifier's input: the genre-model score (cross-validated macro-F1), else held-out macro-F1."""
    for key in (GENRE_MODEL_METRIC, "macro_f1"):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return float("-inf")


def _input_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("cv_macro_f1_mean", "cv_accuracy_mean", "accuracy", "macro_f1", "n_train", "n_test")
    return {k: metrics[k] for k in keys if k in metrics}


def _train_one(
    kind: str,
    ds,
    data: _Inputs,
    y_lab,
    ids_lab,
    specs,
    *,
    test_size,
    seed,
    cv_folds,
    net_cv_folds,
    quick,
    n_clusters,
    max_k,
    pca,
    overrides,
) -> _Trained:
    t0 = time.perf_counter()
    if kind == "scaler":
        from sklearn.preprocessing import StandardScaler

        sc = StandardScaler().fit(ds.X)
        scale = sc.scale_
        params = {
            "mean": [float(v) for v in sc.mean_],
            "scale": [float(v) for v in scale],
            "feature_names": list(FEATURE_NAMES),
        }
        return _Trained(
            artifacts.dumps_sklearn(sc),
            params,
            {"n_tracks": len(ds.X)},
            time.perf_counter() - t0,
            embedding_dim=int(ds.X.shape[1]),
        )
    if kind in ("knn", "logreg", "ann"):
        # one model per input; the kind keeps the one with the better cross-validated score
        results: dict[str, tuple[Any, np.ndarray]] = {}
        for name, (X, y, ids) in data.data.items():
            if kind == "ann":
                from musicindex.ml.nets import train_net

                results[name] = (
                    train_net(
                        "ann",
                        X,
                        y,
                        test_size=test_size,
                        seed=seed,
                        cv_folds=net_cv_folds,
                        quick=quick,
                        overrides=overrides,
                    ),
                    ids,
                )
            else:
                from musicindex.ml.classical import train_classical

                results[name] = (
                    train_classical(kind, X, y, test_size=test_size, seed=seed, cv_folds=cv_folds, quick=quick),
                    ids,
                )
        # the better cross-validated score; a tie keeps the first of CLASSIFIER_INPUTS (the features)
        best = max((n for n in CLASSIFIER_INPUTS if n in results), key=lambda name: _score(results[name][0].metrics))
        r, ids = results[best]
        params = {**r.params, "input": best, "input_version": data.musicnn_version if best == MUSICNN else None}
        metrics = {
            **r.metrics,
            "input": best,
            "by_input": {name: _input_summary(res.metrics) for name, (res, _) in results.items()},
        }
        artifact = artifacts.dumps_keras(r.model) if kind == "ann" else artifacts.dumps_sklearn(r.model)
        return _Trained(
            artifact,
            params,
            metrics,
            time.perf_counter() - t0,
            classes=r.classes,
            embedding_dim=getattr(r, "embedding_dim", None),
            heldout_ids=[int(t) for t in ids[r.heldout]],
        )
    if kind == "cnn":
        from musicindex.ml.nets import train_net

        keep = [i for i, t in enumerate(ids_lab) if int(t) in specs]
        spec_data, labels = [specs[int(ids_lab[i])] for i in keep], y_lab[keep]
        n = train_net(
            kind,
            spec_data,
            labels,
            test_size=test_size,
            seed=seed,
            cv_folds=net_cv_folds,
            quick=quick,
            overrides=overrides,
        )
        kept_ids = np.asarray(ids_lab)[keep]
        return _Trained(
            artifacts.dumps_keras(n.model),
            {**n.params, "input": "spectrogram"},
            n.metrics,
            n.seconds,
            classes=n.classes,
            embedding_dim=n.embedding_dim,
            heldout_ids=[int(t) for t in kept_ids[n.heldout]],
        )
    if kind in CLUSTER_KINDS:
        from musicindex.ml.clustering import train_clusterer

        k = train_clusterer(kind, ds.X, n_clusters=n_clusters, max_k=(8 if quick else max_k), pca=pca, seed=seed)
        return _Trained(artifacts.dumps_sklearn(k.model), k.params, k.metrics, k.seconds)
    raise InvalidArgumentError(f"unknown model kind {kind!r}")


def _classifier_inputs(
    db: Database,
    inputs: str,
    X_lab: np.ndarray,
    y_lab: np.ndarray,
    ids_lab: np.ndarray,
    min_per_label: int,
    cv_folds: int,
    net_cv_folds: int,
    kinds: list[str],
) -> _Inputs:
    """The inputs the classifiers train on: the 43 features and/or the musicnn embedding of the labelled tracks."""
    data = _Inputs({"features": (X_lab, y_lab, ids_lab)} if inputs != MUSICNN else {})
    wants = {"knn", "logreg", "ann"} & set(kinds)
    if inputs == "features" or not wants:
        if inputs == MUSICNN:
            data.data["features"] = (X_lab, y_lab, ids_lab)
        return data
    from musicindex.ml import pretrained
    from musicindex.ml.data import load_embeddings

    active = pretrained.active_version(db)
    if active is None:
        if inputs == MUSICNN:
            raise NotEnoughDataError("no track is embedded in the musicnn space yet: run `musicindex embed` first")
        return data
    with db.session() as s:
        eids, E = load_embeddings(s, active.id, ids_lab)
    keep = np.isin(ids_lab, eids)
    coverage = float(keep.mean()) if len(keep) else 0.0
    if inputs == "auto" and coverage < MUSICNN_MIN_COVERAGE:
        log.info("musicnn input skipped: %.0f%% of the labelled tracks are embedded", 100 * coverage)
        return data
    y_m, ids_m = y_lab[keep], ids_lab[keep]
    try:
        check_labels(
            y_m.tolist(),
            min_per_label=min_per_label,
            folds=max(cv_folds, net_cv_folds),
            what="classifiers on the musicnn embedding",
        )
    except NotEnoughDataError:
        if inputs == MUSICNN:
            raise
        return data
    order = {int(t): i for i, t in enumerate(eids)}
    data.data[MUSICNN] = (E[[order[int(t)] for t in ids_m]], y_m, ids_m)
    data.musicnn_version = int(active.id)
    return data


class _Heartbeat:
    """Refreshes ``training_runs.heartbeat_at`` of a run from a background thread until stopped."""

    def __init__(self, db: Database, run_id: int, interval: float = HEARTBEAT_SECONDS):
        self.db, self.run_id, self.interval = db, run_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-run-{run_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.db.session() as s:
                    s.execute(update(TrainingRun).where(TrainingRun.id == self.run_id).values(heartbeat_at=func.now()))
            except Exception:
                log.warning("heartbeat of training run %s failed", self.run_id, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def latest_runs(db: Database, limit: int = 10) -> list[dict[str, Any]]:
    with db.session() as s:
        return [
            {
                "id": r.id,
                "trigger": r.trigger,
                "status": r.status,
                "models": r.models,
                "error": r.error,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
            }
            for r in s.execute(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit)).scalars()
        ]
