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
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from musicindex.audio.spectrogram import encode as encode_spectrogram
from musicindex.audio.window import AnalysisWindow
from musicindex.db.orm import Spectrogram, Track, TrackFeatures
from musicindex.db.paths import display, fs_path
from musicindex.db.session import Database
from musicindex.db.upsert import upsert
from musicindex.errors import AudioError
from musicindex.ingest import library, lifecycle
from musicindex.ingest.embedding import SAMPLE_RATE as SAMPLE_RATE_MUSICNN
from musicindex.ingest.embedding import EmbeddingPass, upsert_rows
from musicindex.ingest.library import TAGS_VERSION
from musicindex.ingest.register import current_versions
from musicindex.ingest.scan import within
from musicindex.vocab import FAILED, FEATURE_NAMES, INDEXED, MISSING, PENDING

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A file whose analysis killed the worker this often is failed, not retried forever."""
NOTIFY_CHANNEL = "musicindex_ingest"
"""PostgreSQL channel notified when results are written (``IngestService.wait_for`` listens)."""
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
class ProcessOutcome:
    track_id: int
    status: str  # indexed | failed | missing | skipped | moved
    reason: str | None = None
    did_audio_work: bool = False


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


@dataclass
class _Result:
    """What one track's analysis produced, waiting to be written."""

    id: int
    kind: str  # indexed | failed | missing
    values: dict[str, Any] = field(default_factory=dict)
    features: np.ndarray | None = None
    logmel: np.ndarray | None = None
    reason: str | None = None
    patches: np.ndarray | None = None
    """The musicnn patches of the 16 kHz window (one pass: embedded when the buffer is written)."""
    embedding: tuple[np.ndarray, np.ndarray] | None = None
    retryable: bool = False
    """A failure caused by the environment (time limit, lost worker, memory, I/O): retried once automatically."""


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
        self._buffer: list[_Result] = []
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
                    _Result(
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
            result = _Result(t.id, MISSING, reason=f"file vanished before analysis: {t.path}")
        except AudioError as exc:
            result = _Result(t.id, FAILED, reason=str(exc))
        except DBAPIError as exc:
            if is_outage(exc):
                raise
            self._rollback()
            result = _Result(t.id, FAILED, reason=_db_reason(exc))
        except MemoryError:
            result = _Result(t.id, FAILED, reason="out of memory while analysing the file", retryable=True)
        except OSError as exc:  # an I/O error of the machine, not of the file's content
            result = _Result(t.id, FAILED, reason=f"I/O error while reading the file: {exc}", retryable=True)
        except Exception as exc:
            log.exception("unexpected error analysing %s", display(t.path))
            result = _Result(t.id, FAILED, reason=f"unexpected {type(exc).__name__}: {exc}")
        if isinstance(result, ProcessOutcome):  # a move, done in its own transaction
            self.outcomes[t.id] = result
            self.marked.discard(t.id)
        else:
            self._buffer_result(result)
        self.current = None

    def _buffer_result(self, result: _Result) -> None:
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append(result)

    def _analyse(self, t: _Claimed) -> _Result | ProcessOutcome:
        """One track, one pass: the file is opened once (checked on the descriptor), hashed and decoded from that
        descriptor, its window decoded once for the features, the spectrogram and musicnn."""
        with self._open(t) as (fd, st, by_fd):
            return self._analyse_open(t, fd, st, by_fd)

    @contextlib.contextmanager
    def _open(self, t: _Claimed) -> Iterator[tuple[int, os.stat_result, str]]:
        """The track's file, opened once: its real path inside the roots, a regular file on the descriptor
        (a FIFO or a device swapped in is refused without blocking). Yields (fd, fstat, a path naming the fd)."""
        fs = t.fs
        real = os.path.realpath(fs)
        if self.real_roots is not None and not within(real, self.real_roots):
            raise AudioError(
                f"not read: {display(fs)} now leads outside the ingested folders (to {display(real)}); "
                "use --follow-symlinks to allow that"
            )
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # FileNotFoundError: vanished
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise AudioError(f"not a regular file: {display(fs)} (a FIFO, a device or a folder is there now)")
            os.set_blocking(fd, True)
            by_fd = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else real
            yield fd, st, by_fd
        finally:
            os.close(fd)

    def _analyse_open(self, t: _Claimed, fd: int, st: os.stat_result, by_fd: str) -> _Result | ProcessOutcome:
        from musicindex import audio

        fs = t.fs
        clock = time.process_time()
        # an outdated extractor on an unchanged file (same size and mtime): the stored hash stands
        unchanged = (t.size, t.mtime) == (st.st_size, st.st_mtime)
        same_file = t.status == INDEXED and t.content_hash is not None and unchanged
        content_hash = t.content_hash if same_file else _fd_sha256(fd)
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
            return _Result(t.id, INDEXED, {"size": st.st_size, "mtime": st.st_mtime}, reason="content unchanged")
        if same_content and not (need_feat or need_spec):
            # only the tags are read again (a newer tag reader): no audio work
            retagged = {"size": st.st_size, "mtime": st.st_mtime, **self._tag_values(by_fd, t.path)}
            return _Result(t.id, INDEXED, retagged, reason="tags read again")
        if t.content_hash is not None and t.content_hash != content_hash:
            need_feat = need_spec = True  # content changed: everything is recomputed
        extra = EMBED_RATE if self.embedding is not None else None
        result = audio.analyse_file(by_fd, window=self.window, features=need_feat, spectrogram=need_spec,
                                    extra_rate=extra)  # fmt: skip
        if result.features is not None and not np.isfinite(result.features).all():
            bad = [n for n, v in zip(FEATURE_NAMES, result.features, strict=True) if not np.isfinite(v)]
            raise AudioError(f"non-finite feature values (NaN or infinity): {', '.join(bad[:5])}")
        clock = self._tick("decode_features", clock)
        patches = None
        if self.embedding is not None and result.extra is not None:
            patches = self.embedding.patches(result.extra)
            clock = self._tick("musicnn_logmel", clock)
        tag_values = self._tag_values(by_fd, t.path)
        self._tick("tags", clock)
        _check_unchanged(fd, st, fs)
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
        return _Result(t.id, INDEXED, values, features=result.features, logmel=result.logmel, patches=patches)

    def _tick(self, stage: str, since: float) -> float:
        now = time.process_time()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - since)
        return now

    def _tag_values(self, fs: str, path: str) -> dict[str, Any]:
        """The ``tracks`` columns a file's tags give: title, artist, album, year, genre tag (and the label from it
        with ``label_from_tag``) and the library's (``ingest.library.track_values``)."""
        from musicindex import audio

        tags = audio.read_tags(fs)
        values: dict[str, Any] = {
            "title": tags.get("title"),
            "artist": tags.get("artist"),
            "album": tags.get("album"),
            "year": tags.get("year"),
            "genre_tag": tags.get("genre"),
        }
        for key in ("title", "artist", "album", "genre_tag"):
            if values[key] is not None:
                values[key] = display(values[key]).replace("\x00", " ")
        if self.label_from_tag and values["genre_tag"]:
            values.update(label=values["genre_tag"], label_source="tag")
        values.update(library.track_values(tags, path))
        return values

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
                s.execute(text("SELECT pg_notify(:ch, '')"), {"ch": NOTIFY_CHANNEL})
                s.commit()
                return ProcessOutcome(other.id, "moved", f"moved from a missing track, kept id {other.id}")
        s.rollback()
        return None

    # ------------------------------------------------------------------ writing
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
                    self._write([_Result(item.id, FAILED, reason=_db_reason(one))])
        self._buffer.clear()

    def _embed(self, items: list[_Result]) -> None:
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

    def _write(self, items: list[_Result]) -> None:
        s = self.session
        t0 = time.process_time()
        indexed = [i for i in items if i.kind == INDEXED]
        moved = set(lifecycle.mark_indexed_many(s, [{"id": i.id, **i.values} for i in indexed]))
        done = [i for i in indexed if i.id in moved]
        features = [_feature_row(i.id, self.feat_v, i.features) for i in done if i.features is not None]
        upsert(s, TrackFeatures, features, keys=("track_id",), update=("version", "vec", *FEATURE_NAMES), also_set=NOW)
        specs = [_spectrogram_row(i.id, self.spec_v, i.logmel) for i in done if i.logmel is not None]
        upsert(
            s, Spectrogram, specs, keys=("track_id",), update=("version", "n_mels", "n_frames", "data"), also_set=NOW
        )
        embedded = [(i.id, i.embedding) for i in done if i.embedding is not None]
        if embedded and self.embedding is not None:
            ids, vectors = zip(*embedded, strict=True)
            emb, probs = np.stack([v[0] for v in vectors]), np.stack([v[1] for v in vectors])
            upsert_rows(s, self.embedding.version_id, ids, emb, probs, self.embedding.tag_names)
        failed = [(i.id, i.reason or "failed", i.retryable) for i in items if i.kind == FAILED]
        lifecycle.mark_failed_many(s, failed)
        for i in items:
            if i.kind == MISSING:
                lifecycle.mark_missing(s, [i.id], i.reason)
        touched = library.assign(s, [i.id for i in done])
        touched |= library.albums_of(s, [i.id for i in items if i.kind in (FAILED, MISSING)])
        library.refresh_albums(s, touched, covers=True)
        s.execute(text("SELECT pg_notify(:ch, '')"), {"ch": NOTIFY_CHANNEL})
        s.commit()
        self._tick("write", t0)
        for i in items:
            self.marked.discard(i.id)
            if i.kind == INDEXED and i.id not in moved:
                self.outcomes[i.id] = ProcessOutcome(i.id, "skipped", "track removed or changed during analysis")
            elif i.kind == INDEXED:
                work = i.features is not None or i.logmel is not None
                self.outcomes[i.id] = ProcessOutcome(i.id, INDEXED, i.reason, did_audio_work=work)
                if work:
                    self.analysed.append(i.id)
            else:
                self.outcomes[i.id] = ProcessOutcome(i.id, i.kind, i.reason)

    def _rollback(self) -> None:
        with contextlib.suppress(DBAPIError):
            self.session.rollback()

    # ------------------------------------------------------------------ ending early
    def fail_current(self, reason: str) -> int | None:
        """The current file ends ``failed`` with ``reason`` (a time limit: retryable); written with the buffer."""
        self._rollback()
        tid, self.current = self.current, None
        if tid is not None:
            self._buffer_result(_Result(tid, FAILED, reason=reason, retryable=True))
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


