"""The soundtrack-grouped comparison on the dev set: every scikit-learn classifier kind x input and every space,
nested cross-validation over seeds, and the quality attempts (concatenated input, metric learning, the ensemble).

    python benchmarks/quality.py --vectors /tmp/devset-vectors.npz   # ingest + embed once, through the product
    python benchmarks/quality_grouped.py /tmp/devset-vectors.npz [--seeds 3] [--folds 5] [--group soundtrack]

Groups: ``soundtrack`` (default) = the Debian package a track comes from (one game's music: its composers, mix and
mastering), the strictest; ``artist`` = the product's rule (artist tag, else album, else folder). A genre whose
tracks all come from one group (world: 0 A.D.) is split track by track (``folds.plan``, as in training).

* **classifiers**: for each seed and each outer grouped fold, the kind's grid search runs on the outer training
  part with grouped inner folds, the chosen configuration is fitted there and scored on the outer held-out fold
  (nested: the held-out fold never chooses anything). Mean ± sd of accuracy and macro-F1 over folds x seeds.
  Inputs: ``features`` (43), ``musicnn`` (200-d), ``concat`` (both, each standardised on the training part).
* **spaces**: precision@10 and other-group precision@10 (the query's group left out of the candidates) of each
  outer held-out fold's tracks among all tracks: ``features`` (standardised), ``musicnn``, ``concat``, and the
  metric-learning attempts fitted on the outer training part only: ``lda`` (linear discriminant projection of the
  musicnn embedding, classes - 1 dimensions; the ``lda`` space of ``musicindex train --models lda``) and ``nca``
  (neighbourhood components analysis, 32 dimensions). Mean ± sd over folds x seeds. Then the ``lda`` space on
  quality.py's own held-out split (vectors only, no ingest: a narrower figure).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicindex.ml import classical, ensemble, estimators, folds, retrieval
from musicindex.ml.metrics import classification_metrics
from musicindex.vocab import ENSEMBLE, SKLEARN_CLASSIFIER_KINDS

KINDS = (*SKLEARN_CLASSIFIER_KINDS, ENSEMBLE)


def inputs_for(data: dict, tr: np.ndarray) -> dict[str, np.ndarray]:
    """The classifier inputs, standardised on the training rows ``tr`` (the concat blocks weigh the same)."""
    f, m = data["features"], data["musicnn"]

    def std(x: np.ndarray) -> np.ndarray:
        mu, sd = x[tr].mean(axis=0), x[tr].std(axis=0)
        return (x - mu) / np.where(sd > 0, sd, 1.0)

    fs, ms = std(f), std(m)
    concat = np.hstack([fs / np.sqrt(fs.shape[1]), ms / np.sqrt(ms.shape[1])])
    return {"features": f, "musicnn": m, "concat": concat}


def _member(tuned: dict, X: np.ndarray, y: np.ndarray, inner: list, seed: int, quick: bool, member: str) -> tuple:
    """An ensemble member's chosen configuration on this fold (searched once, shared with its own kind)."""
    if member not in tuned:
        grid = estimators.grid_for(member, quick)
        tuned[member] = classical.grid_search(member, X, y, inner, seed, grid)[0]
    return tuned[member]


def classifier_scores(data: dict, y, groups, kinds, seeds, n_folds, quick) -> dict:
    out: dict = defaultdict(lambda: {"accuracy": [], "macro_f1": []})
    plan = folds.plan(y, groups, n_folds)
    print(f"classifier folds: {plan.describe(n_folds)['note']}", flush=True)
    for seed in seeds:
        for k, (tr, te) in enumerate(folds.cv_splits(y, plan, n_folds, seed)):
            inner_plan = folds.subset(plan, tr, y[tr], 3)
            inner = folds.cv_splits(y[tr], inner_plan, 3, seed)
            for name, X in inputs_for(data, tr).items():
                tuned: dict = {}
                for kind in kinds:
                    t0 = time.perf_counter()
                    with classical.quiet(len(tr)):
                        if kind == ENSEMBLE:
                            lookup = functools.partial(_member, tuned, X[tr], y[tr], inner, seed, quick)
                            model = ensemble.search(X[tr], y[tr], inner, seed, quick, lookup)[0]
                        else:
                            grid = estimators.grid_for(kind, quick)
                            tuned[kind] = classical.grid_search(kind, X[tr], y[tr], inner, seed, grid)[0]
                            model = estimators.configured(kind, tuned[kind][0], seed).fit(X[tr], y[tr])
                        pred = classical.predict_labels(model, X[te])
                    m = classification_metrics(y[te], pred, sorted(set(y)))
                    row = out[(kind, name)]
                    row["accuracy"].append(m["accuracy"])
                    row["macro_f1"].append(m["macro_f1"])
                    print(
                        f"  seed {seed} fold {k} {kind:8} {name:8} acc {m['accuracy']:.3f} "
                        f"F1 {m['macro_f1']:.3f} ({time.perf_counter() - t0:.0f} s)",
                        flush=True,
                    )
    return out


