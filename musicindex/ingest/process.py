"""Processing: analyse registered tracks in a worker, a chunk at a time, and store what they yield.

:func:`process_tracks` (what a worker's job runs for its chunk of track ids) uses one
database connection for the whole chunk:

1. **claim** (one transaction): a per-track advisory lock on each id (PostgreSQL releases
   it if the worker dies, so two deliveries of a track do the work once), what each track
   needs (new, changed, outdated extractor), and an attempt counted on each track that has
   no unfinished attempt;
2. **analyse** each track: the file opened once and its content hash (skipped for a re-analysis of an
   unchanged file: size and mtime equal, the stored hash stands), moves (same hash as a track whose file is
   gone: the old row takes the new path and keeps its id and everything derived from it), touched-but-identical
   files (same hash, no stage outdated: nothing to recompute); then the analysis stages
   (``ingest.stages``: tags, decode, features, spectrogram, one per embedding model, ...) the track needs, in
   order: all of them for a new or changed content, else only those whose recorded version is older (and the
   stages they read), their audio decoded once;
3. **write** the results of several tracks in one transaction (every 8 tracks or 2 seconds, and at the end):
   first each stage's batch step (an embedding network over every buffered track at once), then the tracks'
   columns, status and stage record, each stage's rows (multi-row upserts), and a notification for waiting
   clients.

A track whose earlier attempt never ended (its worker was killed mid-chunk: nothing of the
chunk's unwritten results survived) is analysed alone, with its attempt counted and its
result written at once, so a file that kills its worker is found and failed after
:data:`MAX_ATTEMPTS` instead of taking the rest of its chunk down with it. Attempts are
reset when an analysis succeeds.

Errors of a file record it (``failed`` with the reason, or ``missing`` when it is gone);
the chunk goes on. A database that rejects one track's data (a permanent error, e.g. a
value out of range) fails that track with the reason and writes the others. Connection
errors (an outage) propagate: the Celery task retries the chunk with backoff, and an
attempt cut short by the outage is not counted (``uncount``). Exceptions listed in
``reraise`` (Celery's soft time limit) propagate with the processor's state intact, so
the task can fail the current file, write what is done and re-queue the rest.

The file is opened and read by ``ingest.trackfile``; the stages are ``ingest.stages``; results are written by
``ingest.results``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from musicindex.audio.window import AnalysisWindow
from musicindex.db.paths import display, fs_path
from musicindex.db.session import Database
from musicindex.errors import AudioError
from musicindex.ingest import lifecycle, moves, stages, trackfile
from musicindex.ingest.results import (
    ProcessOutcome,
    TrackResult,
    db_reason,
    outcome_of,
    write_results,
)
from musicindex.ingest.stages import AudioSource, Stage, TrackWork
from musicindex.ingest.stages.embedding import EmbeddingPass
from musicindex.vocab import FAILED, INDEXED, MISSING, PENDING

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A file whose analysis killed the worker this often is failed, not retried forever."""
FLUSH_EVERY = 8
FLUSH_SECONDS = 2.0

OUTAGE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
"""Database errors that mean "the server or the connection is gone": retried, never a file's fault."""


def is_outage(exc: BaseException) -> bool:
    """Whether a database error is a passing outage (retry) rather than a permanent error (fail the file)."""
    if isinstance(exc, OUTAGE_ERRORS):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass
class _Claimed:
    id: int
    path: str
    path_bytes: bytes | None
    content_hash: str | None
    status: str
    size: int | None
    mtime: float | None
    label: str | None
    label_source: str | None
    recorded: dict[str, int]
    """Its stage record (``tracks.stage_versions``)."""

    @property
    def fs(self) -> str:
        return fs_path(self.path, self.path_bytes)


