"""Engine, sessions, and the checks every entry point runs before touching data."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from musicindex.db import migrate
from musicindex.errors import (
    ConfigError,
    DatabaseUnavailableError,
    PgvectorMissingError,
    SchemaOutdatedError,
)

CONNECT_TIMEOUT_S = 5


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"MUSICINDEX_DATABASE_URL is not a valid URL ({exc}); expected postgresql+psycopg2://user:pass@host:5432/db"
        ) from None
    return create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "musicindex"},
    )


@dataclass
class SchemaInfo:
    current: str | None
    head: str
    postgres_version: str
    pgvector_version: str | None

    @property
    def at_head(self) -> bool:
        return self.current == self.head


class Database:
    """One engine and its session factory. ``Database.connect()`` is the usual way in."""

    def __init__(self, url: str, *, pool_size: int = 5):
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    # -- construction ------------------------------------------------------
    @classmethod
    def connect(cls, url: str, *, check_schema: bool = True, pool_size: int = 5) -> Database:
        """Connect to ``url`` (``config.database_url(settings)`` names the configured or embedded one).

        Starts nothing (entry points call ``servers.start``). Raises DatabaseUnavailableError
        if the server does not answer and SchemaOutdatedError if migrations are pending
        (``check_schema=False`` skips that, for `db upgrade`).
        """
        db = cls(url, pool_size=pool_size)
        db.ping()
        if check_schema:
            db.require_schema()
        return db

    # -- checks --------------------------------------------------------------
    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailableError(
                f"cannot connect to PostgreSQL at {_redact(self.url)}: {reason}.\n"
                "Check MUSICINDEX_DATABASE_URL (or unset it to use the embedded server), "
                "and that the server is running (`musicindex services start` starts the embedded one)."
            ) from None

    def schema_info(self) -> SchemaInfo:
        with self.engine.connect() as conn:
            pg = conn.execute(text("SHOW server_version")).scalar_one()
            vec = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
            current = migrate.current_revision(conn)
        return SchemaInfo(current, migrate.head_revision(), pg.split()[0], vec)

    def require_schema(self) -> None:
        info = self.schema_info()
        if not info.at_head:
            state = "empty (no migrations applied)" if info.current is None else f"at revision {info.current}"
            raise SchemaOutdatedError(
                f"the database schema is {state}, but this version of musicindex needs {info.head}.\n"
                "Run `musicindex db upgrade` to migrate it."
            )

    def pgvector_available(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            ).scalar()

    # -- migrations ----------------------------------------------------------
    def upgrade(self, revision: str = "head") -> None:
        if self.pgvector_available() is None:
            raise PgvectorMissingError(pgvector_missing_message(self.url))
        migrate.upgrade(self.engine, revision)

    def downgrade(self, revision: str = "base") -> None:
        migrate.downgrade(self.engine, revision)

    # -- sessions ------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def pgvector_missing_message(url: str) -> str:
    return (
        f"the PostgreSQL server at {_redact(url)} has no pgvector extension "
        "(no 'vector' in pg_available_extensions).\n"
        "Install it on the server (e.g. the postgresql-NN-pgvector package, or the pgvector/pgvector Docker image), "
        "or unset MUSICINDEX_DATABASE_URL to use the embedded PostgreSQL, which ships pgvector."
    )
