"""Task wrappers: each one calls library functions that can also be called directly.

Passing database or broker errors are retried with exponential backoff; a bad file never
raises here (``musicindex.ingest.process`` records it as failed), nor does a value the
database rejects (that file is failed with the reason).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Iterator

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.exc import InterfaceError, OperationalError

from musicindex.config import database_url, get_settings
from musicindex.dispatch import TASK_INGEST, TASK_RESCAN, Dispatcher
from musicindex.errors import BrokerUnavailableError, DatabaseUnavailableError
from workers.celery_app import app

log = logging.getLogger(__name__)
_settings = get_settings()
_db = None
# passing outages: the database or the broker is restarting (DatabaseUnavailableError comes from
# connecting a new worker process's engine while PostgreSQL is down). Other database errors (a
# value the database rejects) are permanent: the ingest job fails that file at once.
RETRYABLE = (OperationalError, InterfaceError, ConnectionError, DatabaseUnavailableError, BrokerUnavailableError)


def get_db():
    """One Database per worker process (engines must not cross a fork)."""
    global _db
    if _db is None:
        from musicindex.db.session import Database

        _db = Database.connect(database_url(_settings), pool_size=2)
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


_threadpools = None


@contextlib.contextmanager
def _one_thread_per_process() -> Iterator[None]:
    """BLAS and OpenMP pools limited to one thread while a job analyses audio.

    The worker already runs one process per core: a BLAS pool of N threads in each of them
    would oversubscribe the cores (measured: 380 ms wall per track instead of 135 ms with
    two processes on two cores). The limit is lifted after the job (training jobs may share the process).
    """
    global _threadpools
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        yield
        return
    if _threadpools is None:
        _threadpools = ThreadpoolController()
    with _threadpools.limit(limits=1):
        yield


def _backoff(retries: int) -> float:
    """Seconds before retry ``retries + 1`` after an outage: 1, 2, 4, ... 60, with +-25 % jitter.

    Not Celery's full jitter (anything from 0 s): five quick retries could all fall inside
    one PostgreSQL restart on a loaded machine and give up while the server comes back.
    """
    return min(60.0, 2.0**retries) * random.uniform(0.75, 1.25)  # jitter, not cryptography


@app.task(name=TASK_INGEST, bind=True, max_retries=_settings.task_max_retries)
def ingest_files(
    self,
    track_ids: list[int],
    label_from_tag: bool = False,
    roots: list[str] | None = None,
    uncount: list[int] | None = None,
) -> dict:
    """Analyse and store a chunk of registered tracks; returns counts by outcome.

    The chunk stops taking new files halfway to the soft time limit and re-queues the rest.
    On the soft limit the current file is failed ("exceeded the job time limit"), what is
    done is written and the rest is re-queued. A database or broker outage retries what is
    unfinished, with backoff, without counting the interrupted attempt (``uncount``).
    """
    from musicindex.ingest.process import ChunkProcessor

    try:
        db = get_db()
    except RETRYABLE as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None
    soft = self.soft_time_limit or app.conf.task_soft_time_limit or _settings.task_time_limit
    deadline = time.monotonic() + 0.5 * float(soft)
    proc = ChunkProcessor(
        db, window=_settings.window, label_from_tag=label_from_tag, roots=roots, reraise=(SoftTimeLimitExceeded,)
    )
    rest: list[int] = []
    try:
        try:
            with _one_thread_per_process():
                rest = proc.run(track_ids, deadline=deadline, uncount=uncount or ())
        except SoftTimeLimitExceeded:
            tid = proc.fail_current(f"analysis exceeded the job time limit ({_settings.task_time_limit} s)")
            log.warning("job time limit reached on track %s; the rest of the chunk is queued again", tid)
            proc.flush()
            rest = list(proc.unstarted)
            proc.release(rest)
        if rest:
            Dispatcher(_settings).ingest(rest, label_from_tag=label_from_tag, roots=roots)
    except RETRYABLE as exc:
        # nothing claimed yet: the whole chunk; else what has no result yet (and what was not started)
        unfinished = proc.unfinished() if proc.claimed else [int(t) for t in track_ids]
        if not unfinished:
            raise
        uncounted = [t for t in unfinished if t in proc.marked]
        proc.close()
        raise self.retry(
            exc=exc,
            args=[unfinished],
            kwargs={"label_from_tag": label_from_tag, "roots": roots, "uncount": uncounted},
            countdown=_backoff(self.request.retries),
        ) from None
    finally:
        proc.close()
    counts = dict(Counter(o.status for o in proc.outcomes.values()))

    # ---- follow-up: newly analysed tracks get their musicnn embedding and tags, then the outputs of the
    # active trained models, on the embed queue (the pretrained space needs no trained model: always)
    analysed = proc.analysed
    if analysed:
        Dispatcher(_settings).embed(analysed)

    counts["pid"] = os.getpid()
    return counts


@app.task(name=TASK_RESCAN, bind=True, max_retries=_settings.task_max_retries)
def rescan(self) -> dict:
    """The scheduled rescan (``MUSICINDEX_RESCAN_INTERVAL``): register and queue what changed in the folders."""
    from musicindex.ingest.service import IngestService

    try:
        summary = IngestService(get_db(), _settings, Dispatcher(_settings)).rescan()
    except RETRYABLE as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None
    return {} if summary is None else {k: v for k, v in summary.to_dict().items() if isinstance(v, (int, float))}
