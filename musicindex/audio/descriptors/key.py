"""Key and mode ("A minor") with a confidence and a Camelot code, from the chroma the analysis pass computes.

Method (``estimate_key``): a profile-based key finder.

1. Each frame of the (T, 12) power chroma is compressed (``log1p(100 x / max)``, so that a loud bass note does
   not drown the rest of the chord) and frames quieter than 40 dB under the loudest are dropped; the key chroma
   is the mean of the remaining frames.
2. It is correlated (Pearson) with the 24 rotations of a major and a minor key profile: Temperley's
   (Kostka-Payne corpus, "Music and Probability", 2007) by default; Krumhansl-Kessler's probe-tone ratings
   (1982) and a plain diatonic template (the baseline of ``benchmarks/descriptors.py``) are there to compare.
3. The best rotation is the key.  Confidence = its correlation times the margin over the best key that is not
   its relative (the one a profile finder confuses most, and an acceptable neighbour anyway), both in
   [0, 1]: ``conf = r1 * min(1, (r1 - r2') / 0.1)`` with r2' the best non-relative, non-identical rival.  A
   tonal piece scores 0.4-0.9; noise, speech, drums alone, atonal or strongly modulating music score low.
   Below ``MIN_CONFIDENCE`` the key is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from ...errors import InvalidArgumentError
from ._checks import as_array

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
DEFAULT_PROFILE: Final = "temperley"
MIN_CONFIDENCE: float = 0.15
"""Below this the key is reported as None (docs/features.md, "Descriptors": scores of music vs noise/speech)."""
FLOOR_DB: float = 40.0
COMPRESSION: float = 100.0
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
    """"A minor" / "Am" / "F# major" / "Bb" -> (pitch class, mode); InvalidArgumentError lists what is accepted."""
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
    rows = []
    for base in PROFILES[profile]:
        p = np.asarray(base, dtype=np.float64)
        rows.extend(np.roll(p, k) for k in range(12))
    t = np.asarray(rows)
    t -= t.mean(axis=1, keepdims=True)
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def key_chroma(chroma: np.ndarray) -> np.ndarray | None:
    """The (12,) key chroma of a (T, 12) chroma (or a (12,) one, used as is): compressed, quiet frames dropped."""
    c = as_array(chroma, "chroma", ndim=(1, 2))
    if c.shape[-1] != 12:
        raise InvalidArgumentError(f"chroma must have 12 pitch classes in its last axis, got shape {c.shape}")
    if (c < 0).any():
        raise InvalidArgumentError("chroma must be non-negative (a power or magnitude chroma)")
    if c.ndim == 1:
        return c if c.max(initial=0.0) > 0 else None
    energy = c.sum(axis=1)
    top = float(energy.max(initial=0.0))
    if top <= 1e-12:
        return None
    keep = energy >= top * 10 ** (-FLOOR_DB / 10)
    frames = c[keep] / c[keep].max(axis=1, keepdims=True)
    return np.log1p(COMPRESSION * frames).mean(axis=0)


def _correlations(v: np.ndarray, profile: str) -> np.ndarray:
    z = v - v.mean()
    norm = float(np.linalg.norm(z))
    if norm <= 1e-12:
        return np.zeros(24)
    return _templates(profile) @ (z / norm)


def estimate_key(chroma: np.ndarray, *, profile: str = DEFAULT_PROFILE) -> KeyEstimate:
    """Key of a (T, 12) power chroma, C first (``inputs.chroma``: what the pass computes for ``chroma_stft``).

    Costs well under 1 ms for a 30-s window (1292 frames).  Raises ``InvalidArgumentError`` for a chroma that is
    not (T, 12) / (12,), negative or non-finite, or an unknown profile.
    """
    templates_ok = _templates(profile)  # validate the profile before looking at the signal
    del templates_ok
    v = key_chroma(chroma)
    if v is None:
        return KeyEstimate(None, 0.0)
    r = _correlations(v, profile)
    best = int(np.argmax(r))
    tonic, mode = best % 12, MAJOR if best < 12 else MINOR
    relative = (tonic + 9) % 12 + 12 if mode == MAJOR else (tonic + 3) % 12
    rivals = np.delete(r, [best, relative])
    r1, r2 = float(r[best]), float(rivals.max())
    conf = float(np.clip(r1, 0.0, 1.0) * np.clip((r1 - r2) / 0.1, 0.0, 1.0))
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
