"""The public Python API: ``MusicIndex``. The CLI is a thin layer over it."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

from musicindex import ingest as ingest_lib
from musicindex import services, taskclient
from musicindex.config import Settings, get_settings
from musicindex.db.session import Database
from musicindex.models.api import TrainingMixin
from musicindex.query.api import QueryMixin
from musicindex.errors import InvalidArgumentError, MusicIndexError


@dataclass
class DoctorReport:
    postgres_version: str | None
    pgvector_version: str | None
    pgvector_available: str | None
    schema_current: str | None
    schema_head: str
    redis_version: str | None
    database_url: str
    broker_url: str
    home: str
    embedded_database: bool
    embedded_broker: bool
    workers: list[str]
    problems: list[str] = field(default_factory=list)

    @property
    def schema_at_head(self) -> bool:
        return self.schema_current == self.schema_head

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema_at_head"] = self.schema_at_head
        return d


@dataclass
class IngestSummary(ingest_lib.RegisterResult):
    """What ``ingest`` registered and queued; ``final`` holds the counts after ``wait=True``."""

    jobs: int = 0
    final: dict[str, int] | None = None  # counts after --wait: indexed / failed / pending
    seconds: float | None = None

    @property
    def queued(self) -> int:
        return len(self.queued_ids)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["queued_ids"]
        d["queued"] = self.queued
        return d


@dataclass
class StatusReport:
    counts: dict[str, int]
    failures: list[tuple[str, str]]
    queues: dict[str, int]
    workers: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _chunks(ids: Sequence[int], n: int) -> Iterable[list[int]]:
    for i in range(0, len(ids), n):
        yield list(ids[i:i + n])


class MusicIndex(QueryMixin, TrainingMixin):
    """Entry point for programs: ``MusicIndex.connect()`` then ingest, query, train.

    ``url`` is a PostgreSQL URL; without it the configured one (MUSICINDEX_DATABASE_URL)
    or the embedded server is used.
    """

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    @classmethod
    def connect(cls, url: str | None = None, *, settings: Settings | None = None,
                check_schema: bool = True) -> "MusicIndex":
        settings = settings or get_settings()
        if url is not None:
            settings = settings.with_(database_url=url)
        db = Database.connect(settings.database_url, settings, check_schema=check_schema)
        return cls(db, settings)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> "MusicIndex":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ admin
    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision``."""
        self.db.upgrade(revision)

    def doctor(self, worker_timeout: float = 1.0) -> DoctorReport:
        """Versions, schema revision, data location and live workers, plus any problem found."""
        problems: list[str] = []
        info = self.db.schema_info()
        available = self.db.pgvector_available()
        redis_version = None
        broker_url = "?"
        workers: list[str] = []
        try:
            broker_url, _ = taskclient.broker_urls(self.settings)
            redis_version = _redis_version(broker_url)
            workers = taskclient.ping_workers(self.settings, timeout=worker_timeout)
        except MusicIndexError as exc:
            problems.append(str(exc))
        if not info.at_head:
            problems.append(f"schema at {info.current or 'base'}, head is {info.head}: run `musicindex db upgrade`")
        if available is None:
            problems.append("pgvector is not available on the server")
        if not workers:
            problems.append("no worker answers: start one with `musicindex worker`")
        return DoctorReport(
            postgres_version=info.postgres_version,
            pgvector_version=info.pgvector_version,
            pgvector_available=available,
            schema_current=info.current,
            schema_head=info.head,
            redis_version=redis_version,
            database_url=services.redact_url(self.db.url) or "",
            broker_url=services.redact_url(broker_url) or "",
            home=str(services.paths_for(self.settings).home),
            embedded_database=self.settings.embedded_database,
            embedded_broker=self.settings.embedded_broker,
            workers=workers,
            problems=problems,
        )

    # ------------------------------------------------------------------ ingestion
    def ingest(self, paths: Sequence[str | os.PathLike] | str | os.PathLike, *, wait: bool = False,
               label_from: str | None = None, reanalyse_outdated: bool = True, follow_symlinks: bool | None = None,
               on_progress: Callable[["ingest_lib.Progress"], None] | None = None, timeout: float | None = None,
               poll: float = 0.5) -> IngestSummary:
        """Scan ``paths``, register new or changed files, and queue their analysis on the workers.

        ``label_from``: ``"folder"`` (parent folder name, the GTZAN layout), ``"tag"`` (the
        genre tag) or ``"csv:FILE"`` (rows ``path,label``). With ``wait=True`` it returns when
        every queued file is indexed or failed, calling ``on_progress`` as it goes.
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not paths:
            raise InvalidArgumentError("ingest needs at least one file or folder")
        t0 = time.monotonic()
        reg = ingest_lib.register(
            self.db, paths, label_from=label_from, reanalyse_outdated=reanalyse_outdated,
            follow_symlinks=self.settings.follow_symlinks if follow_symlinks is None else follow_symlinks)
        label_from_tag = label_from == "tag"
        jobs = 0
        for chunk in _chunks(reg.queued_ids, self.settings.ingest_chunk):
            taskclient.send(taskclient.TASK_INGEST, args=[chunk], kwargs={"label_from_tag": label_from_tag},
                            settings=self.settings)
            jobs += 1
        summary = IngestSummary(**vars(reg), jobs=jobs)
        if wait and reg.queued_ids:
            prog = self.wait_for(reg.queued_ids, on_progress=on_progress, timeout=timeout, poll=poll)
            summary.final = {"indexed": prog.indexed, "failed": prog.failed, "pending": prog.pending}
        summary.seconds = time.monotonic() - t0
        return summary

    def wait_for(self, track_ids: Sequence[int], *, on_progress=None, timeout: float | None = None,
                 poll: float = 0.5):
        """Block until none of ``track_ids`` is pending; raises TimeoutError after ``timeout`` s."""
        start = time.monotonic()
        warned = False
        while True:
            prog = ingest_lib.progress(self.db, track_ids)
            if on_progress is not None:
                on_progress(prog)
            if prog.pending == 0:
                return prog
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"{prog.pending} of {prog.total} files still pending after {timeout:.0f} s")
            if not warned and time.monotonic() - start > 10 and not taskclient.ping_workers(self.settings, 0.5):
                warned = True
                logging.getLogger("musicindex").warning(
                    "no worker answers; jobs wait in the queue. Start one with `musicindex worker`.")
            time.sleep(poll)

    def status(self, failures: int = 10) -> StatusReport:
        """Counts by status, the latest failures with reasons, queue depths and live workers."""
        return StatusReport(
            counts=ingest_lib.status_counts(self.db),
            failures=ingest_lib.latest_failures(self.db, failures),
            queues=taskclient.queue_depths(self.settings),
            workers=taskclient.ping_workers(self.settings, timeout=1.0),
        )


def _redis_version(broker_url: str) -> str | None:
    import redis

    client = redis.Redis.from_url(services.redis_client_url(broker_url), socket_timeout=2)
    try:
        return str(client.info("server").get("redis_version"))
    except redis.RedisError:
        return None
    finally:
        client.close()
