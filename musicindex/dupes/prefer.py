"""Which file of a group is the preferred one (pure): the listener's choice, else the highest quality.

The rule (``quality_key``, best first): a file the listener chose (``index.prefer_duplicate``; the latest choice in
the group wins); then a lossless format (``LOSSLESS_FORMATS``) over a lossy one; then the higher bit rate (kbit/s);
then the higher sample rate; then more channels; then the longer file (an untrimmed copy); then the lower track id
(the file indexed first). Unknown values rank below any known one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

LOSSLESS_FORMATS = frozenset({"FLAC", "WAV", "WAVEX", "AIFF", "W64", "RF64", "ALAC", "APE", "WV"})
"""Container formats (as the decoder names them: ``tracks.format``) that hold lossless audio."""


@dataclass(frozen=True)
class FileQuality:
    """What the rule reads of a file."""

    track_id: int
    format: str | None = None
    bit_rate: int | None = None  # kbit/s
    sample_rate: int | None = None
    channels: int | None = None
    duration: float | None = None
    chosen_at: dt.datetime | None = None  # when the listener chose it (None: never)

    @property
    def lossless(self) -> bool:
        return (self.format or "").upper() in LOSSLESS_FORMATS


def quality_key(f: FileQuality) -> tuple:
    """Sort key, best first (see the module doc)."""
    chosen = f.chosen_at.timestamp() if f.chosen_at is not None else float("-inf")
    return (
        -chosen,
        not f.lossless,
        -(f.bit_rate or -1),
        -(f.sample_rate or -1),
        -(f.channels or -1),
        -(f.duration or -1.0),
        f.track_id,
    )


def preferred(files: Sequence[FileQuality]) -> FileQuality:
    """The preferred file of a group (``files`` not empty)."""
    return min(files, key=quality_key)


def why_preferred(f: FileQuality) -> str:
    """The reason, for people."""
    if f.chosen_at is not None:
        return "chosen"
    parts = ["lossless" if f.lossless else (f.format or "unknown format").lower()]
    if f.bit_rate:
        parts.append(f"{f.bit_rate} kbit/s")
    if f.sample_rate:
        parts.append(f"{f.sample_rate} Hz")
    return "highest quality: " + ", ".join(parts)


__all__ = ["LOSSLESS_FORMATS", "FileQuality", "preferred", "quality_key", "why_preferred"]
