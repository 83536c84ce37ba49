"""The straightforward per-feature librosa computation of the 43 features: the reference the fast extractor
(:mod:`musicindex.audio.features`) is checked against, and the baseline of the benchmarks. Not used by ingestion."""

from __future__ import annotations

import numpy as np

from .features import N_MFCC
from .window import HOP, N_FFT, SAMPLE_RATE, AnalysisWindow


def reference_features_from_signal(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Straightforward per-feature librosa computation of the 43 features of ``y``.

    Each feature recomputes its own STFT (as a per-feature script would).  Means and
    variances are accumulated in float64 (``np.mean(x, dtype=float64)``), otherwise
    float32 summation noise alone exceeds 1e-3 relative for the near-zero
    ``harmony_mean`` / ``perceptr_mean``.
    """
    import librosa

    y = np.ascontiguousarray(y, dtype=np.float32)

    def mv(x):
        x = np.asarray(x)
        return [float(np.mean(x, dtype=np.float64)), float(np.var(x, dtype=np.float64))]

    vals: list[float] = []
    vals += mv(librosa.feature.chroma_stft(y=y, sr=sr, n_fft=N_FFT, hop_length=HOP))
    vals += mv(librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP))
    vals += mv(librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=N_FFT, hop_length=HOP))
    vals += mv(librosa.feature.spectral_bandwidth(y=y, sr=sr, n_fft=N_FFT, hop_length=HOP))
    vals += mv(librosa.feature.spectral_rolloff(y=y, sr=sr, n_fft=N_FFT, hop_length=HOP))
    vals += mv(librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP))
    y_harm, y_perc = librosa.effects.hpss(y)
    vals += mv(y_harm)
    vals += mv(y_perc)
    vals.append(float(np.atleast_1d(librosa.feature.tempo(y=y, sr=sr, hop_length=HOP))[0]))
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC, n_fft=N_FFT, hop_length=HOP)
    for row in mfcc:
        vals += mv(row)
    return np.asarray(vals, dtype=np.float64)


def reference_features(path, window: AnalysisWindow | None = None) -> np.ndarray:
    """Reference: ``librosa.load`` of the analysis window (soxr_hq, mono) + per-feature librosa."""
    import librosa
    import soundfile as sf

    window = window or AnalysisWindow()
    info = sf.info(str(path))
    total = info.frames / info.samplerate
    start, length = window.bounds(total)
    y, sr = librosa.load(str(path), sr=SAMPLE_RATE, mono=True, offset=start, duration=length)
    return reference_features_from_signal(y, int(sr))


__all__ = ["reference_features", "reference_features_from_signal"]
