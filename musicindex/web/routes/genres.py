"""Genres: the genres a query accepts (``/api/genres``), the library's genres with their counts (``/genres``,
``/api/library/genres``) and the tracks of one genre, most confident first (``/api/genres/{genre}/tracks``, the
``/genres/{genre}`` page)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from musicindex.web.deps import IndexDep
from musicindex.web.render import PAGE, page
from musicindex.web.responses import BASE_DOC, Json, m3u_response
from musicindex.web.security import policy

router = APIRouter(default_response_class=Json, tags=["genres"])
Genre = Annotated[str, PathParam(min_length=1, max_length=100)]


@router.get("/api/genres", summary="Every genre a query accepts (labels and genre-model classes)")
def genres(index: IndexDep) -> list[str]:
    return index.library.known_genres()


@router.get("/api/library/genres", tags=["library"], summary="Every genre with its song and album counts")
def library_genres(index: IndexDep) -> Any:
    return [asdict(g) for g in index.catalog.genres()]


@router.get("/genres", **PAGE)
def genres_page(index: IndexDep, request: Request) -> Response:
    return page(request, "genres.html", genres=index.catalog.genres())


@router.get("/api/genres/{genre}/tracks", summary="Tracks of a genre, most confident first")
@policy(costly=True)
def by_genre(
    index: IndexDep,
    genre: Genre,
    k: int = Query(10, ge=1, le=1000),
    format: Literal["json", "m3u8"] = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    res = index.by_genre(genre, k=k)
    if format == "m3u8":
        return m3u_response(index, res.items, base, f"genre-{genre}", f"genre {genre}")
    return res.to_dict()


@router.get("/genres/{genre}", **PAGE)
def genre_page(index: IndexDep, request: Request, genre: Genre, k: int = Query(50, ge=1, le=1000)) -> Response:
    res = index.by_genre(genre, k=k)
    return page(request, "genre.html", genre=genre, result=res.to_dict(), k=k)
