"""Synthesized signals whose tempo and key are known by construction, and hard inputs that have none.

For the descriptor tests and ``benchmarks/descriptors.py``: they prove the plumbing of the estimators (a click
at 120 BPM, a cadence in C major), never their quality on real music.  Everything is mono float32 at
``sr`` (22 050 Hz by default), deterministic for a given ``seed``.
"""

from __future__ import annotations

import numpy as np

SR = 22050
A4 = 440.0


def _env(n: int, sr: int, decay: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (decay * sr)).astype(np.float32)


def _drum(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "kick":
        n = int(0.25 * sr)
        t = np.arange(n) / sr
        f = 50 + 90 * np.exp(-t * 30)
        return (np.sin(2 * np.pi * np.cumsum(f) / sr) * _env(n, sr, 0.08)).astype(np.float32)
    if kind == "snare":
        n = int(0.2 * sr)
        noise = rng.standard_normal(n).astype(np.float32)
        return 0.6 * noise * _env(n, sr, 0.04) + 0.3 * np.sin(2 * np.pi * 190 * np.arange(n) / sr) * _env(n, sr, 0.05)
    n = int(0.06 * sr)  # hat / click
    return (0.35 * rng.standard_normal(n) * _env(n, sr, 0.01)).astype(np.float32)


def click_track(bpm: float, seconds: float = 30.0, *, sr: int = SR, swing: float = 0.0, rest: float = 0.0,
                seed: int = 0) -> np.ndarray:  # fmt: skip
    """A metronome: a 1.5-kHz click every beat (accented every 4th); ``swing`` > 0 adds a soft off-beat click
    ``swing / 2`` of a beat after the half beat (0.33: a triplet feel); ``rest`` drops that share of the beats
    that are not downbeats."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    n = int(0.02 * sr)
    click = (np.sin(2 * np.pi * 1500 * np.arange(n) / sr) * _env(n, sr, 0.003)).astype(np.float32)
    beat = 60.0 / bpm
    for i in range(int(seconds / beat)):
        if i % 4 and rng.random() < rest:
            continue
        s = int(i * beat * sr)
        y[s : s + n] += click[: y.size - s] * (1.0 if i % 4 == 0 else 0.6)
        half = int((i + 0.5 + swing * 0.5) * beat * sr)
        if swing and half + n < y.size:
            y[half : half + n] += 0.3 * click
    return y + (1e-3 * rng.standard_normal(y.size)).astype(np.float32)


def drum_pattern(bpm: float, seconds: float = 30.0, *, sr: int = SR, swing: float = 0.0, rest: float = 0.0,
                 seed: int = 0) -> np.ndarray:  # fmt: skip
    """Kick on 1 and 3, snare on 2 and 4, hats on eighths (swung by ``swing``), a bass note per bar; ``rest``
    drops that share of the hits (not the downbeats)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr) + sr, dtype=np.float32)
    beat = 60.0 / bpm
    kick, snare, hat = (_drum(k, sr, rng) for k in ("kick", "snare", "hat"))

    def put(x: np.ndarray, t: float, gain: float) -> None:
        s = int(t * sr)
        if s < y.size:
            seg = x[: y.size - s]
            y[s : s + seg.size] += gain * seg

    for i in range(int(seconds / beat)):
        t = i * beat
        if i % 4 == 0 or rng.random() >= rest:
            put(kick if i % 2 == 0 else snare, t, 1.0)
        for e in (0.0, 0.5 + 0.5 * swing):
            if rng.random() >= rest:
                put(hat, t + e * beat, 0.5 if e else 0.7)
        if i % 4 == 0:
            n = int(beat * 4 * sr * 0.9)
            put((0.3 * np.sin(2 * np.pi * 55 * np.arange(n) / sr) * _env(n, sr, 0.8)).astype(np.float32), t, 1.0)
    return y[: int(seconds * sr)] + (1e-3 * rng.standard_normal(int(seconds * sr))).astype(np.float32)


def _note(midi: float, seconds: float, sr: int, timbre: str) -> np.ndarray:
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f = A4 * 2 ** ((midi - 69) / 12)
    if timbre == "sine":
        partials = [(1, 1.0)]
    elif timbre == "organ":
        partials = [(1, 1.0), (2, 0.5), (3, 0.3), (4, 0.2), (6, 0.1)]
    elif timbre == "saw":
        partials = [(k, 1.0 / k) for k in range(1, 16)]
    elif timbre == "piano":
        partials = [(k, 0.7**k) for k in range(1, 10)]
    else:
        raise ValueError(f"unknown timbre {timbre!r}; accepted: sine, organ, saw, piano")
    y = sum(a * np.sin(2 * np.pi * f * k * t) for k, a in partials if f * k < sr / 2 - 500)
    decay = 0.6 if timbre == "piano" else 3.0
    attack = np.minimum(1.0, t / 0.01)
    return (np.asarray(y) * attack * np.exp(-t / decay)).astype(np.float32)


TIMBRES = ("sine", "organ", "saw", "piano")
MAJOR_PROGRESSION = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7))  # I IV V I
MINOR_PROGRESSION = ((0, 3, 7), (5, 8, 12), (7, 11, 14), (0, 3, 7))  # i iv V i (harmonic minor dominant)


