"""Synthesized music library: deterministic, genre-shaped audio for the demo and the tests.

The study musicindex grows out of used GTZAN (30 s clips in ``<genre>/<genre>.000NN.wav``).
GTZAN cannot be shipped, so this module *writes* a GTZAN-like library instead: each
genre is a small style spec (:class:`GenreStyle`) -- tempo range, swing, drum patterns,
bass line style, chord/lead timbres, harmony, distortion and background noise -- and
:func:`synthesize` renders a clip from a spec with per-clip random variation (key,
tempo jitter, pattern choice, instrument mix and timbre, noise level, humanized timing),
so that genres are clearly separable by tempo, spectral centroid, percussiveness and
harmony, but not trivially so. Everything is deterministic for a seed.

Rendering is numpy-vectorized: tonal notes are wavetable look-ups (band-limited additive
tables chosen per note so nothing aliases; chords use one just-intonation table per chord
quality, so a whole chord costs one look-up), FM for bells/e-pianos/basses, and drums are
per-clip one-shots (sine sweeps, filtered noise, inharmonic partials) added at their
onsets. A 30 s clip at 22 050 Hz takes a few tens of milliseconds.

Public API::

    GENRES                     # dict name -> GenreStyle (8 styles)
    synthesize(genre, duration=30.0, sr=22050, seed=0, channels=1) -> float32 (frames, channels)
    generate_library(root, per_genre=10, ...) -> list[SampleTrack]
    FORMATS                    # extension -> (soundfile format, subtype)
    write_audio(path, audio, sr, fmt=None)
    write_tags(path, fmt, title=..., artist=..., ...)

Nothing here touches a database or Celery; it is a plain library.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMATS",
    "GENRES",
    "TAGGABLE_FORMATS",
    "BassSpec",
    "ChordSpec",
    "GenreStyle",
    "LeadSpec",
    "SampleTrack",
    "generate_library",
    "synthesize",
    "track_seed",
    "write_audio",
    "write_tags",
]

# ---------------------------------------------------------------------------------
# Style specs
# ---------------------------------------------------------------------------------

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}

#: Timbres. ``("table", harmonic amplitudes)`` is additive (band-limited per note);
#: ``("fm", ratio, index, index_decay_s)`` is two-operator FM with a decaying index.
TIMBRES: dict[str, tuple] = {
    "sine": ("table", (1.0,)),
    "sub": ("table", (1.0, 0.12, 0.04)),
    "soft": ("table", (1.0, 0.35, 0.12, 0.05, 0.02)),
    "organ": ("table", (1.0, 0.7, 0.45, 0.0, 0.3, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.12)),
    "reed": ("table", (1.0, 0.25, 0.6, 0.12, 0.4, 0.08, 0.22, 0.05, 0.12, 0.03, 0.06)),
    "square": ("table", tuple((1.0 / k if k % 2 else 0.0) for k in range(1, 40))),
    "saw": ("table", tuple(1.0 / k for k in range(1, 64))),
    "string": ("table", tuple(1.0 / k**1.25 for k in range(1, 40))),
    "dull_saw": ("table", tuple(1.0 / k**1.8 for k in range(1, 24))),
    "epiano": ("fm", 1.0, 1.8, 0.35),
    "bell": ("fm", 3.5, 2.5, 0.8),
    "fmbass": ("fm", 1.0, 2.5, 0.12),
    "acid": ("fm", 0.5, 4.0, 0.09),
    "brass": ("fm", 1.0, 1.2, 2.0),
}


@dataclass(frozen=True)
class BassSpec:
    """Bass line. ``style``: root8 | pattern | walking | sub808 | acid | drone | none."""

    style: str
    timbres: tuple[str, ...] = ("sub",)
    octave: int = 2
    gain: float = 0.5
    patterns: tuple[str, ...] = ()
    decay: float = 0.4
    gate: float = 0.9


@dataclass(frozen=True)
class ChordSpec:
    """Harmony part. ``style``: pad | power | stab | skank | comp | arp | block | none."""

    style: str
    timbres: tuple[str, ...] = ("soft",)
    octave: int = 4
    gain: float = 0.3
    patterns: tuple[str, ...] = ()
    attack: float = 0.01
    decay: float = 1.0
    sevenths: bool = False
    prob: float = 1.0


@dataclass(frozen=True)
class LeadSpec:
    """Melody. ``grid`` is 8 (eighths) or 16 (sixteenths); ``density`` = note-on probability."""

    timbres: tuple[str, ...] = ("soft",)
    octave: int = 5
    density: float = 0.4
    grid: int = 8
    gain: float = 0.25
    prob: float = 0.8
    attack: float = 0.01
    decay: float = 0.6
    vibrato: float = 0.0


@dataclass(frozen=True)
class GenreStyle:
    """A small style spec from which :func:`synthesize` renders clips.

    Drum patterns are 16-step strings (one 4/4 bar of sixteenths): ``x`` hit, ``X``
    accent, ``o`` ghost (soft), ``?`` hit with probability 0.35, ``.`` rest. Each
    instrument lists alternatives; one is chosen per clip.
    """

    name: str
    tempo: tuple[float, float]
    swing: tuple[float, float] = (0.5, 0.5)
    swing_unit: int = 8
    scales: tuple[str, ...] = ("major",)
    progressions: tuple[tuple[int, ...], ...] = ((0, 4, 5, 3),)
    bars_per_chord: int = 1
    drums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    drum_gain: float = 0.8
    drum_prob: float = 1.0
    fill_prob: float = 0.3
    crash_every: int = 0
    humanize: float = 0.004
    bass: BassSpec = BassSpec("none")
    chords: ChordSpec = ChordSpec("none")
    lead: LeadSpec | None = None
    distortion: float = 0.0
    noise: str = "hiss"
    noise_level: tuple[float, float] = (0.002, 0.01)
    reverb: float = 0.0
    swell: float = 0.0
    description: str = ""


GENRES: dict[str, GenreStyle] = {
    "ambient": GenreStyle(
        name="ambient",
        tempo=(60, 80),
        scales=("lydian", "major", "dorian"),
        progressions=((0, 3), (0, 5, 3, 4), (0, 4), (5, 3, 0, 4)),
        bars_per_chord=2,
        drums={"shaker": ("..o...o...o...o.", "o.......o.......", "................")},
        drum_gain=0.25,
        drum_prob=0.4,
        fill_prob=0.0,
        humanize=0.01,
        bass=BassSpec("drone", ("sine", "sub"), octave=2, gain=0.35),
        chords=ChordSpec("pad", ("soft", "string", "organ"), octave=4, gain=0.4, attack=1.5, decay=20.0, sevenths=True),
        lead=LeadSpec(("bell", "soft"), octave=5, density=0.12, grid=8, gain=0.2, prob=0.8, attack=0.05, decay=2.5),
        noise="wash",
        noise_level=(0.01, 0.04),
        reverb=0.5,
        swell=0.5,
        description="slow, beatless pads and drones, soft bells, noise wash",
    ),
    "techno": GenreStyle(
        name="techno",
        tempo=(122, 134),
        scales=("minor", "phrygian", "dorian"),
        progressions=((0, 0, 0, 0), (0, 0, 5, 5), (0, 6, 0, 5)),
        drums={
            "kick": ("x...x...x...x...",),
            "chat": ("xxxxxxxxxxxxxxxx", "x.x.x.x.x.x.x.x.", ".xxx.xxx.xxx.xxx"),
            "ohat": ("..x...x...x...x.",),
            "clap": ("....x.......x...", "................"),
        },
        drum_gain=0.9,
        fill_prob=0.1,
        humanize=0.0,
        bass=BassSpec(
            "pattern",
            ("fmbass", "acid", "saw"),
            octave=2,
            gain=0.4,
            patterns=("..x...x...x...x.", "..xx..xx..xx..xx", "x.x.x.x.x.x.x.x."),
            decay=0.15,
            gate=0.6,
        ),
        chords=ChordSpec(
            "stab",
            ("saw", "organ", "square"),
            octave=4,
            gain=0.18,
            patterns=("...x.....x......", "......x.......x.", "x..x..x...x..x.."),
            attack=0.002,
            decay=0.12,
            prob=0.7,
        ),
        lead=LeadSpec(("acid", "bell"), octave=4, density=0.5, grid=16, gain=0.15, prob=0.4, attack=0.002, decay=0.12),
        noise="hiss",
        noise_level=(0.002, 0.01),
        description="four-on-the-floor kick, 16th hats, offbeat bass, stabs",
    ),
    "rock": GenreStyle(
        name="rock",
        tempo=(100, 140),
        scales=("major", "mixolydian", "minor"),
        progressions=((0, 4, 5, 3), (0, 3, 4, 4), (0, 6, 3, 0), (5, 3, 0, 4)),
        drums={
            "kick": ("x.....x.x.......", "x.......x.x.....", "x..x....x.......", "x.......x..x...."),
            "snare": ("....x.......x...", "....x.......x..o"),
            "chat": ("x.x.x.x.x.x.x.x.", "X.x.X.x.X.x.X.x."),
            "crash": ("x...............",),
        },
        drum_gain=0.85,
        fill_prob=0.5,
        crash_every=4,
        humanize=0.006,
        bass=BassSpec("root8", ("dull_saw", "sub"), octave=2, gain=0.45, decay=0.3, gate=0.85),
        chords=ChordSpec(
            "power",
            ("saw", "dull_saw"),
            octave=3,
            gain=0.35,
            patterns=("x.x.x.x.x.x.x.x.", "x..x..x.x..x..x.", "x.......x......."),
            attack=0.003,
            decay=0.8,
        ),
        lead=LeadSpec(
            ("square", "reed", "saw"),
            octave=4,
            density=0.35,
            grid=8,
            gain=0.2,
            prob=0.6,
            attack=0.01,
            decay=0.5,
            vibrato=0.004,
        ),
        distortion=4.0,
        noise="hiss",
        noise_level=(0.003, 0.012),
        description="kick/snare backbeat, 8th hats, distorted power chords, root-note bass",
    ),
    "jazz": GenreStyle(
        name="jazz",
        tempo=(110, 190),
        swing=(0.6, 0.68),
        swing_unit=8,
        scales=("major", "dorian"),
        progressions=((1, 4, 0, 0), (0, 5, 1, 4), (1, 4, 0, 5), (2, 5, 1, 4)),
        drums={
            "ride": ("x...x.xx....x.xx", "x...x.x.x...x.x."),
            "hpedal": ("....x.......x...",),
            "brush": ("o.o.o.o.o.o.o.o.", "..o...o...o...o."),
            "kick": ("o...............", "................"),
        },
        drum_gain=0.55,
        fill_prob=0.15,
        humanize=0.012,
        bass=BassSpec("walking", ("sine", "sub", "dull_saw"), octave=2, gain=0.55, decay=0.5, gate=0.9),
        chords=ChordSpec(
            "comp", ("epiano_t", "soft", "organ"), octave=4, gain=0.3, attack=0.005, decay=0.7, sevenths=True
        ),
        lead=LeadSpec(
            ("reed", "brass", "epiano"),
            octave=4,
            density=0.55,
            grid=8,
            gain=0.25,
            prob=0.7,
            attack=0.02,
            decay=0.7,
            vibrato=0.006,
        ),
        noise="hiss",
        noise_level=(0.002, 0.008),
        reverb=0.2,
        description="swung ride cymbal, walking bass, 7th-chord comping, sax-like lead",
    ),
    "classical": GenreStyle(
        name="classical",
        tempo=(60, 104),
        scales=("major", "harmonic_minor", "minor"),
        progressions=((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 2, 3, 0, 3, 4), (0, 1, 4, 0)),
        drums={},
        drum_prob=0.0,
        humanize=0.015,
        bass=BassSpec("root8", ("dull_saw", "string"), octave=2, gain=0.3, decay=1.2, gate=1.0),
        chords=ChordSpec("arp", ("string", "soft", "dull_saw"), octave=4, gain=0.3, attack=0.03, decay=1.0),
        lead=LeadSpec(
            ("string", "soft", "reed"),
            octave=5,
            density=0.45,
            grid=8,
            gain=0.28,
            prob=0.95,
            attack=0.08,
            decay=3.0,
            vibrato=0.008,
        ),
        noise="hiss",
        noise_level=(0.001, 0.005),
        reverb=0.45,
        swell=0.6,
        description="no drums, string-like arpeggios and melody, cadential harmony, dynamics",
    ),
    "hiphop": GenreStyle(
        name="hiphop",
        tempo=(80, 98),
        swing=(0.55, 0.62),
        swing_unit=16,
        scales=("minor", "dorian"),
        progressions=((0, 5), (0, 3, 5, 4), (0, 0, 3, 3), (0, 6, 5, 4)),
        drums={
            "kick": ("x......x..x.....", "x.........x..x..", "x..x......x....."),
            "snare": ("....x.......x...",),
            "chat": ("x.x.x.x.x.x.x.x.", "x.xxx.x.x.xxx.x.", "x.x.x.x?x.x.x.xx"),
        },
        drum_gain=1.0,
        fill_prob=0.05,
        humanize=0.008,
        bass=BassSpec("sub808", ("sine", "sub"), octave=1, gain=0.7, decay=0.7, gate=1.0),
        chords=ChordSpec(
            "pad", ("epiano_t", "soft", "organ"), octave=4, gain=0.18, attack=0.02, decay=2.0, sevenths=True, prob=0.8
        ),
        lead=LeadSpec(
            ("epiano", "bell", "soft"), octave=5, density=0.2, grid=8, gain=0.18, prob=0.6, attack=0.005, decay=0.5
        ),
        noise="vinyl",
        noise_level=(0.004, 0.015),
        description="boom-bap kick/snare, swung hats, long 808 sub bass, vinyl crackle",
    ),
    "metal": GenreStyle(
        name="metal",
        tempo=(150, 200),
        scales=("phrygian", "minor", "harmonic_minor"),
        progressions=((0, 1, 0, 6), (0, 0, 5, 6), (0, 6, 5, 1)),
        drums={
            "kick": ("xxxxxxxxxxxxxxxx", "x.x.x.x.x.x.x.x.", "xx.xxx.xxx.xxx.x"),
            "snare": ("....x.......x...", "x...x...x...x..."),
            "chat": ("x.x.x.x.x.x.x.x.", "xxxxxxxxxxxxxxxx"),
            "crash": ("x.......x.......", "x..............."),
        },
        drum_gain=0.9,
        fill_prob=0.4,
        crash_every=2,
        humanize=0.003,
        bass=BassSpec(
            "pattern",
            ("saw", "dull_saw"),
            octave=1,
            gain=0.35,
            patterns=("xxxxxxxxxxxxxxxx", "x.x.x.x.x.x.x.x."),
            decay=0.12,
            gate=0.8,
        ),
        chords=ChordSpec(
            "power",
            ("saw",),
            octave=3,
            gain=0.4,
            patterns=("xxxxxxxxxxxxxxxx", "xxx.xxx.xxx.xx.x", "x.xxx.xxx.xxx.xx"),
            attack=0.001,
            decay=0.15,
        ),
        lead=LeadSpec(
            ("saw", "square"),
            octave=5,
            density=0.6,
            grid=16,
            gain=0.16,
            prob=0.5,
            attack=0.003,
            decay=0.3,
            vibrato=0.01,
        ),
        distortion=12.0,
        noise="hiss",
        noise_level=(0.005, 0.02),
        description="fast double-kick, heavily distorted palm-muted power chords, phrygian riffs",
    ),
    "reggae": GenreStyle(
        name="reggae",
        tempo=(68, 90),
        swing=(0.5, 0.58),
        swing_unit=16,
        scales=("major", "mixolydian", "minor"),
        progressions=((0, 3), (0, 3, 4, 3), (0, 4), (0, 5, 3, 4)),
        drums={
            "kick": ("........x.......",),
            "rim": ("........x.......", "....x.......x..."),
            "chat": ("x.x.x.x.x.x.x.x.", "x.xxx.xxx.xxx.xx"),
        },
        drum_gain=0.75,
        fill_prob=0.2,
        humanize=0.01,
        bass=BassSpec(
            "pattern",
            ("sub", "sine", "dull_saw"),
            octave=2,
            gain=0.65,
            patterns=("x..x..x.....x...", "x.....x.x...x...", "x..x....x..x.x.."),
            decay=0.35,
            gate=0.8,
        ),
        chords=ChordSpec(
            "skank",
            ("organ", "dull_saw", "square"),
            octave=4,
            gain=0.28,
            patterns=("....x.......x...", "..x...x...x...x."),
            attack=0.002,
            decay=0.09,
        ),
        lead=LeadSpec(
            ("reed", "organ", "soft"), octave=5, density=0.25, grid=8, gain=0.18, prob=0.5, attack=0.02, decay=0.6
        ),
        noise="hiss",
        noise_level=(0.002, 0.01),
        reverb=0.25,
        description="one-drop kick/rim on beat 3, offbeat skank chords, deep syncopated bass",
    ),
}

# e-piano-like additive table usable for chords (FM timbres are per-note only)
TIMBRES["epiano_t"] = ("table", (1.0, 0.45, 0.1, 0.12, 0.03, 0.02))


# ---------------------------------------------------------------------------------
# Low-level rendering helpers
# ---------------------------------------------------------------------------------

_TABLE_SIZE = 4096
_MASK = _TABLE_SIZE - 1
_HARMONIC_LIMITS = (1, 2, 4, 8, 16, 32, 64, 128)

# just-intonation integer ratios for chord qualities (one periodic table per chord)
_JI_CHORDS: dict[tuple[int, ...], tuple[int, ...]] = {
    (4, 7): (4, 5, 6),
    (3, 7): (10, 12, 15),
    (3, 6): (5, 6, 7),
    (4, 8): (16, 20, 25),
    (4, 7, 11): (8, 10, 12, 15),
    (4, 7, 10): (4, 5, 6, 7),
    (3, 7, 10): (10, 12, 15, 18),
    (3, 7, 11): (10, 12, 15),  # min-maj7: keep the triad
    (3, 6, 10): (5, 6, 7, 9),
    (3, 6, 9): (10, 12, 14, 17),
    (4, 8, 11): (16, 20, 25),
    (0, 7): (2, 3, 4),  # power chord: root, fifth, octave
}

_ARANGE = [np.arange(1 << 16, dtype=np.float64)]  # one growing buffer


def _arange(n: int) -> np.ndarray:
    if n > _ARANGE[0].shape[0]:
        _ARANGE[0] = np.arange(max(n, 2 * _ARANGE[0].shape[0]), dtype=np.float64)
    return _ARANGE[0][:n]


@lru_cache(maxsize=512)
def _table(timbre: str, ratios: tuple[int, ...], k: int) -> np.ndarray:
    """Periodic wavetable: the timbre's first ``k`` harmonics on every chord ratio."""
    kind, amps = TIMBRES[timbre][0], TIMBRES[timbre][1]
    assert kind == "table"
    x = np.arange(_TABLE_SIZE) * (2 * np.pi / _TABLE_SIZE)
    out = np.zeros(_TABLE_SIZE)
    for r in ratios:
        for h, a in enumerate(amps[:k], start=1):
            m = r * h
            if a and m < _TABLE_SIZE // 2:
                out += a * np.sin(m * x)
    peak = np.max(np.abs(out)) or 1.0
    return (out / peak).astype(np.float32)


