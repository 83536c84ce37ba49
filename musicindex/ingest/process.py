"""Per-track processing: analyse one registered file and store what it yields.

``process_track`` (what a worker's job runs for each file) takes a per-track advisory
lock, hashes the file (streamed), recognises moves (same hash as a track whose file is
gone: the old row takes the new path and keeps its id and everything derived from it) and
touched-but-identical files (same hash: nothing to recompute), analyses the window, and
writes features, spectrogram and tags. Any error of the file records it (``failed`` with
the reason, or ``missing`` when it is gone); the batch goes on. Database errors propagate
(the Celery task retries them with backoff).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from musicindex.audio.window import AnalysisWindow
from musicindex.db.orm import Spectrogram, Track, TrackFeatures
from musicindex.db.session import Database
from musicindex.errors import AudioError
from musicindex.ingest import lifecycle
from musicindex.ingest.register import current_versions
from musicindex.vocab import FAILED, FEATURE_NAMES, INDEXED, MISSING, PENDING

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A file whose analysis killed the worker this often is failed, not retried forever."""
TRACK_LOCK_NS = 0x4D49
"""Advisory lock namespace of per-track processing."""


@dataclass
class ProcessOutcome:
    track_id: int
    status: str  # indexed | failed | missing | skipped | moved
    reason: str | None = None
    did_audio_work: bool = False


def _track_lock(conn: Connection, track_id: int) -> bool:
    return bool(
        conn.execute(
            text("SELECT pg_try_advisory_lock(:ns, :id)"), {"ns": TRACK_LOCK_NS, "id": int(track_id) & 0x7FFFFFFF}
        ).scalar()
    )


def _track_unlock(conn: Connection, track_id: int) -> None:
    conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": TRACK_LOCK_NS, "id": int(track_id) & 0x7FFFFFFF})


def record_failure(db: Database, track_id: int, reason: str) -> ProcessOutcome:
    """Record a file as failed with its reason (the worker's time-limit handler calls this too)."""
    with db.session() as s:
        lifecycle.mark_failed(s, track_id, reason)
    return ProcessOutcome(track_id, FAILED, reason)


def _record_missing(db: Database, track_id: int, reason: str) -> ProcessOutcome:
    with db.session() as s:
        lifecycle.mark_missing(s, [track_id], reason)
    return ProcessOutcome(track_id, MISSING, reason)


def process_track(
    db: Database, track_id: int, *, window: AnalysisWindow | None = None, label_from_tag: bool = False
) -> ProcessOutcome:
    """Analyse one registered track and store the results; never raises for a bad file.

    A per-track advisory lock (released by PostgreSQL if the worker dies) makes concurrent
    deliveries of the same track do the work once; the others return ``skipped``.
    """
    feat_v, spec_v = current_versions()
    with db.engine.connect() as lock_conn:
        if not _track_lock(lock_conn, track_id):
            return ProcessOutcome(track_id, "skipped", "being analysed by another worker")
        lock_conn.commit()
        try:
            # short transaction: what is there to do? count the attempt (survives a crash)
            with db.session() as s:
                track = s.get(Track, track_id)
                if track is None:
                    return ProcessOutcome(track_id, "skipped", "track no longer registered")
                feats = s.get(TrackFeatures, track_id)
                spec = s.get(Spectrogram, track_id)
                need_feat = feats is None or feats.version < feat_v
                need_spec = spec is None or spec.version < spec_v
                if track.status == INDEXED and not (need_feat or need_spec):
                    return ProcessOutcome(track_id, "skipped", "already indexed")
                if track.status in (FAILED, MISSING):
                    return ProcessOutcome(track_id, "skipped", f"status is {track.status}")
                track.attempts += 1
                attempts = track.attempts
                path, old_hash, old_status = track.path, track.content_hash, track.status
            if attempts > MAX_ATTEMPTS:
                return record_failure(
                    db,
                    track_id,
                    f"analysis did not finish after {MAX_ATTEMPTS} attempts (the worker died or timed out each time)",
                )
            try:
                return _analyse_and_store(
                    db,
                    track_id,
                    path,
                    old_hash,
                    old_status,
                    need_feat,
                    need_spec,
                    window,
                    label_from_tag,
                    feat_v,
                    spec_v,
                )
            except FileNotFoundError:  # os.stat or the decoder: the file went away after the scan
                return _record_missing(db, track_id, f"file vanished before analysis: {path}")
            except AudioError as exc:
                return record_failure(db, track_id, str(exc))
            except DBAPIError:
                raise
            except MemoryError:
                return record_failure(db, track_id, "out of memory while analysing the file")
            except Exception as exc:
                log.exception("unexpected error analysing %s", path)
                return record_failure(db, track_id, f"unexpected {type(exc).__name__}: {exc}")
        finally:
            try:
                _track_unlock(lock_conn, track_id)
                lock_conn.commit()
            except DBAPIError:
                pass  # the connection is gone; PostgreSQL released the lock with it


