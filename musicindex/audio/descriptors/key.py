"""Key and mode ("A minor") with a confidence and a Camelot code, from the chroma the analysis pass computes.

Method (``estimate_key``): a profile-based key finder.

1. The chroma is the peak chroma of the pass's power spectrum (``peak_chroma``: spectral peaks 50-5000 Hz,
   each to its nearest pitch class at the estimated tuning); the key chroma is the sum over frames of its square
   root.
2. It is correlated (Pearson) with the 24 rotations of a major and a minor key profile: Temperley's
   (Kostka-Payne corpus, "Music and Probability", 2007); Krumhansl-Kessler's probe-tone ratings
   (1982) and a plain diatonic template (the baseline of ``benchmarks/descriptors.py``) are there to compare.
3. The best rotation is the key.  Confidence = its correlation r1, times its margin over the best key that is
   not its relative (the one a profile finder confuses most, and an acceptable neighbour anyway),
   ``min(1, (r1 - r2) / 0.1)``, times the clarity of the key chroma (its coefficient of variation mapped to
   [0, 1], ``CLARITY_FLOOR``): a flat chroma (noise, speech, atonal or constantly modulating music) has no key
   however well its small ripples correlate with a profile.  Below ``MIN_CONFIDENCE`` the key is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from ...errors import InvalidArgumentError
from ._checks import as_array, positive
from ._kernels import peak_chroma_kernel, weight_table

PITCH_CLASSES: Final = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Tonic names, index = pitch class (C = 0); spelled as key names are usually written."""
MAJOR, MINOR = "major", "minor"
MODES: Final = (MAJOR, MINOR)
_ALIASES: Final = {"Db": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10, "Cb": 11, "B#": 0, "E#": 5, "Fb": 4}

