#!/usr/bin/env python
"""musicnn on ONNX Runtime: cost and quality of each runtime variant on the real-music dev set (no database).

    python benchmarks/musicnn_variants.py [--variants fp32-10p,fp32-5p,...] [--graph int8=PATH] [--json OUT]

For every variant of :mod:`musicindex.pretrained.runtime` (graph precision x patch placement):

* **cost**: CPU seconds on ONE thread (``time.process_time()`` around the ONNX Runtime calls only, one call per
  track with all the variant's patches of that track; the process is pinned to one CPU and the session has one
  thread, so the figure holds even when the other core is busy), median over the dev set's analysis windows;
  GFLOP per window (patches x the network's multiply-adds x 2), GFLOP/s reached and its share of the core's fp32
  peak (AVX2 + FMA on Zen: 2 x 256-bit FMA = 32 FLOP a cycle x the clock that ``/proc/cpuinfo`` reports: a VM
  may report the base clock while the core boosts, so a share above 100 % means a faster real clock). The
  log-mel cost (``musicnn.logmel``) is timed separately, per window, once;
* **difference** to ``fp32-10p`` (the reference, equal to the Keras port): max abs difference of the clip
  embeddings and of the clip tag probabilities over the set;
* **quality** on real held-out music: (i) genre precision@10 of the embedding space: each held-out track is a
  query, its neighbours are the 10 nearest other tracks of the whole set by cosine distance, precision is the
  share with the query's label, averaged; (ii) held-out accuracy of StandardScaler + LogisticRegression
  (max_iter=2000) and of KNN (k=5, Euclidean on the embeddings) trained on the train split. A variant is
  *acceptable* if precision@10 and both accuracies are within 0.01 of the reference's.

Also measured (cut (a)): the fp32 graph's cost per patch when 1, 10 (one clip), 40 or 80 patches (several clips)
go through one call.

The dev set is ``~/.cache/musicindex-devset/set`` (``benchmarks/devset.py``, docs/devset.md): ``all.csv`` gives
path, label, split. Each track's analysis window is decoded at 16 kHz exactly as ingest does (``read_window`` with
the default ``AnalysisWindow``) and cached under ``/tmp/musicindex-musicnn-variants`` (keyed by the paths, sizes
and mtimes), so repeated runs skip the decoding.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicindex.pretrained import musicnn, runtime  # noqa: E402

DEVSET = Path.home() / ".cache" / "musicindex-devset" / "set" / "all.csv"
CACHE = Path("/tmp/musicindex-musicnn-variants")
DEFAULT_VARIANTS = "full-10p,fp32-10p,fp32-6p,fp32-5p,fp32-5s,fp32-4s,fp32-3s,int8-10p,int8-5p,int8-5s,int8-3s"
REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 0.01


def cpu_info() -> tuple[str, float]:
    """(CPU model name, clock in GHz) as /proc/cpuinfo reports them."""
    model, mhz = platform.processor() or "unknown CPU", 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("unknown CPU", platform.processor()):
                model = value.strip()
            if key.strip() == "cpu MHz" and not mhz:
                mhz = float(value)
    except OSError:
        pass
    return model, mhz / 1000


@dataclass
class Track:
    path: str
    label: str
    split: str


def read_devset(csv_path: Path, limit: int | None) -> list[Track]:
    with csv_path.open(newline="") as fh:
        tracks = [Track(r["path"], r["label"], r["split"]) for r in csv.DictReader(fh)]
    if limit:  # keep both splits: every k-th track
        tracks = tracks[:: max(1, len(tracks) // limit)][:limit]
    return tracks


def decoded_windows(tracks: list[Track]) -> list[np.ndarray]:
    """Each track's analysis window, mono float32 at 16 kHz, decoded as ingest does (cached in CACHE)."""
    from musicindex.audio.decode import read_window
    from musicindex.audio.window import AnalysisWindow

    key = hashlib.sha256()
    for t in tracks:
        st = Path(t.path).stat()
        key.update(f"{t.path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    stem = CACHE / f"windows-{key.hexdigest()[:16]}"
    samples, offsets = stem.with_suffix(".samples.npy"), stem.with_suffix(".offsets.npy")
    if samples.exists() and offsets.exists():
        flat, ends = np.load(samples), np.load(offsets)
        return list(np.split(flat, ends[:-1]))
    started = time.perf_counter()
    signals = []
    for t in tracks:
        y, _ = read_window(t.path, AnalysisWindow(), sample_rate=musicnn.SAMPLE_RATE)
        signals.append(np.asarray(y, np.float32))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(samples, np.concatenate(signals))
    np.save(offsets, np.cumsum([s.size for s in signals]))
    print(f"decoded {len(tracks)} windows in {time.perf_counter() - started:.0f} s -> {stem}.*.npy", flush=True)
    return signals


def unshipped_graph(graph: str, devset: Path) -> Path:
    """Build a graph that is not shipped (``full``: the unpruned fp32 graph; ``int8`` if not shipped) into CACHE
    with tools/export_musicnn_onnx.py (needs the ``onnx`` package: the ``ml`` extra)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_musicnn_onnx", REPO / "tools" / "export_musicnn_onnx.py")
    assert spec is not None and spec.loader is not None
    export = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export)
    npz_sha = export.sha256_of(export.NPZ)
    out = CACHE / f"msd_musicnn_{graph}-{npz_sha[:12]}.onnx"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with np.load(export.NPZ, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if graph == "full":
        out.write_bytes(export.build_model(arrays, npz_sha, prune=False).SerializeToString())
    else:
        calibration = export.calibration_patches(devset, 64, 4)
        export.export_int8(arrays, npz_sha, calibration, out)
    print(f"built the {graph} graph: {out}", flush=True)
    return out


def precision_at_10(emb: np.ndarray, labels: np.ndarray, queries: np.ndarray) -> float:
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    sims = unit[queries] @ unit.T
    sims[np.arange(queries.size), queries] = -np.inf  # not itself
    nearest = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    return float((labels[nearest] == labels[queries, None]).mean())


def accuracies(emb: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(emb[train], labels[train])
    knn = KNeighborsClassifier(n_neighbors=5).fit(emb[train], labels[train])
    return (
        float((logreg.predict(emb[test]) == labels[test]).mean()),
        float((knn.predict(emb[test]) == labels[test]).mean()),
    )


@dataclass
class Row:
    variant: str
    patches_per_window: float
    ms_per_window: float
    gflop_per_window: float
    gflops: float
    peak_share: float
    max_diff_embedding: float
    max_diff_tags: float
    precision_at_10: float
    logreg_accuracy: float
    knn_accuracy: float
    acceptable: bool


def run_variants(
    runtimes: dict[str, runtime.MusicnnRuntime], mels: list[np.ndarray]
) -> dict[str, tuple[np.ndarray, np.ndarray, list[float], int]]:
    """Per variant: (clip embeddings, clip tag means, CPU seconds per window, patches in a 30 s window).

    The variants take turns on each window (in a rotating order), so a slower or faster stretch of the machine
    (another tenant, the clock) weighs on all of them alike.
    """
    for rt in runtimes.values():  # warm-up: kernels, arena
        rt.patch_outputs(rt.placement.cut(mels[0]))
    names = list(runtimes)
    out: dict[str, tuple[list[np.ndarray], list[np.ndarray], list[float], int]] = {n: ([], [], [], 0) for n in names}
    for i, mel in enumerate(mels):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            rt = runtimes[name]
            embs, tags, seconds, _ = out[name]
            batch = rt.placement.cut(mel)
            started = time.process_time()
            e, p = rt.patch_outputs(batch)
            seconds.append(time.process_time() - started)
            embs.append(e.mean(axis=0))
            tags.append(p.mean(axis=0))
            if mel.shape[0] >= 10 * musicnn.PATCH_FRAMES:
                out[name] = (embs, tags, seconds, batch.shape[0])
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(mels)} windows", flush=True)
    return {n: (np.stack(e), np.stack(t), s, f) for n, (e, t, s, f) in out.items()}


def batch_costs(
    rt: runtime.MusicnnRuntime, mels: list[np.ndarray], sizes: tuple[int, ...], rounds: int = 12
) -> dict[int, float]:
    """CPU ms per patch of the raw session at several patches per call (cut (a)), the sizes taking turns."""
    pool = np.concatenate([musicnn.patches(m) for m in mels])
    for size in sizes:
        rt._run(pool[:size])  # warm-up at this shape
    per_patch: dict[int, list[float]] = {size: [] for size in sizes}
    start = 0
    for i in range(rounds):
        for size in sizes[i % len(sizes) :] + sizes[: i % len(sizes)]:
            if start + size > pool.shape[0]:
                start = 0
            batch = pool[start : start + size]
            start += size
            started = time.process_time()
            rt._run(batch)
            per_patch[size].append((time.process_time() - started) / size)
    return {size: 1000 * float(np.median(v)) for size, v in per_patch.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    parser.add_argument("--graph", action="append", default=[], help="GRAPH=PATH: an unshipped graph file to try")
    parser.add_argument("--limit", type=int, default=None, help="only this many tracks (a quick look)")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the last one)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    if not args.devset.exists():
        print(f"no dev set at {args.devset}: build it with benchmarks/devset.py (docs/devset.md)", file=sys.stderr)
        return 2
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    model, ghz = cpu_info()
    peak = 32 * ghz
    overrides = dict(item.split("=", 1) for item in args.graph)
    tracks = read_devset(args.devset, args.limit)
    labels = np.array([t.label for t in tracks])
    train = np.array([i for i, t in enumerate(tracks) if t.split == "train"])
    test = np.array([i for i, t in enumerate(tracks) if t.split == "heldout"])
    signals = decoded_windows(tracks)

    mel_seconds, mels = [], []
    for y in signals:
        started = time.process_time()
        mels.append(musicnn.logmel(y))
        mel_seconds.append(time.process_time() - started)
    mel_ms = 1000 * float(np.median(mel_seconds))
    print(
        f"{len(tracks)} tracks ({train.size} train, {test.size} held-out), pinned to CPU {cpu}: {model}, {ghz:.2f} GHz"
    )
    print(f"log-mel (musicnn.logmel, librosa): {mel_ms:.1f} ms CPU per 30 s window (median)", flush=True)

    variants = ["fp32-10p", *(v for v in args.variants.split(",") if v and v != "fp32-10p")]
    runtimes = {}
    for variant in variants:
        graph, _ = runtime.parse_variant(variant)
        path = overrides.get(graph)
        if path is None and graph not in runtime.ONNX_FILES:
            path = overrides[graph] = str(unshipped_graph(graph, args.devset))
        runtimes[variant] = runtime.MusicnnRuntime.load(variant=variant, path=path, check_sha256=path is None)
    results = run_variants(runtimes, mels)
    batches = batch_costs(runtimes["fp32-10p"], mels[:40], (1, 2, 5, 10, 40))
    ref_emb, ref_tags = results["fp32-10p"][:2]
    base = (precision_at_10(ref_emb, labels, test), *accuracies(ref_emb, labels, train, test))
    rows: list[Row] = []
    for variant, (emb, tags, seconds, full) in results.items():
        quality = (precision_at_10(emb, labels, test), *accuracies(emb, labels, train, test))
        ms = 1000 * float(np.median(seconds))
        gflop = full * runtimes[variant].gflop_per_patch
        rows.append(
            Row(
                variant,
                full,
                ms,
                gflop,
                gflop / ms * 1000,
                gflop / ms * 1000 / peak,
                float(np.abs(emb - ref_emb).max()),
                float(np.abs(tags - ref_tags).max()),
                *quality,
                acceptable=all(abs(q - b) <= TOLERANCE for q, b in zip(quality, base, strict=True)),
            )
        )

    print(f"\nCPU: {model}, {ghz:.2f} GHz (/proc/cpuinfo), fp32 peak {peak:.1f} GFLOP/s a core (32 FLOP/cycle)")
    print(f"log-mel: {mel_ms:.1f} ms per window, not included below. One thread, CPU time, median over windows.")
    print("fp32 graph, ms per patch by patches per call:", ", ".join(f"{k}: {v:.1f}" for k, v in batches.items()))
    print("GFLOP: multiply-adds x 2 of the filters each graph computes (int8 rows: int8 operations, same count)")
    head = (
        "| variant | patches | ms/window | GFLOP/window | GFLOP/s | % of peak | max d emb | max d tags "
        "| p@10 | logreg acc | knn acc | within 0.01 |"
    )
    print("\n" + head)
    print("|" + " --- |" * (head.count("|") - 1))
    for r in rows:
        print(
            f"| {r.variant} | {r.patches_per_window:.0f} | {r.ms_per_window:.0f} | {r.gflop_per_window:.1f} "
            f"| {r.gflops:.1f} | {100 * r.peak_share:.0f} % | {r.max_diff_embedding:.2e} | {r.max_diff_tags:.2e} "
            f"| {r.precision_at_10:.3f} | {r.logreg_accuracy:.3f} | {r.knn_accuracy:.3f} "
            f"| {'yes' if r.acceptable else 'no'} |"
        )
    acceptable = [r for r in rows if r.acceptable]
    cheapest = min(acceptable, key=lambda r: r.ms_per_window)
    print(f"\ncheapest acceptable: {cheapest.variant} ({cheapest.ms_per_window:.0f} ms/window + {mel_ms:.0f} log-mel)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cpu": model,
                    "ghz": ghz,
                    "tracks": len(tracks),
                    "logmel_ms": mel_ms,
                    "batch_ms_per_patch": batches,
                    "rows": [asdict(r) for r in rows],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
