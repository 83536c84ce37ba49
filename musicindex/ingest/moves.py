"""Moves: a new file whose content is that of a track whose file is gone is that track, moved.

The ingest pass (``ingest.process``) calls :func:`move_if_twin` for a new track once its content hash is known:
the old row takes the new path and keeps its id and everything derived from it (features, embeddings, stars,
playlists), in its own transaction.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from musicindex.db.orm import Track
from musicindex.db.paths import fs_path
from musicindex.ingest import library, lifecycle
from musicindex.ingest.results import ProcessOutcome, notify
from musicindex.vocab import MISSING, PENDING


def move_if_twin(
    s: Session, track_id: int, path: str, path_bytes: bytes | None, content_hash: str, st: os.stat_result
) -> ProcessOutcome | None:
    """A track with the same content whose file is gone keeps its id and data: the new row ``track_id`` folds into
    it (committed; returns the outcome), else nothing happens (rolled back; None)."""
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
        if other.status == MISSING or not os.path.exists(fs_path(other.path, other.path_bytes)):
            new = s.get(Track, track_id)
            assert new is not None
            label, label_source = new.label, new.label_source
            s.delete(new)
            s.flush()
            values: dict[str, Any] = {"path": path, "path_bytes": path_bytes, "size": st.st_size, "mtime": st.st_mtime}
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