class ChunkProcessor:
    """Analyses a chunk of tracks over one connection (see the module docstring).

    ``roots``: the ingest roots; a file whose real path left them since the scan (swapped for
    a symlink) is failed, not read. ``reraise``: exceptions to let through (a time limit).
    ``embeddings``: the embedding models of the pass (``ingest.stages.embedding.EmbeddingPass``, bound by the
    worker); none: the stages without them (``embedding``: one, as earlier callers pass).
    """

    def __init__(
        self,
        db: Database,
        *,
        window: AnalysisWindow | None = None,
        label_from_tag: bool = False,
        roots: Sequence[str] | None = None,
        reraise: tuple[type[BaseException], ...] = (),
        flush_every: int = FLUSH_EVERY,
        flush_seconds: float = FLUSH_SECONDS,
        embeddings: Sequence[EmbeddingPass] = (),
        embedding: EmbeddingPass | None = None,
    ):
        self.db = db
        self.embeddings = [*embeddings, *([embedding] if embedding is not None else [])]
        self.stages = stages.pipeline(self.embeddings)
        self.skipped_stages = {s.name for s in stages.declared()} - {s.name for s in self.stages}
        """Stages this code declares that cannot run here (an embedding model that did not load)."""
        self.timings: dict[str, float] = {}
        """CPU seconds per step of this chunk: open_hash, decode, each stage (``<stage>`` per track, ``<stage>:batch``
        per batch), write."""
        self.window = window
        self.label_from_tag = label_from_tag
        self.real_roots = [os.path.realpath(r) for r in roots] if roots is not None else None
        self.reraise = reraise
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.outcomes: dict[int, ProcessOutcome] = {}
        self.analysed: list[int] = []
        self.current: int | None = None
        self.unstarted: list[int] = []
        self.marked: set[int] = set()  # attempts counted by this processor (committed)
        self.claimed = False  # the chunk's claim transaction committed
        self._buffer: list[TrackResult] = []
        self._buffer_since = 0.0
        self._conn: Any = None
        self._session: Session | None = None

    # ------------------------------------------------------------------ connection
    @property
    def session(self) -> Session:
        if self._session is None:
            self._conn = self.db.engine.connect()
            self._session = Session(bind=self._conn, expire_on_commit=False)
        return self._session

    def close(self) -> None:
        """Release the advisory locks and the connection (a dead connection releases them by itself)."""
        if self._session is None:
            return
        try:
            self._session.rollback()
            lifecycle.unlock_all(self._session)
            self._session.commit()
        except DBAPIError:
            pass  # the connection is gone; PostgreSQL released the locks with it
        finally:
            self._session.close()
            self._conn.close()
            self._session = self._conn = None

    # ------------------------------------------------------------------ the chunk
    def run(self, track_ids: Sequence[int], *, deadline: float | None = None, uncount: Iterable[int] = ()) -> list[int]:
        """Process ``track_ids``; returns those not started because ``deadline`` (monotonic) passed."""
        ids = [int(t) for t in dict.fromkeys(track_ids)]
        fresh, suspects = self._claim(ids, [int(t) for t in uncount])
        self.unstarted = [t.id for t in fresh + suspects]
        for t in fresh:
            if deadline is not None and time.monotonic() > deadline:
                break
            self._one(t)
            if len(self._buffer) >= self.flush_every or time.monotonic() - self._buffer_since >= self.flush_seconds:
                self.flush()
        self.flush()
        for t in suspects:
            if deadline is not None and time.monotonic() > deadline:
                break
            if self._count_attempt(t.id) > MAX_ATTEMPTS:
                self.unstarted.remove(t.id)
                self._buffer_result(
                    TrackResult(
                        t.id,
                        FAILED,
                        reason=f"analysis did not finish after {MAX_ATTEMPTS} attempts "
                        "(the worker died or timed out each time)",
                        retryable=True,
                    )
                )
            else:
                self._one(t)
            self.flush()  # a suspect's result is written at once
        rest = list(self.unstarted)
        self.release(rest)
        return rest

    def _claim(self, ids: list[int], uncount: list[int]) -> tuple[list[_Claimed], list[_Claimed]]:
        """Lock, look up and count attempts, in one transaction: (fresh tracks, suspects)."""
        s = self.session
        s.execute(text("SET LOCAL synchronous_commit = off"))  # the attempt survives a worker's death either way
        if uncount:
            lifecycle.uncount_attempt(s, uncount)
        locked = lifecycle.try_lock_tracks(s, ids)
        rows = {
            r.id: r
            for r in s.execute(
                text(
                    "SELECT t.id, t.path, t.path_bytes, t.content_hash, t.status, t.size, t.mtime, t.attempts, "
                    "t.label, t.label_source, t.stage_versions FROM tracks t WHERE t.id = ANY(CAST(:ids AS bigint[]))"
                ),
                {"ids": sorted(locked)},
            )
        }
        work: list[tuple[_Claimed, int]] = []
        for tid in ids:
            if tid not in locked:
                self.outcomes[tid] = ProcessOutcome(tid, "skipped", "being analysed by another worker")
                continue
            r = rows.get(tid)
            if r is None:
                self.outcomes[tid] = ProcessOutcome(tid, "skipped", "track no longer registered")
                continue
            recorded = {str(k): int(v) for k, v in (r.stage_versions or {}).items()}
            if r.status == INDEXED and not stages.outdated(self.stages, recorded):
                self.outcomes[tid] = ProcessOutcome(tid, "skipped", "already indexed")
                continue
            if r.status in (FAILED, MISSING):
                self.outcomes[tid] = ProcessOutcome(tid, "skipped", f"status is {r.status}")
                continue
            claimed = _Claimed(
                tid,
                r.path,
                None if r.path_bytes is None else bytes(r.path_bytes),
                r.content_hash,
                r.status,
                r.size,
                r.mtime,
                r.label,
                r.label_source,
                recorded,
            )
            work.append((claimed, int(r.attempts)))
        counted = lifecycle.count_attempt(s, [c.id for c, a in work if a == 0], only_fresh=True)
        s.commit()
        self.marked.update(counted)
        self.claimed = True
        fresh = [c for c, _ in work if c.id in counted]
        # the least suspect first: a file that killed its worker before does not hold up the others
        suspects = [c for c, _ in sorted((w for w in work if w[0].id not in counted), key=lambda w: w[1])]
        return fresh, suspects

    def _count_attempt(self, track_id: int) -> int:
        s = self.session
        attempts = lifecycle.count_attempt(s, [track_id]).get(track_id, 0)
        s.commit()
        self.marked.add(track_id)
        return attempts

    # ------------------------------------------------------------------ one track
    def _one(self, t: _Claimed) -> None:
        self.current = t.id
        self.unstarted.remove(t.id)
        try:
            result = self._analyse(t)
        except self.reraise:
            raise
        except FileNotFoundError:  # os.stat or the decoder: the file went away after the scan
            result = TrackResult(t.id, MISSING, reason=f"file vanished before analysis: {t.path}")
        except AudioError as exc:
            result = TrackResult(t.id, FAILED, reason=str(exc))
        except DBAPIError as exc:
            if is_outage(exc):
                raise
            self._rollback()
            result = TrackResult(t.id, FAILED, reason=db_reason(exc))
        except MemoryError:
            result = TrackResult(t.id, FAILED, reason="out of memory while analysing the file", retryable=True)
        except OSError as exc:  # an I/O error of the machine, not of the file's content
            result = TrackResult(t.id, FAILED, reason=f"I/O error while reading the file: {exc}", retryable=True)
        except Exception as exc:
            log.exception("unexpected error analysing %s", display(t.path))
            result = TrackResult(t.id, FAILED, reason=f"unexpected {type(exc).__name__}: {exc}")
        if isinstance(result, ProcessOutcome):  # a move, done in its own transaction
            self.outcomes[t.id] = result
            self.marked.discard(t.id)
        else:
            self._buffer_result(result)
        self.current = None

    def _buffer_result(self, result: TrackResult) -> None:
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append(result)

    def _analyse(self, t: _Claimed) -> TrackResult | ProcessOutcome:
        """One track, one pass: the file is opened once (checked on the descriptor), hashed and read from that
        descriptor; the stages it needs run in order over one decode."""
        with trackfile.open_track(t.fs, self.real_roots) as (fd, st, by_fd):
            return self._analyse_open(t, fd, st, by_fd)

    def _analyse_open(self, t: _Claimed, fd: int, st: os.stat_result, by_fd: str) -> TrackResult | ProcessOutcome:
        clock = time.process_time()
        # an unchanged file (same size and mtime) re-analysed for an outdated stage: the stored hash stands
        unchanged = (t.size, t.mtime) == (st.st_size, st.st_mtime)
        same_file = t.status == INDEXED and t.content_hash is not None and unchanged
        content_hash = t.content_hash if same_file else trackfile.fd_sha256(fd)
        assert content_hash is not None
        self._tick("open_hash", clock)
        if t.status == PENDING and t.content_hash is None:
            moved = moves.move_if_twin(self.session, t.id, t.path, t.path_bytes, content_hash, st)
            if moved is not None:
                return moved
        same_content = t.content_hash is not None and t.content_hash == content_hash
        file_values = {"size": st.st_size, "mtime": st.st_mtime}
        if same_content and not stages.outdated(self.stages, t.recorded):
            # touched but identical content: nothing to recompute
            return TrackResult(t.id, INDEXED, file_values, reason="content unchanged")
        todo = stages.plan(self.stages, t.recorded if same_content else None)
        source = AudioSource(t.fs, by_fd, self.window or AnalysisWindow(), [a for s in todo for a in s.needs.audio])
        work = TrackWork(t.id, t.path, t.fs, by_fd, fd, st, source.window, source, self.label_from_tag)
        for stage in todo:
            self._run_stage(stage, work)
        trackfile.check_unchanged(fd, st, t.fs)
        values = {"content_hash": content_hash, **file_values}
        for stage in todo:
            values.update(stage.columns(work.outputs[stage.name]))
        versions = {s.name: int(s.version) for s in todo}
        if t.content_hash is not None and not same_content:  # changed: what could not run here is outdated now
            versions = {**dict.fromkeys(self.skipped_stages, 0), **versions}
        reason = None if source.decoded else f"read again without audio work: {', '.join(s.name for s in todo)}"
        return TrackResult(t.id, INDEXED, values, reason=reason, outputs=work.outputs, versions=versions,
                           audio_work=source.decoded)  # fmt: skip

    def _run_stage(self, stage: Stage, work: TrackWork) -> None:
        clock, decoding = time.process_time(), work.audio.seconds
        work.outputs[stage.name] = stage.analyse(work)
        decoded = work.audio.seconds - decoding  # the shared decode, when this stage was the first to ask
        if decoded:
            self.timings["decode"] = self.timings.get("decode", 0.0) + decoded
        self.timings[stage.name] = self.timings.get(stage.name, 0.0) + (time.process_time() - clock - decoded)

    def _tick(self, stage: str, since: float) -> float:
        now = time.process_time()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - since)
        return now

    # ------------------------------------------------------------------ writing
    def _write(self, items: list[TrackResult]) -> None:
        t0 = time.process_time()
        marked = write_results(self.session, items, self.stages)
        self.session.commit()
        self._tick("write", t0)
        for i in items:
            self.marked.discard(i.id)
            self.outcomes[i.id] = outcome_of(i, marked)
            if self.outcomes[i.id].did_audio_work:
                self.analysed.append(i.id)

    def flush(self) -> None:
        """Write the buffered results: one transaction; a permanent error isolates the track that causes it.

        First each stage's batch step runs over the buffered tracks (an embedding network once over all of
        them), so everything a track's analysis produced is written together."""
        if not self._buffer:
            return
        items = list(self._buffer)
        self._complete(items)
        try:
            self._write(items)
        except DBAPIError as exc:
            self._rollback()
            if is_outage(exc):
                raise
            log.warning("writing %d results failed (%s); writing them one at a time", len(items), exc.orig)
            for item in items:
                try:
                    self._write([item])
                except DBAPIError as one:
                    self._rollback()
                    if is_outage(one):
                        raise
                    self._write([TrackResult(item.id, FAILED, reason=db_reason(one))])
        self._buffer.clear()

    def _complete(self, items: list[TrackResult]) -> None:
        """Each stage's batch step over the buffered results that carry its output; a stage failing there leaves
        those tracks without its output (logged; they are indexed, and its record says it is outdated)."""
        for stage in self.stages:
            todo = [i for i in items if stage.name in i.outputs]
            if not todo or type(stage).complete is Stage.complete:
                continue
            t0 = time.process_time()
            try:
                stage.complete(todo)
            except Exception:
                log.exception("stage %s failed on %d tracks; they are indexed without it", stage.name, len(todo))
                for i in todo:
                    i.outputs.pop(stage.name, None)
                    i.versions[stage.name] = 0
            finally:
                self._tick(f"{stage.name}:batch", t0)

    def _rollback(self) -> None:
        with contextlib.suppress(DBAPIError):
            self.session.rollback()

    # ------------------------------------------------------------------ ending early
    def fail_current(self, reason: str) -> int | None:
        """The current file ends ``failed`` with ``reason`` (a time limit: retryable); written with the buffer."""
        self._rollback()
        tid, self.current = self.current, None
        if tid is not None:
            self._buffer_result(TrackResult(tid, FAILED, reason=reason, retryable=True))
        return tid

    def release(self, track_ids: Sequence[int]) -> None:
        """Tracks this processor claimed but will not start: their counted attempt is taken back."""
        back = [t for t in track_ids if t in self.marked]
        if back:
            lifecycle.uncount_attempt(self.session, back)
            self.session.commit()
            self.marked.difference_update(back)

    def unfinished(self) -> list[int]:
        """Claimed tracks without a final result yet (the current one, the buffered ones, the unstarted)."""
        ids = [r.id for r in self._buffer]
        if self.current is not None:
            ids.append(self.current)
        return ids + [t for t in self.unstarted if t not in ids]


def process_tracks(
    db: Database,
    track_ids: Iterable[int],
    *,
    window: AnalysisWindow | None = None,
    label_from_tag: bool = False,
    roots: Sequence[str] | None = None,
) -> list[ProcessOutcome]:
    """Analyse tracks in this process (what a worker's job does, without Celery); one outcome per id."""
    ids = [int(t) for t in track_ids]
    proc = ChunkProcessor(db, window=window, label_from_tag=label_from_tag, roots=roots)
    try:
        proc.run(ids)
    finally:
        proc.close()
    return [proc.outcomes.get(t, ProcessOutcome(t, "skipped", "not processed")) for t in ids]


def process_track(
    db: Database, track_id: int, *, window: AnalysisWindow | None = None, label_from_tag: bool = False
) -> ProcessOutcome:
    """Analyse one registered track and store the results; never raises for a bad file."""
    return process_tracks(db, [track_id], window=window, label_from_tag=label_from_tag)[0]


def record_failure(db: Database, track_id: int, reason: str) -> ProcessOutcome:
    """Record a file as failed with its reason."""
    with db.session() as s:
        lifecycle.mark_failed(s, track_id, reason)
    return ProcessOutcome(track_id, FAILED, reason)
