"""The JSON API of the page's library and listener under ``/api/library/``: browsing (artists, albums, songs,
genres, covers, search) and the listener's state (stars, ratings, plays, the play queue, playlists, "for you").

The same tables and methods as the Subsonic API: ``index.catalog`` reads, ``index.users`` writes, so a star set
here is what ``getStarred2`` shows, a playlist saved here is what ``getPlaylist`` shows, the queue saved here is
what ``getPlayQueue`` reads. Whose state: the session's (``sessions.viewer``): the logged-in account, or with no
account on the server the one local listener. Every change needs the page's CSRF token (``X-CSRF-Token``; a
script with the API token sends ``Authorization: Bearer`` instead): without it, 403.
"""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field

from musicindex.media import covers
from musicindex.query.catalog import SONG_SORTS
from musicindex.vocab import ALBUM, ARTIST
from musicindex.web import sessions
from musicindex.web.deps import IndexDep, Limits, LimitsDep
from musicindex.web.errors import ApiError
from musicindex.web.responses import Json
from musicindex.web.security import policy

if TYPE_CHECKING:
    from musicindex.index import MusicIndex
    from musicindex.query.items import Album, Song
    from musicindex.users import UserInfo

CLIENT = "web"
ALBUM_SORTS: dict[str, str] = {
    "name": "alphabeticalByName",
    "artist": "alphabeticalByArtist",
    "newest": "newest",
    "recent": "recent",
    "frequent": "frequent",
    "starred": "starred",
    "rated": "highest",
    "random": "random",
}
"""The album grid's sorts and the Subsonic album list type each is."""
FOR_YOU_K = 20
Id = Annotated[int, PathParam(ge=1, le=2**62)]


def song_dict(s: Song) -> dict[str, Any]:
    """A song as the page's lists and the player read it."""
    return {
        "id": s.id,
        "title": s.title,
        "artist": s.artist or "",
        "album": s.album or "",
        "album_id": s.album_id,
        "artist_id": s.artist_id,
        "genre": s.genres[0] if s.genres else "",
        "genres": list(s.genres),
        "path": s.path,
        "duration": s.duration,
        "track": s.track,
        "disc": s.disc,
        "year": s.year,
        "starred": s.annotation.starred is not None,
        "rating": s.annotation.rating or 0,
        "play_count": s.annotation.play_count,
    }


def album_dict(a: Album) -> dict[str, Any]:
    d = asdict(a)
    d.pop("annotation")
    d.update(
        starred=a.annotation.starred is not None,
        rating=a.annotation.rating or 0,
        play_count=a.annotation.play_count,
        cover=f"/api/library/covers/album/{a.id}" if a.has_cover else None,
    )
    return d


# ------------------------------------------------------------------ who
def _bearer_ok(request: Request) -> bool:
    token = request.app.state.index.settings.api_token
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def listener(request: Request) -> UserInfo:
    """The listener whose state a request reads: 401 when accounts exist and nobody is logged in."""
    v = sessions.viewer(request)
    if v.user is None:
        raise ApiError(401, "unauthorized", "log in first: this server has accounts (the page's /login)")
    return v.user


def check_csrf(request: Request) -> None:
    """403 unless the request carries the session's CSRF token (``X-CSRF-Token``) or the API token."""
    v = sessions.viewer(request)
    if _bearer_ok(request):
        return
    if not sessions.csrf_ok(request.app.state.index.settings, v.session, request.headers.get(sessions.CSRF_HEADER)):
        raise ApiError(
            403,
            "csrf",
            "missing or wrong CSRF token: changes from the page send the X-CSRF-Token header that the page's "
            "<meta name=csrf-token> holds (reload the page to get a fresh one)",
        )


def changer(request: Request) -> UserInfo:
    """The listener of a change: the CSRF token checked first, then the login."""
    check_csrf(request)
    return listener(request)


ListenerDep = Annotated["UserInfo", Depends(listener)]
ChangerDep = Annotated["UserInfo", Depends(changer)]

