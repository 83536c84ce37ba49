"""Lyrics: the OpenSubsonic ``songLyrics`` extension (``getLyricsBySongId``: structured, synced from an ``.lrc``
beside the file, unsynced from the tags) and Subsonic's ``getLyrics?artist=&title=`` (plain text of the first song
with that title, and that artist when given; an empty ``value`` when there are none). Read by
``musicindex.media.lyrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from musicindex.audio.lyrics import Lyrics
from musicindex.media.lyrics import track_lyrics
from musicindex.vocab import TRACK
from musicindex.web.subsonic import views
from musicindex.web.subsonic.endpoints import Call, endpoint
from musicindex.web.subsonic.protocol import Body

router = APIRouter()
UNKNOWN_LANG = "xxx"
"""``lang`` of lyrics whose language is unknown (what the extension asks for)."""


def structured(found: Lyrics, artist: str | None, title: str) -> dict[str, Any]:
    """One ``structuredLyrics`` element."""
    lines = [{"start": ln.start_ms, "value": Body(ln.text)} if found.synced else {"value": Body(ln.text)}
             for ln in found.lines]  # fmt: skip
    out = {"displayTitle": title, "lang": found.lang or UNKNOWN_LANG, "offset": 0, "synced": found.synced,
           "line": lines}  # fmt: skip
    return {"displayArtist": artist, **out} if artist else out


@endpoint(router, "getLyricsBySongId")
def get_lyrics_by_song_id(call: Call) -> dict[str, Any]:
    _, item = views.parse_id(call.params.required("id"), TRACK)
    song = call.index.catalog.song(item, call.user_id)
    found = track_lyrics(call.index, item)
    return {"lyricsList": {"structuredLyrics": [structured(x, song.artist, song.title) for x in found]}}


@endpoint(router, "getLyrics")
def get_lyrics(call: Call) -> dict[str, Any]:
    title = call.params.get("title")
    none = {"lyrics": {"value": Body("")}}  # ``value`` is required: empty when there are none
    if not title:
        return none
    song = call.index.catalog.find_song(title, call.params.get("artist"), user_id=call.user_id)
    found = track_lyrics(call.index, song.id) if song is not None else []
    if song is None or not found:
        return none
    text = "\n".join(ln.text for ln in found[0].lines)
    return {"lyrics": {"artist": song.artist, "title": song.title, "value": Body(text)}}
