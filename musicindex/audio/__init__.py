"""Audio analysis: decoding, the 43 features, the CNN spectrogram, tags and hashing.

Knows nothing of the database.  Typical use (a worker)::

    from musicindex import audio
    audio.warm_up()                      # once per process: numba JIT, filter banks, imports
    res = audio.analyse_file(path)       # AnalysisResult(info, features, logmel)
    blob = audio.encode_spectrogram(res.logmel)

The names below are imported from their submodules on first use: importing ``musicindex.audio.window`` (the
analysis window, which the settings use) does not load librosa, numba or the feature code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import AnalysisResult, analyse, analyse_file, warm_up
    from .decode import AudioFileVanishedError, AudioInfo, probe, read_audio, read_window
    from .features import (
        FEATURE_NAMES,
        FEATURES_VERSION,
        N_FEATURES,
        compute_spectra,
        extract_features,
        features_from_spectra,
    )
    from .hashing import file_sha256
    from .reference import reference_features
    from .spectrogram import N_MELS, SPECTROGRAM_VERSION, compute_logmel, logmel_from_power
    from .spectrogram import decode as decode_spectrogram
    from .spectrogram import encode as encode_spectrogram
    from .tags import read_picture, read_tags
    from .window import HOP, MIN_DURATION, N_FFT, SAMPLE_RATE, WINDOW_DURATION, WINDOW_OFFSET, AnalysisWindow

_HOMES: dict[str, tuple[str, str]] = {
    **{n: ("analysis", n) for n in ("AnalysisResult", "analyse", "analyse_file", "warm_up")},
    **{n: ("decode", n) for n in ("AudioFileVanishedError", "AudioInfo", "probe", "read_audio", "read_window")},
    **{n: ("features", n) for n in ("FEATURE_NAMES", "FEATURES_VERSION", "N_FEATURES", "compute_spectra",
                                    "extract_features", "features_from_spectra")},
    "reference_features": ("reference", "reference_features"),
    "file_sha256": ("hashing", "file_sha256"),
    **{n: ("spectrogram", n) for n in ("N_MELS", "SPECTROGRAM_VERSION", "compute_logmel", "logmel_from_power")},
    "decode_spectrogram": ("spectrogram", "decode"),
    "encode_spectrogram": ("spectrogram", "encode"),
    "read_tags": ("tags", "read_tags"),
    "read_picture": ("tags", "read_picture"),
    **{n: ("window", n) for n in ("HOP", "MIN_DURATION", "N_FFT", "SAMPLE_RATE", "WINDOW_DURATION", "WINDOW_OFFSET",
                                  "AnalysisWindow")},
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home[0]}"), home[1])
    globals()[name] = value
    return value


__all__ = [
    "FEATURES_VERSION",
    "FEATURE_NAMES",
    "HOP",
    "MIN_DURATION",
    "N_FEATURES",
    "N_FFT",
    "N_MELS",
    "SAMPLE_RATE",
    "SPECTROGRAM_VERSION",
    "WINDOW_DURATION",
    "WINDOW_OFFSET",
    "AnalysisResult",
    "AnalysisWindow",
    "AudioFileVanishedError",
    "AudioInfo",
    "analyse",
    "analyse_file",
    "compute_logmel",
    "compute_spectra",
    "decode_spectrogram",
    "encode_spectrogram",
    "extract_features",
    "features_from_spectra",
    "file_sha256",
    "logmel_from_power",
    "probe",
    "read_audio",
    "read_picture",
    "read_tags",
    "read_window",
    "reference_features",
    "warm_up",
]
