"""The web page: server-rendered HTML (Jinja2) over the same ``MusicIndex`` methods as the API.

Pages work without script for reading; ``static/app.js`` (no build step, no outside resource)
adds likes (kept in the browser's localStorage), live pickers, the map, the status refresh, M3U
export with a base folder, query by an uploaded file and the token-protected model actions.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from musicindex.errors import MusicIndexError, TrackFileError
from musicindex.media import open_track_file
from musicindex.web import sessions
from musicindex.web import status as web_status
from musicindex.web.deps import IndexDep, LimitsDep
from musicindex.web.errors import category_of
from musicindex.web.security import policy
from musicindex.web.uploads import similar_to_upload

if TYPE_CHECKING:
    from musicindex.index import MusicIndex
    from musicindex.query.results import TrackSummary

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


@functools.cache
def _markdown_parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})  # raw HTML in the text is escaped, never passed through


def _markdown(text: str | None) -> Markup:
    """Markdown (the API's descriptions) as HTML: escaped text, links only to safe schemes (markdown-it's rule)."""
    return Markup(_markdown_parser().render(text or ""))


def _fmt_feature(x: float | None) -> str:
    """A feature's value with 4 significant digits, never in scientific notation (0.00002244, not 2.244e-05)."""
    if x is None or not math.isfinite(x):
        return ""
    if x == 0:
        return "0"
    decimals = min(12, max(0, 3 - math.floor(math.log10(abs(x)))))
    return f"{x:,.{decimals}f}".replace(",", "\u2009")


templates.env.filters["basename"] = _basename
templates.env.filters["feature"] = _fmt_feature
templates.env.filters["markdown"] = _markdown
templates.env.filters["duration"] = _fmt_duration
templates.env.filters["num"] = _fmt_num


def render_error(request: Request, status: int, category: str, message: str) -> Response:
    ctx: dict[str, Any] = {"page": "error", "status": status, "category": category, "message": message}
    try:  # the page's session (its CSRF token: the player bar saves the queue from this page too)
        ctx["viewer"] = sessions.viewer(request)
    except (MusicIndexError, SQLAlchemyError, OSError, AttributeError, KeyError):  # no database, no app: none
        ctx["viewer"] = None
    response = templates.TemplateResponse(request, "error.html", ctx, status_code=status)
    if ctx["viewer"] is not None:
        sessions.attach(request, response)
    return response


router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)


def page(request: Request, name: str, status_code: int = 200, **ctx: Any) -> Response:
    ctx.setdefault("page", name.removesuffix(".html"))
    ctx.setdefault("q", "")
    ctx.setdefault("viewer", sessions.viewer(request))
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    sessions.attach(request, response)
    return response


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
    file_problem = None
    try:
        open_track_file(index, track_id).close()
    except TrackFileError as exc:
        file_problem = str(exc)
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
        file_problem=file_problem,
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
    start: str = Query("", max_length=20),
    end: str = Query("", max_length=20),
    start_q: str = Query("", max_length=200),
    end_q: str = Query("", max_length=200),
    n: int = Query(10, ge=2, le=200),
    space: str | None = Query(None, max_length=32),
) -> Response:
    """The playlist builder. Each end is a track id (``start``, ``end``: what the pickers fill in) or, without one,
    the name typed in its box (``start_q``, ``end_q``: resolved when it names one track; else the page says which
    tracks it could be). Nothing given is no error: the form is shown."""
    result, error = (None, None)
    picked, problems = {}, []
    for which, ref, typed in (("start", start, start_q), ("end", end, end_q)):
        track, problem = pick_track(index, which, ref, typed)
        picked[which] = track
        if problem:
            problems.append(problem)
    start_t, end_t = picked["start"], picked["end"]
    if start_t and end_t:
        result, error = try_(index.playlist, start_t.id, end_t.id, n=n, **space_arg(space))
    spaces, _ = try_(index.spaces)
    return page(
        request,
        "playlist.html",
        start=start_t.to_dict() if start_t else None,
        end=end_t.to_dict() if end_t else None,
        start_q=start_q,
        end_q=end_q,
        n=n,
        result=result.to_dict() if result is not None else None,
        error=error,
        problems=problems,
        spaces=spaces or [],
        space=space or "",
    )


