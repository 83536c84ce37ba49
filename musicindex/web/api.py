"""The JSON API under ``/api/``: a thin layer over ``MusicIndex`` (the same methods the CLI calls).

Every parameter is bounded; tracks are named by id only (no endpoint takes a path to read);
requests that change anything need the API token (``security.check_token``). Errors are JSON
(``errors.py``). docs/web.md lists the endpoints with examples; ``/api/docs`` shows this API's
OpenAPI description, ``/api/openapi.json`` is the machine-readable one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from musicindex.errors import InvalidArgumentError
from musicindex.media import file_response, open_track_file
from musicindex.web import status as web_status
from musicindex.web.deps import IndexDep, LimitsDep
from musicindex.web.errors import ApiError
from musicindex.web.responses import Json, m3u_response
from musicindex.web.security import check_token, policy
from musicindex.web.uploads import similar_to_upload

if TYPE_CHECKING:
    from musicindex.index import MusicIndex

MAX_SEEDS = 100
"""Liked plus disliked tracks of one recommend request, and the ids of one /api/m3u request: at most this many
(m3u: 1000)."""
SPACE_DOC = "similarity space (features, ann, cnn, musicnn, ...); omitted: the library's default space"
BASE_DOC = "M3U8 only: write paths relative to this absolute folder (the playlist's folder); omitted: absolute paths"
Format = Literal["json", "m3u8"]


def _space(space: str | None) -> dict[str, Any]:
    return {"space": space} if space else {}


router = APIRouter(prefix="/api", default_response_class=Json)


# ------------------------------------------------------------------ about
@router.get("/health", tags=["about"], summary="Liveness and versions")
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


@router.get("/spaces", tags=["about"], summary="Similarity spaces: which can answer, which is the default")
def spaces(index: IndexDep) -> list[dict[str, Any]]:
    return index.spaces()


@router.get("/genres", tags=["about"], summary="Every genre a query accepts (labels and genre-model classes)")
def genres(index: IndexDep) -> list[str]:
    return index.genres()


# ------------------------------------------------------------------ tracks
@router.get("/tracks", tags=["tracks"], summary="Search tracks by title, artist, album or file name")
def search(
    index: IndexDep,
    q: str = Query(..., min_length=1, max_length=200, description="words; each matches a word prefix, any order"),
    field: Literal["any", "title", "artist", "album"] = Query("any", description="where the words must match"),
    limit: int = Query(20, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000),
) -> Any:
    return index.search_tracks(q, field=field, limit=limit, offset=offset).to_dict()


@router.get("/tracks/{track_id}", tags=["tracks"], summary="Track details: tags, features, genre, cluster")
def track(index: IndexDep, track_id: int = PathParam(..., ge=1, le=2**62)) -> Any:
    return index.track_details(track_id).to_dict()


@router.head("/tracks/{track_id}/audio", include_in_schema=False)
@router.get(
    "/tracks/{track_id}/audio",
    tags=["tracks"],
    summary="The audio file of an indexed track (HTTP Range requests: 206 / 416)",
    response_class=Response,
    responses={200: {"content": {"audio/*": {}}}, 206: {"description": "partial content"}, 304: {}, 416: {}},
)
def audio(index: IndexDep, request: Request, track_id: int = PathParam(..., ge=1, le=2**62)) -> Response:
    """The file the index recorded for the track, opened and checked by ``musicindex.media`` (inside the ingested
    folders, a regular file of the recorded size and mtime) and streamed from that open descriptor."""
    return file_response(open_track_file(index, track_id), request, disposition="inline")


@router.get("/tracks/{track_id}/similar", tags=["queries"], summary="The tracks that sound most like this one")
@policy(costly=True)
def similar(
    index: IndexDep,
    track_id: int = PathParam(..., ge=1, le=2**62),
    k: int = Query(10, ge=1, le=1000),
    space: str | None = Query(None, max_length=32, description=SPACE_DOC),
    genre: str | None = Query(None, max_length=100, description="only tracks of this genre"),
    exclude_same_artist: bool = Query(False),
    exact: bool = Query(False, description="brute force instead of the HNSW index"),
    format: Format = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    res = index.similar(
        track_id, k=k, genre=genre, exclude_same_artist=exclude_same_artist, exact=exact, **_space(space)
    )
    if format == "m3u8":
        return m3u_response(index, res.items, base, f"similar-{track_id}", f"similar to track {track_id}")
    return res.to_dict()


@router.get("/tracks/{track_id}/genre", tags=["queries"], summary="The genre model's answer for a track")
def genre_of(index: IndexDep, track_id: int = PathParam(..., ge=1, le=2**62)) -> Any:
    return index.genre_of(track_id).to_dict()


@router.get("/tracks/{track_id}/cluster", tags=["queries"], summary="The cluster of a track")
def cluster_of(
    index: IndexDep,
    track_id: int = PathParam(..., ge=1, le=2**62),
    model: Literal["kmeans", "birch", "gmm"] = Query("kmeans"),
) -> Any:
    return index.cluster_of(track_id, model=model).to_dict()


# ------------------------------------------------------------------ lists
@router.get("/recommend", tags=["queries"], summary="More like the liked tracks, less like the disliked ones")
@policy(costly=True)
def recommend(
    index: IndexDep,
    liked: list[int] = Query(..., min_length=1, max_length=MAX_SEEDS, description="liked track ids (repeat)"),
    disliked: list[int] = Query([], max_length=MAX_SEEDS, description="disliked track ids (repeat)"),
    k: int = Query(10, ge=1, le=1000),
    space: str | None = Query(None, max_length=32, description=SPACE_DOC),
    exclude_artist: list[str] = Query([], max_length=50),
    exclude_genre: list[str] = Query([], max_length=50),
    exclude_track: list[int] = Query([], max_length=1000, description="track ids that must not appear (repeat)"),
    history: list[int] = Query(
        [],
        max_length=MAX_SEEDS,
        description="the tracks just before the answer, oldest first (a radio's queue): "
        "excluded, and the artist and album spacing continues from them",
    ),
    artist_spacing: int = Query(3, ge=0, le=100),
    format: Format = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    if len(liked) + len(disliked) > MAX_SEEDS:
        raise InvalidArgumentError(f"at most {MAX_SEEDS} liked and disliked tracks")
    if any(len(x) > 200 for x in exclude_artist + exclude_genre):
        raise InvalidArgumentError("an excluded artist or genre is longer than 200 characters")
    res = index.recommend(
        liked,
        disliked,
        k=k,
        exclude_tracks=exclude_track,
        exclude_artists=exclude_artist,
        exclude_genres=exclude_genre,
        artist_spacing=artist_spacing,
        history=history,
        **_space(space),
    )
    if format == "m3u8":
        return m3u_response(index, res.items, base, "recommended", "recommended")
    return res.to_dict()


@router.get("/genres/{genre}/tracks", tags=["queries"], summary="Tracks of a genre, most confident first")
@policy(costly=True)
def by_genre(
    index: IndexDep,
    genre: str = PathParam(..., min_length=1, max_length=100),
    k: int = Query(10, ge=1, le=1000),
    format: Format = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    res = index.by_genre(genre, k=k)
    if format == "m3u8":
        return m3u_response(index, res.items, base, f"genre-{genre}", f"genre {genre}")
    return res.to_dict()


@router.get("/tags", tags=["about"], summary="The musicnn tags (genres, moods, instruments) a tag search accepts")
def tag_names(index: IndexDep) -> list[str]:
    return index.tag_names()


@router.get("/tags/tracks", tags=["queries"], summary="Tracks with all these tags (musicnn), most probable first")
@policy(costly=True)
def by_tags(
    index: IndexDep,
    tag: list[str] = Query(..., min_length=1, max_length=10, description="tags (repeat); all must apply"),
    min_probability: float = Query(0.3, ge=0.0, le=1.0),
    k: int = Query(10, ge=1, le=1000),
    format: Format = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    res = index.search_by_tags(tag, k=k, min_probability=min_probability)
    if format == "m3u8":
        return m3u_response(index, res.items, base, "tags-" + "-".join(tag), "tags " + ", ".join(tag))
    return res.to_dict()


@router.get("/playlist", tags=["queries"], summary="A smooth path of n tracks from start to end")
@policy(costly=True)
def playlist(
    index: IndexDep,
    start: int = Query(..., ge=1, le=2**62),
    end: int = Query(..., ge=1, le=2**62),
    n: int = Query(10, ge=2, le=200),
    space: str | None = Query(None, max_length=32, description=SPACE_DOC),
    artist_spacing: int = Query(3, ge=0, le=100),
    format: Format = Query("json"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
) -> Any:
    res = index.playlist(start, end, n=n, artist_spacing=artist_spacing, **_space(space))
    if format == "m3u8":
        return m3u_response(index, res.items, base, f"playlist-{start}-{end}", f"from {start} to {end}")
    return res.to_dict()


@router.get("/m3u", tags=["queries"], summary="Any list of track ids as an M3U8 playlist")
@policy(costly=True)
def m3u(
    index: IndexDep,
    ids: list[int] = Query(..., min_length=1, max_length=1000, description="track ids, in playlist order"),
    base: str | None = Query(None, max_length=4096, description=BASE_DOC),
    title: str = Query("musicindex", max_length=200),
) -> Response:
    return m3u_response(index, [{"id": i} for i in ids], base, title, title)


@router.get("/map", tags=["queries"], summary="A 2-D map (PCA) of a similarity space, coloured by genre or cluster")
@policy(costly=True)
def library_map(
    index: IndexDep,
    space: str | None = Query(None, max_length=32, description=SPACE_DOC),
    color_by: Literal["genre", "cluster"] = Query("genre"),
    limit: int = Query(3000, ge=2, le=20_000, description="at most this many points (a random sample)"),
) -> Any:
    return index.library_map(space, color_by=color_by, limit=limit).to_dict()


@router.post(
    "/similar-to-file",
    tags=["queries"],
    summary="Query by example: the tracks closest to an uploaded audio file (analysed, never stored)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
@policy(costly=True, body="upload")
async def similar_to_file(
    index: IndexDep,
    limits: LimitsDep,
    request: Request,
    k: int = Query(10, ge=1, le=1000),
    space: str | None = Query(None, max_length=32, description=SPACE_DOC),
    filename: str = Query("upload", max_length=255, description="the file's name (its suffix names the format)"),
) -> Any:
    """One upload at a time: while one is read and analysed, others get 429 at once (before their body is read),
    so waiting uploads never hold a worker thread. The body must arrive within ``uploads.UPLOAD_READ_SECONDS``."""
    return (await similar_to_upload(index, limits, request, k, space, filename)).answer


# ------------------------------------------------------------------ status and models
@router.get("/status", tags=["status"], summary="Counts, latest failures, queues, workers and ingest progress")
def status(index: IndexDep, limits: LimitsDep, failures: int = Query(10, ge=0, le=100)) -> Any:
    """Counts, failures and progress are read for each answer; queue depths and workers are what the broker said at
    most a few seconds ago (`checked_seconds_ago`; asking the workers takes up to a second, so it is done in the
    background). `hint` says what to do when no worker runs."""
    return web_status.status(index, limits, failures, wait=3.0)


@router.get("/models", tags=["models"], summary="The model registry: versions, states, key metrics")
def models(
    index: IndexDep,
    kind: str | None = Query(None, max_length=16),
    state: str | None = Query(None, max_length=16),
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    return index.models(kind=kind, state=state, limit=limit)


@router.get("/models/active", tags=["models"], summary="The active version of each kind")
def active_models(index: IndexDep) -> Any:
    return index.active_models()


@router.get("/models/{version_id}", tags=["models"], summary="Everything about one model version")
def model(index: IndexDep, version_id: int = PathParam(..., ge=1, le=2**31 - 1)) -> Any:
    return _model(index, version_id)


def _model(index: MusicIndex, version_id: int) -> dict[str, Any]:
    """``index.model``; an id that names no version is a 404 (the registry says 'not trained')."""
    from musicindex.errors import ModelNotTrainedError

    try:
        return index.model(version_id)
    except ModelNotTrainedError as exc:
        if str(exc).startswith(f"no model version {version_id}"):
            raise ApiError(404, "unknown_model", str(exc)) from None
        raise


@router.get("/evaluate", tags=["models"], summary="Genre precision@k and hubness of each space; classifiers")
@policy(costly=True)
def evaluate(
    index: IndexDep,
    limits: LimitsDep,
    k: int = Query(10, ge=1, le=100),
    max_tracks: int = Query(5000, ge=10, le=20_000, description="a random sample of labelled tracks above this"),
) -> Any:
    with limits.try_slot(limits.evaluation, "evaluation"):
        return index.evaluate(k=k, max_tracks=max_tracks).to_dict()


# ------------------------------------------------------------------ changes (token)
@router.post("/models/{version_id}/promote", tags=["changes"], summary="Activate a version (token)")
@policy(token=True)
def promote(
    index: IndexDep,
    version_id: int = PathParam(..., ge=1, le=2**31 - 1),
    authorization: str | None = Header(None, include_in_schema=False),
) -> Any:
    check_token(authorization, index.settings)
    _model(index, version_id)
    retired = index.promote([version_id])
    return {"promoted": version_id, "retired": retired, "model": index.model(version_id)}


@router.post("/models/{kind}/rollback", tags=["changes"], summary="Re-activate the previous version of a kind (token)")
@policy(token=True)
def rollback(
    index: IndexDep,
    kind: str = PathParam(..., min_length=1, max_length=16),
    authorization: str | None = Header(None, include_in_schema=False),
) -> Any:
    check_token(authorization, index.settings)
    return {"rolled_back": kind, "model": index.rollback(kind)}


@router.post(
    "/ingest", tags=["changes"], summary="Re-scan the library's folders and queue new or changed files (token)"
)
@policy(token=True, body="json")
def ingest(
    index: IndexDep,
    authorization: str | None = Header(None, include_in_schema=False),
    label_from: Literal["folder", "tag"] | None = Body(None, embed=True),
    roots: list[str] | None = Body(
        None, embed=True, max_length=100, description="a subset of the folders ingested before (default: all)"
    ),
    retry_failed: bool = Body(False, embed=True, description="analyse failed tracks again"),
) -> Any:
    check_token(authorization, index.settings)
    known = index.ingest_progress()["roots"]
    if not known:
        raise InvalidArgumentError(
            "no folder was ever ingested: run `musicindex ingest PATH` once (the API re-scans known folders only)"
        )
    chosen = known if roots is None else roots
    unknown = [x for x in chosen if x not in known]
    if unknown:
        raise InvalidArgumentError(
            f"{unknown[0]!r} is not a folder ingested before; the API re-scans only these: {', '.join(known)}"
        )
    return index.ingest(chosen, wait=False, label_from=label_from, retry_failed=retry_failed).to_dict()


@router.post("/train", tags=["changes"], summary="Queue a training run on the workers (token)")
@policy(token=True, body="json")
def train(
    index: IndexDep,
    authorization: str | None = Header(None, include_in_schema=False),
    models: list[str] | None = Body(None, embed=True, max_length=16, description="model kinds (default: all)"),
    quick: bool = Body(False, embed=True, description="small grids, tiny network budgets"),
    force: bool = Body(False, embed=True, description="train even if the labelled data has not changed"),
) -> Any:
    check_token(authorization, index.settings)
    return index.train(models, wait=False, quick=quick, force=force, trigger="api").to_dict()
