"""Fast tests of pure functions: no PostgreSQL, no Redis, no audio files (`make test-unit`)."""

from __future__ import annotations

import numpy as np
import pytest

from musicindex.config import Settings
from musicindex.errors import ConfigError, InvalidArgumentError
from musicindex.ingest import lifecycle
from musicindex.ingest.labels import LabelSource
from musicindex.ingest.scan import scan, within
from musicindex.ml.registry import decide
from musicindex.query.results import TrackHit
from musicindex.query.search import diversify, fits
from musicindex.query.vectors import knn_exact, slerp, unit
from musicindex.vocab import (
    CLASSIFIER_KINDS,
    FEATURE_NAMES,
    MODEL_KINDS,
    SPACE_KIND,
    TRACK_STATUSES,
    GenreCandidate,
    pick_genre_model,
)
from musicindex.vocab import (
    GENRE_MODEL_METRIC as M,
)


def hit(i: int, artist: str | None = None, album: str | None = None) -> TrackHit:
    return TrackHit(i, f"/m/{i}.wav", None, artist, album, None, 0.1 * i, 1 - 0.1 * i, None, "features")


# --------------------------------------------------------------------------- diversity
def test_diversify_keeps_order_but_spaces_artists_and_albums():
    cands = [hit(1, "A", "x"), hit(2, "A", "y"), hit(3, "B", "x"), hit(4, "C", "z"), hit(5, "A", "w")]
    picks = diversify(cands, k=4, artist_spacing=2, album_rule=True)
    # 2 is A again (spacing 2), 3 is album x again right after x: 4 comes second, then 3, then A's 2
    assert [p.id for p in picks] == [1, 4, 3, 2]
    # spacing 0 and no album rule: the original ranking
    assert [p.id for p in diversify(cands, 5, 0, album_rule=False)] == [1, 2, 3, 4, 5]


def test_diversify_stops_when_nothing_fits():
    cands = [hit(1, "A"), hit(2, "A"), hit(3, "A")]
    assert [p.id for p in diversify(cands, k=3, artist_spacing=1)] == [1]


def test_fits_ignores_unknown_artists_and_case():
    assert fits(hit(2, None), [hit(1, None)], artist_spacing=5)
    assert not fits(hit(2, "abba "), [hit(1, "ABBA")], artist_spacing=1)


# --------------------------------------------------------------------------- exact neighbours
def test_knn_exact_matches_brute_force_and_excludes_self():
    rng = np.random.default_rng(0)
    mat = rng.standard_normal((300, 8))
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    nn = knn_exact(mat, 5, chunk=64)
    sims = mat @ mat.T
    np.fill_diagonal(sims, -np.inf)
    expect = np.argsort(-sims, axis=1, kind="stable")[:, :5]
    assert np.array_equal(nn, expect)
    assert not (nn == np.arange(300)[:, None]).any()


def test_knn_exact_with_fewer_rows_than_k():
    assert knn_exact(np.eye(3), 10).shape == (3, 2)
    assert knn_exact(np.eye(1), 10).shape == (1, 0)


# --------------------------------------------------------------------------- slerp
def test_slerp_stays_on_the_sphere_and_hits_both_ends():
    a, b = unit(np.array([1.0, 0, 0])), unit(np.array([0, 1.0, 1.0]))
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(slerp(a, b, 1.0), b)
    mids = [slerp(a, b, t) for t in np.linspace(0, 1, 7)]
    assert all(abs(np.linalg.norm(m) - 1) < 1e-12 for m in mids)
    angles = [np.arccos(np.clip(m @ a, -1, 1)) for m in mids]
    assert np.allclose(np.diff(angles), angles[1] - angles[0])  # equal steps along the arc


def test_slerp_of_parallel_vectors_is_linear():
    a = np.array([0.0, 1.0])
    assert np.allclose(slerp(a, a, 0.3), a)


# --------------------------------------------------------------------------- promotion
@pytest.mark.parametrize(
    ("new", "old", "tol", "promote"),
    [
        (0.80, 0.80, 0.01, True),
        (0.795, 0.80, 0.01, True),  # within noise
        (0.78, 0.80, 0.01, False),  # worse than the champion
        (0.90, 0.80, 0.0, True),
    ],
)
def test_promotion_decision_by_held_out_macro_f1(new, old, tol, promote):
    d = decide("logreg", {M: new}, {M: old}, tol)
    assert d.promote is promote and d.metric == M
    assert ("stays a candidate" in d.reason) is (not promote)


