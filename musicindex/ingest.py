"""Ingestion: scan folders, register files, analyse them, store the results.

Joins ``audio`` (which knows nothing of the database) and ``db`` (which knows nothing of
audio). Every step is a plain function; Celery tasks in ``workers/`` only call them.

Life of a file:

1. ``scan`` walks the roots (symlinks leading outside the roots are not followed unless
   asked; symlink loops are detected) and yields audio-looking files with size and mtime.
2. ``register`` (one transaction, serialised by an advisory lock) inserts new paths as
   ``pending``, marks changed ones ``pending``, marks vanished ones ``missing``, sets
   folder/CSV labels, and returns the ids that need audio work. Unchanged files (same
   path, size and mtime, results of the current extractor versions) need none.
3. ``process_track`` (in a worker) takes a per-track advisory lock, hashes the file
   (streamed), recognises moves (same hash as a track whose file is gone: the old row
   takes the new path and keeps its id and everything derived from it) and touched-but-
   identical files (same hash: nothing to recompute), analyses the window, and writes
   features, spectrogram and tags. Any error of the file marks it ``failed`` with the
   reason; the batch goes on.
"""
from __future__ import annotations

import csv
import datetime as dt
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, OperationalError

from musicindex.db.models import IngestBatch, Spectrogram, Track, TrackFeatures
from musicindex.db.session import Database
from musicindex.errors import AudioError, InvalidArgumentError
from musicindex.featurespec import FEATURE_NAMES

log = logging.getLogger(__name__)

#: file name endings that are scanned (others in the folders are ignored, not failed)
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .aiff .aif .aifc .au .snd .caf .w64 .rf64 .m4a .mp4 .aac .wma .wv .ape"
    .split()
)
MAX_ATTEMPTS = 3  # a file whose analysis killed the worker this often is failed, not retried forever
_REGISTER_LOCK = 0x6D75736963  # advisory lock key serialising registrations ('music')
_TRACK_LOCK_NS = 0x4D49  # advisory lock namespace for per-track processing


# --------------------------------------------------------------------------- scanning
@dataclass(frozen=True)
class ScannedFile:
    path: str
    size: int
    mtime: float


@dataclass
class ScanReport:
    files: list[ScannedFile] = field(default_factory=list)
    ignored: int = 0
    skipped_links: list[str] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _within(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def scan(roots: Sequence[str | os.PathLike], *, follow_symlinks: bool = False) -> ScanReport:
    """Walk ``roots`` recursively and collect audio files.

    Symlinks are followed only while their target stays under one of the roots (or
    everywhere with ``follow_symlinks``); a directory reached twice (a symlink loop) is
    walked once. Paths are stored as given (absolute, not resolved), so a moved root
    shows up as moved files.
    """
    report = ScanReport()
    abs_roots = []
    for r in roots:
        p = Path(r).expanduser()
        if not p.exists():
            raise InvalidArgumentError(f"no such file or folder: {r}")
        abs_roots.append(str(p.absolute()))
    real_roots = [os.path.realpath(r) for r in abs_roots]
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()

    def add_file(path: str, st: os.stat_result) -> None:
        if os.path.splitext(path)[1].lower() not in AUDIO_EXTENSIONS:
            report.ignored += 1
            return
        if path in seen_files:
            return
        seen_files.add(path)
        report.files.append(ScannedFile(path, st.st_size, st.st_mtime))

    def allowed_link(path: str) -> bool:
        if follow_symlinks:
            return True
        if _within(os.path.realpath(path), real_roots):
            return True
        report.skipped_links.append(path)
        return False

    def walk(top: str) -> None:
        """Depth-first, iterative (no recursion limit for deeply nested folders), sorted."""
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                st = os.stat(directory)
            except OSError as exc:
                report.errors.append(f"{directory}: {exc.strerror}")
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                report.loops.append(directory)
                continue
            seen_dirs.add(key)
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                report.errors.append(f"{directory}: {exc.strerror}")
                continue
            subdirs = []
            for entry in entries:
                try:
                    if entry.is_symlink() and not allowed_link(entry.path):
                        continue
                    if entry.is_dir(follow_symlinks=True):
                        subdirs.append(entry.path)
                    elif entry.is_file(follow_symlinks=True):
                        add_file(entry.path, entry.stat(follow_symlinks=True))
                except OSError as exc:  # broken link, permission, loop (ELOOP), name too long
                    report.errors.append(f"{entry.path}: {exc.strerror or exc}")
            stack.extend(reversed(subdirs))

    for root in abs_roots:
        if os.path.isdir(root):
            walk(root)
        else:
            add_file(root, os.stat(root))
    return report


# --------------------------------------------------------------------------- labels
LabelSpec = str | None  # "folder" | "tag" | "csv:FILE" | None


def parse_label_spec(spec: LabelSpec) -> tuple[str | None, dict[str, str] | None]:
    """Validate ``--label-from``; for csv: load the ``path,label`` map (paths made absolute)."""
    if spec is None or spec == "":
        return None, None
    if spec in ("folder", "tag"):
        return spec, None
    if spec.startswith("csv:"):
        file = Path(spec[4:]).expanduser()
        if not file.is_file():
            raise InvalidArgumentError(f"--label-from csv: no such file {file}")
        mapping: dict[str, str] = {}
        with open(file, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.reader(fh)):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) < 2:
                    raise InvalidArgumentError(f"{file}:{i + 1}: expected 'path,label', got {row!r}")
                if i == 0 and row[0].strip().lower() == "path":
                    continue  # header
                p = Path(row[0].strip()).expanduser()
                if not p.is_absolute():
                    p = file.parent / p
                mapping[str(p.absolute())] = row[1].strip()
        return "csv", mapping
    raise InvalidArgumentError(f"--label-from must be 'folder', 'tag' or 'csv:FILE', got {spec!r}")


