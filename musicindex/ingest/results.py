"""What the ingest job's analysis of a track yields, and how a batch of those results is written.

:class:`TrackResult` is one track's result waiting in the processor's buffer (``ingest.process``);
:func:`write_results` writes a batch in the caller's transaction: the tracks' columns and status, their 43
features, spectrograms, musicnn embeddings and tags, failures and missing files, the library's artists and
albums, and a notification for waiting clients (``IngestService.wait_for`` listens on :data:`NOTIFY_CHANNEL`).
:class:`ProcessOutcome` is what the processor reports per track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from musicindex.audio.spectrogram import encode as encode_spectrogram
from musicindex.db.orm import Spectrogram, TrackFeatures
from musicindex.db.upsert import upsert
from musicindex.ingest import library, lifecycle
from musicindex.ingest.embedding import EmbeddingPass, upsert_rows
from musicindex.vocab import FAILED, FEATURE_NAMES, INDEXED, MISSING

NOTIFY_CHANNEL = "musicindex_ingest"
"""PostgreSQL channel notified when results are written (``IngestService.wait_for`` listens)."""
NOW = {"computed_at": func.now()}


@dataclass
class ProcessOutcome:
    track_id: int
    status: str  # indexed | failed | missing | skipped | moved
    reason: str | None = None
    did_audio_work: bool = False


@dataclass
class TrackResult:
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

    @property
    def did_audio_work(self) -> bool:
        return self.features is not None or self.logmel is not None


def notify(s: Session) -> None:
    """Tell waiting clients that results were written (delivered when the transaction commits)."""
    s.execute(text("SELECT pg_notify(:ch, '')"), {"ch": NOTIFY_CHANNEL})


def write_results(
    s: Session, items: Sequence[TrackResult], feat_v: int, spec_v: int, embedding: EmbeddingPass | None
) -> set[int]:
    """Write ``items`` in ``s``'s transaction (not committed); returns the ids of the indexed ones whose row was
    still theirs to mark (a track removed or changed meanwhile is not)."""
    indexed = [i for i in items if i.kind == INDEXED]
    marked = set(lifecycle.mark_indexed_many(s, [{"id": i.id, **i.values} for i in indexed]))
    done = [i for i in indexed if i.id in marked]
    features = [feature_row(i.id, feat_v, i.features) for i in done if i.features is not None]
    upsert(s, TrackFeatures, features, keys=("track_id",), update=("version", "vec", *FEATURE_NAMES), also_set=NOW)
    specs = [spectrogram_row(i.id, spec_v, i.logmel) for i in done if i.logmel is not None]
    upsert(s, Spectrogram, specs, keys=("track_id",), update=("version", "n_mels", "n_frames", "data"), also_set=NOW)
    embedded = [(i.id, i.embedding) for i in done if i.embedding is not None]
    if embedded and embedding is not None:
        ids, vectors = zip(*embedded, strict=True)
        emb, probs = np.stack([v[0] for v in vectors]), np.stack([v[1] for v in vectors])
        upsert_rows(s, embedding.version_id, ids, emb, probs, embedding.tag_names)
    lifecycle.mark_failed_many(s, [(i.id, i.reason or "failed", i.retryable) for i in items if i.kind == FAILED])
    for i in items:
        if i.kind == MISSING:
            lifecycle.mark_missing(s, [i.id], i.reason)
    touched = library.assign(s, [i.id for i in done])
    touched |= library.albums_of(s, [i.id for i in items if i.kind in (FAILED, MISSING)])
    library.refresh_albums(s, touched, covers=True)
    notify(s)
    return marked


def outcome_of(item: TrackResult, marked: set[int]) -> ProcessOutcome:
    """The outcome to report for a written result (``marked``: what :func:`write_results` returned)."""
    if item.kind == INDEXED and item.id not in marked:
        return ProcessOutcome(item.id, "skipped", "track removed or changed during analysis")
    if item.kind == INDEXED:
        return ProcessOutcome(item.id, INDEXED, item.reason, did_audio_work=item.did_audio_work)
    return ProcessOutcome(item.id, item.kind, item.reason)


def feature_row(track_id: int, version: int, features: np.ndarray) -> dict[str, Any]:
    """A ``track_features`` row: the 43 features as named columns and as one vector."""
    vec = np.asarray(features, dtype=np.float64)
    named = {name: float(v) for name, v in zip(FEATURE_NAMES, vec, strict=True)}
    return {"track_id": track_id, "version": version, "vec": vec.astype(np.float32), **named}


def spectrogram_row(track_id: int, version: int, logmel: np.ndarray) -> dict[str, Any]:
    """A ``spectrograms`` row: the compact encoding of the log-mel spectrogram."""
    n_mels, n_frames = logmel.shape
    return {"track_id": track_id, "version": version, "n_mels": n_mels, "n_frames": n_frames,
            "data": encode_spectrogram(logmel)}  # fmt: skip


def db_reason(exc: DBAPIError) -> str:
    """A failed track's reason when the database rejected its data (the first line of the server's message)."""
    first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return f"the database rejected this track's data: {first}"
