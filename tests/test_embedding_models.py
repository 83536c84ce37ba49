"""Classifiers on the musicnn embedding, the genre model chosen by cross-validation, and honest evaluation."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import func, select

from musicindex import ingest
from musicindex.db.orm import ModelVersion, Prediction
from musicindex.errors import InvalidArgumentError
from musicindex.ml import pretrained, training
from musicindex.sample.library import generate_library
from musicindex.vocab import CLASSIFIER_INPUTS, GENRE_MODEL_METRIC

QUICK = {"quick": True, "seed": 0, "cv_folds": 3, "net_cv_folds": 2, "test_size": 0.25}


@pytest.fixture
def labelled(index, tmp_path):
    """18 labelled clips of three styles, indexed and embedded in this process."""
    root = tmp_path / "lib"
    generate_library(root, per_genre=6, genres=["rock", "classical", "techno"], duration=5.0, formats=("wav",), seed=5)
    reg = ingest.register(index.db, [root], label_from="folder")
    ingest.process_tracks(index.db, reg.queued_ids)
    index.embed(local=True)
    return {"root": root, "ids": sorted(reg.queued_ids)}


def _version(index, kind: str) -> ModelVersion:
    with index.db.session() as s:
        return s.execute(
            select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.state == "active")
        ).scalar_one()


def test_classifiers_try_both_inputs_and_keep_the_better_cross_validated_one(index, labelled):
    res = training.train(index.db, "knn,logreg,ann", **QUICK)
    assert res.status == "succeeded"
    for kind in ("knn", "logreg", "ann"):
        v = _version(index, kind)
        by_input = v.metrics["by_input"]
        assert set(by_input) == {"features", "musicnn"}
        # the better cross-validated macro-F1; a tie keeps the first of CLASSIFIER_INPUTS (the features)
        best = max(CLASSIFIER_INPUTS, key=lambda name: by_input[name][GENRE_MODEL_METRIC])
        assert v.params["input"] == v.metrics["input"] == best
        assert (v.params["input_version"] is not None) == (best == "musicnn")
        assert len(v.snapshot["heldout_track_ids"]) == v.metrics["n_test"]
    with index.db.session() as s:
        for kind in ("knn", "logreg", "ann"):
            n = s.execute(select(func.count()).where(Prediction.model_version_id == _version(index, kind).id)).scalar()
            assert n == 18
    # the genre model is the active classifier with the best cross-validated macro-F1
    gm = index.genre_of(labelled["ids"][0])
    scores = {k: _version(index, k).metrics[GENRE_MODEL_METRIC] for k in ("knn", "logreg", "ann")}
    assert scores[gm.model_kind] == max(scores.values())


def test_a_classifier_on_the_embedding_predicts_new_tracks(index, labelled, tmp_path):
    training.train(index.db, "logreg", inputs="musicnn", **QUICK)
    v = _version(index, "logreg")
    assert v.params["input"] == "musicnn" and set(v.metrics["by_input"]) == {"musicnn"}
    new = tmp_path / "new"
    generate_library(new, per_genre=1, genres=["techno"], duration=5.0, formats=("wav",), seed=99)
    reg = ingest.register(index.db, [new])
    ingest.process_tracks(index.db, reg.queued_ids)
    out = pretrained.embed_job(index.db, reg.queued_ids)  # what the embed queue does after indexing
    assert out["musicnn"]["embedded"] == 1 and out["versions"][str(v.id)] == 1
    assert index.genre_of(reg.queued_ids[0]).model_version_id == v.id
    with pytest.raises(InvalidArgumentError, match="inputs 'spectrum'"):
        training.train(index.db, "logreg", inputs="spectrum", **QUICK)


def test_evaluate_never_scores_on_training_tracks(index, labelled, tmp_path):
    training.train(index.db, "knn,logreg,ann", **QUICK)
    report = index.evaluate()
    spaces = {s.space: s for s in report.spaces}
    assert set(spaces) == {"features", "musicnn", "ann"}
    held = set(_version(index, "ann").snapshot["heldout_track_ids"])
    assert spaces["ann"].queries == len(held) < 18  # only tracks the ann never trained on
    assert "held out from training ann" in spaces["ann"].protocol
    assert spaces["features"].queries == spaces["musicnn"].queries == len(held)
    assert all(0.0 <= s.precision_at_10 <= 1.0 for s in report.spaces)
    assert "held-out queries only" in report.protocol
    # labels that training never saw: new unlabelled tracks, their labels in a file
    extra = tmp_path / "extra"
    generate_library(extra, per_genre=2, genres=["rock", "techno"], duration=5.0, formats=("wav",), seed=77)
    reg = ingest.register(index.db, [extra])  # no --label-from: no training label
    ingest.process_tracks(index.db, reg.queued_ids)
    pretrained.embed_job(index.db, reg.queued_ids)
    labels = tmp_path / "heldout.csv"
    with open(labels, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        for p in sorted(extra.rglob("*.wav")):
            w.writerow([str(p), p.parent.name])
        w.writerow([str(sorted(labelled["root"].rglob("*.wav"))[0]), "rock"])  # has a training label: left out
    file_report = index.evaluate(labels=f"csv:{labels}")
    assert file_report.labels_excluded == 1
    assert {s.queries for s in file_report.spaces} == {4}
    assert all(c.labels_tracks == 4 and 0.0 <= c.labels_accuracy <= 1.0 for c in file_report.classifiers)
    with pytest.raises(InvalidArgumentError, match="nothing held out"):
        only_trained = tmp_path / "trained.csv"
        only_trained.write_text(f"{sorted(labelled['root'].rglob('*.wav'))[0]},rock\n")
        index.evaluate(labels=f"csv:{only_trained}")
