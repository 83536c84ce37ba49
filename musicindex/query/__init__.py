"""The query layer: genre and similarity answers from pgvector. Reads only.

:class:`~musicindex.query.service.QueryService` answers ``similar``, ``recommend``,
``by_genre``, ``genre_of``, ``cluster_of``, ``similar_to_file`` and ``playlist`` (``MusicIndex``
offers them); results are the dataclasses of :mod:`musicindex.query.results`;
:mod:`musicindex.query.engine` holds the snapshot, the spaces and the SQL.
"""

from musicindex.query.results import ClusterResult, GenreResult, QueryResult, TrackHit

__all__ = ["ClusterResult", "GenreResult", "QueryResult", "TrackHit"]