def test_promotion_decision_edge_cases():
    assert decide("knn", {M: 0.1}, None, 0.01).reason == "no active version"
    assert decide("scaler", {}, {}, 0.01).promote
    assert decide("kmeans", {"silhouette": 0.2}, {"silhouette": 0.3}, 0.01).promote is False
    assert decide("ann", {}, {M: 0.9}, 0.01).reason == f"{M} missing on one side"


# --------------------------------------------------------------------------- vocabulary
def test_genre_model_rule():
    c = [
        GenreCandidate(1, "knn", {M: 0.7}),
        GenreCandidate(2, "logreg", {M: 0.9}),
        GenreCandidate(3, "cnn", {M: 0.9}),
        GenreCandidate(4, "kmeans", {M: 1.0}),
        GenreCandidate(5, "ann", {M: "n/a"}),
    ]
    assert pick_genre_model(c).id == 2  # best score; the tie goes to the lower id; clusterers never answer
    assert pick_genre_model(c, "ann").id == 5
    assert pick_genre_model(c[:1], "cnn") is None
    assert pick_genre_model([]) is None
    with pytest.raises(ValueError, match="genre model 'svr'"):
        pick_genre_model(c, "svr")


def test_vocabulary_is_consistent():
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 43
    assert FEATURE_NAMES[16] == "tempo" and FEATURE_NAMES[-1] == "mfcc13_var"
    assert set(CLASSIFIER_KINDS) < set(MODEL_KINDS)
    assert set(SPACE_KIND.values()) <= set(MODEL_KINDS)
    from musicindex.audio import features

    assert features.N_FEATURES == 43 and features.FEATURE_NAMES is FEATURE_NAMES


def test_status_flow():
    assert set(lifecycle.TRANSITIONS) - {None} == set(TRACK_STATUSES)
    assert lifecycle.allowed_from("pending") == ("indexed", "failed", "missing")
    assert "failed" not in lifecycle.allowed_from("failed")  # a failed track is not failed twice
    assert "pending" in lifecycle.allowed_from("missing")


