"""Registration: one transaction that records what a scan found and decides what needs audio work.

New paths are inserted as ``pending``; changed ones (size or mtime differ) and ``missing``
ones seen again go back to ``pending``; tracks under the roots that the scan did not see
become ``missing``; folder/CSV labels are set. Registrations are serialised by an
advisory lock. Unchanged files (same path, size and mtime, results of the current
extractor versions) need no work.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from musicindex.db.orm import IngestBatch, Spectrogram, Track, TrackFeatures
from musicindex.db.session import Database
from musicindex.ingest import lifecycle
from musicindex.ingest.labels import LabelSource, LabelSpec
from musicindex.ingest.scan import absolute_roots, scan
from musicindex.vocab import INDEXED, MISSING, PENDING

REGISTER_LOCK = 0x6D75736963
"""Advisory lock key serialising registrations ('music')."""


@dataclass
class RegisterResult:
    batch_id: int
    scanned: int
    queued_ids: list[int]
    new: int
    changed: int
    unchanged: int
    missing: int
    ignored: int
    skipped_links: int
    loops: int
    scan_errors: list[str]


def current_versions() -> tuple[int, int]:
    """(features, spectrogram) extractor versions of this code."""
    from musicindex.audio import FEATURES_VERSION, SPECTROGRAM_VERSION

    return FEATURES_VERSION, SPECTROGRAM_VERSION


def register(
    db: Database,
    roots: Sequence[str | os.PathLike[str]],
    *,
    label_from: LabelSpec = None,
    follow_symlinks: bool = False,
    reanalyse_outdated: bool = True,
) -> RegisterResult:
    """Scan ``roots`` and register what needs audio work, in one transaction.

    Returns the ids to analyse: new files, changed ones (size or mtime differ), those
    still pending from an earlier batch, and (``reanalyse_outdated``) indexed tracks whose
    features or spectrogram were made by an older extractor version.
    """
    labels = LabelSource(label_from)
    report = scan(roots, follow_symlinks=follow_symlinks)
    feat_v, spec_v = current_versions()
    abs_roots = absolute_roots(roots)

    with db.session() as s:
        s.execute(select(func.pg_advisory_xact_lock(REGISTER_LOCK)))
        batch = IngestBatch(roots=abs_roots, scanned=len(report.files))
        s.add(batch)
        s.flush()

        by_path = {f.path: f for f in report.files}
        existing: dict[str, Any] = {}
        paths = list(by_path)
        for i in range(0, len(paths), 5000):
            for row in s.execute(
                select(Track.id, Track.path, Track.size, Track.mtime, Track.status, Track.label_source).where(
                    Track.path.in_(paths[i : i + 5000])
                )
            ):
                existing[row.path] = row

        new_rows: list[dict[str, Any]] = []
        changed_ids: list[int] = []
        pending_ids: list[int] = []
        unchanged = 0
        for f in report.files:
            label, source = labels.label_for(f.path)
            if f.path not in existing:
                new_rows.append(
                    {
                        "path": f.path,
                        "size": f.size,
                        "mtime": f.mtime,
                        "status": PENDING,
                        "batch_id": batch.id,
                        "label": label,
                        "label_source": source,
                    }
                )
                continue
            row = existing[f.path]
            values: dict[str, Any] = {}
            if labels.kind in ("folder", "csv") and label is not None:
                values.update(label=label, label_source=source)
            if row.size != f.size or row.mtime != f.mtime or row.status == MISSING:
                lifecycle.requeue(s, [row.id], size=f.size, mtime=f.mtime, batch_id=batch.id, **values)
                changed_ids.append(row.id)
                continue
            if row.status == PENDING:
                values.update(batch_id=batch.id)
                pending_ids.append(row.id)
            else:
                unchanged += 1
            if values:
                s.execute(update(Track).where(Track.id == row.id).values(updated_at=func.now(), **values))

        new_ids: list[int] = []
        for i in range(0, len(new_rows), 2000):
            # a concurrent registration of the same path (outside our lock: a direct API user) wins quietly
            stmt = pg_insert(Track).values(new_rows[i : i + 2000]).on_conflict_do_nothing(index_elements=["path"])
            new_ids.extend(s.execute(stmt.returning(Track.id)).scalars())

        # tracks under these roots whose file was not seen: missing (never deleted)
        missing = 0
        for root in abs_roots:
            prefix = root.rstrip(os.sep) + os.sep
            q = (
                select(Track.id, Track.path)
                .where(Track.status != MISSING)
                .where((Track.path == root) | (func.left(Track.path, len(prefix)) == prefix))
            )
            gone = [r.id for r in s.execute(q) if r.path not in by_path]
            missing += lifecycle.mark_missing(s, gone)

        outdated_ids: list[int] = []
        if reanalyse_outdated:
            known = set(changed_ids) | set(pending_ids)
            outdated_ids = [i for i in outdated_track_ids(s, feat_v, spec_v, roots=abs_roots) if i not in known]

        queued = new_ids + changed_ids + pending_ids + outdated_ids
        batch.queued = len(queued)
        batch.unchanged = unchanged - len(outdated_ids)
        batch.missing = missing
        return RegisterResult(
            batch_id=batch.id,
            scanned=len(report.files),
            queued_ids=queued,
            new=len(new_ids),
            changed=len(changed_ids) + len(pending_ids) + len(outdated_ids),
            unchanged=unchanged - len(outdated_ids),
            missing=missing,
            ignored=report.ignored,
            skipped_links=len(report.skipped_links),
            loops=len(report.loops),
            scan_errors=report.errors,
        )


def outdated_track_ids(session: Session, feat_v: int, spec_v: int, roots: Sequence[str] | None = None) -> list[int]:
    """Indexed tracks whose features or spectrogram come from an older extractor version."""
    q = (
        select(Track.id)
        .outerjoin(TrackFeatures, TrackFeatures.track_id == Track.id)
        .outerjoin(Spectrogram, Spectrogram.track_id == Track.id)
        .where(Track.status == INDEXED)
        .where(
            (TrackFeatures.version.is_(None))
            | (TrackFeatures.version < feat_v)
            | (Spectrogram.version.is_(None))
            | (Spectrogram.version < spec_v)
        )
    )
    if roots:
        prefixes = [r.rstrip(os.sep) + os.sep for r in roots]
        q = q.where(or_(*(func.left(Track.path, len(p)) == p for p in prefixes)))
    return list(session.execute(q.order_by(Track.id)).scalars())
