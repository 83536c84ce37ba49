"""Stage ``features``: the 43 features of the analysis window (22 050 Hz mono; ``audio.features``), checked finite,
into ``track_features`` (named columns and a ``vector(43)``). Its STFT power spectrum stays in the track's scratch
for the spectrogram stage (one STFT for both)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlalchemy.orm import Session

from musicindex import audio
from musicindex.audio.features import FEATURES_VERSION
from musicindex.audio.window import SAMPLE_RATE
from musicindex.db.orm import TrackFeatures
from musicindex.db.upsert import upsert
from musicindex.errors import AudioError
from musicindex.ingest.stages.base import Audio, Needs, Stage, TrackWork
from musicindex.vocab import FEATURE_NAMES

WINDOW_22K = Audio(SAMPLE_RATE)
POWER = "stft_power"
"""Scratch key of the window's STFT power spectrum (time-major), for the stages after this one."""
SPECTRA = "spectra"
"""Scratch key of the window's whole ``audio.features.Spectra`` (the descriptors read its envelope and chroma)."""
SHARED = "features_shared"
"""Scratch key of what the features computed that the descriptors reuse (``tuning``, ``onset_envelope``)."""


class FeaturesStage(Stage):
    name = "features"
    version = FEATURES_VERSION
    needs = Needs(audio=(WINDOW_22K,))
    writes = "track_features: version, the 43 named columns, vec vector(43)"

    def analyse(self, work: TrackWork) -> np.ndarray:
        sp = audio.compute_spectra(work.audio.get(WINDOW_22K))
        work.scratch[POWER] = sp.power
        work.scratch[SPECTRA] = sp
        shared = work.scratch[SHARED] = {}
        features = np.asarray(audio.features_from_spectra(sp, shared), dtype=np.float64)
        if not np.isfinite(features).all():
            bad = [n for n, v in zip(FEATURE_NAMES, features, strict=True) if not np.isfinite(v)]
            raise AudioError(f"non-finite feature values (NaN or infinity): {', '.join(bad[:5])}")
        return features

    def write(self, s: Session, rows: Sequence[tuple[int, Any]]) -> None:
        values = [feature_row(tid, self.version, f) for tid, f in rows]
        upsert(s, TrackFeatures, values, keys=("track_id",), update=("version", "vec", *FEATURE_NAMES),
               also_set={"computed_at": func.now()})  # fmt: skip


def feature_row(track_id: int, version: int, features: np.ndarray) -> dict[str, Any]:
    """A ``track_features`` row: the 43 features as named columns and as one vector."""
    vec = np.asarray(features, dtype=np.float64)
    named = {name: float(v) for name, v in zip(FEATURE_NAMES, vec, strict=True)}
    return {"track_id": track_id, "version": version, "vec": vec.astype(np.float32), **named}


STAGE = FeaturesStage()
