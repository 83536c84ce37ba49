"""What the shared decode of the ingest pass costs for each span and rate a stage can ask for.

    python benchmarks/decode_spans.py [--files DIR] [--n 12]

One process, one thread, real full-length tracks of the development set (benchmarks/devset.py; OGG as shipped and
their MP3 transcodes cached by benchmarks/ingest.py): CPU ms per track of ``audio.read_audio`` (ONE decode, each
rate resampled once) for the needs of the pass today (the 30 s window at 22 050 and 16 000 Hz) and with a stage
added that reads more (an audio fingerprint: the whole track at 11 025 Hz, or its first 120 s; loudness: the whole
track at the file's rate or at 48 kHz). A narrower figure than the user's path (``benchmarks/ingest.py``): the
decode alone, the clock stopped when the signals are in hand.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from benchmarks.ingest import DEVSET_AUDIO, MP3_CACHE, pick_tracks
from musicindex.audio.decode import read_audio
from musicindex.audio.window import AnalysisWindow
from musicindex.vocab import SPAN_TRACK, SPAN_WINDOW

TODAY = [(SPAN_WINDOW, 22050), (SPAN_WINDOW, 16000)]
CASES: dict[str, tuple[list[tuple[str, int]], float | None]] = {
    "window 22.05 + 16 kHz (the pass today)": (TODAY, None),
    "+ whole track at 11.025 kHz (fingerprint)": ([*TODAY, (SPAN_TRACK, 11025)], None),
    "+ first 120 s at 11.025 kHz": ([*TODAY, (SPAN_TRACK, 11025)], 120.0),
    "+ whole track at the file's rate (loudness)": ([*TODAY, (SPAN_TRACK, 44100)], None),
    "+ whole track at 48 kHz (loudness, resampled)": ([*TODAY, (SPAN_TRACK, 48000)], None),
    "+ whole track at 11.025 and 44.1 kHz": ([*TODAY, (SPAN_TRACK, 11025), (SPAN_TRACK, 44100)], None),
}


def measure(paths: list[Path], needs: list[tuple[str, int]], seconds: float | None) -> tuple[float, float]:
    """(median CPU ms per track, CPU ms per minute of audio) over ``paths``."""
    window = AnalysisWindow()
    per_track, per_minute = [], []
    for p in paths:
        t0 = time.process_time()
        _, info = read_audio(p, window, needs, track_seconds=seconds)
        ms = 1000 * (time.process_time() - t0)
        per_track.append(ms)
        per_minute.append(ms / (info.duration / 60))
    return statistics.median(per_track), statistics.median(per_minute)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=Path, default=DEVSET_AUDIO)
    ap.add_argument("--n", type=int, default=12, help="tracks per format")
    args = ap.parse_args()
    picked = pick_tracks(args.files, 2 * args.n)
    ogg = [p for p in picked if p.suffix.lower() in (".ogg", ".oga")][: args.n]
    mp3 = sorted(MP3_CACHE.glob("*.mp3"))[: args.n]
    if not ogg:
        raise SystemExit(f"no full-length track in {args.files}: build the dev set first (benchmarks/devset.py)")
    read_audio(ogg[0], AnalysisWindow(), TODAY)  # imports, soxr
    print(f"{len(ogg)} OGG and {len(mp3)} MP3 full-length tracks (44.1 kHz stereo); CPU ms, one thread, median")
    print("| needs | OGG ms/track | OGG ms/min | MP3 ms/track | MP3 ms/min |\n| --- | ---: | ---: | ---: | ---: |")
    for label, (needs, seconds) in CASES.items():
        o = measure(ogg, needs, seconds)
        m = measure(mp3, needs, seconds) if mp3 else (float("nan"), float("nan"))
        print(f"| {label} | {o[0]:.0f} | {o[1]:.1f} | {m[0]:.0f} | {m[1]:.1f} |")


if __name__ == "__main__":
    main()
