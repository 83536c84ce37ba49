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
    why: dict[str, Any] | None = None
    """Why this hit matched (similarity answers): ``summary`` (one line), ``shared_tags`` (musicnn top tags it
    shares with the query) and ``feature_differences`` (the named features that differ most, with both values)."""

    @property
    def similarity(self) -> float | None:
        """``distance`` as a score in [0, 1]: 1 = the same track (direction), 0 = opposite;
        ``1 - distance / 2`` clipped (the OpenSubsonic ``sonicSimilarity`` convention).
        ``None`` when the hit has no distance (``by_genre``)."""
        if self.distance is None:
            return None
        return min(1.0, max(0.0, 1.0 - float(self.distance) / 2.0))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["similarity"] = self.similarity
        return d

    @classmethod
    def of(
        cls, row: Any, *, distance: float | None = None, score: float | None = None,
        model_version: int | None = None, space: str | None = None,
    ) -> TrackHit:  # fmt: skip
        """A hit from a row with the columns ``id, path, title, artist, album, genre`` (read by name). With
        ``distance``, ``score`` is the similarity ``1 - distance`` unless given."""
        if distance is not None and score is None:
            score = 1.0 - distance
        return cls(int(row.id), row.path, row.title, row.artist, row.album, row.genre, distance, score,
                   model_version, space)  # fmt: skip


@dataclass(frozen=True)
class Example:
    """An outside audio file as the query layer sees it (analysed in ``musicindex.ml.probe``, never stored).

    ``features``: its 43 raw features; ``musicnn`` / ``tags``: its musicnn embedding and tag probabilities (when
    the space needs them); ``embeddings``: its vector under a trained model version (version id -> vector).
    """

    path: str
    features: Any = None
    musicnn: Any = None
    tags: Any = None
    embeddings: dict[int, Any] = field(default_factory=dict)
    duration: float | None = None
    """The file's length in seconds (an answer from a few seconds of audio is rough: the page says so)."""


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


@dataclass(frozen=True)
class TagsResult:
    """The musicnn tags of one track: ``tags`` (tag, probability), most probable first, under a musicnn version."""

    track_id: int
    path: str
    model_version_id: int
    tags: list[tuple[str, float]]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tags"] = [{"tag": t, "probability": p} for t, p in self.tags]
        return d


# --------------------------------------------------------------------------- track search, details, map (HTTP API, web)
@dataclass(frozen=True)
class TrackSummary:
    """A track in a list that is no similarity answer (search results, a playlist's entries)."""

    id: int
    path: str
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    duration: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, row: Any) -> TrackSummary:
        """From a row with the columns ``id, path, title, artist, album, genre, duration`` (read by name)."""
        duration = float(row.duration) if row.duration is not None else None
        return cls(int(row.id), row.path, row.title, row.artist, row.album, row.genre, duration)


@dataclass(frozen=True)
class TrackFile:
    """The file of a track as the index recorded it: what ``musicindex.media`` checks before serving it.

    ``path`` is the name to open (a name that is not valid UTF-8 keeps its bytes as surrogate escapes:
    ``os.fsencode(path)`` gives them back); ``display_path`` is ``tracks.path`` (valid text, what queries show);
    ``size`` and ``mtime`` are what the last registration or analysis saw (None: never seen)."""

    id: int
    path: str
    display_path: str
    size: int | None
    mtime: float | None
    status: str


@dataclass(frozen=True)
class SearchResult:
    """Tracks whose title, artist, album or file name match ``query`` (word prefixes, all words).

    ``candidates``: how many matches were ranked; ``truncated``: more tracks match than were
    ranked (``candidates`` is the cap): a longer query narrows the answer.
    """

    query: str
    field: str
    items: list[TrackSummary]
    candidates: int
    truncated: bool
    limit: int
    offset: int

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.items]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["items"] = [t.to_dict() for t in self.items]
        return d


@dataclass(frozen=True)
class TrackDetails:
    """Everything known about one track: file facts, tags, the 43 features, the genre model's
    answer, the cluster, and the pretrained tag probabilities (best first) when that space exists.

    ``genre`` / ``cluster`` are ``None`` when no model answers for the track; ``notes`` then
    says why (the message of the error the query would raise).
    """

    id: int
    path: str
    status: str
    title: str | None
    artist: str | None
    album: str | None
    year: int | None
    genre_tag: str | None
    label: str | None
    label_source: str | None
    duration: float | None
    sample_rate: int | None
    channels: int | None
    format: str | None
    size: int | None
    error: str | None
    indexed_at: str | None
    features: dict[str, float] | None
    genre: GenreResult | None
    cluster: ClusterResult | None
    tags: dict[str, float] | None = None
    tags_model_version: int | None = None
    notes: dict[str, str] = field(default_factory=dict)
    # descriptors (``track_descriptors``; None when unknown: no steady beat, no key, not analysed yet)
    tempo: float | None = None
    """BPM."""
    tempo_confidence: float | None = None
    key: str | None = None
    """E.g. "A minor"."""
    key_confidence: float | None = None
    camelot: str | None = None
    loudness: float | None = None
    """EBU R128 integrated loudness, LUFS."""
    loudness_range: float | None = None
    true_peak: float | None = None
    replay_gain: float | None = None
    """ReplayGain 2.0 track gain, dB (-18 LUFS reference)."""
    album_gain: float | None = None
    energy: float | None = None
    danceability: float | None = None
    moods: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["genre"] = self.genre.to_dict() if self.genre is not None else None
        d["cluster"] = self.cluster.to_dict() if self.cluster is not None else None
        return d


@dataclass(frozen=True)
class MapPoint:
    id: int
    x: float
    y: float
    group: str | None
    title: str | None
    artist: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LibraryMap:
    """A 2-D picture of a similarity space: PCA of (a bounded random sample of) its unit vectors.

    ``color_by``: ``genre`` (label, else the genre model's prediction) or ``cluster`` (the
    active ``kmeans`` clustering); ``groups``: the distinct group names, most frequent first;
    ``explained_variance``: the share of variance of each of the two axes.
    """

    space: str
    model_version_id: int | None
    color_by: str
    total: int
    sampled: int
    points: list[MapPoint]
    groups: list[str]
    explained_variance: list[float]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["points"] = [p.to_dict() for p in self.points]
        return d
