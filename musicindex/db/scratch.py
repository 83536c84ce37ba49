"""Scratch databases: a new database on a server, dropped afterwards (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from musicindex.db.session import Database


@contextlib.contextmanager
def scratch_database(
    server_url: str, *, prefix: str = "mi_scratch", migrate: bool = True, keep: bool = False, pool_size: int = 3
) -> Iterator[Database]:
    """Create a uniquely named database on the server of ``server_url``; drop it on exit (unless ``keep``).

    ``migrate`` brings it to the Alembic head first. The name is ``{prefix}_{12 hex digits}``.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(make_url(server_url).set(database=name).render_as_string(hide_password=False), pool_size=pool_size)
    try:
        if migrate:
            db.upgrade()
        yield db
    finally:
        db.dispose()
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
