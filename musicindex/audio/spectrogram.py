"""CNN input spectrogram: the single home of its parameters, and its compact storage format.

The spectrogram is a 96-band log-mel power spectrogram of the analysis window,
computed from the same STFT as the features (22 050 Hz, n_fft 2048, hop 512,
hann, centred): slaney-normalised mel filters from 0 to 11 025 Hz, then
``power_to_db(ref=1.0, amin=1e-10, top_db=80)`` (librosa's definitions), so a
30 s window is 96 x 1292.  ``analysis.analyse`` reuses the feature STFT power
spectrum; only the 96-band filter bank and the log are extra (~3 ms).

Storage (``encode``/``decode``): values are quantised to 0.5 dB steps over the
80 dB range below the window's maximum (uint8 codes 0..160, error <= 0.25 dB),
the codes are delta-coded along frequency (mod 256) and zlib-compressed.  The
32-byte header makes the blob self-describing::

    magic b"MISG" | u16 format | u16 SPECTROGRAM_VERSION | u32 n_mels | u32 n_frames
    | u8 codec (2 = uint8, delta along mel axis) | u8 compression (1 = zlib) | 2 pad
    | f32 offset | f32 step | 4 pad

    value_dB = offset + step * code

A 30 s window of dense music stores in ~70-85 kB (see docs/features.md).
"""

from __future__ import annotations

import functools
import struct
import zlib

import numpy as np

from .window import HOP, N_FFT, SAMPLE_RATE

N_MELS: int = 96
"""Mel bands of the CNN spectrogram."""
SPEC_SAMPLE_RATE: int = SAMPLE_RATE
SPEC_N_FFT: int = N_FFT
SPEC_HOP: int = HOP
FMIN: float = 0.0
FMAX: float = SAMPLE_RATE / 2
TOP_DB: float = 80.0
AMIN: float = 1e-10
LOG_SCALING = "power_to_db(ref=1.0, amin=1e-10, top_db=80)"
QUANT_STEP_DB: float = 0.5
SPECTROGRAM_VERSION: int = 1
"""Bump whenever stored spectrogram values would change for the same audio."""

_MAGIC = b"MISG"
_FORMAT = 1
_HEADER = struct.Struct("<4sHHIIBB2xff4x")
_CODEC_U8_DELTA_MEL = 2
_ZLIB = 1
_ZLIB_LEVEL = 6


@functools.cache
def _filterbank():
    import librosa

    from .features import SparseFilterbank

    fb = librosa.filters.mel(sr=SPEC_SAMPLE_RATE, n_fft=SPEC_N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    return SparseFilterbank(fb)


def logmel_from_power(power_tf: np.ndarray) -> np.ndarray:
    """(N_MELS, n_frames) float32 dB from a time-major (n_frames, 1025) power spectrogram."""
    from .features import power_to_db

    return power_to_db(_filterbank().apply(power_tf), top_db=TOP_DB)


def compute_logmel(y: np.ndarray) -> np.ndarray:
    """Log-mel spectrogram (N_MELS, n_frames) float32 of a mono float32 signal at SAMPLE_RATE."""
    from .features import _as_signal, stft

    mag = np.abs(stft(_as_signal(y)))
    return logmel_from_power(mag * mag)


def encode(spec: np.ndarray) -> bytes:
    """Compact, self-describing bytes for a (n_mels, n_frames) dB spectrogram."""
    spec = np.asarray(spec, dtype=np.float32)
    if spec.ndim != 2:
        raise ValueError(f"expected a 2-d spectrogram, got shape {spec.shape}")
    if spec.size and not np.isfinite(spec).all():
        raise ValueError("spectrogram contains non-finite values")
    n_mels, n_frames = spec.shape
    step = QUANT_STEP_DB
    hi = float(spec.max()) if spec.size else 0.0
    lo = max(float(spec.min()) if spec.size else 0.0, hi - 255 * step)
    q = np.clip(np.rint((spec - np.float32(lo)) / np.float32(step)), 0, 255).astype(np.uint8)
    d = q.copy()
    d[1:] -= q[:-1]  # uint8 wrap-around = delta mod 256
    body = zlib.compress(d.tobytes(), _ZLIB_LEVEL)
    header = _HEADER.pack(_MAGIC, _FORMAT, SPECTROGRAM_VERSION, n_mels, n_frames, _CODEC_U8_DELTA_MEL, _ZLIB, lo, step)
    return header + body


def decode(data: bytes) -> np.ndarray:
    """Inverse of :func:`encode`: float32 (n_mels, n_frames) dB, within step/2 of the original."""
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise ValueError("not a musicindex spectrogram: too short")
    magic, fmt, _ver, n_mels, n_frames, codec, comp, lo, step = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError("not a musicindex spectrogram: bad magic")
    if fmt != _FORMAT or codec != _CODEC_U8_DELTA_MEL or comp != _ZLIB:
        raise ValueError(f"unsupported spectrogram encoding (format {fmt}, codec {codec}, compression {comp})")
    raw = zlib.decompress(data[_HEADER.size :])
    if len(raw) != n_mels * n_frames:
        raise ValueError("corrupt spectrogram: size does not match header")
    d = np.frombuffer(raw, dtype=np.uint8).reshape(n_mels, n_frames)
    q = np.cumsum(d, axis=0, dtype=np.uint8)  # wraps mod 256, undoing the delta
    return (np.float32(lo) + np.float32(step) * q.astype(np.float32)).astype(np.float32)


def header_version(data: bytes) -> int:
    """SPECTROGRAM_VERSION recorded in an encoded blob."""
    return _HEADER.unpack_from(bytes(data[: _HEADER.size]))[2]


__all__ = [
    "N_MELS",
    "QUANT_STEP_DB",
    "SPECTROGRAM_VERSION",
    "SPEC_HOP",
    "SPEC_N_FFT",
    "SPEC_SAMPLE_RATE",
    "TOP_DB",
    "compute_logmel",
    "decode",
    "encode",
    "header_version",
    "logmel_from_power",
]
