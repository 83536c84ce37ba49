"""Registration: one transaction that records what a scan found and decides what needs audio work.

New paths are inserted as ``pending``; changed ones (size or mtime differ) and ``missing``
ones seen again go back to ``pending``; tracks under the roots that the scan did not see
become ``missing`` -- unless the scan could not read the folder they lie in (permission
denied, an I/O error) or the root came back empty (an unmounted mount point looks like an
empty folder); folder/CSV labels are set. Unchanged files (same path, size and mtime,
results of the current extractor versions) need no work.

Set-based, for libraries of millions of files: the scan is streamed (``scan.iter_scan``)
straight into a temporary staging table with ``COPY``, and every decision is one SQL
statement over that table, so memory stays bounded and the cost is a few passes over the
table whatever the size. Registrations are serialised by an advisory lock.

Tracks that are still ``pending`` from an earlier registration are waited for, but not
queued again while a job holds them (``held``: the ids in the broker's waiting and
reserved ingest jobs, plus those a worker has locked): running ``ingest`` again while the
first batch is queued adds no duplicate jobs.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from musicindex.db.orm import Spectrogram, Track, TrackFeatures
from musicindex.db.session import Database
from musicindex.ingest import lifecycle
from musicindex.ingest.labels import LabelSource, LabelSpec
from musicindex.ingest.paths import display, raw_bytes
from musicindex.ingest.scan import ScannedFile, ScanReport, absolute_roots, iter_scan, outermost
from musicindex.vocab import INDEXED, MISSING, PENDING

REGISTER_LOCK = 0x6D75736963
"""Advisory lock key serialising registrations ('music')."""
TRACK_LOCK_NS = 0x4D49
"""Advisory lock namespace of per-track processing (two-key form: namespace, track id)."""


@dataclass
class RegisterResult:
    batch_id: int
    scanned: int
    queued_ids: list[int]
    """Every track this registration waits for: new, changed, still pending, outdated."""
    new: int
    changed: int
    unchanged: int
    missing: int
    ignored: int
    skipped_links: int
    loops: int
    scan_errors: list[str]
    still_pending: int = 0
    """Tracks still pending from an earlier registration (waited for; queued again only if no job holds them)."""
    send_ids: list[int] = field(default_factory=list)
    """Those of ``queued_ids`` that need a job: all but the ones a live job already holds."""
    held: int = 0
    """Tracks still pending from an earlier registration whose job is waiting or running."""
    protected: int = 0
    """Tracks not marked missing because the scan could not read where they lie."""
    roots: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def current_versions() -> tuple[int, int]:
    """(features, spectrogram) extractor versions of this code."""
    from musicindex.audio import FEATURES_VERSION, SPECTROGRAM_VERSION

    return FEATURES_VERSION, SPECTROGRAM_VERSION


# --------------------------------------------------------------------------- COPY
def _copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, float):
        return repr(value)
    s = str(value)
    if "\\" in s or "\n" in s or "\r" in s or "\t" in s:
        s = s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return s


class _CopyStream(io.TextIOBase):
    """A read-only text stream of COPY rows made lazily from an iterator of tuples (bounded memory)."""

    def __init__(self, rows: Iterator[tuple[Any, ...]]):
        self._rows = rows
        self._buf = ""
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        want = 1 << 16 if size is None or size < 0 else size
        parts = [self._buf]
        have = len(self._buf)
        try:
            for row in self._rows:
                line = "\t".join(_copy_text(v) for v in row) + "\n"
                parts.append(line)
                have += len(line)
                if have >= want:
                    break
        except Exception as exc:  # psycopg2 turns it into "COPY failed": keep it to raise it as it was
            self.error = exc
            raise
        data = "".join(parts)
        self._buf = data[want:]
        return data[:want]


def dbapi(session: Session) -> Any:
    """The psycopg2 connection under ``session`` (in its transaction): for COPY and server-side cursors."""
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    return raw


def copy_rows(session: Session, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows``, streamed."""
    stream = _CopyStream(iter(rows))
    with dbapi(session).cursor() as cur:
        try:
            cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", stream)
        except Exception:
            if stream.error is not None:
                raise stream.error from None
            raise


