"""All the descriptors of one track from what the analysis pass holds: the window's :class:`Spectra` (one STFT
for the features and the descriptors), its channel count, the 43 features and, when the track has them, its
musicnn tag probabilities.

Each descriptor is computed on its own: one that raises is logged and left None (its ``errors`` entry says why),
the others stand, so a descriptor's failure never fails the track. Loudness is measured on the pass's mono window
at 22 050 Hz, counted as played on two channels when the file has two or more (``playback_channels=2``): on the
70 real tracks of ``benchmarks/descriptors.py`` this is 1.76 LU off the full-track reference on average (ten
3-s pieces spread over the track would be 0.47 LU off, at the price of a second decode: docs/features.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..features import Spectra, compute_spectra
from ..window import SAMPLE_RATE
from . import inputs
from .inputs import FRAME_RATE
from .key import KEY_VERSION, MAJOR, MINOR, KeyEstimate, estimate_key
from .loudness import LOUDNESS_VERSION, Loudness, measure_loudness
from .mood import MOOD_VERSION, MoodScores, mood_scores
from .tempo import TEMPO_VERSION, TempoEstimate, estimate_tempo

log = logging.getLogger(__name__)

DESCRIPTORS_VERSION: int = TEMPO_VERSION + KEY_VERSION + LOUDNESS_VERSION + MOOD_VERSION - 3
"""The ``descriptors`` stage's version: goes up with any estimator's (each only ever goes up)."""


@dataclass(frozen=True)
class TrackDescriptors:
    tempo: TempoEstimate | None
    key: KeyEstimate | None
    loudness: Loudness | None
    errors: dict[str, str] = field(default_factory=dict)
    """Descriptor -> why it failed (it is None)."""


def _guard(name: str, errors: dict[str, str], fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except Exception as exc:  # a descriptor's failure leaves it unknown, never fails the track
        log.warning("descriptor %s failed: %s", name, exc, exc_info=True)
        errors[name] = f"{type(exc).__name__}: {exc}"
        return None


def describe(
    window: Spectra | np.ndarray,
    *,
    channels: int = 1,
    tuning: float | None = None,
    onset_envelope: np.ndarray | None = None,
) -> TrackDescriptors:
    """Tempo, key and loudness of the pass's window (its Spectra, or the mono float32 samples at 22 050 Hz);
    ``channels``: the file's channel count (the window is their downmix); ``tuning`` / ``onset_envelope``: the
    features' own (``features_from_spectra(sp, shared)``), else computed here exactly as the features do."""
    sp = window if isinstance(window, Spectra) else compute_spectra(window)
    errors: dict[str, str] = {}
    oenv = onset_envelope
    tempo = _guard("tempo", errors, lambda: estimate_tempo(oenv if oenv is not None else inputs.onset_envelope(sp),
                                                           FRAME_RATE))  # fmt: skip
    tun = tuning
    key = _guard("key", errors, lambda: estimate_key(inputs.chroma(sp, tun), frame_rate=FRAME_RATE))
    play = 2 if channels >= 2 else None
    loud = _guard("loudness", errors, lambda: measure_loudness(sp.y, SAMPLE_RATE, playback_channels=play))
    return TrackDescriptors(tempo, key, loud, errors)


def moods_of(d: TrackDescriptors, features: Any, tags: Mapping[str, float] | None) -> MoodScores | None:
    """Energy, danceability and named moods (``mood.mood_scores``) with the track's tags when they are the MSD
    musicnn ones (else from the features, tempo and key alone); None when that fails too (logged)."""
    errors: dict[str, str] = {}
    if tags is not None:
        got = _guard("mood", errors, mood_scores, features, tags, tempo=d.tempo, key=d.key)
        if got is not None:
            return got
    return _guard("mood", errors, mood_scores, features, None, tempo=d.tempo, key=d.key)


def columns(d: TrackDescriptors, mood: MoodScores | None) -> dict[str, Any]:
    """The ``track_descriptors`` columns (NULL for what is unknown)."""
    t, k, lo = d.tempo, d.key, d.loudness
    mode = None
    if k is not None and k.key is not None:
        mode = MINOR if k.key.endswith(MINOR) else MAJOR
    return {
        "tempo": t.bpm if t is not None else None,
        "tempo_confidence": round(t.confidence, 4) if t is not None else None,
        "key": k.key if k is not None else None,
        "mode": mode,
        "key_confidence": round(k.confidence, 4) if k is not None else None,
        "camelot": k.camelot if k is not None else None,
        "loudness": lo.integrated if lo is not None else None,
        "loudness_range": lo.loudness_range if lo is not None else None,
        "true_peak": lo.true_peak if lo is not None else None,
        "replay_gain": lo.replay_gain if lo is not None else None,
        "energy": mood.energy if mood is not None else None,
        "danceability": mood.danceability if mood is not None else None,
        "moods": list(mood.moods) if mood is not None else [],
    }


def warm_up() -> None:
    """Compile (or load from numba's cache) the descriptors' kernels: ~2 s cold per process, so workers pay it at
    start, not on their first track."""
    rng = np.random.default_rng(0)
    t = np.arange(8 * SAMPLE_RATE, dtype=np.float64) / SAMPLE_RATE
    y = 0.3 * np.sin(2 * np.pi * 440.0 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2
    describe((y + 0.01 * rng.standard_normal(t.size)).astype(np.float32), channels=2)


__all__ = ["DESCRIPTORS_VERSION", "TrackDescriptors", "columns", "describe", "moods_of", "warm_up"]
