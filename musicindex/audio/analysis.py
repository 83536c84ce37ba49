"""One pass over a window: the 43 features and the CNN log-mel spectrogram from one shared STFT; a file's analysis;
the per-process warm-up of workers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .decode import AudioInfo, read_window_rates
from .features import compute_spectra, features_from_spectra
from .spectrogram import compute_logmel, logmel_from_power
from .window import SAMPLE_RATE, AnalysisWindow


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


@dataclass(frozen=True)
class AnalysisResult:
    info: AudioInfo
    features: np.ndarray | None  # (43,) float64, FEATURE_NAMES order (None: not asked for)
    logmel: np.ndarray | None  # (N_MELS, n_frames) float32, dB (None: not asked for)
    extra: np.ndarray | None = None  # the window at ``extra_rate`` (e.g. 16 kHz for musicnn), from the same decode


_warm = False
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc maximum
_TRIM_THRESHOLD = 512 * 1024 * 1024


def _tune_allocator() -> bool:
    """Keep large freed blocks in the glibc heap instead of returning them to the OS.

    One analysis allocates ~25 MB of short-lived 5-10 MB arrays; with glibc defaults every
    one of them is a fresh mmap and costs page faults (~17 ms of system time per track,
    measured).  Raising M_MMAP_THRESHOLD / M_TRIM_THRESHOLD removes that.  Process-wide:
    the resident heap stays at the peak size (~100 MB) -- fine for a worker process.
    Linux/glibc only; returns False (and changes nothing) elsewhere.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):
        return False


def warm_up(tune_allocator: bool = True) -> None:
    """Prepare this process for analysis; idempotent.  Workers call it once at start, not per job.

    Compiles (or loads from numba's on-disk cache) the numba kernels, builds the filter banks,
    imports soxr, and -- unless ``tune_allocator=False`` -- tunes glibc malloc for the large
    short-lived arrays of an analysis (see ``_tune_allocator``).  Cold: ~5 s; cached: ~1 s.
    """
    global _warm
    if _warm:
        return
    if tune_allocator:
        _tune_allocator()
    rng = np.random.default_rng(0)
    t = np.arange(2 * SAMPLE_RATE, dtype=np.float64) / SAMPLE_RATE
    y = (0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    analyse(y)
    from .descriptors import track

    track.warm_up()  # the descriptors' numba kernels
    import soxr  # noqa: F401  (import cost once)

    _warm = True


def analyse_file(
    path,
    window: AnalysisWindow | None = None,
    *,
    features: bool = True,
    spectrogram: bool = True,
    extra_rate: int | None = None,
    source=None,
) -> AnalysisResult:
    """Decode the analysis window of ``path`` once and compute features and/or spectrogram (raises AudioError);
    ``extra_rate``: also hand back the same window resampled to that rate (``AnalysisResult.extra``); ``source``:
    what to read instead of ``path`` (an open descriptor's ``/proc/self/fd/N``), messages naming ``path``."""
    rates = (SAMPLE_RATE,) if extra_rate is None else (SAMPLE_RATE, int(extra_rate))
    signals, info = read_window_rates(path, window, rates, source=source)
    feats, logmel = analyse(signals[SAMPLE_RATE], features=features, spectrogram=spectrogram)
    extra = signals[int(extra_rate)] if extra_rate is not None else None
    return AnalysisResult(info=info, features=feats, logmel=logmel, extra=extra)


__all__ = ["AnalysisResult", "analyse", "analyse_file", "warm_up"]
