"""Quality on real music held out from training: every similarity space and classifier on the dev set.

    python benchmarks/devset.py            # once: assembles ~/.cache/musicindex-devset/set (Debian packages)
    python benchmarks/quality.py [--set DIR] [--quick] [--json OUT]

Protocol (everything through the public API, as a user would):

1. ingest the whole set with a real worker: the train part labelled through ``--label-from
   csv:labels.csv``, the held-out part with no label at all;
2. embed every track in the pretrained musicnn space (the ``embed`` queue);
3. train knn, logreg and the ann twice, once on the 43 features and once on the musicnn
   embedding (``inputs=``), and the CNN on the spectrograms, on the train part only;
4. ``evaluate(labels="csv:heldout.csv")``: the held-out tracks are the queries; genre
   precision@10 of each space's exact nearest neighbours among all tracks of known genre, and
   each classifier's accuracy and macro-F1 on the held-out tracks.

Prints the tables (markdown) and, with ``--json``, writes every number. Timings are printed
too (ingest + embed through the worker, training), with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import bench_environment
from musicindex.index import MusicIndex
from musicindex.ingest.labels import read_label_csv
from musicindex.localworker import LocalWorker
from musicindex.ml import training

DEFAULT_SET = Path("~/.cache/musicindex-devset/set").expanduser()


def chance(train: dict[str, str], held: dict[str, str]) -> tuple[float, float]:
    """(accuracy of always answering the most common training label, expected precision@10 of random neighbours)."""
    top = Counter(train.values()).most_common(1)[0][0]
    acc = sum(lab == top for lab in held.values()) / len(held)
    pool = Counter({**train, **held}.values())
    n = sum(pool.values())
    prec = sum((pool[lab] - 1) / (n - 1) for lab in held.values()) / len(held)
    return acc, prec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=DEFAULT_SET, help="the dev set folder (benchmarks/devset.py)")
    ap.add_argument("--quick", action="store_true", help="small grids and network budgets (a smoke run)")
    ap.add_argument("--json", type=Path, help="write every number here")
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

        opts = {"quick": args.quick, "force": True, "seed": 42}
        rows: list[dict] = []
        spaces: dict[str, dict] = {}
        for inputs in ("features", "musicnn"):
            t = time.monotonic()
            kinds = "knn,logreg,ann" + (",cnn" if inputs == "features" else "")
            training.train(db, kinds, inputs=inputs, **opts)
            t_train = time.monotonic() - t
            report = index.evaluate(labels=f"csv:{heldout}")
            for c in report.classifiers:
                if c.kind == "cnn" and inputs != "features":
                    continue
                rows.append(
                    {
                        "kind": c.kind,
                        "input": c.input,
                        "heldout_accuracy": c.labels_accuracy,
                        "heldout_macro_f1": c.labels_macro_f1,
                        "cv_accuracy": c.cv_accuracy_mean,
                        "tracks": c.labels_tracks,
                    }
                )
            for sp in report.spaces:
                key = f"{sp.space} ({inputs} input)" if sp.space == "ann" else sp.space
                spaces[key] = {"precision_at_10": sp.precision_at_10, "queries": sp.queries, "protocol": sp.protocol}
            print(f"trained knn/logreg/ann on {inputs} in {t_train:.0f} s (protocol: {report.protocol})")
        acc0, prec0 = chance(train_map, held_map)
        out.update(classifiers=rows, spaces=spaces, chance={"accuracy": acc0, "precision_at_10": prec0})

    print("\n| space | genre precision@10, held-out queries | queries |")
    print("| --- | --- | --- |")
    for name, s in sorted(spaces.items(), key=lambda kv: -kv[1]["precision_at_10"]):
        print(f"| {name} | {s['precision_at_10']:.3f} | {s['queries']} |")
    print(f"| chance (random neighbours) | {prec0:.3f} | |")
    print("\n| classifier | input | held-out accuracy | held-out macro-F1 | CV accuracy (train part) |")
    print("| --- | --- | --- | --- | --- |")
    for r in sorted(rows, key=lambda r: -(r["heldout_accuracy"] or 0)):
        cv = f"{r['cv_accuracy']:.3f}" if r["cv_accuracy"] is not None else ""
        print(f"| {r['kind']} | {r['input']} | {r['heldout_accuracy']:.3f} | {r['heldout_macro_f1']:.3f} | {cv} |")
    print(f"| majority label | - | {acc0:.3f} | | |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
        print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
