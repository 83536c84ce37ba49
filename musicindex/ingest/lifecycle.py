"""A track's status changes: the one explicit flow, and the only code that writes ``tracks.status``.

::

    (new file) --register--> pending --analysed--> indexed
                               |  \\--bad file / too many attempts / rejected by the database--> failed
                               \\--file gone before analysis--> missing
    indexed --re-analysed (newer extractor version)--> indexed
    indexed | failed --changed on disk (size/mtime)--> pending
    failed --ingest --retry-failed, or once by itself when the environment caused it--> pending
    indexed | failed | pending --not seen by a complete scan of its root--> missing
    missing --seen again--> pending
    missing | indexed | failed --its content turns up under a new path (a move)--> indexed

``missing`` means "the file is not there": a file that vanished between the scan and its
analysis is ``missing`` (not ``failed``), so the next ingest that finds it again queues it.
A scan that could not read a folder never turns what lies under it ``missing``.
A file's track is never deleted: a moved file keeps its id (``process.py`` folds the row registered
for the new path into the old one).

``attempts`` counts analyses of the current request that started and never ended (the worker
died or was killed): it is reset when the track is queued anew and when an analysis succeeds.

Besides the per-track functions, registration moves whole sets at once through
:func:`insert_new_from` and :func:`requeue_from` (set-based SQL over a staging table).

The track lock: a worker analysing a track holds a PostgreSQL advisory lock on it
(:func:`try_lock_tracks`; released with the connection, so a dead worker releases it). A track is
**held** by a job when the job's message waits in the broker or is reserved by a worker
(``Dispatcher.queued_ingest_ids``), or when a worker has it locked (:data:`LOCKED_TRACKS_SQL`):
:func:`held_track_ids` is that one definition, which registration (no duplicate jobs) and the
waiter (orphans are queued again) both use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, text, update
from sqlalchemy.orm import Session

from musicindex.db.orm import Track
from musicindex.db.paths import display
from musicindex.vocab import FAILED, INDEXED, MISSING, PENDING

MAX_ERROR_CHARS = 2000
AUTO_RETRIES = 1
"""How often an ingest retries, by itself, a track whose failure came from the environment (``retryable``)."""
TRACK_LOCK_NS = 0x4D49
"""Advisory lock namespace of per-track processing (two-key form: namespace, track id)."""
LOCKED_TRACKS_SQL = (
    "SELECT objid::bigint FROM pg_locks "
    f"WHERE locktype = 'advisory' AND classid = {TRACK_LOCK_NS} AND objsubid = 2 AND granted"
)
"""The ids of the tracks some worker has locked right now (their analysis is running)."""

TRANSITIONS: dict[str | None, tuple[str, ...]] = {
    None: (PENDING,),
    PENDING: (INDEXED, FAILED, MISSING),
    INDEXED: (INDEXED, PENDING, MISSING),
    FAILED: (PENDING, MISSING, INDEXED),  # pending: changed on disk, or retried
    MISSING: (PENDING, INDEXED),
}
"""Allowed status changes (from -> to); :func:`allowed_from` inverts it."""


def allowed_from(to: str) -> tuple[str, ...]:
    """Statuses from which a track may move to ``to``."""
    return tuple(s for s, targets in TRANSITIONS.items() if s is not None and to in targets)


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)  # vocabulary words only, never data


def reason_text(reason: str) -> str:
    """A failure reason as stored: valid UTF-8 (undecodable path bytes as ``\\xNN``), no NUL, bounded."""
    return display(reason).replace("\x00", " ")[:MAX_ERROR_CHARS]


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
    """Changed on disk or seen again: back to ``pending`` (attempts, error and retry marks cleared)."""
    return _move(session, track_ids, PENDING, attempts=0, error=None, retryable=False, auto_retries=0, **values)


def mark_indexed(session: Session, track_id: int, **values: Any) -> int:
    """Analysed and stored (``values``: what the analysis found, e.g. duration, tags); attempts reset."""
    return _move(
        session, [track_id], INDEXED, error=None, attempts=0, retryable=False, auto_retries=0, indexed_at=func.now(),
        **values,
    )  # fmt: skip


def mark_indexed_many(session: Session, rows: Iterable[dict[str, Any]]) -> list[int]:
    """:func:`mark_indexed` for many tracks in few round trips; ``rows``: ``{"id": ..., **values}``.

    Returns the ids that moved (a track deleted or in a status that does not allow it is left alone).
    """
    by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_keys.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
    moved: list[int] = []
    allowed = _sql_list(allowed_from(INDEXED))
    for keys, group in by_keys.items():
        sets = "".join(f", {k} = {_MERGED.get(k, 'v.' + k)}" for k in keys)
        cols = ", ".join(("id", *keys))
        types = {k: _CASTS.get(k, "") for k in keys}
        values_sql = ", ".join(
            "(" + ", ".join([f"CAST(:id_{i} AS bigint)", *(f"CAST(:{k}_{i} AS {types[k]})" for k in keys)]) + ")"
            for i in range(len(group))
        )
        params: dict[str, Any] = {}
        for i, row in enumerate(group):
            params[f"id_{i}"] = int(row["id"])
            for k in keys:
                params[f"{k}_{i}"] = row[k]
        result = session.execute(
            text(
                f"UPDATE tracks t SET status = '{INDEXED}', error = NULL, attempts = 0, retryable = false, "
                f"auto_retries = 0, indexed_at = now(), "
                f"updated_at = now(){sets} FROM (VALUES {values_sql}) AS v({cols}) "
                f"WHERE t.id = v.id AND t.status IN ({allowed}) RETURNING t.id"
            ),
            params,
        )
        moved.extend(int(r[0]) for r in result)
    return moved


_CASTS = {
    "content_hash": "varchar",
    "size": "bigint",
    "mtime": "double precision",
    "duration": "double precision",
    "sample_rate": "integer",
    "channels": "smallint",
    "format": "varchar",
    "title": "text",
    "artist": "text",
    "album": "text",
    "year": "integer",
    "genre_tag": "text",
    "label": "text",
    "label_source": "varchar",
    "album_artist": "text",
    "track_no": "integer",
    "disc_no": "integer",
    "musicbrainz_id": "text",
    "bit_rate": "integer",
    "has_picture": "boolean",
    "genres": "text[]",
    "search_text": "text",
    "search_grams": "integer[]",
    "tags_version": "smallint",
    "stage_versions": "jsonb",
}
"""SQL types of the ``tracks`` columns an analysis writes (for the VALUES list of :func:`mark_indexed_many`)."""
_MERGED = {"stage_versions": "t.stage_versions || v.stage_versions"}
"""Columns merged rather than replaced: the record of the stages that ran joins the others'."""


