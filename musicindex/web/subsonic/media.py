"""Media: stream (the original file with HTTP Range, or a transcode made as it is sent: ``media.transcode``),
download (always the original file), getCoverArt (``media.covers``).

``stream``'s ``format`` (raw, mp3, opus, aac, m4a), ``maxBitRate`` (kbps, 0: no limit), ``timeOffset`` (seconds:
the OpenSubsonic ``transcodeOffset`` extension) and ``estimateContentLength`` decide with the listener's and the
server's maximum bitrate what is sent (``transcode.plan``). A transcode beyond ``MUSICINDEX_TRANSCODE_MAX_STREAMS``
is HTTP 429 with ``Retry-After`` and the protocol's error as its body.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from musicindex.media import covers
from musicindex.media import transcode as tc
from musicindex.media.files import file_response, open_track_file
from musicindex.vocab import ALBUM, ARTIST, TRACK
from musicindex.web.subsonic import views
from musicindex.web.subsonic.endpoints import Call, endpoint

router = APIRouter()


def _file(call: Call, disposition: str) -> Response:
    _, item = views.parse_id(call.params.required("id"), TRACK)
    opened = open_track_file(call.index, item)
    return file_response(opened, call.request, disposition=disposition)


def stream_plan(call: Call, track_id: int) -> tc.Plan:
    """What ``stream`` sends for this call (``transcode.plan`` over the song, the listener and the settings)."""
    max_kbps = call.params.integer("maxBitRate", low=-(2**31))
    offset = tc.parse_offset(call.params.get("timeOffset"))
    song = call.index.catalog.song(track_id, call.user_id)
    return tc.plan(
        call.index.settings,
        fmt=call.params.get("format"),
        max_kbps=max_kbps,
        offset=offset,
        user_max_kbps=call.index.users.max_bit_rate(call.user_id),
        source_kbps=song.bit_rate,
        source_suffix=song.suffix,
        duration=song.duration,
    )


@endpoint(router, "stream")
def stream(call: Call) -> Response:
    _, item = views.parse_id(call.params.required("id"), TRACK)
    plan = stream_plan(call, item)
    if plan.codec is None:
        return _file(call, "inline")
    estimate = plan.estimated_bytes() if call.params.boolean("estimateContentLength", False) else None
    headers = {"X-Transcode": f"{plan.codec.name}; kbps={plan.kbps}; offset={plan.offset:g}"}
    if call.request.method == "HEAD":  # what a player asks before it plays: nothing is transcoded
        return tc.TranscodeResponse(None, plan.codec, length=estimate, headers=headers)
    transcoder = call.state.transcoder(call.index.settings)
    opened = open_track_file(call.index, item)
    cached = transcoder.cached(opened, plan)
    if cached is not None:
        opened.close()
        return file_response(cached, call.request, media_type=plan.codec.media_type, headers=headers)
    job = transcoder.start(opened, plan, owner=call.user_id)
    return tc.TranscodeResponse(job, plan.codec, length=estimate, headers=headers)


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
