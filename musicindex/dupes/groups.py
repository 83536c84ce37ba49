"""Groups of files: "same recording" (the fingerprint) and, weaker, "same song" (the title and artist, with the
audio as a check); the rule that makes groups out of pairs (pure functions).

Same song (``song_evidence``): the titles' bases are equal and not generic and an artist is shared
(``titles.SongKey``); the durations are within ``MAX_DURATION_RATIO`` of each other; the musicnn embeddings, when
both have one, are at least ``MIN_EMBEDDING_SIMILARITY`` alike (else the audio says another song). The confidence
starts at ``SONG_BASE`` and adds up to 0.2 for close durations, up to 0.25 for alike embeddings (0.1 when
unknown) and 0.2 when the fingerprints share a stretch (a radio edit cut from the album take); at most
``SONG_MAX`` (a song link is never as sure as a recording). Pairs under ``SONG_MIN_CONFIDENCE`` are no link.

Grouping (``group``): connected components, the strongest links first (Kruskal), each group's confidence the
weakest link that holds it together. Same-recording groups come from recording links only. Same-song groups
join whole recording groups by song links: every copy of a recording is in its song's group, and a song link
never puts two files in one recording group. A song group is listed only when it holds two recordings or more.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..vocab import DUPLICATE_KINDS as KINDS
from ..vocab import SAME_RECORDING, SAME_SONG
from .titles import SongKey, song_key

MAX_DURATION_RATIO = 2.0
MIN_EMBEDDING_SIMILARITY = 0.6
SONG_BASE = 0.45
SONG_MAX = 0.95
SONG_MIN_CONFIDENCE = 0.6


@dataclass(frozen=True)
class Link:
    """Two tracks of one group kind, with a confidence in [0, 1] and why."""

    a: int
    b: int
    kind: str
    confidence: float
    why: str = ""


@dataclass(frozen=True)
class Group:
    kind: str
    confidence: float
    track_ids: tuple[int, ...]
    links: tuple[Link, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class SongFacts:
    """What the same-song rule reads of a track."""

    track_id: int
    title: str | None
    artist: str | None
    duration: float | None = None
    embedding: np.ndarray | None = None  # the musicnn embedding, any scale

    @property
    def key(self) -> SongKey:
        return song_key(self.title, self.artist)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(np.dot(a, b) / (na * nb)) if na > 0 and nb > 0 else 0.0


def song_evidence(a: SongFacts, b: SongFacts, *, shared_audio: bool = False) -> Link | None:
    """A same-song link between ``a`` and ``b``, or None (see the module doc). ``shared_audio``: their
    fingerprints agree over a stretch without being one recording."""
    ka, kb = a.key, b.key
    if not ka.same_song(kb):
        return None
    confidence, why = SONG_BASE, [f"title {ka.title.base!r} and artist"]
    if a.duration and b.duration:
        ratio = max(a.duration, b.duration) / min(a.duration, b.duration)
        if ratio > MAX_DURATION_RATIO:
            return None
        confidence += 0.2 * (1.0 - math.log(ratio) / math.log(MAX_DURATION_RATIO))
        why.append(f"durations {a.duration:.0f} s and {b.duration:.0f} s")
    if a.embedding is not None and b.embedding is not None:
        sim = _cosine(np.asarray(a.embedding, dtype=np.float64), np.asarray(b.embedding, dtype=np.float64))
        if sim < MIN_EMBEDDING_SIMILARITY:
            return None
        confidence += 0.25 * min(1.0, (sim - MIN_EMBEDDING_SIMILARITY) / (0.95 - MIN_EMBEDDING_SIMILARITY))
        why.append(f"sound {sim:.2f} alike")
    else:
        confidence += 0.1
    if shared_audio:
        confidence += 0.2
        why.append("a shared stretch of audio")
    versions = sorted(ka.title.versions ^ kb.title.versions)
    if versions:
        why.append("versions: " + ", ".join(versions))
    confidence = min(SONG_MAX, confidence)
    if confidence < SONG_MIN_CONFIDENCE:
        return None
    return Link(a.track_id, b.track_id, SAME_SONG, round(confidence, 3), "; ".join(why))


def recording_link(a: int, b: int, verdict) -> Link | None:
    """The same-recording link of a ``recording.decide`` verdict (None when it says no)."""
    return Link(a, b, SAME_RECORDING, verdict.confidence, verdict.reason) if verdict.same else None


class _Sets:
    """Union-find over track ids."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def _components(sets: _Sets, tree: list[Link], kind: str, members: Iterable[int]) -> list[Group]:
    by_root: dict[int, list[int]] = {}
    for t in members:
        by_root.setdefault(sets.find(t), []).append(t)
    links: dict[int, list[Link]] = {}
    for link in tree:
        links.setdefault(sets.find(link.a), []).append(link)
    out = []
    for root, ids in by_root.items():
        held = links.get(root, [])
        if len(ids) > 1 and held:
            out.append(Group(kind, min(x.confidence for x in held), tuple(sorted(ids)), tuple(held)))
    return sorted(out, key=lambda g: g.track_ids)


def group(recording_links: Sequence[Link], song_links: Sequence[Link] = ()) -> list[Group]:
    """Same-recording groups, then same-song groups over them (see the module doc), each sorted by track id."""
    rec = _Sets()
    rec_tree = [x for x in sorted(recording_links, key=lambda x: -x.confidence) if rec.union(x.a, x.b)]
    members = {t for x in recording_links for t in (x.a, x.b)} | {t for x in song_links for t in (x.a, x.b)}
    recordings = _components(rec, rec_tree, SAME_RECORDING, members)
    songs = _Sets()
    for t in members:
        songs.union(t, rec.find(t))  # a recording group enters a song group whole
    song_tree = [x for x in sorted(song_links, key=lambda x: -x.confidence) if songs.union(x.a, x.b)]
    song_groups = [
        g for g in _components(songs, song_tree, SAME_SONG, members) if len({rec.find(t) for t in g.track_ids}) > 1
    ]
    return recordings + song_groups


__all__ = [
    "KINDS",
    "SAME_RECORDING",
    "SAME_SONG",
    "Group",
    "Link",
    "SongFacts",
    "group",
    "recording_link",
    "song_evidence",
]