# --------------------------------------------------------------------------- settings
def test_settings_validation_names_the_variable():
    ok = Settings.from_env({})
    assert ok.genre_model == "auto" and ok.embedded_database
    for env, needle in [
        ({"MUSICINDEX_WINDOW_DURATION": "0"}, "MUSICINDEX_WINDOW_DURATION"),
        ({"MUSICINDEX_INGEST_CHUNK": "zero"}, "MUSICINDEX_INGEST_CHUNK='zero' is not a valid int"),
        ({"MUSICINDEX_GENRE_MODEL": "svr"}, "MUSICINDEX_GENRE_MODEL='svr'"),
        ({"MUSICINDEX_VISIBILITY_TIMEOUT": "5"}, "MUSICINDEX_VISIBILITY_TIMEOUT=5: must be between 10 s"),
        ({"MUSICINDEX_RETRAIN_CRON": "nightly"}, "expected 5 fields"),
        ({"MUSICINDEX_DATABASE_URL": "mysql://x"}, "must be a PostgreSQL URL"),
        ({"MUSICINDEX_FOLLOW_SYMLINKS": "maybe"}, "MUSICINDEX_FOLLOW_SYMLINKS"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            Settings.from_env(env)


# --------------------------------------------------------------------------- labels and scanning
def test_label_csv_relative_paths_header_and_errors(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n# a comment\njazz/a.wav, jazz \n/abs/b.flac,rock\n")
    src = LabelSource(f"csv:{csv}")
    assert src.label_for(str(tmp_path / "jazz" / "a.wav")) == ("jazz", "csv")
    assert src.label_for("/abs/b.flac") == ("rock", "csv")
    assert src.label_for("/other.wav") == (None, None)
    assert LabelSource("folder").label_for("/m/blues/x.wav") == ("blues", "folder")
    with pytest.raises(InvalidArgumentError, match="'folder', 'tag' or 'csv:FILE'"):
        LabelSource("genre")
    bad = tmp_path / "bad.csv"
    bad.write_text("only-a-path\n")
    with pytest.raises(InvalidArgumentError, match="expected 'path,label'"):
        LabelSource(f"csv:{bad}")


def test_scan_lists_audio_ignores_the_rest_and_skips_outside_links(tmp_path):
    (tmp_path / "lib" / "a").mkdir(parents=True)
    (tmp_path / "lib" / "a" / "x.flac").write_bytes(b"1")
    (tmp_path / "lib" / "notes.txt").write_text("n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "y.mp3").write_bytes(b"2")
    (tmp_path / "lib" / "link").symlink_to(tmp_path / "outside")
    report = scan([tmp_path / "lib"])
    assert [f.path for f in report.files] == [str(tmp_path / "lib" / "a" / "x.flac")]
    assert report.ignored == 1 and report.skipped_links == [str(tmp_path / "lib" / "link")]
    assert len(scan([tmp_path / "lib"], follow_symlinks=True).files) == 2
    assert within("/a/b/c", ["/a/b"]) and not within("/a/bc", ["/a/b"])


def test_the_facade_delegates_each_method_in_one_line_to_its_service():
    """Every method ``FACADE_METHODS`` names is defined in ``MusicIndex``'s class body (not copied onto instances at
    run time), holds one statement that calls the same method of its service, and takes the service method's
    parameters (with the same defaults); the similarity questions may add ``**args`` (SearchOptions fields)."""
    import ast
    import inspect
    import textwrap

    from musicindex.config import Settings
    from musicindex.index import FACADE_METHODS, MusicIndex

    index = MusicIndex(None, Settings.from_env({}))  # type: ignore[arg-type]  # no database needed to bind
    assert not {n for names in FACADE_METHODS.values() for n in names} & set(vars(index))
    for service, names in FACADE_METHODS.items():
        for name in names:
            fn = vars(MusicIndex)[name]
            body = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0].body
            stmts = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            assert len(stmts) == 1 and isinstance(stmts[0], ast.Return), name
            call = stmts[0].value
            assert isinstance(call, ast.Call) and ast.unparse(call.func) == f"self.{service}.{name}", name
            mine = inspect.signature(fn).parameters
            theirs = inspect.signature(getattr(getattr(index, service), name)).parameters
            for p in theirs.values():
                assert p.name in mine and mine[p.name].default == p.default, (name, p.name)
            extra = set(mine) - set(theirs) - {"self"}
            assert extra <= {"args"}, (name, extra)


def test_moved_names_still_answer_for_one_release_with_a_warning():
    from musicindex.config import Settings
    from musicindex.index import DEPRECATED, MusicIndex

    index = MusicIndex(None, Settings.from_env({}))  # type: ignore[arg-type]
    for name, home in DEPRECATED.items():
        service, method = home.split(".")
        with pytest.warns(DeprecationWarning, match=f"use index.{home}"):
            assert getattr(index, name) == getattr(getattr(index, service), method)
    with pytest.raises(AttributeError):
        index.no_such_name  # noqa: B018
    assert not hasattr(index, "embed_tracks") and not hasattr(index.training, "embed_tracks")
    for gone in ("musicindex.app", "musicindex.services", "musicindex.sample.demo"):
        with pytest.raises(ImportError):
            __import__(gone)


def test_train_options_are_validated_once_and_survive_the_task_message():
    import json

    from musicindex.ml.options import TrainOptions

    opts = TrainOptions.of("ann,knn", quick=True, seed=3, net_overrides={"ann": {"embedding_dim": 16}})
    assert opts.models == ("knn", "ann")
    again = TrainOptions.from_dict(json.loads(json.dumps(opts.to_dict())))
    assert again == opts
    for bad, match in (
        ({"test_size": 0.9}, "test_size"),
        ({"cv_folds": 1}, "cv_folds"),
        ({"net_cv_folds": 1}, "net_cv_folds"),
        ({"inputs": "spectrum"}, "inputs 'spectrum'"),
        ({"pca": 1.5}, "pca"),
        ({"net_overrides": {"ann": {"layers": 3}}}, "net_overrides"),
        ({"net_overrides": {"knn": {}}}, "net_overrides"),
        ({"colour": "red"}, "unknown training option 'colour'"),
        ({"seed": "1"}, "seed"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            TrainOptions.of(**bad)
    with pytest.raises(InvalidArgumentError, match="unknown model 'svr'"):
        TrainOptions.of("svr")
