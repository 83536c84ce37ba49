"""Deprecated name of :mod:`musicindex.index` (the ``MusicIndex`` facade), kept for one release.

Import ``MusicIndex`` from ``musicindex`` (or ``musicindex.index``) instead.
"""

from __future__ import annotations

import warnings

from musicindex.index import DoctorReport, IngestSummary, MusicIndex, StatusReport

__all__ = ["DoctorReport", "IngestSummary", "MusicIndex", "StatusReport"]

warnings.warn(
    "musicindex.app is deprecated and will be removed: import MusicIndex from musicindex (or musicindex.index)",
    DeprecationWarning,
    stacklevel=2,
)
