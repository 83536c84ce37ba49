"""What the one analysis pass already computes and the descriptors reuse: the onset envelope, the power
spectrum and the tuning estimate.

The pass (``features.features_from_spectra``) computes both from the shared STFT of the analysis window;
these functions compute exactly the same arrays from a :class:`~musicindex.audio.features.Spectra` (or from a
signal), for callers that run a descriptor outside the pass (tests, benchmarks, a re-analysis of one
descriptor).  When the pass hands them over, the descriptors cost only their own few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features import Spectra, _tuning, compute_spectra
from ..window import HOP, N_FFT, SAMPLE_RATE
from .key import peak_chroma

FRAME_RATE: float = SAMPLE_RATE / HOP
"""Frames per second of the onset envelope and the chroma (22 050 / 512 = 43.07)."""


@dataclass(frozen=True)
class PassInputs:
    """The intermediates of the pass that the descriptors read (all over the analysis window)."""

    onset_envelope: np.ndarray  # (T,) float32: librosa onset strength of the 128-band log-mel, as ``tempo`` uses
    chroma: np.ndarray  # (T, 12): the peak chroma ``key.peak_chroma`` of the pass's power spectrum at its tuning
    tuning: float  # librosa's tuning estimate (fractions of a semitone), as ``chroma_stft`` uses
    rms: float  # RMS of the window (full scale 1.0)


def onset_envelope(sp: Spectra) -> np.ndarray:
    """``librosa.onset.onset_strength(S=mel_db)``: the envelope the 43-feature ``tempo`` reads (FRAME_RATE)."""
    import librosa

    return librosa.onset.onset_strength(S=sp.mel_db, sr=SAMPLE_RATE, hop_length=HOP, n_fft=N_FFT).astype(np.float32)


def tuning(sp: Spectra) -> float:
    """The tuning ``chroma_stft_*`` uses (``librosa.estimate_tuning`` on the power spectrum, 0.01 resolution)."""
    return round(_tuning(sp.power), 2)


def chroma(sp: Spectra, tuning_: float | None = None) -> np.ndarray:
    """The (T, 12) peak chroma ``estimate_key`` reads, from the pass's power spectrum and tuning."""
    return peak_chroma(sp.power, tuning(sp) if tuning_ is None else tuning_, sr=SAMPLE_RATE, n_fft=N_FFT)


def pass_inputs(y_or_spectra: np.ndarray | Spectra) -> PassInputs:
    """The onset envelope, chroma and RMS of a mono float32 window at SAMPLE_RATE (or of its Spectra)."""
    sp = y_or_spectra if isinstance(y_or_spectra, Spectra) else compute_spectra(y_or_spectra)
    rms = float(np.sqrt(np.mean(np.square(sp.y, dtype=np.float64)))) if sp.y.size else 0.0
    tun = tuning(sp)
    return PassInputs(onset_envelope=onset_envelope(sp), chroma=chroma(sp, tun), tuning=tun, rms=rms)


__all__ = ["FRAME_RATE", "PassInputs", "chroma", "onset_envelope", "pass_inputs", "tuning"]