PROFILES: Final[dict[str, tuple[tuple[float, ...], tuple[float, ...]]]] = {
    # Temperley 2007 (Kostka-Payne corpus): probability of each scale degree in a segment, major / minor
    "temperley": (
        (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
        (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330),
    ),
    # Krumhansl & Kessler 1982: probe-tone ratings
    "krumhansl": (
        (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    ),
    # a plain template: the diatonic scale (natural minor), tonic triad weighted double
    "template": (
        (2, 0, 1, 0, 2, 1, 0, 2, 0, 1, 0, 1),
        (2, 0, 1, 2, 0, 1, 0, 2, 1, 0, 1, 0),
    ),
}
DEFAULT_PROFILE: Final = "krumhansl"
MIN_CONFIDENCE: float = 0.05
"""Below this the key is reported as None (docs/features.md, "Descriptors": scores of music vs noise/speech)."""
FMIN, FMAX = 50.0, 5000.0  # Hz: the peaks that count (bass notes to the top of most melodies)
PEAK_DB = 60.0  # a peak counts when within this of its frame's loudest bin
FRAME_STEP = 2  # every other frame (46 ms apart) is enough for a key and halves the cost; the others stay 0
MIN_SECONDS: float = 5.0
"""Less chroma than this (a 2-second file) has no key."""
_WEIGHTS = weight_table()
CLARITY_FLOOR, CLARITY_SPAN = 0.10, 0.15
"""The key chroma's coefficient of variation (std / mean) maps to a clarity in [0, 1]: <= 0.10 (noise 0.10,
speech 0.12, an ambient drone 0.06, twelve-tone rows 0.05, a piece through all twelve keys 0.01) is 0; >= 0.25
is 1 (rendered tonal music: 0.13-0.67, median 0.27)."""
KEY_VERSION: int = 1
"""Bump whenever the estimate would change for the same input."""


@dataclass(frozen=True)
class KeyEstimate:
    """``key`` ("A minor") is None when no key is confident enough; ``candidate`` is the best one anyway."""

    key: str | None
    confidence: float  # in [0, 1]
    candidate: str | None = None
    camelot: str | None = None  # of ``key``


def key_name(tonic: int, mode: str) -> str:
    return f"{PITCH_CLASSES[tonic % 12]} {mode}"


def parse_key(text: str) -> tuple[int, str]:
    """ "A minor" / "Am" / "F# major" / "Bb" -> (pitch class, mode); InvalidArgumentError lists what is accepted."""
    if not isinstance(text, str) or not text.strip() or len(text) > 16 or "\x00" in text:
        raise InvalidArgumentError(f"a key is a tonic and a mode such as 'A minor', 'F# major' or 'Am', got {text!r}")
    s = text.strip()
    parts = s.split()
    if len(parts) == 2 and parts[1].lower() in ("major", "maj", "minor", "min"):
        tonic_s, mode = parts[0], MINOR if parts[1].lower().startswith("min") else MAJOR
    elif len(parts) == 1:
        tonic_s, mode = (s[:-1], MINOR) if s.endswith("m") and len(s) > 1 else (s, MAJOR)
    else:
        tonic_s, mode = "", MAJOR
    tonic_s = tonic_s[:1].upper() + tonic_s[1:]
    names = {n: i for i, n in enumerate(PITCH_CLASSES)} | _ALIASES
    if tonic_s not in names:
        raise InvalidArgumentError(
            f"unknown key {text!r}: a tonic ({', '.join(PITCH_CLASSES)}, or a sharp/flat spelling such as 'Db', "
            f"'G#') and a mode ('major'/'minor', or 'm' for minor: 'Am')"
        )
    return names[tonic_s], mode


def camelot(key: str) -> str:
    """Camelot wheel code of a key: "C major" -> "8B", "A minor" -> "8A" (relative keys share a number)."""
    tonic, mode = parse_key(key)
    major_pc = tonic if mode == MAJOR else (tonic + 3) % 12
    number = (7 * major_pc + 7) % 12 + 1
    return f"{number}{'B' if mode == MAJOR else 'A'}"


def _templates(profile: str) -> np.ndarray:
    """(24, 12) z-scored profiles: rows 0-11 major keys C..B, 12-23 minor keys."""
    if profile not in PROFILES:
        raise InvalidArgumentError(f"unknown key profile {profile!r}; accepted: {', '.join(PROFILES)}")
    rows: list[np.ndarray] = []
    for base in PROFILES[profile]:
        p = np.asarray(base, dtype=np.float64)
        rows.extend(np.roll(p, k) for k in range(12))
    t = np.asarray(rows)
    t -= t.mean(axis=1, keepdims=True)
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def peak_chroma(power: np.ndarray, tuning: float = 0.0, *, sr: float = 22050.0, n_fft: int = 2048) -> np.ndarray:
    """(T, 12) chroma of the spectral peaks of a (T, F) power spectrogram (C first).

    Per frame, the local maxima of the magnitude between ``FMIN`` and ``FMAX`` that are within ``PEAK_DB`` of the
    frame's maximum; each peak's frequency is refined by parabolic interpolation of the magnitude, converted
    to a pitch (``tuning``: librosa's estimate, in fractions of a semitone) and adds its magnitude, weighted by
    ``cos^2(pi d / (4/3))`` of its distance ``d`` (semitones) to the nearest pitch class, to that class.  Only
    peaks count, so noise, drums and the spectral leakage of the 2048-point STFT (10.8 Hz bins) add little.
    """
    pw = as_array(power, "power", ndim=2, dtype=np.float32)
    if (pw < 0).any():
        raise InvalidArgumentError("power must be a non-negative (T, F) power spectrogram")
    if pw.shape[1] != n_fft // 2 + 1:
        raise InvalidArgumentError(f"power must have n_fft // 2 + 1 = {n_fft // 2 + 1} bins, got shape {pw.shape}")
    n_frames = pw.shape[0]
    lo = max(1, int(FMIN * n_fft / sr))
    hi = min(pw.shape[1] - 1, int(FMAX * n_fft / sr) + 1)
    if n_frames == 0 or hi - lo < 3:
        return np.zeros((n_frames, 12))
    return peak_chroma_kernel(
        np.ascontiguousarray(pw), lo, hi, PEAK_DB, sr / n_fft, float(tuning), _WEIGHTS, FRAME_STEP
    )


def key_chroma(chroma: np.ndarray) -> np.ndarray | None:
    """The (12,) key chroma of a (T, 12) chroma (or a (12,) one, used as is): the sum over frames of its
    square root (so that a few loud frames do not decide alone); None when it is all zero."""
    c = as_array(chroma, "chroma", ndim=(1, 2))
    if c.shape[-1] != 12:
        raise InvalidArgumentError(f"chroma must have 12 pitch classes in its last axis, got shape {c.shape}")
    if (c < 0).any():
        raise InvalidArgumentError("chroma must be non-negative (a power or magnitude chroma)")
    v = np.sqrt(c) if c.ndim == 1 else np.sqrt(c).sum(axis=0)
    return v if float(v.max(initial=0.0)) > 1e-12 else None


def estimate_key(chroma: np.ndarray, *, profile: str = DEFAULT_PROFILE, frame_rate: float = 22050 / 512) -> KeyEstimate:
    """Key of a (T, 12) chroma, C first (``inputs.chroma``: the peak chroma of the pass's power spectrum), or
    of a (12,) key chroma.

    Costs well under 1 ms for a 30-s window (1292 frames) once the chroma is there (the peak chroma itself:
    ~6 ms).  Raises ``InvalidArgumentError`` for a chroma that is not (T, 12) / (12,), negative or non-finite,
    or an unknown profile.
    """
    templates = _templates(profile)  # validates the profile before looking at the signal
    fr = positive(frame_rate, "frame_rate", hi=10_000.0)
    c = as_array(chroma, "chroma", ndim=(1, 2))
    if c.ndim == 2 and c.shape[0] < MIN_SECONDS * fr:
        return KeyEstimate(None, 0.0)
    v = key_chroma(c)
    if v is None:
        return KeyEstimate(None, 0.0)
    z = v - v.mean()
    r = templates @ (z / max(float(np.linalg.norm(z)), 1e-12))
    best = int(np.argmax(r))
    tonic, mode = best % 12, MAJOR if best < 12 else MINOR
    relative = (tonic + 9) % 12 + 12 if mode == MAJOR else (tonic + 3) % 12
    r1, r2 = float(r[best]), float(np.delete(r, [best, relative]).max())
    clarity = float(np.clip((v.std() / v.mean() - CLARITY_FLOOR) / CLARITY_SPAN, 0.0, 1.0))
    conf = float(np.clip(r1, 0.0, 1.0) * np.clip((r1 - r2) / 0.1, 0.0, 1.0) * clarity)
    name = key_name(tonic, mode)
    if conf < MIN_CONFIDENCE:
        return KeyEstimate(None, conf, name, None)
    return KeyEstimate(name, conf, name, camelot(name))


def mirex_score(estimated: str | None, reference: str) -> float:
    """MIREX key score: 1 same key, 0.5 a fifth away (same mode), 0.3 relative, 0.2 parallel, 0 otherwise/None."""
    if estimated is None:
        return 0.0
    et, em = parse_key(estimated)
    rt, rm = parse_key(reference)
    if (et, em) == (rt, rm):
        return 1.0
    if em == rm and (et - rt) % 12 in (5, 7):
        return 0.5
    if em != rm and ((em == MINOR and (et + 3) % 12 == rt) or (em == MAJOR and (rt + 3) % 12 == et)):
        return 0.3
    if et == rt and em != rm:
        return 0.2
    return 0.0


__all__ = [
    "DEFAULT_PROFILE",
    "KEY_VERSION",
    "MIN_CONFIDENCE",
    "MODES",
    "PITCH_CLASSES",
    "PROFILES",
    "KeyEstimate",
    "camelot",
    "estimate_key",
    "key_chroma",
    "key_name",
    "mirex_score",
    "parse_key",
]
