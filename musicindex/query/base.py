"""What every read-only service of the query layer shares: the database, the settings and one snapshot per answer."""

from __future__ import annotations

from contextlib import AbstractContextManager

from musicindex.config import Settings
from musicindex.db.session import Database
from musicindex.query.snapshot import Snapshot, snapshot


class Reader:
    """A service that answers each question from ONE read-only snapshot (``query.snapshot``)."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """One read-only snapshot with this index's genre-model preference and query timeout."""
        return snapshot(self.db, self.settings.genre_model, timeout=self.settings.query_timeout)
