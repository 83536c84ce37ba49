"""The sound of the index: getSimilarSongs and getSimilarSongs2 (an instant mix from a song, an album or an
artist, no same-artist runs) and the OpenSubsonic ``sonicSimilarity`` extension: getSonicSimilarTracks and
findSonicPath, answering ``sonicMatch: [{entry: <song>, similarity: 0..1}]``. All from ``index.mixes`` (the
similarity engine), with the search options of ``Call.search_options``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from musicindex.query.items import SongMatch
from musicindex.vocab import ALBUM, ARTIST, TRACK
from musicindex.web.subsonic import views
from musicindex.web.subsonic.endpoints import Call, endpoint

router = APIRouter()


def _mix(call: Call) -> list[dict[str, Any]]:
    kind, item = views.parse_id(call.params.required("id"), TRACK, ALBUM, ARTIST)
    options = call.search_options(50)
    if options is None:
        return []
    return [views.song(s) for s in call.index.mixes.instant_mix(kind, item, options, user_id=call.user_id)]


@endpoint(router, "getSimilarSongs")
def get_similar_songs(call: Call) -> dict[str, Any]:
    return {"similarSongs": {"song": _mix(call)}}


@endpoint(router, "getSimilarSongs2")
def get_similar_songs2(call: Call) -> dict[str, Any]:
    return {"similarSongs2": {"song": _mix(call)}}


def _matches(found: list[SongMatch]) -> dict[str, Any]:
    return {"sonicMatch": [{"entry": views.song(m.song), "similarity": round(m.similarity, 6)} for m in found]}


@endpoint(router, "getSonicSimilarTracks")
def get_sonic_similar_tracks(call: Call) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), TRACK)
    options = call.search_options(10)
    return _matches(call.index.mixes.sonic_similar(item, options, user_id=call.user_id) if options else [])


@endpoint(router, "findSonicPath")
def find_sonic_path(call: Call) -> dict[str, Any]:
    _, start = views.parse_id(call.params.required("startSongId"), TRACK)
    _, end = views.parse_id(call.params.required("endSongId"), TRACK)
    call.params.integer("count", 25, low=2, high=100)  # Subsonic's own bounds (error 0 outside them)
    return _matches(call.index.mixes.sonic_path(start, end, call.search_options(25), user_id=call.user_id))