def _folder_label(path: str) -> str | None:
    parent = Path(path).parent.name
    return parent or None


# --------------------------------------------------------------------------- registering
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


def _current_versions() -> tuple[int, int]:
    from musicindex.audio import FEATURES_VERSION, SPECTROGRAM_VERSION

    return FEATURES_VERSION, SPECTROGRAM_VERSION


def register(db: Database, roots: Sequence[str | os.PathLike], *, label_from: LabelSpec = None,
             follow_symlinks: bool = False, reanalyse_outdated: bool = True) -> RegisterResult:
    """Scan ``roots`` and register what needs audio work, in one transaction.

    Returns the ids to analyse: new files, changed ones (size or mtime differ), those
    still pending from an earlier batch, and (``reanalyse_outdated``) indexed tracks whose
    features or spectrogram were made by an older extractor version.
    """
    label_kind, label_map = parse_label_spec(label_from)
    report = scan(roots, follow_symlinks=follow_symlinks)
    feat_v, spec_v = _current_versions()
    abs_roots = [str(Path(r).expanduser().absolute()) for r in roots]

    with db.session() as s:
        s.execute(select(func.pg_advisory_xact_lock(_REGISTER_LOCK)))
        batch = IngestBatch(roots=abs_roots, scanned=len(report.files))
        s.add(batch)
        s.flush()

        by_path = {f.path: f for f in report.files}
        existing = {}
        paths = list(by_path)
        for i in range(0, len(paths), 5000):
            chunk = paths[i:i + 5000]
            for row in s.execute(
                select(Track.id, Track.path, Track.size, Track.mtime, Track.status, Track.label_source)
                .where(Track.path.in_(chunk))
            ):
                existing[row.path] = row

        def label_for(path: str) -> tuple[str | None, str | None]:
            if label_kind == "folder":
                return _folder_label(path), "folder"
            if label_kind == "csv":
                lab = label_map.get(path) if label_map else None
                return (lab, "csv") if lab else (None, None)
            return None, None

        new_rows = []
        changed_ids: list[int] = []
        pending_ids: list[int] = []
        unchanged = 0
        now = dt.datetime.now(dt.timezone.utc)
        for f in report.files:
            label, source = label_for(f.path)
            row = existing.get(f.path)
            if row is None:
                new_rows.append({"path": f.path, "size": f.size, "mtime": f.mtime, "status": "pending",
                                 "batch_id": batch.id, "label": label, "label_source": source})
                continue
            values: dict = {}
            if label_kind in ("folder", "csv") and label is not None:
                values.update(label=label, label_source=source)
            if row.size != f.size or row.mtime != f.mtime or row.status == "missing":
                values.update(status="pending", size=f.size, mtime=f.mtime, batch_id=batch.id, attempts=0,
                              error=None)
                changed_ids.append(row.id)
            elif row.status == "pending":
                values.update(batch_id=batch.id)
                pending_ids.append(row.id)
            else:
                unchanged += 1
            if values:
                values["updated_at"] = now
                s.execute(update(Track).where(Track.id == row.id).values(**values))

        new_ids: list[int] = []
        for i in range(0, len(new_rows), 2000):
            stmt = pg_insert(Track).values(new_rows[i:i + 2000])
            # a concurrent registration of the same path (outside our lock: a direct API user) wins quietly
            stmt = stmt.on_conflict_do_nothing(index_elements=["path"]).returning(Track.id)
            new_ids.extend(s.execute(stmt).scalars())

        # tracks under these roots whose file was not seen: missing (never deleted)
        missing = 0
        for root in abs_roots:
            prefix = root.rstrip(os.sep) + os.sep
            q = select(Track.id, Track.path).where(Track.status != "missing").where(
                (Track.path == root) | (func.left(Track.path, len(prefix)) == prefix))
            gone = [r.id for r in s.execute(q) if r.path not in by_path]
            if gone:
                s.execute(update(Track).where(Track.id.in_(gone)).values(status="missing", updated_at=now))
                missing += len(gone)

        outdated_ids: list[int] = []
        if reanalyse_outdated:
            outdated_ids = outdated_track_ids(s, feat_v, spec_v, roots=abs_roots)
            known = set(changed_ids) | set(pending_ids)
            outdated_ids = [i for i in outdated_ids if i not in known]

        queued = new_ids + changed_ids + pending_ids + outdated_ids
        batch.queued = len(queued)
        batch.unchanged = unchanged - len(outdated_ids)
        batch.missing = missing
        return RegisterResult(
            batch_id=batch.id, scanned=len(report.files), queued_ids=queued, new=len(new_ids),
            changed=len(changed_ids) + len(pending_ids) + len(outdated_ids), unchanged=unchanged - len(outdated_ids),
            missing=missing, ignored=report.ignored, skipped_links=len(report.skipped_links),
            loops=len(report.loops), scan_errors=report.errors,
        )


