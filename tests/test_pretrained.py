"""The pretrained musicnn space: embedding, tags, versions, default space, tag search, "why", SQL."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select, text

from musicindex import ingest
from musicindex.db.orm import Embedding, ModelVersion, TrackTag
from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.ml import pretrained
from musicindex.pretrained import musicnn, runtime
from musicindex.sample.library import generate_library
from musicindex.vocab import TOP_TAG_MIN

GENRES = ["rock", "classical", "techno"]


@pytest.fixture
def library(index, tmp_path):
    """Nine short clips of three styles, indexed in this process and embedded in the musicnn space."""
    root = tmp_path / "lib"
    generate_library(root, per_genre=3, genres=GENRES, duration=6.0, formats=("wav",), seed=11)
    reg = ingest.register(index.db, [root], label_from="folder")
    ingest.process_tracks(index.db, reg.queued_ids)
    summary = index.embed(local=True)
    return {"root": root, "ids": sorted(reg.queued_ids), "summary": summary}


def test_embedding_versions_tags_and_coverage(index, library):
    s = library["summary"]
    assert (s.queued, s.embedded, s.failed) == (9, 9, {})
    with index.db.session() as sess:
        v = sess.execute(select(ModelVersion).where(ModelVersion.kind == "musicnn")).scalar_one()
        assert v.state == "active" and v.classes == list(musicnn.TAGS) and v.embedding_dim == 200
        assert v.params["extractor_version"] == runtime.EXTRACTOR_VERSION
        assert (
            sess.execute(select(func.count()).select_from(Embedding).where(Embedding.space == "musicnn")).scalar() == 9
        )
        rows = sess.execute(select(TrackTag)).scalars().all()
    assert len(rows) == 9
    for r in rows:
        probs = np.asarray(r.probs)
        assert probs.shape == (50,) and np.all((probs >= 0) & (probs <= 1))
        expect = [musicnn.TAGS[i] for i in np.argsort(-probs, kind="stable") if probs[i] >= TOP_TAG_MIN]
        assert r.top_tags == expect
    assert index.status().embedding == {"version": v.id, "state": "active", "embedded": 9, "indexed": 9}
    # a second run finds nothing left to do
    assert index.embed(local=True).queued == 0


def test_default_space_is_musicnn_with_why(index, library):
    seed = library["ids"][0]
    res = index.similar(seed, k=5)
    assert res.space == "musicnn" and res.dimension == 200 and len(res) == 5
    assert all(h.why and h.why["summary"] for h in res)
    assert all(0.0 <= h.similarity <= 1.0 for h in res)
    diffs = [d for h in res for d in h.why["feature_differences"]]
    assert all(abs(d["z"]) >= 0.5 and d["name"] for d in diffs)
    assert res.to_dict()["items"][0]["why"]["summary"] == res[0].why["summary"]
    # the features space still answers, and explains too
    feats = index.similar(seed, k=3, space="features")
    assert feats.space == "features" and all(h.why is not None for h in feats)
    # an outside file by example, in the musicnn space
    outside = sorted(library["root"].rglob("*.wav"))[-1]
    by_file = index.similar_to_file(outside, k=3)
    assert by_file.space == "musicnn" and by_file[0].distance < 1e-4  # its own indexed copy comes first


def test_tags_search_and_tag_filter(index, library):
    seed = library["ids"][0]
    t = index.tags_of(seed, n=50)
    probs = [p for _, p in t.tags]
    assert len(t.tags) == 50 and probs == sorted(probs, reverse=True)
    top_tag = t.tags[0][0]
    found = index.search_by_tags([top_tag], k=9, min_probability=0.0)
    scores = [h.score for h in found]
    assert seed in found.ids and scores == sorted(scores, reverse=True)
    threshold = float(np.median(scores))
    filtered = index.similar(seed, k=9, tags=[top_tag], min_tag_probability=threshold)
    with index.db.engine.connect() as conn:
        i = musicnn.TAGS.index(top_tag) + 1
        ok = set(
            conn.execute(text(f"SELECT track_id FROM track_tags WHERE probs[{i}] >= :t"), {"t": threshold}).scalars()
        )
    assert filtered.ids and set(filtered.ids) <= ok
    with pytest.raises(InvalidArgumentError, match="did you mean 'rock'"):
        index.search_by_tags(["rokc"])
    with pytest.raises(InvalidArgumentError, match=r"min_probability must be in \[0, 1\)"):
        index.search_by_tags([top_tag], min_probability=1.5)


def test_sql_functions_follow_the_api(index, library):
    seed = library["ids"][0]
    t = index.tags_of(seed, n=5)
    with index.db.engine.connect() as conn:
        top = conn.execute(text("SELECT tag, probability FROM musicindex_top_tags(:t, 5)"), {"t": seed}).all()
        assert [r[0] for r in top] == [tag for tag, _ in t.tags]
        tag = t.tags[0][0]
        by_tag = conn.execute(text("SELECT track_id FROM musicindex_tracks_with_tag(:g, 0.0, 4)"), {"g": tag}).scalars()
        assert list(by_tag) == index.search_by_tags([tag], k=4, min_probability=0.0).ids
        sql = conn.execute(text("SELECT track_id, model_version_id FROM musicindex_similar(:t, 5)"), {"t": seed}).all()
    api = index.similar(seed, k=5, explain=False)
    assert [r[0] for r in sql] == api.ids and sql[0][1] == api.model_version_id  # default: the musicnn space


def test_a_new_extractor_version_is_backfilled_then_promoted(index, library, monkeypatch):
    with index.db.session() as s:
        old = s.execute(select(ModelVersion.id).where(ModelVersion.kind == "musicnn")).scalar_one()
    monkeypatch.setattr(runtime, "EXTRACTOR_VERSION", runtime.EXTRACTOR_VERSION + 1)
    new = pretrained.current_version(index.db)
    with index.db.session() as s:
        assert s.get(ModelVersion, new).state == "candidate"  # queries keep the complete old version
    assert index.similar(library["ids"][0], k=3).model_version_id == old
    part = index.embed(library["ids"][:4], local=True)
    assert part.embedded == 4 and not part.promoted
    rest = index.embed(local=True)  # only what the new version misses
    assert (rest.queued, rest.promoted) == (5, True)
    with index.db.session() as s:
        assert s.get(ModelVersion, new).state == "active" and s.get(ModelVersion, old).state == "retired"
    assert index.similar(library["ids"][0], k=3).model_version_id == new


def test_nothing_embedded_is_a_clear_error(index, tmp_path):
    root = tmp_path / "lib"
    generate_library(root, per_genre=1, genres=["rock"], duration=4.0, formats=("wav",), seed=2)
    reg = ingest.register(index.db, [root])
    ingest.process_tracks(index.db, reg.queued_ids)
    res = index.similar(reg.queued_ids[0], k=1)
    assert res.space == "features"  # the best space that can answer
    with pytest.raises(ModelNotTrainedError, match="musicindex embed"):
        index.similar(reg.queued_ids[0], space="musicnn")
    with pytest.raises(ModelNotTrainedError, match="musicindex embed"):
        index.tags_of(reg.queued_ids[0])
