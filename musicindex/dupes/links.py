"""Incremental grouping: a new (or changed) file's links to the stored copies of its recording and the other
versions of its song, written when the file is indexed; groups read from the links between live tracks.

``index_track`` runs in the ingest batch's transaction (the ``fingerprint`` stage's write), for one track:

1. its old links go (a changed file is looked up again);
2. its fingerprint looks up the index (``store.find_recordings``): every stored track verified as the same
   recording is linked (``same recording``);
3. its fingerprint, keys and song key are stored (so the next file finds it);
4. the stored tracks with the same song key (the title's base, ``titles.song_title``) are checked by the
   same-song rule (``groups.song_evidence``: title and artist, durations, the musicnn embeddings when both have
   one, a shared stretch of audio); a track already linked as the same recording is not linked again as the same
   song.

Nothing is computed over the whole library. A file that goes missing keeps its links but leaves its groups: groups
are made from the links between *indexed* tracks only (``load_groups``), so it comes back into them when it is
seen again; a deleted track's links go with its row (ON DELETE CASCADE). Concurrent workers: a transaction-level
advisory lock (``LOCK_KEY``) serialises the lookups-and-stores of two batches, so two copies ingested at the same
moment by two workers still find each other (the second waits for the first to commit).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.orm import Session

from ..audio.fingerprint import Fingerprint
from ..vocab import ACTIVE, INDEXED, MUSICNN, SAME_RECORDING, SAME_SONG
from . import store
from .groups import Group, Link, SongFacts, group, recording_link, song_evidence
from .recording import MIN_MATCHES, compare
from .titles import song_key

LOCK_KEY = 0x6D69_6475  # "midu": the advisory lock of the fingerprint index's writers
MAX_SONG_CANDIDATES = 200
"""Most stored tracks of one song key checked for a new file (a common title such as "Home" can have many)."""

LINKS = "duplicate_links"


@dataclass(frozen=True)
class TrackPrint:
    """What the fingerprint stage hands to ``index_track``: the fingerprint or why there is none, and the tags."""

    fingerprint: Fingerprint | None
    error: str | None
    title: str | None
    artist: str | None
    duration: float | None


def song_of(title: str | None, artist: str | None) -> str | None:
    """The stored same-song key: the title's base, or None when no song group can hold the track (a generic title,
    an unknown artist)."""
    key = song_key(title, artist)
    return None if key.title.generic or not key.artists else key.title.base


def lock(s: Session) -> None:
    """Serialise the index's writers until ``s``'s transaction ends."""
    s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


def forget_links(s: Session, track_ids: Iterable[int]) -> None:
    s.execute(
        text(f"DELETE FROM {LINKS} WHERE a = ANY(:ids) OR b = ANY(:ids)").bindparams(
            bindparam("ids", type_=ARRAY(BIGINT))
        ),
        {"ids": [int(i) for i in track_ids]},
    )


def add_links(s: Session, links: Sequence[Link]) -> None:
    for link in links:
        a, b = sorted((int(link.a), int(link.b)))
        s.execute(
            text(
                f"""INSERT INTO {LINKS} (a, b, kind, confidence, why) VALUES (:a, :b, :k, :c, :w)
                    ON CONFLICT (a, b, kind) DO UPDATE SET confidence = EXCLUDED.confidence, why = EXCLUDED.why,
                        found_at = now()"""
            ),
            {"a": a, "b": b, "k": link.kind, "c": float(min(1.0, max(0.0, link.confidence))), "w": link.why},
        )


def _embeddings(s: Session, track_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The musicnn embeddings of ``track_ids`` under its active version (the same-song rule's audio check; a track
    embedded in this batch is there: the embedding stages write before this one)."""
    rows = s.execute(
        text(
            """SELECT e.track_id, e.embedding::text FROM embeddings e
               JOIN model_versions v ON v.id = e.model_version_id AND v.kind = :kind AND v.state = :active
               WHERE e.track_id = ANY(:ids)"""
        ).bindparams(bindparam("ids", type_=ARRAY(BIGINT))),
        {"kind": MUSICNN, "active": ACTIVE, "ids": [int(t) for t in track_ids]},
    )
    return {int(t): np.asarray(json.loads(v), dtype=np.float64) for t, v in rows}


