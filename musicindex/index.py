"""The public Python API: ``MusicIndex``. The CLI (and the web app) are thin layers over it.

``MusicIndex`` is composed of explicit services that share one database and one
:class:`~musicindex.dispatch.Dispatcher` (the only thing that sends Celery tasks):

* ``index.ingestion`` -- :class:`~musicindex.ingest.service.IngestService` (ingest, wait, status)
* ``index.training``  -- :class:`~musicindex.ml.service.TrainingService` (train, registry, evaluate, report)
* ``index.queries``   -- :class:`~musicindex.query.service.QueryService` (similar, recommend, genres, ...)

Every public method of those services is also a method of ``MusicIndex`` itself
(``index.similar(...)`` is ``index.queries.similar(...)``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from musicindex import servers
from musicindex.config import Settings, broker_urls, database_url, get_settings, paths_for, redact_url
from musicindex.db.session import Database
from musicindex.dispatch import Dispatcher
from musicindex.errors import MusicIndexError
from musicindex.ingest.service import IngestService, IngestSummary, StatusReport
from musicindex.ml.service import TrainingService
from musicindex.query.service import QueryService

__all__ = ["DoctorReport", "IngestSummary", "MusicIndex", "StatusReport"]


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


class MusicIndex:
    """Entry point for programs: ``MusicIndex.connect()`` then ingest, query, train.

    ``url`` is a PostgreSQL URL; without it the configured one (MUSICINDEX_DATABASE_URL)
    or the embedded server's. Connecting never starts a server: ``start_services=True``
    (or ``musicindex services start``) starts the embedded ones first.
    """

    def __init__(self, db: Database, settings: Settings, dispatcher: Dispatcher | None = None):
        self.db = db
        self._settings = settings
        self.dispatcher = dispatcher or Dispatcher(settings)
        self.ingestion = IngestService(db, settings, self.dispatcher)
        self.training = TrainingService(db, settings, self.dispatcher)
        self.queries = QueryService(db, settings)
        # the services' methods, offered on the index itself
        i, t, q = self.ingestion, self.training, self.queries
        self.ingest, self.wait_for = i.ingest, i.wait_for
        self.train, self.models, self.model, self.active_models = t.train, t.models, t.model, t.active_models
        self.promote, self.rollback, self.embed_tracks = t.promote, t.rollback, t.embed_tracks
        self.evaluate, self.report, self.embed = t.evaluate, t.report, t.embed
        self.similar, self.recommend, self.by_genre, self.genre_of = q.similar, q.recommend, q.by_genre, q.genre_of
        self.cluster_of, self.similar_to_file, self.playlist = q.cluster_of, q.similar_to_file, q.playlist
        self.tags_of, self.search_by_tags, self.track_file = q.tags_of, q.search_by_tags, q.track_file
        # track search, details, lists, spaces and the map (the HTTP API and web page use them too)
        self.search_tracks, self.track_details, self.genres = q.search_tracks, q.track_details, q.genres
        self.track_summaries, self.spaces, self.library_map = q.track_summaries, q.spaces, q.library_map
        self.ingest_progress = q.ingest_progress

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """New settings apply to every service of this index (and its dispatcher)."""
        self._settings = settings
        for part in (self.dispatcher, self.ingestion, self.training, self.queries):
            part.settings = settings

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        check_schema: bool = True,
        start_services: bool = False,
    ) -> MusicIndex:
        settings = settings or get_settings()
        if url is not None:
            settings = settings.with_(database_url=url)
        if start_services:
            servers.start(settings)
        db = Database.connect(database_url(settings), check_schema=check_schema)
        return cls(db, settings)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> MusicIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self, failures: int = 10) -> StatusReport:
        """Counts by status, the latest failures with reasons, queue depths, live workers and the coverage of
        the musicnn space."""
        from musicindex.ml import pretrained

        report = self.ingestion.status(failures)
        report.embedding = pretrained.coverage(self.db).to_dict()
        return report

    # ------------------------------------------------------------------ admin
    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision``."""
        self.db.upgrade(revision)

    def doctor(self, worker_timeout: float = 1.0) -> DoctorReport:
        """Versions, schema revision, data location and live workers, plus any problem found."""
        problems: list[str] = []
        info = self.db.schema_info()
        available = self.db.pgvector_available()
        broker_url, _ = broker_urls(self.settings)
        redis_version = self.dispatcher.redis_version()
        workers: list[str] = []
        if redis_version is None:
            problems.append(
                f"the broker does not answer at {redact_url(broker_url)}: "
                "`musicindex services start` (or check MUSICINDEX_BROKER_URL)"
            )
        else:
            try:
                workers = self.dispatcher.ping_workers(timeout=worker_timeout)
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
            database_url=redact_url(self.db.url) or "",
            broker_url=redact_url(broker_url) or "",
            home=str(paths_for(self.settings).home),
            embedded_database=self.settings.embedded_database,
            embedded_broker=self.settings.embedded_broker,
            workers=workers,
            problems=problems,
        )
