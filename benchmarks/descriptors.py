#!/usr/bin/env python
"""Accuracy and cost of the descriptors (tempo, key, loudness, mood), against annotations and references.

    python benchmarks/descriptors.py [--annotated DIR] [--devset DIR] [--loudness-n 60] [--cost-n 40]
                                     [--skip synth,annotated,hard,loudness,extent,cost] [--json OUT]

Sections (each prints its own table; the figures go to docs/features.md, "Descriptors"):

1. **synthesized** (plumbing, not quality): click tracks and drum patterns at 24 tempi 60-200 BPM, straight
   and swung with rests; I-IV-V-I / i-iv-V-i cadences in all 24 keys on four timbres.
2. **annotated**: ``benchmarks/annotated_set.py``'s set (``~/.cache/musicindex-annotated/set``): real
   recordings with a hand-made tempo map (Frets on Fire) and MIDI compositions rendered through two General
   MIDI soundfonts ("synthesized timbres of real music", tempo and key from the file).  Each file is read as
   the pass reads it (``decode.read_window``: the 30-s window, mono, 22 050 Hz).  Baselines in the same run:
   ``librosa.feature.tempo`` on the same onset envelope (= the 43-feature ``tempo``) and a plain template key
   finder (Krumhansl-Kessler profiles on the mean ``librosa.feature.chroma_stft``).
   Tempo: Acc1 (within 4 %), Acc2 (within 4 % of 1, 2, 3, 1/2 or 1/3 times); None counts as wrong.
   Key: exact and the MIREX weighted score (fifth 0.5, relative 0.3, parallel 0.2).
3. **hard inputs**: silence, a 2-s file, noise, speech-like, ambient, rubato, atonal, modulating: what each
   estimator answers.
4. **loudness** on real full-length files (the dev set, ``benchmarks/devset.py``): reference =
   pyloudnorm's integrated loudness and loudness range of the full track at the file's rate and channels, and
   the 4x-oversampled (scipy ``resample_poly``) full-track true peak; compared: ours on the same full track,
   ours on the pass's window (mono 22 050 Hz, counted as two channels for a stereo file), ours on the full
   track downmixed to mono 22 050 Hz; album gain: exact gating over the album's blocks vs the approximation.
5. **cost**: CPU seconds (``time.process_time``, one thread) per descriptor on the windows of real
   full-length files, beside the pass itself (``analysis.analyse``) in the same run.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicindex.audio.descriptors import inputs as I
from musicindex.audio.descriptors.key import PROFILES, estimate_key, key_name, mirex_score
from musicindex.audio.descriptors.loudness import album_loudness, measure_loudness
from musicindex.audio.descriptors.mood import mood_scores
from musicindex.audio.descriptors.tempo import estimate_tempo
from musicindex.sample import ground_truth as G

ANNOTATED = Path("~/.cache/musicindex-annotated/set").expanduser()
DEVSET = Path("~/.cache/musicindex-devset/set").expanduser()
SR = 22050
FACTORS2 = (1.0, 2.0, 3.0, 0.5, 1 / 3)


def acc(est: float | None, ref: float) -> tuple[bool, bool]:
    if est is None:
        return False, False
    return abs(est - ref) <= 0.04 * ref, any(abs(est - ref * f) <= 0.04 * ref * f for f in FACTORS2)


def librosa_tempo(oenv: np.ndarray) -> float:
    import librosa

    return float(np.atleast_1d(librosa.feature.tempo(onset_envelope=oenv, sr=SR, hop_length=512))[0])


def template_key(y: np.ndarray) -> str:
    """The baseline: Krumhansl-Kessler profiles correlated with the mean librosa chroma_stft."""
    import librosa

    v = librosa.feature.chroma_stft(y=y, sr=SR).mean(axis=1)
    best, name = -2.0, ""
    for m, mode in enumerate(("major", "minor")):
        prof = np.asarray(PROFILES["krumhansl"][m])
        for t in range(12):
            r = float(np.corrcoef(v, np.roll(prof, t))[0, 1])
            if r > best:
                best, name = r, key_name(t, mode)
    return name


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in r) + " |")


# ------------------------------------------------------------------------------------------------ sections
def synthesized(out: dict) -> None:
    res = defaultdict(list)
    for bpm in np.linspace(60, 200, 24):
        for kind, gen in (("click", G.click_track), ("drums", G.drum_pattern)):
            for style, kw in (("straight", {}), ("swing+rests", {"swing": 0.33, "rest": 0.2})):
                oenv = I.pass_inputs(gen(float(bpm), **kw)).onset_envelope
                res[f"{kind} {style}"].append((acc(estimate_tempo(oenv).bpm, bpm), acc(librosa_tempo(oenv), bpm)))
    rows = []
    for name, v in res.items():
        a = np.asarray([x[0] for x in v], dtype=float).mean(axis=0)
        b = np.asarray([x[1] for x in v], dtype=float).mean(axis=0)
        rows.append([name, len(v), a[0], a[1], b[0], b[1]])
    table("synthesized tempo (plumbing)", ["set", "n", "Acc1", "Acc2", "librosa Acc1", "librosa Acc2"], rows)
    out["synth_tempo"] = rows
    krow = []
    for timbre in G.TIMBRES:
        ours, base = [], []
        for mode in ("major", "minor"):
            for t in range(12):
                y = G.chord_progression(t, mode, 20.0, timbre=timbre, seed=t)
                ref = key_name(t, mode)
                ours.append(mirex_score(estimate_key(I.pass_inputs(y).chroma).key, ref))
                base.append(mirex_score(template_key(y), ref))
        krow.append([timbre, 24, float(np.mean(np.asarray(ours) == 1)), float(np.mean(ours)),
                     float(np.mean(np.asarray(base) == 1)), float(np.mean(base))])  # fmt: skip
    table("synthesized key (plumbing)", ["timbre", "n", "exact", "weighted", "template exact", "template weighted"],
          krow)  # fmt: skip
    out["synth_key"] = krow


def annotated(folder: Path, out: dict) -> None:
    from musicindex.audio.decode import read_window

    path = folder / "annotations.csv"
    if not path.exists():
        print(f"\n(no annotated set at {folder}: python benchmarks/annotated_set.py)")
        return
    rows = list(csv.DictReader(path.open()))
    tempo_res: dict[str, list] = defaultdict(list)
    key_res: dict[str, list] = defaultdict(list)
    for r in rows:
        y, _ = read_window(r["path"])
        pi = I.pass_inputs(y)
        ref = float(r["bpm"])
        group = "real recordings" if r["kind"] == "real" else f"rendered MIDI ({r['timbre']})"
        est = estimate_tempo(pi.onset_envelope)
        tempo_res[group].append((acc(est.bpm, ref), acc(librosa_tempo(pi.onset_envelope), ref), est.bpm is None))
        if r["key"]:
            k = estimate_key(pi.chroma)
            key_res[group].append((mirex_score(k.key, r["key"]), mirex_score(template_key(y), r["key"]),
                                   k.key is None))  # fmt: skip
    trow = []
    for g in sorted(tempo_res):
        v = tempo_res[g]
        a = np.asarray([x[0] for x in v], dtype=float).mean(axis=0)
        b = np.asarray([x[1] for x in v], dtype=float).mean(axis=0)
        trow.append([g, len(v), a[0], a[1], b[0], b[1], sum(x[2] for x in v)])
    v = [x for g in tempo_res.values() for x in g]
    a = np.asarray([x[0] for x in v], dtype=float).mean(axis=0)
    b = np.asarray([x[1] for x in v], dtype=float).mean(axis=0)
    trow.append(["all", len(v), a[0], a[1], b[0], b[1], sum(x[2] for x in v)])
    table("annotated tempo", ["set", "n", "Acc1", "Acc2", "librosa Acc1", "librosa Acc2", "None"], trow)
    krow = []
    for g in [*sorted(key_res), "all"]:
        v = key_res[g] if g != "all" else [x for gg in key_res.values() for x in gg]
        s, b = np.asarray([x[0] for x in v]), np.asarray([x[1] for x in v])
        krow.append([g, len(v), float(np.mean(s == 1)), float(s.mean()), float(np.mean(b == 1)), float(b.mean()),
                     sum(x[2] for x in v)])  # fmt: skip
    table("annotated key (rendered MIDI only: no real recording here has a key annotation)",
          ["set", "n", "exact", "weighted", "template exact", "template weighted", "None"], krow)  # fmt: skip
    out["annotated_tempo"], out["annotated_key"] = trow, krow


def hard(out: dict) -> None:
    rows = []
    for name, gen in G.HARD_INPUTS.items():
        y = gen()
        pi = I.pass_inputs(y)
        t, k = estimate_tempo(pi.onset_envelope), estimate_key(pi.chroma)
        lo = measure_loudness(y, SR)
        rows.append([name, t.bpm, round(t.confidence, 3), k.key, round(k.confidence, 3), lo.integrated])
    table("hard inputs", ["input", "tempo", "tempo conf", "key", "key conf", "LUFS"], rows)
    out["hard"] = rows


def _devset_files(folder: Path, n: int) -> list[tuple[Path, str]]:
    path = folder / "all.csv"
    if not path.exists():
        return []
    rows = sorted(csv.DictReader(path.open()), key=lambda r: r["sha256"])  # a fixed, label-blind order
    return [(Path(r["path"]), r["package"]) for r in rows[:n]]


def loudness(folder: Path, n: int, out: dict) -> None:
    import pyloudnorm
    import soundfile as sf
    import soxr
    from scipy.signal import resample_poly

    from musicindex.audio.decode import read_window

    files = _devset_files(folder, n)
    if not files:
        print(f"\n(no dev set at {folder}: python benchmarks/devset.py)")
        return
    err = defaultdict(list)
    albums: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for path, package in files:
        x, rate = sf.read(path, dtype="float32", always_2d=True)
        x = x[:, :5]
        meter = pyloudnorm.Meter(rate)
        ref = meter.integrated_loudness(x.astype(np.float64))
        ref_lra = meter.loudness_range(x.astype(np.float64))
        ref_tp = 20 * np.log10(max(np.abs(resample_poly(x, 4, 1, axis=0)).max(), 1e-12))
        full = measure_loudness(x, rate)
        y, _ = read_window(path)
        two = 2 if x.shape[1] == 2 else None
        win = measure_loudness(y, SR, playback_channels=two)
        mono = soxr.resample(x.mean(axis=1), rate, SR, quality="HQ")
        down = measure_loudness(mono, SR, playback_channels=two)
        if not np.isfinite(ref) or full.integrated is None or win.integrated is None:
            continue
        err["integrated: ours full track"].append(full.integrated - ref)
        err["integrated: window, mono 22.05 kHz"].append(win.integrated - ref)
        err["integrated: full track, mono 22.05 kHz"].append((down.integrated or np.nan) - ref)
        if np.isfinite(ref_lra) and full.loudness_range is not None:
            err["LRA: ours full track (LU)"].append(full.loudness_range - ref_lra)
            err["LRA: window (LU)"].append((win.loudness_range or np.nan) - ref_lra)
        err["true peak: ours full track (dB)"].append((full.true_peak or np.nan) - ref_tp)
        err["true peak: window, mono 22.05 kHz (dB)"].append((win.true_peak or np.nan) - ref_tp)
        albums[package]["full"].append(full)
        albums[package]["win"].append(win)
    rows = []
    for name, v in err.items():
        a = np.abs(np.asarray(v, dtype=float))
        a = a[np.isfinite(a)]
        rows.append([name, a.size, float(np.mean(v)), float(a.mean()), float(np.percentile(a, 95)), float(a.max())])
    alb = []
    for d in albums.values():
        exact = album_loudness(d["full"])
        approx = album_loudness([_without_blocks(t) for t in d["full"]])
        window = album_loudness(d["win"])
        if exact is not None and approx is not None and window is not None:
            alb.append((approx - exact, window - exact))
    if alb:
        e = np.asarray(alb)
        for j, name in enumerate(("album: power-mean approximation", "album: window blocks")):
            a = np.abs(e[:, j])
            rows.append([name, len(alb), float(e[:, j].mean()), float(a.mean()), float(np.percentile(a, 95)),
                         float(a.max())])  # fmt: skip
    table(f"loudness vs pyloudnorm / resample_poly, full track at the file's rate ({len(files)} dev-set files)",
          ["measure", "n", "mean error", "mean |error|", "p95 |error|", "max |error|"], rows)  # fmt: skip
    out["loudness"] = rows


def _spread(x: np.ndarray, rate: int, n_seg: int = 10, seg_s: float = 3.0) -> list[np.ndarray]:
    """``n_seg`` pieces of ``seg_s`` seconds spread evenly over the track (the whole track when shorter)."""
    seg = int(seg_s * rate)
    if x.shape[0] <= n_seg * seg:
        return [x]
    starts = np.linspace(0, x.shape[0] - seg, n_seg).astype(int)
    return [x[s : s + seg] for s in starts]


def _pieces_loudness(pieces: list[np.ndarray], rate: float, playback_channels: int | None = None) -> float | None:
    from musicindex.audio.descriptors.loudness import gated_loudness

    z = [measure_loudness(p, rate, playback_channels=playback_channels).block_energies for p in pieces]
    return gated_loudness(np.concatenate(z).astype(np.float64))[0]


def loudness_extent(folder: Path, n: int, out: dict) -> None:
    """Which extent and rate of audio a loudness stage needs: against ours on the full track at the file's rate
    (equal to pyloudnorm within 0.006 LU on these files, section 4)."""
    import soundfile as sf
    import soxr

    from musicindex.audio.decode import read_window

    files = _devset_files(folder, n)
    err = defaultdict(list)
    for path, _ in files:
        x, rate = sf.read(path, dtype="float32", always_2d=True)
        x = x[:, :5]
        ref = measure_loudness(x, rate).integrated
        if ref is None:
            continue
        two = 2 if x.shape[1] >= 2 else None
        y, _ = read_window(path)
        err["the pass's window (30 s), mono 22.05 kHz"].append(
            measure_loudness(y, SR, playback_channels=two).integrated - ref
        )
        err["10 x 3 s spread over the track, file's rate and channels"].append(
            _pieces_loudness(_spread(x, rate), rate) - ref
        )
        x22 = soxr.resample(x, rate, SR, quality="HQ")
        err["10 x 3 s spread, 22.05 kHz, all channels"].append(_pieces_loudness(_spread(x22, SR), SR) - ref)
        mono = x22.mean(axis=1)
        err["10 x 3 s spread, mono 22.05 kHz"].append(_pieces_loudness(_spread(mono, SR), SR, two) - ref)
        err["full track, 22.05 kHz, all channels"].append(measure_loudness(x22, SR).integrated - ref)
    rows = []
    for name, v in err.items():
        a = np.abs(np.asarray(v, dtype=float))
        rows.append([name, a.size, float(np.mean(v)), float(a.mean()), float(np.percentile(a, 95)), float(a.max())])
    table(f"integrated loudness by extent and rate vs the full track at the file's rate ({len(files)} dev-set files)",
          ["audio measured", "n", "mean error (LU)", "mean |error|", "p95 |error|", "max |error|"], rows)  # fmt: skip
    out["loudness_extent"] = rows


def _without_blocks(t):
    from dataclasses import replace

    return replace(t, block_energies=np.zeros(0, np.float32))


def cost(folder: Path, n: int, out: dict) -> None:
    from threadpoolctl import threadpool_limits

    from musicindex.audio.analysis import analyse, warm_up
    from musicindex.audio.decode import read_window
    from musicindex.audio.features import compute_spectra, features_from_spectra

    files = _devset_files(folder, n)
    if not files:
        return
    warm_up()
    y0, _ = read_window(files[0][0])  # compile (or load from numba's cache) the descriptors' kernels: not timed
    sp0 = compute_spectra(y0)
    estimate_key(I.chroma(sp0, I.tuning(sp0)))
    estimate_tempo(I.onset_envelope(sp0))
    measure_loudness(y0, SR, playback_channels=2)
    t = defaultdict(float)
    clock = time.process_time
    with threadpool_limits(1):
        for path, _ in files:
            y, _info = read_window(path)
            t0 = clock()
            analyse(y)
            t1 = clock()
            sp = compute_spectra(y)
            feats = features_from_spectra(sp)
            oenv = I.onset_envelope(sp)  # computed by the pass already: not counted
            tun = I.tuning(sp)  # idem
            t2 = clock()
            tempo = estimate_tempo(oenv)
            t3 = clock()
            chroma = I.chroma(sp, tun)
            key = estimate_key(chroma)
            t4 = clock()
            measure_loudness(y, SR, playback_channels=2)
            t5 = clock()
            mood_scores(feats, None, tempo=tempo, key=key)
            t6 = clock()
            t["pass (analyse: 43 features + spectrogram)"] += t1 - t0
            t["tempo (estimate_tempo)"] += t3 - t2
            t["key (peak_chroma + estimate_key)"] += t4 - t3
            t["loudness (window, measure_loudness)"] += t5 - t4
            t["mood (mood_scores)"] += t6 - t5
    total = sum(v for k, v in t.items() if not k.startswith("pass"))
    rows = [[k, 1000 * v / len(files)] for k, v in t.items()] + [["descriptors together", 1000 * total / len(files)]]
    table(f"cost: CPU ms per track, one thread ({len(files)} dev-set windows)", ["step", "ms"], rows)
    out["cost_ms"] = rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--annotated", type=Path, default=ANNOTATED)
    ap.add_argument("--devset", type=Path, default=DEVSET)
    ap.add_argument("--loudness-n", type=int, default=60)
    ap.add_argument("--cost-n", type=int, default=40)
    ap.add_argument("--skip", default="", help="comma-separated sections to skip")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    out: dict = {}
    if "synth" not in skip:
        synthesized(out)
    if "annotated" not in skip:
        annotated(args.annotated, out)
    if "hard" not in skip:
        hard(out)
    if "loudness" not in skip:
        loudness(args.devset, args.loudness_n, out)
    if "extent" not in skip:
        loudness_extent(args.devset, args.loudness_n, out)
    if "cost" not in skip:
        cost(args.devset, args.cost_n, out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
