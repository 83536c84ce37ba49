"""Artist-grouped model selection and the other-artist scores, as pure functions (``ml.folds``, ``ml.retrieval``)."""

from __future__ import annotations

import numpy as np
import pytest

from musicindex.ml import folds, retrieval


# --------------------------------------------------------------------------- group keys
@pytest.mark.parametrize(
    "artist,album,path,expected",
    [
        ("Glass Horizon", "Tides", "/m/a/1.flac", "artist:glass horizon"),
        ("  GLASS   Horizon ", None, "/m/a/1.flac", "artist:glass horizon"),  # folded like the library's names
        ("Björk", None, "/m/b.flac", "artist:bjork"),
        ("Unknown Artist", "Tides", "/m/a/1.flac", "album:tides"),  # a placeholder is no artist
        ("[unknown]", "", "/m/a/1.flac", "folder:/m/a"),
        ("???", "Various Artists", "/m/x/2.mp3", "folder:/m/x"),  # no letter or digit; a placeholder album
        ("Caf\ufffd Tacvba", "Re", "/m/c/3.mp3", "album:re"),  # an undecoded tag (mojibake) is unreadable
        (None, None, "/m/d/4.ogg", "folder:/m/d"),
        ("", "   ", None, "folder:"),
    ],
)
def test_group_key_falls_back_from_artist_to_album_to_folder(artist, album, path, expected):
    assert folds.group_key(artist, album, path) == expected


# --------------------------------------------------------------------------- plans
def _library(per_artist: int = 4, artists: int = 3, genres=("a", "b", "c")):
    y, g = [], []
    for genre in genres:
        for k in range(artists):
            y += [genre] * per_artist
            g += [f"artist:{genre}{k}"] * per_artist
    return np.array(y), np.array(g, dtype=object)


def test_grouped_folds_never_put_one_artist_on_both_sides():
    y, g = _library()
    plan = folds.plan(y, g, folds=3)
    assert plan.protocol == folds.GROUPED and plan.n_groups == 9 and not plan.ungrouped
    for tr, te in folds.cv_splits(y, plan, 3, seed=0):
        assert not set(g[tr]) & set(g[te])
        assert set(y[tr]) == {"a", "b", "c"}  # every genre keeps training tracks (3 artists, 3 folds)
    tr, te, protocol = folds.holdout(y, plan, 0.25, seed=1)
    assert protocol == folds.GROUPED and not set(g[tr]) & set(g[te])
    assert len(set(tr) | set(te)) == len(y) and not set(tr) & set(te)
    assert set(y[te]) == {"a", "b", "c"}  # the fold with the most genres held out


def test_a_genre_with_one_artist_is_split_track_by_track():
    y, g = _library()
    solo = y == "c"
    g[solo] = "artist:the only one"
    plan = folds.plan(y, g, folds=3)
    assert plan.protocol == folds.PARTLY_GROUPED and plan.ungrouped == {"c": 1}
    assert "single artist" in plan.describe(3)["note"] and "'c' (1 group)" in plan.describe(3)["note"]
    for tr, te in folds.cv_splits(y, plan, 3, seed=0):
        grouped = ~solo
        assert not set(g[tr][grouped[tr]]) & set(g[te][grouped[te]])  # the other genres stay grouped
        assert (y[te] == "c").any() and (y[tr] == "c").any()  # the solo genre is on both sides


def test_no_usable_groups_falls_back_to_stratified_folds():
    y, _ = _library()
    one = folds.plan(y, np.array(["artist:same"] * len(y), dtype=object), folds=3)
    assert one.protocol == folds.STRATIFIED and one.ungrouped == {"a": 1, "b": 1, "c": 1}
    assert "plain stratified" in one.describe()["note"]
    unknown = folds.plan(y, None, folds=3)
    assert unknown.protocol == folds.STRATIFIED and unknown.raw is None
    splits = folds.cv_splits(y, unknown, 3, seed=0)
    assert len(splits) == 3 and all(set(y[te]) == {"a", "b", "c"} for _, te in splits)
    # too few groups for the folds: 2 artists per genre, 10 folds asked
    y2, g2 = _library(per_artist=6, artists=2, genres=("a", "b"))
    assert folds.plan(y2, g2, folds=10).protocol == folds.STRATIFIED


def test_subset_plans_again_on_the_training_part():
    y, g = _library(artists=2)
    plan = folds.plan(y, g, folds=2)
    assert plan.protocol == folds.GROUPED
    rows = np.flatnonzero(~((y == "a") & (g == "artist:a1")))  # genre a loses one of its two artists
    sub = folds.subset(plan, rows, y[rows], 2)
    assert sub.ungrouped == {"a": 1} and sub.protocol == folds.PARTLY_GROUPED