def mark_failed(session: Session, track_id: int, reason: str, *, retryable: bool = False) -> int:
    """The file cannot be analysed; ``reason`` says why (shown by `musicindex status`). ``retryable``: the cause
    is the environment (a time limit, a lost worker, memory, an I/O error), not the file: the next ingest of its
    folder retries it once by itself (:data:`AUTO_RETRIES`)."""
    return _move(session, [track_id], FAILED, error=reason_text(reason), retryable=retryable)


def mark_failed_many(session: Session, failures: Sequence[tuple[int, str] | tuple[int, str, bool]]) -> int:
    """:func:`mark_failed` for many tracks in one round trip: (id, reason[, retryable])."""
    if not failures:
        return 0
    session.execute(
        text(
            f"UPDATE tracks SET status = '{FAILED}', error = :reason, retryable = :retry, updated_at = now() "
            f"WHERE id = :tid AND status IN ({_sql_list(allowed_from(FAILED))})"
        ),
        [{"tid": int(f[0]), "reason": reason_text(f[1]), "retry": bool(f[2]) if len(f) > 2 else False}
         for f in failures],
    )  # fmt: skip
    return len(failures)


def mark_missing(session: Session, track_ids: Sequence[int], reason: str | None = None) -> int:
    """The file is gone (vanished before analysis, or not seen by a scan of its root)."""
    extra = {"error": reason_text(reason)} if reason is not None else {}
    return _move(session, track_ids, MISSING, **extra)


def count_attempt(session: Session, track_ids: Sequence[int], *, only_fresh: bool = False) -> dict[int, int]:
    """Count an analysis attempt (before it starts; it survives a crash): ``{id: attempts now}``.

    ``only_fresh``: only tracks with no unfinished attempt get one (a batch claim); the others
    keep theirs and are analysed one at a time (:mod:`musicindex.ingest.process`).
    """
    if not track_ids:
        return {}
    cond = "AND attempts = 0" if only_fresh else ""
    rows = session.execute(
        text(f"UPDATE tracks SET attempts = attempts + 1 WHERE id = ANY(:ids) {cond} RETURNING id, attempts"),
        {"ids": [int(t) for t in track_ids]},
    )
    return {int(i): int(a) for i, a in rows}


def uncount_attempt(session: Session, track_ids: Sequence[int]) -> None:
    """An attempt ended by a database outage, not by a crash: it does not count."""
    if track_ids:
        session.execute(
            text("UPDATE tracks SET attempts = greatest(attempts - 1, 0) WHERE id = ANY(:ids)"),
            {"ids": [int(t) for t in track_ids]},
        )


