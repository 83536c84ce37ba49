#!/usr/bin/env python
"""musicnn embedding benchmark: cost per track on ONE core for a 30 s window, and the process's peak RSS.

    python benchmarks/embed.py [--tracks 16] [--batches 1,8] [--batch-patches 16]

The parent synthesizes ``--tracks`` different 30 s 44.1 kHz stereo FLAC files (16-bit, written with soundfile:
chords, a beat and noise at a per-track tempo and key), then runs one child process per oneDNN setting
(``TF_ENABLE_ONEDNN_OPTS=0`` and ``=1``, one after the other, in this one run). Each child:

* pins itself to one CPU (``sched_setaffinity``, like ``taskset -c``) before TensorFlow is imported, and sets
  TensorFlow's intra- and inter-op thread pools to 1 thread;
* loads ``MusicnnModel`` (MSD_musicnn) and warms it up (tracing, oneDNN primitives) on every batch shape it uses;
* times, for ``--batches`` tracks per ``embed`` call: **decode excluded** (signals already at 16 kHz in memory;
  log-mel + patches + network) and **decode included** (``soundfile.read`` of the whole FLAC, channel mean,
  ``soxr`` HQ resampling 44.1 -> 16 kHz, then the same);
* reports its peak RSS (``ru_maxrss``: TensorFlow, model and activations; the decoded signals are small).

Times are CPU seconds of the child (``time.process_time``; one core, so this is the cost on one core even when the
machine is shared) and wall seconds next to them. Stage costs (decode alone, log-mel alone) are printed too.
Goal (issue 12): <= 0.35 s per track on one core with batching, peak RSS <= 1.2 GB.
"""

from __future__ import annotations

import os

for _v in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicindex.pretrained import musicnn  # noqa: E402

FILE_SR = 44100
SECONDS = 30.0


