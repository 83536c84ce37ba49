"""``TrainingService``: what ``MusicIndex`` offers for training, the registry, evaluation and the report."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicindex.config import Settings
from musicindex.db.session import Database
from musicindex.dispatch import Dispatcher
from musicindex.errors import MusicIndexError

if TYPE_CHECKING:
    from musicindex.ml.evaluate import EvaluationReport


class TrainingService:
    """Training runs (on the workers' ``train`` queue, or in-process), the registry and the report."""

    def __init__(self, db: Database, settings: Settings, dispatcher: Dispatcher):
        self.db = db
        self.settings = settings
        self.dispatcher = dispatcher

    def train(
        self,
        models: str | Iterable[str] | None = None,
        *,
        wait: bool = True,
        local: bool = False,
        timeout: float | None = None,
        trigger: str = "manual",
        **options: Any,
    ):
        """Train ``models`` (default all: knn, logreg, ann, cnn, kmeans, birch, gmm).

        By default the job runs on a worker (`train` queue); ``wait=True`` blocks until it is
        done and returns its ``TrainResult`` (``wait=False``: status ``queued`` with the task
        id). ``local=True`` trains in this process, without Celery. ``options`` are the keyword
        arguments of ``musicindex.ml.training.train`` (test_size, seed, cv_folds,
        net_cv_folds, quick, n_clusters, max_k, pca, min_per_label, drop_rare_labels).
        Raises NotEnoughDataError (nothing written) when the labelled data is too thin.
        """
        from musicindex import errors
        from musicindex.ml import training

        kinds = training.parse_models(models)
        if local:
            return training.train(self.db, kinds, trigger=trigger, **options)
        options = training.clean_json(options)
        async_result = self.dispatcher.train(kinds, options, trigger)
        if not wait:
            return training.TrainResult(run_id=None, status="queued", task_id=async_result.id)
        t0 = time.monotonic()
        try:
            out = async_result.get(timeout=timeout, propagate=True, interval=0.5)
        except Exception as exc:
            if isinstance(exc, MusicIndexError):
                raise
            if type(exc).__name__ == "TimeoutError":
                raise TimeoutError(
                    f"training did not finish within {timeout} s (task {async_result.id} goes on; "
                    "`musicindex models list` shows the result later)"
                ) from None
            raise MusicIndexError(f"training failed on the worker: {type(exc).__name__}: {exc}") from None
        if out.get("status") == "failed" and out.get("error_type"):
            cls = getattr(errors, out["error_type"], MusicIndexError)
            raise cls(out.get("error") or "training failed")
        res = training.TrainResult(**{k: out.get(k) for k in ("run_id", "status", "versions", "seconds", "error")})
        res.task_id = async_result.id
        if res.seconds is None:
            res.seconds = time.monotonic() - t0
        return res

    # ------------------------------------------------------------------ registry
    def models(
        self, kind: str | None = None, state: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Model versions, newest first: id, kind, state, created, key metrics, sha256, ..."""
        from musicindex.ml import registry

        with self.db.session() as s:
            return [registry.version_summary(v) for v in registry.list_versions(s, kind, state, limit)]

    def model(self, version_id: int) -> dict[str, Any]:
        """Everything about one version (params, snapshot, full metrics), without the artifact bytes."""
        from musicindex.ml import registry

        with self.db.session() as s:
            v = registry.get_version(s, version_id)
            d = registry.version_summary(v)
            d.update(
                params=v.params,
                snapshot=v.snapshot,
                metrics=v.metrics,
                classes=v.classes,
                artifact_bytes=len(v.artifact) if v.artifact is not None else None,
            )
            return d

    def active_models(self) -> dict[str, dict[str, Any]]:
        """The active version of each kind."""
        from musicindex.ml import registry

        with self.db.session() as s:
            return {v.kind: registry.version_summary(v) for v in registry.active_versions(s)}

    def promote(self, version_ids: Sequence[int]) -> list[int]:
        """Activate versions (retiring the active ones of their kinds) and give them any missing rows."""
        from musicindex.ml import backfill, registry

        with self.db.session() as s:
            retired = registry.promote(s, version_ids)
        backfill.embed_missing(self.db, version_ids)
        return retired

    def rollback(self, kind: str) -> dict[str, Any]:
        """Re-activate the most recently retired version of ``kind``; returns it."""
        from musicindex.ml import backfill, registry

        with self.db.session() as s:
            v = registry.rollback(s, kind)
            vid = v.id
        backfill.embed_missing(self.db, [vid])
        return self.model(vid)

    def embed_tracks(self, track_ids: Sequence[int]) -> dict[str, Any]:
        """Predictions, clusters and embeddings of ``track_ids`` from the active models, in-process."""
        from musicindex.ml import backfill

        return backfill.embed_tracks(self.db, track_ids)

    def report(self, out_dir: str | os.PathLike) -> Path:
        """Write the HTML model report (and its PNGs) into ``out_dir``; returns the path of index.html."""
        from musicindex.ml import report

        return report.write_report(self.db, out_dir)

    # ------------------------------------------------------------------ judging
    def evaluate(self, k: int = 10, max_tracks: int = 20_000, seed: int = 0) -> EvaluationReport:
        """Genre precision@k and hubness of each similarity space, and the classifiers' metrics."""
        from musicindex.ml.evaluate import evaluate

        return evaluate(self.db, k=k, max_tracks=max_tracks, seed=seed, genre_model=self.settings.genre_model)