# --------------------------------------------------------------------------- set-based (registration)
def insert_new_from(session: Session, source: str, batch_id: int, into: str) -> int:
    """Register the rows of table ``source`` whose ``id`` is NULL as new ``pending`` tracks.

    ``source`` has columns ``seq, path, path_bytes, size, mtime, label, label_source, id``; the
    new ids (given in ``seq`` order: the scan's) go to table ``into`` (``id, kind``) with kind
    ``n``. A path registered meanwhile by someone else is skipped quietly.
    """
    result = session.execute(
        text(
            f"WITH ins AS (INSERT INTO tracks (path, path_bytes, size, mtime, status, batch_id, label, label_source) "
            f"SELECT path, path_bytes, size, mtime, '{PENDING}', :b, label, label_source FROM {source} "
            f"WHERE id IS NULL ORDER BY seq ON CONFLICT (path, path_bytes) DO NOTHING RETURNING id) "
            f"INSERT INTO {into} (id, kind) SELECT id, 'n' FROM ins"
        ),
        {"b": batch_id},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def retry_failed_from(session: Session, source: str, batch_id: int, into: str, *, every: bool) -> int:
    """Failed tracks matched by ``source`` (``id``) back to ``pending``: all of them when ``every`` (``ingest
    --retry-failed``), else those whose failure came from the environment and that were not retried by themselves
    :data:`AUTO_RETRIES` times yet (counted). Their ids go to ``into`` with kind ``r``."""
    auto = "" if every else f"AND t.retryable AND t.auto_retries < {AUTO_RETRIES} "
    bump = "auto_retries = 0" if every else "auto_retries = t.auto_retries + 1"
    result = session.execute(
        text(
            f"WITH upd AS (UPDATE tracks t SET status = '{PENDING}', attempts = 0, error = NULL, retryable = false, "
            f"{bump}, batch_id = :b, updated_at = now() FROM {source} m "
            f"WHERE t.id = m.id AND t.status = '{FAILED}' {auto}RETURNING t.id) "
            f"INSERT INTO {into} (id, kind) SELECT id, 'r' FROM upd ON CONFLICT (id) DO NOTHING"
        ),
        {"b": batch_id},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def requeue_from(session: Session, source: str, batch_id: int, into: str) -> int:
    """Tracks matched by ``source`` (``id, size, mtime, label, label_source``) whose size or mtime
    differ, or that were ``missing``: back to ``pending`` with the new size and mtime (attempts
    and error cleared); their ids go to ``into`` with kind ``c``."""
    allowed = _sql_list(allowed_from(PENDING))
    result = session.execute(
        text(
            f"WITH upd AS (UPDATE tracks t SET status = '{PENDING}', attempts = 0, error = NULL, retryable = false, "
            f"auto_retries = 0, size = m.size, "
            f"mtime = m.mtime, batch_id = :b, updated_at = now(), "
            f"label = coalesce(m.label, t.label), "
            f"label_source = CASE WHEN m.label IS NULL THEN t.label_source ELSE m.label_source END "
            f"FROM {source} m WHERE t.id = m.id AND t.status IN ({allowed}) AND t.status <> '{PENDING}' "
            f"AND (t.size IS DISTINCT FROM m.size OR t.mtime IS DISTINCT FROM m.mtime OR t.status = '{MISSING}') "
            f"RETURNING t.id) INSERT INTO {into} (id, kind) SELECT id, 'c' FROM upd"
        ),
        {"b": batch_id},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the track lock
def try_lock_tracks(session: Session, track_ids: Sequence[int]) -> set[int]:
    """Take the advisory lock of each of ``track_ids`` that no other connection holds; the ids locked.

    Session-level locks: held until :func:`unlock_all` or until the connection ends (a dead worker's end).
    """
    if not track_ids:
        return set()
    return set(
        session.execute(
            text(
                "SELECT id FROM unnest(CAST(:ids AS bigint[])) AS u(id) "
                "WHERE pg_try_advisory_lock(:ns, CAST(id & 2147483647 AS integer))"
            ),
            {"ids": [int(t) for t in track_ids], "ns": TRACK_LOCK_NS},
        ).scalars()
    )


def unlock_all(session: Session) -> None:
    """Release every track lock of the session's connection."""
    session.execute(text("SELECT pg_advisory_unlock_all()"))


def held_track_ids(cursor: Any, queued: Iterable[int]) -> set[int]:
    """The tracks some job holds: ``queued`` (ids in the broker's waiting and reserved ingest jobs) and those a
    worker has locked. ``cursor``: a DBAPI cursor."""
    cursor.execute(LOCKED_TRACKS_SQL)
    return {int(t) for t in queued} | {int(r[0]) for r in cursor.fetchall()}
