"""The HTML model report: every active model named, figures written, database text escaped."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from musicindex import ingest, vocab
from musicindex.db.orm import SpaceMap, Track
from musicindex.localworker import settings_env
from musicindex.ml import maps
from musicindex.sample.library import generate_library
from tests.conftest import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

EVIL = '<script>alert("x")</script> & co'


def test_report_without_models(index, tmp_path):
    path = index.report(tmp_path / "empty")
    html = path.read_text()
    assert "No active model" in html and "musicindex train" in html


@pytest.mark.slow
def test_report_names_every_model_and_escapes(index, tmp_path):
    root = tmp_path / "lib"
    generate_library(root, per_genre=6, genres=["techno", "ambient", "classical", "metal"], duration=5.0, seed=11)
    reg = ingest.register(index.db, [root], label_from="folder")
    ingest.process_tracks(index.db, reg.queued_ids)
    with index.db.session() as s:
        tid = s.execute(select(Track.id).order_by(Track.id).limit(1)).scalar_one()
        s.execute(update(Track).where(Track.id == tid).values(title=EVIL))
    kinds = ("knn", "tree", "ensemble", "ann", "kmeans", "agglomerative")
    res = index.train(kinds, local=True, quick=True, net_cv_folds=0, seed=0)
    assert res.status == "succeeded"

    # the maps are computed once per model version and cached: drawn here, the report only reads them
    drawn = {(sp, m): maps.space_map(index.db, sp, m) for sp in ("features", "ann") for m in vocab.MAP_METHODS}
    assert not any(d.cached for d in drawn.values())
    out = tmp_path / "report"
    r = run_cli("report", "--out", str(out), env=settings_env(index.settings), timeout=600)
    assert r.returncode == 0, r.stderr
    with index.db.session() as s:
        rows = s.execute(select(SpaceMap.model_version_id, SpaceMap.method, SpaceMap.seconds)).all()
    assert {(r.model_version_id, r.method, r.seconds) for r in rows} == {
        (d.model_version_id, d.method, d.seconds) for d in drawn.values()
    }  # nothing recomputed
    html = (out / "index.html").read_text()
    active = index.active_models()
    assert set(active) == {"scaler", *kinds}
    for kind, v in active.items():
        assert re.search(rf">{kind}( ★)?</td><td>{v['id']}</td>", html), kind
    # escaped, never raw
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in html
    # the comparison of every model and space on held-out queries
    assert "Comparison on held-out queries" in html and "other-artist precision@10" in html
    for name in ("knn (features)", "tree (features)", "ensemble (features)", "ann (features)"):
        assert f">{name}</td><td class='l'>classifier</td>" in html, name
    assert "<td class='l'>features</td><td class='l'>space</td>" in html
    assert "artist-grouped" in html
    # the decision tree's top splits, the ensemble's members, the dendrogram
    assert "Decision tree v" in html and "&lt;=" in html and "depth" in html
    assert "soft voting over" in html
    # figures: confusion matrices, learning curves, silhouette sweep, dendrogram, maps of each space
    pngs = {p.name for p in out.glob("*.png")}
    for kind in ("knn", "tree", "ensemble", "ann"):
        assert f"confusion_{kind}_v{active[kind]['id']}.png" in pngs
    assert f"history_ann_v{active['ann']['id']}.png" in pngs
    assert f"dendrogram_agglomerative_v{active['agglomerative']['id']}.png" in pngs
    assert {"silhouette.png", "map_features.png", "map_ann.png"} <= pngs
    assert "PCA, t-SNE and UMAP" in html
    for name in pngs:
        assert f"src='{name}'" in html
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "macro F1" in html and "±" in html  # CV mean ± std of the classical models
