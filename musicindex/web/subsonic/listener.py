"""A listener's state: star, unstar, setRating, scrobble, getPlaylists, getPlaylist, createPlaylist, updatePlaylist,
deletePlaylist, savePlayQueue, getPlayQueue. Writes go through ``index.users``, reads through ``index.catalog``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter

from musicindex.users import ItemRef
from musicindex.vocab import ALBUM, ARTIST, TRACK
from musicindex.web.subsonic import views
from musicindex.web.subsonic.endpoints import Call, endpoint, missing
from musicindex.web.subsonic.protocol import NOT_AUTHORIZED, SubsonicError, parse_int

router = APIRouter()


# --------------------------------------------------------------------------- annotation
def _items(call: Call) -> list[ItemRef]:
    """The items of star / unstar: ``id`` (songs, albums or artists), ``albumId``, ``artistId``."""
    items = [views.parse_id(v, TRACK, ALBUM, ARTIST) for v in call.params.all("id")]
    items += [views.parse_id(v, ALBUM) for v in call.params.all("albumId")]
    items += [views.parse_id(v, ARTIST) for v in call.params.all("artistId")]
    if not items:
        raise missing("id")
    return items


@endpoint(router, "star", changes=True)
def star(call: Call) -> dict[str, Any]:
    call.index.users.star(call.user_id, _items(call))
    return {}


@endpoint(router, "unstar", changes=True)
def unstar(call: Call) -> dict[str, Any]:
    call.index.users.unstar(call.user_id, _items(call))
    return {}


@endpoint(router, "setRating", changes=True)
def set_rating(call: Call) -> dict[str, Any]:
    item = views.parse_id(call.params.required("id"), TRACK, ALBUM, ARTIST)
    rating = call.params.required_integer("rating", low=0, high=5)
    call.index.users.set_rating(call.user_id, item, rating)
    return {}


@endpoint(router, "scrobble", changes=True)
def scrobble(call: Call) -> dict[str, Any]:
    """``submission=true`` (the default): a play (play count, last played); ``false``: now playing."""
    ids = views.parse_ids(call.params.all("id"), TRACK)
    if not ids:
        raise missing("id")
    times: list[dt.datetime | None] = [
        dt.datetime.fromtimestamp(parse_int("time", raw, 1, 2**45) / 1000, dt.UTC) for raw in call.params.all("time")
    ]
    submission = call.params.boolean("submission", True)
    call.index.users.scrobble(call.user_id, ids, times, submission=bool(submission), client=call.client)
    return {}


# --------------------------------------------------------------------------- playlists
def _playlist(call: Call, playlist_id: int) -> dict[str, Any]:
    return {"playlist": views.playlist(call.index.listener.playlist(playlist_id, call.user_id))}


@endpoint(router, "getPlaylists")
def get_playlists(call: Call) -> dict[str, Any]:
    assert call.user is not None
    name = call.params.get("username")
    if name is not None and name.casefold() != call.user.name.casefold():
        raise SubsonicError(NOT_AUTHORIZED, "the playlists of another user are not listed")
    return {"playlists": {"playlist": [views.playlist(p) for p in call.index.listener.playlists(call.user_id)]}}


@endpoint(router, "getPlaylist")
def get_playlist(call: Call) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), views.PLAYLIST)
    return _playlist(call, item)


@endpoint(router, "createPlaylist", changes=True)
def create_playlist(call: Call) -> dict[str, Any]:
    """A new playlist (``name``), or the songs of ``playlistId`` replaced; answers the playlist."""
    assert call.user is not None
    pid = call.params.get("playlistId")
    name = call.params.get("name")
    if pid is None and not name:
        raise missing("name")
    songs = views.parse_ids(call.params.all("songId"), TRACK)
    existing = views.parse_id(pid, views.PLAYLIST)[1] if pid is not None else None
    made = call.index.users.create_playlist(
        call.user_id, name or None, songs, playlist_id=existing, is_admin=call.user.is_admin
    )
    return _playlist(call, made)


@endpoint(router, "updatePlaylist", changes=True)
def update_playlist(call: Call) -> dict[str, Any]:
    assert call.user is not None
    _, item = views.parse_id(call.params.required("playlistId"), views.PLAYLIST)
    remove = [parse_int("songIndexToRemove", v, 0, 100_000) for v in call.params.all("songIndexToRemove")]
    call.index.users.update_playlist(
        call.user_id,
        item,
        name=call.params.get("name"),
        comment=call.params.get("comment"),
        public=call.params.boolean("public"),
        add=views.parse_ids(call.params.all("songIdToAdd"), TRACK),
        remove_positions=remove,
        is_admin=call.user.is_admin,
    )
    return {}


@endpoint(router, "deletePlaylist", changes=True)
def delete_playlist(call: Call) -> dict[str, Any]:
    assert call.user is not None
    _, item = views.parse_id(call.params.required("id"), views.PLAYLIST)
    call.index.users.delete_playlist(call.user_id, item, is_admin=call.user.is_admin)
    return {}


# --------------------------------------------------------------------------- the play queue
@endpoint(router, "savePlayQueue", changes=True)
def save_play_queue(call: Call) -> dict[str, Any]:
    ids = views.parse_ids(call.params.all("id"), TRACK)
    current = call.params.get("current")
    position = call.params.integer("position", 0, low=0, high=2**53) or 0
    call.index.users.save_play_queue(
        call.user_id,
        ids,
        views.parse_id(current, TRACK)[1] if current else None,
        position,
        call.client,
    )
    return {}


@endpoint(router, "getPlayQueue")
def get_play_queue(call: Call) -> dict[str, Any]:
    q = call.index.listener.play_queue(call.user_id)
    if q is None:
        return {}
    return {
        "playQueue": {
            "entry": [views.song(s) for s in q.songs],
            "current": views.sid(TRACK, q.current),
            "position": q.position_ms,
            "username": q.username,
            "changed": q.changed,
            "changedBy": q.changed_by or "unknown",
        }
    }
