"""The query layer: genre and similarity answers from pgvector. Reads only.

``QueryMixin`` (in :mod:`musicindex.query.api`) adds ``similar``, ``recommend``,
``by_genre``, ``genre_of``, ``cluster_of``, ``similar_to_file``, ``playlist`` and
``evaluate`` to ``MusicIndex``; results are the dataclasses of
:mod:`musicindex.query.results`; :mod:`musicindex.query.engine` holds the SQL.
"""
from musicindex.query.results import (  # noqa: F401
    ClassifierEvaluation,
    ClusterResult,
    EvaluationReport,
    GenreResult,
    QueryResult,
    SpaceEvaluation,
    TrackHit,
)