router = APIRouter(prefix="/api/library", default_response_class=Json, tags=["library"])


@router.get("/me", summary="Who the page acts for, and whether the server has accounts")
def me(request: Request) -> Any:
    v = sessions.viewer(request)
    user = v.user
    return {
        "accounts": v.accounts,
        "logged_in": v.logged_in,
        "user": None if user is None else {"id": user.id, "name": user.name, "local": user.is_system},
    }


# ------------------------------------------------------------------ browsing
ARTISTS_TTL = 10.0
"""Seconds the artist index (every album artist: thousands of rows, the same for every listener) is shared by
all callers; an ingest shows in it within this time."""


def artist_index(index: MusicIndex, limits: Limits) -> list[dict[str, Any]]:
    """The album artists by index letter, as the page and the JSON answer read them (shared ``ARTISTS_TTL`` s)."""

    def make() -> list[dict[str, Any]]:
        return [
            {"letter": g.letter, "artists": [{**asdict(a), "annotation": None} for a in g.artists]}
            for g in index.catalog.artists(None)
        ]

    found: list[dict[str, Any]] = limits.cached("artist-index", ARTISTS_TTL, make)
    return found


@router.get("/artists", summary="Album artists by index letter (shared by every listener for 10 s)")
def artists(index: IndexDep, limits: LimitsDep) -> Any:
    return artist_index(index, limits)


@router.get("/artists/{artist_id}", summary="An artist and its albums")
def artist(index: IndexDep, request: Request, artist_id: Id) -> Any:
    d = index.catalog.artist(artist_id, _uid(request))
    return {"artist": asdict(d.artist), "albums": [album_dict(a) for a in d.albums]}


