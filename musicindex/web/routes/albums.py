"""Albums: the grid of covers (``/albums``, ``/api/library/albums``: sorted by name, artist, newest, recently or
most played, starred, rated, random; one genre's), an album and its songs, and the cover of any item."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from musicindex.media import covers
from musicindex.web.deps import IndexDep, UserIdDep
from musicindex.web.presenters.albums import SORT_LABELS, album_dict, album_list_type
from musicindex.web.presenters.songs import song_dicts
from musicindex.web.render import PAGE, page
from musicindex.web.responses import Json

router = APIRouter(default_response_class=Json, tags=["library"])
Id = Annotated[int, PathParam(ge=1, le=2**62)]
Sort = Literal["name", "artist", "newest", "recent", "frequent", "starred", "rated", "random"]
GRID_PAGE = 48


@router.get("/api/library/albums", summary="One page of the album grid")
def albums(
    index: IndexDep,
    uid: UserIdDep,
    sort: Sort = Query("name"),
    size: int = Query(60, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
    genre: str | None = Query(None, min_length=1, max_length=200),
) -> Any:
    found = index.catalog.album_list(album_list_type(sort, genre), size, offset, user_id=uid, genre=genre)
    return {"sort": sort, "size": size, "offset": offset, "albums": [album_dict(a) for a in found]}


@router.get("/albums", **PAGE)
def albums_page(
    index: IndexDep,
    request: Request,
    uid: UserIdDep,
    sort: Sort = Query("name"),
    offset: int = Query(0, ge=0, le=10_000_000),
    genre: str | None = Query(None, min_length=1, max_length=200),
) -> Response:
    found = index.catalog.album_list(album_list_type(sort, genre), GRID_PAGE + 1, offset, user_id=uid, genre=genre)
    return page(
        request,
        "albums.html",
        albums=[album_dict(a) for a in found[:GRID_PAGE]],
        sort=sort,
        sorts=SORT_LABELS,
        offset=offset,
        size=GRID_PAGE,
        more=len(found) > GRID_PAGE,
        genre=genre or "",
    )


@router.get("/api/library/albums/{album_id}", summary="An album and its songs in disc and track order")
def album(index: IndexDep, uid: UserIdDep, album_id: Id) -> Any:
    d = index.catalog.album(album_id, uid)
    return {"album": album_dict(d.album), "songs": song_dicts(d.songs)}


@router.get("/albums/{album_id}", **PAGE)
def album_page(index: IndexDep, request: Request, uid: UserIdDep, album_id: Id) -> Response:
    d = index.catalog.album(album_id, uid)
    return page(request, "album.html", album=album_dict(d.album), songs=song_dicts(d.songs))


@router.get("/api/library/covers/{kind}/{item_id}", summary="The cover of an album, artist, song or playlist")
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
