"""Descriptors: tempo, key, loudness, energy/danceability/mood -- pure estimators that know no database.

What each needs (for the analysis stages that will call them inside the one pass):

=====================  ==================================================================  =================
function               input                                                               cost (one core)
=====================  ==================================================================  =================
``estimate_tempo``     the onset envelope the pass computes for the 43-feature ``tempo``   ~1.1 ms
                       ((T,) at 22 050 / 512 frames/s; ``inputs.onset_envelope``)
``estimate_key``       the (T, 12) peak chroma (``key.peak_chroma``) of the pass's power    ~6 ms
                       spectrum at the tuning ``chroma_stft`` estimates (``inputs.chroma``)
``measure_loudness``   samples (n,) or (n, ch) at any rate: the full track with its         ~6 ms (window)
                       channels (reference; 22 050 Hz is enough), 10 spread pieces, or
                       the pass's mono window (``playback_channels=2``: 1.8 LU off)
``album_gain``         the tracks' ``Loudness`` (their block energies: exact gating)       ~0.1 ms
``mood_scores``        the 43 features, the 50 MSD musicnn tag probabilities (optional),   ~0.2 ms
                       the tempo and key estimates
=====================  ==================================================================  =================

Every estimator answers None (with a low confidence) rather than a made-up value on silence, a too-short
signal, noise, speech, music without a steady beat or without a key; wrong arguments raise
``musicindex.errors.InvalidArgumentError`` saying what is accepted.  docs/features.md ("Descriptors") has the
methods, thresholds and the measured accuracy and cost.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .inputs import PassInputs, pass_inputs
    from .key import KeyEstimate, camelot, estimate_key, mirex_score, parse_key
    from .loudness import Loudness, album_gain, album_loudness, measure_loudness, replay_gain
    from .mood import MOODS, MoodScores, mood_scores, parse_mood
    from .tempo import TempoEstimate, estimate_tempo
    from .track import DESCRIPTORS_VERSION, TrackDescriptors, describe

_HOMES: dict[str, str] = {
    **dict.fromkeys(("PassInputs", "pass_inputs"), "inputs"),
    **dict.fromkeys(("KeyEstimate", "camelot", "estimate_key", "mirex_score", "parse_key"), "key"),
    **dict.fromkeys(("Loudness", "album_gain", "album_loudness", "measure_loudness", "replay_gain"), "loudness"),
    **dict.fromkeys(("MOODS", "MoodScores", "mood_scores", "parse_mood"), "mood"),
    **dict.fromkeys(("TempoEstimate", "estimate_tempo"), "tempo"),
    **dict.fromkeys(("DESCRIPTORS_VERSION", "TrackDescriptors", "describe"), "track"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DESCRIPTORS_VERSION",
    "MOODS",
    "KeyEstimate",
    "Loudness",
    "MoodScores",
    "PassInputs",
    "TempoEstimate",
    "TrackDescriptors",
    "album_gain",
    "album_loudness",
    "camelot",
    "describe",
    "estimate_key",
    "estimate_tempo",
    "measure_loudness",
    "mirex_score",
    "mood_scores",
    "parse_key",
    "parse_mood",
    "pass_inputs",
    "replay_gain",
]