def _pick_table(timbre: str, ratios: tuple[int, ...], base: float, sr: int) -> np.ndarray:
    top = max(ratios) * base
    limit = 0.45 * sr / max(top, 1e-6)
    k = 1
    for cand in _HARMONIC_LIMITS:
        if cand <= limit:
            k = cand
    return _table(timbre, ratios, k)


def _midi_hz(m: float) -> float:
    return 440.0 * 2.0 ** ((m - 69.0) / 12.0)


class _Renderer:
    """Per-clip rendering context: envelope cache, sample rate, output length."""

    def __init__(self, n: int, sr: int):
        self.n = n
        self.sr = sr
        self._env: dict[tuple, np.ndarray] = {}

    def env(self, n: int, attack: float, decay: float, release: float = 0.01) -> np.ndarray:
        key = (n, round(attack, 4), round(decay, 4), round(release, 4))
        e = self._env.get(key)
        if e is None:
            t = _arange(n) / self.sr
            e = np.exp(-t / max(decay, 1e-4))
            if attack > 0:
                e *= np.minimum(t / attack, 1.0)
            r = min(n, max(1, int(release * self.sr)))
            e[n - r :] *= np.linspace(1.0, 0.0, r)
            e = e.astype(np.float32)
            self._env[key] = e
        return e

    def tone(
        self,
        out: np.ndarray,
        start: int,
        length: int,
        freq: float,
        vel: float,
        timbre: str,
        attack: float,
        decay: float,
        ratios: tuple[int, ...] = (1,),
        vibrato: float = 0.0,
        phase: float = 0.0,
    ) -> None:
        """Add one note (or a just-intonation chord) to ``out`` at ``start``."""
        if start >= self.n or length <= 0:
            return
        if start < 0:
            length += start
            start = 0
            if length <= 0:
                return
        length = min(length, self.n - start)
        sr = self.sr
        spec = TIMBRES[timbre]
        env = self.env(length, attack, decay)
        if spec[0] == "table":
            base = freq / ratios[0]
            tab = _pick_table(timbre, ratios, base, sr)
            ph = _arange(length) * (base * _TABLE_SIZE / sr)
            if vibrato:
                ph += (vibrato * base * _TABLE_SIZE / (2 * np.pi * 5.5)) * np.sin(
                    _arange(length) * (2 * np.pi * 5.5 / sr)
                )
            idx = (ph + phase * _TABLE_SIZE).astype(np.int64) & _MASK
            sig = tab[idx]
        else:  # FM: carrier at freq, modulator at ratio*freq, decaying index
            _, ratio, index, idecay = spec
            w = _arange(length) * (2 * np.pi * freq / sr)
            ienv = index * self.env(length, 0.0, idecay, 0.0)
            sig = np.sin(w + ienv * np.sin(w * ratio)).astype(np.float32)
        out[start : start + length] += (vel * sig) * env

    @staticmethod
    def hit(out: np.ndarray, start: int, sample: np.ndarray, vel: float) -> None:
        n = out.shape[0]
        if start >= n:
            return
        if start < 0:
            sample = sample[-start:]
            start = 0
        m = min(sample.shape[0], n - start)
        out[start : start + m] += vel * sample[:m]


