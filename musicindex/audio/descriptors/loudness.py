"""EBU R128 loudness: integrated loudness (ITU-R BS.1770-4), loudness range (EBU Tech 3342), true peak, and the
ReplayGain 2.0 track and album gains derived from them.

* K-weighting: the two biquads of BS.1770 designed for the signal's own rate by pyloudnorm's ``IIRfilter``
  (the same coefficients as ``pyloudnorm.Meter``), run with ``scipy.signal.sosfilt``;
* integrated loudness: 400-ms blocks every 100 ms, absolute gate -70 LUFS, relative gate -10 LU; the block
  energies come from one cumulative sum (pyloudnorm loops over blocks in Python: same values, ~50x slower);
* loudness range: 3-s short-term blocks every 100 ms, absolute gate -70 LUFS, relative gate -20 LU, the
  10th to 95th percentile spread;
* true peak: the largest sample magnitude after 4x (or more, to at least 176 kHz) band-limited interpolation
  (windowed sinc, 32 taps a phase) inside the 64 loudest runs of 64 samples within 6 dB of the sample peak:
  inter-sample peaks sit next to the largest samples, so the rest of the signal is not oversampled;
* ReplayGain 2.0: gain = -18 LUFS - integrated loudness (``REFERENCE_LUFS``); album gain from the gated blocks
  of all the album's tracks together (``album_loudness``), or, when a track carries no blocks, the documented
  approximation: the power mean of the tracks' integrated loudness weighted by their gated block counts.

``measure_loudness`` takes any extent, rate and channel count: the full track at the file's rate is the
reference; the analysis window (mono, 22 050 Hz) is an approximation whose error ``benchmarks/descriptors.py``
measures on real files (docs/features.md, "Descriptors").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import sosfilt

from ...errors import InvalidArgumentError
from ._checks import as_array, positive
from ._kernels import block_maxima, interpolated_peak, k_weighted_segments

REFERENCE_LUFS: float = -18.0
"""ReplayGain 2.0 reference level."""
ABSOLUTE_GATE: float = -70.0
RELATIVE_GATE: float = -10.0
LRA_RELATIVE_GATE: float = -20.0
BLOCK_S, STEP_S = 0.4, 0.1
SHORT_TERM_S = 3.0
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs (BS.1770-4)
TRUE_PEAK_BLOCKS = 64
TRUE_PEAK_HALF_TAPS = 16
LOUDNESS_VERSION: int = 1
"""Bump whenever a value would change for the same input."""


@dataclass(frozen=True)
class Loudness:
    """What ``measure_loudness`` found; None where the signal is too quiet (every block under -70 LUFS) or
    too short (under 400 ms for the integrated loudness, under 3 s for the range)."""

    integrated: float | None  # LUFS
    loudness_range: float | None  # LU
    true_peak: float | None  # dBTP
    sample_peak: float | None  # dBFS
    duration: float  # seconds measured
    block_energies: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))
    """Channel-weighted mean square of each 400-ms block (10 per second), for exact album gating."""

    @property
    def replay_gain(self) -> float | None:
        """ReplayGain 2.0 track gain in dB (-18 LUFS reference), None when there is no integrated loudness."""
        return replay_gain(self.integrated)


def replay_gain(integrated: float | None) -> float | None:
    return None if integrated is None else round(REFERENCE_LUFS - integrated, 2)


@functools.lru_cache(maxsize=16)
def k_weighting(rate: float) -> np.ndarray:
    """(2, 6) second-order sections of the BS.1770 K-weighting filter at ``rate`` (pyloudnorm's design)."""
    from pyloudnorm.iirfilter import IIRfilter

    shelf = IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, rate, "high_shelf")
    high_pass = IIRfilter(0.0, 0.5, 38.0, rate, "high_pass")
    rows = []
    for f in (shelf, high_pass):
        b, a = np.asarray(f.b, dtype=np.float64), np.asarray(f.a, dtype=np.float64)
        rows.append(np.concatenate([b / a[0], a / a[0]]))
    return np.asarray(rows)


