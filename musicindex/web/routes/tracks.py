"""Tracks: search them (``GET /api/tracks?q=``), one track's details, audio, genre, cluster and the tracks that
sound like it (``/api/tracks/{id}...`` and the ``/tracks/{id}`` page), query by an uploaded file, and every song
sorted and paged (``/songs``, ``/api/library/songs``, the songs of an album, an artist or a playlist)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from musicindex.errors import TrackFileError
from musicindex.media import file_response, open_track_file
from musicindex.query.catalog import SONG_SORTS
from musicindex.query.options import SearchOptions
from musicindex.vocab import ALBUM, ARTIST, MOODS
from musicindex.web.deps import IndexDep, LimitsDep, SearchDep, UserIdDep, search_doc
from musicindex.web.errors import ApiError
from musicindex.web.presenters.songs import song_dict, song_dicts
from musicindex.web.render import PAGE, page, page_options, templates, try_
from musicindex.web.responses import BASE_DOC, Json, m3u_response
from musicindex.web.security import policy
from musicindex.web.uploads import SHORT_UPLOAD_SECONDS, similar_to_upload

router = APIRouter(default_response_class=Json, tags=["tracks"])
TrackId = Annotated[int, PathParam(ge=1, le=2**62)]
Format = Literal["json", "m3u8"]
SONGS_PAGE = 50


@router.get("/api/tracks", summary="Search tracks by title, artist, album or file name")
def search(
    index: IndexDep,
    q: str = Query(..., min_length=1, max_length=200, description="words; each matches a word prefix, any order"),
    field: Literal["any", "title", "artist", "album"] = Query("any", description="where the words must match"),
    limit: int = Query(20, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000),
) -> Any:
    return index.search_tracks(q, field=field, limit=limit, offset=offset).to_dict()


@router.get("/api/tracks/{track_id}", summary="Track details: tags, features, genre, cluster")
def track(index: IndexDep, track_id: TrackId) -> Any:
    return index.track_details(track_id).to_dict()


@router.head("/api/tracks/{track_id}/audio", include_in_schema=False)
@router.get(
    "/api/tracks/{track_id}/audio",
    summary="The audio file of an indexed track (HTTP Range requests: 206 / 416)",
    response_class=Response,
    responses={200: {"content": {"audio/*": {}}}, 206: {"description": "partial content"}, 304: {}, 416: {}},
)
def audio(index: IndexDep, request: Request, track_id: TrackId) -> Response:
    """The file the index recorded for the track, opened and checked by ``musicindex.media`` (inside the ingested
    folders, a regular file of the recorded size and mtime) and streamed from that open descriptor."""
    return file_response(open_track_file(index, track_id), request, disposition="inline")


@router.get(
    "/api/tracks/{track_id}/similar", summary="The tracks that sound most like this one", openapi_extra=search_doc()
)
@policy(costly=True)
def similar(
    index: IndexDep,
    options: SearchDep,
    track_id: TrackId,
    format: Format = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    res = index.similar(track_id, options)
    if format == "m3u8":
        return m3u_response(index, res.items, base, f"similar-{track_id}", f"similar to track {track_id}")
    return res.to_dict()


@router.get("/api/tracks/{track_id}/genre", summary="The genre model's answer for a track")
def genre_of(index: IndexDep, track_id: TrackId) -> Any:
    return index.genre_of(track_id).to_dict()


@router.get("/api/tracks/{track_id}/cluster", summary="The cluster of a track")
def cluster_of(index: IndexDep, track_id: TrackId, model: Literal["kmeans", "birch", "gmm"] = Query("kmeans")) -> Any:
    return index.cluster_of(track_id, model=model).to_dict()


@router.get("/tracks/{track_id}", **PAGE)
def track_page(index: IndexDep, request: Request, track_id: TrackId) -> Response:
    """A track: details, player, genre, cluster, tags and "sounds like" (a part that cannot answer says why)."""
    details = index.track_details(track_id)
    file_problem = None
    try:
        open_track_file(index, track_id).close()
    except TrackFileError as exc:
        file_problem = str(exc)
    options, similar_error = page_options(request, {"k": 10})
    similar = None
    if options is not None:
        similar, similar_error = try_(index.similar, track_id, options)
    shown = options or SearchOptions()
    spaces, _ = try_(index.spaces)
    genres, _ = try_(index.library.known_genres)
    return page(
        request,
        "track.html",
        t=details.to_dict(),
        file_problem=file_problem,
        similar=similar.to_dict() if similar is not None else None,
        similar_error=similar_error,
        spaces=spaces or [],
        genres=genres or [],
        space=shown.space or "",
        k=shown.k,
        genre=shown.genres[0] if shown.genres else "",
        exclude_same_artist=shown.exclude_same_artist,
        tempo=request.query_params.get("tempo", "")[:40],  # what was typed, shown back (escaped by the template)
        key=request.query_params.get("key", "")[:32],
        mood=shown.moods[0] if shown.moods else "",
        moods=MOODS,
    )


# ------------------------------------------------------------------ query by example
@router.post(
    "/api/similar-to-file",
    summary="Query by example: the tracks closest to an uploaded audio file (analysed, never stored)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        **search_doc(),
    },
)
@policy(costly=True, body="upload", slot=None)  # its own slot: one analysis at a time
async def similar_to_file(
    index: IndexDep,
    limits: LimitsDep,
    request: Request,
    options: SearchDep,
    filename: str = Query("upload", max_length=255, description="the file's name (its suffix names the format)"),
) -> Any:
    """One upload at a time: while one is read and analysed, others get 429 at once (before their body is read),
    so waiting uploads never hold a worker thread. The body must arrive within ``uploads.UPLOAD_READ_SECONDS``."""
    return (await similar_to_upload(index, limits, request, options, filename)).answer


@router.post("/fragments/similar-to-file", **PAGE)
@policy(costly=True, body="upload", slot=None)  # its own slot: one analysis at a time
async def similar_to_file_fragment(
    index: IndexDep,
    limits: LimitsDep,
    request: Request,
    options: SearchDep,
    filename: str = Query("upload", max_length=255),
) -> Response:
    """Query by example for the page: the same analysis as ``POST /api/similar-to-file``, answered as the page's
    track list (row actions, why, export), which the script puts under the form."""
    up = await similar_to_upload(index, limits, request, options, filename)
    ctx = {"result": up.answer, "filename": up.filename, "short_seconds": SHORT_UPLOAD_SECONDS,
           "window_seconds": index.settings.window.duration}  # fmt: skip
    return templates.TemplateResponse(request, "upload_result.html", ctx)


# ------------------------------------------------------------------ songs (the catalog's view)
@router.get("/api/library/songs", tags=["library"], summary="One page of every song, sorted")
def songs(
    index: IndexDep,
    uid: UserIdDep,
    sort: Literal[SONG_SORTS] = Query("title"),  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = Query("asc"),
    size: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Any:
    found = index.catalog.song_list(sort, order == "desc", size, offset, user_id=uid)
    return {"sort": sort, "order": order, "size": size, "offset": offset, "songs": song_dicts(found)}


@router.get("/songs", **PAGE)
def songs_page(
    index: IndexDep,
    request: Request,
    uid: UserIdDep,
    sort: Literal[SONG_SORTS] = Query("title"),  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = Query("asc"),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Response:
    found = index.catalog.song_list(sort, order == "desc", SONGS_PAGE + 1, offset, user_id=uid)
    items = [{**song_dict(s), "score": s.annotation.play_count} for s in found[:SONGS_PAGE]]
    return page(
        request,
        "songs.html",
        songs=items,
        sort=sort,
        order=order,
        sorts=SONG_SORTS,
        offset=offset,
        size=SONGS_PAGE,
        more=len(found) > SONGS_PAGE,
    )


@router.get(
    "/api/library/tracks-of/{kind}/{item_id}",
    tags=["library"],
    summary="The songs of an album, an artist or a playlist, in order",
)
def tracks_of(index: IndexDep, uid: UserIdDep, kind: Literal["album", "artist", "playlist"], item_id: TrackId) -> Any:
    if kind == ALBUM:
        found = index.catalog.album(item_id, uid).songs
    elif kind == ARTIST:
        found = [s for a in index.catalog.artist(item_id, uid).albums for s in index.catalog.album(a.id, uid).songs]
    elif uid is None:
        raise ApiError(401, "unauthorized", "log in first: playlists belong to listeners")
    else:
        found = index.listener.playlist(item_id, uid).songs or []
    return song_dicts(found)


__all__ = ["router"]
