"""Artists: the artist index by letter (``/artists``, ``/api/library/artists``: shared by every listener for 10 s)
and an artist with its albums."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from musicindex.web.deps import IndexDep, LimitsDep, UserIdDep
from musicindex.web.presenters.albums import album_dict
from musicindex.web.presenters.artists import artist_detail, artist_index
from musicindex.web.render import PAGE, page
from musicindex.web.responses import Json

router = APIRouter(default_response_class=Json, tags=["library"])
Id = Annotated[int, PathParam(ge=1, le=2**62)]


@router.get("/api/library/artists", summary="Album artists by index letter (shared by every listener for 10 s)")
def artists(index: IndexDep, limits: LimitsDep) -> Any:
    return artist_index(index, limits)


@router.get("/artists", **PAGE)
def artists_page(index: IndexDep, limits: LimitsDep, request: Request) -> Response:
    return page(request, "artists.html", groups=artist_index(index, limits))


@router.get("/api/library/artists/{artist_id}", summary="An artist and its albums")
def artist(index: IndexDep, uid: UserIdDep, artist_id: Id) -> Any:
    return artist_detail(index.catalog.artist(artist_id, uid))


@router.get("/artists/{artist_id}", **PAGE)
def artist_page(index: IndexDep, request: Request, uid: UserIdDep, artist_id: Id) -> Response:
    d = index.catalog.artist(artist_id, uid)
    return page(request, "artist.html", artist=d.artist, albums=[album_dict(a) for a in d.albums])
