#!/usr/bin/env python
"""Feature-extraction benchmark: musicindex vs the straightforward librosa reference.

    python benchmarks/extract.py [--files DIR] [--n 12] [--cores 1] [--seed 0]

Without ``--files`` a varied corpus of full-length tracks (3-5 min, 44.1 kHz
stereo, half OGG/Vorbis half MP3) is synthesised with numpy into a temp dir:
each track has its own tempo, key, chord progression, timbre (number and decay
of harmonics), drum pattern and levels, noise floor and DC offset, so the
feature values spread across files and Pearson r is meaningful.

Single core: thread pools are pinned to one thread before numpy is imported,
and times are process CPU times (``time.process_time``).

Timed per track, same files, same process, same analysis window:

* reference: ``reference_features(path)`` = ``librosa.load(offset, duration)``
  (soxr_hq) + one librosa call per feature (``librosa.effects.hpss``,
  ``librosa.feature.tempo``, ...);
* musicindex: ``read_window`` (decode only the window, mixdown, soxr HQ
  resample) + ``extract_features`` (all 43);
* spectrogram: ``compute_logmel`` + ``encode`` standalone (inside
  ``analyse`` it reuses the feature STFT and costs only the encode).

Accuracy: the reference features are computed from the *same* decoded window
``y`` as musicindex (``reference_features_from_signal(y)``), because
``librosa.load(offset=...)`` on MP3 returns a corrupted window with
libsndfile 1.2.2 (see musicindex/audio/decode.py); for OGG the two windows are
bit-identical, which the benchmark checks and prints.
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
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicindex import audio  # noqa: E402
from musicindex.audio.features import FEATURE_NAMES, extract_features  # noqa: E402
from musicindex.audio.reference import reference_features, reference_features_from_signal  # noqa: E402
from musicindex.audio.spectrogram import compute_logmel, encode  # noqa: E402
from musicindex.audio.window import AnalysisWindow  # noqa: E402

SR_OUT = 44100
EXTS = (".ogg", ".mp3", ".flac", ".wav", ".aiff", ".aif", ".au")


# ------------------------------------------------------------------------------------------ corpus
def _env(n: int, attack: int, decay: float, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    e = np.exp(-t / decay)
    a = min(attack, n)
    if a > 0:
        e[:a] *= np.linspace(0.0, 1.0, a)
    return e


def synth_track(seed: int, sr: int = SR_OUT) -> np.ndarray:
    """A varied synthetic 'song' (n, 2) float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    dur = float(rng.uniform(180, 300))
    n = int(dur * sr)
    bpm = float(rng.uniform(68, 176))
    beat = 60.0 / bpm
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    n_harm = int(rng.integers(1, 12))
    h_decay = float(rng.uniform(0.3, 1.5))
    bright = float(rng.uniform(0.3, 0.95))
    tonal_gain = float(rng.uniform(0.05, 0.5))
    drum_gain = float(rng.uniform(0.0, 0.8))
    noise_gain = float(10 ** rng.uniform(-3.5, -1.3))
    dc = float(rng.uniform(-0.02, 0.02))
    swing = float(rng.uniform(0, 0.1))
    prog = rng.choice([0, 2, 3, 5, 7, 8, 9, 10], size=4)
    minor = bool(rng.integers(0, 2))
    third = 3 if minor else 4

    y = np.zeros(n, dtype=np.float64)
    # harmony: one chord per bar (4 beats); notes = root+prog, with harmonics
    bar = int(4 * beat * sr)
    tt = np.arange(bar) / sr
    partials = bright ** np.arange(n_harm)
    for b0 in range(0, n, bar):
        deg = int(prog[(b0 // bar) % 4])
        seg = min(bar, n - b0)
        chord = np.zeros(seg)
        for iv in (0, third, 7):
            f0 = root * 2 ** ((deg + iv) / 12) * (1 + rng.normal(0, 0.002))
            env = _env(seg, int(0.01 * sr), h_decay * 4 * beat, sr)
            for k, amp in enumerate(partials, start=1):
                if f0 * k > sr / 2 - 500:
                    break
                chord += amp * np.sin(2 * np.pi * f0 * k * tt[:seg] + rng.uniform(0, 2 * np.pi)) * env
        y[b0 : b0 + seg] += tonal_gain * chord / max(1.0, np.sqrt(n_harm))
    # melody: random scale notes on eighths
    if rng.random() < 0.7:
        scale = np.array([0, 2, third, 5, 7, 8 if minor else 9, 10 if minor else 11])
        step = int(beat / 2 * sr)
        mel_gain = tonal_gain * rng.uniform(0.3, 1.0)
        ts = np.arange(step) / sr
        for s0 in range(0, n - step, step):
            if rng.random() < 0.3:
                continue
            f = 2 * root * 2 ** (scale[rng.integers(0, 7)] / 12)
            y[s0 : s0 + step] += (
                mel_gain
                * np.sin(2 * np.pi * f * ts)
                * _env(step, 50, beat / 3, sr)
                * (1 + 0.3 * np.sin(2 * np.pi * 2 * f * ts))
            )
    # drums
    if drum_gain > 0:
        kick_len, snare_len, hat_len = int(0.25 * sr), int(0.18 * sr), int(0.05 * sr)
        tk = np.arange(kick_len) / sr
        kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-tk * 30)) * tk) * np.exp(-tk * 12)
        snare = rng.standard_normal(snare_len) * np.exp(-np.arange(snare_len) / sr * 25)
        hat = np.diff(rng.standard_normal(hat_len + 1)) * np.exp(-np.arange(hat_len) / sr * 80)
        pattern = rng.random(16) < rng.uniform(0.2, 0.7)
        six = beat / 4
        i = 0
        tpos = 0.0
        while True:
            s0 = int((tpos + (swing * six if i % 2 else 0)) * sr)
            if s0 >= n:
                break
            pos = i % 16
            if pos in (0, 8) or (pos == 10 and pattern[pos]):
                seg = min(kick_len, n - s0)
                y[s0 : s0 + seg] += drum_gain * kick[:seg]
            if pos in (4, 12):
                seg = min(snare_len, n - s0)
                y[s0 : s0 + seg] += 0.5 * drum_gain * snare[:seg]
            if pattern[pos]:
                seg = min(hat_len, n - s0)
                y[s0 : s0 + seg] += 0.3 * drum_gain * hat[:seg]
            i += 1
            tpos += six
    # noise floor and slow level changes (sections)
    y += noise_gain * rng.standard_normal(n)
    sections = np.repeat(rng.uniform(0.5, 1.0, size=int(np.ceil(n / (8 * bar))) + 1), 8 * bar)[:n]
    y *= sections
    y += dc
    left = y
    right = 0.9 * y + 0.05 * rng.standard_normal() * np.roll(y, int(rng.integers(1, 200)))
    st = np.stack([left, right], axis=1)
    peak = np.abs(st).max()
    st *= rng.uniform(0.3, 0.95) / max(peak, 1e-9)
    return st.astype(np.float32)