def _scan_rows(files: Iterator[ScannedFile], labels: LabelSource) -> Iterator[tuple[Any, ...]]:
    for f in files:
        path = display(f.path)
        label, source = labels.label_for(path)
        yield (path, raw_bytes(f.path), f.size, float(f.mtime), None if label is None else display(label), source)


# --------------------------------------------------------------------------- register
def register(
    db: Database,
    roots: Sequence[str | os.PathLike[str]],
    *,
    label_from: LabelSpec = None,
    follow_symlinks: bool = False,
    reanalyse_outdated: bool = True,
    scopes: Sequence[str] | None = None,
    on_scan: Callable[[ScanReport], None] | None = None,
    held: Callable[[], Iterable[int]] | None = None,
) -> RegisterResult:
    """Scan ``roots`` and register what needs audio work, in one transaction.

    Returns the ids to analyse: new files, changed ones (size or mtime differ), those
    still pending from an earlier batch, and (``reanalyse_outdated``) indexed tracks whose
    features or spectrogram were made by an older extractor version.

    ``scopes`` (paths under the roots: what a watcher saw change) limits the scan, and the
    tracks that may turn missing, to those paths. ``on_scan(report)`` is called while a long
    scan runs. ``held()`` returns the ids some job already holds (the broker's ingest jobs):
    tracks still pending from an earlier registration are queued again only when no job holds them.
    """
    labels = LabelSource(label_from)
    report = ScanReport()
    feat_v, spec_v = current_versions()
    abs_roots = outermost(absolute_roots(roots))
    timings: dict[str, float] = {}
    files = iter_scan(roots, follow_symlinks=follow_symlinks, report=report, scopes=scopes, on_progress=on_scan)

    with db.session() as s:
        s.execute(text("SET LOCAL work_mem = '256MB'"))
        s.execute(
            text(
                "CREATE TEMP TABLE mi_stage (seq bigserial, path text NOT NULL, path_bytes bytea, size bigint, "
                "mtime double precision, label text, label_source text) ON COMMIT DROP"
            )
        )
        t0 = time.perf_counter()
        columns = ("path", "path_bytes", "size", "mtime", "label", "label_source")
        copy_rows(s, "mi_stage", columns, _scan_rows(files, labels))
        timings["scan"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        s.execute(text("ANALYZE mi_stage"))
        s.execute(select(func.pg_advisory_xact_lock(REGISTER_LOCK)))
        batch_id = int(
            s.execute(
                text("INSERT INTO ingest_batches (roots, scanned) VALUES (CAST(:r AS jsonb), :n) RETURNING id"),
                {"r": _json([display(r) for r in abs_roots]), "n": report.n_files},
            ).scalar_one()
        )
        s.execute(
            text(
                "CREATE TEMP TABLE mi_match ON COMMIT DROP AS "
                "SELECT s.seq, s.path, s.path_bytes, s.size, s.mtime, s.label, s.label_source, t.id, "
                "t.status AS old_status, "
                "(t.size IS DISTINCT FROM s.size OR t.mtime IS DISTINCT FROM s.mtime) AS differs "
                "FROM mi_stage s LEFT JOIN tracks t "
                "ON t.path = s.path AND t.path_bytes IS NOT DISTINCT FROM s.path_bytes"
            )
        )
        s.execute(text("CREATE TEMP TABLE mi_queue (id bigint PRIMARY KEY, kind char(1), held boolean) ON COMMIT DROP"))
        new = lifecycle.insert_new_from(s, "mi_match", batch_id, "mi_queue")
        changed = lifecycle.requeue_from(s, "mi_match", batch_id, "mi_queue")
        # still pending from an earlier registration: waited for (and its size/mtime kept current)
        s.execute(
            text(
                "UPDATE tracks t SET size = m.size, mtime = m.mtime, updated_at = now() FROM mi_match m "
                f"WHERE t.id = m.id AND t.status = '{PENDING}' AND m.differs"
            )
        )
        pending = s.execute(
            text(
                "INSERT INTO mi_queue (id, kind) SELECT m.id, 'p' FROM mi_match m JOIN tracks t ON t.id = m.id "
                f"WHERE t.status = '{PENDING}' ON CONFLICT (id) DO NOTHING"
            )
        ).rowcount  # type: ignore[attr-defined]
        if labels.kind in ("folder", "csv"):
            s.execute(
                text(
                    "UPDATE tracks t SET label = m.label, label_source = m.label_source, updated_at = now() "
                    "FROM mi_match m WHERE t.id = m.id AND m.label IS NOT NULL "
                    "AND (t.label IS DISTINCT FROM m.label OR t.label_source IS DISTINCT FROM m.label_source)"
                )
            )
        scope = scopes if scopes is not None else abs_roots
        missing, protected = _mark_missing(s, report, scope, scopes is None)
        outdated = 0
        if reanalyse_outdated:
            outdated = _queue_outdated(s, feat_v, spec_v, scope)
        unchanged = int(
            s.execute(
                text(
                    "SELECT count(*) FROM mi_match m WHERE m.id IS NOT NULL "
                    "AND NOT EXISTS (SELECT 1 FROM mi_queue q WHERE q.id = m.id)"
                )
            ).scalar_one()
        )
        held_count = _mark_held(s, held) if pending else 0
        queued, send = _queued_ids(s)
        s.execute(
            text("UPDATE ingest_batches SET queued = :q, unchanged = :u, missing = :m WHERE id = :b"),
            {"q": len(queued), "u": unchanged, "m": missing, "b": batch_id},
        )
        timings["register"] = time.perf_counter() - t1
    return RegisterResult(
        batch_id=batch_id,
        scanned=report.n_files,
        queued_ids=queued,
        new=new,
        changed=changed + outdated,
        unchanged=unchanged,
        missing=missing,
        ignored=report.ignored,
        skipped_links=len(report.skipped_links),
        loops=len(report.loops),
        scan_errors=report.errors,
        still_pending=int(pending),
        send_ids=send,
        held=held_count,
        protected=protected,
        roots=abs_roots,
        timings=timings,
    )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _mark_missing(s: Session, report: ScanReport, under: Sequence[str], whole_roots: bool) -> tuple[int, int]:
    """Tracks under ``under`` the scan did not see become missing; (how many, how many protected).

    Protected (left as they are): tracks under a path the scan could not read, and tracks of a
    root that came back holding no file at all (an unmounted mount point looks like that).
    """
    unreadable = {display(p).rstrip(os.sep) for p in report.unreadable}
    empty = {display(p) for p in report.empty_roots} if whole_roots else set()
    conds, params = _under_sql(under, "t.path", pyformat=True)
    if not conds:
        return 0, 0
    raw = dbapi(s)
    sql = (
        f"SELECT t.id, t.path FROM tracks t WHERE t.status <> '{MISSING}' AND ({conds}) "
        "AND NOT EXISTS (SELECT 1 FROM mi_stage m "
        "WHERE m.path = t.path AND m.path_bytes IS NOT DISTINCT FROM t.path_bytes)"
    )
    gone: list[int] = []
    protected = 0
    with raw.cursor(name="mi_missing") as cur:  # server-side: a large unreadable folder does not fill memory
        cur.itersize = 20000
        cur.execute(sql, params)
        for tid, path in cur:
            if _protected(path, unreadable, empty):
                protected += 1
            else:
                gone.append(int(tid))
    missing = 0
    for i in range(0, len(gone), 20000):
        missing += lifecycle.mark_missing(s, gone[i : i + 20000])
    if protected:
        where = sorted(unreadable | empty)[:3]
        report.errors.append(
            f"{protected} tracks not marked missing: the scan could not read where they lie, or their folder "
            f"came back empty (an unmounted mount point?): {', '.join(where)}"
        )
    return missing, protected


def _under_sql(under: Sequence[str], column: str, *, pyformat: bool = False) -> tuple[str, dict[str, Any]]:
    """SQL condition "``column`` is one of ``under`` or lies under one of them", and its parameters."""
    conds = []
    params: dict[str, Any] = {}
    for i, root in enumerate(display(str(u)) for u in under):
        prefix = root.rstrip(os.sep) + os.sep
        r, n, p = (f"%(r{i})s", f"%(n{i})s", f"%(p{i})s") if pyformat else (f":r{i}", f":n{i}", f":p{i}")
        conds.append(f"({column} = {r} OR left({column}, {n}) = {p})")
        params.update({f"r{i}": root, f"n{i}": len(prefix), f"p{i}": prefix})
    return " OR ".join(conds), params


def _queue_outdated(s: Session, feat_v: int, spec_v: int, under: Sequence[str]) -> int:
    """Indexed tracks under ``under`` whose features or spectrogram come from an older extractor: queued."""
    conds, params = _under_sql(under, "t.path")
    if not conds:
        return 0
    return int(
        s.execute(
            text(
                "INSERT INTO mi_queue (id, kind) SELECT t.id, 'o' FROM tracks t "
                "LEFT JOIN track_features f ON f.track_id = t.id LEFT JOIN spectrograms sp ON sp.track_id = t.id "
                f"WHERE t.status = '{INDEXED}' AND ({conds}) "
                "AND (f.version IS NULL OR f.version < :fv OR sp.version IS NULL OR sp.version < :sv) "
                "ON CONFLICT (id) DO NOTHING"
            ),
            {**params, "fv": feat_v, "sv": spec_v},
        ).rowcount  # type: ignore[attr-defined]
        or 0
    )


def _protected(path: str, unreadable: set[str], empty: set[str]) -> bool:
    if not unreadable and not empty:
        return False
    p = path
    while True:
        if p in unreadable or p in empty:
            return True
        parent = os.path.dirname(p)
        if parent == p or not parent:
            return False
        p = parent


def _mark_held(s: Session, held: Callable[[], Iterable[int]] | None) -> int:
    """Flag the still-pending tracks some job holds (in the broker, or locked by a worker); how many."""
    s.execute(text("CREATE TEMP TABLE mi_held (id bigint) ON COMMIT DROP"))
    ids: Iterable[int] = held() if held is not None else ()
    copy_rows(s, "mi_held", ("id",), ((int(i),) for i in ids))
    s.execute(
        text(
            "INSERT INTO mi_held SELECT objid::bigint FROM pg_locks "
            "WHERE locktype = 'advisory' AND classid = :ns AND objsubid = 2 AND granted"
        ),
        {"ns": TRACK_LOCK_NS},
    )
    return int(
        s.execute(
            text("UPDATE mi_queue q SET held = true WHERE q.kind = 'p' AND q.id IN (SELECT id FROM mi_held)")
        ).rowcount  # type: ignore[attr-defined]
        or 0
    )


def _queued_ids(s: Session) -> tuple[list[int], list[int]]:
    """(every queued id, those needing a job), in id order, streamed out of the database."""
    raw = dbapi(s)
    buf = io.StringIO()
    with raw.cursor() as cur:
        cur.copy_expert("COPY (SELECT id, coalesce(held, false) FROM mi_queue ORDER BY id) TO STDOUT", buf)
    queued: list[int] = []
    send: list[int] = []
    for line in buf.getvalue().splitlines():
        tid, is_held = line.split("\t")
        queued.append(int(tid))
        if is_held != "t":
            send.append(int(tid))
    return queued, send


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
        conds = []
        for r in roots:
            root = display(str(r))
            prefix = root.rstrip(os.sep) + os.sep
            conds.append((Track.path == root) | (func.left(Track.path, len(prefix)) == prefix))
        q = q.where(or_(*conds))
    return list(session.execute(q.order_by(Track.id)).scalars())
