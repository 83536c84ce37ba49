"""Media: stream and download (the original file, by id, with HTTP Range: ``media.files``), getCoverArt
(``media.covers``). No transcoding: ``format`` and ``maxBitRate`` are accepted and ignored (``format=raw`` is what
is always sent)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from musicindex.media import covers
from musicindex.media.files import file_response, open_track_file
from musicindex.vocab import ALBUM, ARTIST, TRACK
from musicindex.web.subsonic import views
from musicindex.web.subsonic.endpoints import Call, endpoint

router = APIRouter()


def _file(call: Call, disposition: str) -> Response:
    _, item = views.parse_id(call.params.required("id"), TRACK)
    opened = open_track_file(call.index, item)
    return file_response(opened, call.request, disposition=disposition)


@endpoint(router, "stream")
def stream(call: Call) -> Response:
    return _file(call, "inline")


@endpoint(router, "download")
def download(call: Call) -> Response:
    return _file(call, "attachment")


@endpoint(router, "getCoverArt")
def get_cover_art(call: Call) -> Response:
    kind, item = views.parse_id(call.params.required("id"), ALBUM, ARTIST, TRACK, views.PLAYLIST)
    size = call.params.integer("size", low=1, high=100_000)
    image = covers.cover(call.index, kind, item, size)
    if call.request.headers.get("if-none-match") == image.etag:
        return Response(status_code=304, headers={"ETag": image.etag})
    return Response(
        image.data, media_type=image.media_type, headers={"ETag": image.etag, "Cache-Control": "private, max-age=86400"}
    )