def outdated_track_ids(session, feat_v: int, spec_v: int, roots: Sequence[str] | None = None) -> list[int]:
    """Indexed tracks whose features or spectrogram come from an older extractor version."""
    q = (
        select(Track.id)
        .outerjoin(TrackFeatures, TrackFeatures.track_id == Track.id)
        .outerjoin(Spectrogram, Spectrogram.track_id == Track.id)
        .where(Track.status == "indexed")
        .where((TrackFeatures.version.is_(None)) | (TrackFeatures.version < feat_v)
               | (Spectrogram.version.is_(None)) | (Spectrogram.version < spec_v))
    )
    if roots:
        conds = [func.left(Track.path, len(r.rstrip(os.sep) + os.sep)) == r.rstrip(os.sep) + os.sep for r in roots]
        q = q.where(or_(*conds))
    return list(session.execute(q.order_by(Track.id)).scalars())


# --------------------------------------------------------------------------- processing
@dataclass
class ProcessOutcome:
    track_id: int
    status: str  # indexed | failed | skipped | moved | missing
    reason: str | None = None
    did_audio_work: bool = False


def _track_lock(conn, track_id: int) -> bool:
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:ns, :id)"),
                             {"ns": _TRACK_LOCK_NS, "id": int(track_id) & 0x7FFFFFFF}).scalar())


def _track_unlock(conn, track_id: int) -> None:
    conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": _TRACK_LOCK_NS, "id": int(track_id) & 0x7FFFFFFF})


