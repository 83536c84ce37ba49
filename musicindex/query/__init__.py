"""The query layer: genre and similarity answers from pgvector. Reads only.

:class:`~musicindex.query.service.QueryService` answers ``similar``, ``recommend``, ``playlist``,
``by_genre``, ``genre_of``, ``cluster_of``, the tag questions and query by example (``MusicIndex`` offers
them); the similarity questions take one :class:`~musicindex.query.options.SearchOptions` and are answered by
the similarity engine (:mod:`musicindex.query.engine`, the only caller of the vector search). The library as
music apps see it is :mod:`~musicindex.query.catalog` (browsing), :mod:`~musicindex.query.listener` (a listener's
state) and :mod:`~musicindex.query.mixes` (the sonic answers). Results are the dataclasses of
:mod:`musicindex.query.results` and :mod:`musicindex.query.items`.
"""

from musicindex.query.options import SearchOptions
from musicindex.query.results import ClusterResult, GenreResult, QueryResult, TrackHit

__all__ = ["ClusterResult", "GenreResult", "QueryResult", "SearchOptions", "TrackHit"]
