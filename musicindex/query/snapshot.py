"""The snapshot every query reads in: ONE read-only ``REPEATABLE READ`` transaction, and what was looked up in it.

The active-version lookup and the vector search of a query see the same snapshot, so a model promoted mid-query
is never half-seen. SQL is sent with psycopg2's client-side parameter interpolation (``%(name)s``): values reach
the server as literals, which lets the planner match the partial HNSW index ``ix_emb_hnsw_v{id} ... WHERE
model_version_id = {id}``. The only values formatted into SQL text are integers produced here (model version id,
dimension, ef_search), never user input.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from musicindex.errors import InvalidArgumentError, QueryTimeoutError, TrackNotFoundError, UnknownGenreError
from musicindex.query.validation import check_text
from musicindex.vocab import GenreCandidate, pick_genre_model


@dataclass(frozen=True)
class VersionInfo:
    id: int
    kind: str
    embedding_dim: int | None
    params: dict[str, Any]
    classes: list[Any] | None
    metrics: dict[str, Any]


@dataclass(frozen=True)
class TrackRow:
    id: int
    path: str
    title: str | None
    artist: str | None
    album: str | None
    label: str | None
    status: str


class Snapshot:
    """A read-only REPEATABLE READ transaction and what was looked up in it."""

    def __init__(self, conn: Connection, genre_model: str = "auto"):
        self.conn = conn
        self.genre_preference = genre_model
        self._versions: dict[str, VersionInfo] | None = None

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        """The rows of ``sql`` (SQLAlchemy ``Row``: read them by column name, ``row.title``)."""
        return list(self.conn.exec_driver_sql(sql, params or {}).fetchall())

    def one(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The first row of ``sql`` or None."""
        return self.conn.exec_driver_sql(sql, params or {}).first()

    def value(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row of ``sql`` (None without a row)."""
        return self.conn.exec_driver_sql(sql, params or {}).scalar()

    def ids(self, sql: str, params: dict[str, Any] | None = None) -> list[int]:
        """The first column of ``sql`` as ints (a list of ids)."""
        return [int(x) for x in self.conn.exec_driver_sql(sql, params or {}).scalars()]

    # -- registry (read only) -------------------------------------------------
    @property
    def versions(self) -> dict[str, VersionInfo]:
        """The active version of each kind, as of this snapshot."""
        if self._versions is None:
            rows = self.all(
                "SELECT id, kind, embedding_dim, params, classes, metrics FROM model_versions WHERE state = 'active'"
            )
            self._versions = {
                r.kind: VersionInfo(int(r.id), r.kind, r.embedding_dim, r.params or {}, r.classes, r.metrics or {})
                for r in rows
            }
        return self._versions

    def genre_model(self) -> VersionInfo | None:
        """The classifier answering genre questions (``vocab.pick_genre_model``), as of this snapshot."""
        active = [GenreCandidate(v.id, v.kind, v.metrics) for v in self.versions.values()]
        pick = pick_genre_model(active, self.genre_preference or "auto")
        return self.versions[pick.kind] if pick is not None else None

    def genre_join(self, track: str = "t", prediction: str = "p") -> tuple[str, str]:
        """(JOIN clause, SQL expression) of a track's genre: its label, else the genre model's prediction.

        The clause (empty when no genre model is active) joins ``predictions`` as ``prediction`` onto the
        tracks row aliased ``track``; the expression reads the genre. The one place that spells that rule.
        """
        gm = self.genre_model()
        if gm is None:
            return "", f"{track}.label"
        join = (
            f"LEFT JOIN predictions {prediction} ON {prediction}.model_version_id = {int(gm.id)} "
            f"AND {prediction}.track_id = {track}.id "
        )
        return join, f"COALESCE({track}.label, {prediction}.genre)"

    # -- tracks ----------------------------------------------------------------
    def track(self, ref: Any) -> TrackRow:
        """A track by id (int) or by path (str / PathLike; a string of digits that is no
        known path is taken as an id)."""
        cols = "SELECT id, path, title, artist, album, label, status FROM tracks "
        row = None
        if isinstance(ref, bool) or ref is None:
            raise InvalidArgumentError(f"a track is given by id (int) or path (str), got {ref!r}")
        if isinstance(ref, (int, np.integer)):
            row = self.one(cols + "WHERE id = %(id)s", {"id": int(ref)})
        elif isinstance(ref, (str, os.PathLike)):
            s = check_text(os.fspath(ref), "track path", max_length=4096)
            row = self.one(cols + "WHERE path = %(p)s", {"p": s})
            if row is None and s:
                try:
                    resolved = str(Path(s).expanduser().resolve())
                except (OSError, RuntimeError, ValueError):
                    resolved = s
                if resolved != s:
                    row = self.one(cols + "WHERE path = %(p)s", {"p": resolved})
            if row is None and s.strip().isdigit() and len(s.strip()) < 19:
                row = self.one(cols + "WHERE id = %(id)s", {"id": int(s.strip())})
        else:
            raise InvalidArgumentError(f"a track is given by id (int) or path (str), got {type(ref).__name__}")
        if row is None:
            raise TrackNotFoundError(
                f"no track {ref!r} in the index (give a track id or the path it was ingested under; "
                "`musicindex status` shows what is indexed, `SELECT id, path FROM musicindex_tracks` lists ids, "
                "`musicindex ingest PATH` adds a file)"
            )
        return TrackRow(int(row.id), row.path, row.title, row.artist, row.album, row.label, row.status)

    def track_ids(self, refs: Iterable[Any]) -> list[int]:
        """The ids of ``refs`` (ids or paths), in order; TrackNotFoundError for the first unknown one. A list of
        ids is checked in one statement (a radio's exclusions name hundreds)."""
        refs = list(refs)
        ids = [int(r) for r in refs if isinstance(r, (int, np.integer)) and not isinstance(r, bool)]
        if len(refs) > 1 and len(ids) == len(refs):
            found = {int(r.id) for r in self.all("SELECT id FROM tracks WHERE id = ANY(%(ids)s)", {"ids": ids})}
            missing = next((i for i in ids if i not in found), None)
            if missing is None:
                return ids
            self.track(missing)  # raises TrackNotFoundError, worded as for one track
        return [self.track(r).id for r in refs]

    # -- genres ----------------------------------------------------------------
    def check_genre(self, genre: Any) -> str:
        """``genre`` if any label or the genre model knows it, else UnknownGenreError listing the known ones."""
        genre = check_text(genre, "genre", max_length=200)
        gm = self.genre_model()
        if gm is not None and genre in (gm.classes or []):
            return genre
        if self.one("SELECT 1 FROM tracks WHERE label = %(g)s LIMIT 1", {"g": genre}) is not None:
            return genre
        known = self.known_genres()
        raise UnknownGenreError(
            f"unknown genre {genre!r}; known genres: "
            + (", ".join(known) if known else "(none: no labels and no trained genre model)")
        )

    def known_genres(self) -> list[str]:
        known = {r.label for r in self.all("SELECT DISTINCT label FROM tracks WHERE label IS NOT NULL")}
        gm = self.genre_model()
        if gm is not None:
            known.update(str(c) for c in (gm.classes or []))
        return sorted(known)


@contextlib.contextmanager
def snapshot(db: Any, genre_model: str = "auto", timeout: float | None = None) -> Iterator[Snapshot]:
    """ONE read-only REPEATABLE READ transaction for a whole query; each of its statements is cancelled after
    ``timeout`` seconds (``MUSICINDEX_QUERY_TIMEOUT``) with a QueryTimeoutError."""
    from sqlalchemy.exc import OperationalError

    with db.engine.connect() as conn, conn.begin():
        begin = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
        if timeout:  # one round trip for both
            begin += f"; SET LOCAL statement_timeout = {max(1, round(float(timeout) * 1000))}"
        conn.exec_driver_sql(begin)
        try:
            yield Snapshot(conn, genre_model)
        except OperationalError as exc:
            if getattr(exc.orig, "pgcode", None) == "57014":  # query_canceled: the statement timeout
                raise QueryTimeoutError(
                    f"the query took longer than {timeout} s (MUSICINDEX_QUERY_TIMEOUT) and was cancelled; "
                    "ask for fewer results, or raise the setting"
                ) from None
            raise