def process_track(db: Database, track_id: int, *, window=None, label_from_tag: bool = False,
                  on_embed: Callable[[int], None] | None = None) -> ProcessOutcome:
    """Analyse one registered track and store the results; never raises for a bad file.

    Database errors do propagate (the Celery task retries them with backoff). A per-track
    advisory lock (released by PostgreSQL if the worker dies) makes concurrent deliveries of
    the same track do the work once; the others return ``skipped``.
    """
    feat_v, spec_v = _current_versions()
    with db.engine.connect() as lock_conn:
        if not _track_lock(lock_conn, track_id):
            return ProcessOutcome(track_id, "skipped", "being analysed by another worker")
        lock_conn.commit()
        try:
            # short transaction: what is there to do? count the attempt (survives a crash)
            with db.session() as s:
                track = s.get(Track, track_id)
                if track is None:
                    return ProcessOutcome(track_id, "skipped", "track no longer registered")
                feats = s.get(TrackFeatures, track_id)
                spec = s.get(Spectrogram, track_id)
                need_feat = feats is None or feats.version < feat_v
                need_spec = spec is None or spec.version < spec_v
                if track.status == "indexed" and not (need_feat or need_spec):
                    return ProcessOutcome(track_id, "skipped", "already indexed")
                if track.status in ("failed", "missing"):
                    return ProcessOutcome(track_id, "skipped", f"status is {track.status}")
                track.attempts += 1
                attempts = track.attempts
                path, old_hash, old_status = track.path, track.content_hash, track.status
            if attempts > MAX_ATTEMPTS:
                return mark_failed(db, track_id, f"analysis did not finish after {MAX_ATTEMPTS} attempts "
                                           "(the worker died or timed out each time)")
            try:
                return _analyse_and_store(db, track_id, path, old_hash, old_status, need_feat, need_spec,
                                          window, label_from_tag, feat_v, spec_v, on_embed)
            except AudioError as exc:
                return mark_failed(db, track_id, str(exc))
            except FileNotFoundError:  # os.stat or the decoder: the file went away after the scan
                return mark_failed(db, track_id, f"file vanished before analysis: {path}")
            except (OperationalError, DBAPIError):
                raise
            except MemoryError:
                return mark_failed(db, track_id, "out of memory while analysing the file")
            except Exception as exc:  # noqa: BLE001 - any other decoder failure is the file's
                log.exception("unexpected error analysing %s", path)
                return mark_failed(db, track_id, f"unexpected {type(exc).__name__}: {exc}")
        finally:
            try:
                _track_unlock(lock_conn, track_id)
                lock_conn.commit()
            except DBAPIError:
                pass  # the connection is gone; PostgreSQL released the lock with it


def mark_failed(db: Database, track_id: int, reason: str, status: str = "failed") -> ProcessOutcome:
    """Record a file as failed (or missing) with its reason."""
    with db.session() as s:
        s.execute(update(Track).where(Track.id == track_id).values(
            status=status, error=reason[:2000], updated_at=func.now()))
    return ProcessOutcome(track_id, status, reason)


