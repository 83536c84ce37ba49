"""The 43 features: names and order, the single home of the list.

Names follow the public GTZAN feature tables (``features_30_sec.csv``) so results can
be compared. How each is computed is documented in ``docs/features.md`` and in
``musicindex.audio.features``. Everything else (database columns, training, reports)
imports the list from here.
"""
from __future__ import annotations

_PAIRS = (
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    "harmony",
    "perceptr",
)

FEATURE_NAMES: tuple[str, ...] = (
    *(f"{base}_{stat}" for base in _PAIRS for stat in ("mean", "var")),
    "tempo",
    *(f"mfcc{i}_{stat}" for i in range(1, 14) for stat in ("mean", "var")),
)
N_FEATURES = len(FEATURE_NAMES)
assert N_FEATURES == 43, N_FEATURES
