"""The public Python API: ``MusicIndex``, the facade. The CLI and the web app are thin layers over it.

``MusicIndex`` is composed of explicit services that share one database and one
:class:`~musicindex.dispatch.Dispatcher` (the only thing that sends Celery tasks):

* ``index.ingestion`` -- :class:`~musicindex.ingest.service.IngestService` (ingest, wait, watch, rescan, progress)
* ``index.training``  -- :class:`~musicindex.ml.service.TrainingService` (train, embed, registry, evaluate, report)
* ``index.queries``   -- :class:`~musicindex.query.service.QueryService` (similar, recommend, genres, tags, ...)
* ``index.library``   -- :class:`~musicindex.query.library.LibraryService` (search, details, spaces, map)
* ``index.catalog``   -- :class:`~musicindex.query.catalog.CatalogService` (artists, albums, songs, lists, search:
  what music apps browse)
* ``index.listener``  -- :class:`~musicindex.query.listener.ListenerService` (a listener's stars, queue, playlists,
  what is playing: reads)
* ``index.mixes``     -- :class:`~musicindex.query.mixes.MixService` (instant mixes, sonic paths, similar artists,
  "for you")
* ``index.users``     -- :class:`~musicindex.users.UserService` (accounts, API keys, stars, ratings, plays, queues,
  playlists: the write side)
* ``index.dupes``     -- :class:`~musicindex.query.duplicates.DuplicateService` (groups of files that hold one
  recording or one song; ``prefer_duplicate`` is composed here: it writes)

The questions a program asks most are methods of ``MusicIndex`` itself, each delegating in one line to its
service (``FACADE_METHODS`` lists them; a test checks each against its service's signature). The similarity
questions take one :class:`~musicindex.query.options.SearchOptions` or, for convenience, its fields as keyword
arguments (``index.similar(12, k=5, genre="jazz")``). What needs two layers is composed here: ``similar_to_file``
(the models analyse the file, the query layer searches with it) and ``status``. Names that moved to their service
(``DEPRECATED``) still answer for one release, with a DeprecationWarning.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from musicindex import servers
from musicindex.config import Settings, broker_urls, database_url, get_settings, paths_for, redact_url
from musicindex.db.session import Database
from musicindex.dispatch import Dispatcher
from musicindex.errors import ModelNotTrainedError, MusicIndexError
from musicindex.ingest.service import IngestService, IngestSummary, StatusReport
from musicindex.ml.service import TrainingService
from musicindex.query.catalog import CatalogService
from musicindex.query.duplicates import DuplicateGroup, DuplicateService
from musicindex.query.library import LibraryService
from musicindex.query.listener import ListenerService
from musicindex.query.mixes import MixService
from musicindex.query.options import SearchArgs, SearchOptions, TrackRef, as_options
from musicindex.query.results import (
    ClusterResult,
    GenreResult,
    QueryResult,
    SearchResult,
    TagsResult,
    TrackDetails,
    TrackFile,
    TrackSummary,
)
from musicindex.query.service import QueryService
from musicindex.users import UserService

if TYPE_CHECKING:  # types of arguments and answers only (importing the index stays cheap)
    from musicindex.ingest.progress import Progress
    from musicindex.ingest.scan import ScanReport
    from musicindex.ml.evaluate import EvaluationReport
    from musicindex.ml.maps import SpaceMapResult
    from musicindex.ml.options import TrainOptions
    from musicindex.ml.service import EmbedSummary
    from musicindex.ml.training import TrainResult

__all__ = ["DEPRECATED", "FACADE_METHODS", "DoctorReport", "IngestSummary", "MusicIndex", "SearchOptions",
           "StatusReport"]  # fmt: skip

FACADE_METHODS: dict[str, tuple[str, ...]] = {
    "ingestion": ("ingest", "wait_for", "watch", "rescan", "known_roots"),
    "training": (
        "train",
        "embed",
        "models",
        "model",
        "active_models",
        "promote",
        "rollback",
        "evaluate",
        "report",
        "space_map",
    ),
    "queries": ("similar", "recommend", "playlist", "by_genre", "genre_of", "cluster_of", "tags_of", "search_by_tags"),
    "library": ("search_tracks", "track_details", "track_summaries", "track_files", "spaces"),
    "dupes": ("duplicates",),
}
"""The methods of ``MusicIndex`` that delegate to a service, by service (``index.ingestion.ingest`` ...)."""

_USERS = (
    "add_user", "list_users", "user", "set_password", "remove_user", "new_api_key", "local_user", "has_logins",
    "logins_known", "api_keys", "revoke_api_key", "open_session", "session_user", "end_session", "end_sessions",
    "authenticate_password", "authenticate_token", "authenticate_api_key", "star", "unstar", "set_rating",
    "scrobble", "save_play_queue", "create_playlist", "update_playlist", "delete_playlist", "create_bookmark",
    "bookmarks", "delete_bookmark", "report_playback", "skipped_track_ids", "save_play_queue_by_index",
    "play_queue_index", "set_max_bit_rate", "max_bit_rate",
)  # fmt: skip
DEPRECATED: dict[str, str] = {
    "ingest_progress": "ingestion.ingest_progress",
    "apply_models": "training.apply_models",
    "track_file": "library.track_file",
    "tag_names": "library.tag_names",
    "library_map": "library.library_map",
    "genres": "library.known_genres",
    **{name: f"users.{name}" for name in _USERS},
}
"""Names the index no longer offers itself (release 0.2), and where each lives now; for one release they still
answer, with a DeprecationWarning."""


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
        self.catalog = CatalogService(db, settings)
        self.listener = ListenerService(db, settings)
        self.mixes = MixService(db, settings)
        self.users = UserService(db, settings)
        self.dupes = DuplicateService(db, settings)

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """New settings apply to every service of this index (and its dispatcher)."""
        self._settings = settings
        for part in (self.dispatcher, self.ingestion, self.training, self.queries, self.library, self.catalog,
                     self.listener, self.mixes, self.users, self.dupes):  # fmt: skip
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

    if not TYPE_CHECKING:  # the moved names, for one release (type checkers see only the current ones)

        def __getattr__(self, name: str) -> Any:
            home = DEPRECATED.get(name)
            if home is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            warnings.warn(f"MusicIndex.{name} is deprecated: use index.{home}", DeprecationWarning, stacklevel=2)
            service, method = home.split(".")
            return getattr(getattr(self, service), method)

    # ------------------------------------------------------------------ ingestion (index.ingestion)
    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        wait: bool = False,
        label_from: str | None = None,
        reanalyse_outdated: bool = True,
        retry_failed: bool = False,
        follow_symlinks: bool | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_scan: Callable[[ScanReport], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
        scopes: Sequence[str] | None = None,
    ) -> IngestSummary:
        """Scan ``paths``, register new and changed files and queue their analysis (``IngestService.ingest``)."""
        return self.ingestion.ingest(
            paths, wait=wait, label_from=label_from, reanalyse_outdated=reanalyse_outdated, retry_failed=retry_failed,
            follow_symlinks=follow_symlinks, on_progress=on_progress, on_scan=on_scan, timeout=timeout, poll=poll,
            scopes=scopes,
        )  # fmt: skip

    def wait_for(
        self,
        track_ids: Sequence[int],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
        stall: float = 20.0,
        label_from_tag: bool = False,
        roots: Sequence[str] | None = None,
        embed_wait: bool = True,
    ) -> Progress:
        """Wait until these tracks are answerable or failed (``IngestService.wait_for``)."""
        return self.ingestion.wait_for(
            track_ids, on_progress=on_progress, timeout=timeout, poll=poll, stall=stall, label_from_tag=label_from_tag,
            roots=roots, embed_wait=embed_wait,
        )  # fmt: skip

    def watch(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        label_from: str | None = None,
        settle: float | None = None,
        initial_scan: bool = True,
        follow_symlinks: bool | None = None,
        stop: threading.Event | None = None,
        on_batch: Callable[[IngestSummary], None] | None = None,
    ) -> None:
        """Ingest, then queue new, changed, moved and deleted files as they happen (``IngestService.watch``)."""
        return self.ingestion.watch(
            paths, label_from=label_from, settle=settle, initial_scan=initial_scan, follow_symlinks=follow_symlinks,
            stop=stop, on_batch=on_batch,
        )  # fmt: skip

    def rescan(self) -> IngestSummary | None:
        """Ingest the folders of ``MUSICINDEX_RESCAN_PATHS`` or of earlier ingests again (``IngestService.rescan``)."""
        return self.ingestion.rescan()

    def known_roots(self) -> list[str]:
        """The folders ingested before (``IngestService.known_roots``)."""
        return self.ingestion.known_roots()

    # ------------------------------------------------------------------ training (index.training)
    def train(
        self,
        models: str | Iterable[str] | TrainOptions | None = None,
        *,
        wait: bool = True,
        local: bool = False,
        timeout: float | None = None,
        on_progress: Callable[[str], None] | None = None,
        **options: Any,
    ) -> TrainResult:
        """Train ``models`` with ``options`` (the fields of ``TrainOptions``; ``TrainingService.train``)."""
        return self.training.train(
            models, wait=wait, local=local, timeout=timeout, on_progress=on_progress, **options
        )  # fmt: skip

    def embed(
        self,
        track_ids: Sequence[int] | None = None,
        *,
        local: bool = False,
        wait: bool = False,
        timeout: float | None = None,
        chunk: int = 16,
    ) -> EmbedSummary:
        """Embed indexed tracks not yet in the musicnn space (``TrainingService.embed``)."""
        return self.training.embed(track_ids, local=local, wait=wait, timeout=timeout, chunk=chunk)

    def models(
        self, kind: str | None = None, state: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The model registry's versions (``TrainingService.models``)."""
        return self.training.models(kind, state, limit)

    def model(self, version_id: int) -> dict[str, Any]:
        """One model version (``TrainingService.model``)."""
        return self.training.model(version_id)

    def active_models(self) -> dict[str, dict[str, Any]]:
        """The active version of each kind (``TrainingService.active_models``)."""
        return self.training.active_models()

    def promote(self, version_ids: Sequence[int]) -> list[int]:
        """Activate these versions (``TrainingService.promote``)."""
        return self.training.promote(version_ids)

    def rollback(self, kind: str) -> dict[str, Any]:
        """Re-activate the previous version of ``kind`` (``TrainingService.rollback``)."""
        return self.training.rollback(kind)

    def evaluate(
        self, k: int = 10, max_tracks: int = 20000, seed: int = 0, labels: str | dict[str, str] | None = None
    ) -> EvaluationReport:
        """Precision@k and hubness of each space, classifiers' scores, never on training tracks
        (``TrainingService.evaluate``)."""
        return self.training.evaluate(k, max_tracks, seed, labels)

    def report(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write the HTML report to ``out_dir`` (``TrainingService.report``)."""
        return self.training.report(out_dir)

    def space_map(self, space: str, method: str = "umap", *, refresh: bool = False) -> SpaceMapResult:
        """2-D coordinates of a similarity space's tracks, cached per model version (``TrainingService.space_map``)."""
        return self.training.space_map(space, method, refresh=refresh)

    # ------------------------------------------------------------------ questions (index.queries)
    def similar(self, track: TrackRef, options: SearchOptions | None = None, **args: Unpack[SearchArgs]) -> QueryResult:
        """The tracks closest to ``track`` (``QueryService.similar``); ``args``: fields of ``SearchOptions``."""
        return self.queries.similar(track, as_options(options, args))

    def recommend(
        self,
        liked: Sequence[TrackRef],
        disliked: Sequence[TrackRef] = (),
        *,
        options: SearchOptions | None = None,
        history: Sequence[TrackRef] = (),
        **args: Unpack[SearchArgs],
    ) -> QueryResult:
        """More like ``liked``, less like ``disliked`` (``QueryService.recommend``)."""
        return self.queries.recommend(liked, disliked, as_options(options, args), history)

    def playlist(
        self, start: TrackRef, end: TrackRef, options: SearchOptions | None = None, **args: Unpack[SearchArgs]
    ) -> QueryResult:
        """A smooth path of ``k`` (or ``n``) tracks from ``start`` to ``end`` (``QueryService.playlist``)."""
        return self.queries.playlist(start, end, as_options(options, args))

    def by_genre(self, genre: str, k: int = 10) -> QueryResult:
        """Tracks of ``genre``, most confident first (``QueryService.by_genre``)."""
        return self.queries.by_genre(genre, k)

    def genre_of(self, track: TrackRef) -> GenreResult:
        """The genre model's answer for ``track`` (``QueryService.genre_of``)."""
        return self.queries.genre_of(track)

    def cluster_of(self, track: TrackRef, model: str = "kmeans") -> ClusterResult:
        """The cluster of ``track`` (``QueryService.cluster_of``)."""
        return self.queries.cluster_of(track, model)

    def tags_of(self, track: TrackRef, n: int = 10) -> TagsResult:
        """The most probable musicnn tags of ``track`` (``QueryService.tags_of``)."""
        return self.queries.tags_of(track, n)

    def search_by_tags(
        self, tags: Sequence[str] = (), /, options: SearchOptions | None = None, **args: Unpack[SearchArgs]
    ) -> QueryResult:
        """Tracks with every one of ``tags`` (``QueryService.search_by_tags``; ``tags=`` as a keyword is the
        option of the same name)."""
        return self.queries.search_by_tags(tags, as_options(options, args))

    # ------------------------------------------------------------------ the library (index.library)
    def search_tracks(self, query: str, field: str = "any", limit: int = 20, offset: int = 0) -> SearchResult:
        """Tracks matching every word of ``query``, best first (``LibraryService.search_tracks``)."""
        return self.library.search_tracks(query, field, limit, offset)

    def track_details(self, track: TrackRef) -> TrackDetails:
        """Everything about one track (``LibraryService.track_details``)."""
        return self.library.track_details(track)

    def track_summaries(self, tracks: Sequence[TrackRef]) -> list[TrackSummary]:
        """Title, artist, album, genre, duration of ``tracks`` (``LibraryService.track_summaries``)."""
        return self.library.track_summaries(tracks)

    def track_files(self, tracks: Sequence[TrackRef]) -> list[TrackFile]:
        """The files of ``tracks`` as the index recorded them (``LibraryService.track_files``)."""
        return self.library.track_files(tracks)

    def spaces(self) -> list[dict[str, Any]]:
        """The similarity spaces: which can answer, which is the default (``LibraryService.spaces``)."""
        return self.library.spaces()

    def duplicates(self, kind: str | None = None, *, limit: int = 1000, offset: int = 0) -> list[DuplicateGroup]:
        """Groups of files that hold one recording or versions of one song, each with its preferred file
        (``DuplicateService.duplicates``)."""
        return self.dupes.duplicates(kind, limit=limit, offset=offset)

    # ------------------------------------------------------------------ composed here
    def prefer_duplicate(self, track: TrackRef) -> list[DuplicateGroup]:
        """Make ``track`` (id or path) the preferred file of its groups (the latest choice in a group wins over
        the quality rule); returns its groups. InvalidArgumentError when the track is in no group."""
        from musicindex.dupes import links
        from musicindex.errors import InvalidArgumentError

        track_id = self.library.track_summaries([track])[0].id
        with self.db.session() as s:
            if not links.load_links(s, [track_id]):
                raise InvalidArgumentError(
                    f"track {track_id} is in no duplicate group: `musicindex duplicates` lists the groups"
                )
            links.choose(s, track_id)
        return [g for g in self.duplicates() if track_id in g.track_ids]

    def similar_to_file(
        self, path: str | os.PathLike[str], options: SearchOptions | None = None, **args: Unpack[SearchArgs]
    ) -> QueryResult:
        """The indexed tracks closest to an outside audio file (analysed, never stored; ``options.space`` None:
        the best available one). The models analyse the file (``ml.probe``), the query layer searches with it; a
        model promoted in between is noticed and the file analysed again for the new version."""
        from musicindex.errors import InvalidArgumentError
        from musicindex.ml import probe

        if not isinstance(path, (str, os.PathLike)) or "\x00" in os.fsdecode(os.fspath(path)):
            raise InvalidArgumentError(f"path must be a file's path without NUL characters, got {path!r}")
        opts = as_options(options, args)
        chosen, version = self.queries.example_space(opts.space)
        opts = SearchOptions.of(opts, space=chosen)
        while True:
            example = probe.analyse_example(self.db, path, space=chosen, version=version, window=self.settings.window)
            try:
                return self.queries.similar_to_example(example, opts)
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
