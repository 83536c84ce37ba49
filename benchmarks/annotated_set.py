#!/usr/bin/env python
"""Build the annotated tempo/key set for ``benchmarks/descriptors.py`` from Debian packages (apt-get only).

    python benchmarks/annotated_set.py [--out DIR] [--cache DIR] [--soundfonts SF2 ...]

Two kinds of annotated audio, labelled as such in ``annotations.csv`` (column ``kind``):

* ``real``: **real recordings** with a hand-made tempo map. Frets on Fire song packs
  (``fretsonfire-songs-muldjord``, ``fretsonfire-songs-sectoid``, GPL/CC) ship each song as multitrack Ogg
  stems (``song.ogg`` backing, ``guitar.ogg``, sometimes ``rhythm.ogg``) with a note chart ``notes.mid`` whose
  tempo map was written to line up with the recording (the game scores a player against it). The stems are
  summed into one track; the tempo label is the chart's tempo over the analysis window (30-60 s, or the central
  30 s), time-weighted median; ``song.ini``'s ``delay`` (ms) shifts the chart against the audio.
* ``rendered``: **synthesized timbres of real music**: the OpenTTD OpenMSX set (``openttd-openmsx``, GPL-2,
  31 MIDI compositions by several composers, in many styles) rendered with FluidSynth through one or more General
  MIDI soundfonts from Debian (default ``fluid-soundfont-gm`` and ``timgm6mb-soundfont``: two instrument sets).
  Tempo from the MIDI tempo map (same window rule; 120 BPM when the file has none, as the MIDI standard says),
  key from the MIDI key-signature event (its major/minor flag), only when the file has exactly one key in the
  window (a key signature written by the composer, not estimated).

Needs ``apt-get`` / ``dpkg-deb`` with Debian's ``main`` archive, plus ``fluidsynth`` and the soundfonts
(``apt-get install fluidsynth fluid-soundfont-gm timgm6mb-soundfont``) for the rendered part; Python: soundfile,
numpy, soxr (the project's venv). Nothing is committed but this script: the output goes to
``~/.cache/musicindex-annotated`` (``set/audio/...``, ``set/annotations.csv``, ``set/licences/``).

Annotation caveats, stated in the benchmark output too: a chart's tempo is the quarter-note tempo its author
chose (a song felt in half time is annotated at the double); a MIDI key signature gives the key the composer
wrote down (a piece may modulate after the window, or sit on a mode the signature cannot express).
"""

from __future__ import annotations

import argparse
import configparser
import csv
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

CACHE = Path("~/.cache/musicindex-annotated").expanduser()
DEVSET_DEBS = Path("~/.cache/musicindex-devset/debs").expanduser()  # reused when the dev set was built here
WINDOW = (30.0, 30.0)  # offset, duration: the analysis window (musicindex.audio.window's defaults)
FOF_PACKAGES = ("fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid")
MIDI_PACKAGE = "openttd-openmsx"
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


# ------------------------------------------------------------------------------------------- MIDI meta events
@dataclass
class MidiMeta:
    ticks_per_beat: int
    tempos: list[tuple[int, float]]  # (tick, BPM)
    keys: list[tuple[int, str]]  # (tick, "G major")


def _varlen(data: bytes, i: int) -> tuple[int, int]:
    v = 0
    while True:
        b = data[i]
        i += 1
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            return v, i


def read_midi_meta(path: Path) -> MidiMeta:
    """Tempo and key-signature meta events of a standard MIDI file (every track, absolute ticks)."""
    data = path.read_bytes()
    if data[:4] != b"MThd":
        raise ValueError(f"{path}: not a standard MIDI file")
    hlen = struct.unpack(">I", data[4:8])[0]
    _fmt, ntrk, division = struct.unpack(">HHH", data[8:14])
    if division & 0x8000:
        raise ValueError(f"{path}: SMPTE time division not supported")
    pos = 8 + hlen
    tempos: list[tuple[int, float]] = []
    keys: list[tuple[int, str]] = []
    for _ in range(ntrk):
        if data[pos : pos + 4] != b"MTrk":
            break
        tlen = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        i, end, tick, status = pos + 8, pos + 8 + tlen, 0, 0
        while i < end:
            delta, i = _varlen(data, i)
            tick += delta
            b = data[i]
            if b == 0xFF:
                kind, n_len = data[i + 1], 0
                n_len, j = _varlen(data, i + 2)
                body = data[j : j + n_len]
                if kind == 0x51 and n_len == 3:
                    tempos.append((tick, 60e6 / int.from_bytes(body, "big")))
                elif kind == 0x59 and n_len == 2:
                    sf_, mi = struct.unpack(">bB", body)
                    tonic = (7 * sf_) % 12 if mi == 0 else (7 * sf_ + 9) % 12
                    keys.append((tick, f"{KEY_NAMES[tonic]} {'minor' if mi else 'major'}"))
                i = j + n_len
            elif b in (0xF0, 0xF7):
                n_len, j = _varlen(data, i + 1)
                i = j + n_len
            else:
                if b & 0x80:
                    status, i = b, i + 1
                i += 1 if (status & 0xF0) in (0xC0, 0xD0) else 2
        pos = end
    return MidiMeta(division, sorted(tempos), sorted(set(keys)))