def _onepole(x: np.ndarray, a: float) -> np.ndarray:
    """Cheap one-pole low-pass (only used on short one-shots)."""
    from scipy.signal import lfilter

    return lfilter([1 - a], [1, -a], x).astype(np.float32)


def _drum_kit(rng: np.random.Generator, sr: int) -> dict[str, np.ndarray]:
    """One-shot drum samples with per-clip random pitch/decay."""

    def t(sec: float) -> np.ndarray:
        return _arange(int(sec * sr)) / sr

    kit: dict[str, np.ndarray] = {}
    # kick: sine sweep with click
    tk = t(0.35)
    f0, f1 = rng.uniform(120, 180), rng.uniform(40, 60)
    sweep = f1 + (f0 - f1) * np.exp(-tk / rng.uniform(0.02, 0.05))
    ph = 2 * np.pi * np.cumsum(sweep) / sr
    kit["kick"] = (np.sin(ph) * np.exp(-tk / rng.uniform(0.08, 0.2))).astype(np.float32)
    kit["kick"][: int(0.002 * sr)] += 0.5
    # snare: tone + bright noise
    ts = t(0.25)
    noise = rng.standard_normal(ts.size).astype(np.float32)
    bright = np.diff(noise, prepend=0.0).astype(np.float32) * 0.6
    tone = np.sin(2 * np.pi * rng.uniform(170, 230) * ts) * np.exp(-ts / 0.04)
    kit["snare"] = (0.5 * tone + 0.7 * bright * np.exp(-ts / rng.uniform(0.05, 0.1))).astype(np.float32)
    # clap: three noise bursts
    tc = t(0.25)
    nz = np.diff(rng.standard_normal(tc.size), prepend=0.0)
    envc = np.exp(-tc / 0.06)
    for d in (0.01, 0.02):
        envc += np.exp(-np.maximum(tc - d, 0) / 0.008) * (tc >= d)
    kit["clap"] = (0.5 * nz * envc).astype(np.float32)
    # hats: high-passed noise (first difference twice)
    th = t(0.06)
    hn = np.diff(rng.standard_normal(th.size + 2), n=2)
    kit["chat"] = (0.25 * hn * np.exp(-th / rng.uniform(0.01, 0.025))).astype(np.float32)
    to = t(0.35)
    on = np.diff(rng.standard_normal(to.size + 2), n=2)
    kit["ohat"] = (0.2 * on * np.exp(-to / rng.uniform(0.08, 0.15))).astype(np.float32)
    # metallic cymbals: inharmonic partials + noise
    tr = t(0.7)
    partials = rng.uniform(2500, 7000, 6)
    metal = sum(np.sin(2 * np.pi * f * tr + rng.uniform(0, 6.28)) for f in partials) / 6
    rn = np.diff(rng.standard_normal(tr.size + 1))
    kit["ride"] = ((0.25 * metal + 0.08 * rn) * np.exp(-tr / rng.uniform(0.25, 0.45))).astype(np.float32)
    tcr = t(1.5)
    crn = np.diff(rng.standard_normal(tcr.size + 1))
    kit["crash"] = (0.35 * crn * np.exp(-tcr / rng.uniform(0.4, 0.8))).astype(np.float32)
    # hi-hat pedal, brush, shaker, rim
    kit["hpedal"] = (kit["chat"][: int(0.04 * sr)] * 0.7).copy()
    tb = t(0.18)
    kit["brush"] = (
        0.15 * _onepole(rng.standard_normal(tb.size), 0.3) * np.sin(np.pi * np.minimum(tb / 0.18, 1.0))
    ).astype(np.float32)
    tsh = t(0.12)
    kit["shaker"] = (0.12 * np.diff(rng.standard_normal(tsh.size + 1)) * np.sin(np.pi * tsh / 0.12)).astype(np.float32)
    trm = t(0.08)
    kit["rim"] = (
        0.6 * np.sin(2 * np.pi * rng.uniform(700, 1000) * trm) * np.exp(-trm / 0.015)
        + 0.2 * np.diff(rng.standard_normal(trm.size + 1)) * np.exp(-trm / 0.01)
    ).astype(np.float32)
    return kit


