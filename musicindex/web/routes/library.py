"""The library as a whole: health and versions, the similarity spaces and the tags on offer, the map of a space
(``/api/map``, the ``/map`` page) and any list of tracks as an M3U8 playlist (``/api/m3u``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from musicindex.web.deps import IndexDep
from musicindex.web.render import PAGE, page, try_
from musicindex.web.responses import BASE_DOC, SPACE_DOC, Json, m3u_response
from musicindex.web.security import policy

router = APIRouter(default_response_class=Json, tags=["library"])


@router.get("/api/health", summary="Liveness and versions")
def health(index: IndexDep) -> dict[str, Any]:
    from musicindex import __version__

    info = index.db.schema_info()
    return {
        "status": "ok",
        "version": __version__,
        "schema": info.current,
        "schema_at_head": info.at_head,
        "postgres": info.postgres_version,
        "pgvector": info.pgvector_version,
    }


@router.get("/api/spaces", summary="Similarity spaces: which can answer, which is the default")
def spaces(index: IndexDep) -> list[dict[str, Any]]:
    return index.spaces()


@router.get("/api/tags", summary="The musicnn tags (genres, moods, instruments) a tag search accepts")
def tag_names(index: IndexDep) -> list[str]:
    return index.library.tag_names()


@router.get("/api/m3u", summary="Any list of track ids as an M3U8 playlist")
@policy(costly=True)
def m3u(
    index: IndexDep,
    ids: list[int] = Query(..., min_length=1, max_length=1000, description="track ids, in playlist order"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
    title: str = Query("musicindex", max_length=200),
) -> Response:
    return m3u_response(index, [{"id": i} for i in ids], base, title, title)


@router.get("/api/map", summary="A 2-D map (PCA) of a similarity space, coloured by genre or cluster")
@policy(costly=True)
def library_map(
    index: IndexDep,
    space: str | None = Query(None, max_length=32, description=SPACE_DOC),
    color_by: Literal["genre", "cluster"] = Query("genre"),
    limit: int = Query(3000, ge=2, le=20_000, description="at most this many points (a random sample)"),
) -> Any:
    return index.library.library_map(space, color_by=color_by, limit=limit).to_dict()


@router.get("/map", **PAGE)
def map_page(
    index: IndexDep,
    request: Request,
    space: str | None = Query(None, max_length=32),
    color_by: Literal["genre", "cluster"] = Query("genre"),
) -> Response:
    spaces, _ = try_(index.spaces)
    return page(request, "map.html", spaces=spaces or [], space=space or "", color_by=color_by)
