"""Training benchmark: every model on a synthesized labelled library, default (full) budgets.

Generates GENRES x CLIPS synthesized clips (default 8 x 25 x 30 s), ingests them in-process
into a fresh database (embedded servers under a temporary MUSICINDEX_HOME unless one is
set), trains knn, logreg, ann, cnn, kmeans, birch and gmm in-process, and prints each
model's held-out and cross-validated scores and its training time, the backfill time, and
where the HTML report was written.

    python benchmarks/train.py [--genres 8] [--clips 25] [--seconds 30] [--test-size 0.2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")

from benchmarks._common import bench_environment  # noqa: E402
from musicindex import ingest  # noqa: E402
from musicindex.ml import training  # noqa: E402
from musicindex.ml.report import write_report  # noqa: E402
from musicindex.sample.library import generate_library  # noqa: E402
from musicindex.sample.styles import GENRES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genres", type=int, default=8)
    ap.add_argument("--clips", type=int, default=25, help="clips per genre")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--models", default="all")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (library, report)")
    args = ap.parse_args()

    with bench_environment("mi-bench-train", keep=args.keep) as (_settings, db, tmp):
        run(args, db, tmp)


def run(args, db, tmp: Path) -> None:
    genres = list(GENRES)[: args.genres]
    t0 = time.perf_counter()
    generate_library(tmp / "library", per_genre=args.clips, genres=genres, duration=args.seconds, seed=2024)
    t_synth = time.perf_counter() - t0
    reg = ingest.register(db, [tmp / "library"], label_from="folder")
    t0 = time.perf_counter()
    ingest.process_tracks(db, reg.queued_ids)
    t_ingest = time.perf_counter() - t0
    print(
        f"library: {len(genres)} genres x {args.clips} clips x {args.seconds:.0f} s "
        f"(synthesized in {t_synth:.1f} s, ingested in-process in {t_ingest:.1f} s)"
    )
    print(f"machine: {os.cpu_count()} cores; chance = {1 / len(genres):.3f}\n")
    t0 = time.perf_counter()
    res = training.train(
        db, args.models, test_size=args.test_size, quick=args.quick, on_progress=lambda m: print(m, flush=True)
    )
    total = time.perf_counter() - t0
    print(f"\n{'model':8} {'acc':>6} {'P':>6} {'R':>6} {'F1':>6} {'cv acc':>14} {'cv F1':>14} {'train s':>8}")
    for v in res.versions:
        m = v["metrics"]
        if "accuracy" in m:
            with db.session() as s:
                from musicindex.db.orm import ModelVersion

                full = s.get(ModelVersion, v["id"]).metrics
            print(
                f"{v['kind']:8} {full['accuracy']:6.3f} {full['macro_precision']:6.3f} {full['macro_recall']:6.3f} "
                f"{full['macro_f1']:6.3f} {full['cv_accuracy_mean']:6.3f}±{full['cv_accuracy_std']:.3f} "
                f"{full['cv_macro_f1_mean']:6.3f}±{full['cv_macro_f1_std']:.3f} {v['training_seconds']:8.1f}"
            )
    for v in res.versions:
        m = v["metrics"]
        if "silhouette" in m:
            print(
                f"{v['kind']:8} k={m['n_clusters']:<3} silhouette {m['silhouette']:.3f}  "
                f"Davies-Bouldin {m['davies_bouldin']:.3f}  {v['training_seconds']:8.1f} s"
            )
    print(f"\nwhole run (training + backfill + HNSW + promotion): {total:.1f} s")
    report = write_report(db, tmp / "report")
    print(f"report: {report}{'' if args.keep else ' (deleted; --keep keeps it)'}")


if __name__ == "__main__":
    main()
