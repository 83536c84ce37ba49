"""numba kernels of the descriptors: the peak chroma, the K-weighted segment energies and the block maxima of the
true peak, each one pass over its input (the numpy versions cost 10-20 ms a window in temporaries)."""

from __future__ import annotations

import math

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, fastmath=False)


_WEIGHTS = 1001  # entries of the cos^2 table over [-0.5, 0.5] semitone


def weight_table() -> np.ndarray:
    """cos^2(pi d / (4/3)) for d = -0.5 .. 0.5 semitone in 1000 steps (the pitch-class weight of a peak)."""
    d = np.linspace(-0.5, 0.5, _WEIGHTS)
    return np.cos(np.pi * d / (4.0 / 3.0)) ** 2


@_jit
def peak_chroma_kernel(power, lo, hi, floor_db, bin_hz, tuning, weights, step):  # pragma: no cover - compiled
    """(T, 12) chroma of the spectral peaks in bins [lo, hi) of a (T, F) power spectrogram (see key.peak_chroma).

    Every ``step``-th frame only (the others stay zero).  A peak's pitch is the pitch of its bin plus the
    parabolic shift (on the log power) times the pitch slope at that
    bin (first order: under 0.07 semitone off at bin 4, 50 Hz; under 0.01 from bin 10 up); its weight comes
    from a table: no transcendental function per peak (100+ peaks a frame)."""
    n_frames, n_bins = power.shape
    out = np.zeros((n_frames, 12))
    ratio = 10.0 ** (-floor_db / 10.0)  # on power
    pitch0 = np.empty(hi)
    slope = np.empty(hi)
    for f in range(1, hi):
        pitch0[f] = 12.0 * math.log2(f * bin_hz / 440.0) + 69.0 - tuning
        slope[f] = 12.0 / (math.log(2.0) * f)
    steps = weights.shape[0] - 1
    for t in range(0, n_frames, step):
        row = power[t]
        top = 0.0
        for f in range(n_bins):
            top = max(top, row[f])
        floor = top * ratio
        for f in range(lo, hi):
            p = row[f]
            if not (p > floor and p > row[f - 1] and p >= row[f + 1] and p > 0.0):
                continue
            b = math.sqrt(p)
            a = math.log(row[f - 1] + 1e-30)  # parabola through the log power (= 2 log magnitude: same shift)
            c = math.log(row[f + 1] + 1e-30)
            den = a - 2.0 * math.log(p + 1e-30) + c
            shift = 0.5 * (a - c) / den if den < 0.0 else 0.0
            shift = min(0.5, max(-0.5, shift))
            pitch = pitch0[f] + shift * slope[f]
            nearest = math.floor(pitch + 0.5)
            k = int((pitch - nearest + 0.5) * steps + 0.5)
            out[t, int(nearest) % 12] += weights[min(steps, max(0, k))] * b
    return out


@_jit
def k_weighted_segments(x, sos, hop, gains):  # pragma: no cover - compiled
    """Channel-weighted sums of squares of the K-weighted signal per ``hop``-sample segment ((ch, n) input; the
    last segment may be short): two biquads (direct form II transposed, float64 state) and the squares in one
    pass."""
    n_ch, n = x.shape
    n_seg = (n + hop - 1) // hop
    seg = np.zeros(n_seg)
    for ch in range(n_ch):
        b0, b1, b2, a1, a2 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
        c0, c1, c2, d1, d2 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
        s1 = s2 = r1 = r2 = 0.0
        g = gains[ch]
        row = x[ch]
        for i in range(n):
            v = float(row[i])
            y = b0 * v + s1
            s1 = b1 * v - a1 * y + s2
            s2 = b2 * v - a2 * y
            z = c0 * y + r1
            r1 = c1 * y - d1 * z + r2
            r2 = c2 * y - d2 * z
            seg[i // hop] += g * z * z
    return seg


@_jit
def block_maxima(x, lo, hi, block):  # pragma: no cover - compiled
    """(ch, nb) maxima of |x| over runs of ``block`` samples in [lo, lo + nb * block), nb = (hi - lo) // block;
    and the overall maximum of |x|."""
    n_ch, n = x.shape
    nb = max(0, (hi - lo) // block)
    out = np.zeros((n_ch, nb))
    top = 0.0
    for ch in range(n_ch):
        row = x[ch]
        for i in range(n):
            v = abs(float(row[i]))
            top = max(top, v)
        for k in range(nb):
            m = 0.0
            base = lo + k * block
            for j in range(block):
                v = abs(float(row[base + j]))
                m = max(m, v)
            out[ch, k] = m
    return out, top


@_jit
def interpolated_peak(row, centres, weights):  # pragma: no cover - compiled
    """max |x(c + p / factor)| over the centres c and phases p: ``weights`` (2 * half, factor) from the samples
    row[c - half + 1 .. c + half]."""
    taps, factor = weights.shape
    half = taps // 2
    top = 0.0
    for c in centres:
        base = c - half + 1
        for p in range(factor):
            acc = 0.0
            for j in range(taps):
                acc += weights[j, p] * row[base + j]
            top = max(top, abs(acc))
    return top