def chord_progression(tonic: int, mode: str, seconds: float = 20.0, *, timbre: str = "piano", sr: int = SR,
                      chord_seconds: float = 1.0, seed: int = 0) -> np.ndarray:  # fmt: skip
    """A cadence (I-IV-V-I or i-iv-V-i) in the key ``tonic`` (0 = C) ``mode`` ("major"/"minor"), repeated,
    with a bass note an octave below each chord's root and a melody note on the scale."""
    if mode not in ("major", "minor"):
        raise ValueError(f"mode is 'major' or 'minor', got {mode!r}")
    rng = np.random.default_rng(seed)
    prog = MAJOR_PROGRESSION if mode == "major" else MINOR_PROGRESSION
    scale = (0, 2, 4, 5, 7, 9, 11) if mode == "major" else (0, 2, 3, 5, 7, 8, 10)
    base = 60 + (tonic % 12) - (12 if tonic % 12 > 6 else 0)
    out = []
    n_chords = max(1, round(seconds / chord_seconds))
    for i in range(n_chords):
        chord = prog[i % len(prog)]
        y = sum(_note(base + c, chord_seconds, sr, timbre) for c in chord)
        y = y + 0.8 * _note(base + chord[0] - 12, chord_seconds, sr, timbre)
        y = y + 0.5 * _note(base + 12 + scale[int(rng.integers(len(scale)))], chord_seconds, sr, timbre)
        out.append(np.asarray(y, dtype=np.float32))
    y = np.concatenate(out)
    return (0.25 * y / max(1e-9, float(np.abs(y).max()))).astype(np.float32)


def modulating(seconds: float = 30.0, *, sr: int = SR, timbre: str = "organ") -> np.ndarray:
    """A cadence that moves round the circle of fifths through all twelve major keys: no single key."""
    per = seconds / 12
    return np.concatenate([chord_progression((7 * k) % 12, "major", per, timbre=timbre, sr=sr, chord_seconds=per / 4)
                           for k in range(12)])  # fmt: skip


def atonal(seconds: float = 30.0, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Twelve-tone rows (each pitch class once per row) in random octaves, steady eighths at no fixed tempo."""
    rng = np.random.default_rng(seed)
    out, total = [], 0
    while total < seconds * sr:
        for pc in rng.permutation(12):
            d = float(rng.uniform(0.12, 0.5))
            out.append(0.2 * _note(48 + pc + 12 * int(rng.integers(0, 3)), d, sr, "piano"))
            total += out[-1].size
    return np.concatenate(out)[: int(seconds * sr)]


def rubato(seconds: float = 30.0, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Soft piano notes of C major at irregular times (0.3-1.6 s apart): tonal, but no steady beat."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    t = 0.0
    while t < seconds - 0.1:
        note = _note(60 + int(rng.choice([0, 4, 7, 12, 2, 5, 9, -5])), 1.5, sr, "piano")
        s = int(t * sr)
        seg = note[: y.size - s]
        y[s : s + seg.size] += 0.2 * seg
        t += float(rng.uniform(0.3, 1.6))
    return y


def ambient(seconds: float = 30.0, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A slowly swelling drone of noise bands: no onsets, no beat."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    noise = rng.standard_normal(n).astype(np.float32)
    spec = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spec *= np.exp(-0.5 * ((freqs - 300) / 120) ** 2) + 0.5 * np.exp(-0.5 * ((freqs - 1200) / 300) ** 2)
    y = np.fft.irfft(spec, n).astype(np.float32)
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * np.arange(n) / sr / 11.0)
    return (0.2 * y / max(1e-9, float(np.abs(y).max())) * swell).astype(np.float32)


def speech_like(seconds: float = 30.0, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A vowel-like voice (glottal pulse train through formant resonances, gliding pitch) in syllables of random
    length separated by pauses: the rhythm of speech, no musical beat or key."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    t = 0.0
    formants = ((700, 1220), (300, 2300), (500, 900), (400, 2000), (600, 1700))
    while t < seconds - 0.5:
        d = float(rng.uniform(0.08, 0.35))
        n = int(d * sr)
        f0 = 110 + 40 * rng.random() + 30 * np.sin(np.linspace(0, np.pi, n))
        phase = np.cumsum(f0 / sr)
        src = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(np.float32)
        f1, f2 = formants[int(rng.integers(len(formants)))]
        tt = np.arange(64) / sr
        ir = np.exp(-tt * 400) * (np.sin(2 * np.pi * f1 * tt) + 0.5 * np.sin(2 * np.pi * f2 * tt))
        syl = np.convolve(src, ir)[:n] * np.hanning(n)
        s = int(t * sr)
        seg = syl[: y.size - s]
        y[s : s + seg.size] += seg.astype(np.float32)
        t += d + (float(rng.uniform(0.02, 0.15)) if rng.random() < 0.7 else float(rng.uniform(0.3, 0.9)))
    return (0.3 * y / max(1e-9, float(np.abs(y).max()))).astype(np.float32)


def white_noise(seconds: float = 30.0, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


HARD_INPUTS = {
    "silence": lambda: np.zeros(30 * SR, dtype=np.float32),
    "2-second file": lambda: chord_progression(0, "major", 2.0, chord_seconds=0.5) + drum_pattern(120, 2.0),
    "white noise": white_noise,
    "speech-like": speech_like,
    "ambient drone": ambient,
    "rubato piano": rubato,
    "atonal (12-tone rows)": atonal,
    "modulating (12 keys)": modulating,
}
"""Inputs that have no tempo and/or no key: name -> generator of a mono SR signal."""
