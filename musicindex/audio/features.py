"""The 43 audio features: their computation (names and order: ``musicindex.vocab.FEATURE_NAMES``).

``extract_features(y)`` is the production extractor: one STFT of the analysis
window feeds every spectral feature, the HPSS split, the MFCCs and the onset
envelope, and the costly parts are compiled with numba.  ``reference.reference_features``
is the straightforward per-feature librosa computation (one ``librosa.feature``
call per feature, ``librosa.effects.hpss``, ``librosa.feature.tempo``) that the
tests and ``benchmarks/extract.py`` compare against.

Exactness: the fast extractor computes *the same quantities* as the reference,
not approximations of them.  In particular the HPSS median filters (the 2 s of
the reference's CPU time) are exact running medians (a sorted 31-sample window
updated by one insertion/deletion per step, scipy's ``mode="reflect"`` edges),
so ``harmony_*`` and ``perceptr_*`` are not approximated; ``y_perc`` is taken as
``y - y_harm`` (HPSS soft masks with margin 1 sum to one, and the iSTFT is
linear, so this equals the reference's second iSTFT up to float32 rounding);
the chroma tuning estimate re-implements ``librosa.piptrack`` +
``librosa.estimate_tuning`` on the power spectrum with the same float32/float64
arithmetic; the tempo is ``librosa.feature.tempo`` on the same onset envelope.
Remaining differences are float rounding (different FFT/BLAS summation order,
float64 accumulation of means/variances): see docs/features.md for the
definitions, tolerances and measured errors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import scipy.fft

from ..vocab import FEATURE_NAMES, N_FEATURES
from .window import HOP, N_FFT, SAMPLE_RATE

N_MFCC = 13
N_MELS_FEATURES = (
    128  # librosa.feature.mfcc / onset_strength default (the CNN spectrogram has its own, spectrogram.N_MELS)
)
HPSS_KERNEL = 31  # librosa.decompose.hpss default kernel_size
TOP_DB = 80.0  # librosa.power_to_db default

FEATURES_VERSION = 1
"""Bump whenever any feature value would change for the same audio."""


# FEATURE_NAMES (the order ``features_from_spectra`` fills) is defined in musicindex.vocab

# --------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------
_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@_jit
def _reflect(i, n):
    # scipy.ndimage mode="reflect" (half-sample symmetric: d c b a | a b c d | d c b a)
    p = 2 * n
    i = i % p
    if i < 0:
        i += p
    if i >= n:
        i = p - 1 - i
    return i


_HALF = HPSS_KERNEL // 2
_I32_MIN = -2147483647
_I32_MAX = 2147483647


@numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def _median_step(a, b, old, new, p, q, w):
    """Slide every lane's sorted window by one: remove ``old``, insert ``new`` (a -> b).

    a, b: (K+2, w) sorted windows per lane with -inf/+inf sentinel rows 0 and K+1.
    Branch-free and written so that LLVM vectorises every inner loop over lanes:
    with p = rank of (a copy of) old and q = rank of new once old is removed,
    b[j] = a[j+1] for p <= j < q, a[j-1] for q < j <= p, new at q, a[j] elsewhere.
    """
    for col in range(w):
        p[col] = 0
        q[col] = 0
    for j in range(1, HPSS_KERNEL + 1):
        aj = a[j]
        for col in range(w):
            v = aj[col]
            p[col] += np.int32(1) if v < old[col] else np.int32(0)
            q[col] += np.int32(1) if v < new[col] else np.int32(0)
    for col in range(w):
        q[col] -= np.int32(1) if old[col] < new[col] else np.int32(0)
    for j in range(HPSS_KERNEL):
        jj = np.int32(j)
        aj = a[j + 1]
        up = a[j + 2]
        dn = a[j]
        bj = b[j + 1]
        for col in range(w):
            pl = p[col]
            ql = q[col]
            v = aj[col]
            u = up[col]
            d = dn[col]
            nw = new[col]
            c1 = (jj >= pl) & (jj < ql)
            c2 = (jj > ql) & (jj <= pl)
            v = u if c1 else v
            v = d if c2 else v
            v = nw if jj == ql else v
            bj[col] = v


@numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def _median_axis0_i32(x, out, chunk):
    """Exact running median (window HPSS_KERNEL, scipy ``mode="reflect"`` edges) along axis 0.

    ``x`` is the int32 view of a non-negative float32 array (same order as the floats);
    lanes are the columns, processed ``chunk`` at a time so that the windows stay in cache.
    """
    n, m = x.shape
    tmp = np.empty(HPSS_KERNEL, dtype=np.int32)
    for c0 in range(0, m, chunk):
        w = min(chunk, m - c0)
        A = np.empty((HPSS_KERNEL + 2, w), dtype=np.int32)
        B = np.empty((HPSS_KERNEL + 2, w), dtype=np.int32)
        p = np.empty(w, dtype=np.int32)
        q = np.empty(w, dtype=np.int32)
        for col in range(w):
            A[0, col] = _I32_MIN
            B[0, col] = _I32_MIN
            A[HPSS_KERNEL + 1, col] = _I32_MAX
            B[HPSS_KERNEL + 1, col] = _I32_MAX
            for j in range(HPSS_KERNEL):
                tmp[j] = x[_reflect(j - _HALF, n), c0 + col]
            tmp.sort()
            for j in range(HPSS_KERNEL):
                A[j + 1, col] = tmp[j]
        for col in range(w):
            out[0, c0 + col] = A[_HALF + 1, col]
        for i in range(1, n):
            xo = x[_reflect(i - 1 - _HALF, n), c0 : c0 + w]
            xn = x[_reflect(i + _HALF, n), c0 : c0 + w]
            if i % 2 == 1:
                _median_step(A, B, xo, xn, p, q, w)
                med = B[_HALF + 1]
            else:
                _median_step(B, A, xo, xn, p, q, w)
                med = A[_HALF + 1]
            orow = out[i, c0 : c0 + w]
            for col in range(w):
                orow[col] = med[col]


def median_filter_axis0(x: np.ndarray, chunk: int = 256) -> np.ndarray:
    """scipy.ndimage.median_filter(x, size=(31, 1), mode="reflect") for a non-negative float32 2-d x.

    Exact (the median of an odd window is one of its elements; ordering non-negative float32
    by their int32 bit patterns is the float order).  ~15x faster than scipy on one core:
    the sorted window of every lane is slid by a vectorised, branch-free remove/insert pass.
    """
    xi = np.ascontiguousarray(x, dtype=np.float32).view(np.int32)
    out = np.empty_like(xi)
    _median_axis0_i32(xi, out, chunk)
    return out.view(np.float32)


@_jit
def _hpss_apply(D, harm_tf, perc_tf, out):
    """out = D * softmask(H, P, power=2, split_zeros=True)  (librosa.decompose.hpss, margin=1); all (T, F).

    mask = H^2 / (H^2 + P^2) evaluated in float64 (librosa rescales by max(H, P) in float32 to
    avoid underflow; float64 needs no rescaling), 0.5 where both are below float32 tiny.
    """
    T, F = D.shape
    half = np.float32(0.5)
    for t in range(T):
        hr = harm_tf[t]
        pr = perc_tf[t]
        dr = D[t]
        orow = out[t]
        for f in range(F):
            H = np.float64(hr[f])
            P = np.float64(pr[f])
            Z = H if H > P else P
            bad = Z < 1.1754943508222875e-38
            a = H * H
            den = a + P * P
            den = np.float64(1.0) if bad else den
            m = np.float32(a / den)
            m = half if bad else m
            orow[f] = dr[f] * m


@_jit
def _overlap_add(frames, win, inv_wss, hop, n_out, start):
    """iSTFT overlap-add (librosa.istft, centred) of windowed frames; returns samples [start, start+n_out)."""
    T, n_fft = frames.shape
    total = n_fft + hop * (T - 1)
    acc = np.zeros(total, dtype=np.float32)
    for t in range(T):
        seg = acc[t * hop : t * hop + n_fft]
        fr = frames[t]
        for j in range(n_fft):
            seg[j] += fr[j] * win[j]
    out = np.zeros(n_out, dtype=np.float32)
    stop = min(start + n_out, total)
    for s in range(start, stop):
        out[s - start] = acc[s] * inv_wss[s]
    return out


@_jit
def _apply_filterbank(power_tf, starts, lens, offs, weights, out):
    """out[m, t] = sum_k weights[offs[m] + k] * power_tf[t, starts[m] + k]  (sparse mel filter bank)."""
    T = power_tf.shape[0]
    M = starts.shape[0]
    for t in range(T):
        row = power_tf[t]
        for m in range(M):
            s0 = starts[m]
            o = offs[m]
            acc = np.float32(0.0)
            for k in range(lens[m]):
                acc += weights[o + k] * row[s0 + k]
            out[m, t] = acc


@_jit
def _pair_stats(y, yh):
    """(mean, var) of yh and of y - yh, accumulated in float64, one pass."""
    n = y.shape[0]
    s1 = 0.0
    s2 = 0.0
    t1 = 0.0
    t2 = 0.0
    for i in range(n):
        h = np.float64(yh[i])
        p = np.float64(y[i]) - h
        s1 += h
        s2 += h * h
        t1 += p
        t2 += p * p
    mh = s1 / n
    mp = t1 / n
    return mh, max(s2 / n - mh * mh, 0.0), mp, max(t2 / n - mp * mp, 0.0)


@_jit
def _spectral_stats(mag, freqs, roll_percent):
    """Per-frame spectral centroid, bandwidth (p=2, normalised) and roll-off of a (T, F) magnitude."""
    T, F = mag.shape
    cen = np.empty(T, dtype=np.float64)
    bw = np.empty(T, dtype=np.float64)
    ro = np.empty(T, dtype=np.float64)
    tiny = 1.1754944e-38
    for t in range(T):
        s = 0.0
        sf = 0.0
        for f in range(F):
            v = mag[t, f]
            s += v
            sf += v * freqs[f]
        norm = s if s >= tiny else 1.0
        c = sf / norm
        cen[t] = c
        acc = 0.0
        for f in range(F):
            d = freqs[f] - c
            acc += mag[t, f] * d * d
        bw[t] = np.sqrt(acc / norm)
        # roll-off: float32 cumulative sum, as np.cumsum on the float32 spectrum
        c32 = np.float32(0.0)
        for f in range(F):
            c32 += mag[t, f]
        thr = np.float32(roll_percent * c32)
        c32 = np.float32(0.0)
        r = freqs[F - 1]
        for f in range(F):
            c32 += mag[t, f]
            if c32 >= thr:
                r = freqs[f]
                break
        ro[t] = r
    return cen, bw, ro


@_jit
def _frame_rms_zcr(y, n_fft, hop, n_frames):
    """Frame RMS (zero padding, librosa.feature.rms) and ZCR (edge padding, librosa.feature.zero_crossing_rate)."""
    n = y.shape[0]
    half = n_fft // 2
    rms = np.empty(n_frames, dtype=np.float64)
    zcr = np.empty(n_frames, dtype=np.float64)
    # cumulative sums over the padded signal (padded index q = sample index q - half)
    L = n + 2 * half
    csq = np.zeros(L + 1, dtype=np.float64)
    czc = np.zeros(L + 1, dtype=np.int64)
    prev_neg = False
    for q in range(L):
        s = q - half
        if 0 <= s < n:
            v = y[s]
            csq[q + 1] = csq[q] + np.float64(v) * np.float64(v)
        else:
            csq[q + 1] = csq[q]
        # zero crossings on the edge-padded signal, threshold 1e-10, zero counts as positive
        if s < 0:
            v = y[0]
        elif s >= n:
            v = y[n - 1]
        else:
            v = y[s]
        neg = v < -1e-10
        cross = 0
        if q > 0 and neg != prev_neg:
            cross = 1
        prev_neg = neg
        czc[q + 1] = czc[q] + cross
    for t in range(n_frames):
        a = t * hop
        b = a + n_fft
        b = min(b, L)
        rms[t] = np.sqrt((csq[b] - csq[a]) / n_fft)
        # crossings inside the frame: positions a+1 .. b-1 (the first sample of a frame never counts)
        zcr[t] = (czc[b] - czc[a + 1]) / n_fft
    return rms, zcr


@_jit
def _piptrack_peaks(S, sr, n_fft, fmin, fmax, threshold):
    """librosa.piptrack on a (T, F) spectrum: returns (pitches, mags) of the retained peaks."""
    T, F = S.shape
    lo = F
    hi = 0
    for f in range(F):
        fr = f * sr / n_fft
        if fmin <= fr < fmax:
            lo = min(lo, f)
            hi = max(hi, f + 1)
    lo = max(lo, 1)
    hi = min(hi, F - 1)
    cap = T * ((hi - lo) // 2 + 1) if hi > lo else 1
    pit = np.empty(cap, dtype=np.float32)
    mg = np.empty(cap, dtype=np.float32)
    k = 0
    for t in range(T):
        mx = S[t, 0]
        for f in range(1, F):
            mx = max(mx, S[t, f])
        ref = np.float32(threshold * mx)
        for f in range(lo, hi):
            x0 = S[t, f]
            if not (x0 > ref):
                continue
            xm = S[t, f - 1]
            xp = S[t, f + 1]
            tm = xm if xm > ref else np.float32(0.0)
            tp = xp if xp > ref else np.float32(0.0)
            if not (x0 > tm and x0 >= tp):
                continue
            a = xp + xm - 2 * x0
            b = (xp - xm) / 2
            shift = np.float32(0.0) if np.abs(b) >= np.abs(a) else np.float32(-b / a)
            avg = np.float32(xp - xm) / np.float32(2.0)
            dskew = np.float32(np.float32(0.5) * avg) * shift
            pit[k] = np.float32((np.float64(f) + np.float64(shift)) * sr / n_fft)
            mg[k] = x0 + dskew
            k += 1
    return pit[:k], mg[:k]


# --------------------------------------------------------------------------------------
# cached constants
# --------------------------------------------------------------------------------------
@functools.cache
def _hann(n_fft: int = N_FFT) -> np.ndarray:
    import librosa

    return librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)


@functools.cache
def _fft_freqs(sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    import librosa

    return np.ascontiguousarray(librosa.fft_frequencies(sr=sr, n_fft=n_fft), dtype=np.float64)


class SparseFilterbank:
    """A (n_bands, F) filter bank stored as one contiguous run of non-zero weights per band."""

    def __init__(self, fb: np.ndarray):
        fb = np.asarray(fb, dtype=np.float32)
        starts, lens, chunks = [], [], []
        for row in fb:
            nz = np.flatnonzero(row)
            a, b = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
            starts.append(a)
            lens.append(b - a)
            chunks.append(row[a:b])
        self.n_bands = fb.shape[0]
        self.starts = np.asarray(starts, dtype=np.int64)
        self.lens = np.asarray(lens, dtype=np.int64)
        self.offs = np.concatenate([[0], np.cumsum(self.lens)[:-1]]).astype(np.int64)
        self.weights = np.ascontiguousarray(np.concatenate(chunks) if chunks else np.zeros(0), dtype=np.float32)

    def apply(self, power_tf: np.ndarray) -> np.ndarray:
        """(n_bands, T) float32 band energies of a time-major (T, F) power spectrogram."""
        out = np.empty((self.n_bands, power_tf.shape[0]), dtype=np.float32)
        _apply_filterbank(
            np.ascontiguousarray(power_tf, dtype=np.float32), self.starts, self.lens, self.offs, self.weights, out
        )
        return out


def power_to_db(S: np.ndarray, top_db: float = TOP_DB) -> np.ndarray:
    """librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=top_db), float32, in place on a copy."""
    db = np.maximum(S, np.float32(1e-10))
    np.log10(db, out=db)
    db *= np.float32(10.0)
    if db.size:
        np.maximum(db, db.max() - np.float32(top_db), out=db)
    return db


@functools.cache
def mel_filterbank(n_mels: int = N_MELS_FEATURES, sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> SparseFilterbank:
    """librosa.filters.mel(sr, n_fft, n_mels) (slaney, 0..sr/2), sparse."""
    import librosa

    return SparseFilterbank(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels))


@functools.lru_cache(maxsize=256)
def _chroma_basis_T(tuning: float, sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    import librosa

    fb = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=12)
    return np.ascontiguousarray(fb.T.astype(np.float32))


@functools.cache
def _dct_matrix(n_mels: int = N_MELS_FEATURES, n_mfcc: int = N_MFCC) -> np.ndarray:
    # DCT-II, orthonormal (scipy.fft.dct(type=2, norm="ortho")), first n_mfcc rows
    return scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc]


# --------------------------------------------------------------------------------------
# shared spectral front end
# --------------------------------------------------------------------------------------
@dataclass
class Spectra:
    """One STFT of the window and what is derived from it (all time-major, frames first)."""

    y: np.ndarray  # float32 mono at SAMPLE_RATE
    D: np.ndarray  # complex64 (T, F) STFT, hann, centred, zero padding
    mag: np.ndarray  # float32 (T, F) |D|
    power: np.ndarray  # float32 (T, F) |D|**2
    mel_db: np.ndarray  # float32 (n_mels, T) power_to_db(mel power, ref=1, amin=1e-10, top_db=80)


def _as_signal(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio (1-d array), got shape {y.shape}")
    if y.shape[0] < N_FFT:
        raise ValueError(f"signal too short for analysis: {y.shape[0]} samples (< {N_FFT})")
    return np.ascontiguousarray(y, dtype=np.float32)


def stft(y: np.ndarray) -> np.ndarray:
    """librosa.stft(y, n_fft=2048, hop_length=512, center=True, pad_mode="constant"), time-major (T, F)."""
    half = N_FFT // 2
    yp = np.zeros(y.shape[0] + 2 * half, dtype=np.float32)
    yp[half : half + y.shape[0]] = y
    n_frames = 1 + (yp.shape[0] - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        yp, shape=(n_frames, N_FFT), strides=(HOP * yp.strides[0], yp.strides[0]), writeable=False
    )
    frames = frames * _hann()
    return scipy.fft.rfft(frames, axis=-1, workers=1)


def mel_db_from_power(power: np.ndarray) -> np.ndarray:
    """power_to_db(mel(power), ref=1.0, amin=1e-10, top_db=80) as (n_mels, T) float32."""
    return power_to_db(mel_filterbank().apply(power))


def compute_spectra(y: np.ndarray) -> Spectra:
    """The shared front end: STFT, magnitude, power and the 128-band log-mel spectrogram."""
    y = _as_signal(y)
    D = stft(y)
    mag = np.abs(D)
    power = mag * mag
    return Spectra(y=y, D=D, mag=mag, power=power, mel_db=mel_db_from_power(power))


# --------------------------------------------------------------------------------------
# the extractor
# --------------------------------------------------------------------------------------
def _tuning(power: np.ndarray) -> float:
    """librosa.estimate_tuning(S=power, sr=22050, bins_per_octave=12) (piptrack fmin=150, fmax=4000, threshold=0.1)."""
    import librosa

    pitch, mag = _piptrack_peaks(power, float(SAMPLE_RATE), N_FFT, 150.0, 4000.0, 0.1)
    mask = pitch > 0
    if not mask.any():
        return 0.0
    thr = np.median(mag[mask])
    sel = pitch[(mag >= thr) & mask]
    if sel.size == 0:
        return 0.0
    return float(librosa.pitch_tuning(sel, resolution=0.01, bins_per_octave=12))


@functools.lru_cache(maxsize=64)
def _inv_window_sumsquare(n_frames: int) -> np.ndarray:
    """1 / librosa.filters.window_sumsquare (hann, n_fft, hop) where it is > tiny, else 1."""
    w2 = _hann().astype(np.float64) ** 2
    total = N_FFT + HOP * (n_frames - 1)
    wss = np.zeros(total)
    for t in range(n_frames):
        wss[t * HOP : t * HOP + N_FFT] += w2
    inv = np.ones(total, dtype=np.float32)
    ok = wss > np.finfo(np.float32).tiny
    inv[ok] = (1.0 / wss[ok]).astype(np.float32)
    return inv


def _hpss_harmonic(sp: Spectra) -> np.ndarray:
    """Harmonic signal of librosa.effects.hpss(y) (kernel 31, power 2, margin 1), float32, len(y)."""
    mag = sp.mag
    harm = median_filter_axis0(mag)  # (T, F): along time
    perc = np.ascontiguousarray(median_filter_axis0(mag.T).T)  # along frequency, back to (T, F)
    Dh = np.empty_like(sp.D)
    _hpss_apply(sp.D, harm, perc, Dh)
    frames = scipy.fft.irfft(Dh, n=N_FFT, axis=-1, workers=1, overwrite_x=True)
    return _overlap_add(
        frames.astype(np.float32, copy=False),
        _hann(),
        _inv_window_sumsquare(Dh.shape[0]),
        HOP,
        sp.y.shape[0],
        N_FFT // 2,
    )


def _mean_var(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    m = float(x.mean())
    return m, float(np.mean((x - m) ** 2))


def features_from_spectra(sp: Spectra, shared: dict[str, Any] | None = None) -> np.ndarray:
    """The 43 features (FEATURE_NAMES order, float64) from a shared front end. ``shared``: filled with the
    intermediates other analyses reuse (``tuning``, ``onset_envelope``: what the descriptors read)."""
    import librosa

    y = sp.y
    T = sp.D.shape[0]
    out = np.empty(N_FEATURES, dtype=np.float64)

    # 1-2 chroma_stft (power STFT, estimated tuning, inf-norm per frame)
    tuning = round(_tuning(sp.power), 2)
    raw = sp.power @ _chroma_basis_T(tuning)  # (T, 12)
    nrm = np.abs(raw).max(axis=1, keepdims=True)
    nrm[nrm < np.finfo(np.float32).tiny] = 1.0
    out[0:2] = _mean_var(raw / nrm)

    # 3-4 rms, 11-12 zcr (time domain)
    rms, zcr = _frame_rms_zcr(y, N_FFT, HOP, T)
    out[2:4] = _mean_var(rms)
    # 5-10 centroid, bandwidth, roll-off (magnitude STFT)
    cen, bw, ro = _spectral_stats(sp.mag, _fft_freqs(), 0.85)
    out[4:6] = _mean_var(cen)
    out[6:8] = _mean_var(bw)
    out[8:10] = _mean_var(ro)
    out[10:12] = _mean_var(zcr)

    # 13-16 HPSS
    yh = _hpss_harmonic(sp)
    out[12:16] = _pair_stats(y, yh)

    # 17 tempo (onset strength of the same log-mel spectrogram)
    oenv = librosa.onset.onset_strength(S=sp.mel_db, sr=SAMPLE_RATE, hop_length=HOP, n_fft=N_FFT)
    out[16] = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=oenv, sr=SAMPLE_RATE, hop_length=HOP))[0])
    if shared is not None:
        shared.update(tuning=tuning, onset_envelope=oenv.astype(np.float32, copy=False))

    # 18-43 MFCC 1..13 (DCT-II ortho of the log-mel spectrogram)
    mfcc = _dct_matrix() @ sp.mel_db.astype(np.float64)  # (13, T)
    m = mfcc.mean(axis=1)
    v = ((mfcc - m[:, None]) ** 2).mean(axis=1)
    out[17::2] = m
    out[18::2] = v
    return out


def extract_features(y: np.ndarray) -> np.ndarray:
    """The 43 features of a mono float32 signal at SAMPLE_RATE (already cut to the analysis window)."""
    return features_from_spectra(compute_spectra(y))


__all__ = [
    "FEATURES_VERSION",
    "FEATURE_NAMES",
    "N_FEATURES",
    "N_MFCC",
    "Spectra",
    "compute_spectra",
    "extract_features",
    "features_from_spectra",
    "mel_db_from_power",
    "stft",
]