NOW = {"computed_at": func.now()}
EMBED_RATE = SAMPLE_RATE_MUSICNN


def _fd_sha256(fd: int, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the open file's bytes, read from the descriptor (never by name again)."""
    h = hashlib.sha256()
    offset = 0
    while True:
        data = os.pread(fd, chunk, offset)
        if not data:
            return h.hexdigest()
        h.update(data)
        offset += len(data)


def _check_unchanged(fd: int, st: os.stat_result, path: str) -> None:
    """The file analysed is still the one at its path, unchanged (else AudioError saying what happened)."""
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise AudioError("the file changed while it was being analysed; ingest it again once it is complete")
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return  # removed after it was read: what was read is complete; the next scan marks it missing
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        raise AudioError(
            "another file replaced this one while it was being analysed (its path now names a different file); "
            "ingest it again"
        )


def _feature_row(track_id: int, version: int, features: np.ndarray) -> dict[str, Any]:
    """A ``track_features`` row: the 43 features as named columns and as one vector."""
    vec = np.asarray(features, dtype=np.float64)
    named = {name: float(v) for name, v in zip(FEATURE_NAMES, vec, strict=True)}
    return {"track_id": track_id, "version": version, "vec": vec.astype(np.float32), **named}


def _spectrogram_row(track_id: int, version: int, logmel: np.ndarray) -> dict[str, Any]:
    """A ``spectrograms`` row: the compact encoding of the log-mel spectrogram."""
    n_mels, n_frames = logmel.shape
    return {"track_id": track_id, "version": version, "n_mels": n_mels, "n_frames": n_frames,
            "data": encode_spectrogram(logmel)}  # fmt: skip


def _db_reason(exc: DBAPIError) -> str:
    first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return f"the database rejected this track's data: {first}"


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
