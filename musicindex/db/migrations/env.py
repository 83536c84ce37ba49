"""Alembic environment: runs against a connection handed in by musicindex, or the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from musicindex.db.orm import Base
from musicindex.db.orm_dupes import TrackFingerprint

config = context.config
target_metadata = Base.metadata
assert TrackFingerprint.metadata is target_metadata  # the duplicates' models (db/orm_dupes.py) too


def _url() -> str:
    """The URL given to Alembic, else musicindex's configured (or embedded) database; starts nothing."""
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from musicindex.config import database_url

    return database_url()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