_DRUM_LEVEL = {
    "kick": 1.0,
    "snare": 0.8,
    "clap": 0.6,
    "chat": 0.5,
    "ohat": 0.45,
    "ride": 0.5,
    "crash": 0.5,
    "hpedal": 0.4,
    "brush": 0.7,
    "shaker": 0.6,
    "rim": 0.5,
}


def _parse_step(ch: str, rng: np.random.Generator) -> float:
    if ch == "x":
        return 1.0
    if ch == "X":
        return 1.3
    if ch == "o":
        return 0.45
    if ch == "?":
        return 1.0 if rng.random() < 0.35 else 0.0
    return 0.0


# ---------------------------------------------------------------------------------
# Clip synthesis
# ---------------------------------------------------------------------------------


def _genre_rng(genre: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([int(seed) & 0xFFFFFFFF, (int(seed) >> 32) & 0xFFFFFFFF, zlib.crc32(genre.encode())])
    )


def _chord_info(scale: Sequence[int], degree: int, sevenths: bool) -> tuple[int, tuple[int, ...], list[int]]:
    """Root offset (semitones), JI ratios and chord-tone semitone offsets for a degree."""
    d = degree % 7
    root = scale[d] + 12 * (degree // 7)
    third = (scale[(d + 2) % 7] - scale[d]) % 12
    fifth = (scale[(d + 4) % 7] - scale[d]) % 12
    seventh = (scale[(d + 6) % 7] - scale[d]) % 12
    key: tuple[int, ...] = (third, fifth, seventh) if sevenths else (third, fifth)
    ratios = _JI_CHORDS.get(key) or _JI_CHORDS.get((third, fifth)) or (4, 5, 6)
    tones = [0, third, fifth] + ([seventh] if sevenths else [])
    return root, ratios, tones


def synthesize(genre: str, duration: float = 30.0, sr: int = 22050, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Render one clip of ``genre`` (a key of :data:`GENRES`).

    Returns float32 audio of shape ``(frames, channels)`` with
    ``frames == round(duration * sr)``, peak in [0.45, 0.95]. The same
    ``(genre, duration, sr, seed, channels)`` always gives the same samples; different
    seeds vary key, tempo, patterns, instrument choice and mix, noise level and
    micro-timing. With ``channels > 1`` the voices are panned across the channels.
    """
    try:
        style = GENRES[genre]
    except KeyError:
        raise ValueError(f"unknown genre {genre!r}; choose one of {sorted(GENRES)}") from None
    if duration <= 0 or sr <= 0 or channels < 1:
        raise ValueError("duration and sr must be > 0 and channels >= 1")
    rng = _genre_rng(genre, seed)
    n = round(duration * sr)
    R = _Renderer(n, sr)

    bpm = float(rng.uniform(*style.tempo))
    swing = float(rng.uniform(*style.swing))
    beat = 60.0 / bpm
    step = beat / 4
    bar = 4 * beat
    n_bars = math.ceil(duration / bar) + 1
    key_root = int(rng.integers(0, 12))
    scale = SCALES[style.scales[rng.integers(len(style.scales))]]
    prog = style.progressions[rng.integers(len(style.progressions))]

    def step_time(bar_i: int, s: int) -> float:
        t = bar_i * bar + s * step
        if swing != 0.5:
            if style.swing_unit == 8 and s % 4 == 2:
                t += (2 * swing - 1) * 2 * step
            elif style.swing_unit == 16 and s % 2 == 1:
                t += (2 * swing - 1) * step
        return t

    def jitter() -> float:
        return float(rng.normal(0.0, style.humanize)) if style.humanize else 0.0

    def chord_at(bar_i: int) -> int:
        return prog[(bar_i // style.bars_per_chord) % len(prog)]

    def mixgain(g: float) -> float:
        return g * 10 ** (rng.normal(0.0, 3.0) / 20)

    voices: list[tuple[np.ndarray, float]] = []  # (buffer, pan)

    # --- drums -----------------------------------------------------------------
    if style.drums and rng.random() < style.drum_prob:
        kit = _drum_kit(rng, sr)
        dbuf = np.zeros(n, np.float32)
        dgain = mixgain(style.drum_gain)
        for inst, patterns in style.drums.items():
            pat = patterns[rng.integers(len(patterns))]
            lvl = _DRUM_LEVEL[inst] * 10 ** (rng.normal(0, 2) / 20)
            sample = kit[inst]
            for b in range(n_bars):
                if inst == "crash" and not (style.crash_every and b % style.crash_every == 0):
                    continue
                for s, ch in enumerate(pat):
                    v = _parse_step(ch, rng)
                    if v:
                        v *= lvl * rng.uniform(0.8, 1.0)
                        R.hit(dbuf, int((step_time(b, s) + jitter()) * sr), sample, v)
        # fills: snare rolls on the last beat of every 4th bar
        if style.fill_prob and "snare" in kit:
            for b in range(3, n_bars, 4):
                if rng.random() < style.fill_prob:
                    for s in range(12, 16):
                        R.hit(dbuf, int((step_time(b, s) + jitter()) * sr), kit["snare"], 0.5 + 0.12 * (s - 12))
        voices.append((dbuf * dgain, 0.0))

    # --- bass ------------------------------------------------------------------
    bs = style.bass
    if bs.style != "none":
        bbuf = np.zeros(n, np.float32)
        timbre = bs.timbres[rng.integers(len(bs.timbres))]
        base = 12 * (bs.octave + 1) + key_root
        events: list[tuple[float, float, float, float]] = []  # (t, dur, midi, vel)
        if bs.style == "drone":
            for b in range(0, n_bars, style.bars_per_chord):
                root, _, _ = _chord_info(scale, chord_at(b), False)
                events.append((b * bar, style.bars_per_chord * bar * 1.05, base + root, 0.9))
        elif bs.style == "root8":
            for b in range(n_bars):
                root, _, tones = _chord_info(scale, chord_at(b), False)
                for s in range(0, 16, 2):
                    oct_ = 12 if rng.random() < 0.1 else 0
                    events.append(
                        (step_time(b, s) + jitter(), 2 * step * bs.gate, base + root + oct_, 0.8 + 0.2 * (s % 8 == 0))
                    )
        elif bs.style in ("pattern", "sub808"):
            if bs.style == "pattern":
                pat = bs.patterns[rng.integers(len(bs.patterns))]
            else:
                kpats = style.drums.get("kick", ("x.......x.......",))
                pat = kpats[rng.integers(len(kpats))]
            hits = [s for s, c in enumerate(pat) if c not in ".?"]
            for b in range(n_bars):
                root, _, tones = _chord_info(scale, chord_at(b), False)
                for j, s in enumerate(hits):
                    nxt = hits[j + 1] if j + 1 < len(hits) else 16
                    r = rng.random()
                    iv = 0 if r < 0.7 else (tones[2] if r < 0.85 else 12)
                    events.append(
                        (
                            step_time(b, s) + jitter(),
                            (nxt - s) * step * bs.gate,
                            base + root + iv,
                            rng.uniform(0.75, 1.0),
                        )
                    )
        elif bs.style == "walking":
            for b in range(n_bars):
                root, _, tones = _chord_info(scale, chord_at(b), True)
                nroot, _, _ = _chord_info(scale, chord_at(b + 1), True)
                line = [
                    root,
                    root + tones[int(rng.integers(1, len(tones)))],
                    root + scale[(scale.index(root % 12) + int(rng.integers(1, 5))) % 7]
                    if root % 12 in scale
                    else root + tones[2],
                    nroot + (1 if rng.random() < 0.5 else -1),
                ]
                for q, m in enumerate(line):
                    events.append(
                        (b * bar + q * beat + jitter(), beat * bs.gate, base + (m % 24), rng.uniform(0.75, 1.0))
                    )
        for t0, dur, midi, vel in events:
            R.tone(
                bbuf,
                int(t0 * sr),
                int(dur * sr),
                _midi_hz(midi),
                vel,
                timbre,
                0.005 if bs.style != "drone" else 1.0,
                bs.decay if bs.style != "drone" else 30.0,
            )
        voices.append((bbuf * mixgain(bs.gain), 0.0))

    # --- chords ----------------------------------------------------------------
    cs = style.chords
    if cs.style != "none" and rng.random() < cs.prob:
        cbuf = np.zeros(n, np.float32)
        timbre = cs.timbres[rng.integers(len(cs.timbres))]
        base = 12 * (cs.octave + 1) + key_root
        if cs.style in ("pad", "block"):
            per = style.bars_per_chord
            for b in range(0, n_bars, per):
                root, ratios, _ = _chord_info(scale, chord_at(b), cs.sevenths)
                R.tone(
                    cbuf,
                    int(b * bar * sr),
                    int(per * bar * 1.1 * sr),
                    _midi_hz(base + root),
                    rng.uniform(0.8, 1.0),
                    timbre,
                    cs.attack,
                    cs.decay,
                    ratios,
                )
        elif cs.style in ("power", "stab", "skank"):
            pat = cs.patterns[rng.integers(len(cs.patterns))] if cs.patterns else "x.......x......."
            hits = [s for s, c in enumerate(pat) if c != "."]
            for b in range(n_bars):
                root, ratios, _ = _chord_info(scale, chord_at(b), cs.sevenths)
                if cs.style == "power":
                    ratios = _JI_CHORDS[(0, 7)]
                for j, s in enumerate(hits):
                    nxt = hits[j + 1] if j + 1 < len(hits) else 16
                    dur = (nxt - s) * step
                    R.tone(
                        cbuf,
                        int((step_time(b, s) + jitter()) * sr),
                        int(dur * sr),
                        _midi_hz(base + root),
                        rng.uniform(0.7, 1.0),
                        timbre,
                        cs.attack,
                        cs.decay,
                        ratios,
                    )
        elif cs.style == "comp":
            for b in range(n_bars):
                root, ratios, _ = _chord_info(scale, chord_at(b), True)
                slots = sorted(rng.choice([0, 2, 4, 6, 8, 10, 12, 14], size=int(rng.integers(1, 4)), replace=False))
                for s in slots:
                    dur = step * float(rng.choice([2, 3, 4, 6]))
                    R.tone(
                        cbuf,
                        int((step_time(b, int(s)) + jitter()) * sr),
                        int(dur * sr),
                        _midi_hz(base + root),
                        rng.uniform(0.6, 1.0),
                        timbre,
                        cs.attack,
                        cs.decay,
                        ratios,
                    )
        elif cs.style == "arp":
            sub = 2 if rng.random() < 0.5 else 1  # 8ths or 16ths
            shape = rng.choice(["up", "updown", "alberti"])
            for b in range(n_bars):
                root, _, tones = _chord_info(scale, chord_at(b), False)
                seq = [tones[0], tones[1], tones[2], 12]
                if shape == "updown":
                    seq = seq + seq[-2:0:-1]
                elif shape == "alberti":
                    seq = [tones[0], tones[2], tones[1], tones[2]]
                for k, s in enumerate(range(0, 16, sub)):
                    R.tone(
                        cbuf,
                        int((step_time(b, s) + jitter()) * sr),
                        int(sub * step * 1.6 * sr),
                        _midi_hz(base + root + seq[k % len(seq)]),
                        rng.uniform(0.6, 0.9),
                        timbre,
                        cs.attack,
                        cs.decay,
                    )
        if style.distortion:
            g = style.distortion * rng.uniform(0.7, 1.3)
            peak = float(np.max(np.abs(cbuf))) or 1.0
            cbuf = np.tanh(cbuf * (g / peak)) * np.float32(1.0 / math.tanh(g))
        voices.append((cbuf * mixgain(cs.gain), float(rng.uniform(-0.6, 0.6))))

    # --- lead ------------------------------------------------------------------
    ls = style.lead
    if ls is not None and rng.random() < ls.prob:
        lbuf = np.zeros(n, np.float32)
        timbre = ls.timbres[rng.integers(len(ls.timbres))]
        base = 12 * (ls.octave + 1) + key_root
        sub = 16 // ls.grid
        density = ls.density * rng.uniform(0.7, 1.3)
        # a 2-bar motif (step, scale-degree offset) repeated over the chord roots, mutated
        motif = [(s, int(rng.integers(-2, 5))) for s in range(0, 32, sub) if rng.random() < density]
        if not motif:
            motif = [(0, 0)]
        for b0 in range(0, n_bars, 2):
            for j, (s, motif_deg) in enumerate(motif):
                deg = motif_deg + int(rng.integers(-2, 3)) if rng.random() < 0.2 else motif_deg
                b = b0 + s // 16
                cdeg = chord_at(b)
                nxt = motif[j + 1][0] if j + 1 < len(motif) else 32
                total = cdeg + deg
                midi = base + scale[total % 7] + 12 * (total // 7)
                R.tone(
                    lbuf,
                    int((step_time(b, s % 16) + jitter()) * sr),
                    int(min(nxt - s, 8) * step * sr),
                    _midi_hz(midi),
                    rng.uniform(0.6, 1.0),
                    timbre,
                    ls.attack,
                    ls.decay,
                    vibrato=ls.vibrato,
                )
        if style.distortion > 6:
            lbuf = np.tanh(lbuf * 3.0)
        voices.append((lbuf * mixgain(ls.gain), float(rng.uniform(-0.7, 0.7))))

    # --- mix -------------------------------------------------------------------
    mix = np.zeros(n, np.float32)
    for buf, _ in voices:
        mix += buf
    if style.reverb:
        # a few multi-tap echoes: cheap room/hall impression
        wet = style.reverb * rng.uniform(0.6, 1.0)
        src = mix.copy()
        for d, g in ((0.061, 0.5), (0.113, 0.35), (0.197, 0.25), (0.293, 0.15)):
            k = int(d * sr)
            if k < n:
                mix[k:] += (wet * g) * src[:-k]
    if style.swell:
        lfo_hz = rng.uniform(0.03, 0.08)
        mix *= (
            1.0 - style.swell * 0.5 * (1 + np.sin(_arange(n) * (2 * np.pi * lfo_hz / sr) + rng.uniform(0, 6.28)))
        ).astype(np.float32)
    mix += _noise(style, rng, n, sr)
    if rng.random() < 0.5:
        # "mastering" tilt: a random gentle low-pass (cutoff ~2-9 kHz) varies brightness
        from scipy.signal import lfilter

        fc = float(rng.uniform(2000.0, 9000.0))
        a = math.exp(-2 * math.pi * min(fc, 0.45 * sr) / sr)
        mix = (0.5 * mix + 0.5 * lfilter([1 - a], [1, -a], mix)).astype(np.float32)

    peak = float(np.max(np.abs(mix))) or 1.0
    level = float(rng.uniform(0.45, 0.95))
    mix *= np.float32(level / peak)

    if channels == 1:
        return mix.reshape(n, 1)
    # multi-channel: pan each voice across evenly spaced channel positions
    pos = np.linspace(-1.0, 1.0, channels)
    out = np.zeros((n, channels), np.float32)
    scale_ = np.float32(level / peak)
    for buf, pan in voices:
        w = np.clip(1.0 - np.abs(pos - pan) / 2.0, 0.0, 1.0).astype(np.float32)
        w /= np.sqrt(np.sum(w**2)) / math.sqrt(channels) or 1.0
        out += buf[:, None] * (w * scale_)[None, :]
    residual = mix - out.mean(axis=1)  # reverb/noise/swell not captured by the per-voice sum
    out += residual[:, None]
    np.clip(out, -1.0, 1.0, out=out)
    return out


def _noise(style: GenreStyle, rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Background noise bed (tiled from a short buffer to stay cheap)."""
    level = float(rng.uniform(*style.noise_level))
    blen = min(n, 1 << 15)
    buf: np.ndarray = rng.standard_normal(blen).astype(np.float32)
    if style.noise == "wash":
        buf = _onepole(buf, 0.97) * 4.0
    reps = -(-n // blen)
    out: np.ndarray = np.tile(buf, reps)[:n] * level
    if style.noise == "vinyl":
        k = int(n / sr * rng.uniform(15, 40))
        pos = rng.integers(0, n, k)
        out[pos] += rng.uniform(-1, 1, k).astype(np.float32) * level * 25
    return out


# ---------------------------------------------------------------------------------
# Files: formats, tags, library
# ---------------------------------------------------------------------------------

#: extension -> (soundfile format, subtype)
FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "aiff": ("AIFF", "PCM_16"),
    "au": ("AU", "PCM_16"),
}
_ALIASES = {"aif": "aiff", "oga": "ogg", "wave": "wav", "snd": "au"}

#: formats that carry tags (vorbis comments for flac/ogg, ID3 for mp3/wav/aiff); AU has none
TAGGABLE_FORMATS = frozenset({"wav", "flac", "ogg", "mp3", "aiff"})

_FINGERPRINT_KEY = "musicindex-synth"


def _fmt_of(path: Path, fmt: str | None) -> str:
    f = (fmt or path.suffix.lstrip(".")).lower()
    f = _ALIASES.get(f, f)
    if f not in FORMATS:
        raise ValueError(f"unsupported format {f!r}; choose one of {sorted(FORMATS)}")
    return f


def write_audio(path: str | os.PathLike, audio: np.ndarray, sr: int, fmt: str | None = None) -> Path:
    """Write ``audio`` (frames, channels) float in [-1, 1] with the right soundfile format."""
    import soundfile as sf

    path = Path(path)
    f = _fmt_of(path, fmt)
    sf_format, subtype = FORMATS[f]
    sf.write(str(path), audio, sr, format=sf_format, subtype=subtype)
    return path


def write_tags(
    path: str | os.PathLike,
    fmt: str | None = None,
    *,
    title: str,
    artist: str,
    album: str,
    year: int | str,
    genre: str,
    track: int | None = None,
    comment: str | None = None,
) -> bool:
    """Write title/artist/album/date/genre (and track number, comment) with mutagen.

    Vorbis comments for FLAC/Ogg, ID3v2 for MP3, an ``id3`` chunk for WAV/AIFF.
    Returns False (writing nothing) for formats without tag support (AU).
    """
    path = Path(path)
    f = _fmt_of(path, fmt)
    if f not in TAGGABLE_FORMATS:
        return False
    if f in ("flac", "ogg"):
        from mutagen.flac import FLAC
        from mutagen.oggvorbis import OggVorbis

        audio: Any = FLAC(str(path)) if f == "flac" else OggVorbis(str(path))
        if audio.tags is None:
            audio.add_tags()
        audio["title"] = title
        audio["artist"] = artist
        audio["album"] = album
        audio["date"] = str(year)
        audio["genre"] = genre
        if track is not None:
            audio["tracknumber"] = str(track)
        if comment:
            audio["comment"] = comment
        audio.save()
        return True
    from mutagen import id3
    from mutagen.aiff import AIFF
    from mutagen.mp3 import MP3
    from mutagen.wave import WAVE

    audio = {"mp3": MP3, "wav": WAVE}.get(f, AIFF)(str(path))
    if audio.tags is None:
        audio.add_tags()
    tags: Any = audio.tags
    tags.add(id3.TIT2(encoding=3, text=title))
    tags.add(id3.TPE1(encoding=3, text=artist))
    tags.add(id3.TALB(encoding=3, text=album))
    tags.add(id3.TDRC(encoding=3, text=str(year)))
    tags.add(id3.TCON(encoding=3, text=genre))
    if track is not None:
        tags.add(id3.TRCK(encoding=3, text=str(track)))
    if comment:
        tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=comment))
    audio.save()
    return True


