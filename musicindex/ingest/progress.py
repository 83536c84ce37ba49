"""Progress and status of ingestion: counts by status, a batch's progress, the latest failures, the latest batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

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
    embedded: int | None = None
    """Of the indexed ones, those the preferred embedding model's space answers for (its newest version; musicnn by
    default); None: not counted."""

    @property
    def done(self) -> int:
        return self.total - self.pending

    @property
    def unembedded(self) -> int:
        """Indexed files the default space cannot answer for yet."""
        return 0 if self.embedded is None else max(0, self.indexed - self.embedded)


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


@dataclass
class StatusReport:
    counts: dict[str, int]
    failures: list[tuple[str, str]]
    queues: dict[str, int]
    workers: list[str]
    embedding: dict[str, Any] | None = None
    """Coverage of the preferred embedding model's space (musicnn by default): version, state, embedded and indexed
    tracks (``MusicIndex.status``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


BATCH_COLUMNS = "id, roots, created_at, finished_at, scanned, queued, unchanged, moved, missing"


def _batch(b: Any) -> dict[str, Any]:
    return {
        "id": int(b[0]),
        "roots": list(b[1] or []),
        "created_at": b[2].isoformat() if b[2] is not None else None,
        "finished_at": b[3].isoformat() if b[3] is not None else None,
        "scanned": b[4],
        "queued": b[5],
        "unchanged": b[6],
        "moved": b[7],
        "missing": b[8],
    }


def ingest_progress(db: Database) -> dict[str, Any]:
    """The latest real ingest batch (the latest that queued files, or the latest of all when none did) and how far
    the analysis of the files it queued has come (``counts`` by status, ``done`` of ``total``), the analysis rate
    over the last minute and an ETA; ``last_scan``: the latest batch of all (a re-scan that found nothing new
    leaves ``batch`` on the ingest before it); every root ever ingested (``roots``: what a re-scan may scan)."""
    with db.session() as s:
        roots = sorted({str(r) for (rs,) in s.execute(text("SELECT roots FROM ingest_batches")) for r in (rs or [])})
        last = s.execute(text(f"SELECT {BATCH_COLUMNS} FROM ingest_batches ORDER BY id DESC LIMIT 1")).first()
        b = last
        if last is not None and last[5] is not None and last[5] == 0:  # registered, nothing queued: a no-op scan
            b = (
                s.execute(
                    text(f"SELECT {BATCH_COLUMNS} FROM ingest_batches WHERE queued > 0 ORDER BY id DESC LIMIT 1")
                ).first()
                or last
            )
        if b is None:
            return {
                "batch": None, "last_scan": None, "roots": roots, "counts": {}, "total": 0, "done": 0,
                "rate_per_s": 0.0,
            }  # fmt: skip
        counts = {
            str(st): int(n)
            for st, n in s.execute(
                text("SELECT status, count(*) FROM tracks WHERE batch_id = :b GROUP BY status"), {"b": int(b[0])}
            )
        }
        recent = s.execute(
            text("SELECT count(*) FROM tracks WHERE batch_id = :b AND indexed_at > now() - interval '60 seconds'"),
            {"b": int(b[0])},
        ).scalar_one()
    total = int(b[5] or 0)
    pending = counts.get(PENDING, 0)
    rate = int(recent) / 60.0
    return {
        "batch": _batch(b),
        "last_scan": _batch(last),
        "roots": roots,
        "counts": counts,
        "total": total,
        "done": max(0, total - pending),
        "pending": pending,
        "rate_per_s": rate,
        "eta_seconds": (pending / rate) if pending and rate > 0 else None,
    }
