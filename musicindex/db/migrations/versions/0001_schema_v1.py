"""schema v1: tracks, features, spectrograms, model registry, predictions, clusters, embeddings

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

from musicindex.vocab import FEATURE_NAMES, N_FEATURES

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TRACK_STATUSES = ("pending", "indexed", "failed", "missing")
LABEL_SOURCES = ("tag", "folder", "csv")
MODEL_KINDS = ("knn", "logreg", "ann", "cnn", "kmeans", "birch", "gmm", "scaler")
MODEL_STATES = ("training", "candidate", "active", "retired", "failed")
SPACES = ("features", "ann", "cnn")


def _ts(name: str, nullable: bool = False, default: bool = True) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=sa.func.now() if default else None
    )


def upgrade() -> None:
    bind = op.get_bind()
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar()
    if available is None:
        raise RuntimeError(
            "pgvector is not installed on this PostgreSQL server (no 'vector' in pg_available_extensions); "
            "install pgvector or use the embedded server (unset MUSICINDEX_DATABASE_URL)"
        )
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")

    op.create_table(
        "ingest_batches",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("roots", postgresql.JSONB, nullable=False),
        _ts("created_at"),
        _ts("finished_at", nullable=True, default=False),
        sa.Column("scanned", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queued", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("moved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("missing", sa.Integer, nullable=False, server_default="0"),
    )

    op.create_table(
        "tracks",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("mtime", sa.Double),
        sa.Column("duration", sa.Double),
        sa.Column("sample_rate", sa.Integer),
        sa.Column("channels", sa.SmallInteger),
        sa.Column("format", sa.String(32)),
        sa.Column("title", sa.Text),
        sa.Column("artist", sa.Text),
        sa.Column("album", sa.Text),
        sa.Column("year", sa.Integer),
        sa.Column("genre_tag", sa.Text),
        sa.Column("label", sa.Text),
        sa.Column("label_source", sa.String(16)),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("batch_id", sa.BigInteger, sa.ForeignKey("ingest_batches.id", ondelete="SET NULL")),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("indexed_at", nullable=True, default=False),
        sa.CheckConstraint(f"status IN {TRACK_STATUSES}", name="ck_tracks_status"),
        sa.CheckConstraint(f"label_source IS NULL OR label_source IN {LABEL_SOURCES}", name="ck_tracks_label_source"),
    )
    for col in ("status", "content_hash", "label", "artist", "batch_id"):
        op.create_index(f"ix_tracks_{col}", "tracks", [col])

    op.create_table(
        "track_features",
        sa.Column("track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("vec", Vector(N_FEATURES), nullable=False),
        _ts("computed_at"),
        *[sa.Column(name, sa.Double, nullable=False) for name in FEATURE_NAMES],
    )

    op.create_table(
        "spectrograms",
        sa.Column("track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("n_mels", sa.SmallInteger, nullable=False),
        sa.Column("n_frames", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        _ts("computed_at"),
    )
    # spectrogram bytes are already compressed: keep them out of TOAST compression
    op.execute("ALTER TABLE spectrograms ALTER COLUMN data SET STORAGE EXTERNAL")

    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trigger", sa.String(16), nullable=False, server_default="manual"),
        sa.Column("status", sa.String(16), nullable=False, server_default="running"),
        sa.Column("models", postgresql.JSONB, nullable=False),
        sa.Column("data_fingerprint", sa.String(64)),
        sa.Column("comparison", postgresql.JSONB),
        sa.Column("error", sa.Text),
        _ts("started_at"),
        _ts("finished_at", nullable=True, default=False),
    )

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="training"),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("training_runs.id", ondelete="SET NULL")),
        sa.Column("params", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("snapshot", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("metrics", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("classes", postgresql.JSONB),
        sa.Column("embedding_dim", sa.Integer),
        sa.Column("artifact", sa.LargeBinary),
        sa.Column("artifact_sha256", sa.String(64)),
        sa.Column("training_seconds", sa.Double),
        sa.Column("error", sa.Text),
        _ts("created_at"),
        _ts("activated_at", nullable=True, default=False),
        sa.CheckConstraint(f"kind IN {MODEL_KINDS}", name="ck_model_versions_kind"),
        sa.CheckConstraint(f"state IN {MODEL_STATES}", name="ck_model_versions_state"),
    )
    op.create_index(
        "uq_model_versions_active_kind",
        "model_versions",
        ["kind"],
        unique=True,
        postgresql_where=sa.text("state = 'active'"),
    )

    def _per_version(name: str, *cols: sa.Column, checks: tuple = ()) -> None:
        op.create_table(
            name,
            sa.Column(
                "model_version_id",
                sa.Integer,
                sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
            *cols,
            *checks,
        )

    _per_version(
        "predictions",
        sa.Column("genre", sa.Text, nullable=False),
        sa.Column("confidence", sa.Double, nullable=False),
        sa.Column("probabilities", postgresql.JSONB, nullable=False),
    )
    _per_version("cluster_assignments", sa.Column("cluster", sa.Integer, nullable=False))
    _per_version(
        "embeddings",
        sa.Column("space", sa.String(16), nullable=False),
        sa.Column("embedding", Vector(), nullable=False),
        checks=(sa.CheckConstraint(f"space IN {SPACES}", name="ck_embeddings_space"),),
    )


def downgrade() -> None:
    # per-model-version HNSW indexes are dropped with the table
    for table in (
        "embeddings",
        "cluster_assignments",
        "predictions",
        "model_versions",
        "training_runs",
        "spectrograms",
        "track_features",
        "tracks",
        "ingest_batches",
    ):
        op.drop_table(table)
    op.execute("DROP EXTENSION IF EXISTS vector")
