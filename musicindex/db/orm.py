"""The ORM: SQLAlchemy 2 typed models of schema v1.

The Alembic migrations in ``musicindex/db/migrations/`` are the truth; ``tests/test_foundation.py``
checks that these models and the migrated schema agree (no autogenerate diff).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from musicindex.vocab import (
    FEATURE_NAMES,
    LABEL_SOURCES,
    MODEL_KINDS,
    MODEL_STATES,
    N_FEATURES,
    SPACES,
    TRACK_STATUSES,
)


def _now() -> Any:
    return func.now()


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB, list[Any]: JSONB}


class IngestBatch(Base):
    """One `musicindex ingest` call: what it scanned and queued."""

    __tablename__ = "ingest_batches"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    roots: Mapped[list[Any]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    scanned: Mapped[int] = mapped_column(Integer, server_default="0")
    queued: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    moved: Mapped[int] = mapped_column(Integer, server_default="0")
    missing: Mapped[int] = mapped_column(Integer, server_default="0")


class Track(Base):
    __tablename__ = "tracks"
    __table_args__ = (
        CheckConstraint(f"status IN {TRACK_STATUSES}", name="ck_tracks_status"),
        CheckConstraint(f"label_source IS NULL OR label_source IN {LABEL_SOURCES}", name="ck_tracks_label_source"),
        Index("ix_tracks_status", "status"),
        Index("ix_tracks_content_hash", "content_hash"),
        Index("ix_tracks_label", "label"),
        Index("ix_tracks_artist", "artist"),
        Index("ix_tracks_batch_id", "batch_id"),
        # migration 0003: full-text track search (musicindex_search_doc, docs/web.md)
        Index("ix_tracks_search", text("musicindex_search_doc(title, artist, album, path)"), postgresql_using="gin"),
        # migration 0004: one row per file on disk (a display path plus the bytes of a name that is not UTF-8)
        Index("uq_tracks_path", "path", "path_bytes", unique=True, postgresql_nulls_not_distinct=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    """The path as text; for a name that is not valid UTF-8 a display form (undecodable bytes as ``\\xNN``)."""
    path_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The raw path when it is not valid UTF-8 (the worker opens the file by it); NULL otherwise."""
    content_hash: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    mtime: Mapped[float | None] = mapped_column(Double)
    duration: Mapped[float | None] = mapped_column(Double)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int | None] = mapped_column(SmallInteger)
    format: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(Text)
    artist: Mapped[str | None] = mapped_column(Text)
    album: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    genre_tag: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    label_source: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_batches.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=_now())
    indexed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    features: Mapped[TrackFeatures | None] = relationship(back_populates="track", passive_deletes=True)


class TrackFeatures(Base):
    """The 43 features as named columns and as one ``vector(43)``."""

    __tablename__ = "track_features"

    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    vec: Mapped[Any] = mapped_column(Vector(N_FEATURES))
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    track: Mapped[Track] = relationship(back_populates="features")


# the 43 named columns, added to the mapped class from the one feature list
for _name in FEATURE_NAMES:
    setattr(TrackFeatures, _name, mapped_column(_name, Double, nullable=False))
del _name


class Spectrogram(Base):
    """Compact log-mel spectrogram of the analysis window (self-describing bytes)."""

    __tablename__ = "spectrograms"

    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    n_mels: Mapped[int] = mapped_column(SmallInteger)
    n_frames: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class TrainingRun(Base):
    """One training job: which models it trained, on what data, and how it ended."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16), server_default="manual")
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    models: Mapped[list[Any]] = mapped_column(JSONB)
    data_fingerprint: Mapped[str | None] = mapped_column(String(64))
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    """Refreshed while the run is alive; a running run whose heartbeat stopped is stale."""


class ModelVersion(Base):
    """The registry: one trained model, its metrics and its artifact (checked by sha256)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint(f"kind IN {MODEL_KINDS}", name="ck_model_versions_kind"),
        CheckConstraint(f"state IN {MODEL_STATES}", name="ck_model_versions_state"),
        Index("uq_model_versions_active_kind", "kind", unique=True, postgresql_where=text("state = 'active'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), server_default="training")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id", ondelete="SET NULL"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    classes: Mapped[list[Any] | None] = mapped_column(JSONB)
    embedding_dim: Mapped[int | None] = mapped_column(Integer)
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    artifact_hmac: Mapped[str | None] = mapped_column(String(64))
    """HMAC-SHA256 of the artifact under the artifact key (kept outside the database); checked before loading."""
    training_seconds: Mapped[float | None] = mapped_column(Double)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    activated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_genre", "model_version_id", "genre", text("confidence DESC")),)  # 0003

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    genre: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Double)
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSONB)


class ClusterAssignment(Base):
    __tablename__ = "cluster_assignments"

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    cluster: Mapped[int] = mapped_column(Integer)


class Embedding(Base):
    """ANN / CNN / standardized-feature vectors, one row per (model version, track).

    The column is an untyped ``vector`` so versions may differ in dimension; each model
    version gets a partial HNSW expression index
    ``ON embeddings USING hnsw ((embedding::vector(d)) vector_cosine_ops) WHERE model_version_id = v``
    (pgvector's documented way to index several dimensions in one column).
    """

    __tablename__ = "embeddings"
    __table_args__ = (CheckConstraint(f"space IN {SPACES}", name="ck_embeddings_space"),)

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    space: Mapped[str] = mapped_column(String(16))
    embedding: Mapped[Any] = mapped_column(Vector())


class TrackTag(Base):
    """The musicnn tag probabilities of a track under one musicnn version (``probs`` in the order of the
    version's ``classes``), and its top tags (probability >= ``vocab.TOP_TAG_MIN``, best first)."""

    __tablename__ = "track_tags"
    __table_args__ = (Index("ix_track_tags_top_tags", "top_tags", postgresql_using="gin"),)

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    probs: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    top_tags: Mapped[list[str]] = mapped_column(ARRAY(Text))
