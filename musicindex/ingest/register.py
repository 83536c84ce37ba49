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

import copy
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from musicindex.db.copy import copy_out_ints, copy_rows, copy_text, dbapi
from musicindex.db.paths import display, raw_bytes
from musicindex.db.session import Database
from musicindex.ingest import library, lifecycle
from musicindex.ingest.labels import LabelSource, LabelSpec
from musicindex.ingest.scan import ScannedFile, ScanReport, absolute_roots, iter_scan, outermost
from musicindex.vocab import FAILED, INDEXED, MISSING, PENDING

REGISTER_LOCK = 0x6D75736963
"""Advisory lock key serialising registrations ('music')."""


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
    retried: int = 0
    """Failed tracks queued again (``retry_failed``, or once by themselves when the environment failed them)."""
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


def current_versions() -> dict[str, int]:
    """The version of every analysis stage of this code (``ingest.stages``), by stage name."""
    from musicindex.ingest import stages

    return {s.name: int(s.version) for s in stages.declared()}


def _stage_lines(files: Iterator[ScannedFile], labels: LabelSource) -> Iterator[str]:
    """The staging table's rows in COPY's text format, one line per file, made with as little work as a million
    files allow (the common case, a valid UTF-8 path with nothing to escape, is a few string operations)."""
    by_path = labels.kind in ("folder", "csv")
    no_label = "\\N\t\\N"
    for name, size, mtime in files:
        path = name
        try:
            path.encode()
            raw = "\\N"
        except UnicodeEncodeError:  # a name that is not UTF-8: its display form, and its bytes
            raw = copy_text(raw_bytes(name))
            path = display(name)
        if by_path:
            label, source = labels.label_for(path)
            lab = no_label if label is None else f"{copy_text(display(label))}\t{source}"
        else:
            lab = no_label
        if "\\" in path or "\t" in path or "\n" in path or "\r" in path:
            path = copy_text(path)
        yield f"{path}\t{raw}\t{size}\t{mtime!r}\t{lab}\n"


