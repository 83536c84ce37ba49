"""the lda space in SQL: ``musicindex_similar`` names it among the trained spaces

The ``lda`` kind (a projection of the musicnn embedding learned from the labels) writes embeddings in its own
``lda`` space; the name patterns of revision 0009 accept it already. ``musicindex_similar`` (revision 0009's) lists
it among the trained spaces, so that an lda space with no active version says to train it (`musicindex train
--models lda`) instead of "unknown space" or "run `musicindex embed`".

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_SPACE_CHECK_0009 = (
    "    IF space IS NULL OR (space NOT IN ('features', 'ann', 'cnn', 'musicnn') AND NOT EXISTS (",
    "'unknown space %; choose one of: features, ann, cnn, musicnn, or an embedding model''s '",
)
_SPACE_CHECK = (
    "    IF space IS NULL OR (space NOT IN ('features', 'ann', 'cnn', 'lda', 'musicnn') AND NOT EXISTS (",
    "'unknown space %; choose one of: features, ann, cnn, lda, musicnn, or an embedding model''s '",
)
_NOT_EMBEDDED_0009 = "        IF space NOT IN ('features', 'ann', 'cnn') THEN"
_NOT_EMBEDDED = "        IF space NOT IN ('features', 'ann', 'cnn', 'lda') THEN"
_COMMENT_0009 = "(features, ann, cnn, musicnn or another embedding model''s; NULL: the best '"
_COMMENT = "(features, ann, cnn, lda, musicnn or another embedding model''s; NULL: the best '"


def _revision_0009_similar() -> str:
    """musicindex_similar exactly as revision 0009 created it."""
    path = Path(__file__).with_name("0009_analysis_stages.py")
    spec = importlib.util.spec_from_file_location("musicindex_migration_0009", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module._similar())


def _similar() -> str:
    sql = _revision_0009_similar()
    pairs = (*zip(_SPACE_CHECK_0009, _SPACE_CHECK, strict=True), (_NOT_EMBEDDED_0009, _NOT_EMBEDDED))
    for old, new in (*pairs, (_COMMENT_0009, _COMMENT)):
        assert old in sql, old
        sql = sql.replace(old, new)
    return sql


def upgrade() -> None:
    op.execute("DROP FUNCTION musicindex_similar(bigint, integer, text)")
    op.execute(_similar())


def downgrade() -> None:
    op.execute("DROP FUNCTION musicindex_similar(bigint, integer, text)")
    op.execute(_revision_0009_similar())
