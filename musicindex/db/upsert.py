"""One upsert: insert rows, replacing chosen columns of the rows that already exist (``ON CONFLICT DO UPDATE``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

BATCH = 1000
"""Rows per statement."""


def upsert(
    session: Session,
    model: Any,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str],
    also_set: Mapping[str, Any] | None = None,
    batch: int = BATCH,
) -> int:
    """Insert ``rows`` into ``model``'s table; a row whose ``keys`` exist replaces the ``update`` columns (and sets
    ``also_set``, e.g. ``{"computed_at": func.now()}``). In batches of ``batch`` rows; returns how many rows."""
    if not rows:
        return 0
    stmt = pg_insert(model)
    values = {c: stmt.excluded[c] for c in update}
    values.update(also_set or {})
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=values)
    for i in range(0, len(rows), batch):
        session.execute(stmt, list(rows[i : i + batch]))
    return len(rows)
