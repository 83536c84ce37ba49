"""Quality on real music held out from training: every classifier kind and similarity space on the dev set.

    python benchmarks/devset.py            # once: assembles ~/.cache/musicindex-devset/set (Debian packages)
    python benchmarks/quality.py [--set DIR] [--quick] [--json OUT] [--vectors FILE]

Protocol (everything through the public API, as a user would):

1. ingest the whole set with a real worker: the train part labelled through ``--label-from
   csv:labels.csv``, the held-out part with no label at all;
2. embed every track in the pretrained musicnn space (the ``embed`` queue);
3. train every classifier kind (knn, logreg, svm, forest, tree, gbm, ensemble, ann) twice, once on the 43
   features and once on the musicnn embedding (``inputs=``), the CNN on the spectrograms and the ``lda`` space
   (a projection of the musicnn embedding learned from the labels), on the train part only (default budgets;
   model choice by artist-grouped folds);
4. ``evaluate(labels="csv:heldout.csv")``: the held-out tracks are the queries; each classifier's accuracy and
   macro-F1 on them, its accuracy on the held-out tracks whose artist (artist tag, else album, else folder) has no
   training track, precision@10 and other-artist precision@10 of its recommendations; each space's precision@10
   and other-artist precision@10 (the query's artist left out of the candidates).

The registry's k-fold figures (artist-grouped folds over the train part: mean ± sd) give each classifier's spread
over folds. ``--vectors FILE`` also writes every track's path, label, split, 43 features and musicnn embedding
(npz) for ``benchmarks/quality_grouped.py`` (the soundtrack-grouped comparison over seeds, and the attempts).
Prints the tables (markdown); ``--json`` writes every number.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import bench_environment
from musicindex.index import MusicIndex
from musicindex.ingest.labels import read_label_csv
from musicindex.localworker import LocalWorker
from musicindex.ml import training
from musicindex.vocab import CLASSIFIER_KINDS, MUSICNN

DEFAULT_SET = Path("~/.cache/musicindex-devset/set").expanduser()


def chance(train: dict[str, str], held: dict[str, str]) -> tuple[float, float]:
    """(accuracy of always answering the most common training label, expected precision@10 of random neighbours)."""
    top = Counter(train.values()).most_common(1)[0][0]
    acc = sum(lab == top for lab in held.values()) / len(held)
    pool = Counter({**train, **held}.values())
    n = sum(pool.values())
    prec = sum((pool[lab] - 1) / (n - 1) for lab in held.values()) / len(held)
    return acc, prec


def export_vectors(index: MusicIndex, path: Path, train_map: dict[str, str], held_map: dict[str, str]) -> None:
    """Every indexed track's path, label, split, artist/album tags, 43 features and musicnn embedding."""
    from sqlalchemy import select

    from musicindex.db.orm import Track
    from musicindex.ml import registry
    from musicindex.ml.data import load_dataset, load_embeddings

    with index.db.session() as s:
        ds = load_dataset(s)
        v = registry.active_version(s, MUSICNN)
        eids, emb = load_embeddings(s, v.id, ds.track_ids) if v is not None else (np.zeros(0, np.int64), None)
        tags = {
            int(r[0]): (r[1], r[2], r[3]) for r in s.execute(select(Track.id, Track.path, Track.artist, Track.album))
        }
    keep = np.isin(ds.track_ids, eids)
    ids = ds.track_ids[keep]
    paths = [tags[int(t)][0] for t in ids]
    truth = {**train_map, **held_map}
    np.savez_compressed(
        path,
        track_ids=ids,
        paths=np.array(paths),
        labels=np.array([truth.get(p, "") for p in paths]),
        split=np.array(["train" if p in train_map else "heldout" if p in held_map else "" for p in paths]),
        artist=np.array([tags[int(t)][1] or "" for t in ids]),
        album=np.array([tags[int(t)][2] or "" for t in ids]),
        features=ds.X[keep],
        musicnn=emb,
    )
    print(f"vectors of {len(ids)} tracks written: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=DEFAULT_SET, help="the dev set folder (benchmarks/devset.py)")
    ap.add_argument("--quick", action="store_true", help="small grids and network budgets (a smoke run)")
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--vectors", type=Path, help="write the tracks' features and embeddings here (npz)")
    args = ap.parse_args()
    labels, heldout = args.set / "labels.csv", args.set / "heldout.csv"
    if not labels.is_file() or not heldout.is_file():
        sys.exit(f"no dev set at {args.set}: run `python benchmarks/devset.py` first")
    train_map, held_map = read_label_csv(labels), read_label_csv(heldout)
    print(
        f"dev set: {len(train_map)} train + {len(held_map)} held-out tracks, labels {sorted(set(train_map.values()))}"
    )
    out: dict = {"set": str(args.set), "train": len(train_map), "heldout": len(held_map), "load": os.getloadavg()}

    with bench_environment("quality") as (settings, db, tmp):
        index = MusicIndex(db, settings)
        with LocalWorker(settings, queues="ingest,embed", log_path=tmp / "worker.log"):
            t0 = time.monotonic()
            summary = index.ingest([args.set / "audio"], wait=True, label_from=f"csv:{labels}", timeout=7200)
            t_ingest = time.monotonic() - t0
            emb = index.embed(wait=True, timeout=7200)
            t_embed = time.monotonic() - t0 - t_ingest
        n = summary.scanned
        print(
            f"ingest: {n} full-length tracks in {t_ingest:.1f} s ({n / t_ingest:.2f} tracks/s), final {summary.final}; "
            f"embed: {emb.embedded} in {t_embed:.1f} s ({emb.embedded / max(t_embed, 1e-9):.2f} tracks/s); "
            f"together {n / (t_ingest + t_embed):.2f} tracks/s (2 worker processes, load {os.getloadavg()[0]:.1f})"
        )
        out["pipeline"] = {"tracks": n, "ingest_s": t_ingest, "embed_s": t_embed, "final": summary.final}
        if args.vectors:
            export_vectors(index, args.vectors, train_map, held_map)

        opts = {"quick": args.quick, "force": True, "seed": 42}
        rows: list[dict] = []
        spaces: dict[str, dict] = {}
        for inputs in ("features", MUSICNN):
            t = time.monotonic()
            kinds = [k for k in CLASSIFIER_KINDS if k != "cnn" or inputs == "features"]
            kinds += ["lda"] if inputs == MUSICNN else []  # the lda space reads the musicnn embedding
            res = training.train(db, kinds, inputs=inputs, **opts)
            t_train = time.monotonic() - t
            seconds = {v["kind"]: v["training_seconds"] for v in res.versions}
            report = index.evaluate(labels=f"csv:{heldout}")
            for c in report.classifiers:
                if c.kind == "cnn" and inputs != "features":
                    continue
                rows.append({**c.to_dict(), "training_seconds": seconds.get(c.kind)})
            for sp in report.spaces:
                key = f"{sp.space} ({inputs} input)" if sp.space == "ann" else sp.space
                spaces[key] = sp.to_dict()
            print(f"trained {', '.join(kinds)} on {inputs} in {t_train:.0f} s (protocol: {report.protocol})")
        acc0, prec0 = chance(train_map, held_map)
        out.update(classifiers=rows, spaces=spaces, chance={"accuracy": acc0, "precision_at_10": prec0})

    def f(x: float | None) -> str:
        return "" if x is None else f"{x:.3f}"

    print("\n| space | precision@10 | other-artist precision@10 | 10-NN vote accuracy | queries |")
    print("| --- | --- | --- | --- | --- |")
    for name, s in sorted(spaces.items(), key=lambda kv: -kv[1]["precision_at_10"]):
        print(
            f"| {name} | {f(s['precision_at_10'])} | {f(s['other_artist_precision_at_10'])} | {f(s['accuracy'])} "
            f"| {s['queries']} |"
        )
    print(f"| chance (random neighbours) | {prec0:.3f} | | | |")
    print(
        "\n| classifier | input | held-out accuracy | held-out macro-F1 | unseen-artist accuracy (n) | p@10 | "
        "other-artist p@10 | CV accuracy (train part) | CV macro-F1 | folds | training s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in sorted(rows, key=lambda r: -(r["labels_accuracy"] or 0)):
        cv = f"{r['cv_accuracy_mean']:.3f} ± {r['cv_accuracy_std']:.3f}" if r["cv_accuracy_mean"] is not None else ""
        cvf = f"{r['cv_macro_f1_mean']:.3f} ± {r['cv_macro_f1_std']:.3f}" if r["cv_macro_f1_mean"] is not None else ""
        print(
            f"| {r['kind']} | {r['input']} | {f(r['labels_accuracy'])} | {f(r['labels_macro_f1'])} | "
            f"{f(r['unseen_artist_accuracy'])} ({r['unseen_artist_queries']}) | {f(r['precision_at_10'])} | "
            f"{f(r['other_artist_precision_at_10'])} | {cv} | {cvf} | {r['cv_protocol'] or ''} | "
            f"{f(r['training_seconds'])} |"
        )
    print(f"| majority label | - | {acc0:.3f} | | | | | | | | |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
        print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