def _read_comment(path: Path, f: str) -> str | None:
    """The comment tag written by :func:`write_tags`, or None."""
    try:
        import mutagen

        audio = mutagen.File(str(path))
        if audio is None or audio.tags is None:
            return None
        if f in ("flac", "ogg"):
            v = audio.tags.get("comment")
            return v[0] if v else None
        for frame in audio.tags.getall("COMM"):
            return str(frame.text[0]) if frame.text else None
    except Exception:  # noqa: BLE001 - an unreadable comment counts as absent
        return None
    return None


@dataclass
class SampleTrack:
    """One synthesized file of a library (what was written, and its tag values)."""

    path: Path
    genre: str
    format: str
    duration: float
    seed: int
    title: str
    artist: str
    album: str
    year: int = 0
    sr: int = 22050
    channels: int = 1
    tagged: bool = False


_ARTIST_WORDS = {
    "ambient": ["Glass Horizon", "Slow Tide Ensemble", "Nimbus Field", "Aurora Drift"],
    "techno": ["Unit 303", "Concrete Pulse", "Kaltwerk", "Modular Theory"],
    "rock": ["The Loud Arrows", "Rusty Pistons", "Crimson Highway", "Static Kings"],
    "jazz": ["Miles Okafor Trio", "The Blue Quarter", "Nina Valdez Quartet", "Smoke & Brass"],
    "classical": ["Aurelia Chamber Orchestra", "Quartetto Lumen", "E. Hartmann", "Vienna Salon Strings"],
    "hiphop": ["MC Lowkey", "Dusty Crates", "Brooklyn Static", "Lyric Sav"],
    "metal": ["Iron Cathedral", "Abyssal Throne", "Ravenhowl", "Forge of Ruin"],
    "reggae": ["Roots Revival", "Kingston Sun", "The Dub Shepherds", "Irie Lion"],
}
_TITLE_A = [
    "Midnight",
    "Golden",
    "Broken",
    "Silent",
    "Electric",
    "Velvet",
    "Hollow",
    "Burning",
    "Distant",
    "Paper",
    "Crystal",
    "Wild",
    "Lonely",
    "Neon",
    "Frozen",
    "Sweet",
]
_TITLE_B = [
    "River",
    "Signal",
    "Garden",
    "Machine",
    "Heart",
    "Road",
    "Echo",
    "Sky",
    "Island",
    "Letter",
    "Engine",
    "Fire",
    "Shadow",
    "Morning",
    "Window",
    "Dance",
]


