"""The embedding-model seam: a model added as one file (``tests/fake_embedding.py``) and named in
``MUSICINDEX_EMBEDDING_MODELS`` is a working space end to end — ingested by a real worker (its stage in the one pass,
the whole track decoded at its rate beside the window), similar, tags, tag search, query by example, the Subsonic
instant mix and sonic similarity, status and the backfill — with musicnn not used at all."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sqlalchemy import text

from musicindex.config import get_settings, set_settings
from musicindex.errors import InvalidArgumentError
from musicindex.pretrained import registry
from musicindex.query.options import SearchOptions
from musicindex.sample.library import generate_library
from tests.conftest import REPO
from tests.fake_embedding import MODEL

SPEC = "fake=tests.fake_embedding:MODEL"


@pytest.fixture
def fake_only(base_settings, settings_for, fresh_db, monkeypatch):
    """An index whose only embedding model is the fake one, in this process and in the workers it starts."""
    from musicindex.index import MusicIndex

    monkeypatch.setenv("MUSICINDEX_EMBEDDING_MODELS", SPEC)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    before = get_settings()
    set_settings(before.with_(embedding_models=SPEC))
    try:
        yield MusicIndex(fresh_db, settings_for(fresh_db, embedding_models=SPEC))
    finally:
        set_settings(before)


def test_a_model_in_one_file_is_a_working_space(fake_only, workers, tmp_path):
    index = fake_only
    assert registry.names() == ("fake",) and registry.space_names() == ("features", "ann", "cnn", "lda", "fake")
    root = tmp_path / "lib"
    generate_library(root, per_genre=2, genres=["rock", "classical"], duration=5.0, formats=("wav", "ogg"), seed=3)
    workers(index.settings, queues="ingest,embed", concurrency=1)
    summary = index.ingest([root], wait=True, timeout=300)
    assert summary.final == {"indexed": 4, "failed": 0, "pending": 0, "embedded": 4}

    with index.db.engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind, state, embedding_dim, classes FROM model_versions")).all()
        record = conn.execute(text("SELECT stage_versions FROM tracks ORDER BY id")).scalars().all()
        rows = conn.execute(text("SELECT count(*) FROM embeddings WHERE space = 'fake'")).scalar_one()
    assert kinds == [("fake", "active", 12, list(MODEL.tags))]  # no musicnn version: it is not used
    assert all(r["embedding.fake"] == 1 and "embedding.musicnn" not in r for r in record) and rows == 4

    with index.db.engine.connect() as conn:
        ids = [int(i) for i in conn.execute(text("SELECT id FROM tracks ORDER BY id")).scalars()]
    seed = ids[0]
    hits = index.similar(seed, k=3)
    assert hits.space == "fake" and hits.dimension == 12 and len(hits) == 3 and seed not in hits.ids
    # the stored vector is the model's own answer for the whole track at 8 kHz
    from musicindex.ml import pretrained

    with index.db.engine.connect() as conn:
        path = conn.execute(text("SELECT path FROM tracks WHERE id = :i"), {"i": seed}).scalar_one()
        stored = conn.execute(
            text("SELECT embedding::text FROM embeddings WHERE track_id = :i"), {"i": seed}
        ).scalar_one()
    direct, _ = MODEL.embed([pretrained.load_signal(path, index.settings.window, MODEL)])
    np.testing.assert_allclose(np.array(stored.strip("[]").split(","), dtype=np.float32), direct[0], rtol=1e-5,
                               atol=1e-5)  # fmt: skip

    tags = index.tags_of(seed, n=3)
    assert {t for t, _ in tags.tags} == set(MODEL.tags)
    found = index.search_by_tags([tags.tags[0][0]], k=4, min_probability=0.0)
    assert found.space == "fake" and seed in found.ids
    with pytest.raises(InvalidArgumentError, match="fake"):
        index.similar(seed, space="musicnn")  # not a space of this index
    by_file = index.similar_to_file(path, k=2)
    assert by_file.space == "fake" and by_file[0].id == seed and by_file[0].distance < 1e-4

    mix = index.mixes.instant_mix("track", seed, SearchOptions.of(k=3))
    assert 1 <= len(mix) <= 3 and seed not in [s.id for s in mix]
    sonic = index.mixes.sonic_similar(seed, SearchOptions.of(k=3))
    assert [m.song.id for m in sonic] == hits.ids

    assert index.status().embedding == {"version": hits.model_version_id, "state": "active", "embedded": 4,
                                        "indexed": 4}  # fmt: skip
    assert index.embed(local=True).queued == 0  # the backfill finds nothing left to do
