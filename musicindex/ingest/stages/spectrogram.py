"""Stage ``spectrogram``: the 96-band log-mel spectrogram of the analysis window (the CNN's input;
``audio.spectrogram``), from the features' STFT when that stage ran (else its own), stored compact (uint8 + zlib)
in ``spectrograms``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlalchemy.orm import Session

from musicindex import audio
from musicindex.audio.spectrogram import SPECTROGRAM_VERSION
from musicindex.audio.spectrogram import encode as encode_spectrogram
from musicindex.db.orm import Spectrogram
from musicindex.db.upsert import upsert
from musicindex.ingest.stages.base import Needs, Stage, TrackWork
from musicindex.ingest.stages.features import POWER, WINDOW_22K


class SpectrogramStage(Stage):
    name = "spectrogram"
    version = SPECTROGRAM_VERSION
    needs = Needs(audio=(WINDOW_22K,))
    writes = "spectrograms: version, n_mels, n_frames, data (uint8 codes, zlib)"

    def analyse(self, work: TrackWork) -> np.ndarray:
        power = work.scratch.get(POWER)
        if power is not None:  # the features' STFT: only the 96-band filter bank and the log are extra
            return audio.logmel_from_power(power)
        return audio.compute_logmel(work.audio.get(WINDOW_22K))

    def write(self, s: Session, rows: Sequence[tuple[int, Any]]) -> None:
        values = [spectrogram_row(tid, self.version, logmel) for tid, logmel in rows]
        upsert(s, Spectrogram, values, keys=("track_id",), update=("version", "n_mels", "n_frames", "data"),
               also_set={"computed_at": func.now()})  # fmt: skip


def spectrogram_row(track_id: int, version: int, logmel: np.ndarray) -> dict[str, Any]:
    """A ``spectrograms`` row: the compact encoding of the log-mel spectrogram."""
    n_mels, n_frames = logmel.shape
    return {"track_id": track_id, "version": version, "n_mels": n_mels, "n_frames": n_frames,
            "data": encode_spectrogram(logmel)}  # fmt: skip


STAGE = SpectrogramStage()