def write_track(path: Path, y: np.ndarray, sr: int = SR_OUT) -> None:
    fmt = "OGG" if path.suffix == ".ogg" else "MP3"
    # blocks: libsndfile 1.2.2 crashes when LAME is fed minutes of audio in one call
    with sf.SoundFile(str(path), "w", sr, y.shape[1], format=fmt) as f:
        for i in range(0, len(y), 1 << 16):
            f.write(y[i : i + (1 << 16)])


def make_corpus(folder: Path, n: int, seed: int) -> list[Path]:
    paths = []
    for i in range(n):
        p = folder / f"track{i:02d}{'.ogg' if i % 2 == 0 else '.mp3'}"
        write_track(p, synth_track(seed * 1000 + i))
        paths.append(p)
    return paths


# ------------------------------------------------------------------------------------------ timing
def cpu() -> float:
    return time.process_time()


def ours_one(path: str) -> tuple[float, np.ndarray]:
    t0 = cpu()
    y, _ = audio.read_window(path)
    f = extract_features(y)
    return cpu() - t0, f


def _pool_init() -> None:
    audio.warm_up()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=Path, help="folder of audio files (default: synthesise a corpus)")
    ap.add_argument("--n", type=int, default=12, help="number of tracks (default 12)")
    ap.add_argument("--cores", type=int, default=1, help="also measure throughput with this many processes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    tmp = None
    t_start = time.perf_counter()
    if args.files:
        paths = sorted(p for p in args.files.rglob("*") if p.suffix.lower() in EXTS)[: args.n]
        if not paths:
            print(f"no audio files in {args.files}", file=sys.stderr)
            return 2
    else:
        tmp = tempfile.TemporaryDirectory(prefix="musicindex-bench-")
        t0 = time.perf_counter()
        paths = make_corpus(Path(tmp.name), args.n, args.seed)
        print(
            f"corpus: {len(paths)} synthetic tracks (3-5 min, 44.1 kHz stereo, OGG/MP3) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
    win = AnalysisWindow()
    infos = [audio.probe(p) for p in paths]
    win_s = np.array([win.bounds(i.duration)[1] for i in infos])
    print(
        f"files: {len(paths)}, formats {sorted({i.format for i in infos})}, "
        f"durations {min(i.duration for i in infos):.0f}-{max(i.duration for i in infos):.0f} s, "
        f"window {win.duration:.0f} s at {win.offset:.0f} s"
    )

    # warm up both sides (numba JIT, filter banks, librosa caches) outside the timings
    audio.warm_up()
    reference_features(paths[0])
    ours_one(str(paths[0]))

    ref_t, our_t, spec_t, spec_b = [], [], [], []
    ref_f, our_f, same_y = [], [], []
    import librosa

    for p in paths:
        t0 = cpu()
        reference_features(p, win)
        ref_t.append(cpu() - t0)

        dt, f = ours_one(str(p))
        our_t.append(dt)
        our_f.append(f)

        y, info = audio.read_window(p, win)
        t0 = cpu()
        blob = encode(compute_logmel(y))
        spec_t.append(cpu() - t0)
        spec_b.append(len(blob))

        # accuracy: reference on the same decoded window
        ref_f.append(reference_features_from_signal(y))
        start, length = win.bounds(info.duration)
        yl, _ = librosa.load(str(p), sr=audio.SAMPLE_RATE, offset=start, duration=length)
        same_y.append((info.format, yl.shape == y.shape and bool(np.array_equal(yl, y))))

    ref_t, our_t, spec_t = map(np.array, (ref_t, our_t, spec_t))
    ref_f, our_f = np.array(ref_f), np.array(our_f)
    ms = lambda a: 1000 * float(np.mean(a))  # noqa: E731
    print()
    print("single core (process CPU time), per track, mean over files:")
    print(f"  reference  (librosa.load + per-feature librosa): {ms(ref_t):8.1f} ms")
    print(
        f"  musicindex (decode+mixdown+resample+43 features): {ms(our_t):8.1f} ms  "
        f"(min {1000 * our_t.min():.1f}, max {1000 * our_t.max():.1f})"
    )
    print(f"  speed-up vs reference: {float(np.sum(ref_t) / np.sum(our_t)):.1f}x")
    print(
        f"  times real time (window / CPU time): {float(np.sum(win_s) / np.sum(our_t)):.0f}x "
        f"(reference {float(np.sum(win_s) / np.sum(ref_t)):.0f}x)"
    )
    print(
        f"  spectrogram (compute_logmel + encode, standalone): {ms(spec_t):.1f} ms, "
        f"stored {np.mean(spec_b) / 1000:.1f} kB/track (max {max(spec_b) / 1000:.1f} kB)"
    )
    for fmt in sorted({f for f, _ in same_y}):
        k = [s for f, s in same_y if f == fmt]
        print(f"  librosa.load window bit-identical to read_window: {fmt} {sum(k)}/{len(k)}")

    if args.cores > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.cores, initializer=_pool_init) as ex:
            list(ex.map(ours_one, [str(p) for p in paths[: args.cores]]))
            t0 = time.perf_counter()
            list(ex.map(ours_one, [str(p) for p in paths] * 2))
            wall = time.perf_counter() - t0
        print(f"  throughput with {args.cores} processes: {2 * len(paths) / wall:.1f} tracks/s")

    print()
    print(
        "accuracy vs reference computed on the same decoded window "
        "(rel = |ours-ref| / |ref|; *: near-zero mean, rel to sqrt(var) instead)"
    )
    print(f"  {'feature':26s} {'max rel err':>12s} {'pearson r':>10s} {'ref min':>12s} {'ref max':>12s}")
    worst = 0.0
    for j, name in enumerate(FEATURE_NAMES):
        a, b = our_f[:, j], ref_f[:, j]
        if name in ("harmony_mean", "perceptr_mean"):
            scale = np.sqrt(ref_f[:, j + 1])
            star = "*"
        else:
            scale = np.abs(b)
            star = " "
        rel = float(np.max(np.abs(a - b) / np.maximum(scale, 1e-300)))
        worst = max(worst, rel)
        r = float(np.corrcoef(a, b)[0, 1]) if np.std(b) > 0 and np.std(a) > 0 else float("nan")
        print(f"  {name:26s} {rel:11.2e}{star} {r:10.6f} {b.min():12.5g} {b.max():12.5g}")
    print(f"  worst relative error: {worst:.2e}")
    print(f"\ntotal benchmark wall time: {time.perf_counter() - t_start:.0f} s")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
