"""Tempo in BPM with a confidence, from the onset envelope the analysis pass already computes.

Method (``estimate_tempo``):

1. the onset envelope (librosa onset strength, 43.07 frames/s) minus its 1-s moving average, so that only the
   pulsation is left;
2. its autocorrelation (one FFT), unbiased (each lag divided by its overlap) and normalised to 1 at lag 0;
3. a comb score for every candidate tempo on a 0.5-BPM grid in 40-240 BPM: the mean autocorrelation at the
   beat period and its 2nd, 3rd and 4th multiples (so a tempo is supported by the whole pulse train, not one
   peak);
4. stage 1, the pulse family: the candidate maximising comb x Fourier magnitude of the envelope at that tempo
   x a log-normal prior (centred on 120 BPM, 1 octave).  The autocorrelation peaks at the beat period and its
   multiples (tempi T, T/2, T/3), the Fourier transform at the beat rate and its harmonics (T, 2T, 3T): only
   the true tempo and its octaves are strong in both, which removes the 2/3 and 3/2 confusions of either
   alone.  Stage 2, the octave: among half, the same and double that tempo, the one with the best comb x
   prior.  The answer is refined to a fraction of a frame: the autocorrelation peak near each multiple of the
   period is located by parabolic interpolation and the period is their least-squares fit (so the estimate
   is not quantised to the frame grid, 4.7 % wide at 120 BPM);
5. confidence = the comb score of the answer (the mean normalised autocorrelation at its beat multiples, in
   [0, 1]): a click track scores ~1, steady music 0.2-0.6, speech, noise and rubato ~0.  Below
   ``MIN_CONFIDENCE`` the tempo is None (unknown); shorter than ``MIN_SECONDS`` of envelope it is None too.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import uniform_filter1d

from ._checks import as_array, positive

MIN_BPM: float = 40.0
MAX_BPM: float = 240.0
BPM_STEP: float = 0.5
PRIOR_BPM: float = 120.0
PRIOR_OCTAVES: float = 1.0
N_MULTIPLES: int = 4
MIN_SECONDS: float = 6.0
"""Less onset envelope than this (a 2-second file) has no tempo: four periods of a 40-BPM beat do not fit."""
MIN_CONFIDENCE: float = 0.12
"""Below this comb score the tempo is reported as None (see docs/features.md, "Descriptors", for the measured
scores of music, speech, noise and rubato)."""
TEMPO_VERSION: int = 1
"""Bump whenever the estimate would change for the same input."""


@dataclass(frozen=True)
class TempoEstimate:
    """``bpm`` is None when the signal has no steady beat (confidence below ``MIN_CONFIDENCE``, or too short)."""

    bpm: float | None
    confidence: float  # in [0, 1]
    candidate_bpm: float | None = None  # the best candidate even when it is not confident enough to report


@functools.lru_cache(maxsize=8)
def _grid(frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
    bpm = np.arange(MIN_BPM, MAX_BPM + BPM_STEP / 2, BPM_STEP)
    prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    return bpm, prior


def _autocorrelation(o: np.ndarray, max_lag: int) -> np.ndarray:
    n = o.size
    nfft = scipy.fft.next_fast_len(2 * n)
    spec = scipy.fft.rfft(o, nfft)
    acf = scipy.fft.irfft(spec.real**2 + spec.imag**2, nfft)[: max_lag + 1]
    acf /= n - np.arange(max_lag + 1)  # unbiased: each lag over its overlap
    return acf / acf[0]


def _nearest(bpm: np.ndarray, value: float) -> int | None:
    if not (bpm[0] - BPM_STEP <= value <= bpm[-1] + BPM_STEP):
        return None
    return int(np.argmin(np.abs(bpm - value)))


def _pulse_spectrum(o: np.ndarray, fr: float, bpm: np.ndarray) -> np.ndarray:
    """Magnitude of the envelope's Fourier transform at each candidate tempo, normalised to max 1 (Hann window,
    zero-padded to a resolution finer than the BPM grid)."""
    nfft = scipy.fft.next_fast_len(max(8 * o.size, int(4 * 60 * fr / BPM_STEP)))
    mag = np.abs(scipy.fft.rfft(o * np.hanning(o.size), nfft))
    hz = np.arange(mag.size) * fr / nfft
    m = np.interp(bpm / 60.0, hz, mag)
    return m / max(float(m.max()), 1e-12)


def _refine(acf: np.ndarray, period: float, k_max: int) -> float:
    """Least-squares period through the parabolic-interpolated ACF peaks near k * period, k = 1..k_max."""
    ks, peaks = [], []
    for k in range(1, k_max + 1):
        centre = k * period
        half = max(1.0, 0.08 * centre)
        lo, hi = math.floor(centre - half), math.ceil(centre + half)
        if lo < 1 or hi >= acf.size - 1:
            break
        i = lo + int(np.argmax(acf[lo : hi + 1]))
        if i <= lo or i >= hi:  # no peak inside the search range (edge maximum)
            continue
        a, b, c = acf[i - 1], acf[i], acf[i + 1]
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if den < 0 else 0.0
        ks.append(k)
        peaks.append(i + float(np.clip(shift, -0.5, 0.5)))
    if not ks:
        return period
    k_arr, p_arr = np.asarray(ks, dtype=np.float64), np.asarray(peaks)
    return float(np.dot(k_arr, p_arr) / np.dot(k_arr, k_arr))


def estimate_tempo(onset_envelope: np.ndarray, frame_rate: float = 22050 / 512) -> TempoEstimate:
    """Tempo of an onset envelope (``inputs.onset_envelope``: frames at ``frame_rate`` per second).

    Needs only the envelope the pass computes for the 43-feature ``tempo`` (a (T,) array, 1292 frames for
    30 s); costs ~1 ms.  Raises ``InvalidArgumentError`` for a non-1-d / non-finite envelope or a bad rate.
    """
    fr = positive(frame_rate, "frame_rate", hi=10_000.0)
    o = as_array(onset_envelope, "onset_envelope", ndim=1)
    if o.size < MIN_SECONDS * fr:
        return TempoEstimate(None, 0.0)
    o = o - uniform_filter1d(o, size=max(3, round(fr)), mode="nearest")
    if not np.any(np.abs(o) > 1e-9):  # silence or a constant envelope: nothing pulses
        return TempoEstimate(None, 0.0)
    bpm, prior = _grid(fr)
    lags = 60.0 * fr / bpm
    max_lag = min(o.size // 2, math.ceil(N_MULTIPLES * lags.max()) + 2)
    acf = _autocorrelation(o, max_lag)
    grid = np.arange(acf.size, dtype=np.float64)
    on = np.zeros_like(bpm)
    count = np.zeros_like(bpm)
    for k in range(1, N_MULTIPLES + 1):
        ok = k * lags < max_lag
        on[ok] += np.interp(k * lags[ok], grid, acf)
        count[ok] += 1
    count[count == 0] = 1
    comb = on / count
    # stage 1, the pulse family: autocorrelation comb x Fourier magnitude x prior
    i = int(np.argmax(np.maximum(comb, 0.0) * _pulse_spectrum(o, fr, bpm) * prior))
    # stage 2, the octave: half, same or double tempo by comb x prior
    octaves = [j for j in (_nearest(bpm, bpm[i] / 2), i, _nearest(bpm, bpm[i] * 2)) if j is not None]
    i = max(octaves, key=lambda j: max(float(comb[j]), 0.0) * float(prior[j]))
    period = _refine(acf, float(lags[i]), N_MULTIPLES)
    best = 60.0 * fr / period if period > 0 else float(bpm[i])
    if not (MIN_BPM * 0.96 <= best <= MAX_BPM * 1.04):
        best = float(bpm[i])
    conf = float(np.clip(comb[i], 0.0, 1.0))
    if conf < MIN_CONFIDENCE:
        return TempoEstimate(None, conf, round(best, 2))
    return TempoEstimate(round(best, 2), conf, round(best, 2))


__all__ = ["MAX_BPM", "MIN_BPM", "MIN_CONFIDENCE", "TEMPO_VERSION", "TempoEstimate", "estimate_tempo"]