@router.get("/albums", summary="One page of the album grid")
def albums(
    index: IndexDep,
    request: Request,
    sort: Literal["name", "artist", "newest", "recent", "frequent", "starred", "rated", "random"] = Query("name"),
    size: int = Query(60, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
    genre: str | None = Query(None, min_length=1, max_length=200),
) -> Any:
    kind = "byGenre" if genre else ALBUM_SORTS[sort]
    found = index.catalog.album_list(kind, size, offset, user_id=_uid(request), genre=genre)
    return {"sort": sort, "size": size, "offset": offset, "albums": [album_dict(a) for a in found]}


@router.get("/albums/{album_id}", summary="An album and its songs in disc and track order")
def album(index: IndexDep, request: Request, album_id: Id) -> Any:
    d = index.catalog.album(album_id, _uid(request))
    return {"album": album_dict(d.album), "songs": [song_dict(s) for s in d.songs]}


@router.get("/songs", summary="One page of every song, sorted")
def songs(
    index: IndexDep,
    request: Request,
    sort: Literal[SONG_SORTS] = Query("title"),  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = Query("asc"),
    size: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Any:
    found = index.catalog.song_list(sort, order == "desc", size, offset, user_id=_uid(request))
    return {"sort": sort, "order": order, "size": size, "offset": offset, "songs": [song_dict(s) for s in found]}


@router.get("/tracks-of/{kind}/{item_id}", summary="The songs of an album, an artist or a playlist, in order")
def tracks_of(index: IndexDep, request: Request, kind: Literal["album", "artist", "playlist"], item_id: Id) -> Any:
    return [song_dict(s) for s in songs_of(index, kind, item_id, _uid(request))]


def songs_of(index: MusicIndex, kind: str, item_id: int, uid: int | None) -> list[Song]:
    if kind == ALBUM:
        return index.catalog.album(item_id, uid).songs
    if kind == ARTIST:
        return [s for a in index.catalog.artist(item_id, uid).albums for s in index.catalog.album(a.id, uid).songs]
    if uid is None:
        raise ApiError(401, "unauthorized", "log in first: playlists belong to listeners")
    return index.catalog.playlist(item_id, uid).songs or []


@router.get("/genres", summary="Every genre with its song and album counts")
def genres(index: IndexDep) -> Any:
    return [asdict(g) for g in index.catalog.genres()]


@router.get("/search", summary="Artists, albums and songs holding every word (inside words, any case or accent)")
def search(
    index: IndexDep,
    request: Request,
    q: str = Query(..., max_length=1000),
    size: int = Query(20, ge=1, le=500),
) -> Any:
    r = index.catalog.search(q, user_id=_uid(request), artist_count=size, album_count=size, song_count=size)
    return {
        "query": r.query,
        "artists": [asdict(a) for a in r.artists],
        "albums": [album_dict(a) for a in r.albums],
        "songs": [song_dict(s) for s in r.songs],
    }


@router.get("/covers/{kind}/{item_id}", summary="The cover of an album, artist, song or playlist")
def cover(
    index: IndexDep,
    request: Request,
    kind: Literal["album", "artist", "track", "playlist"],
    item_id: Id,
    size: int | None = Query(None, ge=16, le=1200),
) -> Response:
    image = covers.cover(index, kind, item_id, size)
    if request.headers.get("if-none-match") == image.etag:
        return Response(status_code=304, headers={"ETag": image.etag})
    return Response(
        image.data, media_type=image.media_type, headers={"ETag": image.etag, "Cache-Control": "private, max-age=86400"}
    )


def _uid(request: Request) -> int | None:
    user = sessions.viewer(request).user
    return user.id if user is not None else None


# ------------------------------------------------------------------ the listener's state
class Items(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(..., min_length=1, max_length=1000)
    type: Literal["track", "album", "artist"] = "track"


class Rating(BaseModel):
    id: int = Field(..., ge=1, le=2**62)
    type: Literal["track", "album", "artist"] = "track"
    rating: int = Field(..., ge=0, le=5)


class Scrobble(BaseModel):
    id: int = Field(..., ge=1, le=2**62)
    submission: bool = True


class Queue(BaseModel):
    track_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(..., max_length=1000)
    current: int | None = Field(None, ge=1, le=2**62)
    position_ms: int = Field(0, ge=0, le=2**53 - 1)


class PlaylistIn(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=500)
    track_ids: list[Annotated[int, Field(ge=1, le=2**62)]] | None = Field(None, max_length=10_000)
    comment: str | None = Field(None, max_length=5000)
    public: bool | None = None


@router.get("/starred", summary="What the listener starred (the same as Subsonic getStarred2)")
def starred(index: IndexDep, user: ListenerDep) -> Any:
    s = index.catalog.starred(user.id)
    return {
        "songs": [song_dict(x) for x in s.songs],
        "albums": [album_dict(a) for a in s.albums],
        "artists": [asdict(a) for a in s.artists],
    }


@router.post("/star", summary="Star tracks, albums or artists")
@policy(body="json")
def star(index: IndexDep, user: ChangerDep, items: Items = Body(...)) -> Any:
    return {"starred": index.users.star(user.id, [(items.type, i) for i in items.ids])}


@router.post("/unstar", summary="Unstar tracks, albums or artists")
@policy(body="json")
def unstar(index: IndexDep, user: ChangerDep, items: Items = Body(...)) -> Any:
    return {"unstarred": index.users.unstar(user.id, [(items.type, i) for i in items.ids])}


@router.post("/rating", summary="Rate an item 1 to 5 (0 clears)")
@policy(body="json")
def rating(index: IndexDep, user: ChangerDep, body: Rating = Body(...)) -> Any:
    index.users.set_rating(user.id, (body.type, body.id), body.rating)
    return {"rated": body.id, "rating": body.rating}


@router.post("/scrobble", summary="A track was played (its play count goes up), or is playing now")
@policy(body="json")
def scrobble(index: IndexDep, user: ChangerDep, body: Scrobble = Body(...)) -> Any:
    index.users.scrobble(user.id, [body.id], submission=body.submission, client=CLIENT)
    return {"scrobbled": body.id, "submission": body.submission}


@router.get("/queue", summary="The listener's play queue (the one Subsonic savePlayQueue writes)")
def get_queue(index: IndexDep, user: ListenerDep) -> Any:
    q = index.catalog.play_queue(user.id)
    if q is None:
        return {"songs": [], "current": None, "position_ms": 0, "changed": None, "changed_by": None}
    return {
        "songs": [song_dict(s) for s in q.songs],
        "current": q.current,
        "position_ms": q.position_ms,
        "changed": q.changed,
        "changed_by": q.changed_by,
    }


@router.put("/queue", summary="Replace the listener's play queue (empty: delete it)")
@policy(body="json")
def put_queue(index: IndexDep, user: ChangerDep, body: Queue = Body(...)) -> Any:
    index.users.save_play_queue(user.id, body.track_ids, body.current, body.position_ms, CLIENT)
    return {"saved": len(body.track_ids)}


@router.get("/playlists", summary="The listener's playlists and the public ones of others")
def playlists(index: IndexDep, user: ListenerDep) -> Any:
    return [asdict(p) for p in index.catalog.playlists(user.id)]


@router.post("/playlists", summary="A new playlist", status_code=201)
@policy(body="json")
def create_playlist(index: IndexDep, user: ChangerDep, body: PlaylistIn = Body(...)) -> Any:
    if body.name is None:
        raise ApiError(422, "bad_argument", "a new playlist needs a name")
    pid = index.users.create_playlist(user.id, body.name, body.track_ids or [], is_admin=user.is_admin)
    return _playlist(index, pid, user.id)


@router.get("/playlists/{playlist_id}", summary="A playlist with its songs (the same as Subsonic getPlaylist)")
def playlist(index: IndexDep, user: ListenerDep, playlist_id: Id) -> Any:
    return _playlist(index, playlist_id, user.id)


@router.put("/playlists/{playlist_id}", summary="Rename a playlist, or replace its tracks (reorder, add, remove)")
@policy(body="json")
def update_playlist(index: IndexDep, user: ChangerDep, playlist_id: Id, body: PlaylistIn = Body(...)) -> Any:
    if body.track_ids is not None:
        index.users.create_playlist(user.id, body.name, body.track_ids, playlist_id=playlist_id, is_admin=user.is_admin)
    changes = {
        k: v
        for k, v in (
            ("name", body.name if body.track_ids is None else None),
            ("comment", body.comment),
            ("public", body.public),
        )
        if v is not None
    }
    if changes or body.track_ids is None:
        index.users.update_playlist(user.id, playlist_id, is_admin=user.is_admin, **changes)
    return _playlist(index, playlist_id, user.id)


@router.delete("/playlists/{playlist_id}", summary="Delete a playlist")
def delete_playlist(index: IndexDep, user: ChangerDep, playlist_id: Id) -> Any:
    index.users.delete_playlist(user.id, playlist_id, is_admin=user.is_admin)
    return {"deleted": playlist_id}


def _playlist(index: MusicIndex, playlist_id: int, uid: int) -> dict[str, Any]:
    p = index.catalog.playlist(playlist_id, uid)
    d = asdict(p)
    d["songs"] = [song_dict(s) for s in p.songs or []]
    return d


@router.get("/for-you", summary="Recommendations from the listener's stars and plays")
@policy(costly=True)
def for_you(index: IndexDep, user: ListenerDep, k: int = Query(FOR_YOU_K, ge=1, le=200)) -> Any:
    return for_you_answer(index, user.id, k)


def for_you_answer(index: MusicIndex, uid: int, k: int) -> dict[str, Any]:
    """``{"seeds": {"liked", "played"}, "items": recommend's answer}`` (items empty without seeds)."""
    liked, played = index.catalog.listener_seeds(uid)
    seeds = list(dict.fromkeys([*liked, *played]))
    out: dict[str, Any] = {"seeds": {"liked": liked, "played": played}, "items": [], "space": None}
    if seeds:
        res = index.recommend(seeds[:80], k=k, explain=False)
        d = res.to_dict()
        out.update(items=d["items"], space=d.get("space"))
    return out


__all__ = ["router"]
