"""``IngestService``: what ``MusicIndex`` offers for ingestion (register, queue, wait, watch, status).

Queueing: the ids are cut into jobs whose size shrinks towards the end of the batch (guided
self-scheduling: about a third of what each worker process has left, at most
``MUSICINDEX_INGEST_CHUNK``), so every process stays busy to the end; registration and
sending are serialised across clients, so a second ``ingest`` never queues what a job
already holds. Waiting: a dedicated connection LISTENs to the workers' notifications
(no polling delay); when nothing moves for a while, work that no job holds any more (a job
that died or hit its hard time limit) is queued again, and the waiter says so.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg2
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from musicindex.config import Settings
from musicindex.db.copy import copy_in
from musicindex.db.session import Database
from musicindex.dispatch import Dispatcher
from musicindex.errors import InvalidArgumentError
from musicindex.ingest import lifecycle
from musicindex.ingest.labels import LabelSource
from musicindex.ingest.progress import Progress, StatusReport, ingest_progress, latest_failures, status_counts
from musicindex.ingest.register import IngestSummary, register
from musicindex.ingest.results import NOTIFY_CHANNEL
from musicindex.ingest.scan import ScanReport
from musicindex.pretrained import registry
from musicindex.vocab import ACTIVE, CANDIDATE

log = logging.getLogger("musicindex")


NEWEST_VERSION_SQL = (
    f"SELECT max(id) FROM model_versions WHERE kind = %(kind)s AND state IN ('{ACTIVE}', '{CANDIDATE}')"
)
"""The version of an embedding model new tracks are embedded under (``--wait`` waits for the preferred model's)."""
DB_ERRORS = (DBAPIError, psycopg2.Error)
"""A database outage as the waiter sees it: SQLAlchemy's errors, and psycopg2's own on its raw LISTEN connection."""
QUEUE_LOCK = 0x6D75736964
"""Advisory lock key serialising registration + sending across clients (no duplicate jobs)."""


def job_chunks(ids: Sequence[int], max_chunk: int, processes: int) -> Iterator[list[int]]:
    """Guided self-scheduling: each job takes a third of what each process has left, at most ``max_chunk``.

    Big jobs while there is plenty of work (few messages), single files at the end (no process
    waits for another's last chunk).
    """
    i, n = 0, len(ids)
    while i < n:
        size = max(1, min(max_chunk, math.ceil((n - i) / (3 * max(1, processes)))))
        yield [int(x) for x in ids[i : i + size]]
        i += size


class _Waiter:
    """One connection that LISTENs to the workers' notifications and counts the waited-for tracks."""

    def __init__(self, db: Database, track_ids: Sequence[int]):
        self.total = len(track_ids)
        self._raw = db.engine.raw_connection()
        conn: Any = self._raw.dbapi_connection
        assert conn is not None
        self._conn = conn
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"LISTEN {NOTIFY_CHANNEL}")
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS mi_wait (id bigint PRIMARY KEY)")
            cur.execute("TRUNCATE mi_wait")
            copy_in(cur, "mi_wait", ("id",), ((int(t),) for t in dict.fromkeys(track_ids)))
            cur.execute("ANALYZE mi_wait")
        self.total = len(dict.fromkeys(track_ids))

    def progress(self) -> Progress:
        """Counts by status of the waited-for tracks, and how many indexed ones the preferred embedding model's space
        answers for (not counted when the index uses no embedding model)."""
        preferred = next(iter(registry.names()), None)
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT t.status, count(*), count(e.track_id) FROM mi_wait w JOIN tracks t ON t.id = w.id "
                f"LEFT JOIN embeddings e ON e.track_id = t.id AND e.model_version_id = ({NEWEST_VERSION_SQL}) "
                "GROUP BY t.status",
                {"kind": preferred or ""},
            )
            rows = cur.fetchall()
        counts = {str(k): int(v) for k, v, _ in rows}
        embedded = sum(int(e) for k, _, e in rows if k == "indexed") if preferred is not None else None
        seen = sum(counts.values())
        gone = self.total - seen  # ids deleted by a move are done (their content lives on under the old id)
        return Progress(
            total=self.total,
            indexed=counts.get("indexed", 0) + gone,
            failed=counts.get("failed", 0),
            pending=counts.get("pending", 0),
            missing=counts.get("missing", 0),
            embedded=None if embedded is None else embedded + gone,
        )

    def pending_ids(self) -> list[int]:
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT t.id FROM mi_wait w JOIN tracks t ON t.id = w.id WHERE t.status = 'pending' ORDER BY t.id"
            )
            return [int(r[0]) for r in cur.fetchall()]

    def held_ids(self, queued: Iterable[int]) -> set[int]:
        """``lifecycle.held_track_ids``: ``queued`` (the broker's ingest jobs) and the tracks workers have locked."""
        with self._conn.cursor() as cur:
            return lifecycle.held_track_ids(cur, queued)

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds`` for a notification; True if one came."""
        if self._conn.notifies:
            self._conn.notifies.clear()
            return True
        ready, _, _ = select.select([self._conn], [], [], max(0.0, seconds))
        if ready:
            try:
                self._conn.poll()
            except psycopg2.Error:  # the server went away: the next progress() reconnects
                return False
            got = bool(self._conn.notifies)
            self._conn.notifies.clear()
            return got
        return False

    def close(self) -> None:
        try:
            with self._conn.cursor() as cur:
                cur.execute("UNLISTEN *")
                cur.execute("DROP TABLE IF EXISTS mi_wait")
            self._conn.autocommit = False  # back to the pool as it came
            self._raw.close()
        except Exception:  # noqa: BLE001 - a connection that died with the server: dropped by the pool
            with contextlib.suppress(Exception):
                self._raw.invalidate()


class IngestService:
    """Registration in this process, analysis on the workers' ``ingest`` queue."""

    def __init__(self, db: Database, settings: Settings, dispatcher: Dispatcher):
        self.db = db
        self.settings = settings
        self.dispatcher = dispatcher

    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        wait: bool = False,
        label_from: str | None = None,
        reanalyse_outdated: bool = True,
        retry_failed: bool = False,
        follow_symlinks: bool | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_scan: Callable[[ScanReport], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
        scopes: Sequence[str] | None = None,
    ) -> IngestSummary:
        """Scan ``paths``, register new or changed files, and queue their analysis on the workers.

        ``label_from``: ``"folder"`` (parent folder name, the GTZAN layout), ``"tag"`` (the
        genre tag) or ``"csv:FILE"`` (rows ``path,label``). With ``wait=True`` it returns when
        every queued file is indexed or failed, calling ``on_progress`` as it goes;
        ``on_scan(report)`` is called while a long scan runs. Tracks still pending from an
        earlier ingest are waited for but queued again only when no job holds them.
        ``scopes``: only these paths under ``paths`` are scanned (what a watcher saw change). ``retry_failed``:
        analyse every failed track again (by themselves, only tracks that the environment failed are retried,
        once: a time limit, a lost worker, memory, an I/O error).
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not paths:
            raise InvalidArgumentError("ingest needs at least one file or folder")
        t0 = time.monotonic()
        label_from_tag = LabelSource(label_from).from_tag
        follow = self.settings.follow_symlinks if follow_symlinks is None else follow_symlinks
        with self._queue_lock():
            reg = register(
                self.db,
                paths,
                label_from=label_from,
                reanalyse_outdated=reanalyse_outdated,
                retry_failed=retry_failed,
                follow_symlinks=follow,
                scopes=scopes,
                on_scan=on_scan,
                in_broker=self.dispatcher.queued_ingest_ids,
            )
            roots = None if follow else reg.roots
            t1 = time.monotonic()
            jobs = self.send(reg.send_ids, label_from_tag=label_from_tag, roots=roots)
            reg.timings["queue"] = time.monotonic() - t1
        summary = IngestSummary(**vars(reg), jobs=jobs)
        if wait and reg.queued_ids:
            prog = self.wait_for(
                reg.queued_ids,
                on_progress=on_progress,
                timeout=timeout,
                poll=poll,
                label_from_tag=label_from_tag,
                roots=roots,
            )
            summary.final = {"indexed": prog.indexed, "failed": prog.failed, "pending": prog.pending,
                             "embedded": prog.embedded if prog.embedded is not None else 0}  # fmt: skip
        summary.seconds = time.monotonic() - t0
        return summary

    @contextlib.contextmanager
    def _queue_lock(self) -> Iterator[None]:
        """Registration and sending of one client at a time (a session-level advisory lock)."""
        with self.db.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": QUEUE_LOCK})
            conn.commit()
            try:
                yield
            finally:
                with contextlib.suppress(DBAPIError):
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": QUEUE_LOCK})
                    conn.commit()

    def send(
        self, track_ids: Sequence[int], *, label_from_tag: bool = False, roots: Sequence[str] | None = None
    ) -> int:
        """Queue ``track_ids`` as ingest jobs (sizes shrinking towards the end); returns how many jobs."""
        if not track_ids:
            return 0
        parts = job_chunks(track_ids, self.settings.ingest_chunk, self.settings.worker_concurrency)
        return self.dispatcher.ingest_many(parts, label_from_tag=label_from_tag, roots=roots)

    def wait_for(
        self,
        track_ids: Sequence[int],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
        stall: float = 20.0,
        label_from_tag: bool = False,
        roots: Sequence[str] | None = None,
        embed_wait: bool = True,
    ) -> Progress:
        """Block until none of ``track_ids`` is pending and the indexed ones are answerable (embedded in the
        musicnn space: the ingest pass embeds as it indexes); raises TimeoutError after ``timeout`` s.

        Wakes up when a worker writes results (LISTEN/NOTIFY), else every ``poll`` s. When
        nothing has moved for ``stall`` s, pending tracks that no job holds any more (in the
        broker's queue, reserved by a worker, or locked by one) are queued again and a warning
        says so: a job that died or hit its hard time limit never leaves ``--wait`` waiting forever. Indexed
        tracks without their embedding (a worker whose musicnn runtime failed sent them to the embed queue) are
        waited for while embeddings keep coming (``embed_wait``), at most ``stall`` s without one.
        """
        start = time.monotonic()
        warned = False
        last_embedded: int | None = -1
        embed_since = start
        next_ping, silent = start + 10, 0  # a busy worker may miss one ping: warn after two silent ones
        requeued = 0
        waiter: _Waiter | None = None
        last_done, last_move = -1, time.monotonic()
        next_check = start + stall
        try:
            while True:
                try:
                    if waiter is None:
                        waiter = _Waiter(self.db, track_ids)
                    prog = waiter.progress()
                except DB_ERRORS as exc:  # the database restarts: wait for it
                    log.debug("waiting for the database: %s", exc)
                    if waiter is not None:
                        waiter.close()
                        waiter = None
                    self._check_timeout(start, timeout, None)
                    time.sleep(max(poll, 1.0))
                    continue
                prog.requeued = requeued
                if on_progress is not None:
                    on_progress(prog)
                if prog.pending == 0 and (prog.unembedded == 0 or not embed_wait):
                    return prog
                if prog.pending == 0:  # indexed, not all answerable yet: embed jobs of a backfill may be running
                    now = time.monotonic()
                    if prog.embedded != last_embedded:
                        last_embedded, embed_since = prog.embedded, now
                    elif now - embed_since >= stall:
                        log.warning(
                            "%d indexed files have no %s embedding yet and none came for %.0f s: "
                            "`musicindex embed` embeds them",
                            prog.unembedded,
                            next(iter(registry.names()), "embedding"),
                            stall,
                        )
                        return prog
                self._check_timeout(start, timeout, prog)
                now = time.monotonic()
                if prog.done != last_done:
                    last_done, last_move = prog.done, now
                elif now - last_move >= stall and now >= next_check:
                    next_check = now + stall
                    try:
                        n = self.requeue_orphans(waiter, label_from_tag=label_from_tag, roots=roots)
                    except DB_ERRORS as exc:  # the database restarts: the next round reconnects
                        log.debug("waiting for the database: %s", exc)
                        n = 0
                    if n:
                        requeued += n
                        last_move = now
                if not warned and now >= next_ping and prog.done == 0:
                    next_ping = now + 5
                    silent = 0 if self.dispatcher.ping_workers(2.0) else silent + 1
                    if silent >= 2:
                        warned = True
                        log.warning("no worker answers; jobs wait in the queue. Start one with `musicindex worker`.")
                waiter.wait(poll)
        finally:
            if waiter is not None:
                waiter.close()

    @staticmethod
    def _check_timeout(start: float, timeout: float | None, prog: Progress | None) -> None:
        if timeout is not None and time.monotonic() - start > timeout:
            left = f"{prog.pending} of {prog.total} files" if prog is not None else "files"
            raise TimeoutError(f"{left} still pending after {timeout:.0f} s")

    def requeue_orphans(
        self, waiter: _Waiter, *, label_from_tag: bool = False, roots: Sequence[str] | None = None
    ) -> int:
        """Queue again the pending tracks of ``waiter`` that no job holds any more; how many."""

        def orphans() -> set[int]:
            pending = waiter.pending_ids()
            if not pending:
                return set()
            held = waiter.held_ids(self.dispatcher.queued_ingest_ids())
            return {t for t in pending if t not in held}

        first = orphans()
        if not first:
            return 0
        time.sleep(1.0)  # a message on its way from the queue to a worker is in neither place for a moment
        lost = sorted(first & orphans())
        if not lost:
            return 0
        log.warning(
            "%d files were held by no job any more (a job died or hit its time limit): queued them again", len(lost)
        )
        self.send(lost, label_from_tag=label_from_tag, roots=roots)
        return len(lost)

    def rescan(self) -> IngestSummary | None:
        """Ingest the rescan folders again (``MUSICINDEX_RESCAN_PATHS``, else the roots of earlier ingests).

        What the beat-scheduled rescan runs. A folder that does not exist now (an unmounted
        share) is skipped, never marked missing; None when there is nothing to rescan.
        """
        paths = self.settings.rescan_path_list or self.known_roots()
        there = [p for p in paths if os.path.exists(p)]
        for p in sorted(set(paths) - set(there)):
            log.warning("rescan: %s is not there (unmounted?); skipped, its tracks are left as they are", p)
        return self.ingest(there) if there else None

    def known_roots(self) -> list[str]:
        """The roots of every earlier ingest (outermost ones only)."""
        from musicindex.ingest.scan import outermost

        with self.db.session() as s:
            roots = s.execute(text("SELECT DISTINCT jsonb_array_elements_text(roots) FROM ingest_batches")).scalars()
            return outermost([str(r) for r in roots])

    def watch(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        label_from: str | None = None,
        settle: float | None = None,
        initial_scan: bool = True,
        follow_symlinks: bool | None = None,
        stop: threading.Event | None = None,
        on_batch: Callable[[IngestSummary], None] | None = None,
    ) -> None:
        """Watch ``paths`` and queue new, changed, moved and deleted files as they happen, until ``stop`` is set.

        A path is queued once no event touched it for ``settle`` seconds (default
        ``MUSICINDEX_WATCH_SETTLE``) and its size and mtime then held still: a file still being
        copied is not analysed half-written. ``on_batch(summary)`` follows every registration.
        """
        from musicindex.ingest.watch import watch_folders

        watch_folders(
            self.ingest,
            paths,
            label_from=label_from,
            settle=self.settings.watch_settle if settle is None else settle,
            initial_scan=initial_scan,
            follow_symlinks=follow_symlinks,
            stop=stop,
            on_batch=on_batch,
        )

    def ingest_progress(self) -> dict[str, Any]:
        """The latest ingest batch and how far its analysis has come (``progress.ingest_progress``)."""
        return ingest_progress(self.db)

    def status(self, failures: int = 10) -> StatusReport:
        """Counts by status, the latest failures with reasons, queue depths and live workers."""
        return StatusReport(
            counts=status_counts(self.db),
            failures=latest_failures(self.db, failures),
            queues=self.dispatcher.queue_depths(),
            workers=self.dispatcher.ping_workers(timeout=1.0),
        )
