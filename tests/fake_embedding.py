"""A second embedding model, tiny and deterministic: everything the index needs of a model is in this file.

``MODEL`` reads the WHOLE track at 8 kHz (not the analysis window: the decoder's other span), takes a log spectrum
averaged over time in 24 bands, and projects it on fixed random directions: 12-d vectors and three "tags" (the
logistic of three more projections). It proves the seam (``tests/test_embedding_seam.py``), never quality.
Registered for every process with ``MUSICINDEX_EMBEDDING_MODELS=fake=tests.fake_embedding:MODEL``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from musicindex.errors import InvalidAudioError
from musicindex.pretrained.registry import EmbeddingModel
from musicindex.vocab import SPAN_TRACK

BANDS = 24
FRAME = 256


class RandomProjection(EmbeddingModel):
    name = "fake"
    sample_rate = 8000
    span = SPAN_TRACK
    dimension = 12
    tags = ("bright", "dark", "busy")
    extractor_version = 1

    def __init__(self) -> None:
        rng = np.random.default_rng(27)
        self._to_vector = rng.standard_normal((BANDS, self.dimension)).astype(np.float32)
        self._to_tags = rng.standard_normal((BANDS, len(self.tags))).astype(np.float32)

    def inputs(self, y: np.ndarray) -> np.ndarray:
        """The mean log power of the track in 24 bands (centred)."""
        n = len(y) // FRAME
        if n < 4:
            raise InvalidAudioError(f"too short for {self.name}: {len(y)} samples")
        frames = y[: n * FRAME].reshape(n, FRAME) * np.hanning(FRAME).astype(np.float32)
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        bands = np.array_split(np.arange(power.shape[1]), BANDS)
        logs = np.log10(1e-8 + np.stack([power[:, b].mean(axis=1) for b in bands], axis=1)).mean(axis=0)
        return (logs - logs.mean()).astype(np.float32)

    def embed_inputs(self, batch: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        x = np.stack([np.asarray(b, dtype=np.float32) for b in batch])
        return x @ self._to_vector, 1.0 / (1.0 + np.exp(-(x @ self._to_tags)))


MODEL = RandomProjection()
