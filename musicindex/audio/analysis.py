"""One pass over a window: the 43 features and the CNN log-mel spectrogram from one shared STFT."""

from __future__ import annotations

import numpy as np

from .features import compute_spectra, features_from_spectra
from .spectrogram import compute_logmel, logmel_from_power


def analyse(
    y: np.ndarray, *, features: bool = True, spectrogram: bool = True
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return ``(features (43,) float64, logmel (N_MELS, n_frames) float32)`` of a mono window at SAMPLE_RATE.

    One STFT serves both: the spectrogram is the 96-band log-mel of the feature power spectrum.
    ``features=False`` / ``spectrogram=False`` skip that extractor (its slot is None), so a
    re-analysis after one extractor's version changed runs only that extractor.
    """
    if not features:
        return None, (compute_logmel(y) if spectrogram else None)
    sp = compute_spectra(y)
    return features_from_spectra(sp), (logmel_from_power(sp.power) if spectrogram else None)


__all__ = ["analyse"]