def _loudness(z: np.ndarray | float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(z)


def _segment_energies(x: np.ndarray, rate: float) -> np.ndarray:
    """Channel-weighted sum of squares of the K-weighted ``x`` ((ch, n)) per 100-ms segment (the last may be
    short).

    Every block of BS.1770 and Tech 3342 is a run of whole segments when 100 ms is a whole number of samples
    (8, 16, 22.05, 32, 44.1, 48, 88.2, 96 kHz...): then one compiled pass filters, squares and sums; otherwise
    ``scipy.signal.sosfilt`` and segment k ends at sample ``int(k * 0.1 * rate)``.
    """
    ch, n = x.shape
    hop = STEP_S * rate
    gains = np.asarray(CHANNEL_GAINS[:ch], dtype=np.float64)
    if float(hop).is_integer():
        return k_weighted_segments(x, k_weighting(rate), int(hop), gains)
    weighted = sosfilt(k_weighting(rate), x, axis=-1)
    bounds = np.unique(np.minimum((np.arange(math.ceil(n / hop) + 1) * hop).astype(np.int64), n))
    cs = np.concatenate([np.zeros((ch, 1)), np.cumsum(np.square(weighted, dtype=np.float64), axis=-1)], axis=1)
    return (gains[:, None] * np.diff(cs[:, bounds], axis=1)).sum(axis=0)


def _blocks(seg: np.ndarray, rate: float, block_s: float, total: float) -> np.ndarray:
    """Mean square of each ``block_s`` block, one every 100 ms: round((T - Tg) / 0.1) + 1 blocks (pyloudnorm's
    count), block j = segments j .. j + Tg/0.1 - 1."""
    per = round(block_s / STEP_S)
    n_blocks = round((total - block_s) / STEP_S) + 1 if total >= block_s else 0
    if n_blocks < 1:
        return np.zeros(0)
    cs = np.concatenate([[0.0], np.cumsum(seg)])
    j = np.arange(n_blocks)
    return (cs[np.minimum(j + per, seg.size)] - cs[j]) / (block_s * rate)


def gated_loudness(z: np.ndarray) -> tuple[float | None, int]:
    """BS.1770-4 gating of block energies: (integrated LUFS or None, number of blocks kept)."""
    if z.size == 0:
        return None, 0
    lk = _loudness(z)
    above = z[lk >= ABSOLUTE_GATE]
    if above.size == 0:
        return None, 0
    gate = float(_loudness(above.mean())) + RELATIVE_GATE
    kept = z[(lk > gate) & (lk > ABSOLUTE_GATE)]
    if kept.size == 0:
        return None, 0
    return float(_loudness(kept.mean())), int(kept.size)


def _loudness_range(seg: np.ndarray, rate: float, total: float) -> float | None:
    st = _loudness(_blocks(seg, rate, SHORT_TERM_S, total))
    st = st[st >= ABSOLUTE_GATE]
    if st.size == 0:
        return None
    gate = 10 * math.log10(float(np.mean(10 ** (st / 10)))) + LRA_RELATIVE_GATE
    st = st[st >= gate]
    if st.size == 0:
        return None
    return float(np.percentile(st, 95) - np.percentile(st, 10))


@functools.lru_cache(maxsize=8)
def _interpolator(factor: int) -> np.ndarray:
    """(2 * HALF, factor) windowed-sinc weights: value at c + p / factor from x[c - HALF + 1 .. c + HALF]."""
    half = TRUE_PEAK_HALF_TAPS
    k = np.arange(-half + 1, half + 1)[:, None]
    frac = np.arange(factor)[None, :] / factor
    d = frac - k
    w = np.sinc(d) * (0.5 + 0.5 * np.cos(np.pi * d / (half + 1)))
    return w / w.sum(axis=0, keepdims=True)


def _peaks(x: np.ndarray, rate: float) -> tuple[float, float]:
    """(sample peak, true peak) of ``x`` ((ch, n)), linear.  True peak: the largest |value| of the band-limited
    signal; the samples around the loudest ``TRUE_PEAK_BLOCKS`` runs of 64 samples whose maximum is within 6 dB
    of the sample peak are interpolated."""
    factor = max(4, math.ceil(176_400 / rate))
    half = TRUE_PEAK_HALF_TAPS
    ch, n = x.shape
    lo, hi = half - 1, n - half - 1  # centres with a full interpolation window
    maxima, sample_peak = block_maxima(x, lo, max(lo, hi), 64)
    peak = float(sample_peak)
    if n < 2 * half + 2 or peak == 0.0:
        return peak, peak
    w = _interpolator(factor)
    for c in range(ch):
        block_max = maxima[c]
        cand = np.flatnonzero(block_max >= peak * 0.5)
        if cand.size > TRUE_PEAK_BLOCKS:
            cand = cand[np.argpartition(block_max[cand], cand.size - TRUE_PEAK_BLOCKS)[-TRUE_PEAK_BLOCKS:]]
        centres = (lo + cand[:, None] * 64 + np.arange(-1, 64)[None, :]).ravel().clip(lo, hi - 1)
        peak = max(peak, float(interpolated_peak(x[c], centres, w)))
    return float(sample_peak), peak


def measure_loudness(samples: np.ndarray, rate: float, *, playback_channels: int | None = None) -> Loudness:
    """Integrated loudness, loudness range and true peak of ``samples`` ((n,) mono or (n, ch), ch <= 5, in
    [-1, 1] full scale) at ``rate`` Hz.

    ``playback_channels=2`` with mono samples counts the signal as played on two channels (+3.01 dB): the
    convention for a stereo file's downmix (the pass's mono window) whose loudness is to be compared with the
    file's own. Costs ~6 ms for the 30-s window at 22 050 Hz; ~60 ms for a 4-minute stereo track at 44.1 kHz.
    """
    fs = positive(rate, "rate", lo=1000.0 - 1e-9, hi=768_000.0)
    x = as_array(samples, "samples", ndim=(1, 2), dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if not 1 <= x.shape[1] <= len(CHANNEL_GAINS):
        raise InvalidArgumentError(
            f"samples must be (n,) or (n, channels) with 1-{len(CHANNEL_GAINS)} channels "
            f"(L, R, C, Ls, Rs), got shape {x.shape}"
        )
    if playback_channels is not None and (
        isinstance(playback_channels, bool) or playback_channels not in (1, 2) or x.shape[1] != 1
    ):
        raise InvalidArgumentError("playback_channels is 1 or 2, and only for mono samples (a stereo downmix)")
    duration = x.shape[0] / fs
    xt = np.ascontiguousarray(x.T)  # (ch, n) float32
    peak_lin, tp = _peaks(xt, fs)
    sample_peak = 20 * math.log10(peak_lin) if peak_lin > 0 else None
    true_peak = 20 * math.log10(max(tp, peak_lin)) if peak_lin > 0 else None
    seg = _segment_energies(xt, fs)
    if playback_channels == 2:
        seg *= 2.0
    z = _blocks(seg, fs, BLOCK_S, duration)
    integrated, _ = gated_loudness(z)
    lra = _loudness_range(seg, fs, duration) if integrated is not None else None
    return Loudness(
        integrated=None if integrated is None else round(integrated, 3),
        loudness_range=None if lra is None else round(lra, 3),
        true_peak=None if true_peak is None else round(true_peak, 3),
        sample_peak=None if sample_peak is None else round(sample_peak, 3),
        duration=duration,
        block_energies=z.astype(np.float32),
    )


def album_loudness(tracks: Sequence[Loudness]) -> float | None:
    """Integrated loudness of an album (LUFS): BS.1770 gating over all the tracks' blocks together (exact, as
    the loudness of the concatenated tracks but for the blocks straddling two tracks); tracks without blocks
    (a stored summary) enter by the documented approximation: the power mean of their integrated loudness
    weighted by their duration."""
    if not isinstance(tracks, Sequence) or not all(isinstance(t, Loudness) for t in tracks):
        raise InvalidArgumentError("album_loudness takes a sequence of Loudness measurements (measure_loudness)")
    if not tracks:
        raise InvalidArgumentError("album_loudness needs at least one track")
    if all(t.block_energies.size for t in tracks):
        return gated_loudness(np.concatenate([t.block_energies.astype(np.float64) for t in tracks]))[0]
    known = [t for t in tracks if t.integrated is not None]
    if not known:
        return None
    w = np.asarray([t.duration for t in known])
    p = np.asarray([10 ** ((t.integrated + 0.691) / 10) for t in known if t.integrated is not None])
    return float(_loudness(float(np.dot(w, p) / w.sum())))


def album_gain(tracks: Sequence[Loudness]) -> float | None:
    """ReplayGain 2.0 album gain in dB: -18 LUFS - ``album_loudness(tracks)``."""
    return replay_gain(album_loudness(tracks))


__all__ = [
    "LOUDNESS_VERSION",
    "REFERENCE_LUFS",
    "Loudness",
    "album_gain",
    "album_loudness",
    "gated_loudness",
    "k_weighting",
    "measure_loudness",
    "replay_gain",
]
