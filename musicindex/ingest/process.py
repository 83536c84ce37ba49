"""Processing: analyse registered tracks in a worker, a chunk at a time, and store what they yield.

:func:`process_tracks` (what a worker's job runs for its chunk of track ids) uses one
database connection for the whole chunk:

1. **claim** (one transaction): a per-track advisory lock on each id (PostgreSQL releases
   it if the worker dies, so two deliveries of a track do the work once), what each track
   needs (new, changed, outdated extractor), and an attempt counted on each track that has
   no unfinished attempt;
2. **analyse** each track: the content hash (skipped for a re-analysis after an extractor
   version change: size and mtime equal, the stored hash stands), moves (same hash as a
   track whose file is gone: the old row takes the new path and keeps its id and everything
   derived from it), touched-but-identical files (same hash: nothing to recompute), the
   analysis window, the tags; features are checked finite;
3. **write** the results of several tracks in one transaction (multi-row upserts; every 8
   tracks or 2 seconds, and at the end), which also notifies waiting clients.

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

The file is opened and read by ``ingest.trackfile``; results are written by ``ingest.results``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from musicindex.audio.window import AnalysisWindow
from musicindex.db.orm import Track
from musicindex.db.paths import display, fs_path
from musicindex.db.session import Database
from musicindex.errors import AudioError
from musicindex.ingest import library, lifecycle, trackfile
from musicindex.ingest.embedding import SAMPLE_RATE as SAMPLE_RATE_MUSICNN
from musicindex.ingest.embedding import EmbeddingPass
from musicindex.ingest.library import TAGS_VERSION
from musicindex.ingest.register import current_versions
from musicindex.ingest.results import (
    ProcessOutcome,
    TrackResult,
    db_reason,
    notify,
    outcome_of,
    write_results,
)
from musicindex.vocab import FAILED, FEATURE_NAMES, INDEXED, MISSING, PENDING

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
    need_feat: bool
    need_spec: bool
    need_tags: bool = False

    @property
    def fs(self) -> str:
        return fs_path(self.path, self.path_bytes)


class ChunkProcessor:
    """Analyses a chunk of tracks over one connection (see the module docstring).

    ``roots``: the ingest roots; a file whose real path left them since the scan (swapped for
    a symlink) is failed, not read. ``reraise``: exceptions to let through (a time limit).
    ``embedding``: the musicnn part of the pass (``ingest.embedding.EmbeddingPass``); None: features only.
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
        embedding: EmbeddingPass | None = None,
    ):
        self.db = db
        self.embedding = embedding
        self.timings: dict[str, float] = {}
        """CPU seconds per stage of this chunk (open and hash, decode and features, musicnn, tags, write)."""
        self.window = window
        self.label_from_tag = label_from_tag
        self.real_roots = [os.path.realpath(r) for r in roots] if roots is not None else None
        self.reraise = reraise
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.feat_v, self.spec_v = current_versions()
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
                    "t.label, t.label_source, t.tags_version AS tv, f.version AS fv, sp.version AS sv FROM tracks t "
                    "LEFT JOIN track_features f ON f.track_id = t.id LEFT JOIN spectrograms sp ON sp.track_id = t.id "
                    "WHERE t.id = ANY(CAST(:ids AS bigint[]))"
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
            need_feat = r.fv is None or r.fv < self.feat_v
            need_spec = r.sv is None or r.sv < self.spec_v
            need_tags = r.tv is None or r.tv < TAGS_VERSION
            if r.status == INDEXED and not (need_feat or need_spec or need_tags):
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
                need_feat,
                need_spec,
                need_tags,
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
        """One track, one pass: the file is opened once (checked on the descriptor), hashed and decoded from that
        descriptor, its window decoded once for the features, the spectrogram and musicnn."""
        with trackfile.open_track(t.fs, self.real_roots) as (fd, st, by_fd):
            return self._analyse_open(t, fd, st, by_fd)

    def _analyse_open(self, t: _Claimed, fd: int, st: os.stat_result, by_fd: str) -> TrackResult | ProcessOutcome:
        from musicindex import audio

        fs = t.fs
        clock = time.process_time()
        # an outdated extractor on an unchanged file (same size and mtime): the stored hash stands
        unchanged = (t.size, t.mtime) == (st.st_size, st.st_mtime)
        same_file = t.status == INDEXED and t.content_hash is not None and unchanged
        content_hash = t.content_hash if same_file else trackfile.fd_sha256(fd)
        assert content_hash is not None
        clock = self._tick("open_hash", clock)
        if t.status == PENDING and t.content_hash is None:
            moved = self._move_if_twin(t, content_hash, st)
            if moved is not None:
                return moved
        need_feat, need_spec = t.need_feat, t.need_spec
        same_content = t.content_hash is not None and t.content_hash == content_hash
        if same_content and not (need_feat or need_spec or t.need_tags):
            # touched but identical content: nothing to recompute
            return TrackResult(t.id, INDEXED, {"size": st.st_size, "mtime": st.st_mtime}, reason="content unchanged")
        if same_content and not (need_feat or need_spec):
            # only the tags are read again (a newer tag reader): no audio work
            retagged = {
                "size": st.st_size,
                "mtime": st.st_mtime,
                **trackfile.tag_values(fs, by_fd, t.path, label_from_tag=self.label_from_tag),
            }
            return TrackResult(t.id, INDEXED, retagged, reason="tags read again")
        if t.content_hash is not None and t.content_hash != content_hash:
            need_feat = need_spec = True  # content changed: everything is recomputed
        extra = SAMPLE_RATE_MUSICNN if self.embedding is not None else None
        result = audio.analyse_file(fs, window=self.window, features=need_feat, spectrogram=need_spec,
                                    extra_rate=extra, source=by_fd)  # fmt: skip
        if result.features is not None and not np.isfinite(result.features).all():
            bad = [n for n, v in zip(FEATURE_NAMES, result.features, strict=True) if not np.isfinite(v)]
            raise AudioError(f"non-finite feature values (NaN or infinity): {', '.join(bad[:5])}")
        clock = self._tick("decode_features", clock)
        patches = None
        if self.embedding is not None and result.extra is not None:
            patches = self.embedding.patches(result.extra)
            clock = self._tick("musicnn_logmel", clock)
        tag_values = trackfile.tag_values(fs, by_fd, t.path, label_from_tag=self.label_from_tag)
        self._tick("tags", clock)
        trackfile.check_unchanged(fd, st, fs)
        info = result.info
        values: dict[str, Any] = {
            "content_hash": content_hash,
            "size": st.st_size,
            "mtime": st.st_mtime,
            "duration": float(info.duration),
            "sample_rate": int(info.sample_rate),
            "channels": int(info.channels),
            "format": info.format,
            **tag_values,
        }
        if values.get("bit_rate") is None and info.duration > 0:
            values["bit_rate"] = round(st.st_size * 8 / info.duration / 1000)
        return TrackResult(t.id, INDEXED, values, features=result.features, logmel=result.logmel, patches=patches)

    def _tick(self, stage: str, since: float) -> float:
        now = time.process_time()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - since)
        return now

    def _move_if_twin(self, t: _Claimed, content_hash: str, st: os.stat_result) -> ProcessOutcome | None:
        """A track with the same content whose file is gone keeps its id and data: the new row folds into it."""
        s = self.session
        twins = (
            s.execute(
                select(Track)
                .where(Track.content_hash == content_hash, Track.id != t.id)
                .order_by(Track.id)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for other in twins:
            if other.status == MISSING or not os.path.exists(fs_path(other.path, other.path_bytes)):
                new = s.get(Track, t.id)
                assert new is not None
                label, label_source = new.label, new.label_source
                s.delete(new)
                s.flush()
                values: dict[str, Any] = {
                    "path": t.path,
                    "path_bytes": t.path_bytes,
                    "size": st.st_size,
                    "mtime": st.st_mtime,
                }
                if label_source in ("folder", "csv"):
                    values.update(label=label, label_source=label_source)
                s.execute(update(Track).where(Track.id == other.id).values(updated_at=func.now(), **values))
                if other.indexed_at is not None:
                    lifecycle.mark_indexed(s, other.id)
                elif other.status != PENDING:
                    lifecycle.requeue(s, [other.id])
                library.refresh_albums(s, library.assign(s, [other.id]), covers=True)  # a new folder, maybe a new album
                notify(s)
                s.commit()
                return ProcessOutcome(other.id, "moved", f"moved from a missing track, kept id {other.id}")
        s.rollback()
        return None

    # ------------------------------------------------------------------ writing
    def _write(self, items: list[TrackResult]) -> None:
        t0 = time.process_time()
        marked = write_results(self.session, items, self.feat_v, self.spec_v, self.embedding)
        self.session.commit()
        self._tick("write", t0)
        for i in items:
            self.marked.discard(i.id)
            self.outcomes[i.id] = outcome_of(i, marked)
            if self.outcomes[i.id].did_audio_work:
                self.analysed.append(i.id)

    def flush(self) -> None:
        """Write the buffered results: one transaction; a permanent error isolates the track that causes it.

        First the musicnn network runs once over the patches of every buffered track (one batched call), so
        the features, the spectrogram, the embedding and the tags of a track are written together."""
        if not self._buffer:
            return
        items = list(self._buffer)
        self._embed(items)
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

    def _embed(self, items: list[TrackResult]) -> None:
        """The musicnn embedding and tags of the buffered tracks that carry patches (a failing network leaves them
        without: ``musicindex embed`` backfills them, and the error is logged)."""
        todo = [i for i in items if i.patches is not None and i.embedding is None]
        if not todo or self.embedding is None:
            return
        t0 = time.process_time()
        try:
            emb, probs = self.embedding.embed([i.patches for i in todo if i.patches is not None])
        except Exception:
            log.exception(
                "the musicnn network failed on %d tracks; they are indexed without their embedding", len(todo)
            )
            return
        finally:
            self._tick("musicnn_network", t0)
        for j, i in enumerate(todo):
            i.embedding = (emb[j], probs[j])
            i.patches = None

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
