"""Training runs (``training_runs``): the lock that serialises them, their heartbeat, how they end, stale ones.

A run holds a PostgreSQL advisory lock for its whole length (:func:`train_lock`) and refreshes its heartbeat from
a background thread (:class:`Heartbeat`); a ``running`` run whose heartbeat stopped is stale (its worker died)
and the next run cleans up after it (:func:`cleanup_stale_runs`). The state of the run's model versions is
written through ``registry`` (the one writer of ``model_versions.state``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select, text, update

from musicindex.db.orm import ModelVersion, TrainingRun
from musicindex.db.session import Database
from musicindex.errors import TrainingInProgressError
from musicindex.ml import backfill, registry
from musicindex.vocab import CANDIDATE, TRAINING

log = logging.getLogger(__name__)

TRAIN_LOCK = 0x6D69_7472_6169  # advisory lock key serialising training runs ('mi trai')
HEARTBEAT_SECONDS = 10.0
"""A running run refreshes ``training_runs.heartbeat_at`` this often."""
STALE_AFTER_SECONDS = 120.0
"""A ``running`` run whose heartbeat is older than this is stale (its worker died)."""
RUNNING, SUCCEEDED, RUN_FAILED = "running", "succeeded", "failed"


@contextlib.contextmanager
def train_lock(db: Database) -> Iterator[None]:
    """Hold the training lock (one run at a time, across machines) for the block."""
    with db.engine.connect() as lock_conn:
        lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": TRAIN_LOCK})
        lock_conn.commit()
        try:
            yield
        finally:
            lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": TRAIN_LOCK})
            lock_conn.commit()


def refuse_if_alive(db: Database) -> None:
    """TrainingInProgressError when another run is alive (its heartbeat is fresh); call holding the lock."""
    alive = live_runs(db)
    if alive:
        run, ago = alive[0]
        raise TrainingInProgressError(
            f"training run {run} is still running (last heartbeat {ago:.0f} s ago); wait until it finishes "
            "(`musicindex models list`), or until its heartbeat stops if its worker died"
        )


def start_run(db: Database, trigger: str, models: Sequence[str], fingerprint: str) -> int:
    """A new ``running`` run; its id."""
    with db.session() as s:
        run = TrainingRun(
            trigger=trigger, status=RUNNING, models=list(models), data_fingerprint=fingerprint, heartbeat_at=func.now()
        )
        s.add(run)
        s.flush()
        return int(run.id)


def check_still_running(session: Any, run_id: int) -> None:
    """Lock the run's row; TrainingInProgressError when another run declared it dead meanwhile."""
    state = session.execute(select(TrainingRun.status).where(TrainingRun.id == run_id).with_for_update()).scalar_one()
    if state != RUNNING:
        raise TrainingInProgressError(
            f"training run {run_id} was marked {state} by another run while it was cut off from the "
            "database; its results are dropped"
        )


def succeed_run(session: Any, run_id: int, comparison: dict[str, Any]) -> None:
    session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run_id)
        .values(status=SUCCEEDED, finished_at=func.now(), comparison=comparison)
    )


def fail_run(db: Database, run_id: int, version_ids: list[int], exc: BaseException) -> None:
    """The run failed: its versions' rows are removed, they and the run are ``failed`` with the error."""
    msg = f"{type(exc).__name__}: {exc}"
    log.error("training run %s failed: %s\n%s", run_id, msg, traceback.format_exc())
    try:
        backfill.drop_version_rows(db, version_ids)
    except Exception:
        log.exception("could not remove the rows of failed versions %s", version_ids)
    with db.session() as s:
        registry.fail_versions(s, version_ids, msg)
        s.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id)
            .values(status=RUN_FAILED, error=msg[:4000], finished_at=func.now())
        )


def live_runs(db: Database, stale_after: float = STALE_AFTER_SECONDS) -> list[tuple[int, float]]:
    """``running`` runs whose heartbeat is fresh: (run id, seconds since its last beat)."""
    with db.session() as s:
        rows = s.execute(
            select(
                TrainingRun.id,
                func.extract("epoch", func.now() - func.coalesce(TrainingRun.heartbeat_at, TrainingRun.started_at)),
            ).where(TrainingRun.status == RUNNING)
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
                    TrainingRun.status == RUNNING,
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
                    ModelVersion.run_id.in_(stale), ModelVersion.state.in_((TRAINING, CANDIDATE))
                )
            ).scalars()
        )
    if vids:
        backfill.drop_version_rows(db, vids)
    with db.session() as s:
        registry.fail_versions(s, vids, "training was interrupted (its worker died); cleaned up by a later run")
        s.execute(
            update(TrainingRun)
            .where(TrainingRun.id.in_(stale))
            .values(
                status=RUN_FAILED,
                finished_at=func.now(),
                error="interrupted (the worker died); cleaned up by a later run",
            )
        )
    return stale


class Heartbeat:
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