def space_scores(data: dict, y, groups, seeds, n_folds) -> dict:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.neighbors import NeighborhoodComponentsAnalysis

    out: dict = defaultdict(lambda: {"precision_at_10": [], "other_precision_at_10": []})
    plan = folds.plan(y, groups, n_folds)
    for seed in seeds:
        for tr, te in folds.cv_splits(y, plan, n_folds, seed):
            spaces = inputs_for(data, tr)
            spaces["features"] = spaces["concat"][:, : data["features"].shape[1]]  # standardised
            m = spaces["musicnn"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spaces["lda"] = (
                    LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(m[tr], y[tr]).transform(m)
                )
                nca = NeighborhoodComponentsAnalysis(n_components=32, random_state=seed, max_iter=100)
                spaces["nca"] = nca.fit(m[tr], y[tr]).transform(m)
            for name, mat in spaces.items():
                rec = retrieval.score_space(mat, y, te, groups, 10)
                out[name]["precision_at_10"].append(rec.precision_at_10)
                out[name]["other_precision_at_10"].append(rec.other_artist_precision_at_10)
    return out


def heldout_scores(data: dict, y, groups, split) -> dict:
    """quality.py's split on the stored vectors (narrower: no ingest, no database): the ``lda`` space as the product
    fits it (``ml.metric.lda``) on the train part only, the held-out tracks as queries among every labelled track."""
    from musicindex.ml import metric

    tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split != "train")
    m = data["musicnn"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lda = metric.lda(len(set(y[tr].tolist()))).fit(m[tr], y[tr]).transform(m)
    out = {}
    for name, mat in {"musicnn": m, "lda": lda}.items():
        rec = retrieval.score_space(mat, y, te, groups, 10)
        out[name] = {"precision_at_10": rec.precision_at_10, "other_precision_at_10": rec.other_artist_precision_at_10}
    return out


def ms(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.3f} ± {a.std():.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("vectors", type=Path, help="the npz written by benchmarks/quality.py --vectors")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--group", choices=("soundtrack", "artist"), default="soundtrack")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--quick", action="store_true", help="the quick grids")
    ap.add_argument("--no-classifiers", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    z = np.load(args.vectors, allow_pickle=False)
    keep = z["labels"] != ""
    data = {"features": z["features"][keep].astype(float), "musicnn": z["musicnn"][keep].astype(float)}
    y = z["labels"][keep].astype(str)
    paths = z["paths"][keep]
    if args.group == "soundtrack":
        groups = np.array([f"package:{Path(p).parent.name}" for p in paths], dtype=object)
    else:
        groups = np.array(
            [folds.group_key(a, b, p) for a, b, p in zip(z["artist"][keep], z["album"][keep], paths, strict=True)],
            dtype=object,
        )
    seeds = list(range(args.seeds))
    print(f"{len(y)} labelled tracks, {len(set(groups))} {args.group} groups, seeds {seeds}, {args.folds} folds")
    result: dict = {"group": args.group, "seeds": seeds, "folds": args.folds, "tracks": len(y)}
    t0 = time.perf_counter()
    sp = space_scores(data, y, groups, seeds, args.folds)
    print(f"\n| space ({args.group}-grouped folds) | precision@10 | other-{args.group} precision@10 |")
    print("| --- | --- | --- |")
    for name, r in sp.items():
        print(f"| {name} | {ms(r['precision_at_10'])} | {ms(r['other_precision_at_10'])} |")
    result["spaces"] = dict(sp)
    print(f"({time.perf_counter() - t0:.0f} s)", flush=True)
    held = heldout_scores(data, y, groups, z["split"][keep].astype(str))
    n_held = int((z["split"][keep] != "train").sum())
    print(
        f"\n| space (quality.py's held-out split, {n_held} queries; vectors only) | precision@10 "
        f"| other-{args.group} p@10 |"
    )
    print("| --- | --- | --- |")
    for name, r in held.items():
        print(f"| {name} | {r['precision_at_10']:.3f} | {r['other_precision_at_10']:.3f} |")
    result["heldout_spaces"] = held
    if not args.no_classifiers:
        kinds = [k for k in args.kinds.split(",") if k]
        cl = classifier_scores(data, y, groups, kinds, seeds, args.folds, args.quick)
        print(f"\n| classifier | input | accuracy ({args.group}-grouped, nested) | macro-F1 |")
        print("| --- | --- | --- | --- |")
        for (kind, name), r in sorted(cl.items(), key=lambda kv: -np.mean(kv[1]["accuracy"])):
            print(f"| {kind} | {name} | {ms(r['accuracy'])} | {ms(r['macro_f1'])} |")
        result["classifiers"] = {f"{k}|{n}": v for (k, n), v in cl.items()}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
