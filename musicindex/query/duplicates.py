"""``DuplicateService``: the groups of files that hold one recording or one song (``index.duplicates()``). Reads
only: the links are written at ingest by the ``fingerprint`` stage (``dupes.links``); a group is made of the links
between indexed tracks when asked, so a missing file is in no group until it is seen again.

Each group lists its files with the facts that tell them apart (format, bit rate, sample rate, channels,
duration) and its preferred file (``dupes.prefer``: the listener's choice, else the highest quality). Files are
never deleted or hidden by this: browse lists and mixes decide what to show (mixes leave the other files out:
``SearchOptions.allow_duplicates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from musicindex.dupes import links
from musicindex.dupes.prefer import FileQuality, preferred, why_preferred
from musicindex.errors import InvalidArgumentError
from musicindex.query.base import Reader
from musicindex.query.snapshot import Snapshot
from musicindex.vocab import DUPLICATE_KINDS, SAME_RECORDING, SAME_SONG

MAX_GROUPS = 1000
"""Most groups in one answer (``limit``)."""
KIND_ALIASES = {"recording": SAME_RECORDING, "song": SAME_SONG}


def check_kind(kind: str | None) -> str | None:
    """``kind`` as stored ("same recording", "same song"), from itself or "recording" / "song" /
    "same-recording"; InvalidArgumentError listing what is accepted otherwise."""
    if kind is None:
        return None
    if not isinstance(kind, str):
        raise InvalidArgumentError(f"kind must be a text such as 'same recording', got {kind!r}")
    text = " ".join(str(kind).strip().lower().replace("-", " ").replace("_", " ").split())
    text = KIND_ALIASES.get(text, text)
    if text not in DUPLICATE_KINDS:
        raise InvalidArgumentError(
            f"unknown duplicate kind {kind!r}: use one of {', '.join(repr(k) for k in DUPLICATE_KINDS)} "
            "(or 'recording', 'song')"
        )
    return text


@dataclass(frozen=True)
class DuplicateFile:
    """One file of a group: the track summary and its quality facts."""

    id: int
    path: str
    title: str | None
    artist: str | None
    album: str | None
    duration: float | None
    format: str | None
    bit_rate: int | None
    sample_rate: int | None
    channels: int | None
    preferred: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DuplicateGroup:
    """Files that hold one recording (``kind`` "same recording") or versions of one song ("same song"), with the
    confidence of the weakest link that holds them together, the preferred file and why."""

    kind: str
    confidence: float
    tracks: list[DuplicateFile]
    preferred: int
    reason: str
    links: list[dict[str, Any]] = field(default_factory=list)

    @property
    def track_ids(self) -> list[int]:
        return [t.id for t in self.tracks]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "confidence": round(self.confidence, 3),
            "preferred": self.preferred,
            "reason": self.reason,
            "tracks": [t.to_dict() for t in self.tracks],
            "links": self.links,
        }


class DuplicateService(Reader):
    """The duplicate groups, read in one snapshot."""

    def duplicates(self, kind: str | None = None, *, limit: int = MAX_GROUPS, offset: int = 0) -> list[DuplicateGroup]:
        """The groups (recordings first, then songs; each by its lowest track id), ``kind`` one kind only
        ("same recording" / "recording", "same song" / "song"); ``limit`` (1-1000) and ``offset`` page them."""
        kind = check_kind(kind)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (limit, offset)) or not (
            1 <= limit <= MAX_GROUPS and offset >= 0
        ):
            raise InvalidArgumentError(f"limit is 1-{MAX_GROUPS} and offset >= 0, got {limit} and {offset}")
        with self.snapshot() as snap:
            groups = links.load_groups(snap.conn, kind)[int(offset) : int(offset) + int(limit)]
            ids = sorted({t for g in groups for t in g.track_ids})
            rows = snap.all(
                "SELECT t.id, t.path, t.title, t.artist, t.album, t.duration, t.format, t.bit_rate, t.sample_rate, "
                "t.channels, c.chosen_at FROM tracks t LEFT JOIN duplicate_choices c ON c.track_id = t.id "
                "WHERE t.id = ANY(%(ids)s)",
                {"ids": ids},
            )
        by_id = {int(r.id): r for r in rows}
        out = []
        for g in groups:
            members = [by_id[t] for t in g.track_ids if t in by_id]
            best = preferred([_quality(r) for r in members])
            files = [_file(r, int(r.id) == best.track_id) for r in members]
            out.append(
                DuplicateGroup(g.kind, g.confidence, files, best.track_id, why_preferred(best),
                               [{"a": x.a, "b": x.b, "confidence": x.confidence, "why": x.why} for x in g.links])
            )  # fmt: skip
        return out


def hidden_copies(snap: Snapshot, track_ids: Sequence[int]) -> set[int]:
    """Those of ``track_ids`` that are another file of a recording also among them, not its preferred file (what a
    browse list shows once: an album holding a FLAC and an MP3 of one song lists the preferred one)."""
    twins = links.twins(snap.conn, track_ids, SAME_RECORDING)
    inside = set(track_ids)
    clusters = {frozenset({t, *(m & inside)}) for t, m in twins.items() if m & inside}
    if not clusters:
        return set()
    ids = sorted({t for c in clusters for t in c})
    rows = snap.all(
        "SELECT t.id, t.format, t.bit_rate, t.sample_rate, t.channels, t.duration, c.chosen_at FROM tracks t "
        "LEFT JOIN duplicate_choices c ON c.track_id = t.id WHERE t.id = ANY(%(ids)s)",
        {"ids": ids},
    )
    quality = {int(r.id): _quality(r) for r in rows}
    hidden: set[int] = set()
    for c in clusters:
        keep = preferred([quality[t] for t in c if t in quality]).track_id
        hidden |= c - {keep}
    return hidden


def _quality(r: Any) -> FileQuality:
    return FileQuality(int(r.id), r.format, r.bit_rate, r.sample_rate, r.channels, r.duration, r.chosen_at)


def _file(r: Any, best: bool) -> DuplicateFile:
    duration = float(r.duration) if r.duration is not None else None
    return DuplicateFile(int(r.id), r.path, r.title, r.artist, r.album, duration, r.format, r.bit_rate,
                         r.sample_rate, r.channels, best)  # fmt: skip


__all__ = ["MAX_GROUPS", "DuplicateFile", "DuplicateGroup", "DuplicateService", "check_kind", "hidden_copies"]
