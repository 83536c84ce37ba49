"""Browsing, lists and search: getIndexes, getMusicDirectory, getArtists, getArtist, getAlbum, getSong, getGenres,
getArtistInfo(2), getAlbumInfo(2), getTopSongs, getAlbumList(2), getRandomSongs, getSongsByGenre, getStarred(2),
getNowPlaying, search2, search3. Every answer is one call of ``index.catalog``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from musicindex.textnorm import IGNORED_ARTICLES
from musicindex.vocab import ALBUM, ARTIST, TRACK
from musicindex.web.subsonic import views
from musicindex.web.subsonic.endpoints import Call, endpoint
from musicindex.web.subsonic.protocol import NOT_FOUND, Content, SubsonicError, Text

router = APIRouter()

MAX_OFFSET = 10_000_000


def _folder(call: Call) -> None:
    """``musicFolderId`` must name a music folder when given (every folder's items are answered: one library)."""
    folder = call.params.integer("musicFolderId", low=0)
    if folder is not None and folder not in {f.id for f in call.index.catalog.music_folders()}:
        raise SubsonicError(NOT_FOUND, f"no music folder with id {folder}")


def _count(call: Call, name: str, default: int) -> int:
    return call.params.integer(name, default, low=0) or 0


def _offset(call: Call, name: str = "offset") -> int:
    return call.params.integer(name, 0, low=0, high=MAX_OFFSET) or 0


# --------------------------------------------------------------------------- artists and folders
def _letters(call: Call, as_item: Any) -> dict[str, Any]:
    """The album artists by index letter, each as ``as_item`` (``Artist`` or ``ArtistID3``)."""
    _folder(call)
    groups = call.index.catalog.artists(call.user_id)
    return {
        "index": [{"name": g.letter, "artist": [as_item(a) for a in g.artists]} for g in groups],
        "ignoredArticles": " ".join(IGNORED_ARTICLES),
    }


@endpoint(router, "getIndexes")
def get_indexes(call: Call) -> dict[str, Any]:
    return {"indexes": {**_letters(call, views.artist), "lastModified": int(time.time() * 1000)}}


@endpoint(router, "getArtists")
def get_artists(call: Call) -> dict[str, Any]:
    return {"artists": _letters(call, views.artist_id3)}


@endpoint(router, "getMusicDirectory")
def get_music_directory(call: Call) -> dict[str, Any]:
    kind, item = views.parse_id(call.params.required("id"), ARTIST, ALBUM)
    d = call.index.catalog.directory(kind, item, call.user_id)
    children = [views.album_child(a) for a in d.albums] + [views.song(s) for s in d.songs]
    return {
        "directory": {
            "child": children,
            "id": views.sid(kind, d.id),
            "parent": views.sid(ARTIST, d.parent_id),
            "name": d.name,
            "starred": d.annotation.starred,
            "userRating": d.annotation.rating,
            "playCount": d.annotation.play_count,
        }
    }


@endpoint(router, "getArtist")
def get_artist(call: Call) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), ARTIST)
    detail = call.index.catalog.artist(item, call.user_id)
    return {"artist": {**views.artist_id3(detail.artist), "album": [views.album_id3(a) for a in detail.albums]}}


@endpoint(router, "getAlbum")
def get_album(call: Call) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), ALBUM)
    detail = call.index.catalog.album(item, call.user_id)
    return {"album": {**views.album_id3(detail.album), "song": [views.song(s) for s in detail.songs]}}


@endpoint(router, "getSong")
def get_song(call: Call) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), TRACK)
    return {"song": views.song(call.index.catalog.song(item, call.user_id))}


@endpoint(router, "getGenres")
def get_genres(call: Call) -> dict[str, Any]:
    genres = call.index.catalog.genres()
    return {
        "genres": {
            "genre": [
                {"songCount": g.song_count, "albumCount": g.album_count, "value": Content(g.name)} for g in genres
            ]
        }
    }


def _artist_info(call: Call, element: str, as_item: Any) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), ARTIST)
    options = call.search_options(20)
    artist = call.index.catalog.artist(item, call.user_id).artist
    similar = call.index.mixes.similar_artists(item, options, user_id=call.user_id) if options else []
    info: dict[str, Any] = {"musicBrainzId": Text(artist.musicbrainz_id) if artist.musicbrainz_id else None}
    return {element: {**info, "similarArtist": [as_item(a) for a in similar]}}


@endpoint(router, "getArtistInfo")
def get_artist_info(call: Call) -> dict[str, Any]:
    """Similar artists from the sonic space (no biography: nothing is fetched from the internet)."""
    return _artist_info(call, "artistInfo", views.artist)


@endpoint(router, "getArtistInfo2")
def get_artist_info2(call: Call) -> dict[str, Any]:
    return _artist_info(call, "artistInfo2", views.artist_id3)


