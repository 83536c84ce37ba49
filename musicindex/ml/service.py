"""``TrainingService``: what ``MusicIndex`` offers for training, the registry, evaluation and the report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicindex.config import Settings
from musicindex.db.session import Database
from musicindex.dispatch import Dispatcher
from musicindex.errors import MusicIndexError, WorkerLostError
from musicindex.ml.options import TrainOptions

if TYPE_CHECKING:
    from musicindex.ml.evaluate import EvaluationReport
    from musicindex.ml.maps import SpaceMapResult
    from musicindex.ml.training import TrainResult


@dataclass
class EmbedSummary:
    """What ``embed`` queued and (when it waited or ran locally) what came of it."""

    version_id: int
    queued: int
    jobs: int = 0
    embedded: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    promoted: bool = False

    def add(self, job: dict[str, Any]) -> None:
        m = job.get("musicnn") or {}
        self.embedded += int(m.get("embedded", 0))
        self.failed.update(m.get("failed") or {})
        self.promoted = self.promoted or bool(m.get("promoted"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


WORKER_LOST_AFTER = 15.0
"""Seconds a training worker may stay silent (no answer to pings) before ``train(wait=True)`` gives up."""


class TrainingService:
    """Training runs (on the workers' ``train`` queue, or in-process), the registry and the report."""

    def __init__(self, db: Database, settings: Settings, dispatcher: Dispatcher):
        self.db = db
        self.settings = settings
        self.dispatcher = dispatcher

    def train(
        self,
        models: str | Iterable[str] | TrainOptions | None = None,
        *,
        wait: bool = True,
        local: bool = False,
        timeout: float | None = None,
        on_progress: Callable[[str], None] | None = None,
        **options: Any,
    ) -> TrainResult:
        """Train ``models`` (default all: ``vocab.TRAINABLE_KINDS``).

        By default the job runs on a worker (`train` queue); ``wait=True`` blocks until it is
        done and returns its ``TrainResult`` (``wait=False``: status ``queued`` with the task
        id). ``local=True`` trains in this process, without Celery (``on_progress(message)`` follows it).
        ``options`` are the fields of :class:`~musicindex.ml.options.TrainOptions` (test_size, seed, cv_folds,
        net_cv_folds, quick, n_clusters, max_k, pca, min_per_label, drop_rare_labels, inputs, force,
        promotion_tolerance, net_overrides, trigger), validated here, before anything is queued; ``models`` may
        also be a whole ``TrainOptions``. Raises NotEnoughDataError (nothing written) when the labelled data is
        too thin.
        """
        from musicindex import errors
        from musicindex.ml import training

        opts = models if isinstance(models, TrainOptions) else TrainOptions.of(models, **options)
        if local:
            return training.train(self.db, opts, on_progress=on_progress)
        async_result = self.dispatcher.train(opts.to_dict())
        if not wait:
            return training.TrainResult(run_id=None, status="queued", task_id=async_result.id)
        t0 = time.monotonic()
        out = self._wait(async_result, timeout)
        if out.get("status") == "failed" and out.get("error_type"):
            cls = getattr(errors, out["error_type"], MusicIndexError)
            raise cls(out.get("error") or "training failed")
        return training.TrainResult(
            run_id=out.get("run_id"),
            status=str(out.get("status")),
            versions=list(out.get("versions") or []),
            seconds=out.get("seconds") or time.monotonic() - t0,
            error=out.get("error"),
            task_id=async_result.id,
        )

    def _wait(self, async_result: Any, timeout: float | None, poll: float = 1.0) -> dict[str, Any]:
        """The task's result; TimeoutError after ``timeout``; WorkerLostError when the worker that runs it stops
        answering (the task is acknowledged on receipt, so nobody would ever finish it)."""
        start = time.monotonic()
        silent_since: float | None = None
        while not async_result.ready():
            now = time.monotonic()
            if timeout is not None and now - start > timeout:
                raise TimeoutError(
                    f"training did not finish within {timeout} s (task {async_result.id} goes on; "
                    "`musicindex models list` shows the result later)"
                )
            info = async_result.info if async_result.state == "STARTED" else None
            host = info.get("hostname") if isinstance(info, dict) else None
            if host is not None:
                if self.dispatcher.ping_workers(timeout=1.0, destination=[host]):
                    silent_since = None
                elif silent_since is None:
                    silent_since = now
                elif now - silent_since > WORKER_LOST_AFTER:
                    raise WorkerLostError(
                        f"the worker {host} that was training (task {async_result.id}) stopped answering for "
                        f"{now - silent_since:.0f} s; the run will not finish. Start a worker "
                        "(`musicindex worker --queues train`) and train again; the next run cleans up."
                    )
            time.sleep(poll)
        try:
            out: dict[str, Any] = async_result.get(propagate=True)
        except Exception as exc:
            if isinstance(exc, MusicIndexError):
                raise
            raise MusicIndexError(f"training failed on the worker: {type(exc).__name__}: {exc}") from None
        return out

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

    def apply_models(self, track_ids: Sequence[int]) -> dict[str, Any]:
        """Predictions, clusters and embeddings of ``track_ids`` from the active trained models, in-process."""
        from musicindex.ml import backfill

        return backfill.apply_active(self.db, track_ids)

    def embed(
        self,
        track_ids: Sequence[int] | None = None,
        *,
        local: bool = False,
        wait: bool = False,
        timeout: float | None = None,
        chunk: int = 16,
    ) -> EmbedSummary:
        """Embed tracks in the space of every embedding model of the registry (musicnn by default), with their tags,
        and give them the trained models' outputs. The summary counts the preferred model's.

        ``track_ids`` None: every indexed track some model has not embedded yet under its current extractor
        version (the backfill of a library that predates a model, or of a new extractor version). Jobs go to the
        ``embed`` queue (``local=True``: in this process); ``wait=True`` returns when they are done.
        """
        from musicindex.ml import pretrained

        vid, missing = pretrained.unembedded(self.db)  # every embedding model of the registry
        ids = list(track_ids) if track_ids is not None else missing
        summary = EmbedSummary(version_id=int(vid or 0), queued=len(ids))
        window = self.settings.window
        chunks = [ids[i : i + chunk] for i in range(0, len(ids), chunk)]
        if local:
            for part in chunks:
                summary.add(pretrained.embed_job(self.db, part, window=window))
            return summary
        results = [self.dispatcher.embed(part) for part in chunks]
        summary.jobs = len(results)
        if wait:
            start = time.monotonic()
            for r in results:
                left = None if timeout is None else max(0.1, timeout - (time.monotonic() - start))
                summary.add(self._wait(r, left))
        return summary

    def space_map(self, space: str, method: str = "umap", *, refresh: bool = False) -> SpaceMapResult:
        """2-D coordinates of a similarity space's tracks (``method``: pca, tsne or umap) for the space's active
        version, cached per model version (``musicindex.ml.maps.space_map``); ``refresh=True`` redraws it."""
        from musicindex.ml import maps

        return maps.space_map(self.db, space, method, refresh=refresh)

    def report(self, out_dir: str | os.PathLike) -> Path:
        """Write the HTML model report (and its PNGs) into ``out_dir``; returns the path of index.html."""
        from musicindex.ml import report

        return report.write_report(self.db, out_dir)

    # ------------------------------------------------------------------ judging
    def evaluate(
        self, k: int = 10, max_tracks: int = 20_000, seed: int = 0, labels: str | dict[str, str] | None = None
    ) -> EvaluationReport:
        """Genre precision@k and hubness of each similarity space and the classifiers' scores, never on tracks
        they were trained on (``musicindex.ml.evaluate``); ``labels``: ``csv:FILE`` of labels not used for
        training, scored instead of the training labels."""
        from musicindex.ml.evaluate import evaluate

        return evaluate(
            self.db, k=k, max_tracks=max_tracks, seed=seed, genre_model=self.settings.genre_model, labels=labels
        )
