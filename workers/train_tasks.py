"""Task wrappers for training and embedding (queues `train` and `embed`); they import TensorFlow lazily.

* ``musicindex.train`` / ``musicindex.scheduled_retrain`` call ``musicindex.ml.training.train`` with the
  ``TrainOptions`` of the message (``TrainOptions.from_dict``).
  They are acknowledged when received (``acks_late=False``): a training run lasts longer
  than the broker's visibility timeout, and a redelivered run would train twice. A run
  whose worker died stays ``running`` in ``training_runs``; the next run replaces it.
  Their time limit is ``TRAIN_TIME_LIMIT`` (6 h), not the per-file ingest limit.
* ``musicindex.embed_tracks`` gives newly ingested tracks their predictions, clusters and
  embeddings from the active model versions (``musicindex.ml.pretrained.embed_job``).

A user error (too little data, ...) is returned as ``{"status": "failed", "error_type", "error"}``
so the caller can re-raise the library's own exception class.
"""

from __future__ import annotations

import logging
from typing import Any

from musicindex.config import get_settings
from musicindex.dispatch import TASK_EMBED, TASK_RETRAIN_SCHEDULED, TASK_TRAIN
from musicindex.errors import MusicIndexError
from workers.celery_app import app
from workers.tasks import RETRYABLE, get_db

log = logging.getLogger(__name__)
_settings = get_settings()
TRAIN_TIME_LIMIT = max(_settings.task_time_limit, 6 * 3600)


def _run_training(options: dict[str, Any] | None = None, **overrides: Any) -> dict:
    from musicindex.ml import training
    from musicindex.ml.metrics import jsonable
    from musicindex.ml.options import TrainOptions

    try:
        opts = TrainOptions.from_dict({**(options or {}), **{k: v for k, v in overrides.items() if v is not None}})
        result = training.train(get_db(), opts)
    except MusicIndexError as exc:
        log.warning("training refused: %s", exc)
        return {"run_id": None, "status": "failed", "error_type": type(exc).__name__, "error": str(exc)}
    return jsonable(result.to_dict())


@app.task(name=TASK_TRAIN, acks_late=False, time_limit=TRAIN_TIME_LIMIT, soft_time_limit=TRAIN_TIME_LIMIT - 60)
def train(options: dict[str, Any] | None = None, models: Any = None, trigger: str | None = None) -> dict:
    """A training run with ``options`` (``TrainOptions.to_dict()``; ``models`` / ``trigger``, when given, override
    theirs)."""
    return _run_training(options, models=models, trigger=trigger)


@app.task(
    name=TASK_RETRAIN_SCHEDULED, acks_late=False, time_limit=TRAIN_TIME_LIMIT, soft_time_limit=TRAIN_TIME_LIMIT - 60
)
def scheduled_retrain(options: dict[str, Any] | None = None, models: Any = None) -> dict:
    """The nightly retrain (Celery beat): every model, default options, trigger ``scheduled``."""
    return _run_training(options, models=models, trigger="scheduled")


@app.task(
    name=TASK_EMBED,
    bind=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=_settings.task_max_retries,
)
def embed_tracks(self, track_ids: list[int], musicnn: bool = True) -> dict:
    """The musicnn embedding and tags of ``track_ids`` (unless ``musicnn`` is False: the ingest pass did it), then
    their outputs from every active trained version."""
    from musicindex.ml import pretrained

    model = pretrained.get_model(threads=1) if musicnn else None
    return pretrained.embed_job(get_db(), track_ids, window=_settings.window, model=model, musicnn=musicnn)
