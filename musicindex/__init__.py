"""musicindex: index a music folder into PostgreSQL + pgvector; genre and 'sounds like' queries.

from musicindex import MusicIndex
index = MusicIndex.connect()          # embedded servers unless MUSICINDEX_DATABASE_URL is set
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["MusicIndex", "SearchOptions", "Settings", "__version__"]


def __getattr__(name: str):  # lazy: importing musicindex stays cheap for workers and the CLI
    if name == "MusicIndex":
        from musicindex.index import MusicIndex

        return MusicIndex
    if name == "SearchOptions":
        from musicindex.query.options import SearchOptions

        return SearchOptions
    if name == "Settings":
        from musicindex.config import Settings

        return Settings
    raise AttributeError(name)
