"""A track's status changes: the one explicit flow, and the only code that writes ``tracks.status``.

::

    (new file) --register--> pending --analysed--> indexed
                               |  \\--bad file / too many attempts--> failed
                               \\--file gone before analysis--> missing
    indexed --re-analysed (newer extractor version)--> indexed
    indexed | failed --changed on disk (size/mtime)--> pending
    indexed | failed | pending --not seen by a complete scan of its root--> missing
    missing --seen again--> pending
    missing | indexed | failed --its content turns up under a new path (a move)--> indexed

``missing`` means "the file is not there": a file that vanished between the scan and its
analysis is ``missing`` (not ``failed``), so the next ingest that finds it again queues it.
A file's track is never deleted: a moved file keeps its id (``process.py`` folds the row registered
for the new path into the old one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from musicindex.db.orm import Track
from musicindex.vocab import FAILED, INDEXED, MISSING, PENDING

MAX_ERROR_CHARS = 2000

TRANSITIONS: dict[str | None, tuple[str, ...]] = {
    None: (PENDING,),
    PENDING: (INDEXED, FAILED, MISSING),
    INDEXED: (INDEXED, PENDING, MISSING),
    FAILED: (PENDING, MISSING, INDEXED),
    MISSING: (PENDING, INDEXED),
}
"""Allowed status changes (from -> to); :func:`allowed_from` inverts it."""


def allowed_from(to: str) -> tuple[str, ...]:
    """Statuses from which a track may move to ``to``."""
    return tuple(s for s, targets in TRANSITIONS.items() if s is not None and to in targets)


def _move(session: Session, track_ids: Sequence[int], to: str, **values: Any) -> int:
    """Set ``to`` on those of ``track_ids`` whose status allows it; returns how many moved."""
    if not track_ids:
        return 0
    result = session.execute(
        update(Track)
        .where(Track.id.in_([int(t) for t in track_ids]), Track.status.in_(allowed_from(to)))
        .values(status=to, updated_at=func.now(), **values)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def requeue(session: Session, track_ids: Sequence[int], **values: Any) -> int:
    """Changed on disk or seen again: back to ``pending`` (attempts and error cleared)."""
    return _move(session, track_ids, PENDING, attempts=0, error=None, **values)


def mark_indexed(session: Session, track_id: int, **values: Any) -> int:
    """Analysed and stored (``values``: what the analysis found, e.g. duration, tags)."""
    return _move(session, [track_id], INDEXED, error=None, indexed_at=func.now(), **values)


def mark_failed(session: Session, track_id: int, reason: str) -> int:
    """The file cannot be analysed; ``reason`` says why (shown by `musicindex status`)."""
    return _move(session, [track_id], FAILED, error=reason[:MAX_ERROR_CHARS])


def mark_missing(session: Session, track_ids: Sequence[int], reason: str | None = None) -> int:
    """The file is gone (vanished before analysis, or not seen by a scan of its root)."""
    extra = {"error": reason[:MAX_ERROR_CHARS]} if reason is not None else {}
    return _move(session, track_ids, MISSING, **extra)
