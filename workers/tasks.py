"""Task wrappers: each one calls library functions that can also be called directly.

Passing database or broker errors are retried with exponential backoff; a bad file never
raises here (``musicindex.ingest.process`` records it as failed), nor does a value the
database rejects (that file is failed with the reason).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.exc import InterfaceError, OperationalError

from musicindex.config import database_url, get_settings
from musicindex.dispatch import TASK_INGEST, TASK_RESCAN, Dispatcher
from musicindex.errors import BrokerUnavailableError, DatabaseUnavailableError
from musicindex.vocab import TRAINED_KINDS
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


ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "NUMBA_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")  # fmt: skip
"""Thread pools that each worker process keeps to one thread: the worker runs one process per core."""
_threadpools = None


@worker_process_init.connect
def _init_process(**_: object) -> None:
    """One busy thread per process whatever the queue mix (BLAS, OpenMP, numba, TensorFlow, the embedding
    models' runtimes), then the warm-up: numba kernels, imports and every embedding model once per process, not per
    job."""
    global _db, _threadpools
    _db = None
    for name in ONE_THREAD:
        os.environ[name] = "1"  # read by libraries loaded from now on (TensorFlow, numba's pools)
    try:
        from threadpoolctl import ThreadpoolController

        _threadpools = ThreadpoolController()
        _threadpools.limit(limits=1)  # the pools already loaded (numpy's BLAS), for the process's lifetime
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        pass
    from musicindex import audio

    audio.warm_up()
    try:
        from musicindex.ml import pretrained

        pretrained.warm(threads=1)
    except Exception:
        log.exception("the embedding models could not be loaded; tracks are indexed without their embedding")


@worker_process_shutdown.connect
def _shutdown_process(**_: object) -> None:
    if _db is not None:
        _db.dispose()


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
    passes, broken = _embedding_passes(db)
    proc = ChunkProcessor(
        db,
        window=_settings.window,
        label_from_tag=label_from_tag,
        roots=roots,
        reraise=(SoftTimeLimitExceeded,),
        embeddings=passes,
    )
    rest: list[int] = []
    try:
        try:
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
    counts: dict[str, Any] = dict(Counter(o.status for o in proc.outcomes.values()))

    # ---- follow-up: each embedding model's version is promoted once it covers the library, and the newly analysed
    # tracks get the outputs of the active trained models on the embed queue (only when there are trained models)
    analysed = proc.analysed
    if analysed:
        _after_pass(db, passes, broken, analysed)
    counts["timings"] = {k: round(v, 4) for k, v in proc.timings.items()}
    counts["analysed"] = len(analysed)
    counts["pid"] = os.getpid()
    return counts


def _embedding_passes(db: Any) -> tuple[list[Any], list[str]]:
    """The embedding models of this job's pass, and those that cannot run here (logged: indexed without them)."""
    from musicindex.ml import pretrained

    try:
        return pretrained.embedding_passes(db, threads=1)
    except RETRYABLE:
        raise
    except Exception:
        log.exception("the embedding models are not available; this job indexes without them")
        return [], ["*"]


def _after_pass(db: Any, passes: list[Any], broken: list[str], analysed: list[int]) -> None:
    from musicindex.ml import pretrained, registry

    for p in passes:
        pretrained.promote_when_complete(db, p.version_id)
    if broken:  # a model failed here: the embed queue embeds them (a worker where it works), then the trained ones
        Dispatcher(_settings).embed(analysed)
        return
    with db.session() as s:
        trained = any(v.kind in TRAINED_KINDS for v in registry.active_versions(s))
    if trained:
        Dispatcher(_settings).embed(analysed, musicnn=False)


@app.task(name=TASK_RESCAN, bind=True, max_retries=_settings.task_max_retries)
def rescan(self) -> dict:
    """The scheduled rescan (``MUSICINDEX_RESCAN_INTERVAL``): register and queue what changed in the folders."""
    from musicindex.ingest.service import IngestService

    try:
        summary = IngestService(get_db(), _settings, Dispatcher(_settings)).rescan()
    except RETRYABLE as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None
    return {} if summary is None else {k: v for k, v in summary.to_dict().items() if isinstance(v, (int, float))}
