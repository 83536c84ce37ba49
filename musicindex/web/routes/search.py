"""Search: the home page (tracks by title, artist, album or folder, best first) and ``/api/library/search``
(artists, albums and songs, as music apps search). Both match words by the one rule of ``query.textsearch``;
``GET /api/tracks?q=`` is the tracks resource's (``routes.tracks``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from musicindex.web.deps import IndexDep, UserIdDep
from musicindex.web.presenters.albums import album_dict
from musicindex.web.presenters.songs import song_dicts
from musicindex.web.render import PAGE, page, try_
from musicindex.web.responses import Json

router = APIRouter(default_response_class=Json, tags=["search"])


@router.get("/", **PAGE)
def home(
    index: IndexDep,
    request: Request,
    q: str = Query("", max_length=200),
    field: Literal["any", "title", "artist", "album"] = Query("any"),
    offset: int = Query(0, ge=0, le=10_000),
) -> Response:
    results, error = (None, None)
    if q.strip():
        results, error = try_(index.search_tracks, q, field=field, limit=50, offset=offset)
    genres, _ = try_(index.library.known_genres)
    spaces, _ = try_(index.spaces)
    return page(
        request,
        "home.html",
        q=q,
        field=field,
        results=results.to_dict() if results is not None else None,
        error=error,
        genres=genres or [],
        spaces=spaces or [],
    )


@router.get("/api/library/search", summary="Artists, albums and songs holding every word (inside words, any case)")
def search(
    index: IndexDep, uid: UserIdDep, q: str = Query(..., max_length=1000), size: int = Query(20, ge=1, le=500)
) -> Any:
    r = index.catalog.search(q, user_id=uid, artist_count=size, album_count=size, song_count=size)
    return {
        "query": r.query,
        "artists": [asdict(a) for a in r.artists],
        "albums": [album_dict(a) for a in r.albums],
        "songs": song_dicts(r.songs),
    }


__all__ = ["router"]
