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
    Boolean,
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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from musicindex.vocab import (
    COVER_KINDS,
    FEATURE_NAMES,
    ITEM_TYPES,
    LABEL_SOURCES,
    MAP_METHODS,
    MODEL_NAME_PATTERN,
    MODEL_STATES,
    N_FEATURES,
    PLAYBACK_STATES,
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
        # migration 0004: one row per file on disk (a display path plus the bytes of a name that is not UTF-8)
        Index("uq_tracks_path", "path", "path_bytes", unique=True, postgresql_nulls_not_distinct=True),
        # migration 0006: the library (partial: registered, unanalysed tracks are in none of them)
        Index(
            "ix_tracks_album", "album_id", "disc_no", "track_no", "id", postgresql_where=text("album_id IS NOT NULL")
        ),
        Index("ix_tracks_artist_id", "artist_id", postgresql_where=text("artist_id IS NOT NULL")),
        Index("ix_tracks_genres", "genres", postgresql_using="gin", postgresql_where=text("genres IS NOT NULL")),
        Index(
            "ix_tracks_search_grams",
            "search_grams",
            postgresql_using="gin",
            postgresql_where=text("search_grams IS NOT NULL"),
        ),
        Index("ix_tracks_unsearchable", "id", postgresql_where=text("search_text IS NULL")),
        # migration 0007: the Subsonic API
        Index("ix_tracks_indexed_id", "id", postgresql_where=text("status = 'indexed'")),
        # migration 0008: the web player's "every song" list
        Index("ix_tracks_title_lower", text("lower(title)"), "id", postgresql_where=text("status = 'indexed'")),
        Index(
            "ix_tracks_artist_lower",
            text("lower(artist)"),
            "album_id",
            "disc_no",
            "track_no",
            "id",
            postgresql_where=text("status = 'indexed'"),
        ),
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
    # migration 0006: the library (maintained by ingestion, ``musicindex.ingest.library``)
    artist_id: Mapped[int | None] = mapped_column(ForeignKey("artists.id"))
    album_id: Mapped[int | None] = mapped_column(ForeignKey("albums.id"))
    album_artist: Mapped[str | None] = mapped_column(Text)
    track_no: Mapped[int | None] = mapped_column(Integer)
    disc_no: Mapped[int | None] = mapped_column(Integer)
    musicbrainz_id: Mapped[str | None] = mapped_column(Text)
    bit_rate: Mapped[int | None] = mapped_column(Integer)
    """kbit/s (the container's, else size / duration)."""
    has_picture: Mapped[bool | None] = mapped_column(Boolean)
    genres: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    """The genre tags (several values, or ``;``-separated ones, split)."""
    search_text: Mapped[str | None] = mapped_column(Text)
    """Folded title, artist, album, genres and folder (``musicindex.textnorm``)."""
    search_grams: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    """Trigram hashes of ``search_text`` (GIN): words found by their parts."""
    tags_version: Mapped[int | None] = mapped_column(SmallInteger)
    """Version of the tag reader that filled these columns (also in ``stage_versions`` as ``tags``)."""
    stage_versions: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    """Analysis stage -> version of the values stored for it (``ingest.stages``; migration 0009): an older or
    missing one is re-run by the next ingest."""
    retryable: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """The failure came from the environment (time limit, lost worker, memory, I/O), not from the file."""
    auto_retries: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    """How often an ingest retried this failed track by itself (at most once, ``lifecycle.AUTO_RETRIES``)."""

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
        CheckConstraint(f"kind ~ '{MODEL_NAME_PATTERN}'", name="ck_model_versions_kind"),  # 0009
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
    __table_args__ = (CheckConstraint(f"space ~ '{MODEL_NAME_PATTERN}'", name="ck_embeddings_space"),)  # 0009

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    space: Mapped[str] = mapped_column(String(16))
    embedding: Mapped[Any] = mapped_column(Vector())


class TrackTag(Base):
    """The tag probabilities of a track under one version of an embedding model that has tags (musicnn: ``probs``
    in the order of the version's ``classes``), and its top tags (probability >= ``vocab.TOP_TAG_MIN``, best
    first)."""

    __tablename__ = "track_tags"
    __table_args__ = (Index("ix_track_tags_top_tags", "top_tags", postgresql_using="gin"),)

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    probs: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    top_tags: Mapped[list[str]] = mapped_column(ARRAY(Text))


class TrackDescriptors(Base):
    """Tempo, key, loudness, energy, danceability and named moods of a track (the ``descriptors`` stage; 0013).
    NULL where the estimator gives no value (no steady beat, no key, too quiet) or failed."""

    __tablename__ = "track_descriptors"
    __table_args__ = (
        CheckConstraint("tempo IS NULL OR tempo BETWEEN 20 AND 400", name="ck_track_descriptors_tempo"),
        CheckConstraint("mode IS NULL OR mode IN ('major', 'minor')", name="ck_track_descriptors_mode"),
        CheckConstraint("camelot IS NULL OR camelot ~ '^(1[0-2]|[1-9])[AB]$'", name="ck_track_descriptors_camelot"),
        CheckConstraint(
            "(tempo_confidence IS NULL OR tempo_confidence BETWEEN 0 AND 1)"
            " AND (key_confidence IS NULL OR key_confidence BETWEEN 0 AND 1)"
            " AND (energy IS NULL OR energy BETWEEN 0 AND 1)"
            " AND (danceability IS NULL OR danceability BETWEEN 0 AND 1)",
            name="ck_track_descriptors_unit",
        ),
        Index("ix_track_descriptors_tempo", "tempo"),
        Index("ix_track_descriptors_camelot", "camelot"),
        Index("ix_track_descriptors_moods", "moods", postgresql_using="gin"),
    )

    track_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    tempo: Mapped[float | None] = mapped_column(Double)
    tempo_confidence: Mapped[float | None] = mapped_column(Double)
    key: Mapped[str | None] = mapped_column(Text)
    mode: Mapped[str | None] = mapped_column(String(5))
    key_confidence: Mapped[float | None] = mapped_column(Double)
    camelot: Mapped[str | None] = mapped_column(String(3))
    loudness: Mapped[float | None] = mapped_column(Double)
    loudness_range: Mapped[float | None] = mapped_column(Double)
    true_peak: Mapped[float | None] = mapped_column(Double)
    replay_gain: Mapped[float | None] = mapped_column(Double)
    energy: Mapped[float | None] = mapped_column(Double)
    danceability: Mapped[float | None] = mapped_column(Double)
    moods: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


# --------------------------------------------------------------------------- the library (migration 0006)
class Artist(Base):
    """An artist (an album artist, or a track's artist): a stable id per folded name."""

    __tablename__ = "artists"
    __table_args__ = (Index("ix_artists_sort", "sort_key", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_key: Mapped[str] = mapped_column(Text, unique=True)
    sort_key: Mapped[str] = mapped_column(Text)
    musicbrainz_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Album(Base):
    """An album: one per (album artist, folded album name); one per folder for tracks without an album tag.

    ``song_count``, ``duration`` and ``size`` count its indexed tracks (``ingest.library.refresh_albums``).
    """

    __tablename__ = "albums"
    __table_args__ = (
        UniqueConstraint("artist_id", "name_key", name="uq_albums_artist_name"),
        CheckConstraint(f"cover_kind IS NULL OR cover_kind IN {COVER_KINDS}", name="ck_albums_cover_kind"),
        Index("ix_albums_artist", "artist_id"),
        Index("ix_albums_sort", "sort_key", "id", postgresql_where=text("song_count > 0")),
        Index("ix_albums_created", text("created_at DESC"), "id", postgresql_where=text("song_count > 0")),
        Index("ix_albums_year", "year", "id", postgresql_where=text("song_count > 0")),
        Index("ix_albums_genre", "genre", "id", postgresql_where=text("song_count > 0")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"))
    name: Mapped[str] = mapped_column(Text)
    name_key: Mapped[str] = mapped_column(Text)
    sort_key: Mapped[str] = mapped_column(Text)
    folder: Mapped[str | None] = mapped_column(Text)
    """The folder of an album named after it (no album tag); NULL for tagged albums."""
    year: Mapped[int | None] = mapped_column(Integer)
    genre: Mapped[str | None] = mapped_column(Text)
    song_count: Mapped[int] = mapped_column(Integer, server_default="0")
    duration: Mapped[float] = mapped_column(Double, server_default="0")
    size: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cover_kind: Mapped[str | None] = mapped_column(String(8))
    cover_path: Mapped[str | None] = mapped_column(Text)
    cover_path_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)
    cover_track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="SET NULL", use_alter=True))
    musicbrainz_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=_now())


# --------------------------------------------------------------------------- listeners (migration 0006)
class User(Base):
    """A listener: name, admin flag, the password encrypted under the user key (outside the database)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("max_bit_rate IS NULL OR max_bit_rate BETWEEN 0 AND 320", name="ck_users_max_bit_rate"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_key: Mapped[str] = mapped_column(Text, unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_system: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """The local user of a server without accounts (the web page's state lives there)."""
    password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    session_epoch: Mapped[int] = mapped_column(Integer, server_default="0")
    """Bumped when the password changes: every web session signed before is refused."""
    max_bit_rate: Mapped[int | None] = mapped_column(Integer)
    """Most kilobits per second of this listener's streams (migration 0012); NULL or 0: no limit of their own."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=_now())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """sha256 (hex) of the key; the key itself is shown once, never stored."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A logged-in browser's session (migration 0010): only the sha256 of its id is kept."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_id", "user_id"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Annotation(Base):
    """A listener's relation to a track, album or artist: starred, rating, play count, last played."""

    __tablename__ = "annotations"
    __table_args__ = (
        CheckConstraint(f"item_type IN {ITEM_TYPES}", name="ck_annotations_item_type"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_annotations_rating"),
        Index(
            "ix_annotations_starred",
            "user_id",
            "item_type",
            text("starred_at DESC"),
            postgresql_where=text("starred_at IS NOT NULL"),
        ),
        Index(
            "ix_annotations_played",
            "user_id",
            "item_type",
            text("last_played DESC"),
            postgresql_where=text("last_played IS NOT NULL"),
        ),
        Index("ix_annotations_item", "item_type", "item_id"),  # migration 0007
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    item_type: Mapped[str] = mapped_column(String(8), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    starred_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    play_count: Mapped[int] = mapped_column(Integer, server_default="0")
    last_played: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PlayQueue(Base):
    __tablename__ = "play_queues"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    track_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    current_id: Mapped[int | None] = mapped_column(BigInteger)
    position_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    changed_by: Mapped[str | None] = mapped_column(Text)
    current_index: Mapped[int | None] = mapped_column(Integer)
    """Position of the current entry in ``track_ids`` (OpenSubsonic ``indexBasedQueue``; migration 0012)."""


class Playlist(Base):
    __tablename__ = "playlists"
    __table_args__ = (Index("ix_playlists_owner", "owner_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class PlaylistTrack(Base):
    __tablename__ = "playlist_tracks"
    __table_args__ = (Index("ix_playlist_tracks_track", "track_id"),)

    playlist_id: Mapped[int] = mapped_column(ForeignKey("playlists.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))


class NowPlaying(Base):
    __tablename__ = "now_playing"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client: Mapped[str] = mapped_column(Text, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


# --------------------------------------------------------------------------- phones (migration 0012)
class Bookmark(Base):
    """A position in a song a listener keeps (Subsonic bookmarks: audiobooks, long mixes)."""

    __tablename__ = "bookmarks"
    __table_args__ = (
        CheckConstraint("position_ms >= 0", name="ck_bookmarks_position"),
        Index("ix_bookmarks_track", "track_id"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    position_ms: Mapped[int] = mapped_column(BigInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class PlayEvent(Base):
    """One playback a music app reported (``reportPlayback``): time listened, last position, play or skip."""

    __tablename__ = "play_events"
    __table_args__ = (
        CheckConstraint(f"state IN {PLAYBACK_STATES}", name="ck_play_events_state"),
        Index("ix_play_events_open", "user_id", "client", unique=True, postgresql_where=text("ended_at IS NULL")),
        Index("ix_play_events_user_track", "user_id", "track_id", text("started_at DESC")),
        Index("ix_play_events_skips", "user_id", text("started_at DESC"), postgresql_where=text("skipped")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    client: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10))
    position_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    listened_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """Milliseconds of the song heard (time between reports while playing, times the playback rate)."""
    rate: Mapped[float] = mapped_column(Double, server_default="1")
    counted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """Counted as a play (play count, last played)."""
    skipped: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """Stopped before 30 s or a quarter of the song (whichever comes first)."""
    ignore_scrobble: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    reported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SpaceMap(Base):
    """2-D coordinates of a similarity space's tracks by one method (PCA, t-SNE, UMAP), cached per model version
    (``musicindex.ml.maps``); ``coords`` is flat: x0, y0, x1, y1, ... in the order of ``track_ids``."""

    __tablename__ = "space_maps"
    __table_args__ = (
        CheckConstraint(f"method IN {MAP_METHODS}", name="ck_space_maps_method"),
        CheckConstraint("cardinality(coords) = 2 * cardinality(track_ids)", name="ck_space_maps_coords"),
        UniqueConstraint("model_version_id", "method", name="uq_space_maps_version_method"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(8))
    track_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    coords: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    seconds: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