def _album_info(call: Call) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), ALBUM)
    album = call.index.catalog.album(item, call.user_id).album
    return {"albumInfo": {"musicBrainzId": Text(album.musicbrainz_id) if album.musicbrainz_id else None}}


@endpoint(router, "getAlbumInfo")
def get_album_info(call: Call) -> dict[str, Any]:
    return _album_info(call)


@endpoint(router, "getAlbumInfo2")
def get_album_info2(call: Call) -> dict[str, Any]:
    return _album_info(call)


@endpoint(router, "getTopSongs")
def get_top_songs(call: Call) -> dict[str, Any]:
    songs = call.index.catalog.top_songs(
        call.params.required("artist"), _count(call, "count", 50), user_id=call.user_id
    )
    return {"topSongs": {"song": [views.song(s) for s in songs]}}


# --------------------------------------------------------------------------- lists
def _album_list(call: Call) -> list[Any]:
    _folder(call)
    return call.index.catalog.album_list(
        call.params.required("type"),
        _count(call, "size", 10),
        _offset(call),
        user_id=call.user_id,
        from_year=call.params.integer("fromYear", low=0, high=9999),
        to_year=call.params.integer("toYear", low=0, high=9999),
        genre=call.params.get("genre"),
    )


@endpoint(router, "getAlbumList")
def get_album_list(call: Call) -> dict[str, Any]:
    return {"albumList": {"album": [views.album_child(a) for a in _album_list(call)]}}


@endpoint(router, "getAlbumList2")
def get_album_list2(call: Call) -> dict[str, Any]:
    return {"albumList2": {"album": [views.album_id3(a) for a in _album_list(call)]}}


@endpoint(router, "getRandomSongs")
def get_random_songs(call: Call) -> dict[str, Any]:
    _folder(call)
    songs = call.index.catalog.random_songs(
        _count(call, "size", 10),
        user_id=call.user_id,
        genre=call.params.get("genre"),
        from_year=call.params.integer("fromYear", low=0, high=9999),
        to_year=call.params.integer("toYear", low=0, high=9999),
    )
    return {"randomSongs": {"song": [views.song(s) for s in songs]}}


@endpoint(router, "getSongsByGenre")
def get_songs_by_genre(call: Call) -> dict[str, Any]:
    _folder(call)
    songs = call.index.catalog.songs_by_genre(
        call.params.required("genre"), _count(call, "count", 10), _offset(call), user_id=call.user_id
    )
    return {"songsByGenre": {"song": [views.song(s) for s in songs]}}


def _three(artists: list[Any], albums: list[Any], songs: list[Any], id3: bool) -> dict[str, Any]:
    """Artists, albums and songs as ``Starred``/``SearchResult2`` (folders) or ``Starred2``/``SearchResult3`` (ID3)."""
    return {
        "artist": [(views.artist_id3 if id3 else views.artist)(a) for a in artists],
        "album": [(views.album_id3 if id3 else views.album_child)(a) for a in albums],
        "song": [views.song(s) for s in songs],
    }


@endpoint(router, "getStarred")
def get_starred(call: Call) -> dict[str, Any]:
    s = call.index.listener.starred(call.user_id)
    return {"starred": _three(s.artists, s.albums, s.songs, id3=False)}


@endpoint(router, "getStarred2")
def get_starred2(call: Call) -> dict[str, Any]:
    s = call.index.listener.starred(call.user_id)
    return {"starred2": _three(s.artists, s.albums, s.songs, id3=True)}


@endpoint(router, "getNowPlaying")
def get_now_playing(call: Call) -> dict[str, Any]:
    entries = call.index.listener.now_playing(call.user_id)
    return {
        "nowPlaying": {
            "entry": [
                {
                    **views.song(e.song),
                    "username": e.username,
                    "minutesAgo": e.minutes_ago,
                    "playerId": e.player_id,
                    "playerName": e.player_name,
                }
                for e in entries
            ]
        }
    }


# --------------------------------------------------------------------------- search
def _search(call: Call) -> Any:
    _folder(call)
    return call.index.catalog.search(
        call.params.get("query") or "",
        user_id=call.user_id,
        artist_count=_count(call, "artistCount", 20),
        artist_offset=_offset(call, "artistOffset"),
        album_count=_count(call, "albumCount", 20),
        album_offset=_offset(call, "albumOffset"),
        song_count=_count(call, "songCount", 20),
        song_offset=_offset(call, "songOffset"),
    )


@endpoint(router, "search2")
def search2(call: Call) -> dict[str, Any]:
    found = _search(call)
    return {"searchResult2": _three(found.artists, found.albums, found.songs, id3=False)}


@endpoint(router, "search3")
def search3(call: Call) -> dict[str, Any]:
    found = _search(call)
    return {"searchResult3": _three(found.artists, found.albums, found.songs, id3=True)}
