"""Task wrappers: each one calls library functions that can also be called directly.

Passing database or broker errors are retried with exponential backoff (Celery's
``autoretry_for``); a bad file never raises here (``process_track`` records it as failed).
"""

from __future__ import annotations

import logging
import os

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.exc import DBAPIError, OperationalError

from musicindex import ingest
from musicindex.config import get_settings
from musicindex.dispatch import TASK_INGEST, Dispatcher
from musicindex.errors import BrokerUnavailableError, DatabaseUnavailableError
from musicindex.ingest.process import has_active_models
from workers.app import app

log = logging.getLogger(__name__)
_settings = get_settings()
_db = None
# passing outages: the database or the broker is restarting (DatabaseUnavailableError comes from
# connecting a new worker process's engine while PostgreSQL is down)
RETRYABLE = (OperationalError, DBAPIError, ConnectionError, DatabaseUnavailableError, BrokerUnavailableError)


def get_db():
    """One Database per worker process (engines must not cross a fork)."""
    global _db
    if _db is None:
        from musicindex.db.session import Database

        _db = Database.connect(_settings.database_url, _settings, pool_size=2)
    return _db


@worker_process_init.connect
def _init_process(**_: object) -> None:
    global _db
    _db = None
    from musicindex import audio

    audio.warm_up()  # numba JIT and imports once per process, not per job


@worker_process_shutdown.connect
def _shutdown_process(**_: object) -> None:
    if _db is not None:
        _db.dispose()


def _window():
    from musicindex.audio import AnalysisWindow

    return AnalysisWindow(offset=_settings.window_offset, duration=_settings.window_duration)


@app.task(
    name=TASK_INGEST,
    bind=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=_settings.task_max_retries,
)
def ingest_files(self, track_ids: list[int], label_from_tag: bool = False) -> dict:
    """Analyse and store a chunk of registered tracks; returns counts by outcome."""
    db = get_db()
    counts: dict[str, int] = {}
    remaining = list(track_ids)
    window = _window()
    analysed: list[int] = []
    try:
        while remaining:
            outcome = ingest.process_track(db, remaining[0], window=window, label_from_tag=label_from_tag)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            if outcome.did_audio_work:
                analysed.append(outcome.track_id)
            remaining.pop(0)
    except SoftTimeLimitExceeded:
        current, rest = remaining[0], remaining[1:]
        ingest.record_failure(db, current, f"analysis exceeded the job time limit ({_settings.task_time_limit} s)")
        counts["failed"] = counts.get("failed", 0) + 1
        if rest:
            Dispatcher(_settings).ingest(rest, label_from_tag=label_from_tag)
    if analysed and has_active_models(db):
        # newly indexed tracks get predictions, clusters and embeddings from the active models
        Dispatcher(_settings).embed(analysed)
    counts["pid"] = os.getpid()
    return counts