def pick_track(index: MusicIndex, which: str, ref: str, typed: str) -> tuple[TrackSummary | None, Any]:
    """The track an end of the playlist names: by id (``ref``), else by the typed name (one match, or one whose
    title is exactly the name); else (None, a problem: what to do, and the candidates)."""
    ref, typed = ref.strip(), typed.strip()
    label = {"start": "From", "end": "To"}[which]
    if ref:
        if not ref.isdigit() or not 1 <= int(ref) <= 2**62:
            return None, {"which": which, "message": f"{label}: {ref!r} is no track id", "candidates": []}
        found, err = try_(index.track_summaries, [int(ref)])
        if found:
            return found[0], None
        return None, {"which": which, "message": f"{label}: {err}", "candidates": []}
    if not typed:
        return None, None
    res, err = try_(index.search_tracks, typed, limit=8)
    if res is None:
        return None, {"which": which, "message": f"{label}: {err}", "candidates": []}
    exact = [t for t in res.items if (t.title or "").casefold() == typed.casefold()]
    if len(res.items) == 1 or len(exact) == 1:
        return (exact or res.items)[0], None
    if not res.items:
        return None, {"which": which, "message": f"{label}: no track matches {typed!r}", "candidates": []}
    return None, {
        "which": which,
        "message": f"{label}: {res.candidates} tracks match {typed!r}; pick one",
        "candidates": [t.to_dict() for t in res.items],
    }


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
    """Never waits for the workers: what they said last (the page's script refreshes it every 2 s)."""
    return page(request, "status.html", status=web_status.status(index, limits, 10, wait=0))


@router.get("/models")
def models(index: IndexDep, request: Request) -> Response:
    """Every version; roll back is offered for a kind only when it has a retired version to go back to, and a
    version whose held-out score is 0 is flagged."""
    versions = index.models(limit=200)
    retired = {m["kind"] for m in versions if m["state"] == "retired"}
    for m in versions:
        m["can_roll_back"] = m["state"] == "active" and m["kind"] in retired
        m["zero_score"] = [k for k in ZERO_SCORE_METRICS if (m.get("metrics") or {}).get(k) == 0]
    return page(request, "models.html", models=versions, active=index.active_models())


ZERO_SCORE_METRICS = ("accuracy", "macro_f1")
"""Held-out scores of a classifier: 0 means it learnt nothing (or the test set is broken), which the page flags."""


@router.get("/tags")
def tags_page(
    index: IndexDep,
    request: Request,
    tag: list[str] = Query([], max_length=10),
    min_probability: float = Query(0.3, ge=0.0, le=1.0),
    k: int = Query(50, ge=1, le=500),
) -> Response:
    """Tag and mood search (the musicnn tags): every tag on offer, and the tracks with all the chosen ones."""
    names, names_error = try_(index.tag_names)
    chosen = [t for t in tag if t]
    result, error = (None, None)
    if chosen:
        result, error = try_(index.search_by_tags, chosen, k=k, min_probability=min_probability)
    return page(
        request,
        "tags.html",
        names=names or [],
        names_error=names_error,
        chosen=chosen,
        min_probability=min_probability,
        k=k,
        result=result.to_dict() if result is not None else None,
        error=error,
    )


@router.post("/fragments/similar-to-file")
@policy(costly=True, body="upload")
async def similar_to_file_fragment(
    index: IndexDep,
    limits: LimitsDep,
    request: Request,
    k: int = Query(10, ge=1, le=1000),
    space: str | None = Query(None, max_length=32),
    filename: str = Query("upload", max_length=255),
) -> Response:
    """Query by example for the page: the same analysis as ``POST /api/similar-to-file``, answered as the page's
    track list (row actions, why, export), which the script puts under the form."""
    up = await similar_to_upload(index, limits, request, k, space, filename)
    ctx = {"result": up.answer, "filename": up.filename, "short_seconds": SHORT_UPLOAD_SECONDS,
           "window_seconds": index.settings.window.duration}  # fmt: skip
    return templates.TemplateResponse(request, "upload_result.html", ctx)


SHORT_UPLOAD_SECONDS = 5.0
"""An upload shorter than this is compared, with a note that the answer is rough (the window reads up to 30 s, a
musicnn patch is 3 s); one shorter than ``audio.MIN_DURATION`` is refused (audio_error: "too short")."""