# --------------------------------------------------------------------------- register
def register(
    db: Database,
    roots: Sequence[str | os.PathLike[str]],
    *,
    label_from: LabelSpec = None,
    follow_symlinks: bool = False,
    reanalyse_outdated: bool = True,
    retry_failed: bool = False,
    scopes: Sequence[str] | None = None,
    on_scan: Callable[[ScanReport], None] | None = None,
    in_broker: Callable[[], Iterable[int]] | None = None,
) -> RegisterResult:
    """Scan ``roots`` and register what needs audio work, in one transaction.

    Returns the ids to analyse: new files, changed ones (size or mtime differ), those
    still pending from an earlier batch, and (``reanalyse_outdated``) indexed tracks an analysis stage of
    which is outdated (``ingest.stages``: its recorded version is older, or missing). Failed tracks are analysed
    again: every one with ``retry_failed`` (``ingest --retry-failed``), else, once, those whose failure came from
    the environment (a time limit, a lost worker, memory, an I/O error: ``tracks.retryable``).

    ``scopes`` (paths under the roots: what a watcher saw change) limits the scan, and the
    tracks that may turn missing, to those paths. ``on_scan(report)`` is called while a long
    scan runs. ``in_broker()`` returns the ids of the broker's ingest jobs (waiting or reserved):
    tracks still pending from an earlier registration are queued again only when no job holds them
    (``lifecycle.held_track_ids``).
    """
    labels = LabelSource(label_from)
    report = ScanReport()
    abs_roots = outermost(absolute_roots(roots))
    timings: dict[str, float] = {}
    files = iter_scan(roots, follow_symlinks=follow_symlinks, report=report, scopes=scopes, on_progress=on_scan)

    clock = _Clock(timings)
    with db.session() as s:
        s.execute(text("SET LOCAL work_mem = '256MB'"))
        s.execute(
            text(
                "CREATE TEMP TABLE mi_stage (seq bigserial, path text NOT NULL, path_bytes bytea, size bigint, "
                "mtime double precision, label text, label_source text) ON COMMIT DROP"
            )
        )
        columns = ("path", "path_bytes", "size", "mtime", "label", "label_source")
        copy_rows(s, "mi_stage", columns, _stage_lines(files, labels), lines=True)
        clock.lap("scan")  # the walk, one stat per file and the COPY into the staging table, streamed together
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
        s.execute(text("ANALYZE mi_match"))  # the statements below pick their few rows out of it first
        s.execute(text("CREATE TEMP TABLE mi_queue (id bigint PRIMARY KEY, kind char(1)) ON COMMIT DROP"))
        clock.lap("match")
        new = lifecycle.insert_new_from(s, "mi_match", batch_id, "mi_queue")
        clock.lap("new")
        # each statement reads only the rows of mi_match it may change (an unchanged re-scan: next to none)
        changed = lifecycle.requeue_from(
            s, f"(SELECT * FROM mi_match WHERE id IS NOT NULL AND (differs OR old_status = '{MISSING}'))", batch_id,
            "mi_queue",
        )  # fmt: skip
        # failed tracks: all of them with retry_failed, else once those the environment failed
        retried = lifecycle.retry_failed_from(
            s, f"(SELECT id FROM mi_match WHERE old_status = '{FAILED}')", batch_id, "mi_queue", every=retry_failed
        )
        # still pending from an earlier registration: waited for (and its size/mtime kept current)
        s.execute(
            text(
                "UPDATE tracks t SET size = m.size, mtime = m.mtime, updated_at = now() FROM mi_match m "
                f"WHERE m.old_status = '{PENDING}' AND m.differs AND t.id = m.id AND t.status = '{PENDING}'"
            )
        )
        pending = s.execute(
            text(
                "INSERT INTO mi_queue (id, kind) SELECT m.id, 'p' FROM mi_match m JOIN tracks t ON t.id = m.id "
                f"WHERE m.old_status = '{PENDING}' AND t.status = '{PENDING}' ON CONFLICT (id) DO NOTHING"
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
        clock.lap("changed")
        scope = scopes if scopes is not None else abs_roots
        missing, protected, gone = _mark_missing(s, report, scope, scopes is None)
        clock.lap("missing")
        outdated = 0
        if reanalyse_outdated:
            outdated = _queue_outdated(s, scope)
        clock.lap("outdated")
        unchanged = int(
            s.execute(
                text(
                    "SELECT count(*) FROM mi_match m WHERE m.id IS NOT NULL "
                    "AND NOT EXISTS (SELECT 1 FROM mi_queue q WHERE q.id = m.id)"
                )
            ).scalar_one()
        )
        if changed or missing:  # tracks that left "indexed": their albums are recounted
            touched = _album_ids(s, "SELECT id FROM mi_queue WHERE kind = 'c'") | library.albums_of(s, gone)
            library.refresh_albums(s, touched)
        held_count = _mark_held(s, in_broker, pending)
        clock.lap("held")
        queued, send = _queued_ids(s)
        s.execute(
            text("UPDATE ingest_batches SET queued = :q, unchanged = :u, missing = :m WHERE id = :b"),
            {"q": len(queued), "u": unchanged, "m": missing, "b": batch_id},
        )
    clock.lap("commit")
    return RegisterResult(
        batch_id=batch_id,
        scanned=report.n_files,
        queued_ids=queued,
        new=new,
        changed=changed + outdated,
        retried=retried,
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


def _album_ids(s: Session, ids_sql: str) -> set[int]:
    """The albums of the tracks that ``ids_sql`` (trusted SQL) selects."""
    rows = s.execute(text(f"SELECT DISTINCT album_id FROM tracks WHERE id IN ({ids_sql}) AND album_id IS NOT NULL"))
    return {int(a) for a in rows.scalars()}


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _mark_missing(
    s: Session, report: ScanReport, under: Sequence[str], whole_roots: bool
) -> tuple[int, int, list[int]]:
    """Tracks under ``under`` the scan did not see become missing; (how many, how many protected, their ids).

    Protected (left as they are): tracks under a path the scan could not read, and tracks of a
    root that came back holding no file at all (an unmounted mount point looks like that).
    """
    unreadable = {display(p).rstrip(os.sep) for p in report.unreadable}
    empty = {display(p) for p in report.empty_roots} if whole_roots else set()
    conds, params = _under_sql(under, "t.path", pyformat=True)
    if not conds:
        return 0, 0, []
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
    return missing, protected, gone


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


def _queue_outdated(s: Session, under: Sequence[str]) -> int:
    """Indexed tracks under ``under`` an analysis stage of which is outdated (``stages.recorded_outdated_sql``:
    their record of it is older than this code's stage, or missing for a required stage): queued."""
    from musicindex.ingest import stages

    conds, params = _under_sql(under, "t.path")
    if not conds:
        return 0
    outdated, stage_params = stages.recorded_outdated_sql("t")
    return int(
        s.execute(
            text(
                "INSERT INTO mi_queue (id, kind) SELECT t.id, 'o' FROM tracks t "
                f"WHERE t.status = '{INDEXED}' AND ({conds}) AND {outdated} "
                "ON CONFLICT (id) DO NOTHING"
            ),
            {**params, **stage_params},
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


def _mark_held(s: Session, in_broker: Callable[[], Iterable[int]] | None, pending: int) -> int:
    """Fill ``mi_held`` with the still-pending tracks some job holds (``lifecycle.held_track_ids``: in the broker's
    jobs, or locked by a worker), set-based for libraries of millions; how many. Nothing to look at (an empty
    ``mi_held``) when no track was still pending."""
    s.execute(text("CREATE TEMP TABLE mi_held (id bigint) ON COMMIT DROP"))
    if not pending:
        return 0
    ids: Iterable[int] = in_broker() if in_broker is not None else ()
    copy_rows(s, "mi_held", ("id",), (f"{int(i)}\n" for i in ids), lines=True)
    s.execute(text(f"INSERT INTO mi_held {lifecycle.LOCKED_TRACKS_SQL}"))
    s.execute(text("ANALYZE mi_held"))
    return int(
        s.execute(
            text("SELECT count(*) FROM mi_queue q WHERE q.kind = 'p' AND q.id IN (SELECT id FROM mi_held)")
        ).scalar_one()
    )


def _queued_ids(s: Session) -> tuple[list[int], list[int]]:
    """(every queued id, those needing a job: all but the still-pending ones a job holds), in id order, streamed out
    of the database (int64 arrays on the way: a million ids never become a million rows of text)."""
    ids, held = copy_out_ints(
        s,
        "SELECT q.id, CASE WHEN q.kind = 'p' AND EXISTS (SELECT 1 FROM mi_held h WHERE h.id = q.id) THEN 1 ELSE 0 END "
        "FROM mi_queue q ORDER BY q.id",
        2,
    )
    queued = ids.tolist()
    send = [t for t, h in zip(queued, held, strict=True) if not h]  # the same int objects as ``queued``
    return queued, send


class _Clock:
    """Seconds per step of a registration, into ``timings`` (what ``benchmarks/scan.py`` prints)."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + now - self.last
        self.last = now


@dataclass
class IngestSummary(RegisterResult):
    """What ``ingest`` registered and queued; ``final`` holds the counts after ``wait=True``."""

    jobs: int = 0
    final: dict[str, int] | None = None  # counts after --wait: indexed / failed / pending
    seconds: float | None = None

    @property
    def queued(self) -> int:
        return len(self.queued_ids)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the ids (a shallow copy: ``asdict`` would copy a million ids twice on the way)."""
        d = {f.name: copy.copy(getattr(self, f.name)) for f in fields(self) if f.name not in ("queued_ids", "send_ids")}
        d["queued"] = self.queued
        return d
