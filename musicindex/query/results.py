"""Typed results of the query layer. Every object serializes with ``to_dict()`` (JSON-ready)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrackHit:
    """One track in an answer.

    ``distance`` is the cosine distance to the query (0 = same direction, 2 = opposite) in
    ``space``; ``score`` is a query-specific "higher is better" number (similarity
    ``1 - distance`` for similarity queries, the genre model's probability for ``by_genre``).
    ``genre`` is the track's label if it has one, else the genre model's prediction.
    ``model_version`` is the model version whose vectors (or predictions) produced the hit
    (``None``: raw features standardized on the fly, no model involved).
    """

    id: int
    path: str
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    distance: float | None
    score: float | None
    model_version: int | None
    space: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QueryResult:
    """The answer of a list query (similar, recommend, by_genre, playlist, similar_to_file).

    ``model_version_id`` and ``dimension`` say which vectors answered (one consistent
    snapshot); ``method`` is ``"hnsw"`` (approximate index scan) or ``"exact"`` (brute force);
    ``ef_search`` the HNSW search width used (``None`` for exact search).
    """

    query: str
    space: str | None
    model_version_id: int | None
    dimension: int | None
    method: str
    items: list[TrackHit]
    ef_search: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[TrackHit]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> TrackHit:
        return self.items[i]

    @property
    def ids(self) -> list[int]:
        return [h.id for h in self.items]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "space": self.space,
            "model_version_id": self.model_version_id,
            "dimension": self.dimension,
            "method": self.method,
            "ef_search": self.ef_search,
            "params": self.params,
            "items": [h.to_dict() for h in self.items],
        }


@dataclass(frozen=True)
class GenreResult:
    """The genre model's answer for one track (``label``: the track's own training label, if any)."""

    track_id: int
    path: str
    genre: str
    confidence: float
    probabilities: dict[str, float]
    model_version_id: int
    model_kind: str
    label: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClusterResult:
    """The cluster of one track in the active clustering of ``model_kind``; ``size``: tracks in it."""

    track_id: int
    path: str
    cluster: int
    size: int
    model_version_id: int
    model_kind: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
