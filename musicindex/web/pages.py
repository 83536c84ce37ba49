"""The web page: server-rendered HTML (Jinja2) over the same ``MusicIndex`` methods as the API.

Pages work without script for reading; ``static/app.js`` (no build step, no outside resource)
adds likes (kept in the browser's localStorage), live pickers, the map, the status refresh, M3U
export with a base folder, query by an uploaded file and the token-protected model actions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from musicindex.errors import MusicIndexError
from musicindex.web.deps import IndexDep, LimitsDep
from musicindex.web.errors import category_of

if TYPE_CHECKING:
    pass

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _basename(path: str | None) -> str:
    return os.path.basename(path or "")


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(float(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _fmt_num(x: Any, digits: int = 3) -> str:
    if isinstance(x, bool) or x is None:
        return "" if x is None else str(x)
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


templates.env.filters["basename"] = _basename
templates.env.filters["duration"] = _fmt_duration
templates.env.filters["num"] = _fmt_num


def render_error(request: Request, status: int, category: str, message: str) -> Response:
    return templates.TemplateResponse(
        request, "error.html", {"page": "error", "status": status, "category": category, "message": message},
        status_code=status,
    )  # fmt: skip


router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)


def page(request: Request, name: str, **ctx: Any) -> Response:
    ctx.setdefault("page", name.removesuffix(".html"))
    ctx.setdefault("q", "")
    return templates.TemplateResponse(request, name, ctx)


def try_(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """(answer, None) or (None, the error's message) for the parts of a page that may be unavailable."""
    try:
        return fn(*args, **kwargs), None
    except MusicIndexError as exc:
        if category_of(exc).status >= 500:
            raise
        return None, str(exc)


def space_arg(space: str | None) -> dict[str, Any]:
    return {"space": space} if space else {}


@router.get("/")
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
    genres, _ = try_(index.genres)
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


@router.get("/tracks/{track_id}")
def track(
    index: IndexDep,
    request: Request,
    track_id: int = PathParam(..., ge=1, le=2**62),
    space: str | None = Query(None, max_length=32),
    k: int = Query(10, ge=1, le=100),
    genre: str | None = Query(None, max_length=100),
    exclude_same_artist: bool = Query(False),
) -> Response:
    details = index.track_details(track_id)
    similar, similar_error = try_(
        index.similar,
        track_id,
        k=k,
        genre=genre or None,
        exclude_same_artist=exclude_same_artist,
        **space_arg(space),
    )
    spaces, _ = try_(index.spaces)
    genres, _ = try_(index.genres)
    return page(
        request,
        "track.html",
        t=details.to_dict(),
        similar=similar.to_dict() if similar is not None else None,
        similar_error=similar_error,
        spaces=spaces or [],
        genres=genres or [],
        space=space or "",
        k=k,
        genre=genre or "",
        exclude_same_artist=exclude_same_artist,
    )


@router.get("/genres/{genre}")
def genre_page(
    index: IndexDep,
    request: Request,
    genre: str = PathParam(..., min_length=1, max_length=100),
    k: int = Query(50, ge=1, le=1000),
) -> Response:
    res = index.by_genre(genre, k=k)
    return page(request, "genre.html", genre=genre, result=res.to_dict(), k=k)


@router.get("/recommend")
def recommend(
    index: IndexDep,
    request: Request,
    liked: list[int] = Query([], max_length=100),
    disliked: list[int] = Query([], max_length=100),
    k: int = Query(20, ge=1, le=200),
    space: str | None = Query(None, max_length=32),
) -> Response:
    result, error = (None, None)
    liked_t = index.track_summaries(liked) if liked else []
    disliked_t = index.track_summaries(disliked) if disliked else []
    if liked:
        result, error = try_(index.recommend, liked, disliked, k=k, **space_arg(space))
    spaces, _ = try_(index.spaces)
    return page(
        request,
        "recommend.html",
        liked=[t.to_dict() for t in liked_t],
        disliked=[t.to_dict() for t in disliked_t],
        result=result.to_dict() if result is not None else None,
        error=error,
        spaces=spaces or [],
        space=space or "",
        k=k,
    )


@router.get("/playlist")
def playlist(
    index: IndexDep,
    request: Request,
    start: int | None = Query(None, ge=1, le=2**62),
    end: int | None = Query(None, ge=1, le=2**62),
    n: int = Query(10, ge=2, le=200),
    space: str | None = Query(None, max_length=32),
) -> Response:
    result, error = (None, None)
    start_t = index.track_summaries([start])[0] if start else None
    end_t = index.track_summaries([end])[0] if end else None
    if start and end:
        result, error = try_(index.playlist, start, end, n=n, **space_arg(space))
    spaces, _ = try_(index.spaces)
    return page(
        request,
        "playlist.html",
        start=start_t.to_dict() if start_t else None,
        end=end_t.to_dict() if end_t else None,
        n=n,
        result=result.to_dict() if result is not None else None,
        error=error,
        spaces=spaces or [],
        space=space or "",
    )


@router.get("/map")
def map_page(
    index: IndexDep,
    request: Request,
    space: str | None = Query(None, max_length=32),
    color_by: Literal["genre", "cluster"] = Query("genre"),
) -> Response:
    spaces, _ = try_(index.spaces)
    return page(request, "map.html", spaces=spaces or [], space=space or "", color_by=color_by)


@router.get("/status")
def status(index: IndexDep, limits: LimitsDep, request: Request) -> Response:
    from musicindex.web.api import STATUS_TTL, _status

    return page(request, "status.html", status=limits.cached("status:10", STATUS_TTL, lambda: _status(index, 10)))


@router.get("/models")
def models(index: IndexDep, request: Request) -> Response:
    return page(request, "models.html", models=index.models(limit=200), active=index.active_models())
