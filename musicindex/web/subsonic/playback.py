"""A listener on the move: bookmarks (createBookmark, getBookmarks, deleteBookmark), playback reports
(``reportPlayback``: the OpenSubsonic ``playbackReport`` extension, feeding plays and skips) and the index-based
play queue (getPlayQueueByIndex, savePlayQueueByIndex: the ``indexBasedQueue`` extension). Writes go through
``index.users`` (``users.playback``), songs are read through ``index.catalog``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from musicindex.query.items import iso
from musicindex.vocab import TRACK
from musicindex.web.subsonic import views
from musicindex.web.subsonic.endpoints import Call, endpoint
from musicindex.web.subsonic.protocol import GENERIC, MISSING, SubsonicError

router = APIRouter()

MAX_POSITION = 2**53 - 1


# --------------------------------------------------------------------------- bookmarks
@endpoint(router, "createBookmark", changes=True)
def create_bookmark(call: Call) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), TRACK)
    position = call.params.required_integer("position", low=0, high=MAX_POSITION)
    call.index.users.create_bookmark(call.user_id, item, position, call.params.get("comment"))
    return {}


@endpoint(router, "getBookmarks")
def get_bookmarks(call: Call) -> dict[str, Any]:
    assert call.user is not None
    marks = call.index.users.bookmarks(call.user_id)
    songs = {s.id: s for s in call.index.catalog.songs([m.track_id for m in marks], call.user_id)}
    out = []
    for m in marks:
        song = songs.get(m.track_id)
        if song is None:  # a song no longer indexed: its bookmark waits until it is back
            continue
        out.append({
            "entry": {**views.song(song), "bookmarkPosition": m.position_ms},
            "position": m.position_ms,
            "username": call.user.name,
            "comment": m.comment or "",
            "created": iso(m.created),
            "changed": iso(m.changed),
        })  # fmt: skip
    return {"bookmarks": {"bookmark": out}}


@endpoint(router, "deleteBookmark", changes=True)
def delete_bookmark(call: Call) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), TRACK)
    call.index.users.delete_bookmark(call.user_id, item)
    return {}


# --------------------------------------------------------------------------- playback reports
@endpoint(router, "reportPlayback", changes=True)
def report_playback(call: Call) -> dict[str, Any]:
    """``mediaId``, ``mediaType`` (song; podcasts are not served), ``positionMs``, ``state`` (starting, playing,
    paused, stopped), ``playbackRate`` (default 1), ``ignoreScrobble`` (default false)."""
    media_type = call.params.required("mediaType")
    if media_type != "song":
        raise SubsonicError(GENERIC, f"mediaType {media_type[:20]!r} is not served here; only 'song'")
    _, item = views.parse_id(call.params.required("mediaId"), TRACK)
    position = call.params.required_integer("positionMs", low=0, high=MAX_POSITION)
    state = call.params.required("state")
    raw_rate = call.params.get("playbackRate") or "1"
    try:
        rate = float(raw_rate)
    except ValueError:
        raise SubsonicError(GENERIC, f"playbackRate must be a number, got {raw_rate[:20]!r}") from None
    call.index.users.report_playback(
        call.user_id,
        item,
        state,
        position,
        rate=rate,
        ignore_scrobble=bool(call.params.boolean("ignoreScrobble", False)),
        client=call.client,
    )
    return {}


# --------------------------------------------------------------------------- the index-based play queue
@endpoint(router, "savePlayQueueByIndex", changes=True)
def save_play_queue_by_index(call: Call) -> dict[str, Any]:
    ids = views.parse_ids(call.params.all("id"), TRACK)
    index = call.params.integer("currentIndex", low=-(2**31))
    if ids and (index is None or not 0 <= index < len(ids)):  # the extension's text: error 10
        raise SubsonicError(MISSING, f"currentIndex must be given, between 0 and {len(ids) - 1}")
    if not ids and index is not None:
        raise SubsonicError(GENERIC, "currentIndex is given without any id")
    position = call.params.integer("position", 0, low=0, high=MAX_POSITION) or 0
    call.index.users.save_play_queue_by_index(call.user_id, ids, index, position, call.client)
    return {}


@endpoint(router, "getPlayQueueByIndex")
def get_play_queue_by_index(call: Call) -> dict[str, Any]:
    q = call.index.listener.play_queue(call.user_id)
    if q is None:
        return {}
    index = call.index.users.play_queue_index(call.user_id, [s.id for s in q.songs], q.current)
    return {
        "playQueueByIndex": {
            "entry": [views.song(s) for s in q.songs],
            "currentIndex": index,
            "position": q.position_ms,
            "username": q.username,
            "changed": q.changed,
            "changedBy": q.changed_by or "unknown",
        }
    }
