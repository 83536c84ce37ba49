"""The analysis window and frame parameters: the single home of these numbers.

Everything that needs the sample rate, the STFT frame size, the hop or the
analysis window imports them from here (features, spectrogram, decoding,
benchmarks, tests).

Rules (DESIGN.md, "The 43 features"):

* by default the window is 30 s starting at 30 s (as in the GTZAN study);
* a track shorter than ``offset + duration`` (60 s by default) but at least
  ``duration`` long uses its central ``duration`` seconds;
* a track shorter than ``duration`` is used whole.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE: int = 22050
"""Analysis sample rate (Hz): every track is mixed to mono and resampled to it."""
N_FFT: int = 2048
"""STFT frame length (samples at SAMPLE_RATE)."""
HOP: int = 512
"""STFT hop (samples at SAMPLE_RATE)."""
WINDOW_OFFSET: float = 30.0
"""Default start of the analysis window (s)."""
WINDOW_DURATION: float = 30.0
"""Default length of the analysis window (s)."""
MIN_DURATION: float = 1.0
"""Shortest audio (s) accepted for analysis."""


@dataclass(frozen=True)
class AnalysisWindow:
    """Which part of a track is analysed.

    >>> AnalysisWindow().bounds(240.0)
    (30.0, 30.0)
    >>> AnalysisWindow().bounds(40.0)
    (5.0, 30.0)
    >>> AnalysisWindow().bounds(12.5)
    (0.0, 12.5)
    """

    offset: float = WINDOW_OFFSET
    duration: float = WINDOW_DURATION

    def __post_init__(self) -> None:
        if not (self.offset >= 0.0):
            raise ValueError(f"window offset must be >= 0 s, got {self.offset!r}")
        if not (self.duration > 0.0):
            raise ValueError(f"window duration must be > 0 s, got {self.duration!r}")

    def bounds(self, total_duration: float) -> tuple[float, float]:
        """Return ``(start_s, length_s)`` of the window inside a track of ``total_duration`` s."""
        total = max(0.0, float(total_duration))
        if total >= self.offset + self.duration:
            return (float(self.offset), float(self.duration))
        if total >= self.duration:
            return ((total - self.duration) / 2.0, float(self.duration))
        return (0.0, total)


DEFAULT_WINDOW = AnalysisWindow()

__all__ = [
    "DEFAULT_WINDOW",
    "HOP",
    "MIN_DURATION",
    "N_FFT",
    "SAMPLE_RATE",
    "WINDOW_DURATION",
    "WINDOW_OFFSET",
    "AnalysisWindow",
]
