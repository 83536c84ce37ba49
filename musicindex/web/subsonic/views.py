"""The catalog's items as Subsonic elements (``Child``, ``AlbumID3``, ``ArtistID3``, ``Artist``, ``Playlist``, ...)
with the OpenSubsonic fields, and the ids of the API.

Ids are type-prefixed strings, so each names one thing: ``tr-12`` (a song), ``al-3`` (an album), ``ar-7`` (an
artist), ``pl-2`` (a playlist); music folders are numbered (the XSD makes their id an integer). A cover's id is the
id of the album (or artist) it belongs to.
"""

from __future__ import annotations

import re
from typing import Any

from musicindex.query.items import Album, Annotation, Artist, Playlist, Song
from musicindex.vocab import ALBUM, ARTIST, TRACK
from musicindex.web.subsonic.protocol import NOT_FOUND, Clean, SubsonicError

PLAYLIST = "playlist"
PREFIX = {TRACK: "tr", ALBUM: "al", ARTIST: "ar", PLAYLIST: "pl"}
KIND = {p: k for k, p in PREFIX.items()}
_ID = re.compile(r"^(tr|al|ar|pl)-(\d{1,18})$")


def sid(kind: str, item_id: int | None) -> str | None:
    """The API id of an item (None for None)."""
    return None if item_id is None else f"{PREFIX[kind]}-{int(item_id)}"


def parse_id(value: str | None, *kinds: str) -> tuple[str, int]:
    """(kind, id) of an API id of one of ``kinds``; error 70 for anything else (an id this server never gave)."""
    m = _ID.match((value or "").strip())
    if m is None or KIND[m.group(1)] not in kinds:
        shown = (value or "")[:40]
        raise SubsonicError(NOT_FOUND, f"no {' or '.join(kinds)} with id {shown!r}")
    return KIND[m.group(1)], int(m.group(2))


def parse_ids(values: list[str], *kinds: str) -> list[int]:
    return [parse_id(v, *kinds)[1] for v in values]


def _annotation(a: Annotation) -> dict[str, Any]:
    return {"starred": a.starred, "userRating": a.rating, "playCount": a.play_count}


def _seconds(x: float | None) -> int:
    return round(x) if x is not None else 0


def _replay_gain(s: Song) -> dict[str, Any] | None:
    """OpenSubsonic's ``replayGain`` (gains in dB, peaks linear), from the measured loudness; absent when unknown."""
    rg = s.replay_gain
    if rg is None:
        return None
    return Clean.of({"trackGain": rg.track_gain, "albumGain": rg.album_gain, "trackPeak": rg.track_peak,
                     "albumPeak": rg.album_peak})  # fmt: skip


def song(s: Song) -> dict[str, Any]:
    """A song as a ``Child`` (classic fields, then OpenSubsonic's)."""
    return Clean.of(
        {
            "id": sid(TRACK, s.id),
            "parent": sid(ALBUM, s.album_id),
            "isDir": False,
            "title": s.title,
            "album": s.album,
            "artist": s.artist,
            "track": s.track,
            "year": s.year,
            "genre": s.genre,
            "coverArt": sid(ALBUM, s.album_id) if s.has_cover else None,
            "size": s.size,
            "contentType": s.content_type,
            "suffix": s.suffix,
            "duration": _seconds(s.duration),
            "bitRate": s.bit_rate,
            "path": s.path,
            "isVideo": False,
            **_annotation(s.annotation),
            "discNumber": s.disc,
            "created": s.created,
            "albumId": sid(ALBUM, s.album_id),
            "artistId": sid(ARTIST, s.artist_id),
            "type": "music",
            "mediaType": "song",
            "played": s.annotation.played,
            "bpm": s.bpm,
            "musicBrainzId": s.musicbrainz_id,
            "genres": [{"name": g} for g in s.genres],
            "moods": list(s.moods),
            "replayGain": _replay_gain(s),  # after genres and moods: the XML sequence's order
        }
    )


def album_id3(a: Album) -> dict[str, Any]:
    """An album as an ``AlbumID3``."""
    return Clean.of(
        {
            "id": sid(ALBUM, a.id),
            "name": a.name,
            "artist": a.artist,
            "artistId": sid(ARTIST, a.artist_id),
            "coverArt": sid(ALBUM, a.id) if a.has_cover else None,
            "songCount": a.song_count,
            "duration": _seconds(a.duration),
            "playCount": a.annotation.play_count,
            "created": a.created,
            "starred": a.annotation.starred,
            "year": a.year,
            "genre": a.genre,
            "played": a.annotation.played,
            "userRating": a.annotation.rating,
            "musicBrainzId": a.musicbrainz_id,
            "sortName": a.sort_name,
            "genres": [{"name": a.genre}] if a.genre else [],
        }
    )


def album_child(a: Album) -> dict[str, Any]:
    """An album as a folder ``Child`` (``getAlbumList``, ``getMusicDirectory`` of an artist, ``getStarred``)."""
    return Clean.of(
        {
            "id": sid(ALBUM, a.id),
            "parent": sid(ARTIST, a.artist_id),
            "isDir": True,
            "title": a.name,
            "album": a.name,
            "artist": a.artist,
            "year": a.year,
            "genre": a.genre,
            "coverArt": sid(ALBUM, a.id) if a.has_cover else None,
            "duration": _seconds(a.duration),
            **_annotation(a.annotation),
            "created": a.created,
            "albumId": sid(ALBUM, a.id),
            "artistId": sid(ARTIST, a.artist_id),
            "mediaType": "album",
            "played": a.annotation.played,
            "sortName": a.sort_name,
        }
    )


def artist_id3(a: Artist) -> dict[str, Any]:
    """An artist as an ``ArtistID3``."""
    return Clean.of(
        {
            "id": sid(ARTIST, a.id),
            "name": a.name,
            "coverArt": sid(ARTIST, a.id) if a.has_cover else None,
            "albumCount": a.album_count,
            "starred": a.annotation.starred,
            "musicBrainzId": a.musicbrainz_id,
            "sortName": a.sort_name,
            "userRating": a.annotation.rating,
        }
    )


def artist(a: Artist) -> dict[str, Any]:
    """An artist as a folder ``Artist`` (``getIndexes``, ``getStarred``, ``search2``)."""
    return Clean.of(
        {"id": sid(ARTIST, a.id), "name": a.name, "starred": a.annotation.starred, "userRating": a.annotation.rating}
    )


def playlist(p: Playlist) -> dict[str, Any]:
    """A ``Playlist`` (with its ``entry`` songs when it carries them)."""
    out: dict[str, Any] = {
        "id": sid(PLAYLIST, p.id),
        "name": p.name,
        "comment": p.comment,
        "owner": p.owner,
        "public": p.public,
        "songCount": p.song_count,
        "duration": _seconds(p.duration),
        "created": p.created,
        "changed": p.changed,
        "coverArt": sid(PLAYLIST, p.id) if p.cover_album_id is not None else None,
    }
    if p.songs is not None:
        out["entry"] = [song(s) for s in p.songs]
    return out