def track_seed(seed: int, genre: str, index: int) -> int:
    """The clip seed :func:`generate_library` uses for file ``index`` of ``genre``."""
    return (int(seed) * 1_000_003 + index * 7919 + zlib.crc32(genre.encode())) & 0x7FFFFFFF


def _metadata(genre: str, index: int, seed: int) -> tuple[str, str, str, int]:
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(genre.encode()), index])
    artists = _ARTIST_WORDS.get(genre) or [f"{genre.title()} Project {c}" for c in "ABC"]
    a = index % len(artists)
    artist = artists[a]
    album_no = (index // len(artists)) % 3
    arng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(artist.encode()), album_no])
    album = f"{_TITLE_A[arng.integers(len(_TITLE_A))]} {_TITLE_B[arng.integers(len(_TITLE_B))]}"
    year = int(arng.integers(1965, 2024))
    title = f"{_TITLE_A[rng.integers(len(_TITLE_A))]} {_TITLE_B[rng.integers(len(_TITLE_B))]}"
    return title, artist, album, year


def generate_library(
    root: str | os.PathLike,
    per_genre: int = 10,
    genres: Iterable[str] | None = None,
    duration: float = 30.0,
    sr: int = 22050,
    formats: Sequence[str] = ("wav",),
    seed: int = 0,
    channels: int = 1,
    tags: bool = True,
) -> list[SampleTrack]:
    """Write a GTZAN-like library ``root/<genre>/<genre>.<nnnnn>.<ext>`` and describe it.

    File ``i`` of each genre uses ``formats[i % len(formats)]`` (wav, flac, ogg, mp3,
    aiff, au) and clip seed :func:`track_seed`. With ``tags=True`` title, artist (a
    few fake artists per genre), album, date/year, genre (the genre key, e.g. "hiphop",
    the same word as the folder) and track number are written with mutagen where the
    format supports tags (all but AU).

    Re-running is cheap and leaves existing files untouched (same bytes on disk, same
    mtime), so a second demo run reuses them:

    * a tagged file whose fingerprint comment (genre, seed, duration, sr, channels) matches
      is skipped without rendering;
    * otherwise the clip is rendered to a temporary file next to the target; if the target
      already exists with the same size it is kept and the temporary file deleted, else the
      temporary file atomically replaces it (readers never see a half-written file).
    """
    root = Path(root)
    genre_list = list(genres) if genres is not None else list(GENRES)
    for g in genre_list:
        if g not in GENRES:
            raise ValueError(f"unknown genre {g!r}; choose one of {sorted(GENRES)}")
    fmts = [_fmt_of(Path("x." + f), f) for f in formats]
    if not fmts:
        raise ValueError("formats must not be empty")
    tracks: list[SampleTrack] = []
    for g in genre_list:
        gdir = root / g
        gdir.mkdir(parents=True, exist_ok=True)
        for i in range(per_genre):
            f = fmts[i % len(fmts)]
            path = gdir / f"{g}.{i:05d}.{f}"
            s = track_seed(seed, g, i)
            title, artist, album, year = _metadata(g, i, seed)
            fingerprint = f"{_FINGERPRINT_KEY} v1 genre={g} seed={s} duration={duration:g} sr={sr} channels={channels}"
            tagged = tags and f in TAGGABLE_FORMATS
            track = SampleTrack(
                path=path,
                genre=g,
                format=f,
                duration=float(duration),
                seed=s,
                title=title,
                artist=artist,
                album=album,
                year=year,
                sr=sr,
                channels=channels,
                tagged=tagged,
            )
            tracks.append(track)
            if tagged and path.is_file() and path.stat().st_size > 0 and _read_comment(path, f) == fingerprint:
                continue
            tmp = gdir / f".{path.stem}.partial-{os.getpid()}.{f}"
            try:
                write_audio(tmp, synthesize(g, duration, sr, s, channels), sr, f)
                if tagged:
                    write_tags(
                        tmp,
                        f,
                        title=title,
                        artist=artist,
                        album=album,
                        year=year,
                        genre=g,
                        track=i + 1,
                        comment=fingerprint,
                    )
                if path.is_file() and path.stat().st_size == tmp.stat().st_size:
                    tmp.unlink()
                else:
                    os.replace(tmp, path)
            finally:
                if tmp.exists():
                    tmp.unlink()
    return tracks
