"""The catalog's items read by id in a snapshot: songs, albums and artists with the listener's annotations (read
by column name), and what the catalog's services share (one item or its 404, a list's page).

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

from musicindex.errors import ItemNotFoundError
from musicindex.mediatypes import media_type_of
from musicindex.query.descriptors import SONG_SQL
from musicindex.query.duplicates import hidden_copies
from musicindex.query.items import Album, Annotation, Artist, ReplayGain, Song, iso
from musicindex.query.snapshot import Snapshot
from musicindex.query.tags import tag_version
from musicindex.query.validation import check_int
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


def artist_albums(artist: str) -> str:
    """SQL condition on ``al``: an album of the artist ``artist`` (an SQL id expression) with indexed songs, as
    its album artist or holding songs of its (``getArtist``'s album list and its ``albumCount``)."""
    return (
        f"al.song_count > 0 AND (al.artist_id = {artist} OR al.id IN "
        f"(SELECT album_id FROM tracks WHERE artist_id = {artist} AND status = '{INDEXED}'))"
    )


TRACK_NO_SQL = (
    "coalesce(t.track_no, CASE WHEN t.album_id IS NOT NULL THEN (SELECT count(*) FROM tracks o "
    f"WHERE o.album_id = t.album_id AND o.status = '{INDEXED}' AND o.track_no IS NULL "
    "AND o.disc_no IS NOT DISTINCT FROM t.disc_no AND (o.path, o.id) <= (t.path, t.id)) END)"
)
"""A song's track number: its tag's, else its place in file-name order among the untagged songs of its album's
disc (an app sorts an album by it; tagged and untagged songs of one album each keep their own sequence)."""

ANNOTATION_COLUMNS = "{a}.starred_at, {a}.rating, coalesce({a}.play_count, 0) AS play_count, {a}.last_played"


def _annotation(r: Any) -> Annotation:
    """The annotation of a row holding ``ANNOTATION_COLUMNS``."""
    rating = int(r.rating) if r.rating is not None else None
    return Annotation(iso(r.starred_at), rating, int(r.play_count or 0), iso(r.last_played))


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
    return outermost(snap.value(f"SELECT {ROOTS_SQL}") or [])


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
    by_id = {int(r.id): r for r in found}
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

    def build(r: Any) -> Song:
        if not folders:  # the music folders ride on every row (ROOTS_SQL): read them once
            folders.append(outermost(r.roots or []))
        return _song(r, folders[0])

    return _by_ids(
        snap,
        "SELECT t.id, t.title, t.path, t.album_id, al.name AS album, t.artist_id, "
        "coalesce((SELECT ar.name FROM artists ar WHERE ar.id = t.artist_id), t.artist) AS artist, "
        f"al.artist_id AS album_artist_id, {TRACK_NO_SQL} AS track_no, t.disc_no, t.year, "
        "CASE WHEN cardinality(t.genres) > 0 THEN t.genres ELSE array_remove(ARRAY[(SELECT "
        f"{gexpr} FROM tracks g {gjoin}WHERE g.id = t.id)]::text[], NULL) END AS genres, "
        "t.size, t.duration, t.bit_rate, t.created_at, al.cover_kind IS NOT NULL AS has_cover, "
        "t.musicbrainz_id, dsc.bpm, dsc.track_gain, dsc.track_peak, dag.album_gain, dag.album_peak, "
        f"{moods} AS moods, {ANNOTATION_COLUMNS.format(a='a')}, {'NULL' if roots is not None else ROOTS_SQL} AS roots "
        "FROM tracks t "
        "LEFT JOIN LATERAL (SELECT name, artist_id, cover_kind FROM albums WHERE id = t.album_id OFFSET 0) al ON true "
        f"{SONG_SQL}{annotation_join('a', 'track', 't.id')}"
        f"WHERE t.id = ANY(%(ids)s) AND t.status = '{INDEXED}'",
        user_id,
        ids,
        build,
        moods=list(MOOD_TAGS),
    )


def _song(r: Any, roots: Sequence[str]) -> Song:
    path = str(r.path)
    name = os.path.basename(path)
    stem, suffix = os.path.splitext(name)
    return Song(
        id=int(r.id),
        title=r.title or stem or name,
        album_id=r.album_id,
        album=r.album,
        artist_id=r.artist_id,
        artist=r.artist,
        album_artist_id=r.album_artist_id,
        track=r.track_no,
        disc=r.disc_no,
        year=r.year,
        genres=tuple(r.genres or ()),
        size=int(r.size) if r.size is not None else None,
        suffix=suffix.lstrip(".").lower(),
        content_type=media_type_of(name),
        duration=float(r.duration) if r.duration is not None else None,
        bit_rate=r.bit_rate,
        path=relative_path(path, roots),
        created=iso(r.created_at),
        has_cover=bool(r.has_cover),
        musicbrainz_id=r.musicbrainz_id,
        bpm=int(r.bpm) if r.bpm is not None else None,
        replay_gain=ReplayGain.of(r.track_gain, r.album_gain, r.track_peak, r.album_peak),
        moods=tuple(r.moods or ()),
        annotation=_annotation(r),
    )


def albums(snap: Snapshot, user_id: int | None, ids: Sequence[int]) -> list[Album]:
    """The albums of ``ids`` in that order."""
    return _by_ids(
        snap,
        "SELECT al.id, al.name, al.sort_key, al.artist_id, ar.name AS artist, al.song_count, al.duration, al.year, "
        f"al.genre, al.created_at, al.cover_kind IS NOT NULL AS has_cover, al.musicbrainz_id, "
        f"{ANNOTATION_COLUMNS.format(a='a')} "
        f"FROM albums al JOIN artists ar ON ar.id = al.artist_id {annotation_join('a', 'album', 'al.id')}"
        "WHERE al.id = ANY(%(ids)s)",
        user_id,
        ids,
        lambda r: Album(
            id=int(r.id), name=r.name, sort_name=r.sort_key, artist_id=int(r.artist_id), artist=r.artist,
            song_count=int(r.song_count), duration=float(r.duration), year=r.year, genre=r.genre,
            created=iso(r.created_at), has_cover=bool(r.has_cover), musicbrainz_id=r.musicbrainz_id,
            annotation=_annotation(r),
        ),
    )  # fmt: skip


def artists(snap: Snapshot, user_id: int | None, ids: Sequence[int]) -> list[Artist]:
    """The artists of ``ids`` in that order (``album_count``: the albums with indexed songs they are the album
    artist of: one index probe each; ``CatalogService.artist`` counts its whole ``artist_albums`` list)."""
    return _by_ids(
        snap,
        "SELECT ar.id, ar.name, ar.sort_key, ar.musicbrainz_id, "
        "(SELECT count(*) FROM albums al WHERE al.artist_id = ar.id AND al.song_count > 0) AS album_count, "
        "EXISTS (SELECT 1 FROM albums al WHERE al.artist_id = ar.id AND al.cover_kind IS NOT NULL) AS has_cover, "
        f"{ANNOTATION_COLUMNS.format(a='a')} FROM artists ar {annotation_join('a', 'artist', 'ar.id')}"
        "WHERE ar.id = ANY(%(ids)s)",
        user_id,
        ids,
        lambda r: Artist(
            id=int(r.id), name=r.name, sort_name=r.sort_key, album_count=int(r.album_count),
            has_cover=bool(r.has_cover), musicbrainz_id=r.musicbrainz_id, annotation=_annotation(r),
        ),
    )  # fmt: skip


def one_artist(snap: Snapshot, user_id: int | None, artist_id: int) -> Artist:
    """An artist; ItemNotFoundError when there is none."""
    found = artists(snap, user_id, [artist_id])
    if not found:
        raise ItemNotFoundError(f"no artist with id {artist_id}")
    return found[0]


def one_album(snap: Snapshot, user_id: int | None, album_id: int) -> Album:
    """An album; ItemNotFoundError when there is none."""
    found = albums(snap, user_id, [album_id])
    if not found:
        raise ItemNotFoundError(f"no album with id {album_id}")
    return found[0]


def album_songs(snap: Snapshot, user_id: int | None, album_id: int) -> list[Song]:
    """An album's songs in disc and track order (untagged ones in file-name order: ``TRACK_NO_SQL``); a recording the
    album holds in several files is listed once, by its preferred file (``query.duplicates.hidden_copies``; the
    others stay reachable by id and on /duplicates)."""
    found = snap.ids(
        f"SELECT id FROM tracks WHERE album_id = %(a)s AND status = '{INDEXED}' "
        "ORDER BY disc_no NULLS FIRST, track_no NULLS FIRST, path, id",
        {"a": album_id},
    )
    hidden = hidden_copies(snap, found)
    return songs(snap, user_id, [t for t in found if t not in hidden])


MAX_PAGE = 500
"""Most items of one list answer (a larger size is cut to this)."""
MAX_OFFSET = 10_000_000


def page(size: Any, offset: Any = 0, *, default: int = 10) -> tuple[int, int]:
    """(size, offset) of a list: size 0..MAX_PAGE (larger is cut to MAX_PAGE), offset 0..MAX_OFFSET."""
    size = default if size is None else check_int(size, "size", 0, 2**31 - 1)
    return min(size, MAX_PAGE), check_int(offset or 0, "offset", 0, MAX_OFFSET)