def _analyse_and_store(
    db: Database,
    track_id: int,
    path: str,
    old_hash: str | None,
    old_status: str,
    need_feat: bool,
    need_spec: bool,
    window: AnalysisWindow | None,
    label_from_tag: bool,
    feat_v: int,
    spec_v: int,
) -> ProcessOutcome:
    from musicindex import audio

    st = os.stat(path)  # FileNotFoundError: vanished
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"not a regular file: {path}")
    content_hash = audio.file_sha256(path)

    with db.session() as s:
        # a move: a track with the same content whose file is gone keeps its id and data
        if old_status == PENDING and old_hash is None:
            twins = (
                s.execute(
                    select(Track)
                    .where(Track.content_hash == content_hash, Track.id != track_id)
                    .order_by(Track.id)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            for other in twins:
                if other.status == MISSING or not os.path.exists(other.path):
                    new = s.get(Track, track_id)
                    assert new is not None
                    label, label_source = new.label, new.label_source
                    s.delete(new)
                    s.flush()
                    values: dict[str, Any] = {"path": path, "size": st.st_size, "mtime": st.st_mtime}
                    if label_source in ("folder", "csv"):
                        values.update(label=label, label_source=label_source)
                    s.execute(update(Track).where(Track.id == other.id).values(updated_at=func.now(), **values))
                    if other.indexed_at is not None:
                        lifecycle.mark_indexed(s, other.id)
                    elif other.status != PENDING:
                        lifecycle.requeue(s, [other.id])
                    return ProcessOutcome(other.id, "moved", f"moved from a missing track, kept id {other.id}")
        # touched but identical content: nothing to recompute
        if old_hash == content_hash and not (need_feat or need_spec):
            lifecycle.mark_indexed(s, track_id, size=st.st_size, mtime=st.st_mtime)
            return ProcessOutcome(track_id, INDEXED, "content unchanged")
        if old_hash is not None and old_hash != content_hash:
            need_feat = need_spec = True  # content changed: everything is recomputed

    result = audio.analyse_file(path, window=window, features=need_feat, spectrogram=need_spec)
    tags = audio.read_tags(path)
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise AudioError("the file changed while it was being analysed; ingest it again once it is complete")

    with db.session() as s:
        if s.get(Track, track_id, with_for_update=True) is None:
            return ProcessOutcome(track_id, "skipped", "track removed during analysis")
        info = result.info
        values = {
            "content_hash": content_hash,
            "size": st.st_size,
            "mtime": st.st_mtime,
            "duration": float(info.duration),
            "sample_rate": int(info.sample_rate),
            "channels": int(info.channels),
            "format": info.format,
            "title": tags.get("title"),
            "artist": tags.get("artist"),
            "album": tags.get("album"),
            "year": tags.get("year"),
            "genre_tag": tags.get("genre"),
        }
        if label_from_tag and tags.get("genre"):
            values.update(label=tags["genre"], label_source="tag")
        if result.features is not None:
            vec = np.asarray(result.features, dtype=np.float64)
            named = {name: float(v) for name, v in zip(FEATURE_NAMES, vec, strict=True)}
            stmt = pg_insert(TrackFeatures).values(
                track_id=track_id, version=feat_v, vec=vec.astype(np.float32), computed_at=func.now(), **named
            )
            s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["track_id"],
                    set_={
                        "version": feat_v,
                        "vec": stmt.excluded.vec,
                        "computed_at": func.now(),
                        **{n: stmt.excluded[n] for n in FEATURE_NAMES},
                    },
                )
            )
        if result.logmel is not None:
            data = audio.encode_spectrogram(result.logmel)
            n_mels, n_frames = result.logmel.shape
            sstmt = pg_insert(Spectrogram).values(
                track_id=track_id, version=spec_v, n_mels=n_mels, n_frames=n_frames, data=data
            )
            s.execute(
                sstmt.on_conflict_do_update(
                    index_elements=["track_id"],
                    set_={
                        "version": spec_v,
                        "n_mels": n_mels,
                        "n_frames": n_frames,
                        "data": data,
                        "computed_at": func.now(),
                    },
                )
            )
        lifecycle.mark_indexed(s, track_id, **values)
    return ProcessOutcome(track_id, INDEXED, None, did_audio_work=True)


def process_tracks(db: Database, track_ids: Iterable[int], **kwargs: Any) -> list[ProcessOutcome]:
    """Analyse tracks in this process (what a worker's job does, without Celery)."""
    return [process_track(db, tid, **kwargs) for tid in track_ids]


def has_active_models(db: Database) -> bool:
    """Whether any trained model is active (then newly indexed tracks need embedding)."""
    with db.engine.connect() as conn:
        return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM model_versions WHERE state = 'active')")).scalar())
