"""Energy, danceability and mood scores in [0, 1] from the musicnn tags and the 43 features, and named moods.

Every score is a weighted mean of a few cues, each mapped to [0, 1] by a logistic ``s(x; mid, width) =
1 / (1 + exp(-(x - mid) / width))`` so that one extreme cue cannot saturate a score.  The cues:

* ``loud``   = s(20 log10 rms_mean; -20 dBFS, 4 dB)             -- level of the window
* ``bright`` = s(spectral_centroid_mean; 2000 Hz, 600 Hz)        -- treble
* ``perc``   = s(perceptr_var / (harmony_var + perceptr_var); 0.25, 0.08)  -- percussive share of the signal
* ``beat``   = the tempo confidence (0 when there is no tempo)    -- steadiness of the pulse
* ``tempo_fit`` = exp(-0.5 (log2(bpm / 118) / 0.35)^2)           -- closeness to the dance range (~90-150 BPM)
* ``major``  = 1 for a major key, 0 for a minor one, 0.5 unknown; weighted by the key confidence
* tag groups (MSD musicnn tags; a group's value is its members' largest probability, scaled by 1 / 0.5 and
  capped at 1, since musicnn probabilities of a fitting tag are typically 0.2-0.6):
  ``t_energy`` (metal, heavy metal, hard rock, punk, rock, electronic, electro, dance, House),
  ``t_calm`` (Mellow, chill, chillout, ambient, easy listening, acoustic, beautiful),
  ``t_dance`` (dance, House, electronic, electro, party, Hip-Hop, funk, rnb, catchy),
  ``t_happy`` (happy, party, catchy, pop), ``t_sad`` (sad, Mellow, beautiful),
  ``t_aggr`` (metal, heavy metal, hard rock, punk).

Scores (without tags, the tag terms drop out and the other weights are rescaled to sum to 1):

==============  =======================================================================
energy          0.30 loud + 0.20 bright + 0.20 perc + 0.30 t_energy(1 - t_calm)
danceability    0.30 beat + 0.20 tempo_fit + 0.15 perc + 0.35 t_dance
calm            0.35 (1 - energy) + 0.15 (1 - perc) + 0.50 t_calm
energetic       energy
happy           0.25 major + 0.15 tempo_fit + 0.15 energy + 0.45 t_happy
sad             0.25 (1 - major) + 0.15 (1 - energy) + 0.15 (1 - tempo_fit) + 0.45 t_sad
aggressive      0.40 energy + 0.15 bright + 0.45 t_aggr
danceable       danceability
==============  =======================================================================

A named mood applies when its score reaches ``MOOD_THRESHOLD`` (0.6); ``energetic`` and ``calm`` exclude each
other by construction only in most cases, so both can be absent.  These formulas are hand-set from the cues'
meaning, not fitted: no mood annotations were available to fit or check them (docs/features.md says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from ...errors import InvalidArgumentError
from ...vocab import FEATURE_NAMES, MOODS
from .key import MAJOR, KeyEstimate, parse_key
from .tempo import TempoEstimate

MOOD_THRESHOLD: float = 0.6
"""A mood is named when its score is at least this."""
TAG_SCALE: float = 0.5
MOOD_VERSION: int = 1
"""Bump whenever a score would change for the same input."""

TAG_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "t_energy": ("metal", "heavy metal", "hard rock", "punk", "rock", "electronic", "electro", "dance", "House"),
    "t_calm": ("Mellow", "chill", "chillout", "ambient", "easy listening", "acoustic", "beautiful"),
    "t_dance": ("dance", "House", "electronic", "electro", "party", "Hip-Hop", "funk", "rnb", "catchy"),
    "t_happy": ("happy", "party", "catchy", "pop"),
    "t_sad": ("sad", "Mellow", "beautiful"),
    "t_aggr": ("metal", "heavy metal", "hard rock", "punk"),
}
USED_TAGS: Final = tuple(sorted({t for group in TAG_GROUPS.values() for t in group}))
_FEATURES_USED = ("rms_mean", "spectral_centroid_mean", "harmony_var", "perceptr_var")


@dataclass(frozen=True)
class MoodScores:
    energy: float
    danceability: float
    scores: dict[str, float]  # every name of MOODS -> [0, 1]
    moods: tuple[str, ...]  # the names whose score >= MOOD_THRESHOLD, highest first


def _s(x: float, mid: float, width: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, (x - mid) / width))))


def _features(features: Mapping[str, float] | Sequence[float] | np.ndarray) -> dict[str, float]:
    if isinstance(features, Mapping):
        missing = [n for n in _FEATURES_USED if n not in features]
        if missing:
            raise InvalidArgumentError(f"features lack {', '.join(missing)} (the 43 FEATURE_NAMES are expected)")
        vals = {n: features[n] for n in _FEATURES_USED}
    else:
        arr = np.asarray(features, dtype=np.float64)
        if arr.shape != (len(FEATURE_NAMES),):
            raise InvalidArgumentError(
                f"features must be the {len(FEATURE_NAMES)} values in FEATURE_NAMES order or a name -> value "
                f"mapping, got shape {arr.shape}"
            )
        vals = {n: float(arr[FEATURE_NAMES.index(n)]) for n in _FEATURES_USED}
    out = {}
    for n, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            raise InvalidArgumentError(f"feature {n} must be a finite number, got {v!r}")
        out[n] = float(v)
    return out


def _tags(tags: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(tags, Mapping):
        raise InvalidArgumentError("tags must be a mapping of musicnn (MSD) tag name -> probability")
    missing = [t for t in USED_TAGS if t not in tags]
    if missing:
        raise InvalidArgumentError(
            f"tags lack {', '.join(missing)}: pass the 50 MSD musicnn tag probabilities (musicindex.pretrained)"
        )
    groups = {}
    for name, members in TAG_GROUPS.items():
        vals = []
        for t in members:
            p = tags[t]
            if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p <= 1.0:
                raise InvalidArgumentError(f"tag probability {t!r} must be in [0, 1], got {p!r}")
            vals.append(float(p))
        groups[name] = min(1.0, max(vals) / TAG_SCALE)
    return groups


def _mix(parts: list[tuple[float, float, bool]]) -> float:
    """Weighted mean of (weight, value, is_tag_term); tag terms are dropped when there are no tags (value NaN)."""
    kept = [(w, v) for w, v, _ in parts if not math.isnan(v)]
    total = sum(w for w, _ in kept)
    return float(np.clip(sum(w * v for w, v in kept) / total, 0.0, 1.0)) if total else 0.0


def mood_scores(
    features: Mapping[str, float] | Sequence[float] | np.ndarray,
    tags: Mapping[str, float] | None = None,
    *,
    tempo: TempoEstimate | None = None,
    key: KeyEstimate | None = None,
) -> MoodScores:
    """Energy, danceability and the mood scores of one track (formulas in this module's docstring).

    Needs: the 43 features (array in FEATURE_NAMES order, or a mapping), optionally the 50 MSD musicnn tag
    probabilities (name -> p), the tempo and key estimates of this package.  Pure arithmetic: ~20 us.
    """
    f = _features(features)
    nan = float("nan")
    g = _tags(tags) if tags is not None else dict.fromkeys(TAG_GROUPS, nan)
    if tempo is not None and not isinstance(tempo, TempoEstimate):
        raise InvalidArgumentError("tempo must be a TempoEstimate (estimate_tempo) or None")
    if key is not None and not isinstance(key, KeyEstimate):
        raise InvalidArgumentError("key must be a KeyEstimate (estimate_key) or None")

    loud = _s(20 * math.log10(max(f["rms_mean"], 1e-9)), -20.0, 4.0)
    bright = _s(f["spectral_centroid_mean"], 2000.0, 600.0)
    hv, pv = max(f["harmony_var"], 0.0), max(f["perceptr_var"], 0.0)
    perc = _s(pv / (hv + pv), 0.25, 0.08) if hv + pv > 0 else 0.0
    beat = tempo.confidence if tempo is not None and tempo.bpm is not None else 0.0
    bpm = tempo.bpm if tempo is not None else None
    tempo_fit = math.exp(-0.5 * (math.log2(bpm / 118.0) / 0.35) ** 2) if bpm else 0.0
    major = 0.5
    if key is not None and key.key is not None:
        sign = 1.0 if parse_key(key.key)[1] == MAJOR else -1.0
        major = 0.5 + 0.5 * sign * min(1.0, key.confidence / 0.5)
    t_en = g["t_energy"] * (1.0 - g["t_calm"]) if tags is not None else nan

    energy = _mix([(0.30, loud, False), (0.20, bright, False), (0.20, perc, False), (0.30, t_en, True)])
    dance = _mix([(0.30, beat, False), (0.20, tempo_fit, False), (0.15, perc, False), (0.35, g["t_dance"], True)])
    scores = {
        "calm": _mix([(0.35, 1 - energy, False), (0.15, 1 - perc, False), (0.50, g["t_calm"], True)]),
        "energetic": energy,
        "happy": _mix([(0.25, major, False), (0.15, tempo_fit, False), (0.15, energy, False),
                       (0.45, g["t_happy"], True)]),
        "sad": _mix([(0.25, 1 - major, False), (0.15, 1 - energy, False), (0.15, 1 - tempo_fit, False),
                     (0.45, g["t_sad"], True)]),
        "aggressive": _mix([(0.40, energy, False), (0.15, bright, False), (0.45, g["t_aggr"], True)]),
        "danceable": dance,
    }  # fmt: skip
    scores = {k: round(v, 4) for k, v in scores.items()}
    named = tuple(sorted((m for m in MOODS if scores[m] >= MOOD_THRESHOLD), key=lambda m: -scores[m]))
    return MoodScores(energy=round(energy, 4), danceability=round(dance, 4), scores=scores, moods=named)


def parse_mood(text: str) -> str:
    """A mood name as a filter takes it (case-insensitive); InvalidArgumentError lists the accepted ones."""
    if isinstance(text, str) and len(text) <= 32 and text.strip().lower() in MOODS:
        return text.strip().lower()
    raise InvalidArgumentError(f"unknown mood {text!r}; accepted: {', '.join(MOODS)}")


__all__ = ["MOODS", "MOOD_THRESHOLD", "MOOD_VERSION", "TAG_GROUPS", "MoodScores", "mood_scores", "parse_mood"]