def _song_links(s: Session, track_id: int, tp: TrackPrint, song: str, recorded: set[int]) -> list[Link]:
    rows = s.execute(
        text(
            """SELECT f.track_id, t.title, t.artist, t.duration, f.data FROM track_fingerprints f
               JOIN tracks t ON t.id = f.track_id
               WHERE f.song = :song AND f.track_id <> :t ORDER BY f.track_id LIMIT :n"""
        ),
        {"song": song, "t": track_id, "n": MAX_SONG_CANDIDATES},
    ).all()
    vectors = _embeddings(s, [track_id, *(int(r[0]) for r in rows)]) if rows else {}
    me = SongFacts(track_id, tp.title, tp.artist, tp.duration, vectors.get(track_id))
    out = []
    for tid, title, artist, duration, data in rows:
        if int(tid) in recorded:
            continue
        shared = False
        if tp.fingerprint is not None and data is not None:
            other = Fingerprint.from_bytes(bytes(data))
            shared = other.version == tp.fingerprint.version and compare(tp.fingerprint, other).matches >= MIN_MATCHES
        other_facts = SongFacts(int(tid), title, artist, duration, vectors.get(int(tid)))
        link = song_evidence(me, other_facts, shared_audio=shared)
        if link is not None:
            out.append(link)
    return out


def index_track(s: Session, track_id: int, tp: TrackPrint) -> list[Link]:
    """Store ``track_id``'s fingerprint (or its reason) and link it to its copies and versions (module doc); the
    caller holds :func:`lock`. Returns the links written."""
    forget_links(s, [track_id])
    links: list[Link] = []
    if tp.fingerprint is not None:
        for c in store.find_recordings(s, tp.fingerprint, exclude=[track_id]):
            link = recording_link(track_id, c.track_id, c.verdict)
            if link is not None:
                links.append(link)
    song = song_of(tp.title, tp.artist)
    store.store(s, track_id, tp.fingerprint, None if tp.fingerprint is not None else (tp.error or "no fingerprint"),
                song=song)  # fmt: skip
    if song is not None:
        links += _song_links(s, track_id, tp, song, {x.b for x in links})
    add_links(s, links)
    return links


def choose(s: Session, track_id: int) -> None:
    """Record that the listener prefers ``track_id`` in its groups (now: the latest choice wins)."""
    s.execute(
        text(
            """INSERT INTO duplicate_choices (track_id) VALUES (:t)
               ON CONFLICT (track_id) DO UPDATE SET chosen_at = clock_timestamp()"""
        ),
        {"t": int(track_id)},
    )


def load_links(s: Session | Connection, track_ids: Iterable[int] | None = None, kind: str | None = None) -> list[Link]:
    """The links between indexed tracks (all of them, or those touching ``track_ids``; ``kind``: of one kind only);
    ``s``: a session or a connection (the query layer's read-only snapshot)."""
    where = "AND l.kind = :kind" if kind is not None else ""
    params: dict = {"kind": kind} if kind is not None else {}
    if track_ids is not None:
        where += " AND (l.a = ANY(:ids) OR l.b = ANY(:ids))"
        params["ids"] = [int(i) for i in track_ids]
    stmt = text(
        f"""SELECT l.a, l.b, l.kind, l.confidence, l.why FROM {LINKS} l
            JOIN tracks ta ON ta.id = l.a AND ta.status = :ok
            JOIN tracks tb ON tb.id = l.b AND tb.status = :ok
            WHERE true {where}"""
    )
    if track_ids is not None:
        stmt = stmt.bindparams(bindparam("ids", type_=ARRAY(BIGINT)))
    rows = s.execute(stmt, {"ok": INDEXED, **params}).all()
    return [Link(int(a), int(b), kind, float(c), why) for a, b, kind, c, why in rows]


def load_groups(s: Session | Connection, kind: str | None = None) -> list[Group]:
    """Every group of live (indexed) tracks, recordings first, each sorted by track id (``kind``: one kind only)."""
    links = load_links(s)
    groups = group([x for x in links if x.kind == SAME_RECORDING], [x for x in links if x.kind == SAME_SONG])
    return [g for g in groups if kind is None or g.kind == kind]


def twins(s: Session | Connection, track_ids: Iterable[int], kind: str | None = None) -> dict[int, set[int]]:
    """For each of ``track_ids`` that has any, the other live tracks of its groups (either kind, or ``kind``),
    found by following links from it (a group is connected: a few hops at most)."""
    seeds = {int(i) for i in track_ids}
    if not seeds:
        return {}
    members: dict[int, set[int]] = {}
    adjacency: dict[int, set[int]] = {}
    visited: set[int] = set()
    frontier = set(seeds)
    while frontier:
        for link in load_links(s, frontier, kind):
            adjacency.setdefault(link.a, set()).add(link.b)
            adjacency.setdefault(link.b, set()).add(link.a)
        visited |= frontier
        frontier = {n for t in frontier for n in adjacency.get(t, ())} - visited
    for t in seeds:
        seen, todo = {t}, [t]
        while todo:
            for n in adjacency.get(todo.pop(), ()):
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        members[t] = seen - {t}
    return {t: m for t, m in members.items() if m}


__all__ = [
    "LOCK_KEY",
    "MAX_SONG_CANDIDATES",
    "TrackPrint",
    "add_links",
    "choose",
    "forget_links",
    "index_track",
    "load_groups",
    "load_links",
    "lock",
    "song_of",
    "twins",
]
