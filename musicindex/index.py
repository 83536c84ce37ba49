"""The public Python API: ``MusicIndex``, the facade. The CLI and the web app are thin layers over it.

``MusicIndex`` is composed of explicit services that share one database and one
:class:`~musicindex.dispatch.Dispatcher` (the only thing that sends Celery tasks):

* ``index.ingestion`` -- :class:`~musicindex.ingest.service.IngestService` (ingest, wait, watch, rescan, progress)
* ``index.training``  -- :class:`~musicindex.ml.service.TrainingService` (train, embed, registry, evaluate, report)
* ``index.queries``   -- :class:`~musicindex.query.service.QueryService` (similar, recommend, genres, tags, ...)
* ``index.library``   -- :class:`~musicindex.query.library.LibraryService` (search, details, lists, spaces, map)
* ``index.users``     -- :class:`~musicindex.users.UserService` (accounts, API keys, stars, ratings, plays, queues,
  playlists: the write side)
* ``index.catalog``   -- :class:`~musicindex.query.catalog.CatalogService` (artists, albums, songs, lists, search,
  a listener's state, similar artists, instant mixes: what music apps browse; reads only; not repeated on the index)

Every public method of those services is also a method of ``MusicIndex`` itself (``index.similar(...)`` is
``index.queries.similar(...)``; ``SERVICE_METHODS`` lists them). What needs two layers is composed here:
``similar_to_file`` (the models analyse the file, the query layer searches with it) and ``status``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from musicindex import servers
from musicindex.config import Settings, broker_urls, database_url, get_settings, paths_for, redact_url
from musicindex.db.session import Database
from musicindex.dispatch import Dispatcher
from musicindex.errors import ModelNotTrainedError, MusicIndexError
from musicindex.ingest.service import IngestService, IngestSummary, StatusReport
from musicindex.ml.service import TrainingService
from musicindex.query.catalog import CatalogService
from musicindex.query.library import LibraryService
from musicindex.query.results import QueryResult
from musicindex.query.service import QueryService
from musicindex.users import UserService

__all__ = ["SERVICE_METHODS", "DoctorReport", "IngestSummary", "MusicIndex", "StatusReport"]

SERVICE_METHODS: dict[str, tuple[str, ...]] = {
    "ingestion": ("ingest", "wait_for", "watch", "rescan", "known_roots", "ingest_progress"),
    "training": (
        "train", "models", "model", "active_models", "promote", "rollback", "embed", "apply_models", "embed_tracks",
        "evaluate", "report", "space_map",
    ),
    "queries": ("similar", "recommend", "by_genre", "genre_of", "cluster_of", "playlist", "tags_of", "search_by_tags"),
    "library": (
        "search_tracks", "track_details", "track_summaries", "track_file", "track_files", "genres", "tag_names",
        "spaces", "library_map",
    ),
    "users": (
        "add_user", "list_users", "user", "set_password", "remove_user", "new_api_key", "local_user", "has_logins",
        "logins_known",
        "api_keys", "revoke_api_key", "open_session", "session_user", "end_session", "end_sessions",
        "authenticate_password", "authenticate_token", "authenticate_api_key", "star", "unstar", "set_rating",
        "scrobble", "save_play_queue", "create_playlist", "update_playlist", "delete_playlist",
        "create_bookmark", "bookmarks", "delete_bookmark", "report_playback", "skipped_track_ids",
        "save_play_queue_by_index", "play_queue_index", "set_max_bit_rate", "max_bit_rate",
    ),
}  # fmt: skip
"""The methods of each service that ``MusicIndex`` offers as its own."""


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
        self.library = LibraryService(db, settings)
        self.users = UserService(db, settings)
        self.catalog = CatalogService(db, settings)
        # the services' methods, offered on the index itself (SERVICE_METHODS lists them; tests check both agree)
        i, t, q, lib = self.ingestion, self.training, self.queries, self.library
        self.ingest, self.wait_for, self.watch, self.rescan = i.ingest, i.wait_for, i.watch, i.rescan
        self.known_roots, self.ingest_progress = i.known_roots, i.ingest_progress
        self.train, self.models, self.model, self.active_models = t.train, t.models, t.model, t.active_models
        self.promote, self.rollback, self.embed = t.promote, t.rollback, t.embed
        self.apply_models, self.embed_tracks = t.apply_models, t.embed_tracks  # embed_tracks: deprecated name
        self.evaluate, self.report, self.space_map = t.evaluate, t.report, t.space_map
        self.similar, self.recommend, self.by_genre, self.genre_of = q.similar, q.recommend, q.by_genre, q.genre_of
        self.cluster_of, self.playlist, self.tags_of, self.search_by_tags = (
            q.cluster_of, q.playlist, q.tags_of, q.search_by_tags
        )  # fmt: skip
        self.search_tracks, self.track_details, self.track_summaries = (
            lib.search_tracks, lib.track_details, lib.track_summaries
        )  # fmt: skip
        self.track_file, self.track_files, self.genres, self.spaces, self.library_map = (
            lib.track_file, lib.track_files, lib.genres, lib.spaces, lib.library_map
        )  # fmt: skip
        for name in SERVICE_METHODS["users"]:
            setattr(self, name, getattr(self.users, name))
        self.tag_names = lib.tag_names

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """New settings apply to every service of this index (and its dispatcher)."""
        self._settings = settings
        for part in (self.dispatcher, self.ingestion, self.training, self.queries, self.library, self.users,
                     self.catalog):  # fmt: skip
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

    def similar_to_file(
        self,
        path: str | os.PathLike[str],
        k: int = 10,
        space: str | None = None,
        exact: bool = False,
        explain: bool = True,
    ) -> QueryResult:
        """The ``k`` indexed tracks closest to an outside audio file (analysed, never stored; ``space`` None: the
        best available one). The models analyse the file (``ml.probe``), the query layer searches with it; a model
        promoted in between is noticed and the file analysed again for the new version."""
        from musicindex.errors import InvalidArgumentError
        from musicindex.ml import probe
        from musicindex.query.validation import check_k

        if not isinstance(path, (str, os.PathLike)) or "\x00" in os.fsdecode(os.fspath(path)):
            raise InvalidArgumentError(f"path must be a file's path without NUL characters, got {path!r}")
        k = check_k(k)
        chosen, version = self.queries.example_space(space)
        while True:
            example = probe.analyse_example(self.db, path, space=chosen, version=version, window=self.settings.window)
            try:
                return self.queries.similar_to_example(example, k=k, space=chosen, exact=exact, explain=explain)
            except ModelNotTrainedError:
                now = self.queries.example_space(chosen)[1]
                if (now and now.id) == (version and version.id):
                    raise  # not a promotion in between: the space cannot answer
                version = now

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
