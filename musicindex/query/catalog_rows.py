"""The catalog's items read by id in a snapshot: songs, albums and artists with the listener's annotations.

Every list the catalog answers is found as ids first (its own WHERE / ORDER BY / LIMIT) and then read here in one
statement per kind, so each item has one definition of its fields: ``songs``, ``albums``, ``artists`` keep the
order of the ids they are given (and repeats, for playlists) and leave out ids that are not (or no longer) there.

The per-item lookups (album, artist, tempo, mood tags, genre prediction, annotation) are correlated subqueries
fenced with ``OFFSET 0``: a page of 500 ids is then 500 primary-key probes per table, where the planner would
otherwise hash-join whole tables (the tag table alone is as large as the library).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from musicindex.mediatypes import media_type_of
from musicindex.query.items import Album, Annotation, Artist, Song, iso
from musicindex.query.snapshot import Snapshot
from musicindex.query.tags import tag_version
from musicindex.vocab import INDEXED, MOOD_TAGS


def annotation_join(alias: str, item_type: str, item: str, *, inner: bool = False) -> str:
    """The listener's (``%(uid)s``) annotation of ``item`` (an SQL id expression) as ``alias``: looked up per row
    (LEFT JOIN LATERAL, a primary-key probe), or with ``inner`` an inner join that keeps only annotated rows (the
    listener's lists: driven by the annotations)."""
    if inner:
        return (
            f"JOIN annotations {alias} ON {alias}.user_id = %(uid)s AND {alias}.item_type = '{item_type}' "
            f"AND {alias}.item_id = {item} "
        )
    cond = f"user_id = %(uid)s AND item_type = '{item_type}'"
    return (
        f"LEFT JOIN LATERAL (SELECT starred_at, rating, play_count, last_played FROM annotations WHERE {cond} "
        f"AND item_id = {item} OFFSET 0) {alias} ON true "
    )


ANNOTATION_COLUMNS = "{a}.starred_at, {a}.rating, coalesce({a}.play_count, 0), {a}.last_played"


def _annotation(r: Sequence[Any]) -> Annotation:
    return Annotation(iso(r[0]), int(r[1]) if r[1] is not None else None, int(r[2] or 0), iso(r[3]))


def genres_sql(snap: Snapshot, track: str = "t") -> tuple[str, str]:
    """(JOIN clause, SQL text[] expression) of a track's genres: its genre tags, else its label, else the genre
    model's prediction (``Snapshot.genre_join``)."""
    gjoin, gexpr = snap.genre_join(track)
    expr = (
        f"(CASE WHEN cardinality({track}.genres) > 0 THEN {track}.genres WHEN {gexpr} IS NOT NULL "
        f"THEN ARRAY[{gexpr}]::text[] ELSE '{{}}'::text[] END)"
    )
    return gjoin, expr


def relative_path(path: str, roots: Sequence[str]) -> str:
    """``path`` relative to the innermost music folder holding it (else its last two parts): what a music app
    shows, never the server's absolute layout."""
    best = ""
    for root in roots:
        r = root.rstrip("/")
        if path.startswith(r + "/") and len(r) > len(best):
            best = r
    if best:
        return path[len(best) + 1 :]
    parts = path.strip("/").split("/")
    return "/".join(parts[-2:])


ROOTS_SQL = "(SELECT array_agg(DISTINCT r) FROM ingest_batches, jsonb_array_elements_text(roots) AS r)"
"""Every folder ever ingested, as one SQL array (a column of the songs query: no round trip of its own)."""


def music_roots(snap: Snapshot) -> list[str]:
    """The outermost folders ever ingested, sorted (each a music folder, numbered from 1 in this order)."""
    row = snap.one(f"SELECT {ROOTS_SQL}")
    return outermost(row[0] or [])


def outermost(roots: Sequence[str]) -> list[str]:
    """``roots`` without those inside another, sorted."""
    out: list[str] = []
    for r in sorted({str(x) for x in roots}):
        if not any(r == o or r.startswith(o.rstrip("/") + "/") for o in out):
            out.append(r)
    return out


def _by_ids(snap: Snapshot, sql: str, user_id: int | None, ids: Sequence[int], build: Any, **params: Any) -> list[Any]:
    """``build(row)`` of each row ``sql`` reads for ``ids`` (``%(ids)s``, ``%(uid)s``), in the order of ``ids``
    (repeats kept, missing ones left out)."""
    wanted = [int(i) for i in ids]
    if not wanted:
        return []
    found = snap.all(sql, {"ids": sorted(set(wanted)), "uid": user_id or 0, **params})
    by_id = {int(r[0]): r for r in found}
    built: dict[int, Any] = {}
    return [built.setdefault(i, build(by_id[i])) for i in wanted if i in by_id]


def songs(snap: Snapshot, user_id: int | None, ids: Sequence[int], roots: Sequence[str] | None = None) -> list[Song]:
    """The indexed songs of ``ids`` in that order (repeats kept)."""
    gjoin, gexpr = snap.genre_join("g", "gp")  # the rule of Snapshot.genre_join, on the row's own track (alias g)
    tagged = tag_version(snap)  # the tags that answer (musicnn's by default): its mood tags are the song's moods
    moods = "'{}'::text[]"
    if tagged is not None:
        moods = (
            "(SELECT ARRAY(SELECT m FROM unnest(tt.top_tags) m WHERE m = ANY(%(moods)s)) FROM track_tags tt "
            f"WHERE tt.model_version_id = {int(tagged)} AND tt.track_id = t.id)"
        )
    folders: list[Sequence[str]] = [roots] if roots is not None else []

    def build(r: Sequence[Any]) -> Song:
        if not folders:  # the music folders ride on every row (ROOTS_SQL): read them once
            folders.append(outermost(r[24] or []))
        return _song(r, folders[0])

    return _by_ids(
        snap,
        "SELECT t.id, t.title, t.path, t.album_id, al.name, t.artist_id, "
        "coalesce((SELECT ar.name FROM artists ar WHERE ar.id = t.artist_id), t.artist), al.artist_id, "
        "t.track_no, t.disc_no, t.year, CASE WHEN cardinality(t.genres) > 0 THEN t.genres ELSE array_remove("
        f"ARRAY[(SELECT {gexpr} FROM tracks g {gjoin}WHERE g.id = t.id)]::text[], NULL) END, "
        "t.size, t.duration, t.bit_rate, t.created_at, al.cover_kind IS NOT NULL, t.musicbrainz_id, "
        f"(SELECT round(f.tempo)::int FROM track_features f WHERE f.track_id = t.id), {moods}, "
        f"{ANNOTATION_COLUMNS.format(a='a')}, {'NULL' if roots is not None else ROOTS_SQL} FROM tracks t "
        "LEFT JOIN LATERAL (SELECT name, artist_id, cover_kind FROM albums WHERE id = t.album_id OFFSET 0) al ON true "
        f"{annotation_join('a', 'track', 't.id')}"
        f"WHERE t.id = ANY(%(ids)s) AND t.status = '{INDEXED}'",
        user_id,
        ids,
        build,
        moods=list(MOOD_TAGS),
    )


def _song(r: Sequence[Any], roots: Sequence[str]) -> Song:
    path = str(r[2])
    name = os.path.basename(path)
    stem, suffix = os.path.splitext(name)
    return Song(
        id=int(r[0]),
        title=r[1] or stem or name,
        album_id=r[3],
        album=r[4],
        artist_id=r[5],
        artist=r[6],
        album_artist_id=r[7],
        track=r[8],
        disc=r[9],
        year=r[10],
        genres=tuple(r[11] or ()),
        size=int(r[12]) if r[12] is not None else None,
        suffix=suffix.lstrip(".").lower(),
        content_type=media_type_of(name),
        duration=float(r[13]) if r[13] is not None else None,
        bit_rate=r[14],
        path=relative_path(path, roots),
        created=iso(r[15]),
        has_cover=bool(r[16]),
        musicbrainz_id=r[17],
        bpm=int(r[18]) if r[18] is not None else None,
        moods=tuple(r[19] or ()),
        annotation=_annotation(r[20:24]),
    )


def albums(snap: Snapshot, user_id: int | None, ids: Sequence[int]) -> list[Album]:
    """The albums of ``ids`` in that order."""
    return _by_ids(
        snap,
        "SELECT al.id, al.name, al.sort_key, al.artist_id, ar.name, al.song_count, al.duration, al.year, al.genre, "
        f"al.created_at, al.cover_kind IS NOT NULL, al.musicbrainz_id, {ANNOTATION_COLUMNS.format(a='a')} "
        f"FROM albums al JOIN artists ar ON ar.id = al.artist_id {annotation_join('a', 'album', 'al.id')}"
        "WHERE al.id = ANY(%(ids)s)",
        user_id,
        ids,
        lambda r: Album(int(r[0]), r[1], r[2], int(r[3]), r[4], int(r[5]), float(r[6]), r[7], r[8], iso(r[9]),
                        bool(r[10]), r[11], _annotation(r[12:16])),
    )  # fmt: skip


def artists(snap: Snapshot, user_id: int | None, ids: Sequence[int]) -> list[Artist]:
    """The artists of ``ids`` in that order (``album_count``: their albums with indexed songs)."""
    return _by_ids(
        snap,
        "SELECT ar.id, ar.name, ar.sort_key, ar.musicbrainz_id, "
        "(SELECT count(*) FROM albums al WHERE al.artist_id = ar.id AND al.song_count > 0), "
        "EXISTS (SELECT 1 FROM albums al WHERE al.artist_id = ar.id AND al.cover_kind IS NOT NULL), "
        f"{ANNOTATION_COLUMNS.format(a='a')} FROM artists ar {annotation_join('a', 'artist', 'ar.id')}"
        "WHERE ar.id = ANY(%(ids)s)",
        user_id,
        ids,
        lambda r: Artist(int(r[0]), r[1], r[2], int(r[4]), bool(r[5]), r[3], _annotation(r[6:10])),
    )


def ids(snap: Snapshot, sql: str, params: dict[str, Any] | None = None) -> list[int]:
    """The first column of ``sql`` as ints."""
    return [int(r[0]) for r in snap.all(sql, params)]