def _analyse_and_store(db: Database, track_id: int, path: str, old_hash: str | None, old_status: str,
                       need_feat: bool, need_spec: bool, window, label_from_tag: bool,
                       feat_v: int, spec_v: int, on_embed) -> ProcessOutcome:
    from musicindex import audio

    st = os.stat(path)  # FileNotFoundError: vanished
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"not a regular file: {path}")
    content_hash = audio.file_sha256(path)

    with db.session() as s:
        # a move: a track with the same content whose file is gone keeps its id and data
        if old_status == "pending" and old_hash is None:
            twin = s.execute(
                select(Track).where(Track.content_hash == content_hash, Track.id != track_id)
                .order_by(Track.id).with_for_update(skip_locked=True)
            ).scalars().all()
            for other in twin:
                if other.status == "missing" or not os.path.exists(other.path):
                    new = s.get(Track, track_id)
                    label, label_source = new.label, new.label_source
                    s.delete(new)
                    s.flush()
                    other.path = path
                    other.size, other.mtime = st.st_size, st.st_mtime
                    other.status = "indexed" if other.indexed_at is not None else "pending"
                    if label_source in ("folder", "csv"):
                        other.label, other.label_source = label, label_source
                    other.updated_at = func.now()
                    moved_id = other.id
                    break
            else:
                moved_id = None
            if moved_id is not None:
                return ProcessOutcome(moved_id, "moved", f"moved from a missing track, kept id {moved_id}")
        # touched but identical content: nothing to recompute
        if old_hash == content_hash and not (need_feat or need_spec):
            track = s.get(Track, track_id)
            track.status, track.error, track.size, track.mtime = "indexed", None, st.st_size, st.st_mtime
            return ProcessOutcome(track_id, "indexed", "content unchanged")
        if old_hash is not None and old_hash != content_hash:
            need_feat = need_spec = True  # content changed: everything is recomputed

    result = audio.analyse_file(path, window=window, features=need_feat, spectrogram=need_spec)
    tags = audio.read_tags(path)
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise AudioError("the file changed while it was being analysed; ingest it again once it is complete")

    with db.session() as s:
        track = s.get(Track, track_id, with_for_update=True)
        if track is None:
            return ProcessOutcome(track_id, "skipped", "track removed during analysis")
        info = result.info
        track.content_hash = content_hash
        track.size, track.mtime = st.st_size, st.st_mtime
        track.duration, track.sample_rate, track.channels, track.format = (
            float(info.duration), int(info.sample_rate), int(info.channels), info.format)
        track.title, track.artist, track.album = tags.get("title"), tags.get("artist"), tags.get("album")
        track.year, track.genre_tag = tags.get("year"), tags.get("genre")
        if label_from_tag and tags.get("genre"):
            track.label, track.label_source = tags["genre"], "tag"
        if result.features is not None:
            vec = np.asarray(result.features, dtype=np.float64)
            values = {name: float(v) for name, v in zip(FEATURE_NAMES, vec)}
            stmt = pg_insert(TrackFeatures).values(track_id=track_id, version=feat_v, vec=vec.astype(np.float32),
                                                   computed_at=func.now(), **values)
            s.execute(stmt.on_conflict_do_update(
                index_elements=["track_id"],
                set_={"version": feat_v, "vec": stmt.excluded.vec, "computed_at": func.now(),
                      **{n: stmt.excluded[n] for n in FEATURE_NAMES}}))
        if result.logmel is not None:
            data = audio.encode_spectrogram(result.logmel)
            n_mels, n_frames = result.logmel.shape
            stmt = pg_insert(Spectrogram).values(track_id=track_id, version=spec_v, n_mels=n_mels,
                                                 n_frames=n_frames, data=data)
            s.execute(stmt.on_conflict_do_update(
                index_elements=["track_id"],
                set_={"version": spec_v, "n_mels": n_mels, "n_frames": n_frames, "data": data,
                      "computed_at": func.now()}))
        track.status, track.error = "indexed", None
        track.indexed_at = func.now()
        track.updated_at = func.now()
    if on_embed is not None:
        on_embed(track_id)
    return ProcessOutcome(track_id, "indexed", None, did_audio_work=True)


def process_tracks(db: Database, track_ids: Iterable[int], **kwargs) -> list[ProcessOutcome]:
    """Analyse tracks in this process (what a worker's job does, without Celery)."""
    return [process_track(db, tid, **kwargs) for tid in track_ids]


def has_active_models(db: Database) -> bool:
    """Whether any trained model is active (then newly indexed tracks need embedding)."""
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT EXISTS (SELECT 1 FROM model_versions WHERE state = 'active')")).scalar()


# --------------------------------------------------------------------------- progress
@dataclass
class Progress:
    total: int
    indexed: int
    failed: int
    pending: int
    missing: int

    @property
    def done(self) -> int:
        return self.total - self.pending


def progress(db: Database, track_ids: Sequence[int]) -> Progress:
    counts = {"indexed": 0, "failed": 0, "pending": 0, "missing": 0}
    ids = list(track_ids)
    with db.session() as s:
        for i in range(0, len(ids), 10000):
            for status, n in s.execute(
                select(Track.status, func.count()).where(Track.id.in_(ids[i:i + 10000])).group_by(Track.status)
            ):
                counts[status] = counts.get(status, 0) + n
    seen = sum(counts.values())
    # ids deleted by a move are done (their content lives on under the old id)
    return Progress(total=len(ids), indexed=counts["indexed"] + (len(ids) - seen), failed=counts["failed"],
                    pending=counts["pending"], missing=counts["missing"])


def status_counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {k: v for k, v in s.execute(select(Track.status, func.count()).group_by(Track.status))}


def latest_failures(db: Database, limit: int = 10) -> list[tuple[str, str]]:
    with db.session() as s:
        rows = s.execute(select(Track.path, Track.error).where(Track.status == "failed")
                         .order_by(Track.updated_at.desc()).limit(limit))
        return [(r.path, r.error or "") for r in rows]
