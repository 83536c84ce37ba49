"""Query by example over HTTP: an uploaded audio file, analysed (never stored) and compared with the library.

The request body is the file itself (not a form). It is capped (``MUSICINDEX_UPLOAD_MAX_BYTES``: a larger
``Content-Length`` is refused before reading, a body without one is counted while it streams), written to a private
temporary folder, analysed (one upload at a time, ``Limits.analysis``: another gets 429 at once) and the folder is
deleted whatever happens.
``POST /api/similar-to-file`` answers the result as JSON, ``POST /fragments/similar-to-file`` as the page's list.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from musicindex.errors import InvalidArgumentError
from musicindex.web.errors import ApiError

if TYPE_CHECKING:
    from musicindex.index import MusicIndex
    from musicindex.query.options import SearchOptions
    from musicindex.web.deps import Limits

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".m4a", ".opus")
UPLOAD_READ_SECONDS = 120
"""An upload's body must arrive within this many seconds (it holds the one analysis slot while it streams)."""
SHORT_UPLOAD_SECONDS = 5.0
"""An upload shorter than this is compared, with a note that the answer is rough (the window reads up to 30 s, a
musicnn patch is 3 s); one shorter than ``audio.MIN_DURATION`` is refused (audio_error: "too short")."""


@dataclass(frozen=True)
class UploadAnswer:
    answer: dict[str, Any]
    """The query's result (``QueryResult.to_dict()``) with ``params.upload``: the file's name and size."""
    filename: str


async def similar_to_upload(
    index: MusicIndex, limits: Limits, request: Request, options: SearchOptions, filename: str
) -> UploadAnswer:
    """The tracks closest to the request's body (an audio file named ``filename``: only its suffix is used), as
    ``options`` ask.

    One upload at a time: while one is read and analysed, others get 429 at once (before their body is read), so
    waiting uploads never hold a worker thread. The body must arrive within ``UPLOAD_READ_SECONDS``."""
    cap = index.settings.upload_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ApiError(413, "too_large", f"the file is larger than the limit of {cap} bytes")
    ctype = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    if ctype.startswith("multipart/"):
        raise ApiError(415, "unsupported_media_type", "send the file itself as the request body, not a form")
    suffix = Path(filename).suffix.lower()
    suffix = suffix if suffix in AUDIO_SUFFIXES else ""
    with limits.try_slot(limits.analysis, "upload analysis"):
        folder = tempfile.mkdtemp(prefix="musicindex-upload-")  # 0700, private to this process's user
        tmp = Path(folder) / f"upload{suffix}"
        size = 0
        try:
            with anyio.move_on_after(UPLOAD_READ_SECONDS) as deadline, open(tmp, "wb") as fh:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > cap:
                        raise ApiError(413, "too_large", f"the file is larger than the limit of {cap} bytes")
                    fh.write(chunk)
            if deadline.cancelled_caught:
                raise ApiError(
                    408, "timeout", f"the file did not arrive within {UPLOAD_READ_SECONDS} s; send it faster or smaller"
                )
            if size == 0:
                raise InvalidArgumentError("the request body is empty: send the audio file as the body")
            res = await run_in_threadpool(_analyse, index, tmp, options)
        finally:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(folder, ignore_errors=True))
    d = res.to_dict()
    name = Path(filename).name
    d["params"] = {**d.get("params", {}), "path": None, "upload": {"filename": name, "bytes": size}}
    return UploadAnswer(d, name)


def _analyse(index: MusicIndex, path: Path, options: SearchOptions) -> Any:
    """``similar_to_file`` with the numeric libraries on one thread: the other cores stay free for the event loop and
    the other routes while an upload is analysed."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return index.similar_to_file(path, options)