# --------------------------------------------------------------------------- retrieval
def test_other_artist_neighbours_leave_out_the_querys_artist():
    # two genres; each track's nearest neighbours are its own artist's (the artist effect)
    rng = np.random.default_rng(0)
    centres = {"x1": [1, 0, 0], "x2": [0.8, 0.6, 0], "y1": [0, 0, 1], "y2": [0, 0.6, 0.8]}
    rows, labels, groups = [], [], []
    for artist, c in centres.items():
        for _ in range(5):
            rows.append(np.array(c) + rng.normal(0, 0.01, 3))
            labels.append(artist[0])
            groups.append(artist)
    mat = retrieval.unit_rows(np.array(rows))
    labels_a, groups_a = np.array(labels, dtype=object), np.array(groups, dtype=object)
    queries = np.arange(len(rows))
    plain = retrieval.neighbours(mat, queries, 4)
    assert all(set(groups_a[plain[i]]) == {groups_a[i]} for i in queries)  # same artist only
    other = retrieval.neighbours(mat, queries, 4, groups_a)
    assert all(groups_a[i] not in set(groups_a[other[i]]) for i in queries)
    assert (plain != np.arange(len(rows))[:, None]).all()  # never the query itself
    rec = retrieval.score_space(np.array(rows), labels_a, queries, groups_a, k=4)
    assert rec.precision_at_10 == 1.0 and rec.other_artist_precision_at_10 == 1.0 and rec.vote_accuracy == 1.0
    # with one artist per genre, other-artist neighbours are all of the other genre
    solo = np.array([g[0] for g in groups], dtype=object)
    rec = retrieval.score_space(np.array(rows), labels_a, queries, solo, k=4)
    assert rec.precision_at_10 == 1.0 and rec.other_artist_precision_at_10 == 0.0 and rec.vote_accuracy == 0.0


def test_too_few_candidates_are_padded_and_ignored():
    mat = retrieval.unit_rows(np.eye(3))
    nn = retrieval.neighbours(mat, np.arange(3), 5, np.array(["a", "a", "b"], dtype=object))
    assert (nn[0] == [2, -1, -1, -1, -1]).all() and (nn[2, 2:] == -1).all()
    labels = np.array(["x", "y", "x"], dtype=object)
    assert retrieval.precision_at_k(labels, np.arange(3), nn) == pytest.approx((1 + 0 + 0.5) / 3)
    assert retrieval.vote(labels, nn)[0] == "x"
    assert retrieval.vote(labels, np.full((1, 3), -1)) == [None]
    assert list(retrieval.unseen(["a", "b", "c", "a"], np.array([1, 3]), np.array([0]))) == [1]


def test_a_genre_dominated_by_one_artist_is_split_track_by_track():
    y, g = _library()
    rows = np.flatnonzero(y == "b")
    g[rows[:10]] = "artist:b-star"  # 10 of its 12 tracks: holding that artist out leaves 2 to learn from
    plan = folds.plan(y, g, folds=3)
    assert plan.protocol == folds.PARTLY_GROUPED and set(plan.ungrouped) == {"b"}
    assert "more than half" in plan.describe()["note"]


# --------------------------------------------------------------------------- the kinds' grids (docs/models.md)
@pytest.mark.parametrize(
    "kind,full", [("knn", 126), ("logreg", 20), ("svm", 20), ("forest", 8), ("tree", 16), ("gbm", 8)]
)
def test_every_grid_is_valid_for_its_pipeline_and_as_documented(kind, full):
    from sklearn.model_selection import ParameterGrid

    from musicindex.ml import estimators

    assert estimators.candidates(estimators.grid_for(kind, quick=False)) == full
    for quick in (False, True):
        for params in ParameterGrid(estimators.sk_grid(estimators.grid_for(kind, quick))):
            pipe = estimators.configured(kind, params, seed=0)  # every candidate's parameters exist
            assert pipe.named_steps["clf"].get_params()["random_state" if kind != "knn" else "n_jobs"] in (0, None)
            described = estimators.describe(params)
            assert "clf__" not in "".join(described)
    with pytest.raises(ValueError, match="ensemble"):
        estimators.grid_for("ensemble", quick=False)


def test_copies_of_the_query_never_count_as_its_neighbours():
    """Issue 31: a query's same-recording copies are no neighbours (they would inflate precision@k)."""
    from musicindex.ml import retrieval

    mat = retrieval.unit_rows(np.array([[1.0, 0.0], [1.0, 0.01], [0.9, 0.4], [0.0, 1.0]]))
    labels = np.array(["a", "a", "b", "b"], dtype=object)
    assert retrieval.neighbours(mat, np.array([0]), 1)[0, 0] == 1  # the copy is the nearest
    rec = np.array([-1, -1, 2, 3])  # rows 0 and 1: one recording
    assert retrieval.neighbours(mat, np.array([0]), 1, recordings=rec)[0, 0] == 2
    plain = retrieval.score_space(mat, labels, np.array([0]), None, k=1)
    honest = retrieval.score_space(mat, labels, np.array([0]), None, k=1, recordings=rec)
    assert (plain.precision_at_10, honest.precision_at_10) == (1.0, 0.0)
