"""the study's planned models: kinds svm, forest, tree, gbm, ensemble and agglomerative; cached 2-D maps

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

* the new classifiers ``svm``, ``forest``, ``tree``, ``gbm``, ``ensemble`` and the clusterer ``agglomerative`` (the
  ``model_versions.kind`` CHECK of 0009 is a name pattern that already accepts them);
* ``musicindex_genre_model_version`` chooses among every classifier kind (same rule: the preferred kind, or for
  ``auto`` the active classifier with the highest ``cv_macro_f1_mean``);
* ``space_maps``: 2-D coordinates of a similarity space's tracks (PCA, t-SNE or UMAP), computed once per model
  version and cached (``musicindex.ml.maps``); removed with their version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

NEW_KINDS = "('svm', 'forest', 'tree', 'gbm', 'ensemble', 'agglomerative')"
CLASSIFIERS_0005 = "('knn', 'logreg', 'ann', 'cnn')"
CLASSIFIERS = "('knn', 'logreg', 'svm', 'forest', 'tree', 'gbm', 'ensemble', 'ann', 'cnn')"
MAP_METHODS = "('pca', 'tsne', 'umap')"

GENRE_MODEL = """
CREATE OR REPLACE FUNCTION musicindex_genre_model_version(preference text DEFAULT NULL) RETURNS integer
LANGUAGE sql STABLE AS $$
    WITH pref AS (
        SELECT COALESCE(preference, NULLIF(current_setting('musicindex.genre_model', true), ''), 'auto') AS p
    )
    SELECT mv.id FROM model_versions mv, pref
    WHERE mv.state = 'active' AND mv.kind IN {classifiers}
      AND (pref.p = 'auto' OR mv.kind = pref.p)
    ORDER BY CASE WHEN jsonb_typeof(mv.metrics -> 'cv_macro_f1_mean') = 'number'
                  THEN (mv.metrics ->> 'cv_macro_f1_mean')::float8 ELSE '-infinity'::float8 END DESC, mv.id
    LIMIT 1
$$;
COMMENT ON FUNCTION musicindex_genre_model_version(text) IS
    'the classifier that answers genre questions: the preferred kind (argument, or SET musicindex.genre_model) '
    'if active, or for auto the active classifier with the highest cv_macro_f1_mean';
"""


def upgrade() -> None:
    op.execute(GENRE_MODEL.format(classifiers=CLASSIFIERS))
    op.create_table(
        "space_maps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "model_version_id", sa.Integer, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("track_ids", postgresql.ARRAY(sa.BigInteger), nullable=False),
        sa.Column("coords", postgresql.ARRAY(sa.REAL), nullable=False),
        sa.Column("params", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("seconds", sa.Double),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"method IN {MAP_METHODS}", name="ck_space_maps_method"),
        sa.CheckConstraint("cardinality(coords) = 2 * cardinality(track_ids)", name="ck_space_maps_coords"),
        sa.UniqueConstraint("model_version_id", "method", name="uq_space_maps_version_method"),
    )


def downgrade() -> None:
    op.drop_table("space_maps")
    op.execute(GENRE_MODEL.format(classifiers=CLASSIFIERS_0005))
    op.execute(f"DELETE FROM model_versions WHERE kind IN {NEW_KINDS}")