def tempo_segments(meta: MidiMeta) -> list[tuple[float, float]]:
    """(start second, BPM) of each tempo segment (120 BPM until the first tempo event, as the standard says)."""
    segs, t_sec, last_tick, bpm = [], 0.0, 0, 120.0
    for tick, new in meta.tempos:
        t_sec += (tick - last_tick) / meta.ticks_per_beat * 60.0 / bpm
        last_tick, bpm = tick, new
        if segs and abs(segs[-1][0] - t_sec) < 1e-9:
            segs[-1] = (t_sec, new)
        else:
            segs.append((t_sec, new))
    return segs or [(0.0, 120.0)]


def tick_to_sec(meta: MidiMeta, tick: int) -> float:
    t_sec, last_tick, bpm = 0.0, 0, 120.0
    for tt, new in meta.tempos:
        if tt >= tick:
            break
        t_sec += (tt - last_tick) / meta.ticks_per_beat * 60.0 / bpm
        last_tick, bpm = tt, new
    return t_sec + (tick - last_tick) / meta.ticks_per_beat * 60.0 / bpm


def window_bounds(total: float) -> tuple[float, float]:
    off, dur = WINDOW
    if total >= off + dur:
        return off, off + dur
    if total >= dur:
        return (total - dur) / 2, (total + dur) / 2
    return 0.0, total


def window_tempo(segs: list[tuple[float, float]], a: float, b: float) -> tuple[float, float, float]:
    """(time-weighted median, min, max) BPM of the tempo map over [a, b) seconds."""
    pieces = []
    for k, (start, bpm) in enumerate(segs):
        end = segs[k + 1][0] if k + 1 < len(segs) else float("inf")
        lo, hi = max(a, start), min(b, end)
        if hi > lo:
            pieces.append((bpm, hi - lo))
    pieces.sort()
    total = sum(w for _, w in pieces)
    acc = 0.0
    for bpm, w in pieces:
        acc += w
        if acc >= total / 2:
            return bpm, pieces[0][0], pieces[-1][0]
    return pieces[-1][0], pieces[0][0], pieces[-1][0]


# ------------------------------------------------------------------------------------------- packages
def fetch(package: str, cache: Path) -> Path:
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for d in (debs, DEVSET_DEBS):
        hits = sorted(d.glob(f"{package}_*.deb")) if d.is_dir() else []
        if hits:
            return hits[-1]
    subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
    return sorted(debs.glob(f"{package}_*.deb"))[-1]


def extract(deb: Path, cache: Path, package: str) -> Path:
    root = cache / "extract" / package
    stamp = root / ".stamp"
    if stamp.exists() and stamp.read_text() == deb.name:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    stamp.write_text(deb.name)
    return root


def _licence(root: Path, package: str, out: Path) -> None:
    src = root / "usr/share/doc" / package / "copyright"
    if src.exists():
        (out / "licences").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / "licences" / f"{package}.copyright")


