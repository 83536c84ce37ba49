"""What the ingest job's analysis of a track yields, and how a batch of those results is written.

:class:`TrackResult` is one track's result waiting in the processor's buffer (``ingest.process``): its ``tracks``
columns, each stage's output and the versions to record; :func:`write_results` writes a batch in the caller's
transaction: the tracks' columns, status and stage record, then each stage's own rows (``Stage.write``: features,
spectrograms, embeddings and tags, ...), failures and missing files, the library's artists and albums, and a
notification for waiting clients (``IngestService.wait_for`` listens on :data:`NOTIFY_CHANNEL`).
:class:`ProcessOutcome` is what the processor reports per track.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from musicindex.ingest import library, lifecycle
from musicindex.ingest.stages.base import Stage
from musicindex.vocab import FAILED, INDEXED, MISSING

NOTIFY_CHANNEL = "musicindex_ingest"
"""PostgreSQL channel notified when results are written (``IngestService.wait_for`` listens)."""


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
    """``tracks`` columns (the stages' ``columns`` included)."""
    reason: str | None = None
    retryable: bool = False
    """A failure caused by the environment (time limit, lost worker, memory, I/O): retried once automatically."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Each stage's output by stage name (what its ``write`` stores)."""
    versions: dict[str, int] = field(default_factory=dict)
    """The stage versions to record (merged into ``tracks.stage_versions``)."""
    audio_work: bool = False
    """Whether the track's audio was decoded and analysed (not only its tags read again)."""

    @property
    def did_audio_work(self) -> bool:
        return self.audio_work


def notify(s: Session) -> None:
    """Tell waiting clients that results were written (delivered when the transaction commits)."""
    s.execute(text("SELECT pg_notify(:ch, '')"), {"ch": NOTIFY_CHANNEL})


def write_results(s: Session, items: Sequence[TrackResult], stages: Sequence[Stage]) -> set[int]:
    """Write ``items`` in ``s``'s transaction (not committed); returns the ids of the indexed ones whose row was
    still theirs to mark (a track removed or changed meanwhile is not)."""
    indexed = [i for i in items if i.kind == INDEXED]
    rows = []
    for i in indexed:
        row = {"id": i.id, **i.values}
        if i.versions:
            row["stage_versions"] = json.dumps(i.versions, sort_keys=True)
        rows.append(row)
    marked = set(lifecycle.mark_indexed_many(s, rows))
    done = [i for i in indexed if i.id in marked]
    for stage in stages:
        written = [(i.id, i.outputs[stage.name]) for i in done if stage.name in i.outputs]
        if written:
            stage.write(s, written)
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


def db_reason(exc: DBAPIError) -> str:
    """A failed track's reason when the database rejected its data (the first line of the server's message)."""
    first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return f"the database rejected this track's data: {first}"
