"""Lists made from how tracks sound: recommendations (``/api/recommend``, the ``/recommend`` page; a radio is
``recommend`` with its history), a playlist from one track to another (``/api/playlist``, the ``/playlist``
builder), "for you" from the listener's stars and plays, and tag and mood search (``/api/tags/tracks``,
``/tags``). Every one reads its search options with ``SearchOptions.parse`` and is answered by the similarity
engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from musicindex.errors import InvalidArgumentError
from musicindex.query.options import SearchOptions
from musicindex.web.deps import IndexDep, ListenerDep, PageUserDep, SearchDep, search_doc
from musicindex.web.presenters.songs import song_dicts
from musicindex.web.render import PAGE, page, page_options, try_
from musicindex.web.responses import BASE_DOC, Json, m3u_response
from musicindex.web.security import policy

if TYPE_CHECKING:
    from musicindex.index import MusicIndex
    from musicindex.query.results import TrackSummary

router = APIRouter(default_response_class=Json, tags=["queries"])
MAX_SEEDS = 100
"""Liked plus disliked tracks of one recommend request."""
FOR_YOU_K = 20
Format = Literal["json", "m3u8"]


@router.get(
    "/api/recommend",
    summary="More like the liked tracks, less like the disliked ones",
    openapi_extra=search_doc(),
)
@policy(costly=True)
def recommend(
    index: IndexDep,
    options: SearchDep,
    liked: list[int] = Query(..., min_length=1, max_length=MAX_SEEDS, description="liked track ids (repeat)"),
    disliked: list[int] = Query([], max_length=MAX_SEEDS, description="disliked track ids (repeat)"),
    history: list[int] = Query(
        [],
        max_length=MAX_SEEDS,
        description="the tracks just before the answer, oldest first (a radio's queue): "
        "excluded, and the artist and album spacing continues from them",
    ),
    format: Format = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    if len(liked) + len(disliked) > MAX_SEEDS:
        raise InvalidArgumentError(f"at most {MAX_SEEDS} liked and disliked tracks")
    res = index.recommend(liked, disliked, options=options, history=history)
    if format == "m3u8":
        return m3u_response(index, res.items, base, "recommended", "recommended")
    return res.to_dict()


@router.get("/recommend", **PAGE)
def recommend_page(
    index: IndexDep,
    request: Request,
    liked: list[int] = Query([], max_length=100),
    disliked: list[int] = Query([], max_length=100),
) -> Response:
    result, error = (None, None)
    liked_t = index.track_summaries(liked) if liked else []
    disliked_t = index.track_summaries(disliked) if disliked else []
    options, error = page_options(request, {"k": 20})
    if liked and options is not None:
        result, error = try_(index.recommend, liked, disliked, options=options)
    spaces, _ = try_(index.spaces)
    shown = options or SearchOptions(k=20)
    return page(
        request,
        "recommend.html",
        liked=[t.to_dict() for t in liked_t],
        disliked=[t.to_dict() for t in disliked_t],
        result=result.to_dict() if result is not None else None,
        error=error,
        spaces=spaces or [],
        space=shown.space or "",
        k=shown.k,
    )


@router.get("/api/playlist", summary="A smooth path of n tracks from start to end", openapi_extra=search_doc())
@policy(costly=True)
def playlist(
    index: IndexDep,
    options: SearchDep,
    start: int = Query(..., ge=1, le=2**62),
    end: int = Query(..., ge=1, le=2**62),
    format: Format = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    res = index.playlist(start, end, options)
    if format == "m3u8":
        return m3u_response(index, res.items, base, f"playlist-{start}-{end}", f"from {start} to {end}")
    return res.to_dict()


@router.get("/playlist", **PAGE)
def playlist_page(
    index: IndexDep,
    request: Request,
    start: str = Query("", max_length=20),
    end: str = Query("", max_length=20),
    start_q: str = Query("", max_length=200),
    end_q: str = Query("", max_length=200),
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
    options, error = page_options(request, {"k": 10})
    if start_t and end_t and options is not None:
        result, error = try_(index.playlist, start_t.id, end_t.id, options)
    spaces, _ = try_(index.spaces)
    shown = options or SearchOptions()
    return page(
        request,
        "playlist.html",
        start=start_t.to_dict() if start_t else None,
        end=end_t.to_dict() if end_t else None,
        start_q=start_q,
        end_q=end_q,
        n=shown.k,
        result=result.to_dict() if result is not None else None,
        error=error,
        problems=problems,
        spaces=spaces or [],
        space=shown.space or "",
    )


@router.get("/api/library/for-you", tags=["library"], summary="Recommendations from the listener's stars and plays")
@policy(costly=True)
def for_you(index: IndexDep, user: ListenerDep, k: int = Query(FOR_YOU_K, ge=1, le=200)) -> Any:
    return index.mixes.for_you(user.id, SearchOptions(k=k)).to_dict()


@router.get("/for-you", **PAGE)
def for_you_page(index: IndexDep, request: Request, user: PageUserDep) -> Response:
    answer, error = try_(index.mixes.for_you, user.id, SearchOptions(k=FOR_YOU_K))
    starred = index.listener.starred(user.id)
    return page(
        request,
        "for_you.html",
        answer=answer.to_dict() if answer is not None else None,
        error=error,
        liked=song_dicts(starred.songs[:50]),
        played=song_dicts(index.catalog.song_list("plays", size=20, user_id=user.id)),
    )


@router.get(
    "/api/tags/tracks",
    summary="Tracks with all these tags (musicnn), most probable first",
    openapi_extra=search_doc(),
)
@policy(costly=True)
def by_tags(
    index: IndexDep,
    options: SearchDep,
    format: Format = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    res = index.search_by_tags((), options)
    if format == "m3u8":
        tags = list(options.tags)
        return m3u_response(index, res.items, base, "tags-" + "-".join(tags), "tags " + ", ".join(tags))
    return res.to_dict()


@router.get("/tags", **PAGE)
def tags_page(index: IndexDep, request: Request) -> Response:
    """Tag and mood search (the musicnn tags): every tag on offer, and the tracks with all the chosen ones."""
    names, names_error = try_(index.library.tag_names)
    options, error = page_options(request, {"k": 50})
    shown = options or SearchOptions(k=50)
    result = None
    if options is not None and options.tags:
        result, error = try_(index.search_by_tags, (), options)
    return page(
        request,
        "tags.html",
        names=names or [],
        names_error=names_error,
        chosen=list(shown.tags),
        min_probability=shown.min_tag_probability,
        k=shown.k,
        result=result.to_dict() if result is not None else None,
        error=error,
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