# ------------------------------------------------------------------------------------------- the two parts
def build_fof(cache: Path, out: Path) -> list[dict]:
    rows = []
    for package in FOF_PACKAGES:
        root = extract(fetch(package, cache), cache, package)
        _licence(root, package, out)
        for notes in sorted(root.rglob("notes.mid")):
            song = notes.parent
            stems = [p for p in (song / "song.ogg", song / "guitar.ogg", song / "rhythm.ogg") if p.exists()]
            if not stems:
                continue
            sigs = [sf.read(p, dtype="float32", always_2d=True) for p in stems]
            sr = sigs[0][1]
            if any(s[1] != sr for s in sigs):
                print(f"skip {song.name}: stems at different rates", file=sys.stderr)
                continue
            n = max(s[0].shape[0] for s in sigs)
            ch = max(s[0].shape[1] for s in sigs)
            mix = np.zeros((n, ch), dtype=np.float32)
            for s, _ in sigs:
                mix[: s.shape[0]] += s if s.shape[1] == ch else np.repeat(s, ch, axis=1)
            peak = float(np.abs(mix).max())
            if peak > 0.99:
                mix *= 0.99 / peak
            dest = out / "audio" / "fof" / f"{package.rsplit('-', 1)[-1]}-{song.name.replace(' ', '_')}.flac"
            dest.parent.mkdir(parents=True, exist_ok=True)
            sf.write(dest, mix, sr)
            ini = configparser.ConfigParser(strict=False, interpolation=None)
            ini.read(song / "song.ini", encoding="latin-1")
            delay = float(ini.get("song", "delay", fallback="0") or 0) / 1000.0
            meta = read_midi_meta(notes)
            segs = [(t + delay, b) for t, b in tempo_segments(meta)]
            a, b = window_bounds(n / sr)
            bpm, lo, hi = window_tempo(segs, a, b)
            rows.append(
                {"path": str(dest), "source": package, "kind": "real", "bpm": round(bpm, 3), "bpm_min": round(lo, 3),
                     "bpm_max": round(hi, 3), "key": "", "duration_s": round(n / sr, 2), "timbre": "recording"}
            )  # fmt: skip
    return rows


def build_midi(cache: Path, out: Path, soundfonts: tuple[str, ...]) -> list[dict]:
    fluidsynth = shutil.which("fluidsynth")
    fonts = [f for f in soundfonts if Path(f).exists()]
    if not fluidsynth or not fonts:
        print(
            "fluidsynth or the soundfonts are missing: apt-get install fluidsynth fluid-soundfont-gm "
            "timgm6mb-soundfont  (the rendered part is skipped)",
            file=sys.stderr,
        )
        return []
    root = extract(fetch(MIDI_PACKAGE, cache), cache, MIDI_PACKAGE)
    _licence(root, MIDI_PACKAGE, out)
    rows = []
    for mid in sorted(root.rglob("*.mid")):
        meta = read_midi_meta(mid)
        for font in fonts:
            tag = Path(font).stem
            dest = out / "audio" / "openmsx" / tag / f"{mid.stem}.flac"
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                wav = dest.with_suffix(".wav")
                subprocess.run(
                    [fluidsynth, "-ni", "-q", "-g", "0.6", "-r", "44100", "-F", str(wav), font, str(mid)],
                    check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                y, sr = sf.read(wav, dtype="float32")
                wav.unlink()
                nz = np.flatnonzero(np.abs(y).max(axis=1) > 1e-4) if y.ndim == 2 else np.flatnonzero(np.abs(y) > 1e-4)
                y = y[: int(nz[-1]) + 1] if nz.size else y  # drop the render's trailing silence
                sf.write(dest, y, sr)
            info = sf.info(dest)
            a, b = window_bounds(info.duration)
            bpm, lo, hi = window_tempo(tempo_segments(meta), a, b)
            keys = {k for t, k in meta.keys if tick_to_sec(meta, t) < b}
            in_window = [k for t, k in meta.keys if a <= tick_to_sec(meta, t) < b]
            before = [k for t, k in meta.keys if tick_to_sec(meta, t) < a]
            key_set = set(in_window) | ({before[-1]} if before else set())
            key = next(iter(key_set)) if len(key_set) == 1 and keys else ""
            rows.append(
                {"path": str(dest), "source": MIDI_PACKAGE, "kind": "rendered", "bpm": round(bpm, 3),
                 "bpm_min": round(lo, 3), "bpm_max": round(hi, 3), "key": key,
                 "duration_s": round(info.duration, 2), "timbre": tag}
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--out", type=Path, default=None, help="default: CACHE/set")
    ap.add_argument("--soundfonts", nargs="*", default=list(SOUNDFONTS))
    args = ap.parse_args(argv)
    out = args.out or args.cache / "set"
    out.mkdir(parents=True, exist_ok=True)
    rows = build_fof(args.cache, out) + build_midi(args.cache, out, tuple(args.soundfonts))
    with (out / "annotations.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    n_key = sum(1 for r in rows if r["key"])
    print(f"{len(rows)} annotated tracks ({sum(r['kind'] == 'real' for r in rows)} real recordings), "
          f"{n_key} with a key -> {out / 'annotations.csv'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