def synth_track(seed: int, seconds: float = SECONDS, sr: int = FILE_SR) -> np.ndarray:
    """A 30 s stereo float32 track: chords, a kick/hat beat and noise, tempo and key set by ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = np.zeros(n)
    beat = 60.0 / rng.uniform(80, 160)
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    for start in np.arange(0.0, seconds, 4 * beat):
        seg = (t >= start) & (t < start + 4 * beat)
        tt = t[seg] - start
        chord_root = root * 2 ** (rng.choice([0, 3, 5, 7, 8, 10]) / 12)
        for interval in (0, 4, 7):
            for h in range(1, 6):
                y[seg] += 0.06 / h * np.sin(2 * np.pi * chord_root * 2 ** (interval / 12) * h * tt) * np.exp(-tt * h)
    kick_t = np.arange(int(0.2 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 20)
    for start in (np.arange(0.0, seconds, beat) * sr).astype(int):
        y[start : start + kick.size] += 0.5 * kick[: n - start]
    y += 0.02 * rng.standard_normal(n)
    y *= 0.8 / np.max(np.abs(y))
    pan = rng.uniform(0.3, 0.7)
    return np.stack([y * pan, y * (1 - pan)], axis=1).astype(np.float32)


def decode(path: Path) -> np.ndarray:
    """Whole file -> mono float32 at 16 kHz (channel mean, soxr HQ)."""
    import soxr

    data, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = data[:, 0].copy()
    for c in range(1, data.shape[1]):
        mono += data[:, c]
    mono /= np.float32(data.shape[1])
    return soxr.resample(mono, sr, musicnn.SAMPLE_RATE, quality="HQ")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``fn()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def child(folder: Path, batches: Sequence[int], batch_patches: int) -> dict[str, Any]:
    """Measure in this process (called with the oneDNN setting already in the environment)."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rss_import = _rss_mb()
    model = musicnn.MusicnnModel.load()
    rss_loaded = _rss_mb()
    files = sorted(folder.glob("*.flac"))
    signals = [decode(f) for f in files]
    groups = {b: [range(i, min(len(files), i + b)) for i in range(0, len(files), b)] for b in batches}
    for size in {len(g) for gs in groups.values() for g in gs}:  # warm-up on every batch shape used below
        model.embed(signals[:size], batch_patches=batch_patches)

    decode_cpu, _ = _timed(lambda: [decode(f) for f in files])
    logmel_cpu, _ = _timed(lambda: [musicnn.patches(musicnn.logmel(y)) for y in signals])
    out: dict[str, Any] = {
        "onednn": os.environ["TF_ENABLE_ONEDNN_OPTS"],
        "tracks": len(files),
        "patches_per_track": int(musicnn.patches(musicnn.logmel(signals[0])).shape[0]),
        "decode_s": decode_cpu / len(files),
        "logmel_s": logmel_cpu / len(files),
        "rss_import_mb": rss_import,
        "rss_loaded_mb": rss_loaded,
        "runs": [],
    }

    def run(calls: list[range], decoding: bool) -> None:
        for g in calls:
            clips = [decode(files[i]) for i in g] if decoding else [signals[i] for i in g]
            model.embed(clips, batch_patches=batch_patches)

    for b, calls in groups.items():
        excluded = _timed(functools.partial(run, calls, False))
        included = _timed(functools.partial(run, calls, True))
        out["runs"].append(
            {"batch": b, "excluded": [v / len(files) for v in excluded], "included": [v / len(files) for v in included]}
        )
    out["rss_peak_mb"] = _rss_mb()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=16, help="tracks per measurement (default: %(default)s)")
    parser.add_argument("--batches", default="1,8", help="tracks per embed call, comma-separated (default: 1,8)")
    parser.add_argument(
        "--batch-patches",
        type=int,
        default=musicnn.DEFAULT_BATCH_PATCHES,
        help="patches per network call (default: %(default)s)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]

    if args.child:
        print(json.dumps(child(args.child, batches, args.batch_patches)))
        return 0

    with tempfile.TemporaryDirectory(prefix="musicnn-bench-") as tmp:
        for i in range(args.tracks):
            sf.write(Path(tmp) / f"track{i:03d}.flac", synth_track(i), FILE_SR, subtype="PCM_16")
        results = []
        for onednn in ("0", "1"):
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3"}
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    tmp,
                    "--batches",
                    args.batches,
                    "--batch-patches",
                    str(args.batch_patches),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return proc.returncode
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    first = results[0]
    print(
        f"musicnn ({musicnn.MODEL_NAME}) embedding cost per track, one core, {SECONDS:.0f} s window = "
        f"{first['patches_per_track']} patches, {first['tracks']} tracks, {args.batch_patches} patches per network "
        f"call; 44.1 kHz stereo FLAC -> 16 kHz mono"
    )
    print(
        f"stages (oneDNN off run): decode + resample {first['decode_s'] * 1000:.1f} ms, "
        f"log-mel + patches {first['logmel_s'] * 1000:.1f} ms"
    )
    print(
        f"{'oneDNN':>7} {'tracks/call':>11} {'decode excluded (cpu / wall)':>30} "
        f"{'decode included (cpu / wall)':>30} {'peak RSS':>10}"
    )
    for r in results:
        for run in r["runs"]:
            ex, inc = run["excluded"], run["included"]
            print(
                f"{'on' if r['onednn'] == '1' else 'off':>7} {run['batch']:>11} "
                f"{ex[0]:>19.3f} / {ex[1]:.3f} s {inc[0]:>19.3f} / {inc[1]:.3f} s {r['rss_peak_mb']:>7.0f} MB"
            )
    for r in results:
        print(
            f"RSS, oneDNN {'on' if r['onednn'] == '1' else 'off'}: after importing TensorFlow "
            f"{r['rss_import_mb']:.0f} MB, model loaded {r['rss_loaded_mb']:.0f} MB, peak {r['rss_peak_mb']:.0f} MB"
        )
    best = min(run["included"][0] for run in results[-1]["runs"])
    print(
        f"goal <= 0.35 s per track (decode included, oneDNN on, best batching): {best:.3f} s -> "
        f"{'met' if best <= 0.35 else 'NOT met'}; peak RSS <= 1200 MB: {results[-1]['rss_peak_mb']:.0f} MB -> "
        f"{'met' if results[-1]['rss_peak_mb'] <= 1200 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
