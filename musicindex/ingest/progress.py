"""Progress and status of ingestion: counts by status, a batch's progress, the latest failures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text

from musicindex.db.orm import Track
from musicindex.db.session import Database
from musicindex.vocab import FAILED, INDEXED, MISSING, PENDING, TRACK_STATUSES


@dataclass
class Progress:
    total: int
    indexed: int
    failed: int
    pending: int
    missing: int
    requeued: int = 0
    """Files queued again while waiting because no job held them any more (``wait_for``)."""

    @property
    def done(self) -> int:
        return self.total - self.pending


def progress(db: Database, track_ids: Sequence[int]) -> Progress:
    """How far the analysis of ``track_ids`` has come."""
    counts = dict.fromkeys(TRACK_STATUSES, 0)
    ids = list(track_ids)
    with db.session() as s:
        for i in range(0, len(ids), 100_000):
            for status, n in s.execute(
                text("SELECT status, count(*) FROM tracks WHERE id = ANY(CAST(:ids AS bigint[])) GROUP BY status"),
                {"ids": [int(t) for t in ids[i : i + 100_000]]},
            ):
                counts[status] = counts.get(status, 0) + n
    seen = sum(counts.values())
    # ids deleted by a move are done (their content lives on under the old id)
    return Progress(
        total=len(ids),
        indexed=counts[INDEXED] + (len(ids) - seen),
        failed=counts[FAILED],
        pending=counts[PENDING],
        missing=counts[MISSING],
    )


def status_counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {str(k): int(v) for k, v in s.execute(select(Track.status, func.count()).group_by(Track.status))}


def latest_failures(db: Database, limit: int = 10) -> list[tuple[str, str]]:
    with db.session() as s:
        rows = s.execute(
            select(Track.path, Track.error).where(Track.status == FAILED).order_by(Track.updated_at.desc()).limit(limit)
        )
        return [(r.path, r.error or "") for r in rows]
