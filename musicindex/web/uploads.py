"""Query by example over HTTP: an uploaded audio file, analysed (never stored) and compared with the library.

The request body is the file itself (not a form). It is capped (``MUSICINDEX_UPLOAD_MAX_BYTES``: a larger
``Content-Length`` is refused before reading, a body without one is counted while it streams), written to a private
temporary folder, analysed (one analysis at a time, ``Limits.analysis``) and the folder is deleted whatever happens.
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
    from musicindex.web.deps import Limits

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".m4a", ".opus")


@dataclass(frozen=True)
class UploadAnswer:
    answer: dict[str, Any]
    """The query's result (``QueryResult.to_dict()``) with ``params.upload``: the file's name and size."""
    filename: str


async def similar_to_upload(
    index: MusicIndex, limits: Limits, request: Request, k: int, space: str | None, filename: str
) -> UploadAnswer:
    """The ``k`` tracks closest to the request's body (an audio file named ``filename``: only its suffix is used)."""
    cap = index.settings.upload_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ApiError(413, "too_large", f"the file is larger than the limit of {cap} bytes")
    ctype = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    if ctype.startswith("multipart/"):
        raise ApiError(415, "unsupported_media_type", "send the file itself as the request body, not a form")
    suffix = Path(filename).suffix.lower()
    suffix = suffix if suffix in AUDIO_SUFFIXES else ""
    folder = tempfile.mkdtemp(prefix="musicindex-upload-")  # 0700, private to this process's user
    tmp = Path(folder) / f"upload{suffix}"
    size = 0
    try:
        with open(tmp, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    raise ApiError(413, "too_large", f"the file is larger than the limit of {cap} bytes")
                fh.write(chunk)
        if size == 0:
            raise InvalidArgumentError("the request body is empty: send the audio file as the body")

        def run() -> Any:
            with limits.slot(limits.analysis, "analysis", timeout=60):
                return index.similar_to_file(tmp, k=k, space=space or None)

        res = await run_in_threadpool(run)
    finally:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(folder, ignore_errors=True))
    d = res.to_dict()
    name = Path(filename).name
    d["params"] = {**d.get("params", {}), "path": None, "upload": {"filename": name, "bytes": size}}
    return UploadAnswer(d, name)
